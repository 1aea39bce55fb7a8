//go:build onednn

package resnet

import (
	"math"
	"math/rand"
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

// randomise32 is randomise for a float32 model, with smaller scales
// and larger variances (a TSM-R50's probabilities stay away from 0 and 1).
func randomise32(m *Model, seed int64) {
	r := rand.New(rand.NewSource(seed))
	for _, p := range m.Params() {
		xs := p.Value.Float32s()
		switch {
		case hasSuffix(p.Name, "_scale"):
			for i := range xs {
				xs[i] = float32(0.4 + 0.5*r.Float64())
			}
		case hasSuffix(p.Name, "_variance"):
			for i := range xs {
				xs[i] = float32(0.5 + r.Float64())
			}
		case hasSuffix(p.Name, "_offset"), hasSuffix(p.Name, "_mean"), p.Name == "fc_0.b_0":
			for i := range xs {
				xs[i] = float32(0.2 * r.NormFloat64())
			}
		}
	}
}

// TestBlockedEvalMatchesNCHW: the inference graph with its activations
// in oneDNN's nChw16c after the stem (the default with oneDNN: fused
// conv+BN(+add)+ReLU ops reading and writing nChw16c, the shift a
// TemporalShift op on the blocks, the global pooling on the blocks)
// gives the probabilities and loss of the same model with every
// activation NCHW (whose convs chain through oneDNN's ring) within
// 1e-5, run after run; in bf16 it keeps every clip's top-1 and stays
// within 2e-2 of the fp32 probabilities. For a bottleneck TSM-R50 and a
// basic-block TSM-R18 (whose first identity shortcut, the max pooling's
// output, stays NCHW), base width 16, 32x32 frames. The blocked graph
// has blocked convs and no fused shift; the NCHW one and Graph(Eval)'s
// (for other executors) have no blocked op.
func TestBlockedEvalMatchesNCHW(t *testing.T) {
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
		randomise32(blk, 4)
		randomise32(ref, 4)
		ref.nchw = true
		in := randomInput(cfg.InputSize(), 5)
		labels := []int{1, 4}
		rr, err := ref.Forward(Eval, in, labels)
		if err != nil {
			t.Fatal(err)
		}
		for run := range 2 {
			rb, err := blk.Forward(Eval, in, labels)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(rb.Loss-rr.Loss) > 1e-5*(1+rr.Loss) || !closeAll(rb.Probs, rr.Probs, 1e-5) {
				t.Fatalf("depth %d run %d: blocked loss %v probs %v, NCHW %v %v", depth, run, rb.Loss, rb.Probs, rr.Loss, rr.Probs)
			}
		}
		if err := ops.SetPrecision("bf16"); err != nil {
			t.Fatal(err) // this project's machines have AVX512_BF16
		}
		rb, err := blk.Forward(Eval, in, labels)
		ops.SetPrecision("fp32")
		if err != nil {
			t.Fatal(err)
		}
		d := maxDiff(rb.Probs, rr.Probs)
		t.Logf("depth %d: bf16 max diff %g, probs %v", depth, d, rb.Probs)
		if d > 2e-2 || d == 0 {
			t.Fatalf("depth %d: bf16 probabilities %v, fp32 %v (max |diff| %g, want in (0, 2e-2])", depth, rb.Probs, rr.Probs, d)
		}
		for i := range cfg.BatchSize {
			if a, b := argmax(rb.Probs[i*cfg.NumClasses:][:cfg.NumClasses]), argmax(rr.Probs[i*cfg.NumClasses:][:cfg.NumClasses]); a != b {
				t.Fatalf("depth %d clip %d: bf16 top-1 %d, fp32 %d", depth, i, a, b)
			}
		}
		count := func(m *Model) (blocked, fused int) {
			for _, nd := range m.graphs[Eval].g.AllNodes() {
				if d, ok := ops.Describe(nd.Op()); ok {
					if d.Blocked {
						blocked++
					}
					if d.Kind == ops.KindConvBN && d.Shift != nil {
						fused++
					}
				}
			}
			return blocked, fused
		}
		nb, fb := count(blk)
		nr, _ := count(ref)
		if nb == 0 || fb != 0 || nr != 0 {
			t.Fatalf("depth %d: %d blocked ops (%d with the shift fused) in the default inference graph, %d in the NCHW one", depth, nb, fb, nr)
		}
		if _, _, err := blk.Graph(Eval); err != nil {
			t.Fatal(err)
		}
		if n, _ := count(blk); n != 0 {
			t.Fatalf("depth %d: Graph(Eval) has %d blocked ops", depth, n)
		}
		blk.Close()
		ref.Close()
	}
}

func maxDiff(a, b []float64) (d float64) {
	for i := range a {
		d = max(d, math.Abs(a[i]-b[i]))
	}
	return d
}

func argmax(v []float64) (j int) {
	for i := range v {
		if v[i] > v[j] {
			j = i
		}
	}
	return j
}

// TestBF16EvalStaysNCHW: a model built while the precision is bf16 keeps
// its inference graph NCHW (the ring hands bf16 outputs from conv to
// conv; blocked, every conv converts its fp32 input: slower end to end)
// and its training graph blocked.
func TestBF16EvalStaysNCHW(t *testing.T) {
	if err := ops.SetPrecision("bf16"); err != nil {
		t.Fatal(err) // this project's machines have AVX512_BF16
	}
	defer ops.SetPrecision("fp32")
	cfg := Config{Depth: 18, NumClasses: 4, SegNum: 2, TemporalShift: true, BaseWidth: 16,
		BatchSize: 1, Height: 32, Width: 32, Dtype: tensor.Float32, Seed: 1}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	count := func(mode Mode) (n int) {
		if err := m.Build(mode); err != nil {
			t.Fatal(err)
		}
		for _, nd := range m.graphs[mode].g.AllNodes() {
			if d, ok := ops.Describe(nd.Op()); ok && d.Blocked {
				n++
			}
		}
		return n
	}
	if n := count(Eval); n != 0 {
		t.Fatalf("bf16 inference graph: %d blocked ops, want NCHW", n)
	}
	if n := count(Train); n == 0 {
		t.Fatal("bf16 training graph: no blocked op")
	}
}
