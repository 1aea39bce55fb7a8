package root

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
)

func asFlagError(err error, fe **cmdutil.FlagError) bool { return errors.As(err, fe) }

// commandPath names the subcommand the arguments reached, for the usage hint.
func commandPath(root *cobra.Command) string {
	c, _, err := root.Find(os.Args[1:])
	if err != nil || c == nil {
		return root.Name()
	}
	return strings.TrimSpace(c.CommandPath())
}

// usageErrors makes every mistake in the words of a command line a
// *cmdutil.FlagError, exit code 2, in the whole tree under c. Left to
// itself cobra answers an unknown subcommand of the root and a verb's
// wrong arguments with a plain error (exit 1), and an unknown subcommand of
// a group (`zoo weights convert`) with the group's help and exit 0. Call it
// once the tree is complete; it adds cobra's completion and help commands
// first so that they are covered too.
func usageErrors(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	root.SetHelpCommand(newCmdHelp())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands():
			// A group runs only to show its help; any word left over is
			// a subcommand it does not have.
			c.Args = unknownSubcommand
			if !c.Runnable() {
				c.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
			}
		case c.Args != nil:
			c.Args = asUsage(c.Args)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownSubcommand is the Args check of a command group.
func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	var names []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	slices.Sort(names)
	msg := fmt.Sprintf("unknown command %q for %q: use one of %s", args[0], c.CommandPath(), strings.Join(names, ", "))
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return cmdutil.FlagErrorf("%s", msg)
}

// asUsage turns the errors of an Args check into usage errors that show
// how the command is called.
func asUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		err := check(c, args)
		var fe *cmdutil.FlagError
		if err == nil || errors.As(err, &fe) {
			return err
		}
		verb := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		return cmdutil.FlagErrorf("%s: %v; usage: %s", verb, err, c.UseLine())
	}
}

// newCmdHelp is cobra's help command, except that an unknown topic is a
// usage error rather than a line on stdout and exit 0.
func newCmdHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return cmdutil.FlagErrorf("unknown help topic %q: `%s --help` lists the commands", strings.Join(args, " "), c.Root().Name())
			}
			return cmd.Help()
		},
	}
}
