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
// A set the store lacks is first checked against the configured network
// (o.fits), when the run gives a check.
func fetchSet(ctx context.Context, f *cmdutil.Factory, m registry.Model, o *Options, use string) (string, error) {
	for _, ws := range m.Info.WeightSets {
		if ws.Use != use {
			continue
		}
		if o.fits != nil && !f.WeightsStore(false).Present(cmdutil.WeightSet(m.Info.Name, ws)) {
			if err := o.fits(ctx, ws); err != nil {
				return "", err
			}
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
