package weights

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/weights"
)

// VerifyOptions are `zoo weights verify`'s inputs.
type VerifyOptions struct {
	F     *cmdutil.Factory
	Names []string // weight sets or models; none: every installed set
}

// NewCmdVerify returns `zoo weights verify`; runF replaces verifyRun in tests.
func NewCmdVerify(f *cmdutil.Factory, runF func(context.Context, *VerifyOptions) error) *cobra.Command {
	opts := &VerifyOptions{F: f}
	return &cobra.Command{
		Use:   "verify [NAME|MODEL ...]",
		Short: "Check installed weight sets (every installed one with no argument)",
		Long: `verify checks that every file of an installed weight set parses as a Paddle
parameter file, that the variables the model needs are there and, when zoo
installed the set, that the files are unchanged since (their digest matches
zoo-weights.lock). It never touches the network.`,
		Example: `  zoo weights verify
  zoo weights verify tsm_kinetics`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return verifyRun(cmd.Context(), opts)
		},
	}
}

func verifyRun(ctx context.Context, opts *VerifyOptions) error {
	all, err := knownSets(ctx, opts.F)
	if err != nil {
		return err
	}
	sets, err := selectSets(all, opts.Names)
	if err != nil {
		return err
	}
	st := opts.F.WeightsStore(false)
	if len(opts.Names) == 0 {
		var present []weights.Set
		for _, s := range sets {
			if st.Present(s) {
				present = append(present, s)
			}
		}
		if len(present) == 0 {
			fmt.Fprintln(opts.F.IO.ErrOut, "no weight sets installed: zoo weights fetch installs them")
			return nil
		}
		sets = present
	}
	stats, err := st.List(ctx, sets)
	if err != nil {
		return err
	}
	io := opts.F.IO
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	var failed []error
	for _, s := range stats {
		switch {
		case !s.Present:
			failed = append(failed, st.Verify(ctx, s.Set)) // not installed, with the fetch hint
		case s.Problem != nil:
			fmt.Fprintf(tw, "%s\tFAILED\t%s\n", s.Set.Name, s.Path)
			failed = append(failed, s.Problem)
		case s.Verified:
			fmt.Fprintf(tw, "%s\tok\t%s\n", s.Set.Name, s.Path)
		default:
			fmt.Fprintf(tw, "%s\tok (files parse; no digest recorded: not installed by zoo)\t%s\n", s.Set.Name, s.Path)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch len(failed) {
	case 0:
		return nil
	case 1:
		return failed[0]
	}
	for _, err := range failed[:len(failed)-1] {
		fmt.Fprintln(io.ErrOut, cmdutil.Message(err))
	}
	return failed[len(failed)-1]
}
