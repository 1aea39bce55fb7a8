package ops

import (
	"fmt"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type keepOp struct {
	base
	dst  *tensor.Dense
	dims int
}

// Keep makes the graph copy n's value into dst whenever it runs and
// returns a (scalar, meaningless) node that nothing needs to read.
//
// Read values that must outlive a run, such as gradients, through Keep:
// gorgonia's tape machine reuses the buffer of a value once no
// instruction reads it any more, so a node's Value after RunAll is only
// safe for the last node of the tape.
func Keep(n *G.Node, dst *tensor.Dense) (*G.Node, error) {
	if !n.Shape().Eq(dst.Shape()) || n.Dtype() != dst.Dtype() {
		return nil, fmt.Errorf("keep %s: node is %v %v, destination %v %v", n.Name(), n.Dtype(), n.Shape(), dst.Dtype(), dst.Shape())
	}
	if l := LayoutOf(n); l != NCHW {
		return nil, fmt.Errorf("keep %s: the value is in layout %v, the destination NCHW", n.Name(), l)
	}
	return G.ApplyOp(&keepOp{base: newBase("Keep"), dst: dst, dims: n.Shape().Dims()}, n)
}

func (op *keepOp) Arity() int                                     { return 1 }
func (op *keepOp) Type() hm.Type                                  { return fnType(0, op.dims) }
func (op *keepOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *keepOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	if !in[0].Shape().Eq(op.dst.Shape()) || in[0].Dtype() != op.dst.Dtype() {
		return nil, fmt.Errorf("keep: value is %v %v, destination %v %v", in[0].Dtype(), in[0].Shape(), op.dst.Dtype(), op.dst.Shape())
	}
	err = run(op.dst.Dtype(), func() { copy(data[float32](op.dst), data[float32](in[0])) },
		func() { copy(data[float64](op.dst), data[float64](in[0])) })
	if op.dst.Dtype() == tensor.Float32 {
		return G.NewF32(0), err
	}
	return G.NewF64(0), err
}
