// Package exec runs a gorgonia ExprGraph on the CPU with planned memory:
// every op output gets a place in one arena, chosen before the first run
// from the values' lifetimes over the sorted graph, so that two values
// share memory only when they are never live at the same time. A value is
// live from the op that writes it to its last reader; a forward value that
// the backward pass reads stays live until that backward op, because the
// backward op is one of its readers in the graph G.Grad built. At
// evaluation (no backward) an activation is free as soon as the next
// layers have read it. The convolutions' im2col scratch is one buffer
// shared by all ops (ops.Scratch) instead of one per op.
//
// A Machine replaces gorgonia's TapeMachine for the graphs nn/resnet
// builds (docs/memory.md says why an executor of its own rather than
// planned values inside the TapeMachine). It runs the nodes in the order
// the TapeMachine does (gorgonia.Sort, reversed), calls each op's Do (the
// ops of nn/ops write into the buffer given by SetOutput; gorgonia's own
// element-wise ops, such as the Adds G.Grad makes to sum gradients, write
// into theirs through UsePreallocDo), and binds no values to nodes: read
// results through ops.Keep or op state, as with the TapeMachine.
//
// Several Machines may share one Arena when they never run at the same
// time (a model's training and evaluation graphs): the arena is as large
// as the largest plan.
package exec

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/ops"
)

// align is the planned values' alignment in bytes: every value starts on
// a page, as a buffer of its own from the Go allocator would.
const align = 4096

// Arena is the memory the Machines sharing it place their values in, and
// their shared im2col scratch. The zero value is not usable: use NewArena.
type Arena struct {
	dt      tensor.Dtype
	f32     []float32
	f64     []float64
	gen     int // bumped whenever the buffer is replaced
	scratch ops.Scratch
}

// NewArena returns an empty arena; it grows to the largest plan of the
// Machines that use it on their first run.
func NewArena() *Arena { return &Arena{gen: 1} }

// Bytes is the memory the arena holds: the planned values' buffer and the
// shared scratch.
func (a *Arena) Bytes() int64 {
	return 4*int64(len(a.f32)) + 8*int64(len(a.f64)) + a.scratch.Bytes()
}

// Release drops the arena's memory; the next run allocates it again.
func (a *Arena) Release() {
	a.f32, a.f64 = nil, nil
	a.scratch.Release()
	a.gen++
}

// reserve makes the buffer hold at least n elements of dt.
func (a *Arena) reserve(dt tensor.Dtype, n int) {
	switch dt {
	case tensor.Float32:
		if len(a.f32) >= n {
			return
		}
		a.f32, a.f64 = make([]float32, n), nil
	case tensor.Float64:
		if len(a.f64) >= n {
			return
		}
		a.f64, a.f32 = make([]float64, n), nil
	}
	a.dt = dt
	a.gen++
}

// view is n elements at off of the buffer, shaped.
func (a *Arena) view(off, n int, shape tensor.Shape) *tensor.Dense {
	var back any
	if a.dt == tensor.Float32 {
		back = a.f32[off : off+n : off+n]
	} else {
		back = a.f64[off : off+n : off+n]
	}
	return tensor.New(tensor.WithShape(shape.Clone()...), tensor.WithBacking(back))
}

// Stats describes a Machine's plan.
type Stats struct {
	// Values is the number of planned values, Bytes their total size:
	// what one buffer per op (the TapeMachine with nn/ops' own buffers)
	// holds.
	Values int
	Bytes  int64
	// ArenaBytes is the memory the plan places them in.
	ArenaBytes int64
	// PeakLiveBytes is the most bytes of planned values live at one step,
	// the least any placement needs (ArenaBytes >= PeakLiveBytes).
	PeakLiveBytes int64
}

// Machine runs one graph with planned memory. It implements gorgonia.VM.
// A Machine is not safe for concurrent use, nor are two Machines sharing
// an Arena.
type Machine struct {
	nodes []*G.Node
	args  [][]int // each node's inputs, as positions in nodes
	last  []int   // position of each node's last reader (its own if none)
	off   []int   // each value's offset in the arena (elements), -1: not planned
	size  []int   // each planned value's elements
	dt    tensor.Dtype
	need  int // arena elements the plan needs
	arena *Arena
	gen   int // the arena generation the views belong to
	views []*tensor.Dense
	vals  []G.Value
	in    []G.Value
	stats Stats
	lease *ops.RingLease // held during runs when an op skips a copy (ops.PlanReaders)
}

// New plans g's memory in a (nil: an arena of its own) and returns the
// Machine that runs it. g must not change afterwards.
func New(g *G.ExprGraph, a *Arena) (*Machine, error) {
	sc, err := NewSchedule(g)
	if err != nil {
		return nil, err
	}
	if a == nil {
		a = NewArena()
	}
	n := len(sc.Nodes)
	m := &Machine{nodes: sc.Nodes, args: sc.Args, last: sc.Last, off: make([]int, n), size: make([]int, n),
		arena: a, views: make([]*tensor.Dense, n), vals: make([]G.Value, n)}
	for i := range m.nodes {
		m.off[i] = -1
		if m.dt == (tensor.Dtype{}) && m.planned(i) {
			m.dt = m.nodes[i].Dtype() // the arena's element type
		}
	}
	// An unplanned op that may return (part of) an input keeps that
	// input alive as long as its own value.
	for i := n - 1; i >= 0; i-- {
		if op := m.nodes[i].Op(); op != nil && !m.planned(i) && op.ReturnsPtr() {
			for _, c := range m.args[i] {
				m.last[c] = max(m.last[c], m.last[i])
			}
		}
	}
	m.plan()
	m.lease = ops.PlanReaders(m.nodes, m.args)
	for _, nd := range m.nodes {
		if op := nd.Op(); op != nil {
			ops.ShareScratch(op, &a.scratch)
		}
	}
	return m, nil
}

// planned reports whether node i's value gets a place in the arena: the
// tensor output of an nn/ops op or of a gorgonia op that can write into a
// given buffer, of the graph's element type.
func (m *Machine) planned(i int) bool {
	nd := m.nodes[i]
	op := nd.Op()
	if op == nil || nd.IsScalar() || nd.Shape().TotalSize() < 1 || (nd.Dtype() != tensor.Float32 && nd.Dtype() != tensor.Float64) {
		return false
	}
	if m.dt != (tensor.Dtype{}) && nd.Dtype() != m.dt {
		return false
	}
	if _, ok := op.(ops.PlannedOutput); ok {
		return true
	}
	_, ok := op.(G.UsePreallocDoer)
	return ok
}

// plan places the planned values in the arena (Pack), in elements
// rounded up to the alignment.
func (m *Machine) plan() {
	elem := 4
	if m.dt == tensor.Float64 {
		elem = 8
	}
	unit := align / elem
	root, end := m.inPlace()
	var vs []int
	var ivs, exact []Interval
	for i := range m.nodes {
		if !m.planned(i) {
			continue
		}
		n := m.nodes[i].Shape().TotalSize()
		m.size[i] = (n + unit - 1) / unit * unit
		m.stats.Values++
		m.stats.Bytes += int64(n * elem)
		if root[i] != i {
			continue // in its input's place
		}
		vs = append(vs, i)
		ivs = append(ivs, Interval{Start: i, End: end[i], Size: m.size[i]})
		exact = append(exact, Interval{Start: i, End: end[i], Size: n})
	}
	off, total := Pack(ivs)
	for j, i := range vs {
		m.off[i] = off[j]
	}
	for i := range m.nodes {
		if m.planned(i) && root[i] != i {
			m.off[i] = m.off[root[i]]
		}
	}
	m.need = total
	m.stats.ArenaBytes = int64(total * elem)
	m.stats.PeakLiveBytes = int64(PeakLive(exact) * elem)
}

// inPlace finds the values written into an input's place (ops.InPlace:
// the op is that input's last reader, both are planned, of one size, and
// the op reads the input once). root[i] is the value whose place i
// takes (i itself when none), end[r] the last step at which r's place is
// live.
func (m *Machine) inPlace() (root, end []int) {
	root, end = make([]int, len(m.nodes)), append([]int(nil), m.last...)
	for i, nd := range m.nodes {
		root[i] = i
		ip, ok := nd.Op().(ops.InPlace)
		if !ok || !m.planned(i) {
			continue
		}
		k := ip.InPlace()
		if k < 0 || k >= len(m.args[i]) {
			continue
		}
		c := m.args[i][k]
		reads := 0
		for _, a := range m.args[i] {
			if a == c {
				reads++
			}
		}
		if reads != 1 || !m.planned(c) || m.last[c] != i || m.nodes[c].Shape().TotalSize() != nd.Shape().TotalSize() {
			continue
		}
		root[i] = root[c]
		end[root[i]] = max(end[root[i]], m.last[i])
	}
	return root, end
}

// Stats describes the plan.
func (m *Machine) Stats() Stats { return m.stats }

// bind makes the views of the planned values in the arena's current
// buffer and hands them to their ops.
func (m *Machine) bind() {
	if m.need == 0 {
		return
	}
	m.arena.reserve(m.dt, m.need)
	if m.gen == m.arena.gen && m.arena.dt == m.dt {
		return
	}
	for i, nd := range m.nodes {
		if m.off[i] < 0 {
			continue
		}
		v := m.arena.view(m.off[i], nd.Shape().TotalSize(), nd.Shape())
		m.views[i] = v
		if p, ok := nd.Op().(ops.PlannedOutput); ok {
			p.SetOutput(v)
		}
	}
	m.gen = m.arena.gen
}

// RunAll runs every node once.
func (m *Machine) RunAll() (err error) {
	m.bind()
	if m.lease != nil {
		m.lease.Acquire()
		defer m.lease.Release()
	}
	i := 0
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v (%s): panic: %v", m.nodes[i].Op(), m.nodes[i].Name(), r)
		}
		clear(m.vals)
	}()
	for ; i < len(m.nodes); i++ {
		nd := m.nodes[i]
		op := nd.Op()
		if op == nil {
			m.vals[i] = nd.Value()
			continue
		}
		m.in = m.in[:0]
		for _, c := range m.args[i] {
			m.in = append(m.in, m.vals[c])
		}
		var v G.Value
		_, own := op.(ops.PlannedOutput)
		if pd, ok := op.(G.UsePreallocDoer); ok && !own && m.views[i] != nil {
			v, err = pd.UsePreallocDo(m.views[i], m.in...)
		} else {
			v, err = op.Do(m.in...)
		}
		if err != nil {
			return fmt.Errorf("%v (%s): %w", op, nd.Name(), err)
		}
		m.vals[i] = v
		for _, c := range m.args[i] {
			if m.last[c] == i {
				m.vals[c] = nil // dead: an unplanned value goes to the GC
			}
		}
	}
	return nil
}

// Reset readies the Machine for the next RunAll (RunAll needs none; it is
// here for gorgonia.VM).
func (m *Machine) Reset() { clear(m.vals) }

// Close gives the ops their own buffers back and forgets the arena's.
func (m *Machine) Close() error {
	ops.PlanReaders(m.nodes, nil)
	m.lease = nil
	for _, nd := range m.nodes {
		op := nd.Op()
		if p, ok := op.(ops.PlannedOutput); ok {
			p.SetOutput(nil)
		}
		if op != nil {
			ops.ShareScratch(op, nil)
		}
	}
	clear(m.views)
	clear(m.vals)
	m.gen = 0
	return nil
}
