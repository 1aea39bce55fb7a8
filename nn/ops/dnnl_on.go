//go:build onednn

package ops

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"

	"github.com/zoo-ml/zoo/nn/internal/dnnl"
)

// With the build tag onednn the float32 convolutions run on oneDNN
// (nn/internal/dnnl); float64 ones, and any shape oneDNN declines, on
// the kernels of kernels.go. ZOO_ONEDNN=off at start-up turns oneDNN off
// for a run (to compare the two in one build).
var dnnlOn = os.Getenv("ZOO_ONEDNN") != "off"

// bf16 is the precision of the convolutions, inference and training
// (SetPrecision).
var bf16 atomic.Bool

// dnnlConv is an op's oneDNN primitive, made on its first run and kept
// while the spec (shape, kind, post-ops, precision) stays the same.
type dnnlConv struct {
	spec dnnl.ConvSpec
	p    *dnnl.Prim
	err  error // the spec oneDNN declined: the op uses its own kernel
	// Inference chains (chainFrom): from is the conv whose output is this
	// one's input; keep says a consumer may read this one's blocked
	// output; out is that output's handoff and outData where its NCHW
	// copy went.
	from    *dnnlConv
	keep    bool
	out     dnnl.Handoff
	outData *float32
	// sumFrom is the conv whose output is this one's sum post-op summand
	// (chainSum).
	sumFrom *dnnlConv
	// skipOut: the only readers of this conv's output are convs that
	// read it from the ring, chained or as their summand (PlanReaders):
	// the NCHW copy is not written; shiftRead: one of them shifts it
	// (then only when it is fp32 nChw16c). skipped says the last run
	// skipped it.
	skipOut, shiftRead, sumRead, skipped bool
	lease                                uint64 // the RingLease the op runs under
}

// chainFrom says that c's input is the output of p (both inference
// ConvBN ops): p keeps its blocked output after each run and c reads it
// without a reorder when it is still there (dnnl.Prim.ConvChain checks).
func (c *dnnlConv) chainFrom(p *dnnlConv) {
	c.from = p
	p.keep = true
}

// chainSum says that c's sum post-op summand is the output of p (both
// inference ConvBN ops): p keeps its blocked output and c adds its output
// to it in place when it is still there.
func (c *dnnlConv) chainSum(p *dnnlConv) {
	c.sumFrom = p
	p.keep = true
}

// setSkipOut says whether only c's chained consumers read its output,
// and whether one of them shifts it or adds it.
func (c *dnnlConv) setSkipOut(on, shift, sum bool, l *RingLease) {
	c.skipOut, c.shiftRead, c.sumRead = on, on && shift, on && sum
	c.lease = 0
	if l != nil {
		c.lease = l.tok
	}
}

// RingLease makes a graph's runs exclusive users of oneDNN's kept
// outputs (PlanReaders): its ops skip NCHW copies that only the kept
// outputs replace, which another graph's convs, run concurrently, must
// not overwrite. Concurrent graphs' convs run without kept outputs while
// it is held; two graphs with leases run one at a time.
type RingLease struct{ tok uint64 }

func newRingLease() *RingLease { return &RingLease{dnnl.NewLease()} }

// Acquire holds the lease for a run of the graph.
func (l *RingLease) Acquire() { dnnl.Acquire(l.tok) }

// Release gives it back after the run.
func (l *RingLease) Release() { dnnl.Release() }

// sumsFrom reports whether c adds p's kept output.
func (c *dnnlConv) sumsFrom(p *dnnlConv) bool { return c.sumFrom == p }

// isChainedFrom reports whether c reads p's kept output.
func (c *dnnlConv) isChainedFrom(p *dnnlConv) bool { return c.from == p }

// keeps says whether a conv output of n float32 elements and k channels
// goes into a ring slot (its blocked copy kept for the next conv). Only
// outputs whose channels fill oneDNN's 16-channel blocks are kept: a
// ResNet-18 of base width 4 (4 and 8 channels) read its kept outputs
// wrongly (probabilities 0.04 off; TestRingNarrowChannels). Outputs larger
// than RingSlotMaxBytes take the NCHW path (written, then reordered by
// their readers): the four slots each grow to the largest output they
// keep, so the bound caps the ring at 4 x RingSlotMaxBytes. Without it
// TSM-R50's forward at batch 8 kept four 205 MB stage-1 outputs and
// peaked above PyTorch's RSS (docs/performance.md, Memory).
func (c *dnnlConv) keeps(n, k int) bool { return c.keep && k%16 == 0 && 4*int64(n) <= RingSlotMaxBytes }

// conv runs s through oneDNN and reports whether it did; false means
// the caller runs its own kernel.
func (c *dnnlConv) conv(s dnnl.ConvSpec, a, b, out, scale, shift, sum []float32, sh *shiftGeom) (bool, error) {
	if !dnnlOn {
		return false, nil
	}
	if c.p == nil || c.spec != s {
		if c.err != nil && c.spec == s {
			return false, nil
		}
		c.spec, c.p, c.err = s, nil, nil
		if c.p, c.err = dnnl.NewConv(s); c.err != nil {
			if s.BF16 {
				return false, c.err
			}
			return false, nil
		}
	}
	var ch dnnl.Chain
	if f := c.from; f != nil && f.outData != nil && len(a) > 0 && f.outData == &a[0] {
		ch.From, ch.MustFrom = f.out, f.skipped
	}
	if f := c.sumFrom; f != nil && f.outData != nil && len(sum) > 0 && f.outData == &sum[0] {
		ch.Sum, ch.MustSum = f.out, f.skipped
	}
	if sh != nil {
		ch.Shift.T, ch.Shift.C1, ch.Shift.C2 = sh.t, sh.c1, sh.c2
	}
	keep := c.keeps(len(out), s.K)
	ch.Keep = keep
	ch.Lease = c.lease
	ch.SkipOut = keep && c.skipOut && s.Kind == dnnl.ForwardInfer
	ch.SkipOnlyShiftable = c.shiftRead
	h, err := c.p.ConvChain(a, b, out, scale, shift, sum, ch)
	c.out, c.outData, c.skipped = h, nil, false
	if err == nil && keep && len(out) > 0 {
		c.outData = &out[0]
		c.skipped = h.Skipped()
	}
	return true, err
}

func convSpec(kind dnnl.Kind, g ConvGeom) dnnl.ConvSpec {
	return dnnl.ConvSpec{Kind: kind, N: g.N, C: g.C, H: g.H, W: g.W, K: g.K, R: g.R, S: g.S, Stride: g.Stride, Pad: g.Pad}
}

// trainSpec is a training convolution's spec: its input and output (and
// their gradients) lie in layouts lx and ly; in bf16 (SetPrecision) its
// inputs (x, w, dy) are rounded to bfloat16 inside oneDNN, which
// accumulates in fp32 and writes y, dx and dw in fp32; the weights the
// optimizer updates stay fp32.
func trainSpec(kind dnnl.Kind, g ConvGeom, lx, ly Layout) dnnl.ConvSpec {
	s := convSpec(kind, g)
	s.XBlocked, s.YBlocked = lx == Blocked16, ly == Blocked16
	s.BF16 = bf16.Load()
	return s
}

// The op-side entry points: each returns false when the caller should
// run its own kernel.

func (c *dnnlConv) forward(g ConvGeom, lx, ly Layout, x, w, y []float32) (bool, error) {
	return c.conv(trainSpec(dnnl.Forward, g, lx, ly), x, w, y, nil, nil, nil, nil)
}

func (c *dnnlConv) backwardData(g ConvGeom, lx, ly Layout, w, dy, dx []float32) (bool, error) {
	return c.conv(trainSpec(dnnl.BackwardData, g, lx, ly), w, dy, dx, nil, nil, nil, nil)
}

func (c *dnnlConv) backwardWeights(g ConvGeom, lx, ly Layout, x, dy, dw []float32) (bool, error) {
	return c.conv(trainSpec(dnnl.BackwardWeights, g, lx, ly), x, dy, dw, nil, nil, nil, nil)
}

// dnnlBN is a training batch norm op's oneDNN primitive (blocked
// activations only: on NCHW, zoo's kernels are as fast as oneDNN's
// ncsp_bnorm), made on its first run; used says the last forward ran on
// it, so the backward must too (it reads the forward's ReLU mask).
type dnnlBN struct {
	key  [5]int
	p    *dnnl.BN // nil: oneDNN declined the shape
	used bool
}

func (d *dnnlBN) prim(n, c, hw int, relu bool, eps float64) *dnnl.BN {
	key := [5]int{n, c, hw, b2i(relu), int(eps * 1e12)}
	if d.key != key {
		d.key = key
		d.p, _ = dnnl.NewBN(n, c, hw, 1, true, relu, eps)
	}
	return d.p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// forward normalises the nChw16c x into y with the batch's statistics;
// false when oneDNN declined (the caller runs its own kernel).
func (d *dnnlBN) forward(n, c, hw int, relu bool, eps float64, x, y, scale, shift, mean, variance []float32) (bool, error) {
	d.used = false
	if !dnnlOn {
		return false, nil
	}
	p := d.prim(n, c, hw, relu, eps)
	if p == nil {
		return false, nil
	}
	if err := p.Forward(x, y, scale, shift, mean, variance); err != nil {
		return true, err
	}
	d.used = true
	return true, nil
}

// backward is forward's gradient; false when the forward did not run on
// oneDNN.
func (d *dnnlBN) backward(x, dy, scale, mean, variance, dx, dscale, dshift []float32) (bool, error) {
	if !d.used {
		return false, nil
	}
	// The shift does not enter the gradient; oneDNN 2.6 wants one.
	return true, d.p.Backward(x, dy, scale, scale, mean, variance, dx, dscale, dshift)
}

// shiftBuf is the shifted input of ShiftConvBNEval's oneDNN path, one
// buffer for all ops (they run one at a time under its lock).
var shiftBuf struct {
	sync.Mutex
	b []float32
}

// convBN is the inference conv + batch norm (a, b: the per-channel scale
// and shift) + optional residual sum + ReLU as one oneDNN primitive. A
// shift (ShiftConvBNEval, NCHW only) is applied to a copy of x first.
func (c *dnnlConv) convBN(op *convBNOp, x, w, y, a, b, short []float32) (bool, error) {
	if !dnnlOn {
		return false, nil
	}
	s := convSpec(dnnl.ForwardInfer, op.g)
	s.Post = dnnl.ScaleShift
	if short != nil {
		s.Post |= dnnl.Sum
	}
	if op.relu {
		s.Post |= dnnl.ReLU
	}
	// Blocked x or y (and the summand, in y's layout): oneDNN reads and
	// writes them without a reorder when the primitive uses nChw16c (in
	// bf16 the input's reorder converts it); such an op keeps nothing
	// in the ring.
	s.XBlocked, s.YBlocked = op.lay.x == Blocked16, op.lay.y == Blocked16
	s.BF16 = bf16.Load()
	// An output only the next bf16 conv reads (chained, no NCHW copy) is
	// written in bf16: that conv would round it to bf16 itself.
	s.OutBF16 = s.BF16 && c.keeps(len(y), s.K) && c.skipOut && !c.shiftRead && !c.sumRead && short == nil
	if sh := op.shift; sh != nil {
		// From the producer's kept blocked output, shifted in that
		// layout, when the shifted channel ranges are whole blocks.
		if f := c.from; f != nil && f.outData != nil && len(x) > 0 && f.outData == &x[0] && sh.c1%16 == 0 && sh.c2%16 == 0 {
			skipped := f.skipped
			done, err := c.conv(s, x, w, y, a, b, short, sh)
			if !errors.Is(err, dnnl.ErrNotShifted) || skipped {
				return done, err // a skipped NCHW copy cannot be shifted instead
			}
		}
		shiftBuf.Lock()
		defer shiftBuf.Unlock()
		if cap(shiftBuf.b) < len(x) {
			shiftBuf.b = make([]float32, len(x))
		}
		xs := shiftBuf.b[:len(x)]
		g := op.g
		Shift(g.N, sh.t, g.C, g.H*g.W, sh.c1, sh.c2, false, x, xs)
		x = xs
	}
	return c.conv(s, x, w, y, a, b, short, nil)
}

// dnnlPool is a max pooling op's oneDNN primitive (inference only: it
// writes no argmax), made on its first run.
type dnnlPool struct {
	key [6]int
	p   *dnnl.Prim
	err error
}

func (d *dnnlPool) maxPool(op *maxPoolOp, x, y []float32) (bool, error) {
	if !dnnlOn {
		return false, nil
	}
	key := [6]int{op.nc, op.h, op.w, op.k, op.stride, op.pad}
	if d.key != key || (d.p == nil && d.err == nil) {
		d.key, d.p, d.err = key, nil, nil
		// One image of nc channels: NCHW is contiguous either way.
		d.p, d.err = dnnl.NewMaxPool(1, op.nc, op.h, op.w, op.k, op.stride, op.pad)
	}
	if d.err != nil {
		return false, nil
	}
	return true, d.p.MaxPool(x, y)
}

func bf16On() bool { return bf16.Load() }

// setBF16 (SetPrecision) turns bf16 on when oneDNN and the CPU have it.
func setBF16(on bool) error {
	if on && !dnnlOn {
		return fmt.Errorf("precision bf16 needs oneDNN, which ZOO_ONEDNN=off turned off")
	}
	if on && !dnnl.HasBF16() {
		return fmt.Errorf("precision bf16 needs a CPU with AVX512_BF16; oneDNN's ISA here is %s: use precision fp32", dnnl.ISA())
	}
	bf16.Store(on)
	return nil
}

// Kernels names the library the convolutions run on and the ISA it uses.
func Kernels() string {
	if !dnnlOn {
		return "im2col+" + BLAS() + " (oneDNN off: ZOO_ONEDNN=off)"
	}
	return fmt.Sprintf("oneDNN %s (%s, %d threads)", dnnl.Version(), dnnl.ISA(), dnnl.Threads())
}
