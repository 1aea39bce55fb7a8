package resnet

import (
	"math"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// copyParams loads src's values into dst by name.
func copyParams(t *testing.T, dst, src *Model) {
	t.Helper()
	for _, p := range src.Params() {
		q, ok := dst.Param(p.Name)
		if !ok {
			t.Fatalf("no %s", p.Name)
		}
		if q.Value.Dtype() == tensor.Float64 && p.Value.Dtype() == tensor.Float64 {
			copy(q.Value.Float64s(), p.Value.Float64s())
			continue
		}
		v := make([]float32, len(p.Value.Float64s()))
		for i, x := range p.Value.Float64s() {
			v[i] = float32(x)
		}
		if err := dst.SetParam(p.Name, p.Shape, v); err != nil {
			t.Fatal(err)
		}
	}
}

func snapshot(m *Model) map[string][]float64 {
	s := map[string][]float64{}
	for _, p := range m.Params() {
		s[p.Name] = append([]float64(nil), p.Value.Float64s()...)
	}
	return s
}

func closeAll(a, b []float64, tol float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(a[i]-b[i]) > tol*(1+math.Abs(b[i])) {
			return false
		}
	}
	return true
}

func TestTrainEvalShareParameters(t *testing.T) {
	t.Parallel()
	m, err := New(tinyConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	randomise(m, 5)
	in := randomInput(m.Config().InputSize(), 6)
	labels := []int{0, 4}
	before := snapshot(m)

	r0, err := m.Forward(Eval, in, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !maps(snapshot(m), before) {
		t.Fatal("an eval pass changed parameters")
	}
	m.SeedDropout(1)
	if _, err := m.Forward(Train, in, labels); err != nil {
		t.Fatal(err)
	}
	after := snapshot(m)
	for name, v := range after {
		stat := hasSuffix(name, "_mean") || hasSuffix(name, "_variance")
		if changed := !slices.Equal(v, before[name]); changed != stat {
			t.Errorf("%s: changed by a training forward pass: %v", name, changed)
		}
	}
	// The eval graph, built before, must see the new running statistics
	// without a rebuild: compare with a fresh model holding the same values.
	r1, err := m.Forward(Eval, in, labels)
	if err != nil {
		t.Fatal(err)
	}
	if closeAll(r1.Probs, r0.Probs, 1e-12) {
		t.Fatal("eval output did not change after the running statistics did")
	}
	fresh, err := New(tinyConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	copyParams(t, fresh, m)
	r2, err := fresh.Forward(Eval, in, labels)
	if err != nil {
		t.Fatal(err)
	}
	if !closeAll(r1.Probs, r2.Probs, 1e-12) || math.Abs(r1.Loss-r2.Loss) > 1e-12 {
		t.Fatalf("eval after training %v, fresh model %v", r1.Probs, r2.Probs)
	}
}

func maps(a, b map[string][]float64) bool {
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return len(a) == len(b)
}

// TestTrainStepUpdate checks the first Momentum step against the formula
// worked by hand (velocity starts at zero, so v = g + decay*w and
// w' = w - lr*mult*v), for every trainable parameter, and that a second
// forward pass with the same dropout seed is bit-identical (no state
// leaks between runs of the tape).
func TestTrainStepUpdate(t *testing.T) {
	t.Parallel()
	m, err := New(tinyConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	randomise(m, 7)
	in := randomInput(m.Config().InputSize(), 8)
	labels := []int{2, 2}

	m.SeedDropout(3)
	ra, err := m.Forward(Train, in, labels)
	if err != nil {
		t.Fatal(err)
	}
	gradA := map[string][]float64{}
	for _, p := range m.Params() {
		if p.Trainable {
			gradA[p.Name] = append([]float64(nil), p.Grad.Float64s()...)
		}
	}
	before := snapshot(m)
	const lr = 0.05
	m.SeedDropout(3)
	rb, err := m.TrainStep(in, labels, lr)
	if err != nil {
		t.Fatal(err)
	}
	if ra.Loss != rb.Loss {
		t.Fatalf("same batch, same dropout seed: loss %v then %v", ra.Loss, rb.Loss)
	}
	for _, p := range m.Params() {
		if !p.Trainable {
			continue
		}
		g := p.Grad.Float64s()
		if !slices.Equal(g, gradA[p.Name]) {
			t.Fatalf("%s: gradient differs between two identical passes", p.Name)
		}
		mult, decay := 1.0, L2Decay
		if p.Name == "fc_0.b_0" {
			mult, decay = 2, 0
		}
		for i, w := range p.Value.Float64s() {
			w0 := before[p.Name][i]
			want := w0 - lr*mult*(g[i]+decay*w0)
			if math.Abs(w-want) > 1e-15*(1+math.Abs(want)) {
				t.Fatalf("%s[%d] = %v after the step, want %v", p.Name, i, w, want)
			}
		}
	}
	// training must reduce the loss on the batch it saw (a sanity check
	// that the update goes downhill)
	m.SeedDropout(3)
	rc, err := m.Forward(Train, in, labels)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Loss >= rb.Loss {
		t.Fatalf("loss %v after a step, %v before", rc.Loss, rb.Loss)
	}
}

// TestShiftOnOff: in eval mode a TSN treats frames independently, so
// swapping the two segments of every clip leaves its output unchanged; a
// TSM mixes them, so the output changes.
func TestShiftOnOff(t *testing.T) {
	t.Parallel()
	in := randomInput(tinyConfig(true).InputSize(), 10)
	frame := 3 * 16 * 16
	swapped := slices.Clone(in)
	for clip := 0; clip < 2; clip++ {
		a := in[(2*clip)*frame : (2*clip+1)*frame]
		b := in[(2*clip+1)*frame : (2*clip+2)*frame]
		copy(swapped[(2*clip)*frame:], b)
		copy(swapped[(2*clip+1)*frame:], a)
	}
	for _, shift := range []bool{false, true} {
		m, err := New(tinyConfig(shift))
		if err != nil {
			t.Fatal(err)
		}
		randomise(m, 11)
		r1, err := m.Forward(Eval, in, nil)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := m.Forward(Eval, swapped, nil)
		if err != nil {
			t.Fatal(err)
		}
		if same := closeAll(r1.Probs, r2.Probs, 1e-12); same == shift {
			t.Errorf("shift %v: output unchanged by swapping segments: %v", shift, same)
		}
	}
}

// TestFloat32MatchesFloat64 runs the same small TSM in both precisions.
func TestFloat32MatchesFloat64(t *testing.T) {
	t.Parallel()
	m64, err := New(tinyConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	randomise(m64, 12)
	c32 := tinyConfig(true)
	c32.Dtype = tensor.Float32
	m32, err := New(c32)
	if err != nil {
		t.Fatal(err)
	}
	copyParams(t, m32, m64)
	// round the float64 model's values to float32 too
	for _, p := range m64.Params() {
		for i, v := range p.Value.Float64s() {
			p.Value.Float64s()[i] = float64(float32(v))
		}
	}
	in := randomInput(c32.InputSize(), 13)
	labels := []int{1, 3}
	for _, mode := range []Mode{Eval, Train} {
		m64.SeedDropout(2)
		m32.SeedDropout(2)
		r64, err := m64.Forward(mode, in, labels)
		if err != nil {
			t.Fatal(err)
		}
		r32, err := m32.Forward(mode, in, labels)
		if err != nil {
			t.Fatal(err)
		}
		if !closeAll(r32.Probs, r64.Probs, 1e-4) || math.Abs(r32.Loss-r64.Loss) > 1e-4*(1+r64.Loss) {
			t.Fatalf("%v: float32 loss %v probs %v; float64 %v %v", mode, r32.Loss, r32.Probs, r64.Loss, r64.Probs)
		}
	}
	for _, name := range []string{"conv1_weights", "res5b_branch2b_weights", "fc_0.w_0"} {
		p32, _ := m32.Param(name)
		p64, _ := m64.Param(name)
		g64 := p64.Grad.Float64s()
		scale := maxAbs(g64)
		for i, g := range p32.Grad.Float32s() {
			if math.Abs(float64(g)-g64[i]) > 1e-3*scale {
				t.Fatalf("%s[%d]: float32 gradient %v, float64 %v", name, i, g, g64[i])
			}
		}
	}
}

func TestTopK(t *testing.T) {
	t.Parallel()
	probs := []float64{
		0.1, 0.5, 0.2, 0.05, 0.05, 0.1, // label 1: top1
		0.3, 0.2, 0.15, 0.14, 0.13, 0.08, // label 4: top5 only
		0.3, 0.2, 0.15, 0.14, 0.13, 0.08, // label 5: neither
	}
	top1, top5 := topK(probs, 6, []int{1, 4, 5})
	if top1 != 1 || top5 != 2 {
		t.Fatalf("top1 %d top5 %d, want 1, 2", top1, top5)
	}
}

// TestEvalHoldsNoGradients: an inference-only model allocates no gradient
// buffers; the training graph gives every trainable parameter one.
func TestEvalHoldsNoGradients(t *testing.T) {
	t.Parallel()
	c := SmallConfig(5)
	c.Height, c.Width = 16, 16
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.Forward(Eval, randomInput(c.InputSize(), 3), nil); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if p.Grad != nil {
			t.Fatalf("after an evaluation pass %s has a gradient buffer", p.Name)
		}
	}
	if err := m.Build(Train); err != nil {
		t.Fatal(err)
	}
	for _, p := range m.Params() {
		if (p.Grad != nil) != p.Trainable {
			t.Errorf("%s (trainable %v): gradient buffer %v", p.Name, p.Trainable, p.Grad != nil)
		}
	}
}
