package run

import (
	"context"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/registry"
)

// fetchSet returns the directory of the model's weight set for use, fetching
// it into the weights store when absent; "" when the model has none.
func fetchSet(ctx context.Context, f *cmdutil.Factory, m registry.Model, use string) (string, error) {
	for _, ws := range m.Info.WeightSets {
		if ws.Use == use {
			return f.FetchWeights(ctx, m.Info.Name, ws)
		}
	}
	return "", nil
}
