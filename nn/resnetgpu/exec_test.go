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
// by a reference gemm, against the same graphs on the CPU (resnet.Model's
// own executor, nn/exec): the TSM-R18 demo network (small), a TSM-R50 (the bottleneck
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

// TestGradientsRoundTrip: the data-parallel step's device side. Forward
// (train) then DownloadGradients leaves the device's gradients in the
// model's Grad tensors; Update uploads them back and applies Momentum.
// Unchanged gradients give exactly TrainStep's parameters and
// velocities; gradients doubled on the host give the update of a doubled
// gradient (what an allreduce's sum changes).
func TestGradientsRoundTrip(t *testing.T) {
	emu, err := cuda.OpenEmulator(t.TempDir())
	if err != nil {
		t.Fatalf("kernel emulator: %v", err)
	}
	emu.SetEmulatorBlock(4)
	cfg := resnet.Config{Depth: 18, NumClasses: 5, SegNum: 2, TemporalShift: true, NoDropout: true, BaseWidth: 4, BatchSize: 2, Height: 32, Width: 32, Seed: 5}
	input := make([]float32, cfg.InputSize())
	for i := range input {
		input[i] = float32(i%17)/17 - 0.5
	}
	labels := []int{1, 3}
	// run trains one step with scale times the gradients and returns
	// every trainable parameter and velocity.
	run := func(split bool, scale float32) [][]float32 {
		m, err := resnet.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		g, err := New(emu, m)
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if !split {
			if _, err := g.TrainStep(input, labels, 0.1); err != nil {
				t.Fatal(err)
			}
		} else {
			if _, err := g.Forward(resnet.Train, input, labels); err != nil {
				t.Fatal(err)
			}
			if err := g.DownloadGradients(); err != nil {
				t.Fatal(err)
			}
			for _, v := range m.Vars() {
				for i := range v.Grad.Float32s() {
					v.Grad.Float32s()[i] *= scale
				}
			}
			if err := g.Update(0.1); err != nil {
				t.Fatal(err)
			}
		}
		if err := g.Download(m); err != nil {
			t.Fatal(err)
		}
		var out [][]float32
		for _, v := range m.Vars() {
			out = append(out, append([]float32(nil), v.Value.Float32s()...), append([]float32(nil), m.Optimizer().Velocity(v.Name).Float32s()...))
		}
		return out
	}
	whole, split := run(false, 1), run(true, 1)
	for i := range whole {
		for j := range whole[i] {
			if whole[i][j] != split[i][j] {
				t.Fatalf("tensor %d [%d]: %v after TrainStep, %v after Forward, DownloadGradients, Update", i, j, whole[i][j], split[i][j])
			}
		}
	}
	doubled := run(true, 2)
	changed := 0
	for i := 1; i < len(whole); i += 2 { // velocities: mu*0 + grad (+ decay)
		for j := range whole[i] {
			if whole[i][j] != doubled[i][j] {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Error("doubling the gradients on the host changed no velocity: Update did not upload them")
	}
}
