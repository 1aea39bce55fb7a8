//go:build zoocuda

package cuda

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"

	"github.com/zoo-ml/zoo/nn/ops"
)

// host runs Model on the CPU with nn/ops's kernels (and, for the ones
// nn/ops keeps private, the same loops). It exists for model_test.go:
// Model on host must match resnet.Model, which checks Model's wiring
// without a GPU; the twin tests check each GPU kernel against the same
// CPU kernels on a device machine.
type host struct{}

func (host) lock()                     { runtime.LockOSThread() }
func (host) Alloc(n int) (*Buf, error) { return &Buf{n: n, h: make([]float32, n)}, nil }
func (host) Free(b *Buf)               { b.h, b.hb, b.hi = nil, nil, nil }
func (host) Sync() error               { return nil }

func (host) Upload(b *Buf, src []float32) error {
	if len(src) > b.n {
		return fmt.Errorf("upload: %d values into a buffer of %d", len(src), b.n)
	}
	copy(b.h, src)
	return nil
}

func (host) uploadBytes(b *Buf, src []byte) error {
	if len(src) > 4*b.n {
		return fmt.Errorf("upload: %d bytes into a buffer of %d", len(src), 4*b.n)
	}
	b.hb = append(b.hb[:0], src...)
	return nil
}

func (host) Download(dst []float32, b *Buf) error {
	if len(dst) > b.n {
		return fmt.Errorf("download: %d values from a buffer of %d", len(dst), b.n)
	}
	copy(dst, b.h)
	return nil
}

func (host) zero(b *Buf, off, n int) error { clear(b.h[off : off+n]); return nil }

func (host) ConvForward(g ops.ConvGeom, x, w, y *Buf, _ *Scratch) error {
	ops.ConvForward(g, x.h, w.h, y.h, nil)
	return nil
}

func (host) ConvBackwardData(g ops.ConvGeom, w, dy, dx *Buf, _ *Scratch) error {
	ops.ConvBackwardData(g, w.h, dy.h, dx.h, nil)
	return nil
}

func (host) ConvBackwardFilter(g ops.ConvGeom, x, dy, dw *Buf, _ *Scratch) error {
	ops.ConvBackwardFilter(g, x.h, dy.h, dw.h, nil)
	return nil
}

func (host) BNForwardTrain(n, c, hw int, eps, momentum float64, relu bool, x, scale, offset, y, rm, rv *Buf, st *BNStats) error {
	va := make([]float32, c)
	ops.BNForwardTrain(n, c, hw, eps, relu, x.h, scale.h, offset.h, y.h, st.Mean.h, st.Invstd.h, va)
	m := float32(momentum)
	for i := 0; i < c; i++ {
		rm.h[i] = m*rm.h[i] + (1-m)*st.Mean.h[i]
		rv.h[i] = m*rv.h[i] + (1-m)*va[i]
	}
	return nil
}

func (host) BNForwardEval(n, c, hw int, eps float64, relu bool, x, scale, offset, rm, rv, y *Buf, st *BNStats) error {
	ops.BNForwardEval(n, c, hw, eps, relu, x.h, scale.h, offset.h, rm.h, rv.h, y.h)
	for i := 0; i < c; i++ {
		st.Mean.h[i] = rm.h[i]
		st.Invstd.h[i] = float32(1 / math.Sqrt(float64(rv.h[i])+eps))
	}
	return nil
}

func (host) BNBackward(n, c, hw int, train, relu bool, x, y, dy, scale *Buf, st *BNStats, dx, dscale, doffset *Buf) error {
	ops.BNBackward(n, c, hw, train, relu, x.h, y.h, dy.h, scale.h, st.Mean.h, st.Invstd.h, dx.h, dscale.h, doffset.h)
	return nil
}

func (host) MaxPoolForward(nc, h, w, k, stride, pad int, x, y, argmax *Buf) error {
	if argmax.hi == nil {
		argmax.hi = make([]int32, argmax.n)
	}
	ops.MaxPoolForward(nc, h, w, k, stride, pad, x.h, y.h, argmax.hi)
	return nil
}

func (host) MaxPoolBackward(nc, h, w, k, stride, pad int, argmax, dy, dx *Buf) error {
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	ops.MaxPoolBackward(nc, h*w, oh*ow, argmax.hi, dy.h, dx.h[:nc*h*w])
	return nil
}

func (host) GlobalAvgPool(nc, hw int, back bool, x, y *Buf) error {
	inv := 1 / float32(hw)
	for p := 0; p < nc; p++ {
		if back {
			for i := 0; i < hw; i++ {
				y.h[p*hw+i] = x.h[p] * inv
			}
			continue
		}
		var s float64
		for _, v := range x.h[p*hw : (p+1)*hw] {
			s += float64(v)
		}
		y.h[p] = float32(s / float64(hw))
	}
	return nil
}

func (host) Shift(nt, t, c, hw, c1, c2 int, back bool, x, y *Buf) error {
	ops.Shift(nt, t, c, hw, c1, c2, back, x.h, y.h)
	return nil
}

func (host) Dropout(n int, mask *Buf, prob float64, x, y *Buf) error {
	if mask == nil {
		k := float32(1 - prob)
		for i := 0; i < n; i++ {
			y.h[i] = x.h[i] * k
		}
		return nil
	}
	for i := 0; i < n; i++ {
		if mask.hb[i] != 0 {
			y.h[i] = x.h[i]
		} else {
			y.h[i] = 0
		}
	}
	return nil
}

func (host) SegmentMean(n, t, c int, back bool, x, y *Buf) error {
	if back {
		inv := 1 / float32(t)
		for f := 0; f < n*t; f++ {
			for j := 0; j < c; j++ {
				y.h[f*c+j] = x.h[(f/t)*c+j] * inv
			}
		}
		return nil
	}
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			var s float64
			for u := 0; u < t; u++ {
				s += float64(x.h[(i*t+u)*c+j])
			}
			y.h[i*c+j] = float32(s / float64(t))
		}
	}
	return nil
}

func (host) Linear(n, c, k int, x, w, b, y *Buf) error {
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			s := b.h[j]
			for q := 0; q < c; q++ {
				s += x.h[i*c+q] * w.h[q*k+j]
			}
			y.h[i*k+j] = s
		}
	}
	return nil
}

func (host) LinearBackward(n, c, k int, x, w, dy, dx, dw, db *Buf) error {
	clear(dw.h[:c*k])
	clear(db.h[:k])
	if dx != nil {
		clear(dx.h[:n*c])
	}
	for i := 0; i < n; i++ {
		for j := 0; j < k; j++ {
			g := dy.h[i*k+j]
			db.h[j] += g
			for q := 0; q < c; q++ {
				if dx != nil {
					dx.h[i*c+q] += g * w.h[q*k+j]
				}
				dw.h[q*k+j] += x.h[i*c+q] * g
			}
		}
	}
	return nil
}

func (host) SoftmaxCE(n, k int, logits, labels, probs, loss, grad *Buf) error {
	for r := 0; r < n; r++ {
		x := logits.h[r*k : (r+1)*k]
		m := math.Inf(-1)
		for _, v := range x {
			m = max(m, float64(v))
		}
		var s float64
		for _, v := range x {
			s += math.Exp(float64(v) - m)
		}
		var l float64
		for j, v := range x {
			pj := math.Exp(float64(v)-m) / s
			probs.h[r*k+j] = float32(pj)
			if labels != nil {
				lab := int(int32(binary.LittleEndian.Uint32(labels.hb[4*r:])))
				oh := 0.0
				if j == lab {
					l, oh = -math.Log(pj), 1
				}
				grad.h[r*k+j] = float32((pj - oh) / float64(n))
			}
		}
		bits := math.Float64bits(l)
		loss.h[2*r], loss.h[2*r+1] = math.Float32frombits(uint32(bits)), math.Float32frombits(uint32(bits>>32))
	}
	return nil
}

func (host) AddReLU(n int, a, b, y *Buf) error {
	for i := 0; i < n; i++ {
		y.h[i] = max(a.h[i]+b.h[i], 0)
	}
	return nil
}

func (host) ReLUGrad(n int, y, dy, dx *Buf) error {
	for i := 0; i < n; i++ {
		if y.h[i] > 0 {
			dx.h[i] = dy.h[i]
		} else {
			dx.h[i] = 0
		}
	}
	return nil
}

func (host) Add(n int, a, b, y *Buf) error {
	for i := 0; i < n; i++ {
		y.h[i] = a.h[i] + b.h[i]
	}
	return nil
}

func (host) Momentum(n int, w, g, v *Buf, mu, decay, lr float64) error {
	m, dc, l := float32(mu), float32(decay), float32(lr)
	for i := 0; i < n; i++ {
		v.h[i] = m*v.h[i] + g.h[i] + dc*w.h[i]
		w.h[i] -= l * v.h[i]
	}
	return nil
}
