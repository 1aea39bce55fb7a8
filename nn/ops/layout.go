package ops

import (
	"fmt"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Layout is how a 4-D activation [N,C,H,W] lies in memory. The shape a
// node reports is always [N,C,H,W]; only the order of the values differs.
type Layout uint8

const (
	// NCHW: each channel's H x W plane contiguous, channels in order.
	NCHW Layout = iota
	// Blocked16 is oneDNN's nChw16c: [N][C/16][H][W][16], the 16
	// channels of a block side by side at each pixel. C is a multiple of
	// 16, so the tensor has NCHW's size. oneDNN's convolution and batch
	// norm kernels read and write it without a reorder; element-wise ops
	// do not care; the shift and the global pooling index it themselves.
	Blocked16
)

func (l Layout) String() string {
	if l == Blocked16 {
		return "nChw16c"
	}
	return "NCHW"
}

// layouter is an op whose output may be Blocked16.
type layouter interface{ layout() Layout }

// LayoutOf returns the layout of n's value: that of its op's output, NCHW
// for inputs and for ops that do not say. Only nodes made by zoo's ops
// (and inputs) are answered right: gorgonia's element-wise ops in a
// gradient graph (the + that sums a value's gradients) keep their
// operands' layout but report NCHW; zoo's ops never ask about them.
func LayoutOf(n *G.Node) Layout {
	if l, ok := n.Op().(layouter); ok {
		return l.layout()
	}
	return NCHW
}

// CanBlock reports whether activations of dtype dt with c channels can be
// Blocked16 here: float32, c a multiple of 16, and oneDNN on (the build
// tag onednn, ZOO_ONEDNN not off), whose kernels are what make the layout
// pay.
func CanBlock(dt tensor.Dtype, c int) bool {
	return dnnlOn && dt == tensor.Float32 && c%16 == 0 && c > 0
}

func checkLayout(what string, l Layout, dt tensor.Dtype, c int) error {
	if l == Blocked16 && (dt != tensor.Float32 || c%16 != 0) {
		return fmt.Errorf("%s: the nChw16c layout needs float32 and channels in multiples of 16, not %v with %d", what, dt, c)
	}
	return nil
}

// ToNCHW copies the nChw16c tensor x ([n,c,hw]) into y in NCHW order.
func ToNCHW[T Float](n, c, hw int, x, y []T) {
	parallelFor(n*c/16, func(lo, hi int) {
		for nb := lo; nb < hi; nb++ {
			src := x[nb*hw*16:][:hw*16]
			for l := range 16 {
				dst := y[(nb*16+l)*hw:][:hw]
				for p := range dst {
					dst[p] = src[p*16+l]
				}
			}
		}
	})
}

// ToBlocked16 copies the NCHW tensor x ([n,c,hw]) into y in nChw16c order.
func ToBlocked16[T Float](n, c, hw int, x, y []T) {
	parallelFor(n*c/16, func(lo, hi int) {
		for nb := lo; nb < hi; nb++ {
			dst := y[nb*hw*16:][:hw*16]
			for l := range 16 {
				src := x[(nb*16+l)*hw:][:hw]
				for p, v := range src {
					dst[p*16+l] = v
				}
			}
		}
	})
}

// ShiftBlocked16 is Shift on nChw16c tensors: a block whose 16 channels
// all come from the same frame is one copy; a block that straddles c1 or
// c2 (C/8 = 8 channels in a 64-channel stage) is copied lane by lane.
func ShiftBlocked16[T Float](nt, t, c, hw, c1, c2 int, back bool, x, y []T) {
	src := func(f, ch int) int { // the frame channel ch of frame f comes from, or -1
		d := 0
		switch {
		case ch < c1:
			d = -1
		case ch < c2:
			d = 1
		}
		if back {
			d = -d
		}
		if ti := f%t + d; ti < 0 || ti >= t {
			return -1
		}
		return f + d
	}
	cb, blk := c/16, hw*16
	parallelFor(nt, func(lo, hi int) {
		for f := lo; f < hi; f++ {
			for b := range cb {
				dst := y[(f*cb+b)*blk:][:blk]
				s0 := src(f, b*16)
				whole := true
				for l := 1; l < 16; l++ {
					if src(f, b*16+l) != s0 {
						whole = false
						break
					}
				}
				if whole {
					if s0 < 0 {
						clear(dst)
					} else {
						copy(dst, x[(s0*cb+b)*blk:][:blk])
					}
					continue
				}
				for l := range 16 {
					s := src(f, b*16+l)
					if s < 0 {
						for p := 0; p < hw; p++ {
							dst[p*16+l] = 0
						}
						continue
					}
					xs := x[(s*cb+b)*blk:][:blk]
					for p := 0; p < hw; p++ {
						dst[p*16+l] = xs[p*16+l]
					}
				}
			}
		}
	})
}

// gapBlocked16 is gap on an nChw16c x ([n,c,hw]): forward, y[n*c] the
// channel means; back, x is dy [n*c] and y the 4-D dx.
func gapBlocked16[T Float](n, c, hw int, back bool, x, y []T) {
	inv := 1 / T(hw)
	cb := c / 16
	for nb := 0; nb < n*cb; nb++ {
		if back {
			dst := y[nb*hw*16:][:hw*16]
			v := x[nb*16:][:16]
			for p := 0; p < hw; p++ {
				for l := range 16 {
					dst[p*16+l] = v[l] * inv
				}
			}
			continue
		}
		var s [16]float64
		src := x[nb*hw*16:][:hw*16]
		for p := 0; p < hw; p++ {
			for l := range 16 {
				s[l] += float64(src[p*16+l])
			}
		}
		for l := range 16 {
			y[nb*16+l] = T(s[l] / float64(hw))
		}
	}
}

// nchwCopies holds the NCHW copies of blocked tensors that zoo's own
// kernels work on where oneDNN declines a blocked op (a shape it has only
// a reference kernel for): one set for all ops, used one op at a time.
type nchwCopies struct {
	mu   sync.Mutex
	b    [4][]float32
	done []func()
}

var copies nchwCopies

// passThrough is the copies of an op whose tensors are all NCHW: in and
// out return them unchanged and touch nothing, so every op shares it.
var passThrough nchwCopies

// viaNCHW runs f with the shared copies when a layout is Blocked16,
// else with copies that pass every tensor through (no lock: graphs on
// NCHW run concurrently).
func viaNCHW(l1, l2 Layout, f func(c *nchwCopies)) {
	if l1 == NCHW && l2 == NCHW {
		f(&passThrough)
		return
	}
	copies.mu.Lock()
	defer copies.mu.Unlock()
	copies.done = copies.done[:0]
	f(&copies)
	for _, d := range copies.done {
		d()
	}
}

func (c *nchwCopies) buf(i, n int) []float32 {
	if cap(c.b[i]) < n {
		c.b[i] = make([]float32, n)
	}
	return c.b[i][:n]
}

// in returns v ([n,ch,hw] in layout l) as NCHW: v, or its copy in
// buffer i.
func (c *nchwCopies) in(i int, l Layout, n, ch, hw int, v []float32) []float32 {
	if l == NCHW {
		return v
	}
	t := c.buf(i, len(v))
	ToNCHW(n, ch, hw, v, t)
	return t
}

// out returns where an NCHW kernel writes v ([n,ch,hw] in layout l): v,
// or buffer i, copied into v in layout l when viaNCHW's f returns.
func (c *nchwCopies) out(i int, l Layout, n, ch, hw int, v []float32) []float32 {
	if l == NCHW {
		return v
	}
	t := c.buf(i, len(v))
	c.done = append(c.done, func() { ToBlocked16(n, ch, hw, t, v) })
	return t
}
