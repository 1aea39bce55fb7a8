//go:build zoocuda

package resnet

import (
	"context"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

// TestGPUSessionMatchesCPU trains and validates the tiny ResNet with
// Device "gpu" (the device choice TSM uses, plugins/internal/classifier)
// on nn/cuda's kernel emulator and on the CPU, compares the losses step
// by step, then checks Save after training writes the GPU's parameters.
func TestGPUSessionMatchesCPU(t *testing.T) {
	t.Setenv("ZOO_CUDA_EMULATOR", t.TempDir())
	cpu := openTiny(t, sdk.ModeTrain, nil, nil)
	g, _, err := open(context.Background(), sdk.OpenRequest{Model: "ResNet", Mode: sdk.ModeTrain, Device: "gpu", Config: tinyConfig(nil), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	steps := 0
	for _, phase := range []string{sdk.PhaseTrain, sdk.PhaseValid} {
		ce, ge := collect(t, cpu, sdk.RunRequest{Phase: phase}), collect(t, g, sdk.RunRequest{Phase: phase})
		if len(ce) != len(ge) {
			t.Fatalf("%s: %d events on the CPU, %d on the GPU", phase, len(ce), len(ge))
		}
		for i := range ce {
			if ce[i].Step == nil {
				continue
			}
			steps++
			c, gl := ce[i].Step.Metrics["loss"], ge[i].Step.Metrics["loss"]
			if math.Abs(c-gl) > 1e-3*math.Abs(c) {
				t.Errorf("%s step %d: loss %v on the GPU, %v on the CPU", phase, i, gl, c)
			}
		}
	}
	if steps == 0 {
		t.Fatal("no steps compared")
	}
	dg := t.TempDir()
	if err := g.Save(context.Background(), dg); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dg, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("GPU session saved nothing in %s (%v)", dg, err)
	}
}

// TestGPUSessionMicroBatches: TRAIN.micro_batches=2 with Device "gpu"
// (the kernel emulator) runs classifier.Stepper's step on the GPU, the
// gradients through host memory: losses step by step and the saved
// trainable parameters and velocities match the CPU session's with
// micro_batches 2 within 1e-3 relative (docs/gpu.md). Before, Open
// refused --use_gpu with micro-batches.
func TestGPUSessionMicroBatches(t *testing.T) {
	t.Setenv("ZOO_CUDA_EMULATOR", t.TempDir())
	// 64x64 images, 2 a part: the last stage's batch norm normalises
	// over 8 values a channel (over one, at the tiny job's 32x32 and 1
	// image a part, its gradients are rounding noise times 1/sqrt(eps),
	// and no two machines agree on them)
	over := map[string]map[string]any{"TRAIN": {"micro_batches": 2, "batch_size": 4, "short_size": 64, "target_size": 64},
		"VALID": {"short_size": 64, "target_size": 64}, "SYNTHETIC": {"train_images": 8}}
	cpu := openTiny(t, sdk.ModeTrain, over, nil)
	g, _, err := open(context.Background(), sdk.OpenRequest{Model: "ResNet", Mode: sdk.ModeTrain, Device: "gpu", Config: tinyConfig(over), Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	req := sdk.RunRequest{Phase: sdk.PhaseTrain}
	ce, ge := collect(t, cpu, req), collect(t, g, req)
	steps := 0
	for i := range ce {
		if ce[i].Step == nil {
			continue
		}
		steps++
		c, gl := ce[i].Step.Metrics["loss"], ge[i].Step.Metrics["loss"]
		if math.Abs(c-gl) > 1e-3*math.Abs(c) {
			t.Errorf("step %d: loss %v on the GPU, %v on the CPU", i, gl, c)
		}
	}
	if steps < 2 {
		t.Fatalf("%d train steps", steps)
	}
	dc, dg := t.TempDir(), t.TempDir()
	if err := cpu.Save(context.Background(), dc); err != nil {
		t.Fatal(err)
	}
	if err := g.Save(context.Background(), dg); err != nil {
		t.Fatal(err)
	}
	pc, err := weights.ReadParams(dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := weights.ReadParams(dg, nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*weights.Tensor{}
	for _, x := range pg.Tensors {
		byName[x.Name] = x
	}
	n, worst := 0, 0.0
	for _, x := range pc.Tensors {
		if strings.HasSuffix(x.Name, "_mean") || strings.HasSuffix(x.Name, "_variance") {
			continue
		}
		y := byName[x.Name]
		if y == nil {
			t.Fatalf("%s not saved by the GPU session", x.Name)
		}
		xv, err1 := x.Float32s()
		yv, err2 := y.Float32s()
		if err1 != nil || err2 != nil || len(xv) != len(yv) {
			t.Fatalf("%s: %v %v", x.Name, err1, err2)
		}
		var d, m float64
		for i := range xv {
			d = math.Max(d, math.Abs(float64(xv[i]-yv[i])))
			m = math.Max(m, math.Abs(float64(xv[i])))
		}
		if r := d / math.Max(m, 1e-12); r > 1e-3 {
			t.Logf("%s: %.2g", x.Name, r)
		}
		worst = math.Max(worst, d/math.Max(m, 1e-12))
		n++
	}
	t.Logf("micro_batches=2, GPU emulator against CPU: %d trainable tensors, largest relative difference %.2g", n, worst)
	if n < 20 || worst > 1e-3 {
		t.Errorf("%d tensors compared, largest relative difference %.2g (bound 1e-3)", n, worst)
	}
}
