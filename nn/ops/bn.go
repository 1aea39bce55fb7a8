package ops

import (
	"errors"
	"fmt"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BNState is a batch norm layer's running statistics and constants. Mean
// and Variance are the layer's (non-trainable) parameters, shared by the
// training and the evaluation graph; training updates them in place as
// fluid's batch_norm does:
//
//	running = Momentum*running + (1-Momentum)*batch
//
// where the batch variance is the biased one (divided by N*H*W), the same
// value the batch is normalised with (Paddle batch_norm_op.cc, CPU kernel:
// saved_variance /= N*sample_size, then running_var * momentum +
// saved_variance * (1 - momentum)).
type BNState struct {
	Mean, Variance *tensor.Dense
	Momentum, Eps  float64
}

type bnOp struct {
	base
	fixedShape
	st          *BNState
	train, relu bool
	n, c, hw    int
	lay         Layout // of x and y (Blocked16: oneDNN's kernels in training)
	dn          dnnlBN
	// set by Do for the backward pass: []float32 or []float64
	mean, invstd any
	variance     []float32 // the batch's, when the forward ran on oneDNN
}

func (op *bnOp) layout() Layout { return op.lay }

// BatchNorm applies batch normalisation over the channels of x
// ([N,C,H,W] or [N,C]) with learned scale and offset ([C]) and then, when
// relu is set, a ReLU. In training mode it normalises with the batch
// statistics and updates st's running statistics; otherwise it uses them.
func BatchNorm(x, scale, offset *G.Node, st *BNState, train, relu bool) (*G.Node, error) {
	xs := x.Shape()
	if xs.Dims() != 4 && xs.Dims() != 2 {
		return nil, fmt.Errorf("batch norm: input shape %v, want 2 or 4 dims", xs)
	}
	c := xs[1]
	for _, p := range []*G.Node{scale, offset} {
		if !p.Shape().Eq(tensor.Shape{c}) {
			return nil, fmt.Errorf("batch norm: parameter %s has shape %v, want [%d]", p.Name(), p.Shape(), c)
		}
	}
	if st == nil || st.Mean == nil || st.Variance == nil || st.Mean.Shape().TotalSize() != c || st.Variance.Shape().TotalSize() != c {
		return nil, fmt.Errorf("batch norm: running statistics missing or not [%d]", c)
	}
	hw := 1
	if xs.Dims() == 4 {
		hw = xs[2] * xs[3]
	}
	name := "BatchNorm"
	if relu {
		name = "BatchNormReLU"
	}
	lay := LayoutOf(x)
	if xs.Dims() != 4 {
		lay = NCHW
	}
	if err := checkLayout("batch norm", lay, x.Dtype(), c); err != nil {
		return nil, err
	}
	op := &bnOp{base: newBase(name), fixedShape: fixedShape{xs.Clone()}, st: st, train: train, relu: relu, n: xs[0], c: c, hw: hw, lay: lay}
	return G.ApplyOp(op, x, scale, offset)
}

func (op *bnOp) Arity() int { return 3 }
func (op *bnOp) Type() hm.Type {
	return fnType(len(op.out), len(op.out), 1, 1)
}

func (op *bnOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 3)
	if err != nil {
		return nil, err
	}
	if err := checkShape("batch norm input", in[0].Shape(), op.out...); err != nil {
		return nil, err
	}
	dt := in[0].Dtype()
	if op.st.Mean.Dtype() != dt || op.st.Variance.Dtype() != dt {
		return nil, fmt.Errorf("batch norm: running statistics are %v, input %v", op.st.Mean.Dtype(), dt)
	}
	y := op.output(dt, in, op.out...)
	var derr error
	err = run(dt, func() {
		x, scale, offset, yd := data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](y)
		if op.lay == Blocked16 {
			derr = op.doBlocked(x, scale, offset, yd)
			return
		}
		bnDo(op, x, scale, offset, yd)
	}, func() { bnDo(op, data[float64](in[0]), data[float64](in[1]), data[float64](in[2]), data[float64](y)) })
	return y, errors.Join(err, derr)
}

// doBlocked is Do on nChw16c x and y: training on oneDNN, else (oneDNN
// declined, or running statistics) zoo's kernels on NCHW copies.
func (op *bnOp) doBlocked(x, scale, offset, y []float32) error {
	op.variance = nil
	if op.train {
		mean, variance := make([]float32, op.c), make([]float32, op.c)
		ok, err := op.dn.forward(op.n, op.c, op.hw, op.relu, op.st.Eps, x, y, scale, offset, mean, variance)
		if err != nil {
			return err
		}
		if ok {
			// the backward runs on oneDNN too (dnnlBN.used), which reads
			// the variance, not invstd
			updateRunning(op, mean, variance)
			op.mean, op.variance = mean, variance
			return nil
		}
	}
	viaNCHW(op.lay, op.lay, func(c *nchwCopies) {
		yn := c.out(1, op.lay, op.n, op.c, op.hw, y)
		bnDo(op, c.in(0, op.lay, op.n, op.c, op.hw, x), scale, offset, yn)
	})
	return nil
}

// updateRunning folds the batch's statistics into the running ones.
func updateRunning[T Float](op *bnOp, mean, variance []T) {
	rm, rv := data[T](op.st.Mean), data[T](op.st.Variance)
	m := T(op.st.Momentum)
	for i := range rm {
		rm[i] = m*rm[i] + (1-m)*mean[i]
		rv[i] = m*rv[i] + (1-m)*variance[i]
	}
}

func bnDo[T Float](op *bnOp, x, scale, offset, y []T) {
	rm, rv := data[T](op.st.Mean), data[T](op.st.Variance)
	mean, invstd := make([]T, op.c), make([]T, op.c)
	if op.train {
		variance := make([]T, op.c)
		BNForwardTrain(op.n, op.c, op.hw, op.st.Eps, op.relu, x, scale, offset, y, mean, invstd, variance)
		updateRunning(op, mean, variance)
	} else {
		BNForwardEval(op.n, op.c, op.hw, op.st.Eps, op.relu, x, scale, offset, rm, rv, y)
		copy(mean, rm)
		for i, v := range rv {
			invstd[i] = T(1 / math.Sqrt(float64(v)+op.st.Eps))
		}
	}
	op.mean, op.invstd = mean, invstd
}

func (op *bnOp) DiffWRT(int) []bool { return []bool{true, true, true} }

func (op *bnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	gx := &bnGradXOp{base: newBase("BatchNormGrad"), fixedShape: fixedShape{op.out.Clone()}, bn: op}
	dx, err := G.ApplyOp(gx, inputs[0], inputs[1], output, grad)
	if err != nil {
		return nil, err
	}
	ds, err := G.ApplyOp(&bnGradParamOp{base: newBase("BatchNormGradScale"), fixedShape: fixedShape{tensor.Shape{op.c}}, gx: gx, which: 0}, dx)
	if err != nil {
		return nil, err
	}
	db, err := G.ApplyOp(&bnGradParamOp{base: newBase("BatchNormGradOffset"), fixedShape: fixedShape{tensor.Shape{op.c}}, gx: gx, which: 1}, dx)
	if err != nil {
		return nil, err
	}
	return G.Nodes{dx, ds, db}, nil
}

// bnGradXOp: (x, scale, y, dy) -> dx; it leaves dscale and doffset for
// the two bnGradParamOps that read its output (so run after it).
type bnGradXOp struct {
	base
	fixedShape
	bn              *bnOp
	dscale, doffset *tensor.Dense
}

func (op *bnGradXOp) Arity() int { return 4 }
func (op *bnGradXOp) Type() hm.Type {
	d := len(op.out)
	return fnType(d, d, 1, d, d)
}

func (op *bnGradXOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 4)
	if err != nil {
		return nil, err
	}
	bn := op.bn
	if bn.mean == nil {
		return nil, fmt.Errorf("batch norm backward ran before its forward pass")
	}
	dt := in[0].Dtype()
	dx := op.output(dt, in, op.out...)
	op.dscale, op.doffset = alloc(dt, bn.c), alloc(dt, bn.c)
	var derr error
	err = run(dt, func() {
		x, scale, y, dy, dxd := data[float32](in[0]), data[float32](in[1]), data[float32](in[2]), data[float32](in[3]), data[float32](dx)
		ds, do := data[float32](op.dscale), data[float32](op.doffset)
		if bn.lay == Blocked16 {
			var ok bool
			if ok, derr = bn.dn.backward(x, dy, scale, bn.mean.([]float32), bn.variance, dxd, ds, do); ok {
				return
			}
		}
		viaNCHW(bn.lay, bn.lay, func(c *nchwCopies) {
			l, n, ch, hw := bn.lay, bn.n, bn.c, bn.hw
			BNBackward(n, ch, hw, bn.train, bn.relu, c.in(0, l, n, ch, hw, x), c.in(1, l, n, ch, hw, y), c.in(2, l, n, ch, hw, dy), scale,
				bn.mean.([]float32), bn.invstd.([]float32), c.out(3, l, n, ch, hw, dxd), ds, do)
		})
	}, func() {
		BNBackward(bn.n, bn.c, bn.hw, bn.train, bn.relu, data[float64](in[0]), data[float64](in[2]), data[float64](in[3]), data[float64](in[1]),
			bn.mean.([]float64), bn.invstd.([]float64), data[float64](dx), data[float64](op.dscale), data[float64](op.doffset))
	})
	return dx, errors.Join(err, derr)
}

func (op *bnGradXOp) layout() Layout { return op.bn.lay }

// bnGradParamOp: (dx) -> dscale (which 0) or doffset (which 1).
type bnGradParamOp struct {
	base
	fixedShape
	gx    *bnGradXOp
	which int
}

func (op *bnGradParamOp) Arity() int    { return 1 }
func (op *bnGradParamOp) Type() hm.Type { return fnType(1, len(op.gx.out)) }
func (op *bnGradParamOp) Do(...G.Value) (G.Value, error) {
	src := op.gx.dscale
	if op.which == 1 {
		src = op.gx.doffset
	}
	if src == nil {
		return nil, fmt.Errorf("batch norm parameter gradient ran before the data gradient")
	}
	out := src.Clone().(*tensor.Dense)
	return out, nil
}
