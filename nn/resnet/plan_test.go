package resnet

import (
	"math"
	"runtime"
	"testing"
)

// TestPlannedMatchesTapeMachine: the graphs run with planned memory
// (nn/exec) give bit for bit what gorgonia's TapeMachine gives with a
// buffer per op: evaluation, two training steps (probabilities, loss,
// gradients, updated parameters and running statistics) and evaluation
// again, with the two graphs sharing the model's arena. A plan that
// reused a value's memory before its last reader (the backward pass's
// reads of forward values included) would change them.
func TestPlannedMatchesTapeMachine(t *testing.T) {
	for _, c := range []Config{
		{Depth: 50, NumClasses: 7, SegNum: 4, TemporalShift: true, BaseWidth: 8, BatchSize: 2, Height: 32, Width: 32, Seed: 3},
		{Depth: 18, NumClasses: 7, SegNum: 4, TemporalShift: true, BaseWidth: 8, BatchSize: 2, Height: 32, Width: 32, Seed: 4,
			InvertedDropout: true, LogitConsensus: true},
	} {
		planned, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		tape, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		tape.tape = true
		in := randomInput(c.InputSize(), 9)
		labels := []int{1, 5}
		steps := []func(m *Model) (Result, error){
			func(m *Model) (Result, error) { return m.Forward(Eval, in, labels) },
			func(m *Model) (Result, error) { return m.TrainStep(in, labels, 0.1) },
			func(m *Model) (Result, error) { return m.TrainStep(in, []int{3, 0}, 0.1) },
			func(m *Model) (Result, error) { return m.Forward(Eval, in, nil) },
		}
		for i, step := range steps {
			planned.SeedDropout(int64(i))
			tape.SeedDropout(int64(i))
			got, err := step(planned)
			if err != nil {
				t.Fatal(err)
			}
			want, err := step(tape)
			if err != nil {
				t.Fatal(err)
			}
			if math.Float64bits(got.Loss) != math.Float64bits(want.Loss) || !bitsEqual(got.Probs, want.Probs) {
				t.Fatalf("depth %d, step %d: loss %v probs %v, unplanned %v %v", c.Depth, i, got.Loss, got.Probs, want.Loss, want.Probs)
			}
			for j, p := range planned.Params() {
				q := tape.Params()[j]
				if !bitsEqual32(p.Value.Float32s(), q.Value.Float32s()) {
					t.Fatalf("depth %d, step %d: %s differs from the unplanned run", c.Depth, i, p.Name)
				}
				if p.Grad != nil && !bitsEqual32(p.Grad.Float32s(), q.Grad.Float32s()) {
					t.Fatalf("depth %d, step %d: gradient of %s differs from the unplanned run", c.Depth, i, p.Name)
				}
			}
		}
		planned.Close()
		tape.Close()
	}
}

func bitsEqual(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func bitsEqual32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

// allocated is the Go heap allocated by building mode's graph and running
// one step of it, with planned memory or with the TapeMachine.
func allocated(t *testing.T, c Config, mode Mode, tape bool) (uint64, *Model) {
	t.Helper()
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	m.tape = tape
	in := randomInput(c.InputSize(), 1)
	labels := make([]int, c.BatchSize)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if mode == Train {
		_, err = m.TrainStep(in, labels, 0.01)
	} else {
		_, err = m.Forward(Eval, in, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc, m
}

// TestMemoryPlanIsSmaller: planning allocates less than a buffer per op,
// counted in bytes allocated (Go's TotalAlloc over building the graph and
// one step, and the plan's own accounting), not in RSS.
func TestMemoryPlanIsSmaller(t *testing.T) {
	c := Config{Depth: 50, NumClasses: 10, SegNum: 8, TemporalShift: true, BaseWidth: 16, BatchSize: 2, Height: 64, Width: 64, Seed: 1}
	for _, tc := range []struct {
		mode Mode
		// most the planned run may allocate, as a fraction of the
		// unplanned run
		most float64
	}{{Eval, 0.35}, {Train, 0.6}} {
		planned, m := allocated(t, c, tc.mode, false)
		unplanned, _ := allocated(t, c, tc.mode, true)
		plan, arena := m.MemoryPlan(tc.mode)
		t.Logf("%v: allocated %.1f MB planned, %.1f MB unplanned; plan %+v, arena %.1f MB", tc.mode, float64(planned)/1e6, float64(unplanned)/1e6, plan, float64(arena)/1e6)
		if float64(planned) > tc.most*float64(unplanned) {
			t.Errorf("%v: planned run allocated %d bytes, more than %.2f of the unplanned run's %d", tc.mode, planned, tc.most, unplanned)
		}
		if plan.ArenaBytes < plan.PeakLiveBytes || float64(plan.ArenaBytes) > tc.most*float64(plan.Bytes) {
			t.Errorf("%v: plan %+v: want PeakLiveBytes <= ArenaBytes <= %.2f Bytes", tc.mode, plan, tc.most)
		}
		if arena < plan.ArenaBytes {
			t.Errorf("%v: arena holds %d bytes, the plan needs %d", tc.mode, arena, plan.ArenaBytes)
		}
		m.Close()
	}
}
