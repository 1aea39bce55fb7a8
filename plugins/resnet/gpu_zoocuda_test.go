//go:build zoocuda

package resnet

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
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
