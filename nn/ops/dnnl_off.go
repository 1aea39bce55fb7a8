//go:build !onednn

package ops

import "fmt"

// Without the build tag onednn every convolution runs on the kernels of
// kernels.go; dnnlConv is an empty stand-in.
type dnnlConv struct{}

func (*dnnlConv) chainFrom(*dnnlConv)                     {}
func (*dnnlConv) chainSum(*dnnlConv)                      {}
func (*dnnlConv) setSkipOut(bool, bool, bool, *RingLease) {}

// RingLease: without oneDNN no output is skipped; PlanReaders returns nil.
type RingLease struct{}

func newRingLease() *RingLease { return nil }

// Acquire and Release do nothing without oneDNN.
func (*RingLease) Acquire() {}
func (*RingLease) Release() {}

func (*dnnlConv) isChainedFrom(*dnnlConv) bool { return false }
func (*dnnlConv) sumsFrom(*dnnlConv) bool      { return false }

func (*dnnlConv) forward(ConvGeom, Layout, Layout, []float32, []float32, []float32) (bool, error) {
	return false, nil
}
func (*dnnlConv) backwardData(ConvGeom, Layout, Layout, []float32, []float32, []float32) (bool, error) {
	return false, nil
}
func (*dnnlConv) backwardWeights(ConvGeom, Layout, Layout, []float32, []float32, []float32) (bool, error) {
	return false, nil
}

// dnnlOn: oneDNN is not built in.
const dnnlOn = false

// dnnlBN: without oneDNN no activation is blocked (CanBlock).
type dnnlBN struct{}

func (*dnnlBN) forward(int, int, int, bool, float64, []float32, []float32, []float32, []float32, []float32, []float32) (bool, error) {
	return false, nil
}
func (*dnnlBN) backward([]float32, []float32, []float32, []float32, []float32, []float32, []float32, []float32) (bool, error) {
	return false, nil
}
func (*dnnlConv) convBN(*convBNOp, []float32, []float32, []float32, []float32, []float32, []float32) (bool, error) {
	return false, nil
}

type dnnlPool struct{}

func (*dnnlPool) maxPool(*maxPoolOp, []float32, []float32) (bool, error) { return false, nil }

func bf16On() bool { return false }

// setBF16 (SetPrecision): without oneDNN only fp32.
func setBF16(on bool) error {
	if on {
		return fmt.Errorf("precision bf16 needs zoo built with oneDNN (make build, or go build -tags onednn after make deps)")
	}
	return nil
}

// Kernels names the library the convolutions run on.
func Kernels() string { return "im2col+" + BLAS() }
