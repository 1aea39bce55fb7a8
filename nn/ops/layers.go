package ops

import (
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// ---- AddReLU ----

type addReLUOp struct {
	base
	fixedShape
	lay Layout // of a, b and y (element-wise: any, as long as they agree)
}

// AddReLU returns max(a+b, 0), the end of a residual block. a and b must
// have the same layout (LayoutOf), which the output has too.
func AddReLU(a, b *G.Node) (*G.Node, error) {
	if !a.Shape().Eq(b.Shape()) {
		return nil, fmt.Errorf("add+relu: shapes %v and %v differ", a.Shape(), b.Shape())
	}
	if la, lb := LayoutOf(a), LayoutOf(b); la != lb {
		return nil, fmt.Errorf("add+relu: layouts %v and %v differ", la, lb)
	}
	return G.ApplyOp(&addReLUOp{newBase("AddReLU"), fixedShape{a.Shape().Clone()}, LayoutOf(a)}, a, b)
}

func (op *addReLUOp) layout() Layout { return op.lay }

func (op *addReLUOp) Arity() int    { return 2 }
func (op *addReLUOp) Type() hm.Type { d := len(op.out); return fnType(d, d, d) }
func (op *addReLUOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 2)
	if err != nil {
		return nil, err
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	err = run(y.Dtype(), func() { addReLU(data[float32](in[0]), data[float32](in[1]), data[float32](y)) },
		func() { addReLU(data[float64](in[0]), data[float64](in[1]), data[float64](y)) })
	return y, err
}

func addReLU[T Float](a, b, y []T) {
	parallelFor((len(y)+4095)/4096, func(lo, hi int) {
		for i := lo * 4096; i < min(hi*4096, len(y)); i++ {
			y[i] = max(a[i]+b[i], 0)
		}
	})
}

func (op *addReLUOp) DiffWRT(int) []bool { return []bool{true, true} }
func (op *addReLUOp) SymDiff(_ G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&reluGradOp{newBase("ReLUGrad"), fixedShape{op.out.Clone()}, op.lay}, output, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{g, g}, nil
}

// reluGradOp: (y, dy) -> dy where y > 0, else 0.
type reluGradOp struct {
	base
	fixedShape
	lay Layout
}

func (op *reluGradOp) layout() Layout { return op.lay }

func (op *reluGradOp) Arity() int    { return 2 }
func (op *reluGradOp) Type() hm.Type { d := len(op.out); return fnType(d, d, d) }
func (op *reluGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 2)
	if err != nil {
		return nil, err
	}
	dx := op.output(in[0].Dtype(), in, op.out...)
	err = run(dx.Dtype(), func() { reluGrad(data[float32](in[0]), data[float32](in[1]), data[float32](dx)) },
		func() { reluGrad(data[float64](in[0]), data[float64](in[1]), data[float64](dx)) })
	return dx, err
}

func reluGrad[T Float](y, dy, dx []T) {
	parallelFor((len(y)+4095)/4096, func(lo, hi int) {
		for i := lo * 4096; i < min(hi*4096, len(y)); i++ {
			dx[i] = pos(dy[i], y[i])
		}
	})
}

// ---- MaxPool ----

type maxPoolOp struct {
	base
	fixedShape
	nc, h, w, k, stride, pad int
	argmax                   []int32
	// noGrad: no gradient op reads argmax (PlanReaders): a float32 pool
	// may run on oneDNN, which writes no argmax.
	noGrad bool
	dn     dnnlPool
}

// MaxPool is a k×k max pool with the given stride and padding on NCHW x;
// padded cells never win, as in fluid's pool2d.
func MaxPool(x *G.Node, k, stride, pad int) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || k < 1 || stride < 1 || pad < 0 || pad >= k {
		return nil, fmt.Errorf("max pool: input %v, kernel %d, stride %d, pad %d", xs, k, stride, pad)
	}
	if l := LayoutOf(x); l != NCHW {
		return nil, fmt.Errorf("max pool: input in layout %v, want NCHW", l)
	}
	oh, ow := (xs[2]+2*pad-k)/stride+1, (xs[3]+2*pad-k)/stride+1
	if oh < 1 || ow < 1 {
		return nil, fmt.Errorf("max pool: input %v too small", xs)
	}
	op := &maxPoolOp{base: newBase("MaxPool"), fixedShape: fixedShape{tensor.Shape{xs[0], xs[1], oh, ow}},
		nc: xs[0] * xs[1], h: xs[2], w: xs[3], k: k, stride: stride, pad: pad}
	return G.ApplyOp(op, x)
}

func (op *maxPoolOp) Arity() int    { return 1 }
func (op *maxPoolOp) Type() hm.Type { return fnType(4, 4) }
func (op *maxPoolOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	if in[0].Shape().TotalSize() != op.nc*op.h*op.w {
		return nil, fmt.Errorf("max pool: input shape %v", in[0].Shape())
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	if op.noGrad && y.Dtype() == tensor.Float32 {
		if done, err := op.dn.maxPool(op, data[float32](in[0]), data[float32](y)); done || err != nil {
			return y, err
		}
	}
	if len(op.argmax) != y.Shape().TotalSize() { // every element is written
		op.argmax = make([]int32, y.Shape().TotalSize())
	}
	err = run(y.Dtype(), func() {
		MaxPoolForward(op.nc, op.h, op.w, op.k, op.stride, op.pad, data[float32](in[0]), data[float32](y), op.argmax)
	}, func() {
		MaxPoolForward(op.nc, op.h, op.w, op.k, op.stride, op.pad, data[float64](in[0]), data[float64](y), op.argmax)
	})
	return y, err
}

func (op *maxPoolOp) DiffWRT(int) []bool { return []bool{true} }
func (op *maxPoolOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&maxPoolGradOp{newBase("MaxPoolGrad"), fixedShape{inputs[0].Shape().Clone()}, op}, grad)
	return G.Nodes{g}, err
}

type maxPoolGradOp struct {
	base
	fixedShape
	mp *maxPoolOp
}

func (op *maxPoolGradOp) Arity() int    { return 1 }
func (op *maxPoolGradOp) Type() hm.Type { return fnType(4, 4) }
func (op *maxPoolGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	mp := op.mp
	if mp.argmax == nil {
		return nil, fmt.Errorf("max pool backward ran before its forward pass")
	}
	dx := op.output(in[0].Dtype(), in, op.out...)
	ohw := mp.out[2] * mp.out[3]
	err = run(dx.Dtype(), func() { MaxPoolBackward(mp.nc, mp.h*mp.w, ohw, mp.argmax, data[float32](in[0]), data[float32](dx)) },
		func() { MaxPoolBackward(mp.nc, mp.h*mp.w, ohw, mp.argmax, data[float64](in[0]), data[float64](dx)) })
	return dx, err
}

// ---- GlobalAvgPool ----

type gapOp struct {
	base
	fixedShape
	in   tensor.Shape
	back bool
	lay  Layout // of the 4-D side
}

// GlobalAvgPool averages each channel of x (NCHW or, by LayoutOf,
// Blocked16) over H and W, giving [N,C].
func GlobalAvgPool(x *G.Node) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 {
		return nil, fmt.Errorf("global average pool: input %v, want 4 dims", xs)
	}
	return G.ApplyOp(&gapOp{newBase("GlobalAvgPool"), fixedShape{tensor.Shape{xs[0], xs[1]}}, xs.Clone(), false, LayoutOf(x)}, x)
}

func (op *gapOp) layout() Layout {
	if op.back {
		return op.lay
	}
	return NCHW
}

func (op *gapOp) Arity() int { return 1 }
func (op *gapOp) Type() hm.Type {
	if op.back {
		return fnType(4, 2)
	}
	return fnType(2, 4)
}
func (op *gapOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	full := op.in // the 4-D side
	if op.back {
		full = op.out
	}
	nc, hw := full[0]*full[1], full[2]*full[3]
	err = run(y.Dtype(), func() {
		if op.lay == Blocked16 {
			gapBlocked16(full[0], full[1], hw, op.back, data[float32](in[0]), data[float32](y))
			return
		}
		gap(nc, hw, op.back, data[float32](in[0]), data[float32](y))
	},
		func() { gap(nc, hw, op.back, data[float64](in[0]), data[float64](y)) })
	return y, err
}

func gap[T Float](nc, hw int, back bool, x, y []T) {
	inv := 1 / T(hw)
	for p := 0; p < nc; p++ {
		if back {
			v := x[p] * inv
			for i := range y[p*hw : (p+1)*hw] {
				y[p*hw+i] = v
			}
			continue
		}
		var s float64
		for _, v := range x[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		y[p] = T(s / float64(hw))
	}
}

func (op *gapOp) DiffWRT(int) []bool { return []bool{true} }
func (op *gapOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.back {
		return nil, fmt.Errorf("global average pool: no second derivative")
	}
	g, err := G.ApplyOp(&gapOp{newBase("GlobalAvgPoolGrad"), fixedShape{op.in.Clone()}, op.out.Clone(), true, op.lay}, grad)
	return G.Nodes{g}, err
}

// ---- TemporalShift ----

type shiftOp struct {
	base
	fixedShape
	t, c1, c2 int
	back      bool
	lay       Layout // of x and y
}

func (op *shiftOp) layout() Layout { return op.lay }

// TemporalShift applies TSM's shift to x ([N*T, C, H, W], T = segNum frames
// per clip) in Paddle's direction: with c1 = int(C*ratio) and
// c2 = int(C*2*ratio), channels [0,c1) take the previous frame, [c1,c2)
// the next one, zero-filled at the clip's ends.
func TemporalShift(x *G.Node, segNum int, ratio float64) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 || segNum < 1 || xs[0]%segNum != 0 {
		return nil, fmt.Errorf("temporal shift: input %v is not [N*%d, C, H, W]", xs, segNum)
	}
	c := xs[1]
	c1, c2 := int(float64(c)*ratio), int(float64(c)*2*ratio)
	return G.ApplyOp(&shiftOp{newBase("TemporalShift"), fixedShape{xs.Clone()}, segNum, c1, c2, false, LayoutOf(x)}, x)
}

func (op *shiftOp) Arity() int    { return 1 }
func (op *shiftOp) Type() hm.Type { return fnType(4, 4) }
func (op *shiftOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	if err := checkShape("temporal shift input", in[0].Shape(), op.out...); err != nil {
		return nil, err
	}
	s := op.out
	y := op.output(in[0].Dtype(), in, s...)
	err = run(y.Dtype(), func() {
		if op.lay == Blocked16 {
			ShiftBlocked16(s[0], op.t, s[1], s[2]*s[3], op.c1, op.c2, op.back, data[float32](in[0]), data[float32](y))
			return
		}
		Shift(s[0], op.t, s[1], s[2]*s[3], op.c1, op.c2, op.back, data[float32](in[0]), data[float32](y))
	},
		func() {
			Shift(s[0], op.t, s[1], s[2]*s[3], op.c1, op.c2, op.back, data[float64](in[0]), data[float64](y))
		})
	return y, err
}

func (op *shiftOp) DiffWRT(int) []bool { return []bool{true} }
func (op *shiftOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	name := "TemporalShiftGrad"
	if op.back {
		name = "TemporalShift"
	}
	g, err := G.ApplyOp(&shiftOp{newBase(name), fixedShape{op.out.Clone()}, op.t, op.c1, op.c2, !op.back, op.lay}, grad)
	return G.Nodes{g}, err
}

// ---- Dropout ----

// Uniform is a source of uniform [0,1) numbers; *math/rand.Rand is one.
type Uniform interface{ Float64() float64 }

type dropoutOp struct {
	base
	fixedShape
	p     float64
	train bool
	rng   Uniform
	mask  []bool
}

// Dropout is fluid's dropout with dropout_implementation
// "downgrade_in_infer": training zeroes each element with probability p
// and does not rescale the others; inference multiplies by 1-p. Training
// draws its mask from rng, one number per element in row-major order: an
// element is dropped when its number is below p.
func Dropout(x *G.Node, p float64, train bool, rng Uniform) (*G.Node, error) {
	if p < 0 || p >= 1 || (train && rng == nil) {
		return nil, fmt.Errorf("dropout: probability %v (or no random source)", p)
	}
	return G.ApplyOp(&dropoutOp{base: newBase("Dropout"), fixedShape: fixedShape{x.Shape().Clone()}, p: p, train: train, rng: rng}, x)
}

func (op *dropoutOp) Arity() int    { return 1 }
func (op *dropoutOp) Type() hm.Type { d := len(op.out); return fnType(d, d) }
func (op *dropoutOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	n := in[0].Shape().TotalSize()
	if op.train {
		op.mask = make([]bool, n)
		for i := range op.mask {
			op.mask[i] = op.rng.Float64() >= op.p
		}
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	err = run(y.Dtype(), func() { dropout(op, data[float32](in[0]), data[float32](y)) },
		func() { dropout(op, data[float64](in[0]), data[float64](y)) })
	return y, err
}

func dropout[T Float](op *dropoutOp, x, y []T) {
	if !op.train {
		k := T(1 - op.p)
		for i, v := range x {
			y[i] = v * k
		}
		return
	}
	for i, v := range x {
		if op.mask[i] {
			y[i] = v
		} else {
			y[i] = 0
		}
	}
}

func (op *dropoutOp) DiffWRT(int) []bool { return []bool{true} }
func (op *dropoutOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&dropoutGradOp{newBase("DropoutGrad"), fixedShape{op.out.Clone()}, op}, grad)
	return G.Nodes{g}, err
}

type dropoutGradOp struct {
	base
	fixedShape
	d *dropoutOp
}

func (op *dropoutGradOp) Arity() int    { return 1 }
func (op *dropoutGradOp) Type() hm.Type { d := len(op.out); return fnType(d, d) }
func (op *dropoutGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	if op.d.train && op.d.mask == nil {
		return nil, fmt.Errorf("dropout backward ran before its forward pass")
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	err = run(y.Dtype(), func() { dropout(op.d, data[float32](in[0]), data[float32](y)) },
		func() { dropout(op.d, data[float64](in[0]), data[float64](y)) })
	return y, err
}

// ---- SegmentMean ----

type segMeanOp struct {
	base
	fixedShape
	t    int
	back bool
}

// SegmentMean averages x ([N*T, C]) over each clip's T segments: [N, C].
func SegmentMean(x *G.Node, segNum int) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 2 || segNum < 1 || xs[0]%segNum != 0 {
		return nil, fmt.Errorf("segment mean: input %v is not [N*%d, C]", xs, segNum)
	}
	return G.ApplyOp(&segMeanOp{newBase("SegmentMean"), fixedShape{tensor.Shape{xs[0] / segNum, xs[1]}}, segNum, false}, x)
}

func (op *segMeanOp) Arity() int    { return 1 }
func (op *segMeanOp) Type() hm.Type { return fnType(2, 2) }
func (op *segMeanOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	err = run(y.Dtype(), func() { segMean(op, data[float32](in[0]), data[float32](y)) },
		func() { segMean(op, data[float64](in[0]), data[float64](y)) })
	return y, err
}

func segMean[T Float](op *segMeanOp, x, y []T) {
	c := op.out[1]
	inv := 1 / T(op.t)
	if op.back { // x is [N,C], y is [N*T,C]
		for f := 0; f < op.out[0]; f++ {
			n := f / op.t
			for j := 0; j < c; j++ {
				y[f*c+j] = x[n*c+j] * inv
			}
		}
		return
	}
	for n := 0; n < op.out[0]; n++ {
		for j := 0; j < c; j++ {
			var s float64
			for t := 0; t < op.t; t++ {
				s += float64(x[(n*op.t+t)*c+j])
			}
			y[n*c+j] = T(s / float64(op.t))
		}
	}
}

func (op *segMeanOp) DiffWRT(int) []bool { return []bool{true} }
func (op *segMeanOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	if op.back {
		return nil, fmt.Errorf("segment mean: no second derivative")
	}
	g, err := G.ApplyOp(&segMeanOp{newBase("SegmentMeanGrad"), fixedShape{inputs[0].Shape().Clone()}, op.t, true}, grad)
	return G.Nodes{g}, err
}

// ---- Linear ----

type linearOp struct {
	base
	fixedShape
	n, c, k int
}

// Linear is fluid's fc: y = x·w + b with x [N,C], w [C,K] (input-major, as
// fc_0.w_0 is stored) and b [K].
func Linear(x, w, b *G.Node) (*G.Node, error) {
	xs, ws, bs := x.Shape(), w.Shape(), b.Shape()
	if xs.Dims() != 2 || ws.Dims() != 2 || xs[1] != ws[0] || !bs.Eq(tensor.Shape{ws[1]}) {
		return nil, fmt.Errorf("linear: shapes x %v, w %v, b %v do not fit", xs, ws, bs)
	}
	return G.ApplyOp(&linearOp{newBase("Linear"), fixedShape{tensor.Shape{xs[0], ws[1]}}, xs[0], xs[1], ws[1]}, x, w, b)
}

func (op *linearOp) Arity() int    { return 3 }
func (op *linearOp) Type() hm.Type { return fnType(2, 2, 2, 1) }
func (op *linearOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 3)
	if err != nil {
		return nil, err
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	err = run(y.Dtype(), func() {
		linear(op.n, op.c, op.k, data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](y))
	},
		func() {
			linear(op.n, op.c, op.k, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](y))
		})
	return y, err
}

func linear[T Float](n, c, k int, x, w, b, y []T) {
	for i := 0; i < n; i++ {
		copy(y[i*k:(i+1)*k], b)
	}
	gemm(false, false, n, k, c, x, c, w, k, 1, y, k)
}

func (op *linearOp) DiffWRT(int) []bool { return []bool{true, true, true} }
func (op *linearOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	dx, err := G.ApplyOp(&linearGradOp{base: newBase("LinearGradX"), fixedShape: fixedShape{tensor.Shape{op.n, op.c}}, l: op, which: 0}, inputs[1], grad)
	if err != nil {
		return nil, err
	}
	dw, err := G.ApplyOp(&linearGradOp{base: newBase("LinearGradW"), fixedShape: fixedShape{tensor.Shape{op.c, op.k}}, l: op, which: 1}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&linearGradOp{base: newBase("LinearGradB"), fixedShape: fixedShape{tensor.Shape{op.k}}, l: op, which: 2}, grad)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, dw, db}, nil
}

// linearGradOp: which 0: (w, dy) -> dx; 1: (x, dy) -> dw; 2: (dy) -> db.
type linearGradOp struct {
	base
	fixedShape
	l     *linearOp
	which int
}

func (op *linearGradOp) Arity() int {
	if op.which == 2 {
		return 1
	}
	return 2
}
func (op *linearGradOp) Type() hm.Type {
	if op.which == 2 {
		return fnType(1, 2)
	}
	return fnType(2, 2, 2)
}
func (op *linearGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, op.Arity())
	if err != nil {
		return nil, err
	}
	out := op.output(in[0].Dtype(), in, op.out...)
	err = run(out.Dtype(), func() { linearGrad(op, in, data[float32](out)) }, func() { linearGrad(op, in, data[float64](out)) })
	if err != nil {
		return nil, err
	}
	return out, nil
}

func linearGrad[T Float](op *linearGradOp, in []*tensor.Dense, out []T) {
	n, c, k := op.l.n, op.l.c, op.l.k
	switch op.which {
	case 0:
		gemm(false, true, n, c, k, data[T](in[1]), k, data[T](in[0]), k, 0, out, c)
	case 1:
		gemm(true, false, c, k, n, data[T](in[0]), c, data[T](in[1]), k, 0, out, k)
	case 2:
		clear(out)
		dy := data[T](in[0])
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				out[j] += dy[i*k+j]
			}
		}
	}
}

// ---- Softmax with cross entropy ----

// SoftmaxCE is the loss op at the end of a classifier: softmax over the
// last axis of [N,K] logits, then cross entropy against Labels, averaged
// over the batch. After a run it holds the probabilities and the loss.
type SoftmaxCE struct {
	base
	// Labels holds one class index per row; set it before each run. With
	// no labels the op only computes probabilities and a zero loss.
	Labels []int
	n, k   int
	probs  []float64
	loss   float64
}

// SoftmaxCrossEntropy appends softmax + mean cross entropy to logits and
// returns the scalar loss node and the op, which holds labels and results.
func SoftmaxCrossEntropy(logits *G.Node) (*G.Node, *SoftmaxCE, error) {
	ls := logits.Shape()
	if ls.Dims() != 2 {
		return nil, nil, fmt.Errorf("softmax cross entropy: logits %v, want [N, classes]", ls)
	}
	op := &SoftmaxCE{base: newBase("SoftmaxCrossEntropy"), n: ls[0], k: ls[1]}
	n, err := G.ApplyOp(op, logits)
	return n, op, err
}

// Probs returns the softmax probabilities of the last run, [N*K] row-major.
func (op *SoftmaxCE) Probs() []float64 { return op.probs }

// Loss returns the mean cross entropy of the last run.
func (op *SoftmaxCE) Loss() float64 { return op.loss }

func (op *SoftmaxCE) Arity() int    { return 1 }
func (op *SoftmaxCE) Type() hm.Type { return fnType(0, 2) }
func (op *SoftmaxCE) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.ScalarShape(), nil
}

func (op *SoftmaxCE) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	if err := checkShape("softmax logits", in[0].Shape(), op.n, op.k); err != nil {
		return nil, err
	}
	if op.Labels != nil && len(op.Labels) != op.n {
		return nil, fmt.Errorf("softmax cross entropy: %d labels for a batch of %d", len(op.Labels), op.n)
	}
	var logits []float64
	switch in[0].Dtype() {
	case tensor.Float32:
		d := in[0].Float32s()
		logits = make([]float64, len(d))
		for i, v := range d {
			logits[i] = float64(v)
		}
	case tensor.Float64:
		logits = in[0].Float64s()
	default:
		return nil, fmt.Errorf("softmax cross entropy: dtype %v", in[0].Dtype())
	}
	probs := make([]float64, op.n*op.k)
	var loss float64
	for i := 0; i < op.n; i++ {
		row, p := logits[i*op.k:(i+1)*op.k], probs[i*op.k:(i+1)*op.k]
		m := math.Inf(-1)
		for _, v := range row {
			m = max(m, v)
		}
		var s float64
		for j, v := range row {
			p[j] = math.Exp(v - m)
			s += p[j]
		}
		for j := range p {
			p[j] /= s
		}
		if op.Labels != nil {
			l := op.Labels[i]
			if l < 0 || l >= op.k {
				return nil, fmt.Errorf("softmax cross entropy: label %d out of [0,%d)", l, op.k)
			}
			loss -= math.Log(p[l])
		}
	}
	op.probs, op.loss = probs, loss/float64(op.n)
	if in[0].Dtype() == tensor.Float32 {
		return G.NewF32(float32(op.loss)), nil
	}
	return G.NewF64(op.loss), nil
}

func (op *SoftmaxCE) DiffWRT(int) []bool { return []bool{true} }
func (op *SoftmaxCE) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&sceGradOp{newBase("SoftmaxCrossEntropyGrad"), fixedShape{inputs[0].Shape().Clone()}, op}, inputs[0], grad)
	return G.Nodes{g}, err
}

// sceGradOp: (logits, dloss) -> (probs - onehot) * dloss / N.
type sceGradOp struct {
	base
	fixedShape
	s *SoftmaxCE
}

func (op *sceGradOp) Arity() int    { return 2 }
func (op *sceGradOp) Type() hm.Type { return fnType(2, 2, 0) }
func (op *sceGradOp) Do(vs ...G.Value) (G.Value, error) {
	if len(vs) != 2 {
		return nil, fmt.Errorf("softmax cross entropy grad: %d inputs", len(vs))
	}
	x, err := dense(vs[0])
	if err != nil {
		return nil, err
	}
	g, err := scalarValue(vs[1])
	if err != nil {
		return nil, err
	}
	s := op.s
	if s.probs == nil || s.Labels == nil {
		return nil, fmt.Errorf("softmax cross entropy backward needs a forward pass with labels")
	}
	grad := make([]float64, len(s.probs))
	for i := 0; i < s.n; i++ {
		for j := 0; j < s.k; j++ {
			v := s.probs[i*s.k+j]
			if j == s.Labels[i] {
				v--
			}
			grad[i*s.k+j] = v * g / float64(s.n)
		}
	}
	out := op.output(x.Dtype(), []*tensor.Dense{x}, op.out...)
	switch out.Dtype() {
	case tensor.Float32:
		d := out.Float32s()
		for i, v := range grad {
			d[i] = float32(v)
		}
	default:
		copy(out.Float64s(), grad)
	}
	return out, nil
}
