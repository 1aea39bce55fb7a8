package registry_test

import (
	"context"
	"testing"

	"github.com/zoo-ml/zoo/sdk"
)

// BenchmarkRunStep measures what the protocol adds to every training step:
// one streamed Step event from a real plugin process to the host, metrics
// map included. Compare it with a model's step time (TSM-R50, batch 1: about
// a second on a CPU) for the driver's overhead.
func BenchmarkRunStep(b *testing.B) {
	c := launchB(b, "two")
	ctx := context.Background()
	cfg := sdk.Config{"TRAIN": {"steps": float64(b.N), "batch_size": 1.0, "learning_rate": 0.1, "nan_at": -1.0}}
	s, _, err := c.Open(ctx, sdk.OpenRequest{Model: "Alpha", Mode: "train", Config: cfg})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	n := 0
	for e, err := range s.Run(ctx, sdk.RunRequest{Phase: "train"}) {
		if err != nil {
			b.Fatal(err)
		}
		if e.Step != nil {
			n++
		}
	}
	b.StopTimer()
	if n != b.N {
		b.Fatalf("%d steps, want %d", n, b.N)
	}
}

// BenchmarkInferClip sends one 8x3x224x224 float32 clip (4.8 MB) to a
// plugin and back: the cost of the Infer capability per clip.
func BenchmarkInferClip(b *testing.B) {
	c := launchB(b, "two")
	ctx := context.Background()
	s, _, err := c.Open(ctx, sdk.OpenRequest{Model: "Alpha", Mode: "infer"})
	if err != nil {
		b.Fatal(err)
	}
	in := sdk.Tensor{Shape: []int64{8, 3, 224, 224}, Data: make([]float32, 8*3*224*224)}
	b.SetBytes(int64(4 * len(in.Data)))
	for b.Loop() {
		if _, err := s.Infer(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
}
