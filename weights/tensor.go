package weights

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Tensor is one Paddle variable: a LoDTensor record with its name (the
// file name in a weights directory; records themselves hold no name).
// Data is the raw little-endian row-major payload, Numel()*DType.Size()
// bytes.
type Tensor struct {
	Name  string
	DType DType
	Dims  []int64
	LoD   [][]uint64
	Data  []byte
}

// NewFloat32 returns an FP32 tensor holding a copy of v. It panics if
// len(v) does not match dims, as a programming error.
func NewFloat32(name string, dims []int64, v []float32) *Tensor {
	n, err := numel(dims)
	if err != nil || n != int64(len(v)) {
		panic(fmt.Sprintf("weights.NewFloat32(%q): %d values for dims %v", name, len(v), dims))
	}
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return &Tensor{Name: name, DType: FP32, Dims: append([]int64(nil), dims...), Data: b}
}

// Numel returns the number of elements (1 for a tensor with no dims,
// Paddle's 0-D tensor), or -1 when the dims are invalid (negative, or
// more than MaxElements elements).
func (t *Tensor) Numel() int64 {
	n, err := numel(t.Dims)
	if err != nil {
		return -1
	}
	return n
}

// Float32s returns the values as float32, converting FP16, BF16 and FP64
// (FP64 values beyond float32's range become ±Inf). Integer and bool
// tensors are an error: they are not weights.
func (t *Tensor) Float32s() ([]float32, error) {
	n := t.Numel()
	sz := t.DType.Size()
	if n < 0 || sz == 0 || int64(len(t.Data)) != n*int64(sz) {
		return nil, fmt.Errorf("weights: %s: %d data bytes for %s %v", t.Name, len(t.Data), t.DType, t.Dims)
	}
	out := make([]float32, n)
	d := t.Data
	switch t.DType {
	case FP32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(d[4*i:]))
		}
	case FP64:
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(d[8*i:])))
		}
	case FP16:
		for i := range out {
			out[i] = math.Float32frombits(halfToFloatBits(binary.LittleEndian.Uint16(d[2*i:])))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(d[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("weights: %s: dtype %s is not a float type", t.Name, t.DType)
	}
	return out, nil
}

// halfToFloatBits converts IEEE 754 binary16 bits to binary32 bits,
// exactly (every half value is representable as a float).
func halfToFloatBits(h uint16) uint32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f: // Inf or NaN
		return sign | 0x7f800000 | mant<<13
	case exp != 0: // normal
		return sign | (exp+112)<<23 | mant<<13
	case mant == 0: // ±0
		return sign
	}
	// Subnormal half: normalise.
	e := uint32(113)
	for mant&0x400 == 0 {
		mant <<= 1
		e--
	}
	return sign | e<<23 | (mant&0x3ff)<<13
}

// numel multiplies dims, refusing negative dims and products above
// MaxElements (so no overflow can happen).
func numel(dims []int64) (int64, error) {
	if len(dims) > MaxRank {
		return 0, fmt.Errorf("rank %d above %d", len(dims), MaxRank)
	}
	n := int64(1)
	for _, d := range dims {
		if d < 0 {
			return 0, fmt.Errorf("negative dim in %v", dims)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n != 0 && d > MaxElements/n {
			return 0, fmt.Errorf("dims %v hold more than %d elements", dims, int64(MaxElements))
		}
		if n != 0 {
			n *= d
		}
	}
	return n, nil
}
