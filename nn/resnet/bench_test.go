package resnet

import (
	"testing"
)

// benchModel is Paddle's TSM-ResNet-50 at its published input: one clip of
// 8 segments at 224x224, float32.
func benchModel(b *testing.B, mode Mode) (*Model, []float32) {
	b.Helper()
	m, err := New(Config{Depth: 50, NumClasses: 400, SegNum: 8, TemporalShift: true, BatchSize: 1, Height: 224, Width: 224})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Build(mode); err != nil {
		b.Fatal(err)
	}
	return m, randomInput(m.Config().InputSize(), 1)
}

// BenchmarkTSMR50Forward times one evaluation pass per clip.
func BenchmarkTSMR50Forward(b *testing.B) {
	m, in := benchModel(b, Eval)
	defer m.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Forward(Eval, in, []int{0}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/clip")
}

// BenchmarkTSMR50TrainStep times forward, backward and a Momentum update
// on one clip.
func BenchmarkTSMR50TrainStep(b *testing.B) {
	m, in := benchModel(b, Train)
	defer m.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.TrainStep(in, []int{0}, 0.01); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/clip")
}
