//go:build zoocuda

package cuda

import (
	"io"
	"testing"

	"github.com/zoo-ml/zoo/nn/resnet"
)

// TestModelOnHost runs Model on the host backend (nn/ops's CPU kernels in
// place of the GPU's) against resnet.Model's gorgonia graphs: it checks
// Model's wiring (layer order, buffers, the backward pass, dropout masks,
// running statistics, Momentum) on machines without a GPU. Both sides run
// the same conv and BN kernels, so the tolerance is ten times tighter than
// the GPU check's; what differs is summation order (the fc's gradients are
// plain loops here, gemm there), amplified a little by BN's backward pass.
func TestModelOnHost(t *testing.T) {
	t.Parallel()
	small := resnet.SmallConfig(10)
	small.BatchSize = 2
	small.Height, small.Width = 32, 32
	for _, tc := range []struct {
		name string
		cfg  resnet.Config
	}{
		{"small", small},
		{"bottleneck", resnet.Config{Depth: 50, NumClasses: 7, SegNum: 4, TemporalShift: true, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Seed: 3}},
		{"tsn-nodropout", resnet.Config{Depth: 18, NumClasses: 5, SegNum: 3, BaseWidth: 4, BatchSize: 1, Height: 24, Width: 24, NoDropout: true, Seed: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := check(host{}, tc.name, tc.cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			const tol = 1e-4
			if r.LogitsErr > tol || r.LossErr > tol || r.UpdateErr > tol {
				t.Errorf("logits %.3g, loss %.3g, update %.3g (worst: %s); want all <= %g", r.LogitsErr, r.LossErr, r.UpdateErr, r.WorstParam, tol)
			}
		})
	}
}
