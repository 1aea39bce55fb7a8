package cmdutil

import (
	"context"
	"fmt"

	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

// WeightSet converts a weight set a plugin describes to the store's type.
// A tensor of a dtype zoo does not know keeps an invalid DType, which no
// file matches: the set then fails its check with the plugin's dtype named.
func WeightSet(model string, ws sdk.WeightSet) weights.Set {
	set := weights.Set{
		Name:     ws.Name,
		Model:    model,
		URL:      ws.URL,
		Dir:      ws.Dir,
		SHA256:   ws.SHA256,
		Use:      ws.Use,
		Required: append([]string(nil), ws.Required...),
	}
	if len(ws.Tensors) > 0 {
		set.Tensors = make(map[string]weights.Spec, len(ws.Tensors))
		for _, t := range ws.Tensors {
			dt, err := weights.ParseDType(t.DType)
			if err != nil {
				dt = -1
			}
			set.Tensors[t.Name] = weights.Spec{DType: dt, Dims: append([]int64(nil), t.Shape...)}
		}
	}
	return set
}

// WeightsStore returns the weights store: $ZOO_WEIGHTS_DIR (else
// ~/.paddle/weights), $ZOO_WEIGHTS_MIRROR (or the Factory's WeightsMirror)
// and ZOO_OFFLINE=1. With progress, fetches draw their progress on ErrOut.
func (f *Factory) WeightsStore(progress bool) *weights.Store {
	st := weights.FromEnv()
	if f.WeightsMirror != "" {
		st.Mirror = f.WeightsMirror
	}
	if progress {
		st.Progress = iostreams.NewByteProgress(f.IO.ErrOut, f.IO.ErrTTY).Event
	}
	return st
}

// FetchWeights returns the directory of a weight set in the weights store,
// downloading it first when it is absent. Its errors name the URL, the
// target directory and the `zoo weights import` command.
func (f *Factory) FetchWeights(ctx context.Context, model string, ws sdk.WeightSet) (string, error) {
	st := f.WeightsStore(true)
	set := WeightSet(model, ws)
	if st.Present(set) {
		return st.Path(set), nil
	}
	if !st.Offline {
		fmt.Fprintf(f.IO.ErrOut, "fetching weights %s for %s from %s into %s\n", set.Name, model, st.URL(set), st.Path(set))
	}
	return st.Fetch(ctx, set)
}
