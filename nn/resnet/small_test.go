package resnet

import (
	"testing"
)

// TestSmallConfigTrains runs the demo model's train step: it must build,
// run and lower the loss on a repeated batch.
func TestSmallConfigTrains(t *testing.T) {
	t.Parallel()
	c := SmallConfig(4)
	c.Height, c.Width, c.SegNum = 32, 32, 4 // keep the test quick
	m, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	in := randomInput(c.InputSize(), 21)
	var first, last float64
	for i := 0; i < 4; i++ {
		m.SeedDropout(1)
		res, err := m.TrainStep(in, []int{2}, 0.01)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Loss
		}
		last = res.Loss
	}
	if !(last < first) {
		t.Fatalf("loss %v after 4 steps on one batch, %v at first", last, first)
	}
	res, err := m.Forward(Eval, in, []int{2})
	if err != nil {
		t.Fatal(err)
	}
	var s float64
	for _, p := range res.Probs {
		s += p
	}
	if len(res.Probs) != 4 || s < 0.999999 || s > 1.000001 {
		t.Fatalf("eval probabilities %v", res.Probs)
	}
}
