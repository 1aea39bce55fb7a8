// Package info implements `zoo info MODEL`: everything a plugin says of a model.
package info

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmd/run"
	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// Options are `zoo info`'s inputs.
type Options struct {
	F     *cmdutil.Factory
	Model string
	JSON  bool
}

// NewCmdInfo returns the command; runF replaces infoRun in tests.
func NewCmdInfo(f *cmdutil.Factory, runF func(*Options) error) *cobra.Command {
	opts := &Options{F: f}
	cmd := &cobra.Command{
		Use:   "info MODEL",
		Short: "Show a model's tasks, weight sets, labels and config keys",
		Example: `  zoo info TSM
  zoo info tsm --json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Model = args[0]
			if runF != nil {
				return runF(opts)
			}
			m, err := opts.F.FindModel(cmd.Context(), opts.Model)
			if err != nil {
				return err
			}
			if err := run.CheckModel(m.Plugin.Name, m.Info); err != nil {
				return err
			}
			return infoRun(opts, m)
		},
	}
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON for scripts")
	return cmd
}

func infoRun(opts *Options, m registry.Model) error {
	out := opts.F.IO.Out
	if opts.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Model         any    `json:"model"`
			Plugin        string `json:"plugin"`
			Path          string `json:"path"`
			ProtocolMinor uint32 `json:"protocol_minor"`
		}{m.Info, m.Plugin.Name, m.Plugin.Path, m.Minor})
	}
	i := m.Info
	pin := fmt.Sprintf("sha256 %x (pinned by %s)", m.Plugin.Pin[:6], m.Plugin.PinFrom)
	if m.Plugin.PinFrom == registry.PinSameBuild {
		pin = fmt.Sprintf("sha256 %x (beside zoo, built from zoo's module at zoo's version)", m.Plugin.Pin[:6])
	}
	fmt.Fprintf(out, "%s %s\n", i.Name, i.Version)
	if i.Description != "" {
		fmt.Fprintf(out, "  %s\n", i.Description)
	}
	fmt.Fprintf(out, "plugin:  %s (%s)\n         %s\n", m.Plugin.Path, m.Plugin.Source, pin)
	fmt.Fprintf(out, "protocol: %d.%d", sdk.ProtocolVersion, m.Minor)
	if lack := sdk.FeaturesAfter(m.Minor); len(lack) > 0 {
		fmt.Fprintf(out, " (older than zoo's %d.%d: no %s)", sdk.ProtocolVersion, sdk.ProtocolMinor, strings.Join(lack, ", no "))
	}
	fmt.Fprintln(out)
	fmt.Fprintf(out, "tasks:   %s\n", strings.Join(i.Tasks, ", "))
	fmt.Fprintf(out, "labels:  %d", len(i.Labels))
	if n := len(i.Labels); n > 0 {
		fmt.Fprintf(out, " (%s ... %s)", i.Labels[0], i.Labels[n-1])
	}
	fmt.Fprintln(out)
	if len(i.WeightSets) > 0 {
		fmt.Fprintln(out, "\nweight sets:")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tUSE\tSHA256\tURL")
		for _, w := range i.WeightSets {
			sum := w.SHA256
			if sum == "" {
				sum = "unknown (pinned on first fetch)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", w.Name, w.Use, sum, w.URL)
		}
		tw.Flush()
	}
	if len(i.Config) > 0 {
		fmt.Fprintln(out, "\nconfig keys (override with --set SECTION.key=value):")
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		for _, k := range i.Config {
			def, _ := json.Marshal(k.Default)
			fmt.Fprintf(tw, "  %s.%s\t%s\t%s\t%s\n", k.Section, k.Name, k.Type, def, k.Help)
		}
		tw.Flush()
	}
	return nil
}
