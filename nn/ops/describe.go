package ops

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Kind names one of zoo's ops for an executor other than gorgonia's tape
// machine (nn/cuda runs the same graph on the GPU).
type Kind string

// The op kinds Describe reports. A gradient op's Parent is the forward op
// whose state (batch statistics, argmax, dropout mask, probabilities) it
// reads; an executor keeps that state per Parent.
const (
	KindConv           Kind = "Conv"           // (x, w) -> y; Conv
	KindConvDataGrad   Kind = "ConvDataGrad"   // (w, dy) -> dx; Conv
	KindConvFilterGrad Kind = "ConvFilterGrad" // (x, dy) -> dw; Conv
	// KindConvBN is inference's conv + BN (+ ReLU): (x, w, scale, offset)
	// -> y, with a fifth input, the shortcut, added before the ReLU when
	// Residual is set, and the input temporally shifted first when Shift
	// is set.
	KindConvBN         Kind = "ConvBN"
	KindBatchNorm      Kind = "BatchNorm"      // (x, scale, offset) -> y; N, C, HW, Train, ReLU, BN
	KindBatchNormGrad  Kind = "BatchNormGrad"  // (x, scale, y, dy) -> dx; Parent the BatchNorm
	KindBatchNormParam Kind = "BatchNormParam" // (dx) -> dscale (Which 0) or doffset (1); Parent the BatchNormGrad
	KindMaxPool        Kind = "MaxPool"        // (x) -> y; Pool
	KindMaxPoolGrad    Kind = "MaxPoolGrad"    // (dy) -> dx; Pool, Parent the MaxPool
	KindGlobalAvgPool  Kind = "GlobalAvgPool"  // (x) -> y, Back: (dy) -> dx; N (= N*C), HW
	KindTemporalShift  Kind = "TemporalShift"  // (x) -> y; N, C, HW, Shift, Back
	KindAddReLU        Kind = "AddReLU"        // (a, b) -> max(a+b, 0)
	KindReLUGrad       Kind = "ReLUGrad"       // (y, dy) -> dy where y > 0
	KindDropout        Kind = "Dropout"        // (x) -> y; P, Train, RNG
	KindDropoutGrad    Kind = "DropoutGrad"    // (dy) -> dx; Parent the Dropout
	KindSegmentMean    Kind = "SegmentMean"    // (x) -> y, Back: (dy) -> dx; N clips, T, C
	KindLinear         Kind = "Linear"         // (x, w, b) -> y; N, C, K
	KindLinearGrad     Kind = "LinearGrad"     // Which 0: (w, dy) -> dx, 1: (x, dy) -> dw, 2: (dy) -> db; N, C, K
	KindSoftmaxCE      Kind = "SoftmaxCE"      // (logits) -> loss; N, K
	KindSoftmaxCEGrad  Kind = "SoftmaxCEGrad"  // (logits, dloss) -> dlogits; Parent the SoftmaxCE
	KindKeep           Kind = "Keep"           // (x): x's value belongs in Dst after the run
)

// ShiftDesc is a temporal shift: T frames per clip, channels [0,C1) from
// the previous frame, [C1,C2) from the next (ops.TemporalShift).
type ShiftDesc struct{ T, C1, C2 int }

// PoolDesc is a max pool over NC planes of H x W.
type PoolDesc struct{ NC, H, W, K, Stride, Pad int }

// Desc describes one of zoo's ops: its kind and the geometry and
// attributes its kernel needs. Fields a kind does not use are zero.
type Desc struct {
	Kind     Kind
	Out      tensor.Shape // the output's shape
	Conv     ConvGeom
	BN       *BNState // running statistics and constants (BatchNorm, ConvBN)
	Train    bool
	ReLU     bool
	Residual bool
	Back     bool
	Shift    *ShiftDesc
	Pool     PoolDesc
	N, C, K  int
	T, HW    int
	Which    int
	P        float64       // dropout probability
	RNG      Uniform       // dropout's mask source (Train)
	Dst      *tensor.Dense // Keep's destination
	Parent   G.Op
	// Blocked: a 4-D tensor the op reads or writes is in oneDNN's
	// nChw16c (Layout Blocked16), not NCHW (CPU graphs only: oneDNN's
	// kernels, or zoo's on NCHW copies).
	Blocked bool
}

// Describe returns op's description, or false when op is not one of zoo's.
func Describe(op G.Op) (Desc, bool) {
	d, ok := describe(op)
	d.Blocked = blocked(op)
	return d, ok
}

func blocked(op G.Op) bool {
	switch o := op.(type) {
	case *convOp:
		return o.lay != convLayouts{}
	case *convDataGradOp:
		return o.lay != convLayouts{}
	case *convFilterGradOp:
		return o.lay != convLayouts{}
	case *gapOp:
		return o.lay != NCHW
	case *convBNOp:
		return !o.ringable()
	case layouter:
		return o.layout() != NCHW
	}
	return false
}

func describe(op G.Op) (Desc, bool) {
	switch o := op.(type) {
	case *convOp:
		return Desc{Kind: KindConv, Out: o.out, Conv: o.g}, true
	case *convDataGradOp:
		return Desc{Kind: KindConvDataGrad, Out: o.out, Conv: o.g}, true
	case *convFilterGradOp:
		return Desc{Kind: KindConvFilterGrad, Out: o.out, Conv: o.g}, true
	case *convBNOp:
		d := Desc{Kind: KindConvBN, Out: o.out, Conv: o.g, BN: o.st, ReLU: o.relu, Residual: o.residual}
		if o.shift != nil {
			d.Shift = &ShiftDesc{T: o.shift.t, C1: o.shift.c1, C2: o.shift.c2}
		}
		return d, true
	case *bnOp:
		return Desc{Kind: KindBatchNorm, Out: o.out, BN: o.st, Train: o.train, ReLU: o.relu, N: o.n, C: o.c, HW: o.hw}, true
	case *bnGradXOp:
		b := o.bn
		return Desc{Kind: KindBatchNormGrad, Out: o.out, BN: b.st, Train: b.train, ReLU: b.relu, N: b.n, C: b.c, HW: b.hw, Parent: b}, true
	case *bnGradParamOp:
		return Desc{Kind: KindBatchNormParam, Out: o.out, Which: o.which, Parent: o.gx}, true
	case *maxPoolOp:
		return Desc{Kind: KindMaxPool, Out: o.out, Pool: PoolDesc{o.nc, o.h, o.w, o.k, o.stride, o.pad}}, true
	case *maxPoolGradOp:
		m := o.mp
		return Desc{Kind: KindMaxPoolGrad, Out: o.out, Pool: PoolDesc{m.nc, m.h, m.w, m.k, m.stride, m.pad}, Parent: m}, true
	case *gapOp:
		full := o.in
		if o.back {
			full = o.out
		}
		return Desc{Kind: KindGlobalAvgPool, Out: o.out, Back: o.back, N: full[0] * full[1], HW: full[2] * full[3]}, true
	case *shiftOp:
		s := o.out
		return Desc{Kind: KindTemporalShift, Out: s, Back: o.back, N: s[0], C: s[1], HW: s[2] * s[3], Shift: &ShiftDesc{T: o.t, C1: o.c1, C2: o.c2}}, true
	case *addReLUOp:
		return Desc{Kind: KindAddReLU, Out: o.out}, true
	case *reluGradOp:
		return Desc{Kind: KindReLUGrad, Out: o.out}, true
	case *dropoutOp:
		return Desc{Kind: KindDropout, Out: o.out, P: o.p, Train: o.train, RNG: o.rng}, true
	case *dropoutGradOp:
		return Desc{Kind: KindDropoutGrad, Out: o.out, P: o.d.p, Train: o.d.train, Parent: o.d}, true
	case *segMeanOp:
		n := o.out[0]
		if o.back {
			n /= o.t
		}
		return Desc{Kind: KindSegmentMean, Out: o.out, Back: o.back, N: n, T: o.t, C: o.out[1]}, true
	case *linearOp:
		return Desc{Kind: KindLinear, Out: o.out, N: o.n, C: o.c, K: o.k}, true
	case *linearGradOp:
		return Desc{Kind: KindLinearGrad, Out: o.out, Which: o.which, N: o.l.n, C: o.l.c, K: o.l.k}, true
	case *SoftmaxCE:
		return Desc{Kind: KindSoftmaxCE, Out: tensor.ScalarShape(), N: o.n, K: o.k}, true
	case *sceGradOp:
		return Desc{Kind: KindSoftmaxCEGrad, Out: o.out, N: o.s.n, K: o.s.k, Parent: o.s}, true
	case *keepOp:
		return Desc{Kind: KindKeep, Out: tensor.ScalarShape(), Dst: o.dst}, true
	}
	return Desc{}, false
}
