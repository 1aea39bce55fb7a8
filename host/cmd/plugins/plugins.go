// Package plugins implements `zoo plugins list` and `zoo plugins install`.
package plugins

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmd/run"
	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/registry"
)

// NewCmdPlugins returns the `plugins` command group.
func NewCmdPlugins(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "List and install plugin executables",
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdInstall(f, nil))
	return cmd
}

// ListOptions are `zoo plugins list`'s inputs.
type ListOptions struct{ F *cmdutil.Factory }

// NewCmdList returns `zoo plugins list`.
func NewCmdList(f *cmdutil.Factory, runF func(*ListOptions) error) *cobra.Command {
	opts := &ListOptions{F: f}
	return &cobra.Command{
		Use:   "list",
		Short: "List plugin executables, where they were found and how they are pinned",
		Long: `list shows every zoo-plugin-NAME file zoo finds and what pins it: build
(zoo was built with its sha256 by make), lock (zoo plugins install), or
same build (beside zoo, a Go build of zoo's own module at zoo's version, as
go install makes). zoo never runs an unpinned or changed file; list names
the command that pins it. It runs no plugin.`,
		Example: "  zoo plugins list",
		Args:    cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return listRun(opts)
		},
	}
}

func listRun(opts *ListOptions) error {
	reg, err := opts.F.Registry()
	if err != nil {
		return err
	}
	ps, err := reg.Discover()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(opts.F.IO.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PLUGIN\tSOURCE\tPIN\tPATH")
	for _, p := range ps {
		pin := "unpinned, not run"
		switch {
		case p.Changed != nil:
			pin = fmt.Sprintf("%x (%s), CHANGED: not run", p.Pin[:6], p.PinFrom)
		case p.Pin != nil:
			pin = fmt.Sprintf("%x (%s)", p.Pin[:6], p.PinFrom)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Name, p.Source, pin, p.Path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range ps {
		switch {
		case p.Pin == nil:
			fmt.Fprintf(opts.F.IO.ErrOut, "unpinned: %s: %s; to trust it, run `%s`\n", p.Name, p.Unpinned, p.PinCommand())
		case p.Changed != nil:
			fmt.Fprintf(opts.F.IO.ErrOut, "changed: %s differs from its pin; if that is on purpose, run `%s`\n", p.Name, p.PinCommand())
		}
	}
	return nil
}

// InstallOptions are `zoo plugins install`'s inputs.
type InstallOptions struct {
	F       *cmdutil.Factory
	Path    string
	InPlace bool
}

// NewCmdInstall returns `zoo plugins install PATH`.
func NewCmdInstall(f *cmdutil.Factory, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{F: f}
	cmd := &cobra.Command{
		Use:   "install PATH",
		Short: "Copy a plugin into $ZOO_HOME/plugins and pin its sha256",
		Long: `install checks that PATH is a zoo plugin that serves at least one model,
copies it into $ZOO_HOME/plugins (default ~/.zoo/plugins) and records its
sha256 in $ZOO_HOME/plugins.lock.json. With --in-place it pins the file
where it is instead: beside zoo, in a $ZOO_PLUGIN_PATH directory, or a
bundled plugin you changed on purpose. zoo refuses to start a pinned plugin
whose file has changed; run install again to pin a rebuilt one.`,
		Example: `  zoo plugins install ./zoo-plugin-mymodel
  zoo plugins install --in-place /opt/zoo/plugins/zoo-plugin-mymodel`,
		Args: cmdutil.ExactArgs(1, "install needs the path of one plugin executable, e.g. `zoo plugins install ./zoo-plugin-mymodel`"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Path = args[0]
			if runF != nil {
				return runF(opts)
			}
			reg, err := opts.F.Registry()
			if err != nil {
				return err
			}
			p, models, err := reg.Install(cmd.Context(), opts.Path, opts.InPlace, func(m registry.Model) error {
				return run.CheckModel(m.Plugin.Name, m.Info)
			})
			if err != nil {
				return err
			}
			var names []string
			for _, m := range models {
				names = append(names, m.Info.Name)
			}
			fmt.Fprintf(opts.F.IO.Out, "installed %s at %s (sha256 %x), serving %s\n", p.Name, p.Path, p.Pin, strings.Join(names, ", "))
			// A file of the same name found earlier (beside zoo, in
			// $ZOO_PLUGIN_PATH) is the one zoo would use.
			ps, err := reg.Discover()
			if err != nil {
				return err
			}
			for _, q := range ps {
				if q.Name == p.Name && q.Path != p.Path {
					fmt.Fprintf(opts.F.IO.ErrOut, "note: zoo uses %s, found first, not this copy: remove it, or run `%s` to pin it instead\n", q.Path, q.PinCommand())
				}
			}
			warnShadows(cmd.Context(), opts.F, reg, p, models)
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.InPlace, "in-place", false, "pin the file where it is instead of copying it")
	return cmd
}

// warnShadows says when a model the new plugin serves has a name another
// plugin serves too: only the one found first runs (docs/plugins.md, "Bad
// plugins"), so `zoo run NAME` may not reach the plugin just installed.
func warnShadows(ctx context.Context, f *cmdutil.Factory, reg *registry.Registry, p registry.Plugin, models []registry.Model) {
	all, _, err := reg.Models(ctx)
	if err != nil {
		return
	}
	for _, m := range models {
		for _, o := range all {
			if !strings.EqualFold(o.Info.Name, m.Info.Name) {
				continue
			}
			if o.Plugin.Path != p.Path {
				fmt.Fprintf(f.IO.ErrOut, "warning: model %s is also served by %s (%s), found first: `zoo run %s` uses that one; rename the model, or remove the other plugin\n",
					m.Info.Name, o.Plugin.Name, o.Plugin.Path, m.Info.Name)
			}
			for _, s := range o.Shadowed {
				if s.Path != p.Path {
					fmt.Fprintf(f.IO.ErrOut, "warning: model %s shadows the model of that name served by %s (%s), found later, which zoo no longer runs\n",
						m.Info.Name, s.Name, s.Path)
				}
			}
		}
	}
}
