package cmdutil

import "github.com/spf13/cobra"

// ExactArgs is the Args check of a command that takes n arguments: other
// counts are a usage error that reads "USAGE; got K argument(s)", where
// usage says what the command needs with an example.
func ExactArgs(n int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return FlagErrorf("%s; got %d argument(s)", usage, len(args))
		}
		return nil
	}
}
