package weights

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
)

// ImportOptions are `zoo weights import`'s inputs.
type ImportOptions struct {
	F       *cmdutil.Factory
	Name    string
	Archive string
	Quiet   bool
}

// NewCmdImport returns `zoo weights import`; runF replaces importRun in tests.
func NewCmdImport(f *cmdutil.Factory, runF func(context.Context, *ImportOptions) error) *cobra.Command {
	opts := &ImportOptions{F: f}
	cmd := &cobra.Command{
		Use:   "import NAME FILE.tar.gz",
		Short: "Install a weight set from a local archive (for machines with no network)",
		Long: `import installs a weight set from an archive downloaded elsewhere (the URL
zoo weights list --json shows), replacing an installed copy. The archive is
checked as a download would be: its sha256 against the pinned or recorded
one, its members for safety, every file as a Paddle parameter file.`,
		Example: `  zoo weights import tsm_kinetics ~/Downloads/tsm_kinetics.tar.gz
  ZOO_OFFLINE=1 zoo weights import ResNet50_pretrained /mnt/usb/ResNet50_pretrained.tar.gz`,
		Args: cmdutil.ExactArgs(2, "import needs a weight set and an archive, e.g. `zoo weights import tsm_kinetics tsm_kinetics.tar.gz`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name, opts.Archive = args[0], args[1]
			fi, err := os.Stat(opts.Archive)
			if err != nil {
				return cmdutil.FlagErrorf("archive %s: no such file", opts.Archive)
			}
			if !fi.Mode().IsRegular() {
				return cmdutil.FlagErrorf("archive %s: not a file (want a .tar.gz)", opts.Archive)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return importRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "print no progress")
	return cmd
}

func importRun(ctx context.Context, opts *ImportOptions) error {
	set, err := namedSet(ctx, opts.F, opts.Name)
	if err != nil {
		return err
	}
	st := opts.F.WeightsStore(!opts.Quiet)
	dir, err := st.Import(ctx, set, opts.Archive)
	if err != nil {
		return err
	}
	if !opts.Quiet {
		fmt.Fprintf(opts.F.IO.ErrOut, "%s: imported %s\n", set.Name, opts.Archive)
	}
	fmt.Fprintf(opts.F.IO.Out, "%s  %s\n", set.Name, dir)
	return nil
}
