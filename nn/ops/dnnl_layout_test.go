//go:build onednn

package ops

import (
	"fmt"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
)

// blockGraph is a residual block as a training graph builds it: conv,
// BN+ReLU, shift, conv, BN, a projection shortcut (conv, BN), add+ReLU,
// global pooling and softmax cross entropy as the loss; every conv writes lay.
type blockGraph struct {
	g    *G.ExprGraph
	vm   G.VM
	loss *SoftmaxCE
	wrt  G.Nodes
	st   []*BNState
}

func newBlockGraph(t *testing.T, lay Layout, seed int64) *blockGraph {
	t.Helper()
	rng := rand.New(rand.NewSource(seed))
	const n, c, k, hw = 4, 32, 48, 6
	g := G.NewGraph()
	x := G.NewTensor(g, tensor.Float32, 4, G.WithShape(n, c, hw, hw), G.WithValue(rand32(rng, n, c, hw, hw)), G.WithName("x"))
	b := &blockGraph{g: g}
	param := func(name string, shape ...int) *G.Node {
		p := G.NewTensor(g, tensor.Float32, len(shape), G.WithShape(shape...), G.WithValue(rand32(rng, shape...)), G.WithName(name))
		b.wrt = append(b.wrt, p)
		return p
	}
	bn := func(y *G.Node, name string, ch int, relu bool) *G.Node {
		st := bnState32(rng, ch)
		b.st = append(b.st, st)
		out, err := BatchNorm(y, param(name+"_scale", ch), param(name+"_offset", ch), st, true, relu)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	conv := func(in *G.Node, name string, cin, cout, r, pad int) *G.Node {
		y, err := Conv2DTo(in, param(name, cout, cin, r, r), 1, pad, true, lay)
		if err != nil {
			t.Fatal(err)
		}
		return y
	}
	h := bn(conv(x, "a", c, k, 3, 1), "a", k, true)
	h, err := TemporalShift(h, 2, 0.125) // 6 of 48 channels each way: splits a block
	if err != nil {
		t.Fatal(err)
	}
	h = bn(conv(h, "b", k, k, 1, 0), "b", k, false)
	short := bn(conv(x, "s", c, k, 1, 0), "s", k, false)
	if h, err = AddReLU(h, short); err != nil {
		t.Fatal(err)
	}
	if h, err = GlobalAvgPool(h); err != nil {
		t.Fatal(err)
	}
	loss, sce, err := SoftmaxCrossEntropy(h)
	if err != nil {
		t.Fatal(err)
	}
	b.loss = sce
	sce.Labels = []int{0, 5, 17, 40}
	b.wrt = append(G.Nodes{x}, b.wrt...)
	if _, err := G.Grad(loss, b.wrt...); err != nil {
		t.Fatal(err)
	}
	b.vm = G.NewTapeMachine(g)
	return b
}

func (b *blockGraph) run(t *testing.T) {
	t.Helper()
	if err := b.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	b.vm.Reset()
}

// TestBlockedGraphMatchesNCHW: a residual block's training graph with
// its convolutions writing oneDNN's nChw16c (batch norms on oneDNN, the
// shift, the add and the pooling on the blocked values) computes the
// loss, every gradient and the running statistics of the same graph on
// NCHW within 1e-5, with fewer activation reorders; and again with oneDNN
// turned off after the build (zoo's kernels on NCHW copies, the path of
// a shape oneDNN declines).
func TestBlockedGraphMatchesNCHW(t *testing.T) {
	requireDNNL(t)
	ref := newBlockGraph(t, NCHW, 9)
	r0 := dnnl.ReorderCounts()
	ref.run(t)
	refReorders := dnnl.ReorderCounts().Sub(r0)
	compare := func(what string, b *blockGraph) {
		t.Helper()
		if l, r := b.loss.Loss(), ref.loss.Loss(); abs(l-r) > 1e-5*(1+abs(r)) || r == 0 {
			t.Fatalf("%s: loss %v, NCHW %v", what, l, r)
		}
		for i, n := range b.wrt {
			gb, err := n.Grad()
			if err != nil {
				t.Fatal(err)
			}
			gr, _ := ref.wrt[i].Grad()
			closeRel(t, what+": gradient of "+n.Name(), gb.Data().([]float32), gr.Data().([]float32), 1e-5)
		}
		for i, st := range b.st {
			closeRel(t, what+": running mean", st.Mean.Float32s(), ref.st[i].Mean.Float32s(), 1e-5)
			closeRel(t, what+": running variance", st.Variance.Float32s(), ref.st[i].Variance.Float32s(), 1e-5)
		}
	}

	blk := newBlockGraph(t, Blocked16, 9)
	nBlocked := 0
	for _, n := range blk.g.AllNodes() {
		if d, ok := Describe(n.Op()); ok && d.Blocked {
			nBlocked++
		}
	}
	if nBlocked < 10 {
		t.Fatalf("%d ops of the blocked graph say Blocked, want the convs, BNs, shift, add, pooling and their gradients", nBlocked)
	}
	bn0, r0 := dnnl.BNRuns(), dnnl.ReorderCounts()
	blk.run(t)
	reorders := dnnl.ReorderCounts().Sub(r0)
	if runs := dnnl.BNRuns() - bn0; runs != 6 {
		t.Fatalf("%d batch norms ran on oneDNN, want 3 forward + 3 backward", runs)
	}
	compare("blocked", blk)
	if reorders.In >= refReorders.In || reorders.Out >= refReorders.Out {
		t.Fatalf("reorders blocked %+v, NCHW %+v: want fewer in and out", reorders, refReorders)
	}

	plain := newBlockGraph(t, Blocked16, 9)
	withPlain(func() { plain.run(t) })
	compare("blocked on zoo's kernels", plain)
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}

// TestOneDNNBNMatchesPlain: oneDNN's training batch norm on nChw16c
// (forward with the batch's statistics, backward with and without the
// fused ReLU) against zoo's kernels on the same values in NCHW, within
// 1e-5 of each output's largest magnitude, on the channel counts and
// plane sizes of TSM-R50's stages (a 1x1 plane included).
func TestOneDNNBNMatchesPlain(t *testing.T) {
	requireDNNL(t)
	rng := rand.New(rand.NewSource(1))
	for _, sh := range [][3]int{{8, 64, 56 * 56}, {8, 256, 14 * 14}, {2, 1024, 16}, {8, 512, 4}, {8, 32, 1}} {
		for _, relu := range []bool{false, true} {
			n, c, hw := sh[0], sh[1], sh[2]
			x := randF32(rng, n*c*hw)
			for i := range x {
				x[i] = 2*x[i] + 1 // not already normalised
			}
			dy, scale, off := randF32(rng, n*c*hw), randF32(rng, c), randF32(rng, c)
			mean, invstd, variance, y := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, len(x))
			BNForwardTrain(n, c, hw, 1e-5, relu, x, scale, off, y, mean, invstd, variance)
			dx, ds, do := make([]float32, len(x)), make([]float32, c), make([]float32, c)
			BNBackward(n, c, hw, true, relu, x, y, dy, scale, mean, invstd, dx, ds, do)

			xb, yb, dyb, dxb := make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x)), make([]float32, len(x))
			ToBlocked16(n, c, hw, x, xb)
			ToBlocked16(n, c, hw, dy, dyb)
			var d dnnlBN
			m2, v2, ds2, do2 := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
			if ok, err := d.forward(n, c, hw, relu, 1e-5, xb, yb, scale, off, m2, v2); !ok || err != nil {
				t.Fatalf("%v relu %v: forward on oneDNN: %v %v", sh, relu, ok, err)
			}
			if ok, err := d.backward(xb, dyb, scale, m2, v2, dxb, ds2, do2); !ok || err != nil {
				t.Fatalf("%v relu %v: backward on oneDNN: %v %v", sh, relu, ok, err)
			}
			y2, dx2 := make([]float32, len(x)), make([]float32, len(x))
			ToNCHW(n, c, hw, yb, y2)
			ToNCHW(n, c, hw, dxb, dx2)
			for _, v := range []struct {
				what      string
				got, want []float32
			}{{"y", y2, y}, {"mean", m2, mean}, {"variance", v2, variance}, {"dx", dx2, dx}, {"dscale", ds2, ds}, {"doffset", do2, do}} {
				closeRel(t, fmt.Sprintf("%v relu %v: %s", sh, relu, v.what), v.got, v.want, 1e-5)
			}
		}
	}
}

// evalBlock builds a residual block as an inference graph builds it,
// each conv writing lay: a fused conv+BN+ReLU from the NCHW input, the
// shift, a 3x3 stride-2 conv+BN, a 1x1 stride-2 projection shortcut,
// conv+BN+add+ReLU in the shortcut's layout, then a conv+BN back to NCHW
// and the global pooling of the block's output, and a conv+BN+add+ReLU
// from the first conv's output with the NCHW input as its shortcut. It
// returns the graph and the three outputs.
func evalBlock(t *testing.T, lay Layout) (*G.ExprGraph, [3]*G.Node) {
	t.Helper()
	rng := rand.New(rand.NewSource(21))
	const n, c, k, hw = 4, 32, 48, 9
	g := G.NewGraph()
	in := func(name string, d *tensor.Dense) *G.Node { return inputNode(g, name, d) }
	must := func(n *G.Node, err error) *G.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	conv := func(x *G.Node, name string, cout, r, stride int, relu bool, short *G.Node, out Layout) *G.Node {
		cin := x.Shape()[1]
		w, s, o := in(name+"w", rand32(rng, cout, cin, r, r)), in(name+"s", rand32(rng, cout)), in(name+"o", rand32(rng, cout))
		st := bnState32(rng, cout)
		if short != nil {
			return must(ConvBNAddReLUEval(x, w, s, o, short, stride, r/2, st))
		}
		return must(ConvBNEvalTo(x, w, s, o, stride, r/2, st, relu, out))
	}
	x := in("x", rand32(rng, n, c, hw, hw))
	a := conv(x, "a", k, 1, 1, true, nil, lay)
	h := must(TemporalShift(a, 2, 0.125)) // 6 of 48 channels each way: splits a block
	h = conv(h, "b", k, 3, 2, true, nil, lay)
	short := conv(x, "s", 64, 1, 2, false, nil, lay)
	h = conv(h, "c", 64, 1, 1, false, short, lay)
	d := conv(h, "d", 32, 3, 1, false, nil, NCHW)
	e := conv(a, "e", c, 1, 1, false, x, NCHW) // x, NCHW, as the shortcut: a ResNet-18's first block
	return g, [3]*G.Node{d, must(GlobalAvgPool(h)), e}
}

// TestBlockedEvalMatchesNCHW: an inference block whose fused conv+BN
// ops read and write nChw16c (oneDNN without reorders of its
// activations, the shift and the pooling on the blocks, a last conv
// back to NCHW) gives the values of the same block on NCHW within 1e-5,
// run after run, with fewer activation reorders and no kept output; and
// again with oneDNN turned off after the build (zoo's kernels on NCHW
// copies, the path of a shape oneDNN declines).
func TestBlockedEvalMatchesNCHW(t *testing.T) {
	requireDNNL(t)
	run := func(lay Layout, runs int) ([3][]float32, dnnl.Reorders, int) {
		t.Helper()
		g, outs := evalBlock(t, lay)
		nb := 0
		for _, nd := range g.AllNodes() {
			if d, ok := Describe(nd.Op()); ok && d.Blocked {
				nb++
			}
		}
		m := G.NewTapeMachine(g)
		defer m.Close()
		r0 := dnnl.ReorderCounts()
		for range runs {
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			m.Reset()
		}
		var v [3][]float32
		for i, o := range outs {
			v[i] = append([]float32(nil), o.Value().(*tensor.Dense).Float32s()...)
		}
		return v, dnnl.ReorderCounts().Sub(r0), nb
	}
	want, rRef, nRef := run(NCHW, 1)
	h0 := dnnl.Handoffs()
	got, rBlk, nBlk := run(Blocked16, 2)
	if d := dnnl.Handoffs() - h0; d != 0 {
		t.Errorf("the blocked block read %d kept outputs, want none", d)
	}
	if nRef != 0 || nBlk != 8 {
		t.Errorf("%d ops of the blocked block say Blocked (want 8: the 6 convs, the shift, the pooling), %d of the NCHW one", nBlk, nRef)
	}
	// NCHW: x into a and s, the shifted NCHW input into b (e reads a's
	// kept output, c adds s's in place); all 6 outputs out (the
	// TapeMachine keeps every value); e's summand x preloaded. Blocked:
	// x into a and s; d's and e's outputs out; e's summand x preloaded.
	if w := (dnnl.Reorders{In: 3, Out: 6, Weights: 6, Sum: 1}); rRef != w {
		t.Errorf("NCHW block: reorders %+v, want %+v", rRef, w)
	}
	if w := (dnnl.Reorders{In: 2 * 2, Out: 2 * 2, Weights: 6 * 2, Sum: 1 * 2}); rBlk != w {
		t.Errorf("blocked block, 2 runs: reorders %+v, want %+v", rBlk, w)
	}
	for i := range want {
		closeRel(t, fmt.Sprintf("blocked output %d", i), got[i], want[i], 1e-5)
	}
	var plain [3][]float32
	withPlain(func() { plain, _, _ = run(Blocked16, 1) })
	for i := range want {
		closeRel(t, fmt.Sprintf("blocked output %d on zoo's kernels", i), plain[i], want[i], 1e-5)
	}
}
