package exec

import (
	"fmt"
	"sort"

	G "gorgonia.org/gorgonia"
)

// Schedule is a graph's nodes in the order they run, the TapeMachine's
// (gorgonia.Sort reversed: every node after its inputs), with each node's
// inputs and last reader. It depends on no device: an executor for
// another device can plan its memory from it with Pack.
type Schedule struct {
	Nodes []*G.Node
	Args  [][]int // each node's inputs in order, as positions in Nodes
	Last  []int   // position of each node's last reader (its own if none)
}

// NewSchedule sorts g.
func NewSchedule(g *G.ExprGraph) (*Schedule, error) {
	sorted, err := G.Sort(g)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	n := len(sorted)
	s := &Schedule{Nodes: make([]*G.Node, n), Args: make([][]int, n), Last: make([]int, n)}
	pos := make(map[*G.Node]int, n)
	for i := range sorted {
		s.Nodes[i] = sorted[n-1-i]
		pos[s.Nodes[i]] = i
	}
	for i, nd := range s.Nodes {
		s.Last[i] = i
		for it := g.From(nd.ID()); it.Next(); {
			c, ok := pos[it.Node().(*G.Node)]
			if !ok || c >= i {
				return nil, fmt.Errorf("plan: %v reads a node outside the sorted graph", nd)
			}
			s.Args[i] = append(s.Args[i], c)
			s.Last[c] = max(s.Last[c], i)
		}
	}
	return s, nil
}

// Interval is a value to place: live from step Start to step End, both
// included, Size units large.
type Interval struct{ Start, End, Size int }

func (a Interval) meets(b Interval) bool { return a.Start <= b.End && b.Start <= a.End }

// Pack places values in one buffer so that two values share units only
// when their lifetimes do not meet: largest first (ties in the given
// order), each at the lowest offset where it overlaps no placed value
// whose lifetime meets its own, the "greedy by size" of TFLite's arena
// planner. It returns each value's offset and the buffer's size.
func Pack(vs []Interval) (off []int, total int) {
	off = make([]int, len(vs))
	order := make([]int, len(vs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return vs[order[a]].Size > vs[order[b]].Size })
	var placed, conf []int
	for _, v := range order {
		conf = conf[:0]
		for _, p := range placed {
			if vs[v].meets(vs[p]) {
				conf = append(conf, p)
			}
		}
		sort.Slice(conf, func(a, b int) bool { return off[conf[a]] < off[conf[b]] })
		o := 0
		for _, p := range conf {
			if o+vs[v].Size <= off[p] {
				break
			}
			o = max(o, off[p]+vs[p].Size)
		}
		off[v] = o
		total = max(total, o+vs[v].Size)
		placed = append(placed, v)
	}
	return off, total
}

// PeakLive is the most units of vs live at one step: no placement of vs
// needs less.
func PeakLive(vs []Interval) int {
	end := 0
	for _, v := range vs {
		end = max(end, v.End)
	}
	peak := 0
	for t := 0; t <= end; t++ {
		live := 0
		for _, v := range vs {
			if v.Start <= t && t <= v.End {
				live += v.Size
			}
		}
		peak = max(peak, live)
	}
	return peak
}
