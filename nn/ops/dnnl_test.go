//go:build onednn

package ops

import (
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dnnlCases: the conv cases of the plain kernels' tests plus shapes of
// TSM-ResNet's convolutions (channel counts that fill oneDNN's 16-wide
// blocks and ones that do not).
var dnnlCases = append(append([]struct {
	name string
	g    ConvGeom
}{}, convCases...), []struct {
	name string
	g    ConvGeom
}{
	{"stem7x7s2", ConvGeom{N: 2, C: 3, H: 30, W: 28, K: 16, R: 7, S: 7, Stride: 2, Pad: 3}},
	{"3x3c32", ConvGeom{N: 2, C: 32, H: 9, W: 10, K: 48, R: 3, S: 3, Stride: 1, Pad: 1}},
	{"3x3s2c32", ConvGeom{N: 3, C: 32, H: 11, W: 11, K: 32, R: 3, S: 3, Stride: 2, Pad: 1}},
	{"1x1c64", ConvGeom{N: 2, C: 64, H: 7, W: 8, K: 256, R: 1, S: 1, Stride: 1}},
	{"1x1s2c64", ConvGeom{N: 2, C: 64, H: 8, W: 8, K: 128, R: 1, S: 1, Stride: 2}},
	{"1x1c20", ConvGeom{N: 2, C: 20, H: 5, W: 5, K: 12, R: 1, S: 1, Stride: 1}},
}...)

func rand32(rng *rand.Rand, shape ...int) *tensor.Dense {
	return toF32(randDense(rng, shape...))
}

// closeRel fails unless got and want agree within tol relative to want's
// largest magnitude (element-wise relative error is meaningless where
// sums cancel to about zero).
func closeRel(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	var scale float64
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol*scale) {
			t.Fatalf("%s[%d] = %v, plain kernel %v (|diff| %.3g > %.0e x max |y| %.3g)", what, i, got[i], want[i], d, tol, scale)
		}
	}
}

// withPlain runs f with oneDNN turned off: the ops use kernels.go.
func withPlain(f func()) {
	dnnlOn = false
	defer func() { dnnlOn = true }()
	f()
}

func requireDNNL(t *testing.T) {
	t.Helper()
	if k := Kernels(); !strings.HasPrefix(k, "oneDNN") {
		t.Fatalf("Kernels() = %q, want oneDNN in a -tags onednn build", k)
	}
}

// tapeRuns runs g on gorgonia's TapeMachine runs times and returns y's
// float32 values after the last run.
func tapeRuns(t *testing.T, g *G.ExprGraph, runs int, y *G.Node) []float32 {
	t.Helper()
	m := G.NewTapeMachine(g)
	defer m.Close()
	for range runs {
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		m.Reset()
	}
	return append([]float32(nil), y.Value().(*tensor.Dense).Float32s()...)
}

func do32(t *testing.T, op G.Op, in ...*tensor.Dense) []float32 {
	t.Helper()
	vs := make([]G.Value, len(in))
	for i, d := range in {
		vs[i] = d
	}
	y, err := op.Do(vs...)
	if err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), y.(*tensor.Dense).Float32s()...)
}

// TestOneDNNConvMatchesPlain: forward, backward data and backward weights
// on oneDNN against the im2col+gemm kernels, float32, within 1e-5.
func TestOneDNNConvMatchesPlain(t *testing.T) {
	requireDNNL(t)
	for _, tc := range dnnlCases {
		t.Run(tc.name, func(t *testing.T) {
			g := tc.g
			rng := rand.New(rand.NewSource(11))
			x, w := rand32(rng, g.N, g.C, g.H, g.W), rand32(rng, g.K, g.C, g.R, g.S)
			dy := rand32(rng, g.N, g.K, g.OH(), g.OW())
			fwd := &convOp{base: newBase("c"), g: g, dataGrad: true}
			bd := &convDataGradOp{base: newBase("d"), g: g}
			bw := &convFilterGradOp{base: newBase("w"), g: g}
			fwd.out, bd.out, bw.out = tensor.Shape{g.N, g.K, g.OH(), g.OW()}, tensor.Shape{g.N, g.C, g.H, g.W}, tensor.Shape{g.K, g.C, g.R, g.S}
			y, dx, dw := do32(t, fwd, x, w), do32(t, bd, w, dy), do32(t, bw, x, dy)
			if fwd.dn.p == nil || bd.dn.p == nil || bw.dn.p == nil {
				t.Fatalf("oneDNN declined: %v %v %v", fwd.dn.err, bd.dn.err, bw.dn.err)
			}
			t.Logf("forward %s, backward data %s, backward weights %s", fwd.dn.p.Impl(), bd.dn.p.Impl(), bw.dn.p.Impl())
			var py, pdx, pdw []float32
			withPlain(func() {
				p1 := &convOp{base: newBase("c"), fixedShape: fwd.fixedShape, g: g, dataGrad: true}
				p2 := &convDataGradOp{base: newBase("d"), fixedShape: bd.fixedShape, g: g}
				p3 := &convFilterGradOp{base: newBase("w"), fixedShape: bw.fixedShape, g: g}
				py, pdx, pdw = do32(t, p1, x, w), do32(t, p2, w, dy), do32(t, p3, x, dy)
			})
			closeRel(t, "forward y", y, py, 1e-5)
			closeRel(t, "backward data dx", dx, pdx, 1e-5)
			closeRel(t, "backward weights dw", dw, pdw, 1e-5)
			// a second run reuses the primitive and overwrites the output
			p := fwd.dn.p
			closeRel(t, "forward y, second run", do32(t, fwd, x, w), py, 1e-5)
			closeRel(t, "backward weights dw, second run", do32(t, bw, x, dy), pdw, 1e-5)
			if fwd.dn.p != p {
				t.Fatal("the second run made a new primitive")
			}
		})
	}
}

func bnState32(rng *rand.Rand, k int) *BNState {
	st := &BNState{Mean: alloc(tensor.Float32, k), Variance: alloc(tensor.Float32, k), Momentum: 0.9, Eps: 1e-5}
	for i := 0; i < k; i++ {
		st.Mean.Float32s()[i] = float32(rng.NormFloat64())
		st.Variance.Float32s()[i] = float32(0.5 + rng.Float64())
	}
	return st
}

// convBNVariants are the fused inference ops over one geometry: plain,
// with ReLU, with the residual add, and with the temporal shift.
func convBNVariants(g ConvGeom) []struct {
	name string
	mk   func(st *BNState) *convBNOp
} {
	mk := func(relu, residual bool, shift *shiftGeom) func(st *BNState) *convBNOp {
		return func(st *BNState) *convBNOp {
			return &convBNOp{base: newBase("cbn"), fixedShape: fixedShape{tensor.Shape{g.N, g.K, g.OH(), g.OW()}},
				g: g, st: st, relu: relu, residual: residual, shift: shift}
		}
	}
	v := []struct {
		name string
		mk   func(st *BNState) *convBNOp
	}{
		{"bn", mk(false, false, nil)},
		{"bn_relu", mk(true, false, nil)},
		{"bn_add_relu", mk(true, true, nil)},
	}
	if g.pointwise() && g.N%2 == 0 {
		v = append(v, struct {
			name string
			mk   func(st *BNState) *convBNOp
		}{"shift_bn_relu", mk(true, false, &shiftGeom{t: 2, c1: g.C / 8, c2: g.C / 4})})
	}
	return v
}

// TestOneDNNConvBNMatchesPlain: the inference fusions (batch norm as
// scale and shift post-ops, the residual as a sum post-op, the ReLU, the
// shift before the conv) on oneDNN against the plain fused kernels.
func TestOneDNNConvBNMatchesPlain(t *testing.T) {
	requireDNNL(t)
	for _, tc := range dnnlCases {
		for _, v := range convBNVariants(tc.g) {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				g := tc.g
				rng := rand.New(rand.NewSource(12))
				x, w := rand32(rng, g.N, g.C, g.H, g.W), rand32(rng, g.K, g.C, g.R, g.S)
				scale, offset := rand32(rng, g.K), rand32(rng, g.K)
				short := rand32(rng, g.N, g.K, g.OH(), g.OW())
				st := bnState32(rng, g.K)
				in := []*tensor.Dense{x, w, scale, offset}
				op := v.mk(st)
				if op.residual {
					in = append(in, short)
				}
				got := do32(t, op, in...)
				if op.dn.p == nil {
					t.Fatalf("oneDNN declined: %v", op.dn.err)
				}
				var want []float32
				withPlain(func() { want = do32(t, v.mk(st), in...) })
				closeRel(t, "y", got, want, 1e-5)
			})
		}
	}
}

// TestOneDNNConvBNBF16: bf16 inference convs stay within bfloat16's
// precision (8 bits of mantissa in the inputs) of the fp32 ones, and
// SetPrecision answers bad values with an error.
func TestOneDNNConvBNBF16(t *testing.T) {
	requireDNNL(t)
	if err := SetPrecision("fp16"); err == nil || !strings.Contains(err.Error(), "fp32 or bf16") {
		t.Fatalf("SetPrecision(fp16) = %v", err)
	}
	if err := SetPrecision("bf16"); err != nil {
		t.Fatal(err) // this project's machines have AVX512_BF16
	}
	defer SetPrecision("fp32")
	for _, tc := range dnnlCases[len(convCases):] {
		for _, v := range convBNVariants(tc.g) {
			t.Run(tc.name+"/"+v.name, func(t *testing.T) {
				g := tc.g
				rng := rand.New(rand.NewSource(13))
				x, w := rand32(rng, g.N, g.C, g.H, g.W), rand32(rng, g.K, g.C, g.R, g.S)
				scale, offset, st := rand32(rng, g.K), rand32(rng, g.K), bnState32(rng, g.K)
				in := []*tensor.Dense{x, w, scale, offset}
				op := v.mk(st)
				if op.residual {
					in = append(in, rand32(rng, g.N, g.K, g.OH(), g.OW()))
				}
				got := do32(t, op, in...)
				if !op.dn.spec.BF16 {
					t.Fatal("the op did not run in bf16")
				}
				t.Logf("bf16: %s", op.dn.p.Impl())
				bf16.Store(false)
				want := do32(t, v.mk(st), in...)
				bf16.Store(true)
				closeRel(t, "y bf16", got, want, 2e-2)
				same := 0
				for i := range got {
					if got[i] == want[i] {
						same++
					}
				}
				if same == len(got) {
					t.Fatal("bf16 gave exactly the fp32 result: not bf16")
				}
			})
		}
	}
}

// TestOneDNNChainMatchesPlain: a graph of inference convs each reading
// the previous one's output (conv+BN+ReLU, 3x3 conv+BN, conv+BN+add+ReLU
// with the first output as the shortcut, then a shifted 1x1) reads the
// kept blocked outputs without reorders, and gives the plain kernels'
// values, run after run.
func TestOneDNNChainMatchesPlain(t *testing.T) {
	requireDNNL(t)
	rng := rand.New(rand.NewSource(14))
	const n, c, h, w = 4, 32, 10, 9
	x := rand32(rng, n, c, h, w)
	type layer struct {
		w, scale, offset *tensor.Dense
		st               *BNState
	}
	mk := func(k, ci, r int) layer {
		return layer{rand32(rng, k, ci, r, r), rand32(rng, k), rand32(rng, k), bnState32(rng, k)}
	}
	ls := []layer{mk(32, c, 1), mk(48, 32, 3), mk(32, 48, 1), mk(32, 32, 1)}
	build := func() (*G.ExprGraph, *G.Node) {
		g := G.NewGraph()
		in := func(name string, d *tensor.Dense) *G.Node { return inputNode(g, name, d) }
		p := func(i int, name string) (*G.Node, *G.Node, *G.Node) {
			l := ls[i]
			return in(name+"w", l.w), in(name+"s", l.scale), in(name+"o", l.offset)
		}
		must := func(n *G.Node, err error) *G.Node {
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		w0, s0, o0 := p(0, "a")
		a := must(ConvBNEval(in("x", x), w0, s0, o0, 1, 0, ls[0].st, true))
		w1, s1, o1 := p(1, "b")
		b := must(ConvBNEval(a, w1, s1, o1, 1, 1, ls[1].st, false))
		w2, s2, o2 := p(2, "c")
		cc := must(ConvBNAddReLUEval(b, w2, s2, o2, a, 1, 0, ls[2].st))
		w3, s3, o3 := p(3, "d")
		return g, must(ShiftConvBNEval(cc, w3, s3, o3, 2, 0.125, ls[3].st, true))
	}
	run := func(runs int) []float32 {
		g, y := build()
		return tapeRuns(t, g, runs, y)
	}
	var want []float32
	withPlain(func() { want = run(1) })
	before := dnnl.Handoffs()
	got := run(3)
	if d := dnnl.Handoffs() - before; d != 6 {
		t.Errorf("%d handoffs in 3 runs, want 6 (two chained inputs per run)", d)
	}
	closeRel(t, "y", got, want, 1e-5)
}

// TestOneDNNShiftFromKept: a shifted 1x1 conv whose input is a chained
// conv's output, with shifted channel ranges of whole 16-channel blocks
// (1/8 of 128 channels, 2 frames per clip, 3 clips), shifts the kept
// blocked output in that layout instead of the NCHW copy, and gives the
// plain kernels' values, run after run.
func TestOneDNNShiftFromKept(t *testing.T) {
	requireDNNL(t)
	rng := rand.New(rand.NewSource(15))
	const n, c, h, w = 6, 32, 7, 5
	x := rand32(rng, n, c, h, w)
	w0, s0, o0, st0 := rand32(rng, 128, c, 1, 1), rand32(rng, 128), rand32(rng, 128), bnState32(rng, 128)
	w1, s1, o1, st1 := rand32(rng, 48, 128, 1, 1), rand32(rng, 48), rand32(rng, 48), bnState32(rng, 48)
	run := func(runs int) []float32 {
		g := G.NewGraph()
		in := func(name string, d *tensor.Dense) *G.Node { return inputNode(g, name, d) }
		a, err := ConvBNEval(in("x", x), in("w0", w0), in("s0", s0), in("o0", o0), 1, 0, st0, true)
		if err != nil {
			t.Fatal(err)
		}
		y, err := ShiftConvBNEval(a, in("w1", w1), in("s1", s1), in("o1", o1), 2, 0.125, st1, false)
		if err != nil {
			t.Fatal(err)
		}
		return tapeRuns(t, g, runs, y)
	}
	var want []float32
	withPlain(func() { want = run(1) })
	before := dnnl.Handoffs()
	got := run(3)
	if d := dnnl.Handoffs() - before; d != 3 {
		t.Errorf("%d handoffs in 3 runs, want 3 (the shifted input from the kept output)", d)
	}
	closeRel(t, "y", got, want, 1e-5)
}

// TestOneDNNShiftFromKeptBF16: in bf16 a conv with a residual sum writes
// its kept output where oneDNN picks it (NHWC for 1x1 with a sum here);
// the shifted 1x1 conv after it shifts that kept output in its layout and
// stays within bf16's tolerance of the plain fp32 kernels, run after run.
func TestOneDNNShiftFromKeptBF16(t *testing.T) {
	requireDNNL(t)
	if !dnnl.HasBF16() {
		t.Fatal("oneDNN reports no AVX512_BF16 on this CPU: this project's machines have it (TestOneDNNConvBNBF16 fails too)")
	}
	rng := rand.New(rand.NewSource(16))
	const n, c, h, w = 6, 128, 7, 5
	x, short := rand32(rng, n, c, h, w), rand32(rng, n, 128, h, w)
	w0, s0, o0, st0 := rand32(rng, 128, c, 1, 1), rand32(rng, 128), rand32(rng, 128), bnState32(rng, 128)
	w1, s1, o1, st1 := rand32(rng, 48, 128, 1, 1), rand32(rng, 48), rand32(rng, 48), bnState32(rng, 48)
	run := func(runs int) []float32 {
		g := G.NewGraph()
		in := func(name string, d *tensor.Dense) *G.Node { return inputNode(g, name, d) }
		a, err := ConvBNAddReLUEval(in("x", x), in("w0", w0), in("s0", s0), in("o0", o0), in("short", short), 1, 0, st0)
		if err != nil {
			t.Fatal(err)
		}
		y, err := ShiftConvBNEval(a, in("w1", w1), in("s1", s1), in("o1", o1), 2, 0.125, st1, false)
		if err != nil {
			t.Fatal(err)
		}
		return tapeRuns(t, g, runs, y)
	}
	var want []float32
	withPlain(func() { want = run(1) })
	if err := SetPrecision("bf16"); err != nil {
		t.Fatal(err)
	}
	defer SetPrecision("fp32")
	before := dnnl.Handoffs()
	got := run(3)
	if d := dnnl.Handoffs() - before; d != 3 {
		t.Errorf("%d handoffs in 3 runs, want 3 (the shifted input from the kept output)", d)
	}
	closeRel(t, "y", got, want, 2e-2)
}
