package exec

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/ops"
)

func randTensor(r *rand.Rand, shape ...int) *tensor.Dense {
	t := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(shape...))
	for i := range t.Float32s() {
		t.Float32s()[i] = float32(2*r.Float64() - 1)
	}
	return t
}

func input(g *G.ExprGraph, name string, v *tensor.Dense) *G.Node {
	return G.NewTensor(g, tensor.Float32, v.Dims(), G.WithShape(v.Shape()...), G.WithValue(v), G.WithName(name))
}

// must returns a function that fails t on an error and returns the node.
func must(t *testing.T) func(*G.Node, error) *G.Node {
	return func(n *G.Node, err error) *G.Node {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
}

// keep copies n's value out of the graph at every run.
func keep(t *testing.T, n *G.Node) *tensor.Dense {
	t.Helper()
	ok := must(t)
	dst := tensor.New(tensor.Of(n.Dtype()), tensor.WithShape(n.Shape()...))
	ok(ops.Keep(n, dst))
	return dst
}

// chain is a forward graph in which a value (a) is read again after two
// more values of its size were computed: freeing a's memory after its
// first reader would let c overwrite it before d reads it.
func chain(t *testing.T) (*G.ExprGraph, []*tensor.Dense) {
	ok := must(t)
	r := rand.New(rand.NewSource(1))
	g := G.NewGraph()
	x, y := input(g, "x", randTensor(r, 4, 8, 16, 16)), input(g, "y", randTensor(r, 4, 8, 16, 16))
	a := ok(ops.AddReLU(x, y))
	b := ok(ops.AddReLU(a, y))
	c := ok(ops.TemporalShift(b, 2, 0.25))
	d := ok(ops.AddReLU(c, a))
	e := ok(ops.MaxPool(d, 3, 2, 1))
	return g, []*tensor.Dense{keep(t, d), keep(t, e)}
}

// net is a small training graph: convolutions, batch norms, a residual
// add (so G.Grad sums two gradients with gorgonia's Add), the temporal
// shift, pooling, an fc and the loss, with every parameter's gradient
// kept. It returns the kept values: the gradients, the probabilities and
// the running statistics after the run.
func net(t *testing.T) (*G.ExprGraph, func() [][]float32) {
	ok := must(t)
	r := rand.New(rand.NewSource(2))
	g := G.NewGraph()
	x := input(g, "x", randTensor(r, 4, 3, 8, 8))
	w1, w2 := input(g, "w1", randTensor(r, 8, 3, 3, 3)), input(g, "w2", randTensor(r, 8, 8, 1, 1))
	s1, o1 := input(g, "s1", randTensor(r, 8)), input(g, "o1", randTensor(r, 8))
	s2, o2 := input(g, "s2", randTensor(r, 8)), input(g, "o2", randTensor(r, 8))
	fw, fb := input(g, "fw", randTensor(r, 8, 5)), input(g, "fb", randTensor(r, 5))
	st := func() *ops.BNState {
		return &ops.BNState{Mean: randTensor(r, 8), Variance: tensor.New(tensor.WithBacking([]float32{1, 1, 1, 1, 1, 1, 1, 1})), Momentum: 0.9, Eps: 1e-5}
	}
	st1, st2 := st(), st()
	h1 := ok(ops.Conv2D(x, w1, 1, 1, false))
	h1 = ok(ops.BatchNorm(h1, s1, o1, st1, true, true))
	h2 := ok(ops.Conv2D(h1, w2, 1, 0, true))
	h2 = ok(ops.BatchNorm(h2, s2, o2, st2, true, false))
	h3 := ok(ops.AddReLU(h2, h1))
	h3 = ok(ops.TemporalShift(h3, 2, 0.25))
	p := ok(ops.GlobalAvgPool(h3))
	logits := ok(ops.Linear(p, fw, fb))
	loss, sce, err := ops.SoftmaxCrossEntropy(logits)
	if err != nil {
		t.Fatal(err)
	}
	sce.Labels = []int{0, 3, 4, 1}
	wrt := G.Nodes{w1, s1, o1, w2, s2, o2, fw, fb}
	grads, err := G.Grad(loss, wrt...)
	if err != nil {
		t.Fatal(err)
	}
	var kept []*tensor.Dense
	for _, gn := range grads {
		kept = append(kept, keep(t, gn))
	}
	return g, func() [][]float32 {
		var out [][]float32
		for _, k := range kept {
			out = append(out, slices.Clone(k.Float32s()))
		}
		probs := make([]float32, len(sce.Probs()))
		for i, v := range sce.Probs() {
			probs[i] = float32(v)
		}
		out = append(out, probs)
		for _, s := range []*ops.BNState{st1, st2} {
			out = append(out, slices.Clone(s.Mean.Float32s()), slices.Clone(s.Variance.Float32s()))
		}
		return out
	}
}

// checkPlan fails if two planned values whose lifetimes meet share
// memory, or a value's lifetime ends before one of its readers runs.
func checkPlan(t *testing.T, m *Machine) {
	t.Helper()
	root, _ := m.inPlace() // the value whose place each value takes
	for i := range m.nodes {
		for _, c := range m.args[i] {
			if m.last[c] < i {
				t.Errorf("%v dies at %d, before its reader %v at %d", m.nodes[c], m.last[c], m.nodes[i], i)
			}
		}
		if m.off[i] < 0 {
			continue
		}
		for j := i + 1; j < len(m.nodes); j++ {
			if m.off[j] < 0 || j > m.last[i] || root[i] == root[j] {
				continue // apart, or written in place (ops.InPlace)
			}
			if m.off[i] < m.off[j]+m.size[j] && m.off[j] < m.off[i]+m.size[i] {
				t.Errorf("%v [%d,%d] and %v [%d,%d] share memory", m.nodes[i], i, m.last[i], m.nodes[j], j, m.last[j])
			}
		}
	}
}

// firstDiff is the first index where a and b differ bitwise, -1 if none.
func firstDiff(a, b []float32) int {
	if len(a) != len(b) {
		return 0
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i
		}
	}
	return -1
}

func runTape(t *testing.T, g *G.ExprGraph, runs int) {
	t.Helper()
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	for range runs {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLateReaderKeepsItsValue: a value read again late keeps its memory
// until then; the planned run equals the TapeMachine's (every op with a
// buffer of its own) bit for bit.
func TestLateReaderKeepsItsValue(t *testing.T) {
	g, want := chain(t)
	runTape(t, g, 1)
	g2, got := chain(t)
	m, err := New(g2, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkPlan(t, m)
	for run := range 2 {
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		for i := range want {
			if j := firstDiff(got[i].Float32s(), want[i].Float32s()); j >= 0 {
				t.Fatalf("run %d: output %d differs from the unplanned run at %d", run, i, j)
			}
		}
	}
	if s := m.Stats(); s.ArenaBytes >= s.Bytes || s.ArenaBytes < s.PeakLiveBytes {
		t.Errorf("plan %+v: want PeakLiveBytes <= ArenaBytes < Bytes", s)
	}
}

// TestTrainingGraphMatchesTapeMachine: gradients (including the sum
// gorgonia's Add makes, planned through UsePreallocDo), probabilities and
// running statistics equal the TapeMachine's bit for bit over two runs,
// with the training graph sharing its arena with a forward graph run in
// between.
func TestTrainingGraphMatchesTapeMachine(t *testing.T) {
	g, want := net(t)
	vm := G.NewTapeMachine(g)
	defer vm.Close()
	g2, got := net(t)
	a := NewArena()
	m, err := New(g2, a)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	checkPlan(t, m)
	gorgoniaOps := 0
	for i, nd := range m.nodes {
		if _, ours := nd.Op().(ops.PlannedOutput); m.off[i] >= 0 && !ours {
			gorgoniaOps++
		}
	}
	if gorgoniaOps == 0 {
		t.Error("no gorgonia op was planned: the test does not cover UsePreallocDo")
	}
	gc, _ := chain(t)
	other, err := New(gc, a)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 2 {
		vm.Reset()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		if err := m.RunAll(); err != nil {
			t.Fatal(err)
		}
		w, h := want(), got()
		for i := range w {
			if j := firstDiff(h[i], w[i]); j >= 0 {
				t.Fatalf("run %d: kept value %d differs from the unplanned run at %d: %v, want %v", run, i, j, h[i][j], w[i][j])
			}
		}
		if err := other.RunAll(); err != nil {
			t.Fatal(err)
		}
	}
	if s := m.Stats(); s.ArenaBytes >= s.Bytes {
		t.Errorf("plan %+v: the arena is not smaller than one buffer per op", s)
	}
}

// residual is an inference block on nChw16c: a, b conv+BN, c adds a
// (the shortcut) to b's conv+BN, d brings c back to NCHW. With late, a
// is read again after c (an add with c), so c cannot take a's place.
func residual(t *testing.T, late bool) (*G.ExprGraph, *G.Node, *G.Node, []*tensor.Dense) {
	ok := must(t)
	r := rand.New(rand.NewSource(9))
	g := G.NewGraph()
	conv := func(x *G.Node, name string, k, rs int, short *G.Node, out ops.Layout) *G.Node {
		c := x.Shape()[1]
		w := input(g, name+"w", randTensor(r, k, c, rs, rs))
		s, o := input(g, name+"s", randTensor(r, k)), input(g, name+"o", randTensor(r, k))
		v := randTensor(r, k)
		for i, x := range v.Float32s() {
			v.Float32s()[i] = 0.5 + x*x
		}
		st := &ops.BNState{Mean: randTensor(r, k), Variance: v, Eps: 1e-5}
		if short != nil {
			return ok(ops.ConvBNAddReLUEval(x, w, s, o, short, 1, rs/2, st))
		}
		return ok(ops.ConvBNEvalTo(x, w, s, o, 1, rs/2, st, true, out))
	}
	x := input(g, "x", randTensor(r, 4, 16, 10, 9))
	a := conv(x, "a", 32, 1, nil, ops.Blocked16)
	b := conv(a, "b", 32, 3, nil, ops.Blocked16)
	c := conv(b, "c", 32, 1, a, ops.Blocked16)
	h := c
	if late {
		h = ok(ops.AddReLU(c, a))
	}
	d := conv(h, "d", 16, 1, nil, ops.NCHW)
	return g, a, c, []*tensor.Dense{keep(t, d)}
}

// TestResidualInPlace: a blocked conv+BN+add+ReLU that is its
// shortcut's last reader writes into the shortcut's place (ops.InPlace:
// one value fewer live, no copy of the summand), and the run equals the
// TapeMachine's (every op with a buffer of its own) bit for bit, run
// after run; with a later reader of the shortcut it gets a place of its
// own.
func TestResidualInPlace(t *testing.T) {
	for _, late := range []bool{false, true} {
		g0, _, _, want := residual(t, late)
		runTape(t, g0, 1)
		g, a, c, got := residual(t, late)
		m, err := New(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkPlan(t, m)
		ia, ic := slices.Index(m.nodes, a), slices.Index(m.nodes, c)
		if ia < 0 || ic < 0 {
			t.Fatal("a or c not scheduled")
		}
		if c.Op().(ops.InPlace).InPlace() != 4 {
			t.Fatal("the blocked residual op does not offer its shortcut's place")
		}
		if shared := m.off[ia] == m.off[ic]; shared == late {
			t.Errorf("late %v: the add's output at %d, its shortcut at %d", late, m.off[ic], m.off[ia])
		}
		for run := range 2 {
			if err := m.RunAll(); err != nil {
				t.Fatal(err)
			}
			if j := firstDiff(got[0].Float32s(), want[0].Float32s()); j >= 0 {
				t.Fatalf("late %v run %d: output differs from the TapeMachine's at %d: %v, want %v", late, run, j, got[0].Float32s()[j], want[0].Float32s()[j])
			}
		}
		m.Close()
	}
}
