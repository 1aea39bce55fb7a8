package ops

import (
	"errors"
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type convOp struct {
	base
	fixedShape
	g        ConvGeom
	dataGrad bool
	lay      convLayouts
	col      colBuf
	dn       dnnlConv
}

// convLayouts are the layouts of a convolution's input (and its
// gradient) and output (and its gradient).
type convLayouts struct{ x, y Layout }

// Conv2D convolves x ([N,C,H,W]) with w ([K,C,R,S]), no bias, the given
// stride and zero padding, giving [N,K,OH,OW]. Set dataGrad to false for a
// conv applied to the model's input, whose gradient nobody needs. x's
// layout is LayoutOf(x); the output is NCHW.
func Conv2D(x, w *G.Node, stride, pad int, dataGrad bool) (*G.Node, error) {
	return Conv2DTo(x, w, stride, pad, dataGrad, NCHW)
}

// Conv2DTo is Conv2D with the output (and its gradient) in layout out.
func Conv2DTo(x, w *G.Node, stride, pad int, dataGrad bool, out Layout) (*G.Node, error) {
	xs, ws := x.Shape(), w.Shape()
	if xs.Dims() != 4 || ws.Dims() != 4 || xs[1] != ws[1] {
		return nil, fmt.Errorf("conv2d: input %v and filter %v do not fit", xs, ws)
	}
	if stride < 1 || pad < 0 {
		return nil, fmt.Errorf("conv2d: stride %d, pad %d", stride, pad)
	}
	g := ConvGeom{N: xs[0], C: xs[1], H: xs[2], W: xs[3], K: ws[0], R: ws[2], S: ws[3], Stride: stride, Pad: pad}
	if g.OH() < 1 || g.OW() < 1 {
		return nil, fmt.Errorf("conv2d: input %v too small for filter %v", xs, ws)
	}
	lx := LayoutOf(x)
	if err := errors.Join(checkLayout("conv2d input", lx, x.Dtype(), g.C), checkLayout("conv2d output", out, x.Dtype(), g.K)); err != nil {
		return nil, err
	}
	op := &convOp{
		base:       newBase(fmt.Sprintf("Conv%dx%d/%d", g.R, g.S, stride)),
		fixedShape: fixedShape{tensor.Shape{g.N, g.K, g.OH(), g.OW()}},
		g:          g, dataGrad: dataGrad, lay: convLayouts{x: lx, y: out},
	}
	return G.ApplyOp(op, x, w)
}

func (op *convOp) layout() Layout { return op.lay.y }

func (op *convOp) Arity() int    { return 2 }
func (op *convOp) Type() hm.Type { return fnType(4, 4, 4) }

func (op *convOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 2)
	if err != nil {
		return nil, err
	}
	g := op.g
	if err := checkShape("conv2d input", in[0].Shape(), g.N, g.C, g.H, g.W); err != nil {
		return nil, err
	}
	if err := checkShape("conv2d filter", in[1].Shape(), g.K, g.C, g.R, g.S); err != nil {
		return nil, err
	}
	y := op.output(in[0].Dtype(), in, op.out...)
	var derr error
	err = run(y.Dtype(),
		func() {
			x, w, yd := data[float32](in[0]), data[float32](in[1]), data[float32](y)
			var ok bool
			if ok, derr = op.dn.forward(g, op.lay.x, op.lay.y, x, w, yd); !ok && derr == nil {
				viaNCHW(op.lay.x, op.lay.y, func(c *nchwCopies) {
					yn := c.out(1, op.lay.y, g.N, g.K, g.OH()*g.OW(), yd)
					ConvForward(g, c.in(0, op.lay.x, g.N, g.C, g.H*g.W, x), w, yn, colOf[float32](&op.col, op.g.ScratchSize(false)))
				})
			}
		},
		func() {
			ConvForward(g, data[float64](in[0]), data[float64](in[1]), data[float64](y), colOf[float64](&op.col, op.g.ScratchSize(false)))
		})
	return y, errors.Join(err, derr)
}

func (op *convOp) DiffWRT(int) []bool { return []bool{op.dataGrad, true} }

func (op *convOp) SymDiff(inputs G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	lay := convLayouts{x: op.lay.x, y: op.lay.y}
	dw, err := G.ApplyOp(&convFilterGradOp{base: newBase("ConvFilterGrad"), fixedShape: fixedShape{inputs[1].Shape().Clone()}, g: op.g, lay: lay}, inputs[0], grad)
	if err != nil {
		return nil, err
	}
	var dx *G.Node
	if op.dataGrad {
		if dx, err = G.ApplyOp(&convDataGradOp{base: newBase("ConvDataGrad"), fixedShape: fixedShape{inputs[0].Shape().Clone()}, g: op.g, lay: lay}, inputs[1], grad); err != nil {
			return nil, err
		}
	}
	return G.Nodes{dx, dw}, nil
}

// convDataGradOp: (w, dy) -> dx.
type convDataGradOp struct {
	base
	fixedShape
	g   ConvGeom
	lay convLayouts
	col colBuf
	dn  dnnlConv
}

func (op *convDataGradOp) layout() Layout { return op.lay.x }

func (op *convDataGradOp) Arity() int    { return 2 }
func (op *convDataGradOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convDataGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 2)
	if err != nil {
		return nil, err
	}
	dx := op.output(in[0].Dtype(), in, op.out...)
	var derr error
	err = run(dx.Dtype(),
		func() {
			w, dy, dxd := data[float32](in[0]), data[float32](in[1]), data[float32](dx)
			g := op.g
			var ok bool
			if ok, derr = op.dn.backwardData(g, op.lay.x, op.lay.y, w, dy, dxd); !ok && derr == nil {
				viaNCHW(op.lay.x, op.lay.y, func(c *nchwCopies) {
					dxn := c.out(0, op.lay.x, g.N, g.C, g.H*g.W, dxd)
					ConvBackwardData(g, w, c.in(1, op.lay.y, g.N, g.K, g.OH()*g.OW(), dy), dxn, colOf[float32](&op.col, g.ScratchSize(false)))
				})
			}
		},
		func() {
			ConvBackwardData(op.g, data[float64](in[0]), data[float64](in[1]), data[float64](dx), colOf[float64](&op.col, op.g.ScratchSize(false)))
		})
	return dx, errors.Join(err, derr)
}

// convFilterGradOp: (x, dy) -> dw.
type convFilterGradOp struct {
	base
	fixedShape
	g   ConvGeom
	lay convLayouts
	col colBuf
	dn  dnnlConv
}

func (op *convFilterGradOp) Arity() int    { return 2 }
func (op *convFilterGradOp) Type() hm.Type { return fnType(4, 4, 4) }
func (op *convFilterGradOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 2)
	if err != nil {
		return nil, err
	}
	dw := op.output(in[0].Dtype(), in, op.out...)
	var derr error
	err = run(dw.Dtype(),
		func() {
			x, dy, dwd := data[float32](in[0]), data[float32](in[1]), data[float32](dw)
			g := op.g
			var ok bool
			if ok, derr = op.dn.backwardWeights(g, op.lay.x, op.lay.y, x, dy, dwd); !ok && derr == nil {
				viaNCHW(op.lay.x, op.lay.y, func(c *nchwCopies) {
					ConvBackwardFilter(g, c.in(0, op.lay.x, g.N, g.C, g.H*g.W, x), c.in(1, op.lay.y, g.N, g.K, g.OH()*g.OW(), dy), dwd,
						colOf[float32](&op.col, g.ScratchSize(true)))
				})
			}
		},
		func() {
			ConvBackwardFilter(op.g, data[float64](in[0]), data[float64](in[1]), data[float64](dw), colOf[float64](&op.col, op.g.ScratchSize(true)))
		})
	if err = errors.Join(err, derr); err != nil {
		return nil, err
	}
	return dw, nil
}

// colBuf is a conv op's im2col scratch buffer, kept across runs, or
// shared with the other ops of its graphs (shared, see ShareScratch).
type colBuf struct {
	v      any
	shared *colBuf
}

func colOf[T Float](b *colBuf, n int) []T {
	if b.shared != nil {
		b = b.shared
	}
	if c, ok := b.v.([]T); ok && len(c) >= n {
		return c[:n]
	}
	c := make([]T, n)
	b.v = c
	return c
}
