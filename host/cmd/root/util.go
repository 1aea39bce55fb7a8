package root

import (
	"errors"
	"os"
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
