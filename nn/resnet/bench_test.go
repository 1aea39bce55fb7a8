package resnet

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time so far. On a shared
// machine wall time per clip depends on the neighbours; CPU seconds per
// clip much less so, and wall time on an idle machine is about CPU time
// divided by the cores used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

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
	// the first pass allocates every buffer: keep it out of the timing
	if _, err := m.Forward(Eval, in, []int{0}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu0 time.Duration
	first := true
	for b.Loop() {
		if first {
			cpu0, first = cpuTime(b), false
		}
		if _, err := m.Forward(Eval, in, []int{0}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/clip")
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/clip")
}

// BenchmarkTSMR50TrainStep times forward, backward and a Momentum update
// on one clip.
func BenchmarkTSMR50TrainStep(b *testing.B) {
	m, in := benchModel(b, Train)
	defer m.Close()
	if _, err := m.TrainStep(in, []int{0}, 0.01); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var cpu0 time.Duration
	first := true
	for b.Loop() {
		if first {
			cpu0, first = cpuTime(b), false
		}
		if _, err := m.TrainStep(in, []int{0}, 0.01); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/clip")
	b.ReportMetric((cpuTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/clip")
}
