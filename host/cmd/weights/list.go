package weights

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
)

// ListOptions are `zoo weights list`'s inputs.
type ListOptions struct {
	F    *cmdutil.Factory
	JSON bool
}

// NewCmdList returns `zoo weights list`; runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{F: f}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every weight set: model, use, whether installed, size, verified, path",
		Long: `list shows every weight set the plugins publish and its state in the store.
It never touches the network. VERIFIED is "yes" when every file parses and
matches the digest recorded when zoo installed it, "FAILED" when not (zoo
weights verify NAME says why), "unknown" for a set installed outside zoo (no
digest recorded) and "-" when the set is not installed.`,
		Example: `  zoo weights list
  zoo weights list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return listRun(cmd.Context(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON for scripts")
	return cmd
}

// Row is one weight set in `zoo weights list --json`.
type Row struct {
	Name     string `json:"name"`
	Model    string `json:"model"`
	Use      string `json:"use"`
	URL      string `json:"url"`
	Present  bool   `json:"present"`
	Size     int64  `json:"size"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
	Path     string `json:"path"`
}

func listRun(ctx context.Context, opts *ListOptions) error {
	all, err := knownSets(ctx, opts.F)
	if err != nil {
		return err
	}
	st := opts.F.WeightsStore(false)
	stats, err := st.List(ctx, all)
	if err != nil {
		return err
	}
	rows := make([]Row, 0, len(stats))
	for _, s := range stats {
		r := Row{Name: s.Set.Name, Model: s.Set.Model, Use: s.Set.Use, URL: st.URL(s.Set),
			Present: s.Present, Size: s.Size, Verified: s.Verified, Path: s.Path}
		if s.Problem != nil {
			r.Problem = strings.TrimPrefix(cmdutil.Message(s.Problem), "zoo: ")
		}
		rows = append(rows, r)
	}
	io := opts.F.IO
	if opts.JSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tMODEL\tUSE\tPRESENT\tSIZE\tVERIFIED\tPATH")
	var failed []string
	for _, r := range rows {
		present, size, verified := "no", "-", "-"
		if r.Present {
			present, size = "yes", iostreams.HumanBytes(r.Size)
			switch {
			case r.Verified:
				verified = "yes"
			case r.Problem != "":
				verified = "FAILED"
				failed = append(failed, r.Name)
			default:
				verified = "unknown"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Model, r.Use, present, size, verified, r.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rows) == 0 {
		fmt.Fprintln(io.ErrOut, "no weight sets: the installed plugins publish none (zoo list shows the models)")
	}
	for _, n := range failed {
		fmt.Fprintf(io.ErrOut, "%s failed verification: run zoo weights verify %s for details\n", n, n)
	}
	return nil
}
