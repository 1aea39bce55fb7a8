package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// convBNOp is inference's conv + batch norm (+ ReLU) in one pass: each
// image's conv output is normalised with the running statistics while it
// is still in cache, instead of in a second sweep over the whole batch.
type convBNOp struct {
	base
	fixedShape
	g    ConvGeom
	st   *BNState
	relu bool
	// residual: a fifth input, the block's shortcut, is added before the
	// ReLU (relu is then set).
	residual bool
	// shift: the input is TemporalShift'ed first (pointwise convs only)
	shift *shiftGeom
	// lay: x's layout and y's (the shortcut's too). A blocked op takes
	// no part in oneDNN's ring of kept outputs (the chains are for NCHW
	// graphs): its neighbours read and write nChw16c themselves.
	lay convLayouts
	col colBuf
	dn  dnnlConv
}

func (op *convBNOp) layout() Layout { return op.lay.y }

// ringable: x and y NCHW, the op may chain through oneDNN's ring.
func (op *convBNOp) ringable() bool { return op.lay == convLayouts{} }

// shiftGeom is a temporal shift: t frames per clip, channels [0,c1) taken
// from the previous frame, [c1,c2) from the next.
type shiftGeom struct{ t, c1, c2 int }

// ConvBNEval is Conv2D followed by BatchNorm in evaluation mode (running
// statistics from st) and, when relu is set, a ReLU, computed as one op.
// It has no gradient: use it in evaluation graphs only. x's layout is
// LayoutOf(x); the output is NCHW.
func ConvBNEval(x, w, scale, offset *G.Node, stride, pad int, st *BNState, relu bool) (*G.Node, error) {
	return ConvBNEvalTo(x, w, scale, offset, stride, pad, st, relu, NCHW)
}

// ConvBNEvalTo is ConvBNEval with the output in layout out.
func ConvBNEvalTo(x, w, scale, offset *G.Node, stride, pad int, st *BNState, relu bool, out Layout) (*G.Node, error) {
	op, err := newConvBN(x, w, scale, offset, stride, pad, st, relu, out)
	if err != nil {
		return nil, err
	}
	return G.ApplyOp(op, x, w, scale, offset)
}

// ConvBNAddReLUEval is ConvBNEval (without its ReLU) followed by
// AddReLU(·, short): the last conv of a residual block with the shortcut
// added, computed as one op. Adding the shortcut while each image's conv
// output is still in cache saves a pass over the block's output. The
// output is in the shortcut's layout (LayoutOf(short)), x's in its own.
func ConvBNAddReLUEval(x, w, scale, offset, short *G.Node, stride, pad int, st *BNState) (*G.Node, error) {
	op, err := newConvBN(x, w, scale, offset, stride, pad, st, true, LayoutOf(short))
	if err != nil {
		return nil, err
	}
	if !short.Shape().Eq(op.out) {
		return nil, fmt.Errorf("conv+bn+add: shortcut %v, conv output %v", short.Shape(), op.out)
	}
	op.residual = true
	if p, ok := short.Op().(*convBNOp); ok && op.ringable() && p.ringable() {
		op.dn.chainSum(&p.dn)
	}
	op.name = fmt.Sprintf("ConvBNAddReLU%dx%d/%d", op.g.R, op.g.S, stride)
	return G.ApplyOp(op, x, w, scale, offset, short)
}

// ShiftConvBNEval is TemporalShift(x, segNum, ratio) followed by
// ConvBNEval with a 1x1 stride-1 filter, computed as one op that never
// materialises the shifted input: the conv is split by input channel range
// into three products, each reading its own frame of x. x and the output
// are NCHW: on oneDNN the shift goes through a buffer kept for the
// process (or the producer's kept output); a blocked graph uses
// TemporalShift and ConvBNEvalTo instead, whose shifted tensor the
// executor plans.
func ShiftConvBNEval(x, w, scale, offset *G.Node, segNum int, ratio float64, st *BNState, relu bool) (*G.Node, error) {
	if l := LayoutOf(x); l != NCHW {
		return nil, fmt.Errorf("shift+conv+bn: input in layout %v, want NCHW (use TemporalShift and ConvBNEvalTo)", l)
	}
	op, err := newConvBN(x, w, scale, offset, 1, 0, st, relu, NCHW)
	if err != nil {
		return nil, err
	}
	xs := x.Shape()
	if !op.g.pointwise() || segNum < 1 || xs[0]%segNum != 0 {
		return nil, fmt.Errorf("shift+conv+bn: input %v, filter %v: want a 1x1 filter and %d frames per clip", xs, w.Shape(), segNum)
	}
	c := xs[1]
	op.shift = &shiftGeom{t: segNum, c1: int(float64(c) * ratio), c2: int(float64(c) * 2 * ratio)}
	op.name = "ShiftConvBN1x1/1"
	return G.ApplyOp(op, x, w, scale, offset)
}

func newConvBN(x, w, scale, offset *G.Node, stride, pad int, st *BNState, relu bool, out Layout) (*convBNOp, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 || xs[1] != ws[1] {
		return nil, fmt.Errorf("conv+bn: input %v and filter %v do not fit", xs, ws)
	}
	g := ConvGeom{N: xs[0], C: xs[1], H: xs[2], W: xs[3], K: ws[0], R: ws[2], S: ws[3], Stride: stride, Pad: pad}
	if stride < 1 || pad < 0 || g.OH() < 1 || g.OW() < 1 {
		return nil, fmt.Errorf("conv+bn: input %v, filter %v, stride %d, pad %d", xs, ws, stride, pad)
	}
	lx := LayoutOf(x)
	if err := errors.Join(checkLayout("conv+bn input", lx, x.Dtype(), g.C), checkLayout("conv+bn output", out, x.Dtype(), g.K)); err != nil {
		return nil, err
	}
	for _, p := range []*G.Node{scale, offset} {
		if !p.Shape().Eq(tensor.Shape{g.K}) {
			return nil, fmt.Errorf("conv+bn: parameter %s has shape %v, want [%d]", p.Name(), p.Shape(), g.K)
		}
	}
	if st == nil || st.Mean == nil || st.Variance == nil || st.Mean.Shape().TotalSize() != g.K || st.Variance.Shape().TotalSize() != g.K {
		return nil, fmt.Errorf("conv+bn: running statistics missing or not [%d]", g.K)
	}
	op := &convBNOp{base: newBase(fmt.Sprintf("ConvBN%dx%d/%d", g.R, g.S, stride)),
		fixedShape: fixedShape{tensor.Shape{g.N, g.K, g.OH(), g.OW()}}, g: g, st: st, relu: relu, lay: convLayouts{x: lx, y: out}}
	if p, ok := x.Op().(*convBNOp); ok && op.ringable() && p.ringable() {
		op.dn.chainFrom(&p.dn) // ShiftConvBNEval: shifted in the blocked layout
	}
	return op, nil
}

func (op *convBNOp) Arity() int {
	if op.residual {
		return 5
	}
	return 4
}

func (op *convBNOp) Type() hm.Type {
	if op.residual {
		return fnType(4, 4, 4, 1, 1, 4)
	}
	return fnType(4, 4, 4, 1, 1)
}

func (op *convBNOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, op.Arity())
	if err != nil {
		return nil, err
	}
	g := op.g
	if err := checkShape("conv+bn input", in[0].Shape(), g.N, g.C, g.H, g.W); err != nil {
		return nil, err
	}
	if err := checkShape("conv+bn filter", in[1].Shape(), g.K, g.C, g.R, g.S); err != nil {
		return nil, err
	}
	dt := in[0].Dtype()
	if op.st.Mean.Dtype() != dt || op.st.Variance.Dtype() != dt {
		return nil, fmt.Errorf("conv+bn: running statistics are %v, input %v", op.st.Mean.Dtype(), dt)
	}
	y := op.outputOver(op.InPlace(), dt, in, op.out...)
	var derr error
	err = run(dt, func() { derr = convBN[float32](op, in, y) }, func() { derr = convBN[float64](op, in, y) })
	return y, errors.Join(err, derr)
}

func convBN[T Float](op *convBNOp, in []*tensor.Dense, y *tensor.Dense) error {
	g := op.g
	scale, offset := data[T](in[2]), data[T](in[3])
	mean, variance := data[T](op.st.Mean), data[T](op.st.Variance)
	a, b := make([]T, g.K), make([]T, g.K)
	for k := range a {
		is := 1 / math.Sqrt(float64(variance[k])+op.st.Eps)
		a[k] = T(float64(scale[k]) * is)
		b[k] = T(float64(offset[k]) - float64(mean[k])*float64(scale[k])*is)
	}
	x, w, yd := data[T](in[0]), data[T](in[1]), data[T](y)
	var short []T
	if op.residual {
		short = data[T](in[4])
	}
	if a32, ok := any(a).([]float32); ok {
		b32, _ := any(b).([]float32)
		s32, _ := any(short).([]float32)
		x32, y32 := any(x).([]float32), any(yd).([]float32)
		if done, err := op.dn.convBN(op, x32, data[float32](in[1]), y32, a32, b32, s32); done || err != nil {
			return err
		}
		if op.lay != (convLayouts{}) {
			// zoo's kernels on NCHW copies (blocked: float32 only)
			w32 := data[float32](in[1])
			viaNCHW(op.lay.x, op.lay.y, func(c *nchwCopies) {
				ohw := g.OH() * g.OW()
				yn := c.out(1, op.lay.y, g.N, g.K, ohw, y32)
				var sn []float32
				if s32 != nil {
					sn = c.in(2, op.lay.y, g.N, g.K, ohw, s32)
				}
				convBNPlain(op, c.in(0, op.lay.x, g.N, g.C, g.H*g.W, x32), w32, yn, sn, a32, b32)
			})
			return nil
		}
	}
	convBNPlain(op, x, w, yd, short, a, b)
	return nil
}

// convBNPlain is convBN on zoo's kernels, NCHW x, y and short.
func convBNPlain[T Float](op *convBNOp, x, w, yd, short, a, b []T) {
	g := op.g
	ohw := g.OH() * g.OW()
	after := func(n int) {
		for k := 0; k < g.K; k++ {
			yk := yd[(n*g.K+k)*ohw:][:ohw]
			if short == nil {
				bnApply(1, 1, ohw, 0, a[k], b[k], op.relu, yk, yk)
				continue
			}
			ak, bk := a[k], b[k]
			for j, s := range short[(n*g.K+k)*ohw:][:ohw] {
				yk[j] = max(ak*yk[j]+bk+s, 0)
			}
		}
	}
	if sh := op.shift; sh != nil {
		shiftConvForward(g, sh.t, sh.c1, sh.c2, x, w, yd, after)
		return
	}
	convForward(g, x, w, yd, colOf[T](&op.col, g.ScratchSize(false)), after)
}

// Precision is the process's convolution precision, "fp32" or "bf16"
// (SetPrecision).
func Precision() string {
	if bf16On() {
		return "bf16"
	}
	return "fp32"
}

// SetPrecision sets the precision of the convolutions, inference and
// training (forward, backward data, backward weights): "fp32" (the
// default) or "bf16" (bfloat16 inputs, weights and output gradients,
// float32 accumulation and outputs, on oneDNN, so only in a build with
// it; needs a CPU with AVX512_BF16). The parameters, their gradients and
// everything else stay float32. It applies to every model in the process.
// Set it before building a model's graphs: nn/resnet chooses the
// inference graph's layout by it (NCHW in bf16), and a graph already
// built keeps its layout (it computes right in either precision).
func SetPrecision(p string) error {
	switch p {
	case "", "fp32":
		return setBF16(false)
	case "bf16":
		return setBF16(true)
	}
	return fmt.Errorf("precision %q: want fp32 or bf16", p)
}
