//go:build onednn

package exec

import (
	"math"
	"math/rand"
	"os"
	osexec "os/exec"
	"slices"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
	"github.com/zoo-ml/zoo/nn/ops"
)

// convChain builds an inference graph of ConvBN ops on oneDNN. In the
// first, each conv's output is read only by the next conv (a, b: their
// NCHW copies are skipped). In the second, a is read by b (chained) and
// is the residual summand of c (from its kept output: skipped), b is
// also kept for the test to read (its NCHW copy must be written), c is
// read by two chained convs (d, d2: skipped), d by e alone (skipped),
// and d2 and e by the test.
func convChain(t *testing.T, second bool) (*G.ExprGraph, []*tensor.Dense) {
	ok := must(t)
	r := rand.New(rand.NewSource(5))
	g := G.NewGraph()
	conv := func(x *G.Node, name string, k, rs, pad int, relu bool, short *G.Node) *G.Node {
		c := x.Shape()[1]
		w := input(g, name+"w", randTensor(r, k, c, rs, rs))
		s, o := input(g, name+"s", randTensor(r, k)), input(g, name+"o", randTensor(r, k))
		v := randTensor(r, k)
		for i, x := range v.Float32s() {
			v.Float32s()[i] = 0.5 + x*x
		}
		st := &ops.BNState{Mean: randTensor(r, k), Variance: v, Eps: 1e-5}
		if short != nil {
			return ok(ops.ConvBNAddReLUEval(x, w, s, o, short, 1, pad, st))
		}
		return ok(ops.ConvBNEval(x, w, s, o, 1, pad, st, relu))
	}
	x := input(g, "x", randTensor(r, 4, 32, 10, 9))
	a := conv(x, "a", 32, 1, 0, true, nil)
	b := conv(a, "b", 48, 3, 1, true, nil)
	if !second {
		c := conv(b, "c", 32, 1, 0, false, nil)
		return g, []*tensor.Dense{keep(t, c)}
	}
	c := conv(b, "c", 32, 1, 0, true, a)
	d := conv(c, "d", 32, 3, 1, true, nil)
	d2 := conv(c, "d2", 16, 1, 0, false, nil)
	e := conv(d, "e", 32, 1, 0, false, nil)
	return g, []*tensor.Dense{keep(t, b), keep(t, d2), keep(t, e)}
}

// TestSkippedCopiesOnlyUnread: the Machine skips the NCHW copy of a
// oneDNN conv output exactly when all its readers are convs that read
// its kept blocked output (chained, or as the residual summand, last); a
// value with another reader (a Keep) is written. The results equal the
// TapeMachine's (which writes every copy), run after run, and the
// reorders per run are what that says.
func TestSkippedCopiesOnlyUnread(t *testing.T) {
	for _, tc := range []struct {
		name    string
		second  bool
		want    dnnl.Reorders
		handoff uint64
	}{
		// x in; c out; a, b skipped; 3 filters.
		{"chain", false, dnnl.Reorders{In: 1, Out: 1, Weights: 3}, 2},
		// x in; b, d2, e out; the summand a added in place in its kept
		// buffer; 6 filters; all but a read kept outputs.
		{"second readers", true, dnnl.Reorders{In: 1, Out: 3, Weights: 6}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g0, want := convChain(t, tc.second)
			tm := G.NewTapeMachine(g0)
			defer tm.Close()
			if err := tm.RunAll(); err != nil {
				t.Fatal(err)
			}
			g, got := convChain(t, tc.second)
			m, err := New(g, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			for run := 0; run < 3; run++ {
				for _, k := range got {
					clear(k.Float32s())
				}
				r0, h0 := dnnl.ReorderCounts(), dnnl.Handoffs()
				if err := m.RunAll(); err != nil {
					t.Fatal(err)
				}
				if d := dnnl.ReorderCounts().Sub(r0); d != tc.want {
					t.Errorf("run %d: reorders %+v, want %+v", run, d, tc.want)
				}
				if d := dnnl.Handoffs() - h0; d != tc.handoff {
					t.Errorf("run %d: %d convs read a kept output, want %d", run, d, tc.handoff)
				}
				for i := range got {
					w, v := want[i].Float32s(), got[i].Float32s()
					scale := 0.0
					for _, x := range w {
						scale = max(scale, math.Abs(float64(x)))
					}
					for j := range w {
						if math.Abs(float64(v[j]-w[j])) > 1e-5*scale {
							t.Fatalf("run %d, value %d [%d]: %v, TapeMachine %v", run, i, j, v[j], w[j])
						}
					}
				}
			}
			if slices.Equal(got[0].Float32s(), make([]float32, len(got[0].Float32s()))) {
				t.Fatal("nothing kept")
			}
		})
	}
}

// TestMaxPoolOnOneDNNOnlyWithoutGrad: a Machine runs a max pool whose
// argmax no gradient reads on oneDNN, with the plain kernel's values
// (the TapeMachine's); in a training graph the pool keeps zoo's kernel
// (its argmax feeds the gradient), and the gradient is the TapeMachine's.
func TestMaxPoolOnOneDNNOnlyWithoutGrad(t *testing.T) {
	for _, train := range []bool{false, true} {
		build := func() (*G.ExprGraph, []*tensor.Dense) {
			ok := must(t)
			r := rand.New(rand.NewSource(7))
			g := G.NewGraph()
			x := input(g, "x", randTensor(r, 4, 8, 15, 13))
			w := input(g, "w", randTensor(r, 8, 8, 1, 1))
			h := ok(ops.Conv2D(x, w, 1, 0, false))
			p := ok(ops.MaxPool(h, 3, 2, 1))
			kept := []*tensor.Dense{keep(t, p)}
			if train {
				loss, sce, err := ops.SoftmaxCrossEntropy(ok(ops.GlobalAvgPool(p)))
				if err != nil {
					t.Fatal(err)
				}
				sce.Labels = []int{0, 3, 4, 1}
				grads, err := G.Grad(loss, w)
				if err != nil {
					t.Fatal(err)
				}
				kept = append(kept, keep(t, grads[0]))
			}
			return g, kept
		}
		g0, want := build()
		tm := G.NewTapeMachine(g0)
		if err := tm.RunAll(); err != nil {
			t.Fatal(err)
		}
		tm.Close()
		g, got := build()
		m, err := New(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		p0 := dnnl.Pools()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Close()
		wantPools := uint64(1)
		if train {
			wantPools = 0
		}
		if d := dnnl.Pools() - p0; d != wantPools {
			t.Errorf("train %v: %d poolings on oneDNN, want %d", train, d, wantPools)
		}
		for i := range got {
			if !slices.Equal(got[i].Float32s(), want[i].Float32s()) {
				t.Fatalf("train %v: value %d differs from the TapeMachine's", train, i)
			}
		}
	}
}

// TestResidualInPlaceBF16: in bf16, where oneDNN runs the 1x1 conv with
// the sum post-op in another layout (the summand preloaded from the
// shortcut's place, the output reordered back into it), the planned run
// that writes into the shortcut's place equals the TapeMachine's bit for
// bit.
func TestResidualInPlaceBF16(t *testing.T) {
	if err := ops.SetPrecision("bf16"); err != nil {
		t.Fatal(err) // this project's machines have AVX512_BF16
	}
	defer ops.SetPrecision("fp32")
	g0, _, _, want := residual(t, false)
	runTape(t, g0, 1)
	g, a, c, got := residual(t, false)
	m, err := New(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if ia, ic := slices.Index(m.nodes, a), slices.Index(m.nodes, c); m.off[ia] != m.off[ic] {
		t.Fatalf("the add's output at %d, its shortcut at %d", m.off[ic], m.off[ia])
	}
	for run := range 2 {
		r0 := dnnl.ReorderCounts()
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		if d := dnnl.ReorderCounts().Sub(r0); d.Sum != 1 {
			t.Errorf("run %d: reorders %+v, want the summand preloaded (Sum 1)", run, d)
		}
		if j := firstDiff(got[0].Float32s(), want[0].Float32s()); j >= 0 {
			t.Fatalf("run %d: output differs from the TapeMachine's at %d: %v, want %v", run, j, got[0].Float32s()[j], want[0].Float32s()[j])
		}
	}
}

// TestResidualInPlaceZooKernels runs TestResidualInPlace in a child
// process with ZOO_ONEDNN=off, so that this build (make test's) also
// checks zoo's own kernels writing into the shortcut's place (the path
// of a blocked shape oneDNN declines: the shortcut is copied to NCHW
// before the output is written over it).
func TestResidualInPlaceZooKernels(t *testing.T) {
	cmd := osexec.Command(os.Args[0], "-test.run", "^TestResidualInPlace$", "-test.count", "1", "-test.v")
	cmd.Env = append(os.Environ(), "ZOO_ONEDNN=off")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestResidualInPlace ") {
		t.Fatalf("TestResidualInPlace with ZOO_ONEDNN=off: %v\n%s", err, out)
	}
}
