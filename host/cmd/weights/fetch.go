package weights

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
)

// FetchOptions are `zoo weights fetch`'s inputs.
type FetchOptions struct {
	F     *cmdutil.Factory
	Names []string // weight sets or models; none: every set
	Quiet bool
}

// NewCmdFetch returns `zoo weights fetch`; runF replaces fetchRun in tests.
func NewCmdFetch(f *cmdutil.Factory, runF func(context.Context, *FetchOptions) error) *cobra.Command {
	opts := &FetchOptions{F: f}
	cmd := &cobra.Command{
		Use:   "fetch [NAME|MODEL ...]",
		Short: "Download and install weight sets (all of them with no argument)",
		Long: `fetch installs each named weight set, or every set of each named model
(names are case-insensitive), or with no argument every set of every model.
Sets already installed are left as they are. It prints each set's name and
directory on stdout, and progress on stderr.`,
		Example: `  zoo weights fetch tsm_kinetics
  zoo weights fetch TSM
  zoo weights fetch
  zoo weights fetch --mirror https://mirror.example.com/paddle tsm_kinetics
  ZOO_WEIGHTS_DIR=/data/weights zoo weights fetch --quiet`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return fetchRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVarP(&opts.Quiet, "quiet", "q", false, "draw no progress")
	return cmd
}

func fetchRun(ctx context.Context, opts *FetchOptions) error {
	all, err := knownSets(ctx, opts.F)
	if err != nil {
		return err
	}
	sets, err := selectSets(all, opts.Names)
	if err != nil {
		return err
	}
	if len(sets) == 0 {
		fmt.Fprintln(opts.F.IO.ErrOut, "no weight sets to fetch: the installed plugins publish none")
		return nil
	}
	st := opts.F.WeightsStore(!opts.Quiet)
	io := opts.F.IO
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	var failed []error
	for _, set := range sets {
		if st.Present(set) {
			fmt.Fprintf(tw, "%s\t%s\n", set.Name, st.Path(set))
			if !opts.Quiet {
				fmt.Fprintf(io.ErrOut, "%s: already installed\n", set.Name)
			}
			continue
		}
		if !opts.Quiet && !st.Offline {
			fmt.Fprintf(io.ErrOut, "%s: fetching %s\n", set.Name, st.URL(set))
		}
		dir, err := st.Fetch(ctx, set)
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%w: fetch %s stopped; run zoo weights fetch %s again to resume the download", cmdutil.ErrInterrupted, set.Name, set.Name)
			}
			if len(sets) == 1 {
				return err
			}
			tw.Flush()
			fmt.Fprintln(io.ErrOut, cmdutil.Message(err))
			failed = append(failed, err)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", set.Name, dir)
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d weight sets failed to fetch (see above); fix the cause and run zoo weights fetch again", len(failed), len(sets))
	}
	return nil
}
