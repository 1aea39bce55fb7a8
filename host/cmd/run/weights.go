package run

import (
	"context"
	"fmt"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/registry"
	"github.com/zoo-ml/zoo/sdk"
)

// fetchSet returns the directory of the model's weight set for use, fetching
// it into the weights store when absent; "" when the model has none.
func fetchSet(ctx context.Context, f *cmdutil.Factory, m registry.Model, use string) (string, error) {
	for _, ws := range m.Info.WeightSets {
		if ws.Use != use {
			continue
		}
		dir, err := f.FetchWeights(ctx, m.Info.Name, ws)
		if err != nil && ctx.Err() == nil {
			// The store's error names the URL, the directory and `zoo
			// weights import`; the flag is the other way out.
			flag := "weights"
			if use == sdk.UsePretrain {
				flag = "pretrain"
			}
			return "", fmt.Errorf("%w; or pass --%s DIR", err, flag)
		}
		return dir, err
	}
	return "", nil
}
