//go:build zoocuda

package cuda

import "github.com/zoo-ml/zoo/nn/ops"

// backend is what Model runs on: the GPU (*Device) or, to test Model's
// wiring (layer order, buffers, the backward pass) on machines without a
// GPU, the host twin in host.go built from nn/ops's CPU kernels.
type backend interface {
	lock()
	Alloc(n int) (*Buf, error)
	Free(b *Buf)
	Upload(b *Buf, src []float32) error
	uploadBytes(b *Buf, src []byte) error
	Download(dst []float32, b *Buf) error
	zero(b *Buf, off, n int) error
	Sync() error

	ConvForward(g ops.ConvGeom, x, w, y *Buf, s *Scratch) error
	ConvBackwardData(g ops.ConvGeom, w, dy, dx *Buf, s *Scratch) error
	ConvBackwardFilter(g ops.ConvGeom, x, dy, dw *Buf, s *Scratch) error
	BNForwardTrain(n, c, hw int, eps, momentum float64, relu bool, x, scale, offset, y, rm, rv *Buf, st *BNStats) error
	BNForwardEval(n, c, hw int, eps float64, relu bool, x, scale, offset, rm, rv, y *Buf, st *BNStats) error
	BNBackward(n, c, hw int, train, relu bool, x, y, dy, scale *Buf, st *BNStats, dx, dscale, doffset *Buf) error
	MaxPoolForward(nc, h, w, k, stride, pad int, x, y, argmax *Buf) error
	MaxPoolBackward(nc, h, w, k, stride, pad int, argmax, dy, dx *Buf) error
	GlobalAvgPool(nc, hw int, back bool, x, y *Buf) error
	Shift(nt, t, c, hw, c1, c2 int, back bool, x, y *Buf) error
	Dropout(n int, mask *Buf, prob float64, x, y *Buf) error
	SegmentMean(n, t, c int, back bool, x, y *Buf) error
	Linear(n, c, k int, x, w, b, y *Buf) error
	LinearBackward(n, c, k int, x, w, dy, dx, dw, db *Buf) error
	SoftmaxCE(n, k int, logits, labels, probs, loss, grad *Buf) error
	AddReLU(n int, a, b, y *Buf) error
	ReLUGrad(n int, y, dy, dx *Buf) error
	Add(n int, a, b, y *Buf) error
	Momentum(n int, w, g, v *Buf, mu, decay, lr float64) error
}

var _ backend = (*Device)(nil)
var _ backend = host{}
