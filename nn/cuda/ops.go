//go:build zoocuda

package cuda

import (
	"github.com/zoo-ml/zoo/nn/ops"
)

// The GPU twins of nn/ops's kernels, on device buffers. Each takes the
// same geometry as its CPU twin; ops_test.go runs both on the same data.
// Callers hold the device lock.

// colLimit caps the im2col scratch buffer (elements): convs on big batches
// run in chunks of images whose patch matrices fit.
const colLimit = 1 << 27 // 512 MiB of float32

// Scratch is the conv kernels' workspace: a patch-matrix buffer of
// colLimit elements and, for the filter gradient, a buffer for the
// chunk's transposed output gradient.
type Scratch struct {
	Col, T *Buf
}

// chunk returns how many images of g one pass handles.
func chunk(g ops.ConvGeom) int {
	per := g.C * g.R * g.S * g.OH() * g.OW()
	if isPointwise(g) {
		per = g.C * g.H * g.W
	}
	per = max(per, g.K*g.OH()*g.OW())
	return max(1, min(g.N, colLimit/per))
}

func isPointwise(g ops.ConvGeom) bool { return g.R == 1 && g.S == 1 && g.Stride == 1 && g.Pad == 0 }

// ConvForward is ops.ConvForward: y = conv(x, w), NCHW, no bias.
func (d *Device) ConvForward(g ops.ConvGeom, x, w, y *Buf, s *Scratch) error {
	crs, hw, ohw := g.C*g.R*g.S, g.H*g.W, g.OH()*g.OW()
	if isPointwise(g) {
		return d.gemm(false, false, g.K, ohw, g.C, w, 0, g.C, 0, x, 0, hw, g.C*hw, 0, y, 0, ohw, g.K*ohw, g.N)
	}
	step := chunk(g)
	for n0 := 0; n0 < g.N; n0 += step {
		nb := min(step, g.N-n0)
		if err := d.run1("im2col", nb*crs*ohw, pAt(x, n0*g.C*hw), p(s.Col), i32(nb*crs*ohw), i32(g.C), i32(g.H), i32(g.W), i32(g.R), i32(g.S),
			i32(g.Stride), i32(g.Pad), i32(g.OH()), i32(g.OW()), i32(crs*ohw), i32(ohw)); err != nil {
			return err
		}
		if err := d.gemm(false, false, g.K, ohw, crs, w, 0, crs, 0, s.Col, 0, ohw, crs*ohw, 0, y, n0*g.K*ohw, ohw, g.K*ohw, nb); err != nil {
			return err
		}
	}
	return nil
}

// ConvBackwardData is ops.ConvBackwardData: dx from w and dy.
func (d *Device) ConvBackwardData(g ops.ConvGeom, w, dy, dx *Buf, s *Scratch) error {
	crs, hw, ohw := g.C*g.R*g.S, g.H*g.W, g.OH()*g.OW()
	if isPointwise(g) {
		return d.gemm(true, false, g.C, ohw, g.K, w, 0, g.C, 0, dy, 0, ohw, g.K*ohw, 0, dx, 0, hw, g.C*hw, g.N)
	}
	step := chunk(g)
	for n0 := 0; n0 < g.N; n0 += step {
		nb := min(step, g.N-n0)
		if err := d.gemm(true, false, crs, ohw, g.K, w, 0, crs, 0, dy, n0*g.K*ohw, ohw, g.K*ohw, 0, s.Col, 0, ohw, crs*ohw, nb); err != nil {
			return err
		}
		if err := d.run1("col2im", nb*g.C*hw, p(s.Col), pAt(dx, n0*g.C*hw), i32(nb*g.C*hw), i32(g.C), i32(g.H), i32(g.W), i32(g.R), i32(g.S),
			i32(g.Stride), i32(g.Pad), i32(g.OH()), i32(g.OW())); err != nil {
			return err
		}
	}
	return nil
}

// ConvBackwardFilter is ops.ConvBackwardFilter: dw from x and dy. Each
// chunk of images is one gemm, dw[K, CRS] += dyᵀ-chunk[K, nb*OHW] ·
// col[CRS, nb*OHW]ᵀ, on the chunk's output gradient transposed to CNHW.
func (d *Device) ConvBackwardFilter(g ops.ConvGeom, x, dy, dw *Buf, s *Scratch) error {
	crs, hw, ohw := g.C*g.R*g.S, g.H*g.W, g.OH()*g.OW()
	step := chunk(g)
	for n0 := 0; n0 < g.N; n0 += step {
		nb := min(step, g.N-n0)
		if err := d.run1("to_cnhw", nb*g.K*ohw, pAt(dy, n0*g.K*ohw), p(s.T), i32(nb*g.K*ohw), i32(nb), i32(g.K), i32(ohw)); err != nil {
			return err
		}
		if isPointwise(g) {
			if err := d.run1("to_cnhw", nb*g.C*hw, pAt(x, n0*g.C*hw), p(s.Col), i32(nb*g.C*hw), i32(nb), i32(g.C), i32(hw)); err != nil {
				return err
			}
		} else if err := d.run1("im2col", nb*crs*ohw, pAt(x, n0*g.C*hw), p(s.Col), i32(nb*crs*ohw), i32(g.C), i32(g.H), i32(g.W), i32(g.R), i32(g.S),
			i32(g.Stride), i32(g.Pad), i32(g.OH()), i32(g.OW()), i32(ohw), i32(nb*ohw)); err != nil {
			return err
		}
		beta := float32(1)
		if n0 == 0 {
			beta = 0
		}
		if err := d.gemm(false, true, g.K, crs, nb*ohw, s.T, 0, nb*ohw, 0, s.Col, 0, nb*ohw, 0, beta, dw, 0, crs, 0, 1); err != nil {
			return err
		}
	}
	return nil
}

// BNStats holds one batch norm's per-channel vectors on the device.
type BNStats struct {
	Mean, Invstd, A, B *Buf // batch (or running) mean, invstd, y = A*x + B
}

// BNForwardTrain is ops.BNForwardTrain plus bnOp's running-stat update
// (rm, rv updated in place).
func (d *Device) BNForwardTrain(n, c, hw int, eps, momentum float64, relu bool, x, scale, offset, y, rm, rv *Buf, st *BNStats) error {
	if err := d.launch("bn_stats", [3]int{c, 1, 1}, [3]int{256, 1, 1}, p(x), i32(n), i32(c), i32(hw), f64(eps), f32(momentum),
		p(scale), p(offset), p(st.Mean), p(st.Invstd), p(rm), p(rv), p(st.A), p(st.B)); err != nil {
		return err
	}
	return d.run1("bn_apply", n*c*hw, p(x), p(y), i32(n*c*hw), i32(c), i32(hw), p(st.A), p(st.B), b2i(relu))
}

// BNForwardEval is ops.BNForwardEval (and convBN's normalisation).
func (d *Device) BNForwardEval(n, c, hw int, eps float64, relu bool, x, scale, offset, rm, rv, y *Buf, st *BNStats) error {
	if err := d.run1("bn_coef_eval", c, i32(c), f64(eps), p(scale), p(offset), p(rm), p(rv), p(st.Mean), p(st.Invstd), p(st.A), p(st.B)); err != nil {
		return err
	}
	return d.run1("bn_apply", n*c*hw, p(x), p(y), i32(n*c*hw), i32(c), i32(hw), p(st.A), p(st.B), b2i(relu))
}

// BNBackward is ops.BNBackward.
func (d *Device) BNBackward(n, c, hw int, train, relu bool, x, y, dy, scale *Buf, st *BNStats, dx, dscale, doffset *Buf) error {
	if err := d.launch("bn_bwd_reduce", [3]int{c, 1, 1}, [3]int{256, 1, 1}, p(x), p(y), p(dy), i32(n), i32(c), i32(hw), b2i(relu),
		p(st.Mean), p(st.Invstd), p(dscale), p(doffset)); err != nil {
		return err
	}
	return d.run1("bn_bwd_apply", n*c*hw, p(x), p(y), p(dy), p(dx), i32(n*c*hw), i32(n), i32(c), i32(hw), b2i(relu), b2i(train),
		p(scale), p(st.Mean), p(st.Invstd), p(dscale), p(doffset))
}

// MaxPoolForward is ops.MaxPoolForward (argmax as int32 in a Buf).
func (d *Device) MaxPoolForward(nc, h, w, k, stride, pad int, x, y, argmax *Buf) error {
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	return d.run1("maxpool_fwd", nc*oh*ow, p(x), p(y), p(argmax), i32(nc*oh*ow), i32(h), i32(w), i32(k), i32(stride), i32(pad), i32(oh), i32(ow))
}

// MaxPoolBackward is ops.MaxPoolBackward.
func (d *Device) MaxPoolBackward(nc, h, w, k, stride, pad int, argmax, dy, dx *Buf) error {
	oh, ow := (h+2*pad-k)/stride+1, (w+2*pad-k)/stride+1
	return d.run1("maxpool_bwd", nc*h*w, p(dy), p(argmax), p(dx), i32(nc*h*w), i32(h), i32(w), i32(k), i32(stride), i32(pad), i32(oh), i32(ow))
}

// GlobalAvgPool is ops.GlobalAvgPool's kernel, forward or backward.
func (d *Device) GlobalAvgPool(nc, hw int, back bool, x, y *Buf) error {
	if back {
		return d.run1("gap_bwd", nc*hw, p(x), p(y), i32(nc*hw), i32(hw))
	}
	return d.run1("gap_fwd", nc, p(x), p(y), i32(nc), i32(hw))
}

// Shift is ops.Shift.
func (d *Device) Shift(nt, t, c, hw, c1, c2 int, back bool, x, y *Buf) error {
	return d.run1("shift", nt*c*hw, p(x), p(y), i32(nt*c*hw), i32(t), i32(c), i32(hw), i32(c1), i32(c2), b2i(back))
}

// Dropout applies a downgrade_in_infer dropout: with mask (one byte an
// element, 1 = keep) in training and for the gradient, times 1-prob
// otherwise.
func (d *Device) Dropout(n int, mask *Buf, prob float64, x, y *Buf) error {
	if mask != nil {
		return d.run1("dropout", n, p(x), p(mask), p(y), i32(n))
	}
	return d.run1("dropout_eval", n, p(x), p(y), i32(n), f32(float64(float32(1-prob))))
}

// SegmentMean is ops.segMean, forward ([N*T,C] -> [N,C]) or backward.
func (d *Device) SegmentMean(n, t, c int, back bool, x, y *Buf) error {
	if back {
		return d.run1("segmean_bwd", n*t*c, p(x), p(y), i32(n*t*c), i32(t), i32(c))
	}
	return d.run1("segmean_fwd", n*c, p(x), p(y), i32(n*c), i32(t), i32(c))
}

// Linear is ops.linear: y = x·w + b, x [N,C], w [C,K].
func (d *Device) Linear(n, c, k int, x, w, b, y *Buf) error {
	if err := d.run1("bias_rows", n*k, p(b), p(y), i32(n*k), i32(k)); err != nil {
		return err
	}
	return d.gemm(false, false, n, k, c, x, 0, c, 0, w, 0, k, 0, 1, y, 0, k, 0, 1)
}

// LinearBackward is ops.linearGrad: dx (if not nil), dw and db.
func (d *Device) LinearBackward(n, c, k int, x, w, dy, dx, dw, db *Buf) error {
	if dx != nil {
		if err := d.gemm(false, true, n, c, k, dy, 0, k, 0, w, 0, k, 0, 0, dx, 0, c, 0, 1); err != nil {
			return err
		}
	}
	if err := d.gemm(true, false, c, k, n, x, 0, c, 0, dy, 0, k, 0, 0, dw, 0, k, 0, 1); err != nil {
		return err
	}
	return d.run1("col_sum", k, p(dy), p(db), i32(n), i32(k))
}

// SoftmaxCE is ops.SoftmaxCE and its gradient: probs and per-row losses
// (a Buf of n float64s, so 2n elements), and with labels (an int32 Buf,
// or nil) the logits' gradient.
func (d *Device) SoftmaxCE(n, k int, logits, labels, probs, loss, grad *Buf) error {
	var lab, gr arg
	if labels != nil {
		lab, gr = p(labels), p(grad)
	}
	return d.run1("softmax_ce", n, p(logits), lab, p(probs), p(loss), gr, i32(n), i32(k))
}

// AddReLU is ops.addReLU.
func (d *Device) AddReLU(n int, a, b, y *Buf) error {
	return d.run1("add_relu", n, p(a), p(b), p(y), i32(n))
}

// ReLUGrad is ops.reluGrad (dx may be dy).
func (d *Device) ReLUGrad(n int, y, dy, dx *Buf) error {
	return d.run1("relu_grad", n, p(y), p(dy), p(dx), i32(n))
}

// Add is y = a + b (y may be a or b).
func (d *Device) Add(n int, a, b, y *Buf) error {
	return d.run1("add", n, p(a), p(b), p(y), i32(n))
}

// Momentum is optim's step for one parameter.
func (d *Device) Momentum(n int, w, g, v *Buf, mu, decay, lr float64) error {
	return d.run1("momentum", n, p(w), p(g), p(v), i32(n), f32(mu), f32(decay), f32(lr))
}

func b2i(b bool) arg {
	if b {
		return 1
	}
	return 0
}
