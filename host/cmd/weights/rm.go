package weights

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
)

// RmOptions are `zoo weights rm`'s inputs.
type RmOptions struct {
	F    *cmdutil.Factory
	Name string
}

// NewCmdRm returns `zoo weights rm`; runF replaces rmRun in tests.
func NewCmdRm(f *cmdutil.Factory, runF func(context.Context, *RmOptions) error) *cobra.Command {
	opts := &RmOptions{F: f}
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove an installed weight set",
		Long: `rm deletes an installed weight set's directory (and any partial download).
The archive's sha256 stays recorded in zoo-weights.lock, so a later fetch
must bring the same bytes.`,
		Example: `  zoo weights rm tsm_kinetics
  zoo weights rm tsm_kinetics && zoo weights fetch tsm_kinetics`,
		Args: oneName("rm"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return rmRun(cmd.Context(), opts)
		},
	}
}

func rmRun(ctx context.Context, opts *RmOptions) error {
	set, err := namedSet(ctx, opts.F, opts.Name)
	if err != nil {
		return err
	}
	st := opts.F.WeightsStore(false)
	if err := st.Remove(ctx, set); err != nil {
		return err
	}
	fmt.Fprintf(opts.F.IO.ErrOut, "removed %s (%s)\n", set.Name, st.Path(set))
	return nil
}
