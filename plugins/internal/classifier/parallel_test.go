package classifier

import (
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"testing"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/nn/resnet"
)

func tinyConfig(batch int, dt tensor.Dtype) resnet.Config {
	return resnet.Config{Depth: 18, NumClasses: 3, SegNum: 2, TemporalShift: true, BaseWidth: 2,
		BatchSize: batch, Height: 8, Width: 8, Seed: 7, Dtype: dt}
}

func tinyBatch(cfg resnet.Config, n int) ([]float32, []int) {
	r := rand.New(rand.NewPCG(1, 2))
	in := make([]float32, n*cfg.InputSize()/cfg.BatchSize)
	for i := range in {
		in[i] = float32(r.NormFloat64())
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(cfg.NumClasses)
	}
	return in, labels
}

func newTiny(t *testing.T, batch int, dt tensor.Dtype) *resnet.Model {
	t.Helper()
	m, err := resnet.New(tinyConfig(batch, dt))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestMicroBatchStepAgainstFiniteDifferences: a step of 2 micro-batches
// moves each weight by lr*(the derivative of the parts' mean loss, each
// part with batch-norm statistics of its own, + decay*w), the derivative
// taken by central differences in float64.
func TestMicroBatchStepAgainstFiniteDifferences(t *testing.T) {
	const parts, gb, lr, seed = 2, 2, 0.1, int64(11)
	m := newTiny(t, gb, tensor.Float64)
	ref := newTiny(t, gb, tensor.Float64)
	in, labels := tinyBatch(m.Config(), parts*gb)
	clip := m.Config().InputSize() / gb
	loss := func() float64 {
		var l float64
		for k := range parts {
			ref.SeedDropout(PartSeed(seed, k))
			res, err := ref.Forward(resnet.Train, in[k*gb*clip:(k+1)*gb*clip], labels[k*gb:(k+1)*gb])
			if err != nil {
				t.Fatal(err)
			}
			l += res.Loss / parts
		}
		return l
	}
	type probe struct {
		name string
		i    int
	}
	probes := []probe{{"fc_0.w_0", 0}, {"fc_0.w_0", 5}, {"fc_0.b_0", 1}, {"conv1_weights", 3}, {"res2a_branch2a_weights", 7}}
	want := map[probe]float64{}
	for _, pr := range probes {
		p, ok := ref.Param(pr.name)
		if !ok {
			t.Fatalf("no parameter %s", pr.name)
		}
		w := p.Value.Float64s()
		w0 := w[pr.i]
		const eps = 1e-5
		w[pr.i] = w0 + eps
		lp := loss()
		w[pr.i] = w0 - eps
		lm := loss()
		w[pr.i] = w0
		g := (lp - lm) / (2 * eps)
		decay := resnet.L2Decay
		if p.NoDecay {
			decay = 0
		}
		want[pr] = w0 - lr*p.LRMult*(g+decay*w0)
	}
	s := &Stepper{Parts: parts}
	res, err := s.Step(m, in, labels, lr, seed)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(res.Loss-loss()) > 1e-12 {
		t.Errorf("step loss %v, parts' mean loss %v", res.Loss, loss())
	}
	for _, pr := range probes {
		p, _ := m.Param(pr.name)
		got := p.Value.Float64s()[pr.i]
		if d := math.Abs(got - want[pr]); d > 1e-7*math.Max(1, math.Abs(want[pr])) {
			t.Errorf("%s[%d] after the step = %.10g, finite differences give %.10g", pr.name, pr.i, got, want[pr])
		}
	}
}

// pairComm is two in-process ranks joined by channels, for Stepper's
// data-parallel path without MPI.
type pairComm struct {
	dist.Local
	rank     int
	up, down chan []float64
}

func newPair() [2]*pairComm {
	up, down := make(chan []float64), make(chan []float64)
	return [2]*pairComm{{rank: 0, up: up, down: down}, {rank: 1, up: up, down: down}}
}

func (c *pairComm) Rank() int { return c.rank }
func (c *pairComm) Size() int { return 2 }
func (c *pairComm) AllreduceSum64(b []float64) error {
	if c.rank == 1 {
		c.up <- append([]float64(nil), b...)
		copy(b, <-c.down)
		return nil
	}
	other := <-c.up
	for i := range b {
		b[i] += other[i]
	}
	c.down <- append([]float64(nil), b...)
	return nil
}
func (c *pairComm) AllreduceSum(b []float32) error {
	f := make([]float64, len(b))
	for i, v := range b {
		f[i] = float64(v)
	}
	if err := c.AllreduceSum64(f); err != nil {
		return err
	}
	for i, v := range f {
		b[i] = float32(v)
	}
	return nil
}

// TestTwoRanksEqualTwoMicroBatches: two ranks with one part each, after
// three steps, hold the parameters and velocities of one process with two
// micro-batches.
func TestTwoRanksEqualTwoMicroBatches(t *testing.T) {
	const gb = 2
	one := newTiny(t, gb, tensor.Float32)
	ranks := [2]*resnet.Model{newTiny(t, gb, tensor.Float32), newTiny(t, gb, tensor.Float32)}
	in, labels := tinyBatch(one.Config(), 2*gb)
	clip := one.Config().InputSize() / gb
	s1 := &Stepper{Parts: 2}
	comms := newPair()
	var steppers [2]*Stepper
	for r := range steppers {
		steppers[r] = &Stepper{Comm: comms[r], Parts: 1}
	}
	for step := range 3 {
		seed := StepSeed(5, 0, int64(step))
		want, err := s1.Step(one, in, labels, 0.05, seed)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var got [2]resnet.Result
		var errs [2]error
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[r], errs[r] = steppers[r].Step(ranks[r], in[r*gb*clip:(r+1)*gb*clip], labels[r*gb:(r+1)*gb], 0.05, seed)
			}()
		}
		wg.Wait()
		for r := range 2 {
			if errs[r] != nil {
				t.Fatal(errs[r])
			}
			if math.Abs(got[r].Loss-want.Loss) > 1e-6 || got[r].Top1 != want.Top1 || got[r].Top5 != want.Top5 {
				t.Errorf("step %d rank %d: loss %v top1 %d top5 %d, one process %v %d %d", step, r, got[r].Loss, got[r].Top1, got[r].Top5, want.Loss, want.Top1, want.Top5)
			}
		}
	}
	for _, p := range one.Params() {
		if !p.Trainable {
			continue
		}
		for r, m := range ranks {
			q, _ := m.Param(p.Name)
			if d := relDiff(p.Value.Float32s(), q.Value.Float32s()); d > 1e-5 {
				t.Errorf("rank %d: %s differs from one process's by %g relative", r, p.Name, d)
			}
			v1, v2 := one.Optimizer().Velocity(p.Name), m.Optimizer().Velocity(p.Name)
			if d := relDiff(v1.Float32s(), v2.Float32s()); d > 1e-5 {
				t.Errorf("rank %d: velocity of %s differs by %g relative", r, p.Name, d)
			}
		}
	}
}

// relDiff is max|a-b| / max(max|a|, 1e-12).
func relDiff(a, b []float32) float64 {
	var d, n float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i]-b[i])))
		n = math.Max(n, math.Abs(float64(a[i])))
	}
	return d / math.Max(n, 1e-12)
}

// TestOnePartIsTrainStep: one rank, one part is resnet.Model.TrainStep.
func TestOnePartIsTrainStep(t *testing.T) {
	a, b := newTiny(t, 2, tensor.Float32), newTiny(t, 2, tensor.Float32)
	in, labels := tinyBatch(a.Config(), 2)
	s := &Stepper{}
	if _, err := s.Step(a, in, labels, 0.1, 3); err != nil {
		t.Fatal(err)
	}
	b.SeedDropout(3)
	if _, err := b.TrainStep(in, labels, 0.1); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.Params() {
		q, _ := b.Param(p.Name)
		if d := relDiff(p.Value.Float32s(), q.Value.Float32s()); d != 0 {
			t.Errorf("%s differs by %g", p.Name, d)
		}
	}
}

// bytesPair adds Broadcast to pairComm, over a channel of its own.
type bytesPair struct {
	*pairComm
	bc chan []byte
}

func (c bytesPair) Broadcast(b []byte, root int) error {
	if c.rank == root {
		c.bc <- append([]byte(nil), b...)
		return nil
	}
	copy(b, <-c.bc)
	return nil
}

// TestBroadcastState: rank 1 ends with rank 0's parameters and velocities
// (its own, from another seed and a step of its own, are replaced).
func TestBroadcastState(t *testing.T) {
	cfg := tinyConfig(2, tensor.Float32)
	m0 := newTiny(t, 2, tensor.Float32)
	cfg.Seed = 99
	m1, err := resnet.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m1.Close()
	in, labels := tinyBatch(cfg, 2)
	if _, err := m1.TrainStep(in, labels, 0.1); err != nil { // velocities on rank 1 only
		t.Fatal(err)
	}
	pair, bc := newPair(), make(chan []byte, 1)
	var wg sync.WaitGroup
	var errs [2]error
	for r, m := range []*resnet.Model{m0, m1} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[r] = BroadcastState(bytesPair{pair[r], bc}, m)
		}()
	}
	wg.Wait()
	if errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	for _, p := range m0.Params() {
		q, _ := m1.Param(p.Name)
		if d := relDiff(p.Value.Float32s(), q.Value.Float32s()); d != 0 {
			t.Errorf("%s: rank 1 differs from rank 0 by %g", p.Name, d)
		}
		if p.Trainable {
			v0, v1 := m0.Optimizer().Velocity(p.Name), m1.Optimizer().Velocity(p.Name)
			// Rank 0 had not stepped: its velocities are zeros.
			if v0 == nil || v1 == nil {
				t.Errorf("%s: velocity on rank 0 %v, on rank 1 %v after the broadcast", p.Name, v0 != nil, v1 != nil)
			} else if maxAbs(v1.Float32s()) != 0 {
				t.Errorf("%s: rank 1 kept its own velocity", p.Name)
			}
		}
	}
}

func maxAbs(a []float32) float64 {
	var m float64
	for _, v := range a {
		m = math.Max(m, math.Abs(float64(v)))
	}
	return m
}

// TestPartsSumAsATree: one process with 4 micro-batches and 2 ranks with 2
// each sum the parts' gradients in the same order ((g0+g1)+(g2+g3)), so
// their parameters and velocities are bitwise equal after 3 steps (a
// resume that changes the layout continues the same arithmetic).
func TestPartsSumAsATree(t *testing.T) {
	const gb = 2
	one := newTiny(t, gb, tensor.Float32)
	ranks := [2]*resnet.Model{newTiny(t, gb, tensor.Float32), newTiny(t, gb, tensor.Float32)}
	in, labels := tinyBatch(one.Config(), 4*gb)
	clip := one.Config().InputSize() / gb
	s1 := &Stepper{Parts: 4}
	comms := newPair()
	var steppers [2]*Stepper
	for r := range steppers {
		steppers[r] = &Stepper{Comm: comms[r], Parts: 2}
	}
	for step := range 3 {
		seed := StepSeed(5, 0, int64(step))
		if _, err := s1.Step(one, in, labels, 0.05, seed); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var errs [2]error
		for r := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[r] = steppers[r].Step(ranks[r], in[r*2*gb*clip:(r+1)*2*gb*clip], labels[r*2*gb:(r+1)*2*gb], 0.05, seed)
			}()
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range one.Params() {
		if !p.Trainable {
			continue
		}
		q, _ := ranks[1].Param(p.Name)
		if d := relDiff(p.Value.Float32s(), q.Value.Float32s()); d != 0 {
			t.Errorf("%s differs from one process's by %g relative, want bitwise equal", p.Name, d)
		}
		v1, v2 := one.Optimizer().Velocity(p.Name), ranks[1].Optimizer().Velocity(p.Name)
		if d := relDiff(v1.Float32s(), v2.Float32s()); d != 0 {
			t.Errorf("velocity of %s differs by %g relative, want bitwise equal", p.Name, d)
		}
	}
}
