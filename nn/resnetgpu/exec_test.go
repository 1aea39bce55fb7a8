//go:build zoocuda

package resnetgpu

import (
	"io"
	"os"
	"testing"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// TestGraphExecutorOnEmulator runs resnet.Model's own graphs (eval, and
// one training step: forward, G.Grad's gradient nodes, Momentum) through
// nn/cuda's executor, the kernels on the CPU emulator and cuBLAS replaced
// by a reference gemm, against the same graphs on gorgonia's tape
// machine: the TSM-R18 demo network (small), a TSM-R50 (the bottleneck
// network, narrow) and the ResNet image plugin's graph (one frame, no
// shift, no dropout). Eval logits within 1e-5, the training loss within
// 1e-4, one step's parameter and running-statistic updates within 1e-3
// (narrow nets normalise over few values, which amplifies the emulator's
// double-accumulating gemm differing from OpenBLAS's float one).
func TestGraphExecutorOnEmulator(t *testing.T) {
	dir := t.TempDir()
	emu, err := cuda.OpenEmulator(dir)
	if err != nil {
		t.Fatalf("kernel emulator: %v", err)
	}
	// 4-thread reduction blocks: 256 emulated threads a channel take minutes
	emu.SetEmulatorBlock(4)
	small := resnet.SmallConfig(10)
	small.BatchSize, small.SegNum, small.Height, small.Width = 1, 4, 32, 32
	for _, tc := range []struct {
		name string
		cfg  resnet.Config
	}{
		{"tsm-r18-small", small},
		{"tsm-r50", resnet.Config{Depth: 50, NumClasses: 7, SegNum: 4, TemporalShift: true, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Seed: 3}},
		{"resnet-plugin", resnet.Config{Depth: 18, NumClasses: 5, SegNum: 1, NoDropout: true, BaseWidth: 8, BatchSize: 2, Height: 32, Width: 32, Seed: 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := Check(emu, tc.name, tc.cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("logits %.3g, loss %.3g, update %.3g (worst: %s)", r.LogitsErr, r.LossErr, r.UpdateErr, r.WorstParam)
			if r.LogitsErr > 1e-5 || r.LossErr > 1e-4 || r.UpdateErr > Tolerance {
				t.Errorf("logits %.3g (want <= 1e-5), loss %.3g (1e-4), update %.3g (want <= %g; worst: %s)", r.LogitsErr, r.LossErr, r.UpdateErr, Tolerance, r.WorstParam)
			}
		})
	}
	_ = os.RemoveAll(dir)
}
