package ops

import (
	"fmt"
	"hash"
	"hash/fnv"
	"sync/atomic"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

var opSeq atomic.Uint64

// base is embedded in every op. Each op instance gets its own id in its
// hash: gorgonia merges nodes with equal hashes and equal children, and ops
// that carry state (batch statistics, masks) must never be merged.
type base struct {
	id   uint64
	name string
	buf  *tensor.Dense // output buffer reused across runs
	// planned is the output buffer an executor that plans memory gave
	// this op (SetOutput); nil: the op keeps its own (buf).
	planned *tensor.Dense
}

// output returns the op's output buffer for this run: the planned one
// when an executor set it (SetOutput; nn/exec), else the one of the last
// run when dtype and shape match and it shares no memory with an input,
// else a new one. Callers overwrite every element.
//
// A planned buffer is a slice of an arena that other values use at other
// times of the run; the planner guarantees that none of them is live
// while this op's output is (nn/exec). The alias check still applies: a
// planned buffer that overlaps an input (a planner bug) is not used.
//
// Reuse is safe with gorgonia's tape machine because an op always writes
// to the same register: the only other writers of this buffer are
// gorgonia's own ops (the Add that sums gradients) writing into that
// register in place, which the register allocator does only when the
// value there is dead. The alias check covers the one remaining case, an
// input that was written into this buffer earlier in the same run.
func (b *base) output(dt tensor.Dtype, in []*tensor.Dense, shape ...int) *tensor.Dense {
	if d := b.planned; d != nil && d.Dtype() == dt && d.Shape().Eq(tensor.Shape(shape)) && !overlapsAny(d, in) {
		return d
	}
	if d := b.buf; d != nil && d.Dtype() == dt && d.Shape().Eq(tensor.Shape(shape)) && !overlapsAny(d, in) {
		return d
	}
	b.buf = alloc(dt, shape...)
	return b.buf
}

// outputOver is output for an op whose planned buffer may be input k's
// own (InPlace): that buffer is used when it is exactly in[k] and
// overlaps no other input.
func (b *base) outputOver(k int, dt tensor.Dtype, in []*tensor.Dense, shape ...int) *tensor.Dense {
	if d := b.planned; d != nil && k >= 0 && k < len(in) && d.Dtype() == dt && d.Shape().Eq(tensor.Shape(shape)) &&
		d.Uintptr() == in[k].Uintptr() && d.MemSize() == in[k].MemSize() {
		if !overlapsAny(d, in[:k]) && !overlapsAny(d, in[k+1:]) {
			return d
		}
	}
	return b.output(dt, in, shape...)
}

func overlapsAny(d *tensor.Dense, in []*tensor.Dense) bool {
	lo, hi := d.Uintptr(), d.Uintptr()+d.MemSize()
	for _, x := range in {
		xl, xh := x.Uintptr(), x.Uintptr()+x.MemSize()
		if xl < hi && lo < xh {
			return true
		}
	}
	return false
}

func newBase(name string) base { return base{id: opSeq.Add(1), name: name} }

func (b *base) ReturnsPtr() bool      { return false }
func (b *base) CallsExtern() bool     { return false }
func (b *base) OverwritesInput() int  { return -1 }
func (b *base) String() string        { return b.name }
func (b *base) WriteHash(h hash.Hash) { fmt.Fprintf(h, "zoo.%s#%d", b.name, b.id) }
func (b *base) Hashcode() uint32 {
	h := fnv.New32a()
	b.WriteHash(h)
	return h.Sum32()
}

// fnType is the hm type of an op taking tensors of the given ranks and
// returning one of rank out (rank 0: a scalar), all of element type a.
func fnType(out int, in ...int) hm.Type {
	a := hm.TypeVariable('a')
	t := func(d int) hm.Type {
		if d == 0 {
			return a
		}
		return G.TensorType{Dims: d, Of: a}
	}
	ts := make([]hm.Type, 0, len(in)+1)
	for _, d := range in {
		ts = append(ts, t(d))
	}
	ts = append(ts, t(out))
	return hm.NewFnType(ts...)
}

func dense(v G.Value) (*tensor.Dense, error) {
	d, ok := v.(*tensor.Dense)
	if !ok {
		return nil, fmt.Errorf("expected a *tensor.Dense, got %T", v)
	}
	return d, nil
}

func denses(vs []G.Value, n int) ([]*tensor.Dense, error) {
	if len(vs) != n {
		return nil, fmt.Errorf("expected %d inputs, got %d", n, len(vs))
	}
	ds := make([]*tensor.Dense, n)
	for i, v := range vs {
		d, err := dense(v)
		if err != nil {
			return nil, fmt.Errorf("input %d: %w", i, err)
		}
		ds[i] = d
	}
	return ds, nil
}

func scalarValue(v G.Value) (float64, error) {
	switch s := v.(type) {
	case *G.F64:
		return float64(*s), nil
	case *G.F32:
		return float64(*s), nil
	case tensor.Tensor:
		if s.Shape().TotalSize() != 1 {
			return 0, fmt.Errorf("expected a scalar, got shape %v", s.Shape())
		}
		switch d := s.Data().(type) {
		case float64:
			return d, nil
		case float32:
			return float64(d), nil
		case []float64:
			return d[0], nil
		case []float32:
			return float64(d[0]), nil
		}
	}
	return 0, fmt.Errorf("expected a float scalar, got %T", v)
}

func alloc(dt tensor.Dtype, shape ...int) *tensor.Dense {
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
}

// data returns d's backing slice; unlike d.Data() it stays a slice for
// one-element tensors.
func data[T Float](d *tensor.Dense) []T {
	var z T
	if _, ok := any(z).(float32); ok {
		return any(d.Float32s()).([]T)
	}
	return any(d.Float64s()).([]T)
}

// run calls f32 or f64 depending on dt.
func run(dt tensor.Dtype, f32, f64 func()) error {
	switch dt {
	case tensor.Float32:
		f32()
	case tensor.Float64:
		f64()
	default:
		return fmt.Errorf("unsupported dtype %v", dt)
	}
	return nil
}

func checkShape(name string, got tensor.Shape, want ...int) error {
	if !got.Eq(tensor.Shape(want)) {
		return fmt.Errorf("%s: shape %v, want %v", name, got, want)
	}
	return nil
}

// fixedShape is embedded by ops whose output shape is fixed at build time.
type fixedShape struct{ out tensor.Shape }

func (f *fixedShape) InferShape(...G.DimSizer) (tensor.Shape, error) { return f.out.Clone(), nil }
