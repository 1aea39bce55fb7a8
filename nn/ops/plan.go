package ops

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// PlannedOutput is implemented by every op of this package. An executor
// that plans memory (nn/exec) hands each op, before a run, the buffer its
// output goes to; the op's Do then writes there instead of into a buffer
// of its own (base.output). SetOutput(nil) gives the op back its own.
type PlannedOutput interface {
	SetOutput(d *tensor.Dense)
}

// InPlace is implemented by ops whose output may take the planned
// buffer of one of their inputs when the op is that input's last reader
// (an executor that plans memory, nn/exec, decides): InPlace returns the
// input's position, or -1 for none. A blocked conv+BN+add+ReLU
// (ConvBNAddReLUEval on nChw16c) adds into its shortcut's buffer, which
// saves a copy of the summand and a live block output.
type InPlace interface {
	InPlace() int
}

// InPlace: the shortcut, for a blocked residual op (on oneDNN the sum
// post-op reads the summand where it writes; zoo's kernels work on NCHW
// copies).
func (op *convBNOp) InPlace() int {
	if op.residual && op.lay.y == Blocked16 {
		return 4
	}
	return -1
}

// SetOutput sets the buffer the op's next runs write their output into.
func (b *base) SetOutput(d *tensor.Dense) {
	b.planned = d
	b.buf = nil
}

// Scratch is an im2col scratch buffer shared by the convolutions of
// graphs whose ops never run at the same time (one graph runs one op at a
// time; nn/exec gives all graphs of a model one Scratch). It grows to the
// largest size an op asks for.
type Scratch struct{ col colBuf }

// Bytes is the scratch's current size.
func (s *Scratch) Bytes() int64 {
	switch c := s.col.v.(type) {
	case []float32:
		return 4 * int64(cap(c))
	case []float64:
		return 8 * int64(cap(c))
	}
	return 0
}

// Release drops the buffer; the next op that needs one allocates it.
func (s *Scratch) Release() { s.col.v = nil }

// scratchUser is an op with an im2col scratch buffer.
type scratchUser interface{ colBuf() *colBuf }

func (op *convOp) colBuf() *colBuf           { return &op.col }
func (op *convDataGradOp) colBuf() *colBuf   { return &op.col }
func (op *convFilterGradOp) colBuf() *colBuf { return &op.col }
func (op *convBNOp) colBuf() *colBuf         { return &op.col }

// ShareScratch makes op, when it uses scratch, take it from s (nil: its
// own again).
func ShareScratch(op G.Op, s *Scratch) {
	u, ok := op.(scratchUser)
	if !ok {
		return
	}
	c := u.colBuf()
	c.v = nil
	c.shared = nil
	if s != nil {
		c.shared = &s.col
	}
}

// RingSlotMaxBytes bounds the conv outputs oneDNN keeps in its blocked
// layout for the next conv (the ring of four slots, nn/internal/dnnl):
// larger ones are written as NCHW and reordered by their readers. 64 MiB
// keeps every TSM-R50 output at batch 1 (the largest, 8 frames x 256 x
// 56 x 56, is 26 MB) and caps the ring at 256 MiB at batch 8. A variable
// for tests; without oneDNN it has no effect.
var RingSlotMaxBytes int64 = 64 << 20

// PlanReaders tells the ops of a graph that an executor runs (nn/exec)
// who reads their outputs: nodes in run order, args each node's inputs as
// positions in nodes (nil: forget what an earlier call said, as when the
// executor closes). An inference ConvBN op whose every reader is a
// ConvBN op that reads its kept blocked output (chainFrom: as its input,
// shifted or not; chainSum: as its residual summand, which uses the kept
// output up, so that reader must be the last) then writes no NCHW copy of
// its output: nothing else could read it. Graphs run without PlanReaders
// (gorgonia's TapeMachine, whose nodes keep their values) always get the
// NCHW copies. Ops with a blocked input or output (ConvBNEvalTo) take no
// part: they keep nothing. A max pool op without a gradient op reading its argmax
// runs on oneDNN (where built with it). It returns the RingLease the
// graph's runs must hold when some copy is skipped, else nil.
func PlanReaders(nodes []*G.Node, args [][]int) *RingLease {
	var l *RingLease
	type ref struct{ j, pos int }
	readers := make([][]ref, len(nodes))
	for j, as := range args {
		for pos, c := range as {
			readers[c] = append(readers[c], ref{j, pos})
		}
	}
	// A max pool whose argmax no gradient op reads may run on oneDNN.
	grads := map[*maxPoolOp]bool{}
	for _, nd := range nodes {
		if g, ok := nd.Op().(*maxPoolGradOp); ok {
			grads[g.mp] = true
		}
	}
	for _, nd := range nodes {
		if mp, ok := nd.Op().(*maxPoolOp); ok {
			mp.noGrad = args != nil && !grads[mp]
		}
	}
	for i, nd := range nodes {
		p, ok := nd.Op().(*convBNOp)
		if !ok {
			continue
		}
		if !p.ringable() {
			p.dn.setSkipOut(false, false, false, nil) // blocked: no ring
			continue
		}
		rs := readers[i]
		// An output too large for a ring slot is always written (keeps).
		on := args != nil && len(rs) > 0 && p.g.K%16 == 0 && 4*int64(nd.Shape().TotalSize()) <= RingSlotMaxBytes
		shift, sum := false, false
		for k, rf := range rs {
			r, ok := nodes[rf.j].Op().(*convBNOp)
			switch {
			case !ok || (k > 0 && rs[k-1].j == rf.j):
				on = false // not a conv, or one reading it twice
			case rf.pos == 0 && r.dn.isChainedFrom(&p.dn):
				if sh := r.shift; sh != nil {
					shift = true
					if sh.c1%16 != 0 || sh.c2%16 != 0 {
						on = false // shifted in NCHW
					}
				}
			case rf.pos == 4 && r.residual && r.dn.sumsFrom(&p.dn) && k == len(rs)-1:
				sum = true
			default:
				on = false
			}
		}
		if on && l == nil {
			l = newRingLease()
		}
		p.dn.setSkipOut(on, shift, sum, l)
	}
	return l
}
