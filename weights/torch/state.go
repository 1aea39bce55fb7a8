package torch

import (
	"errors"
	"fmt"

	"github.com/zoo-ml/zoo/internal/pickle"
	"github.com/zoo-ml/zoo/weights"
)

// storage is a typed storage's bytes, or a legacy view of another one.
type storage struct {
	dtype         weights.DType
	data          []byte
	base          *storage
	offset, numel int64 // of a view, in elements
}

func (s *storage) bytes() []byte {
	if s.base == nil {
		return s.data
	}
	sz := int64(s.dtype.Size())
	return s.base.bytes()[s.offset*sz : (s.offset+s.numel)*sz]
}

// tensorRef is torch._utils._rebuild_tensor_v2's arguments; a legacy
// file's storages come after the pickle, so the copy waits for them.
type tensorRef struct {
	s      *storage
	offset int64
	size   []int64
	stride []int64
}

// opaque stands for an allowed object zoo does not need (a numpy scalar
// in a checkpoint's metadata): it takes any state.
type opaque struct{ name string }

func (*opaque) SetState(any) error { return nil }

var storageTypes = map[string]weights.DType{
	"FloatStorage":    weights.FP32,
	"HalfStorage":     weights.FP16,
	"BFloat16Storage": weights.BF16,
	"DoubleStorage":   weights.FP64,
	"LongStorage":     weights.Int64,
	"IntStorage":      weights.Int32,
	"ByteStorage":     weights.Uint8,
}

// globals is the allow-list of a checkpoint: what a state dict and its
// metadata hold. Nothing else may be named.
var globals = func() map[pickle.Global]pickle.Func {
	g := map[pickle.Global]pickle.Func{
		{Module: "torch._utils", Name: "_rebuild_tensor_v2"}: rebuildTensor,
		{Module: "torch._utils", Name: "_rebuild_parameter"}: rebuildParameter,
		{Module: "collections", Name: "OrderedDict"}:         func(pickle.Tuple) (any, error) { return &pickle.Dict{}, nil },
		{Module: "numpy.core.multiarray", Name: "scalar"}:    func(pickle.Tuple) (any, error) { return &opaque{"numpy scalar"}, nil },
		{Module: "numpy._core.multiarray", Name: "scalar"}:   func(pickle.Tuple) (any, error) { return &opaque{"numpy scalar"}, nil },
		{Module: "numpy", Name: "dtype"}:                     func(pickle.Tuple) (any, error) { return &opaque{"numpy dtype"}, nil },
	}
	for name := range storageTypes {
		g[pickle.Global{Module: "torch", Name: name}] = func(pickle.Tuple) (any, error) {
			return nil, errors.New("a storage type cannot be called in a checkpoint")
		}
	}
	for k, v := range pickle.BytesGlobals {
		g[k] = v
	}
	return g
}()

func ints(v any, what string) ([]int64, error) {
	t, ok := v.(pickle.Tuple)
	if !ok {
		if l, ok := v.(*pickle.List); ok {
			t = l.Items
		} else {
			return nil, fmt.Errorf("%s is %s, want a tuple", what, pickle.TypeName(v))
		}
	}
	if len(t) > weights.MaxRank {
		return nil, fmt.Errorf("%s of rank %d", what, len(t))
	}
	out := make([]int64, len(t))
	for i, x := range t {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("%s holds %v", what, x)
		}
		out[i] = n
	}
	return out, nil
}

// rebuildTensor: _rebuild_tensor_v2(storage, storage_offset, size,
// stride, requires_grad, backward_hooks[, metadata]).
func rebuildTensor(a pickle.Tuple) (any, error) {
	if len(a) < 4 {
		return nil, fmt.Errorf("%d arguments", len(a))
	}
	s, ok := a[0].(*storage)
	off, ok2 := a[1].(int64)
	if !ok || !ok2 || off < 0 {
		return nil, errors.New("storage or offset of the wrong type")
	}
	size, err := ints(a[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := ints(a[3], "stride")
	if err != nil {
		return nil, err
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("size %v with stride %v", size, stride)
	}
	return &tensorRef{s: s, offset: off, size: size, stride: stride}, nil
}

// rebuildParameter: _rebuild_parameter(data, requires_grad, hooks).
func rebuildParameter(a pickle.Tuple) (any, error) {
	if len(a) < 1 {
		return nil, errors.New("no arguments")
	}
	t, ok := a[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("parameter of %s", pickle.TypeName(a[0]))
	}
	return t, nil
}

// tensor copies the view out row-major, checking every index against
// the storage.
func (r *tensorRef) tensor(name string) (*weights.Tensor, error) {
	sz := int64(r.s.dtype.Size())
	data := r.s.bytes()
	have := int64(len(data)) / sz
	t := &weights.Tensor{Name: name, DType: r.s.dtype, Dims: r.size}
	n := t.Numel()
	if n < 0 {
		return nil, fmt.Errorf("%s: size %v", name, r.size)
	}
	if n == 0 {
		t.Data = []byte{}
		return t, nil
	}
	// A view never holds more elements than its storage (an expanded,
	// stride-0 tensor could, but no state dict has one): this also caps
	// the copy below by the file's size.
	if n > have {
		return nil, fmt.Errorf("%s: %d elements from a storage of %d", name, n, have)
	}
	last := r.offset
	for i, d := range r.size {
		if r.stride[i] > have || r.offset > have {
			return nil, fmt.Errorf("%s: stride %v offset %d out of a storage of %d", name, r.stride, r.offset, have)
		}
		if r.stride[i] > 0 && d-1 > have/r.stride[i] {
			return nil, fmt.Errorf("%s: size %v stride %v out of a storage of %d", name, r.size, r.stride, have)
		}
		last += (d - 1) * r.stride[i] // each term at most have: no overflow
	}
	if last >= have {
		return nil, fmt.Errorf("%s: size %v stride %v offset %d reach element %d of a storage of %d", name, r.size, r.stride, r.offset, last, have)
	}
	contiguous := true
	want := int64(1)
	for i := len(r.size) - 1; i >= 0; i-- {
		if r.size[i] != 1 && r.stride[i] != want {
			contiguous = false
		}
		want *= r.size[i]
	}
	if contiguous {
		t.Data = append([]byte(nil), data[r.offset*sz:(r.offset+n)*sz]...)
		return t, nil
	}
	out := make([]byte, 0, n*sz)
	idx := make([]int64, len(r.size))
	for range n {
		e := r.offset
		for i, x := range idx {
			e += x * r.stride[i]
		}
		out = append(out, data[e*sz:(e+1)*sz]...)
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < r.size[i] {
				break
			}
			idx[i] = 0
		}
	}
	t.Data = out
	return t, nil
}

// stateDict finds the state dict: the checkpoint itself, or its
// "state_dict" (MIT, mmaction2) or "model" entry.
func stateDict(top any) (*Checkpoint, error) {
	d, ok := top.(*pickle.Dict)
	if !ok {
		return nil, formatErr(0, "the checkpoint is a %s, want a dict (a state dict or one holding \"state_dict\")", pickle.TypeName(top))
	}
	c := &Checkpoint{}
	sd := d
	for _, k := range []string{"state_dict", "model"} {
		if v, ok := d.Get(k); ok {
			if inner, ok := v.(*pickle.Dict); ok {
				sd = inner
				for _, key := range d.Keys {
					s, _ := pickle.String(key)
					c.Keys = append(c.Keys, s)
				}
				break
			}
		}
	}
	seen := map[string]bool{}
	for i, k := range sd.Keys {
		name, ok := pickle.String(k)
		if !ok {
			c.Skipped = append(c.Skipped, fmt.Sprint(k))
			continue
		}
		r, ok := sd.Vals[i].(*tensorRef)
		if !ok {
			c.Skipped = append(c.Skipped, name)
			continue
		}
		if seen[name] {
			return nil, formatErr(0, "tensor %q twice", name)
		}
		seen[name] = true
		t, err := r.tensor(name)
		if err != nil {
			return nil, formatErr(0, "%v", err)
		}
		c.Tensors = append(c.Tensors, t)
	}
	if len(c.Tensors) == 0 {
		return nil, formatErr(0, "no tensors in the checkpoint's state dict")
	}
	return c, nil
}
