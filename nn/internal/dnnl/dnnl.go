//go:build onednn

package dnnl

/*
#cgo CFLAGS: -fopenmp
#cgo LDFLAGS: -ldnnl -lgomp
#include <stdlib.h>
#include "zdnnl.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Available reports whether zoo was built with oneDNN.
const Available = true

// Kind is what a convolution primitive computes.
type Kind int

const (
	Forward         Kind = C.ZK_FWD         // forward, training (hint for the backward ones)
	ForwardInfer    Kind = C.ZK_FWD_INFER   // forward, inference only
	BackwardData    Kind = C.ZK_BWD_DATA    // dx from w and dy
	BackwardWeights Kind = C.ZK_BWD_WEIGHTS // dw from x and dy
)

// Post is a set of forward post-ops, applied in this order.
type Post int

const (
	ScaleShift Post = C.ZP_SCALESHIFT // y = y*scale[k] + shift[k] (the scale folded into the filter, the shift as the bias)
	Sum        Post = C.ZP_SUM        // y += sum
	ReLU       Post = C.ZP_RELU       // y = max(y, 0)
)

// ConvSpec is a convolution on NCHW x [N,C,H,W] with an OIHW filter
// [K,C,R,S], square stride, symmetric zero padding.
type ConvSpec struct {
	Kind                Kind
	N, C, H, W, K, R, S int
	Stride, Pad         int
	Post                Post
	BF16                bool // source (or diff_dst) and weights in bfloat16 inside, f32 accumulation and output
	// OutBF16 (with BF16, forward, no Sum) writes the output in
	// bfloat16: for a convolution whose output only a chained bf16
	// convolution reads, which would round it to bfloat16 itself
	// (Chain.SkipOut; the NCHW output is then float32 rounded to bf16).
	OutBF16 bool
	// XBlocked (YBlocked): the source or its gradient (the destination
	// or its gradient) is held by Go in oneDNN's nChw16c, not NCHW (C, K
	// multiples of 16): no reorder where the primitive uses nChw16c.
	XBlocked, YBlocked bool
}

// Prim is a oneDNN primitive with its memory descriptors and reorders,
// made once and run many times. It is freed when garbage-collected.
type Prim struct {
	p    *C.zprim
	impl string
}

type call struct {
	f    func()
	done chan struct{}
}

var calls = make(chan call)

func init() {
	go func() {
		// One OS thread makes every oneDNN call, so OpenMP has one team.
		runtime.LockOSThread()
		for c := range calls {
			if n := runtime.GOMAXPROCS(0); int(C.zthreads(0)) != n {
				C.zthreads(C.int(n))
			}
			c.f()
			close(c.done)
		}
	}()
}

// do runs f on the oneDNN thread.
func do(f func()) {
	c := call{f, make(chan struct{})}
	calls <- c
	<-c.done
}

const errLen = 512

func cerr(buf []byte) error {
	n := 0
	for n < len(buf) && buf[n] != 0 {
		n++
	}
	return errors.New(string(buf[:n]))
}

// errBuf is the C buffer oneDNN calls write their errors into: one for
// all, as they all run on the oneDNN thread (do).
var errBuf = (*C.char)(C.malloc(errLen))

// doErr runs f on the oneDNN thread with errBuf; when f reports a
// failure, it returns the error f wrote there.
func doErr(f func(e *C.char) (ok bool)) error {
	var err error
	do(func() {
		*errBuf = 0
		if !f(errBuf) {
			err = cerr(C.GoBytes(unsafe.Pointer(errBuf), errLen))
		}
	})
	return err
}

func newPrim(mk func(err *C.char) *C.zprim) (*Prim, error) {
	var p *C.zprim
	if err := doErr(func(e *C.char) bool { p = mk(e); return p != nil }); err != nil {
		return nil, err
	}
	pr := &Prim{p: p, impl: C.GoString(C.zprim_impl(p))}
	runtime.AddCleanup(pr, func(p *C.zprim) { do(func() { C.zprim_destroy(p) }) }, p)
	return pr, nil
}

// NewConv makes the primitive for s.
func NewConv(s ConvSpec) (*Prim, error) {
	bf := 0
	if s.BF16 {
		if !HasBF16() {
			return nil, fmt.Errorf("oneDNN: bf16 needs a CPU with AVX512_BF16; oneDNN's ISA here is %s", ISA())
		}
		bf = 1
		if s.OutBF16 {
			if s.Kind > ForwardInfer || s.Post&Sum != 0 {
				return nil, fmt.Errorf("conv %+v: a bf16 output needs a forward convolution without a sum", s)
			}
			bf = 2
		}
	}
	// nChw16c activations first; where oneDNN has only its reference
	// implementation for them (e.g. 1x1 with a sum post-op), the layout
	// it picks itself; and no primitive rather than the reference one,
	// which is 100x slower than zoo's own kernels.
	var p *Prim
	for any := 0; any < 2; any++ {
		var err error
		p, err = newPrim(func(e *C.char) *C.zprim {
			return C.zconv_create(C.int(s.Kind), C.int(s.N), C.int(s.C), C.int(s.H), C.int(s.W), C.int(s.K), C.int(s.R), C.int(s.S),
				C.int(s.Stride), C.int(s.Pad), C.int(s.Post), C.int(bf), C.int(any), cbool(s.XBlocked), cbool(s.YBlocked), e, errLen)
		})
		if err != nil {
			return nil, fmt.Errorf("conv %+v: %w", s, err)
		}
		if !strings.HasPrefix(p.impl, "ref") {
			return p, nil
		}
	}
	return nil, fmt.Errorf("conv %+v: oneDNN has only its reference implementation (%s)", s, p.impl)
}

func cbool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// BN is a training batch normalisation primitive (forward with the
// batch's statistics, and its backward), made once per shape.
type BN struct {
	b    *C.zbn
	impl string
}

// NewBN makes the batch norm of an f32 tensor [n,c,h,w], nChw16c when
// blocked, else NCHW; relu fuses a ReLU after it (its mask is kept
// between Forward and Backward).
func NewBN(n, c, h, w int, blocked, relu bool, eps float64) (*BN, error) {
	var b *C.zbn
	if err := doErr(func(e *C.char) bool {
		b = C.zbn_create(C.int(n), C.int(c), C.int(h), C.int(w), cbool(blocked), cbool(relu), C.float(eps), e, errLen)
		return b != nil
	}); err != nil {
		return nil, fmt.Errorf("batch norm [%d %d %d %d]: %w", n, c, h, w, err)
	}
	bn := &BN{b: b, impl: C.GoString(C.zbn_impl(b))}
	runtime.AddCleanup(bn, func(b *C.zbn) { do(func() { C.zbn_destroy(b) }) }, b)
	if strings.HasPrefix(bn.impl, "ref") {
		// as NewConv: the reference kernel is far slower than zoo's
		return nil, fmt.Errorf("batch norm [%d %d %d %d]: oneDNN has only its reference implementation (%s)", n, c, h, w, bn.impl)
	}
	return bn, nil
}

// Impl is the name of the implementation oneDNN chose.
func (b *BN) Impl() string { return b.impl }

var bnRuns atomic.Uint64

// BNRuns is how many batch norms (forward or backward) have run on
// oneDNN (for tests).
func BNRuns() uint64 { return bnRuns.Load() }

// Forward normalises x into y with the batch's statistics, which it
// writes into mean and variance (biased, [c]).
func (b *BN) Forward(x, y, scale, shift, mean, variance []float32) error {
	bnRuns.Add(1)
	err := doErr(func(e *C.char) bool {
		return C.zbn_fwd(b.b, ptr(x), ptr(y), ptr(scale), ptr(shift), ptr(mean), ptr(variance), e, errLen) == 0
	})
	runtime.KeepAlive(b)
	return err
}

// Backward writes dx, dscale and dshift from x, dy and the last
// Forward's statistics (and ReLU mask).
func (b *BN) Backward(x, dy, scale, shift, mean, variance, dx, dscale, dshift []float32) error {
	bnRuns.Add(1)
	err := doErr(func(e *C.char) bool {
		return C.zbn_bwd(b.b, ptr(x), ptr(dy), ptr(scale), ptr(shift), ptr(mean), ptr(variance), ptr(dx), ptr(dscale), ptr(dshift), e, errLen) == 0
	})
	runtime.KeepAlive(b)
	return err
}

// NewMaxPool makes an inference max pooling primitive (k x k window).
func NewMaxPool(n, c, h, w, k, stride, pad int) (*Prim, error) {
	return newPrim(func(e *C.char) *C.zprim {
		return C.zpool_create(C.int(n), C.int(c), C.int(h), C.int(w), C.int(k), C.int(stride), C.int(pad), e, errLen)
	})
}

// Impl is the name of the implementation oneDNN chose (e.g.
// "jit:avx512_core").
func (p *Prim) Impl() string { return p.impl }

func ptr(s []float32) *C.float {
	if len(s) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&s[0]))
}

func (p *Prim) exec(f func(e *C.char) C.int) error {
	err := doErr(func(e *C.char) bool { return f(e) == 0 })
	runtime.KeepAlive(p)
	return err
}

// Conv runs a convolution primitive. a, b are its inputs (Forward: x, w;
// BackwardData: w, dy; BackwardWeights: x, dy), out its output; scale
// and shift are the ScaleShift post-op's [K] vectors and sum the Sum
// post-op's summand (shaped as out), nil when unused. The caller checks
// the lengths.
func (p *Prim) Conv(a, b, out, scale, shift, sum []float32) error {
	_, err := p.ConvChain(a, b, out, scale, shift, sum, Chain{})
	return err
}

// Handoff names a primitive's blocked output kept after its call (in one
// of a few buffers shared by all primitives), so that the next
// convolution, whose input is that output, can skip its reorder.
type Handoff struct {
	slot    int
	gen     uint64
	skipped bool
}

// Skipped reports whether the call left its NCHW output unwritten
// (Chain.SkipOut).
func (h Handoff) Skipped() bool { return h.skipped }

const nRing = 4 // zdnnl.c's NRING

// ring says what each ring slot holds; touched only on the oneDNN thread.
var ring struct {
	gen [nRing]uint64 // 0: nothing valid
	seq uint64
}

// handoffs counts the calls that read a kept output (for tests).
var handoffs atomic.Uint64

// Handoffs is how many convolutions have read their input from a kept
// blocked output instead of reordering it.
func Handoffs() uint64 { return handoffs.Load() }

// Chain says how a convolution takes part in an inference chain.
type Chain struct {
	// From is the handoff of the primitive whose output is the source:
	// that kept blocked output is read instead of reordering the source
	// when it is still there. MustFrom says the producer left the source
	// unwritten (SkipOut): the call fails rather than read it when the
	// kept output is gone.
	From     Handoff
	MustFrom bool
	// Keep keeps the blocked output for a consumer; SkipOut (with Keep)
	// leaves the NCHW output unwritten, for consumers that read only
	// the kept one; with SkipOnlyShiftable, only when the output is
	// fp32 nChw16c or NHWC (a Shift consumer can read it). The returned
	// Handoff's Skipped says whether it did.
	Keep, SkipOut, SkipOnlyShiftable bool
	// Sum is the handoff of the primitive whose output is the sum
	// post-op's summand: the output then goes into that kept buffer and
	// the summand is added in place (no preload), which uses it up (in
	// another layout it is reordered from there). MustSum: the
	// summand's NCHW copy was skipped, fail rather than read it.
	Sum     Handoff
	MustSum bool
	// Lease is the token of the lease the caller runs under (0: none).
	Lease uint64
	// Shift (T > 0) applies TSM's temporal shift to the source on its
	// way in (T frames per clip, channels [0,C1) from the previous frame,
	// [C1,C2) from the next; multiples of 16), reading From's kept
	// output (a is not read). When that is not there or not fp32
	// nChw16c or NHWC, nothing runs and ConvChain returns ErrNotShifted: the caller
	// shifts a itself and calls again without Shift.
	Shift struct{ T, C1, C2 int }
}

// Lease: while a lease is held (Acquire), only calls whose Chain.Lease
// is its token use the ring; the others run as plain calls (no kept
// output read, kept or added), so that graphs run concurrently cannot
// overwrite a kept output whose NCHW copy the lessee skipped.
var lease struct {
	mu    sync.Mutex
	owner atomic.Uint64
	next  atomic.Uint64
}

// NewLease returns a fresh lease token.
func NewLease() uint64 { return lease.next.Add(1) }

// Acquire waits until no other lease is held and holds tok's.
func Acquire(tok uint64) {
	lease.mu.Lock()
	lease.owner.Store(tok)
}

// Release gives the held lease back.
func Release() {
	lease.owner.Store(0)
	lease.mu.Unlock()
}

// ErrNotShifted: see Chain.Shift.
var ErrNotShifted = errors.New("oneDNN: the shifted source is not kept in the ring")

// ErrLost is returned when a convolution must read a kept output whose
// NCHW copy was skipped and the kept output has been overwritten.
var ErrLost = errors.New("oneDNN: the kept blocked output this convolution reads was overwritten before it ran (its NCHW copy was skipped)")

// ConvChain is Conv in an inference chain (Chain). a must hold the
// output that ch.From was returned with (unless that output skipped its
// NCHW copy), sum the one ch.Sum was returned with.
func (p *Prim) ConvChain(a, b, out, scale, shift, sum []float32, ch Chain) (Handoff, error) {
	var h Handoff
	var used, sumUsed, skipped C.int
	lost, notShifted := false, false
	err := p.exec(func(e *C.char) C.int {
		if o := lease.owner.Load(); o != 0 && o != ch.Lease {
			ch = Chain{} // another graph holds the ring
		}
		fromSlot, keepSlot, sumSlot := C.int(-1), C.int(-1), C.int(-1)
		if ch.From.gen != 0 && ring.gen[ch.From.slot] == ch.From.gen {
			fromSlot = C.int(ch.From.slot)
		} else if ch.MustFrom {
			lost = true
			return 0
		}
		if ch.Sum.gen != 0 && ring.gen[ch.Sum.slot] == ch.Sum.gen && C.int(ch.Sum.slot) != fromSlot {
			sumSlot = C.int(ch.Sum.slot)
		} else if ch.MustSum {
			lost = true
			return 0
		}
		if ch.Keep || sumSlot >= 0 {
			// In place over the summand, else the least recently
			// written slot other than the source's.
			slot := int(sumSlot)
			if slot < 0 {
				for i := range nRing {
					if i != int(fromSlot) && (slot < 0 || ring.gen[i] < ring.gen[slot]) {
						slot = i
					}
				}
			}
			ring.seq++
			h = Handoff{slot: slot, gen: ring.seq}
			keepSlot = C.int(slot)
		}
		if ch.Shift.T > 0 && fromSlot < 0 {
			notShifted = true
			return 0
		}
		skip := C.int(0)
		if ch.SkipOut && ch.Keep {
			skip = 1
			if ch.SkipOnlyShiftable {
				skip = 2
			}
		}
		rc := C.zconv_exec(p.p, ptr(a), ptr(b), ptr(out), ptr(scale), ptr(shift), ptr(sum), fromSlot, keepSlot, sumSlot, skip,
			C.int(ch.Shift.T), C.int(ch.Shift.C1), C.int(ch.Shift.C2), &used, &sumUsed, &skipped, e, errLen)
		if rc == 1 {
			notShifted = true
			return 0
		}
		if keepSlot >= 0 {
			ring.gen[h.slot] = 0
			if rc == 0 {
				ring.gen[h.slot] = h.gen
			}
		}
		return rc
	})
	if err != nil {
		return Handoff{}, err
	}
	if lost {
		return Handoff{}, ErrLost
	}
	if notShifted {
		return Handoff{}, ErrNotShifted
	}
	if used != 0 {
		handoffs.Add(1)
	}
	if !ch.Keep {
		h = Handoff{}
	}
	h.skipped = skipped != 0
	return h, nil
}

// Reorders counts the reorders run so far, by what they moved.
type Reorders struct {
	In      uint64 // activations (or gradients) into the primitive's layout
	Out     uint64 // outputs back to NCHW
	Weights uint64 // filters into the primitive's layout, weight gradients out
	Sum     uint64 // sum post-op summands into the output's layout
	Ring    uint64 // kept outputs into a consumer's other layout or type (bf16)
}

// Sub is r - o, kind by kind.
func (r Reorders) Sub(o Reorders) Reorders {
	return Reorders{r.In - o.In, r.Out - o.Out, r.Weights - o.Weights, r.Sum - o.Sum, r.Ring - o.Ring}
}

// ReorderCounts is how many reorders oneDNN calls have run in this
// process (tests use it to pin the reorders of a forward pass).
func ReorderCounts() Reorders {
	var c [C.ZR_N]C.ulong
	do(func() { C.zcounts(&c[0]) })
	return Reorders{uint64(c[C.ZR_IN]), uint64(c[C.ZR_OUT]), uint64(c[C.ZR_WEIGHTS]), uint64(c[C.ZR_SUM]), uint64(c[C.ZR_RING])}
}

var pools atomic.Uint64

// Pools is how many max poolings have run on oneDNN (for tests).
func Pools() uint64 { return pools.Load() }

// MaxPool runs a max pooling primitive.
func (p *Prim) MaxPool(x, y []float32) error {
	pools.Add(1)
	return p.exec(func(e *C.char) C.int { return C.zpool_exec(p.p, ptr(x), ptr(y), e, errLen) })
}

// ISA is the instruction set oneDNN dispatches to on this CPU.
func ISA() string {
	var s string
	do(func() { s = C.GoString(C.zisa()) })
	return s
}

// HasBF16 reports whether oneDNN runs bfloat16 natively here
// (avx512_core_bf16 or above).
func HasBF16() bool {
	var b bool
	do(func() { b = C.zhas_bf16() != 0 })
	return b
}

// Version is oneDNN's version.
func Version() string {
	var s string
	do(func() { s = C.GoString(C.zversion()) })
	return s
}

// Threads is the size of the OpenMP team oneDNN runs on.
func Threads() int {
	var n int
	do(func() { n = int(C.zthreads(0)) })
	return n
}
