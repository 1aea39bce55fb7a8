package run

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

// fitCheck says whether a published weight set fits the configured
// network; ResolveWeights calls it (Options.fits) before downloading a set
// the store lacks, so a set that cannot be loaded is never fetched.
type fitCheck func(ctx context.Context, ws sdk.WeightSet) error

// networkFits returns the fitCheck of a run: the plugin builds the
// configured network in a session of its own, with no weights, and saves
// its freshly initialised parameters into a temporary directory, whose
// file headers say every variable's name, dtype and shape; each variable
// the set publishes (WeightSet.Tensors) must be there with its shape.
// It costs one initialisation of the network, and only runs before a
// download.
func networkFits(client *sdk.Client, cfg config.Config, o *Options, m sdk.ModelInfo) fitCheck {
	model := m.Name
	return func(ctx context.Context, ws sdk.WeightSet) error {
		if len(ws.Tensors) == 0 {
			return nil
		}
		tmp, err := os.MkdirTemp("", "zoo-fit-")
		if err != nil {
			return fmt.Errorf("check weight set %s: %w", ws.Name, err)
		}
		defer os.RemoveAll(tmp)
		sess, _, err := client.Open(ctx, sdk.OpenRequest{
			Model: model, Mode: o.Mode, Config: PluginConfig(m, cfg), SaveDir: tmp, Device: "cpu", WorldSize: 1, Seed: o.Seed,
		})
		if err != nil {
			return fmt.Errorf("open %s: %w", model, err)
		}
		err = sess.Save(ctx, tmp)
		if cerr := sess.Close(context.WithoutCancel(ctx)); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("check weight set %s against the configured network: %w", ws.Name, err)
		}
		set := cmdutil.WeightSet(model, ws)
		_, err = weights.Check(tmp, set.Tensors)
		var me *weights.MismatchError
		if !errors.As(err, &me) {
			return err
		}
		return misfit(ws, o, me, tmp)
	}
}

// misfit words a set that does not fit: the first variable whose shape
// differs, how many more do, how many of the set's variables the network
// lacks, and the ways out.
func misfit(ws sdk.WeightSet, o *Options, me *weights.MismatchError, tmp string) error {
	var parts []string
	if len(me.Wrong) > 0 {
		// "weights: NAME in DIR: shape NET, want SET"
		w := strings.TrimPrefix(me.Wrong[0], "weights: ")
		w = strings.Replace(w, " in "+tmp+":", ":", 1)
		w = strings.Replace(w, ": shape ", ": the network's shape ", 1)
		w = strings.Replace(w, ", want ", ", the set's ", 1)
		w = strings.Replace(w, ": dtype ", ": the network's dtype ", 1)
		if n := len(me.Wrong) - 1; n > 0 {
			w += fmt.Sprintf(" (and %d more)", n)
		}
		parts = append(parts, w)
	}
	if n := len(me.Missing); n > 0 {
		parts = append(parts, fmt.Sprintf("%d of its %d variables are not in the network (%s ...)", n, len(ws.Tensors), me.Missing[0]))
	}
	way := "pass --weights DIR"
	if ws.Use == sdk.UsePretrain {
		way = "pass --pretrain none to train from fresh weights, or --pretrain DIR"
	}
	from := "the model's published configuration"
	if o.Config != "" {
		from = o.Config
	}
	return fmt.Errorf("weight set %s does not fit the network %s configures: %s; not downloaded: %s", ws.Name, from, strings.Join(parts, "; "), way)
}
