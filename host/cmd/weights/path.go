package weights

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
)

// PathOptions are `zoo weights path`'s inputs.
type PathOptions struct {
	F    *cmdutil.Factory
	Name string
}

// NewCmdPath returns `zoo weights path`; runF replaces pathRun in tests.
func NewCmdPath(f *cmdutil.Factory, runF func(context.Context, *PathOptions) error) *cobra.Command {
	opts := &PathOptions{F: f}
	return &cobra.Command{
		Use:   "path NAME",
		Short: "Print the directory of an installed weight set",
		Long: `path prints the directory an installed weight set lives in, for --weights,
--pretrain or other tools. It fails when the set is not installed.`,
		Example: `  zoo weights path tsm_kinetics
  zoo run TSM test --config configs/tsm.txt --weights "$(zoo weights path tsm_kinetics)"`,
		Args: oneName("path"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return pathRun(cmd.Context(), opts)
		},
	}
}

func pathRun(ctx context.Context, opts *PathOptions) error {
	set, err := namedSet(ctx, opts.F, opts.Name)
	if err != nil {
		return err
	}
	st := opts.F.WeightsStore(false)
	if !st.Present(set) {
		return fmt.Errorf("weight set %s is not installed in %s: run zoo weights fetch %s", set.Name, st.Path(set), set.Name)
	}
	fmt.Fprintln(opts.F.IO.Out, st.Path(set))
	return nil
}
