package resnet

import (
	"slices"
	"testing"
)

// TestConventions: PyTorch TSM's conventions as Config options. The
// logit consensus equals the feature consensus up to rounding; inverted
// dropout at inference is Paddle's with the fc's weights doubled; the
// reversed shift is the shift of the clip played backwards.
func TestConventions(t *testing.T) {
	t.Parallel()
	base := tinyConfig(true)
	in := randomInput(base.InputSize(), 12)
	run := func(c Config, input []float32, edit func(*Model)) []float64 {
		t.Helper()
		m, err := New(c)
		if err != nil {
			t.Fatal(err)
		}
		randomise(m, 13)
		if edit != nil {
			edit(m)
		}
		r, err := m.Forward(Eval, input, nil)
		if err != nil {
			t.Fatal(err)
		}
		return r.Probs
	}
	paddle := run(base, in, nil)

	c := base
	c.LogitConsensus = true
	if got := run(c, in, nil); !closeAll(got, paddle, 1e-9) {
		t.Errorf("logit consensus %v, feature consensus %v", got, paddle)
	}

	c = base
	c.InvertedDropout = true
	half := func(m *Model) {
		p, _ := m.Param("fc_0.w_0")
		for i := range p.Value.Float64s() {
			p.Value.Float64s()[i] /= 2
		}
	}
	if got := run(c, in, half); !closeAll(got, paddle, 1e-9) {
		t.Errorf("inverted dropout with fc/2 %v, Paddle's %v", got, paddle)
	}
	if got := run(c, in, nil); closeAll(got, paddle, 1e-6) {
		t.Errorf("inverted dropout changes nothing")
	}

	c = base
	c.ReverseShift = true
	reversed := slices.Clone(in)
	frame := 3 * base.Height * base.Width
	for n := range base.BatchSize {
		for s := range base.SegNum {
			copy(reversed[(n*base.SegNum+s)*frame:], in[(n*base.SegNum+base.SegNum-1-s)*frame:][:frame])
		}
	}
	if got := run(c, reversed, nil); !closeAll(got, paddle, 1e-9) {
		t.Errorf("reversed shift on the reversed clip %v, Paddle's %v", got, paddle)
	}
	if got := run(c, in, nil); closeAll(got, paddle, 1e-6) {
		t.Errorf("reversed shift changes nothing")
	}

	c = base
	c.InvertedDropout, c.LogitConsensus, c.ReverseShift = true, true, true
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.TrainStep(in, []int{1, 2}, 0.01); err != nil {
		t.Errorf("training with PyTorch's conventions: %v", err)
	}
}
