// Package list implements `zoo list`: every model every plugin serves.
package list

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/registry"
)

// Options are `zoo list`'s inputs.
type Options struct {
	F    *cmdutil.Factory
	JSON bool
}

// NewCmdList returns the command; runF replaces listRun in tests.
func NewCmdList(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every model the installed plugins serve",
		Example: `  zoo list
  zoo list --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(cmd, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON for scripts")
	return cmd
}

// Row is one model in `zoo list --json`.
type Row struct {
	Name       string   `json:"name"`
	Plugin     string   `json:"plugin"`
	Path       string   `json:"path"`
	Version    string   `json:"version"`
	Tasks      []string `json:"tasks"`
	WeightSets []string `json:"weight_sets"`
	// Shadowed names the plugins that also serve this model and lose to
	// Plugin, which was found first.
	Shadowed []string `json:"shadowed,omitempty"`
}

func listRun(cmd *cobra.Command, opts *Options) error {
	reg, err := opts.F.Registry()
	if err != nil {
		return err
	}
	models, all, err := reg.Survey(cmd.Context())
	if err != nil {
		return err
	}
	// A plugin zoo does not run is not an error of this command: it is
	// listed with the command that pins it.
	var problems []registry.Problem
	var unpinned []*registry.UnpinnedError
	for _, p := range all {
		var ue *registry.UnpinnedError
		if errors.As(p.Err, &ue) {
			unpinned = append(unpinned, ue)
		} else {
			problems = append(problems, p)
		}
	}
	rows := make([]Row, 0, len(models))
	for _, m := range models {
		rows = append(rows, toRow(m))
	}
	io := opts.F.IO
	if opts.JSON {
		enc := json.NewEncoder(io.Out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rows); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(io.Out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tPLUGIN\tVERSION\tTASKS\tWEIGHT SETS")
		for _, r := range rows {
			ws := strings.Join(r.WeightSets, ",")
			if ws == "" {
				ws = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, r.Plugin, r.Version, strings.Join(r.Tasks, ","), ws)
		}
		tw.Flush()
		for _, r := range rows {
			if len(r.Shadowed) > 0 {
				fmt.Fprintf(io.ErrOut, "note: %s is also served by %s; zoo uses %s (%s), found first\n",
					r.Name, strings.Join(r.Shadowed, ", "), r.Plugin, r.Path)
			}
		}
		if len(rows) == 0 && len(all) == 0 {
			fmt.Fprintln(io.ErrOut, "no plugins found: build them with `make`, or set ZOO_PLUGIN_PATH")
		}
	}
	for _, ue := range unpinned {
		p := ue.Plugin
		fmt.Fprintf(io.ErrOut, "unpinned: %s (%s) was not run: %s; to trust it, run `%s`\n", p.Name, p.Path, p.Unpinned, p.PinCommand())
	}
	if len(problems) > 0 {
		for _, p := range problems[1:] {
			fmt.Fprintln(io.ErrOut, cmdutil.Message(p.Err))
		}
		return errors.Join(problems[0].Err)
	}
	return nil
}

func toRow(m registry.Model) Row {
	r := Row{Name: m.Info.Name, Plugin: m.Plugin.Name, Path: m.Plugin.Path, Version: m.Info.Version, Tasks: m.Info.Tasks}
	for _, w := range m.Info.WeightSets {
		r.WeightSets = append(r.WeightSets, w.Name)
	}
	for _, p := range m.Shadowed {
		r.Shadowed = append(r.Shadowed, p.Name+" ("+p.Path+")")
	}
	return r
}
