// Package weights implements `zoo weights`: fetch, list, path, verify,
// import and rm for the pretrained weight sets the plugins describe, kept
// in the weights store ($ZOO_WEIGHTS_DIR or ~/.paddle/weights).
package weights

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/weights"
)

// NewCmdWeights returns the `weights` command group.
func NewCmdWeights(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "weights",
		Short: "Fetch, list, verify, import and remove pretrained weight sets",
		Long: `weights manages the pretrained weight sets the plugins publish (zoo list shows
them), kept in $ZOO_WEIGHTS_DIR, else ~/.paddle/weights, where Paddle's own
scripts put them.

Downloads resume after an interruption, are checked against the pinned
sha256 (or the one recorded in zoo-weights.lock at the first download),
unpacked safely and installed atomically. zoo run fetches the sets it needs
on its own; these commands fetch ahead of time, check and clean up.

Environment: ZOO_WEIGHTS_DIR (the store), ZOO_WEIGHTS_MIRROR (a base URL that
replaces the directory part of every weight set's URL), ZOO_OFFLINE=1 (never
touch the network).`,
		Example: `  zoo weights fetch tsm_kinetics
  zoo weights list
  zoo weights import tsm_kinetics ~/Downloads/tsm_kinetics.tar.gz`,
	}
	cmd.PersistentFlags().StringVar(&f.WeightsMirror, "mirror", "", "base URL to fetch archives from instead of their own (default $ZOO_WEIGHTS_MIRROR)")
	cmd.AddCommand(
		NewCmdFetch(f, nil),
		NewCmdList(f, nil),
		NewCmdPath(f, nil),
		NewCmdVerify(f, nil),
		NewCmdImport(f, nil),
		NewCmdRm(f, nil),
		NewCmdInspect(f, nil),
		NewCmdConvert(f, nil),
	)
	return cmd
}

// knownSets returns every weight set of every model the plugins serve, in
// model order. Plugins that fail to start are logged, not fatal.
func knownSets(ctx context.Context, f *cmdutil.Factory) ([]weights.Set, error) {
	reg, err := f.Registry()
	if err != nil {
		return nil, err
	}
	models, problems, err := reg.Models(ctx)
	if err != nil {
		return nil, err
	}
	f.WarnProblems(problems)
	var sets []weights.Set
	for _, m := range models {
		for _, ws := range m.Info.WeightSets {
			sets = append(sets, cmdutil.WeightSet(m.Info.Name, ws))
		}
	}
	return sets, nil
}

// selectSets returns the sets args name: a set's name, or a model's name
// for all its sets, case-insensitively, each set once, in args' order. No
// args selects every set.
func selectSets(all []weights.Set, args []string) ([]weights.Set, error) {
	var out []weights.Set
	add := func(s weights.Set) {
		// Two models may share a set (TSM pretrains from the weights
		// ResNet evaluates with): one directory, fetched once, checked
		// for what every model reads from it.
		i := slices.IndexFunc(out, func(o weights.Set) bool { return o.Name == s.Name })
		if i < 0 {
			out = append(out, s)
			return
		}
		out[i] = mergeSets(out[i], s)
	}
	if len(args) == 0 {
		for _, s := range all {
			add(s)
		}
		return out, nil
	}
	for _, a := range args {
		found := false
		for _, s := range all {
			if strings.EqualFold(s.Name, a) {
				add(s)
				found = true
			}
		}
		if found {
			continue
		}
		for _, s := range all {
			if strings.EqualFold(s.Model, a) {
				add(s)
				found = true
			}
		}
		if !found {
			return nil, unknownSet(all, a)
		}
	}
	return out, nil
}

// mergeSets returns a with b's required variables and tensors added (a's
// spec wins where both name one).
func mergeSets(a, b weights.Set) weights.Set {
	a.Required = slices.Clone(a.Required)
	for _, r := range b.Required {
		if !slices.Contains(a.Required, r) {
			a.Required = append(a.Required, r)
		}
	}
	if len(b.Tensors) > 0 {
		m := make(map[string]weights.Spec, len(a.Tensors)+len(b.Tensors))
		for n, sp := range b.Tensors {
			m[n] = sp
		}
		for n, sp := range a.Tensors {
			m[n] = sp
		}
		a.Tensors = m
	}
	return a
}

// namedSet returns the weight set called name among every model's sets.
func namedSet(ctx context.Context, f *cmdutil.Factory, name string) (weights.Set, error) {
	all, err := knownSets(ctx, f)
	if err != nil {
		return weights.Set{}, err
	}
	return findSet(all, name)
}

// findSet returns the set named name (case-insensitive), merged over every
// model that publishes it.
func findSet(all []weights.Set, name string) (weights.Set, error) {
	var found []weights.Set
	for _, s := range all {
		if strings.EqualFold(s.Name, name) {
			found = append(found, s)
		}
	}
	if len(found) == 0 {
		return weights.Set{}, unknownSet(all, name)
	}
	set := found[0]
	for _, s := range found[1:] {
		set = mergeSets(set, s)
	}
	return set, nil
}

func unknownSet(all []weights.Set, name string) error {
	if len(all) == 0 {
		return fmt.Errorf("unknown weight set or model %q: the installed plugins publish no weight sets (zoo list shows the models)", name)
	}
	var names, models []string
	for _, s := range all {
		if !slices.Contains(names, s.Name) {
			names = append(names, s.Name)
		}
		if !slices.Contains(models, s.Model) {
			models = append(models, s.Model)
		}
	}
	return fmt.Errorf("unknown weight set or model %q: known weight sets are %s (of models %s)", name, strings.Join(names, ", "), strings.Join(models, ", "))
}

// oneName is the Args check of a verb that takes one weight set.
func oneName(verb string) cobra.PositionalArgs {
	return cmdutil.ExactArgs(1, fmt.Sprintf("%s needs one weight set, e.g. `zoo weights %s tsm_kinetics`", verb, verb))
}
