package resnet

import (
	"errors"
	"fmt"
	"math/rand"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/exec"
	"github.com/zoo-ml/zoo/nn/ops"
	"github.com/zoo-ml/zoo/nn/optim"
)

// Paddle TSM's optimizer settings.
const (
	Momentum = 0.9
	L2Decay  = 1e-4
)

// Model is a ResNet/TSM video classifier with its parameters and up to two
// compiled graphs (training and evaluation) that share them: an update
// by TrainStep or SetParam is seen by both without copying. A Model is not
// safe for concurrent use.
type Model struct {
	cfg    Config
	arch   arch
	params []*Param
	byName map[string]*Param
	rng    ops.Uniform // dropout masks
	seedFn func(int64)
	opt    *optim.Momentum
	graphs [2]*graph
	// arena holds the activations, gradients and scratch of both graphs,
	// planned by nn/exec (the graphs never run at the same time).
	arena *exec.Arena
	// tape runs the graphs on gorgonia's TapeMachine, every op with a
	// buffer of its own (the unplanned reference of the tests).
	tape bool
	// nchw keeps every activation of both graphs NCHW: set for another
	// executor (Graph), and by tests comparing the layouts. Otherwise,
	// with oneDNN, the convolutions after the stem write oneDNN's
	// nChw16c (ops.Blocked16) where the channels allow: no convolution
	// reorders its activations, the training graph's batch norms run on
	// oneDNN, and the inference graph needs none of oneDNN's NCHW-side
	// buffers (blocked copies, the shifted input, the ring of kept
	// outputs; docs/performance.md).
	nchw bool
}

// Result is what one batch gives.
type Result struct {
	Loss float64 // mean cross entropy over the batch (0 without labels)
	// Probs holds the softmax probabilities, BatchSize rows of NumClasses.
	Probs []float64
	// Top1 and Top5 count the clips whose label is the most likely class
	// or among the five most likely ones.
	Top1, Top5 int
}

// New creates a model with freshly initialised parameters.
func New(cfg Config) (*Model, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	a := layout(cfg)
	r := rand.New(rand.NewSource(cfg.Seed + 1))
	m := &Model{cfg: cfg, arch: a, params: newParams(cfg, a), byName: map[string]*Param{},
		rng: r, seedFn: r.Seed, opt: optim.NewMomentum(Momentum, L2Decay), arena: exec.NewArena()}
	for _, p := range m.params {
		m.byName[p.Name] = p
	}
	return m, nil
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// Params returns the model's parameters in Paddle's creation order,
// batch-norm running statistics included (not trainable). The Values are
// the model's own tensors.
func (m *Model) Params() []*Param { return m.params }

// Param returns the named parameter.
func (m *Model) Param(name string) (*Param, bool) {
	p, ok := m.byName[name]
	return p, ok
}

// ErrUnknownParam is returned by SetParam for a name the model lacks.
var ErrUnknownParam = errors.New("unknown parameter")

// SetParam copies values (row-major, the parameter's shape) into the
// named parameter.
func (m *Model) SetParam(name string, shape []int, values []float32) error {
	p, ok := m.byName[name]
	if !ok {
		return fmt.Errorf("set parameter %q: %w", name, ErrUnknownParam)
	}
	if !tensor.Shape(shape).Eq(tensor.Shape(p.Shape)) {
		return fmt.Errorf("set parameter %q: shape %v, model has %v", name, shape, p.Shape)
	}
	if len(values) != p.Value.Shape().TotalSize() {
		return fmt.Errorf("set parameter %q: %d values for shape %v", name, len(values), p.Shape)
	}
	if p.Value.Dtype() == tensor.Float32 {
		copy(p.Value.Float32s(), values)
		return nil
	}
	for i, v := range values {
		p.Value.Float64s()[i] = float64(v)
	}
	return nil
}

// Optimizer returns the Momentum optimizer TrainStep uses (its velocities
// are the optimizer state a checkpoint holds).
func (m *Model) Optimizer() *optim.Momentum { return m.opt }

// SeedDropout restarts the dropout mask sequence.
func (m *Model) SeedDropout(seed int64) { m.seedFn(seed) }

// graph is one compiled graph over the model's parameters.
type graph struct {
	g     *G.ExprGraph
	vm    G.VM
	input *tensor.Dense
	loss  *ops.SoftmaxCE
}

// Build compiles the graph for mode (once; later calls return at once).
// Panics inside gorgonia are turned into errors here.
func (m *Model) Build(mode Mode) (err error) {
	if m.graphs[mode] != nil {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("build %v graph: gorgonia panicked: %v", mode, r)
		}
	}()
	gr, err := m.build(mode)
	if err != nil {
		return fmt.Errorf("build %v graph: %w", mode, err)
	}
	m.graphs[mode] = gr
	return nil
}

func (m *Model) build(mode Mode) (*graph, error) {
	c := m.cfg
	train := mode == Train
	g := G.NewGraph()
	nodes := map[string]*G.Node{}
	for _, p := range m.params {
		if !p.Trainable {
			continue
		}
		nodes[p.Name] = G.NewTensor(g, c.Dtype, len(p.Shape), G.WithShape(p.Shape...), G.WithValue(p.Value), G.WithName(p.Name))
	}
	nt := c.BatchSize * c.SegNum
	input := tensor.New(tensor.Of(c.Dtype), tensor.WithShape(nt, 3, c.Height, c.Width))
	x := G.NewTensor(g, c.Dtype, 4, G.WithShape(nt, 3, c.Height, c.Width), G.WithValue(input), G.WithName("image"))

	// body is the layout of a convolution's output after the stem (the
	// stem's feeds the max pooling, which reads NCHW). bf16 inference
	// stays NCHW: its ring hands each conv's bf16 output to the next
	// conv, where the blocked graph converts every conv's fp32 input to
	// bf16 (the end-to-end infer pass 9% slower, docs/performance.md).
	body := func(s convSpec) ops.Layout {
		if !train && ops.Precision() == "bf16" {
			return ops.NCHW
		}
		if !m.nchw && ops.CanBlock(c.Dtype, s.cout) {
			return ops.Blocked16
		}
		return ops.NCHW
	}
	convBN := func(x *G.Node, s convSpec, dataGrad, relu bool, out ops.Layout) (*G.Node, error) {
		bn := bnName(s.name)
		st := &ops.BNState{Mean: m.byName[bn+"_mean"].Value, Variance: m.byName[bn+"_variance"].Value, Momentum: BNMomentum, Eps: BNEpsilon}
		if !train {
			// inference: conv, BN with running statistics and ReLU in one op
			y, err := ops.ConvBNEvalTo(x, nodes[s.name+"_weights"], nodes[bn+"_scale"], nodes[bn+"_offset"], s.stride, s.pd, st, relu, out)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			return y, nil
		}
		y, err := ops.Conv2DTo(x, nodes[s.name+"_weights"], s.stride, s.pd, dataGrad, out)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		y, err = ops.BatchNorm(y, nodes[bn+"_scale"], nodes[bn+"_offset"], st, train, relu)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", bn, err)
		}
		return y, nil
	}

	// convBNAdd is a block's last conv+BN, the shortcut added and ReLU'd:
	// one op for inference.
	convBNAdd := func(x *G.Node, s convSpec, short *G.Node) (*G.Node, error) {
		if !train {
			bn := bnName(s.name)
			st := &ops.BNState{Mean: m.byName[bn+"_mean"].Value, Variance: m.byName[bn+"_variance"].Value, Momentum: BNMomentum, Eps: BNEpsilon}
			y, err := ops.ConvBNAddReLUEval(x, nodes[s.name+"_weights"], nodes[bn+"_scale"], nodes[bn+"_offset"], short, s.stride, s.pd, st)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", s.name, err)
			}
			return y, nil
		}
		// the sum's operands share a layout: the shortcut's (NCHW when it
		// is the max pooling's output)
		y, err := convBN(x, s, true, false, ops.LayoutOf(short))
		if err != nil {
			return nil, err
		}
		if y, err = ops.AddReLU(y, short); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		return y, nil
	}

	a := m.arch
	h, err := convBN(x, a.stem, false, true, ops.NCHW)
	if err != nil {
		return nil, err
	}
	if h, err = ops.MaxPool(h, 3, 2, 1); err != nil {
		return nil, err
	}
	for _, b := range a.blocks {
		in := h
		// residual shift: only branch2a's input is shifted. Inference
		// on NCHW folds it into a 1x1 branch2a (the bottleneck's)
		// instead of copying the shifted input; a blocked graph shifts
		// into a tensor of its own (planned by the executor, not a
		// buffer kept for the process).
		s0 := b.convs[0]
		fuseShift := c.TemporalShift && !train && s0.k == 1 && s0.stride == 1 && s0.pd == 0 && len(b.convs) > 1 &&
			ops.LayoutOf(h) == ops.NCHW && body(s0) == ops.NCHW
		if c.TemporalShift && !fuseShift {
			if h, err = ops.TemporalShift(h, c.SegNum, c.ShiftRatio); err != nil {
				return nil, fmt.Errorf("%s: %w", b.name, err)
			}
		}
		short := in
		if b.short != nil {
			if short, err = convBN(in, *b.short, true, false, body(*b.short)); err != nil {
				return nil, err
			}
		}
		last := len(b.convs) - 1
		for i, s := range b.convs[:last] {
			if i == 0 && fuseShift {
				bn := bnName(s.name)
				st := &ops.BNState{Mean: m.byName[bn+"_mean"].Value, Variance: m.byName[bn+"_variance"].Value, Momentum: BNMomentum, Eps: BNEpsilon}
				if h, err = ops.ShiftConvBNEval(h, nodes[s.name+"_weights"], nodes[bn+"_scale"], nodes[bn+"_offset"], c.SegNum, c.ShiftRatio, st, s.relu); err != nil {
					return nil, fmt.Errorf("%s: %w", s.name, err)
				}
				continue
			}
			if h, err = convBN(h, s, true, s.relu, body(s)); err != nil {
				return nil, err
			}
		}
		if h, err = convBNAdd(h, b.convs[last], short); err != nil {
			return nil, err
		}
	}
	if h, err = ops.GlobalAvgPool(h); err != nil {
		return nil, err
	}
	if !c.NoDropout && (train || !c.InvertedDropout) {
		if h, err = ops.Dropout(h, DropoutProb, train, m.rng); err != nil {
			return nil, err
		}
		if train && c.InvertedDropout {
			if h, err = G.Mul(h, G.NewConstant(scalar(c.Dtype, 1/(1-DropoutProb)))); err != nil {
				return nil, fmt.Errorf("inverted dropout: %w", err)
			}
		}
	}
	if !c.LogitConsensus {
		if h, err = ops.SegmentMean(h, c.SegNum); err != nil {
			return nil, err
		}
	}
	if h, err = ops.Linear(h, nodes["fc_0.w_0"], nodes["fc_0.b_0"]); err != nil {
		return nil, err
	}
	if c.LogitConsensus {
		if h, err = ops.SegmentMean(h, c.SegNum); err != nil {
			return nil, err
		}
	}
	loss, sce, err := ops.SoftmaxCrossEntropy(h)
	if err != nil {
		return nil, err
	}
	if train {
		var wrt G.Nodes
		var ps []*Param
		for _, p := range m.params {
			if p.Trainable {
				wrt = append(wrt, nodes[p.Name])
				ps = append(ps, p)
			}
		}
		grads, err := G.Grad(loss, wrt...)
		if err != nil {
			return nil, fmt.Errorf("gradients: %w", err)
		}
		for i, gn := range grads {
			if ps[i].Grad == nil {
				ps[i].Grad = tensor.New(tensor.Of(c.Dtype), tensor.WithShape(ps[i].Shape...))
			}
			if _, err := ops.Keep(gn, ps[i].Grad); err != nil {
				return nil, err
			}
		}
	}
	vm, err := m.newVM(g)
	if err != nil {
		return nil, err
	}
	return &graph{g: g, vm: vm, input: input, loss: sce}, nil
}

// newVM returns the machine that runs g: nn/exec's, with g's values
// planned into the model's arena (docs/memory.md).
func (m *Model) newVM(g *G.ExprGraph) (G.VM, error) {
	if m.tape {
		return G.NewTapeMachine(g), nil
	}
	return exec.New(g, m.arena)
}

// MemoryPlan returns the plan of mode's graph (zero before Build) and the
// bytes the model's arena holds now (both graphs' values and scratch).
func (m *Model) MemoryPlan(mode Mode) (plan exec.Stats, arenaBytes int64) {
	if gr := m.graphs[mode]; gr != nil {
		if x, ok := gr.vm.(*exec.Machine); ok {
			plan = x.Stats()
		}
	}
	return plan, m.arena.Bytes()
}

// Forward runs a batch through the graph of mode (built on first use).
// input holds BatchSize clips of [SegNum, 3, Height, Width] float32
// values; labels (one per clip) may be nil in Eval mode. In Train mode
// the batch-norm running statistics are updated, as in Paddle.
func (m *Model) Forward(mode Mode, input []float32, labels []int) (Result, error) {
	if err := m.Build(mode); err != nil {
		return Result{}, err
	}
	gr := m.graphs[mode]
	if len(input) != m.cfg.InputSize() {
		return Result{}, fmt.Errorf("forward: %d input values, want %d (%d clips of %dx3x%dx%d)", len(input), m.cfg.InputSize(), m.cfg.BatchSize, m.cfg.SegNum, m.cfg.Height, m.cfg.Width)
	}
	if gr.input.Dtype() == tensor.Float32 {
		copy(gr.input.Float32s(), input)
	} else {
		for i, v := range input {
			gr.input.Float64s()[i] = float64(v)
		}
	}
	if m.cfg.ReverseShift && m.cfg.TemporalShift {
		m.reverseSegments(gr.input)
	}
	return m.run(mode, labels)
}

// reverseSegments reverses the frames of every clip in place (see
// Config.ReverseShift).
func (m *Model) reverseSegments(in *tensor.Dense) {
	c := m.cfg
	frame := 3 * c.Height * c.Width
	swap := func(i, j int) {
		switch d := in.Data().(type) {
		case []float32:
			for k := range frame {
				d[i*frame+k], d[j*frame+k] = d[j*frame+k], d[i*frame+k]
			}
		case []float64:
			for k := range frame {
				d[i*frame+k], d[j*frame+k] = d[j*frame+k], d[i*frame+k]
			}
		}
	}
	for n := range c.BatchSize {
		for t := range c.SegNum / 2 {
			swap(n*c.SegNum+t, n*c.SegNum+c.SegNum-1-t)
		}
	}
}

func scalar(dt tensor.Dtype, v float64) any {
	if dt == tensor.Float64 {
		return v
	}
	return float32(v)
}

func (m *Model) run(mode Mode, labels []int) (res Result, err error) {
	gr := m.graphs[mode]
	if labels != nil && len(labels) != m.cfg.BatchSize {
		return Result{}, fmt.Errorf("%d labels for %d clips", len(labels), m.cfg.BatchSize)
	}
	if mode == Train && labels == nil {
		return Result{}, errors.New("training needs labels")
	}
	for _, l := range labels {
		if l < 0 || l >= m.cfg.NumClasses {
			return Result{}, fmt.Errorf("label %d outside [0, %d)", l, m.cfg.NumClasses)
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v pass: gorgonia panicked: %v", mode, r)
		}
	}()
	gr.loss.Labels = labels
	gr.vm.Reset()
	if err := gr.vm.RunAll(); err != nil {
		return Result{}, fmt.Errorf("%v pass: %w", mode, err)
	}
	probs := append([]float64(nil), gr.loss.Probs()...)
	res = Result{Loss: gr.loss.Loss(), Probs: probs}
	if labels != nil {
		res.Top1, res.Top5 = topK(probs, m.cfg.NumClasses, labels)
	}
	return res, nil
}

// topK counts the rows whose label ranks first, and within the first five
// (ties ranked by class index, as a stable sort would).
func topK(probs []float64, k int, labels []int) (top1, top5 int) {
	idx := make([]int, k)
	for i, l := range labels {
		row := probs[i*k : (i+1)*k]
		for j := range idx {
			idx[j] = j
		}
		sort.SliceStable(idx, func(a, b int) bool { return row[idx[a]] > row[idx[b]] })
		if idx[0] == l {
			top1++
		}
		for _, j := range idx[:min(5, k)] {
			if j == l {
				top5++
				break
			}
		}
	}
	return top1, top5
}

// TrainStep runs forward and backward on a batch in training mode and
// applies one Momentum step with learning rate lr (fc_0.b_0 gets 2*lr and
// no decay). It returns the batch's result before the update.
func (m *Model) TrainStep(input []float32, labels []int, lr float64) (Result, error) {
	res, err := m.Forward(Train, input, labels)
	if err != nil {
		return res, err
	}
	return res, m.Update(lr)
}

// Update applies one Momentum step with the gradients in the parameters'
// Grad tensors: what TrainStep does after Forward. Data-parallel and
// micro-batch steps (plugins/internal/classifier) run Forward per part,
// average the gradients, put them back into Grad and call Update once.
func (m *Model) Update(lr float64) error { return m.opt.Step(m.Vars(), lr) }

// Close releases the compiled graphs and their memory.
func (m *Model) Close() error {
	m.dropGraphs()
	m.arena.Release()
	return nil
}

// dropGraphs closes the compiled graphs; the next run builds them again.
func (m *Model) dropGraphs() {
	for i, gr := range m.graphs {
		if gr != nil {
			gr.vm.Close()
			m.graphs[i] = nil
		}
	}
}
