//go:build onednn

package resnet

import (
	"math"
	"testing"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
	"github.com/zoo-ml/zoo/nn/ops"
)

// TestBlockedTrainMatchesNCHW: the training graph with its activations in
// oneDNN's nChw16c after the stem (the default with oneDNN) and the same
// model with every activation NCHW take a step on the same batch: losses
// and probabilities agree within 1e-4, every parameter gradient
// and running statistic within 1e-3 of its largest magnitude (the
// standard of TestFloat32MatchesFloat64: each batch norm on oneDNN
// matches zoo's kernel within 1e-6 on the same inputs, but a ReLU whose
// input lies within rounding of 0 masks differently, which moves that
// channel's gradients by about 1/sqrt(its values): 2e-4 here, 8% with
// 64x64 frames); two more steps lower
// the blocked model's loss (later steps are not compared: the updates
// amplify the first step's differences). For a
// bottleneck TSM (projection shortcuts; a 64-channel stage whose shift
// splits a 16-channel block) and a basic-block ResNet-18 (identity
// shortcut from the max pooling, which stays NCHW). The blocked model's
// graph has blocked ops and runs its batch norms on oneDNN; the NCHW one
// has none.
func TestBlockedTrainMatchesNCHW(t *testing.T) {
	for _, depth := range []int{50, 18} {
		cfg := Config{Depth: depth, NumClasses: 6, SegNum: 4, TemporalShift: true, BaseWidth: 16,
			BatchSize: 2, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 3}
		blk, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ref.nchw = true
		in := randomInput(cfg.InputSize(), 5)
		labels := []int{1, 4}
		bn0 := dnnl.BNRuns()
		// A pass on another batch first (no update), so the compared
		// step also checks that nothing stale carries between passes
		// (the batch norms' statistics and ReLU masks, the NCHW copies).
		for _, m := range []*Model{blk, ref} {
			m.SeedDropout(9)
			if _, err := m.Forward(Train, randomInput(cfg.InputSize(), 6), []int{0, 2}); err != nil {
				t.Fatal(err)
			}
		}
		var losses []float64
		for step := range 3 {
			blk.SeedDropout(int64(step))
			ref.SeedDropout(int64(step))
			rb, err := blk.TrainStep(in, labels, 0.05)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := ref.TrainStep(in, labels, 0.05)
			if err != nil {
				t.Fatal(err)
			}
			losses = append(losses, rb.Loss)
			if step > 0 {
				continue // the updates carry and amplify the first step's differences
			}
			if math.Abs(rb.Loss-rr.Loss) > 1e-4*(1+rr.Loss) || !closeAll(rb.Probs, rr.Probs, 1e-4) {
				t.Fatalf("depth %d: blocked loss %v probs %v, NCHW %v %v", depth, rb.Loss, rb.Probs, rr.Loss, rr.Probs)
			}
			for _, p := range ref.Params() {
				q, _ := blk.Param(p.Name)
				want, got := p.Value.Float32s(), q.Value.Float32s()
				if p.Grad != nil {
					want, got = p.Grad.Float32s(), q.Grad.Float32s()
				}
				var scale float64
				for _, v := range want {
					scale = max(scale, math.Abs(float64(v)))
				}
				for i := range want {
					if math.Abs(float64(got[i]-want[i])) > 1e-3*scale+1e-7 {
						t.Fatalf("depth %d step %d: %s[%d] blocked %v, NCHW %v (gradient if trainable, else running statistic)", depth, step, p.Name, i, got[i], want[i])
					}
				}
			}
		}
		if !(losses[2] < losses[0]) {
			t.Fatalf("depth %d: blocked training losses %v: not lower after two updates", depth, losses)
		}
		if dnnl.BNRuns() == bn0 {
			t.Fatalf("depth %d: no batch norm ran on oneDNN", depth)
		}
		count := func(m *Model) (n int) {
			for _, nd := range m.graphs[Train].g.AllNodes() {
				if d, ok := ops.Describe(nd.Op()); ok && d.Blocked {
					n++
				}
			}
			return n
		}
		if nb, nr := count(blk), count(ref); nb == 0 || nr != 0 {
			t.Fatalf("depth %d: %d blocked ops in the default training graph, %d in the NCHW one", depth, nb, nr)
		}
		// Another executor gets an NCHW graph.
		if _, _, err := blk.Graph(Train); err != nil {
			t.Fatal(err)
		}
		if n := count(blk); n != 0 {
			t.Fatalf("depth %d: Graph(Train) has %d blocked ops", depth, n)
		}
		blk.Close()
		ref.Close()
	}
}
