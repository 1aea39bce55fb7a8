package ops

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// dotOp (test only) reduces y to sum(y*r) for a fixed r, so that every
// output element gets a distinct weight in the gradient checks; it keeps
// the last value it computed.
type dotOp struct {
	base
	r    *tensor.Dense
	last float64
}

func (op *dotOp) Arity() int                                     { return 1 }
func (op *dotOp) Type() hm.Type                                  { return fnType(0, op.r.Dims()) }
func (op *dotOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op *dotOp) Do(vs ...G.Value) (G.Value, error) {
	in, err := denses(vs, 1)
	if err != nil {
		return nil, err
	}
	var s float64
	for i, v := range toF64(in[0]) {
		s += v * op.r.Data().([]float64)[i]
	}
	op.last = s
	return G.NewF64(s), nil
}
func (op *dotOp) DiffWRT(int) []bool { return []bool{true} }
func (op *dotOp) SymDiff(_ G.Nodes, _, grad *G.Node) (G.Nodes, error) {
	g, err := G.ApplyOp(&scaleByOp{base: newBase("ScaleBy"), r: op.r}, grad)
	return G.Nodes{g}, err
}

type scaleByOp struct {
	base
	r *tensor.Dense
}

func (op *scaleByOp) Arity() int    { return 1 }
func (op *scaleByOp) Type() hm.Type { return fnType(op.r.Dims(), 0) }
func (op *scaleByOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return op.r.Shape().Clone(), nil
}
func (op *scaleByOp) Do(vs ...G.Value) (G.Value, error) {
	g, err := scalarValue(vs[0])
	if err != nil {
		return nil, err
	}
	out := alloc(tensor.Float64, op.r.Shape()...)
	for i, v := range op.r.Data().([]float64) {
		out.Data().([]float64)[i] = v * g
	}
	return out, nil
}

func toF64(d *tensor.Dense) []float64 {
	switch x := d.Data().(type) {
	case []float64:
		return x
	case []float32:
		r := make([]float64, len(x))
		for i, v := range x {
			r[i] = float64(v)
		}
		return r
	}
	panic("dtype")
}

func randDense(rng *rand.Rand, shape ...int) *tensor.Dense {
	d := alloc(tensor.Float64, shape...)
	for i := range d.Data().([]float64) {
		d.Data().([]float64)[i] = rng.NormFloat64()
	}
	return d
}

func inputNode(g *G.ExprGraph, name string, d *tensor.Dense) *G.Node {
	return G.NewTensor(g, d.Dtype(), d.Dims(), G.WithShape(d.Shape()...), G.WithValue(d), G.WithName(name))
}

// gradCase builds out of the input nodes; loss, when set, returns the
// scalar loss of the last run (otherwise out is reduced by a random dot).
type gradCase struct {
	name   string
	inputs []*tensor.Dense
	wrt    []int
	build  func(in []*G.Node) (out *G.Node, loss func() float64, err error)
	// before, when set, runs before every run of the graph.
	before func()
}

// checkGrad compares gorgonia's symbolic gradient of the case's scalar
// loss with central finite differences (step 1e-5, float64) for up to
// maxProbe elements of each input in wrt: |a-n| <= 1e-7 + 1e-6*max(|a|,|n|).
func checkGrad(t *testing.T, tc gradCase, maxProbe int) {
	t.Helper()
	g := G.NewGraph()
	var nodes []*G.Node
	for i, d := range tc.inputs {
		nodes = append(nodes, inputNode(g, fmt.Sprintf("in%d", i), d))
	}
	out, lossFn, err := tc.build(nodes)
	if err != nil {
		t.Fatal(err)
	}
	loss := out
	if lossFn == nil {
		rng := rand.New(rand.NewSource(7))
		d := &dotOp{base: newBase("Dot"), r: randDense(rng, out.Shape()...)}
		if loss, err = G.ApplyOp(d, out); err != nil {
			t.Fatal(err)
		}
		lossFn = func() float64 { return d.last }
	}
	var wrt G.Nodes
	for _, i := range tc.wrt {
		wrt = append(wrt, nodes[i])
	}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	kept := make([]*tensor.Dense, len(grads))
	for i, gn := range grads {
		kept[i] = alloc(tensor.Float64, gn.Shape()...)
		if _, err := Keep(gn, kept[i]); err != nil {
			t.Fatal(err)
		}
	}
	m := G.NewTapeMachine(g)
	defer m.Close()
	eval := func() float64 {
		m.Reset()
		if tc.before != nil {
			tc.before()
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		return lossFn()
	}
	eval()
	analytic := make([][]float64, len(kept))
	for i, k := range kept {
		analytic[i] = append([]float64(nil), k.Data().([]float64)...)
	}
	rng := rand.New(rand.NewSource(11))
	const h = 1e-5
	for wi, idx := range tc.wrt {
		x := tc.inputs[idx].Data().([]float64)
		probes := rng.Perm(len(x))
		if len(probes) > maxProbe {
			probes = probes[:maxProbe]
		}
		for _, j := range probes {
			orig := x[j]
			x[j] = orig + h
			lp := eval()
			x[j] = orig - h
			lm := eval()
			x[j] = orig
			num := (lp - lm) / (2 * h)
			a := analytic[wi][j]
			if math.Abs(a-num) > 1e-7+1e-6*math.Max(math.Abs(a), math.Abs(num)) {
				t.Errorf("%s: d loss / d input%d[%d] = %.10g, finite differences %.10g", tc.name, idx, j, a, num)
			}
		}
	}
}
