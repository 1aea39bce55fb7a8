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

// ShareScratch makes op take its scratch from s (nil: its own again) and
// reports whether op uses scratch at all.
func ShareScratch(op G.Op, s *Scratch) bool {
	u, ok := op.(scratchUser)
	if !ok {
		return false
	}
	c := u.colBuf()
	c.v = nil
	if s == nil {
		c.shared = nil
		return true
	}
	c.shared = &s.col
	return true
}

// PlanReaders tells the ops of a graph that an executor runs (nn/exec)
// who reads their outputs: nodes in run order, args each node's inputs as
// positions in nodes (nil: forget what an earlier call said, as when the
// executor closes). An inference ConvBN op whose output only the next
// ConvBN op reads, as its input and by chainFrom (from its kept blocked
// output), without a shift (which falls back to the NCHW copy), then
// writes no NCHW copy of its output: nothing else could read it. Graphs run without PlanReaders (gorgonia's TapeMachine, whose
// nodes keep their values) always get the NCHW copies.
func PlanReaders(nodes []*G.Node, args [][]int) {
	refs := make([]int, len(nodes))
	reader := make([]int, len(nodes)) // the one reader of a node read once as a first input, else -1
	for j, as := range args {
		for pos, c := range as {
			refs[c]++
			reader[c] = -1
			if pos == 0 {
				reader[c] = j
			}
		}
	}
	for i, nd := range nodes {
		p, ok := nd.Op().(*convBNOp)
		if !ok {
			continue
		}
		on := false
		if args != nil && refs[i] == 1 && reader[i] >= 0 {
			if r, ok := nodes[reader[i]].Op().(*convBNOp); ok && r.shift == nil && r.dn.isChainedFrom(&p.dn) {
				on = true
			}
		}
		p.dn.setSkipOut(on)
	}
}
