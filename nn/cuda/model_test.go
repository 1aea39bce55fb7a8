//go:build zoocuda

package cuda

import (
	"io"
	"os"
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
	for _, tc := range modelCases() {
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

// TestModelOnEmulator runs the whole GPU code path (Model, ops.go's
// launches and gemm calls, the kernels) with the kernels on the CPU
// emulator and cuBLAS replaced by a reference gemm, against
// resnet.Model: everything zoo-gpucheck does except real CUDA.
//
// The narrow test networks (4 channels) normalise over a handful of values,
// which amplifies the emulator's gemm (double accumulation) differing from
// the CPU's (float): updates differ by up to 6e-4 here, so the bound is the
// GPU check's own. The small config is left out: emulated, it takes minutes.
func TestModelOnEmulator(t *testing.T) {
	for _, tc := range modelCases()[1:] {
		t.Run(tc.name, func(t *testing.T) {
			emuOnce.Do(func() {
				if emuDir, emuErr = os.MkdirTemp("", "zoo-emu"); emuErr == nil {
					testEmu, emuErr = OpenEmulator(emuDir)
				}
			})
			if emuErr != nil {
				t.Skipf("no kernel emulator: %v", emuErr)
			}
			// a copy with 4-thread reduction blocks: 256 emulated threads
			// a channel make the model test take minutes
			emu := *testEmu
			emu.emuBlock = 4
			r, err := check(&emu, tc.name, tc.cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if r.LogitsErr > 1e-4 || r.LossErr > 1e-4 || r.UpdateErr > Tolerance {
				t.Errorf("logits %.3g, loss %.3g, update %.3g (worst: %s)", r.LogitsErr, r.LossErr, r.UpdateErr, r.WorstParam)
			}
			t.Logf("logits %.3g, loss %.3g, update %.3g (worst: %s)", r.LogitsErr, r.LossErr, r.UpdateErr, r.WorstParam)
		})
	}
}

type modelCase struct {
	name string
	cfg  resnet.Config
}

func modelCases() []modelCase {
	small := resnet.SmallConfig(10)
	small.BatchSize = 2
	small.Height, small.Width = 32, 32
	return []modelCase{
		{"small", small},
		{"bottleneck", resnet.Config{Depth: 50, NumClasses: 7, SegNum: 4, TemporalShift: true, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Seed: 3}},
		{"tsn-nodropout", resnet.Config{Depth: 18, NumClasses: 5, SegNum: 3, BaseWidth: 4, BatchSize: 1, Height: 24, Width: 24, NoDropout: true, Seed: 5}},
	}
}
