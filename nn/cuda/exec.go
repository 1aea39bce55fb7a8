//go:build zoocuda

package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/exec"
	"github.com/zoo-ml/zoo/nn/ops"
	"github.com/zoo-ml/zoo/nn/optim"
)

// Store holds device copies of the host tensors graphs read: the
// parameters (the graphs' input nodes' values), batch-norm running
// statistics (ops.BNState) and the optimizer's velocities. Executors of
// several graphs over the same parameters (a model's training and
// evaluation graphs) share one Store, so an update by one is seen by the
// other. Each tensor is uploaded on first use; Download copies them back.
type Store struct {
	d    *Device
	bufs map[*tensor.Dense]*Buf
	vel  map[string]*velocity
}

type velocity struct {
	b     *Buf
	shape tensor.Shape
}

// NewStore returns an empty Store on d.
func NewStore(d *Device) *Store {
	return &Store{d: d, bufs: map[*tensor.Dense]*Buf{}, vel: map[string]*velocity{}}
}

// buf returns t's device copy, uploading it on first use. Callers hold
// the device lock.
func (s *Store) buf(t *tensor.Dense) (*Buf, error) {
	if b, ok := s.bufs[t]; ok {
		return b, nil
	}
	if t.Dtype() != tensor.Float32 {
		return nil, fmt.Errorf("cuda: a %v tensor %v: only float32 runs on the GPU", t.Dtype(), t.Shape())
	}
	b, err := s.d.Alloc(t.Shape().TotalSize())
	if err != nil {
		return nil, err
	}
	if err := s.d.Upload(b, t.Float32s()); err != nil {
		s.d.Free(b)
		return nil, err
	}
	s.bufs[t] = b
	return b, nil
}

// Download copies every tensor's device copy back into it and every
// velocity into opt (which may be nil).
func (s *Store) Download(opt *optim.Momentum) error {
	s.d.lock()
	defer runtime.UnlockOSThread()
	for t, b := range s.bufs {
		if err := s.d.Download(t.Float32s(), b); err != nil {
			return err
		}
	}
	if opt == nil {
		return nil
	}
	for name, v := range s.vel {
		t := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(v.shape...))
		if err := s.d.Download(t.Float32s(), v.b); err != nil {
			return err
		}
		opt.SetVelocity(name, t)
	}
	return nil
}

// Close frees the Store's device memory.
func (s *Store) Close() {
	s.d.lock()
	defer runtime.UnlockOSThread()
	for t, b := range s.bufs {
		s.d.Free(b)
		delete(s.bufs, t)
	}
	for n, v := range s.vel {
		s.d.Free(v.b)
		delete(s.vel, n)
	}
}

// Executor runs a gorgonia graph on the device: every op node, in
// topological order (gorgonia's Sort), with its kernel on device-resident
// values. Input nodes other than the feed are parameters, kept in the
// Store. Intermediate values come from a pool of device buffers: a value
// goes back to the pool after its last reader in the sorted graph has run,
// so a later node of the same size reuses it (liveness-based reuse; no
// buffer is allocated after the first run). An Executor is not safe for
// concurrent use.
type Executor struct {
	d     *Device
	st    *Store
	steps []step
	input *G.Node
	inBuf *Buf
	sc    Scratch
	pool  map[int][]*Buf
	live  map[*G.Node]*Buf
	keep  map[*tensor.Dense]*Buf // Keep destinations -> this run's values
	// per-op state: batch statistics, argmax, dropout masks, the loss's
	// buffers, and BN parameter gradients waiting for their nodes
	bn      map[G.Op]*BNStats
	argmax  map[G.Op]*Buf
	mask    map[G.Op]*Buf
	hostMsk map[G.Op][]byte
	gx      map[G.Op]*[2]*Buf
	sce     *sceState
	logits  *G.Node
	owned   []*Buf
	poolEls int // elements the pool has allocated
	// PeakElements is the most pool elements (4 bytes each) allocated at
	// once: the intermediate values' share of device memory.
	PeakElements int
}

type step struct {
	n       *G.Node
	desc    ops.Desc
	add     bool      // gorgonia's elementwise + (gradient sums)
	in      []*G.Node // the node's inputs
	release []*G.Node // values whose last reader this step is
	size    int       // output elements (0: no device output)
	dloss   float64   // SoftmaxCEGrad: the constant upstream gradient
}

type sceState struct {
	n, k                      int
	probs, loss, grad, labels *Buf
}

// Result is one run's output: the loss node's probabilities (N rows of K),
// the mean cross entropy (0 without labels) and the logits.
type Result struct {
	Probs  []float64
	Loss   float64
	Logits []float32
}

// ErrNoKernel is wrapped by NewExecutor's error for an op without a GPU
// kernel.
var ErrNoKernel = errors.New("no GPU kernel")

// NewExecutor prepares g for the device: input is the node fed by Run
// (its shape, float32); every other input node must hold a float32
// *tensor.Dense (a parameter, uploaded into st on first use). g must end
// in one ops.SoftmaxCrossEntropy. An op without a GPU kernel is an error
// naming it.
func NewExecutor(st *Store, g *G.ExprGraph, input *G.Node) (*Executor, error) {
	steps, err := plan(g, input)
	if err != nil {
		return nil, err
	}
	e := &Executor{d: st.d, st: st, steps: steps, input: input, pool: map[int][]*Buf{}, live: map[*G.Node]*Buf{},
		keep: map[*tensor.Dense]*Buf{}, bn: map[G.Op]*BNStats{}, argmax: map[G.Op]*Buf{}, mask: map[G.Op]*Buf{},
		hostMsk: map[G.Op][]byte{}, gx: map[G.Op]*[2]*Buf{}}
	e.d.lock()
	defer runtime.UnlockOSThread()
	if err := e.setup(); err != nil {
		e.free()
		return nil, err
	}
	return e, nil
}

// plan sorts g and checks that every op has a kernel; it touches no
// device.
func plan(g *G.ExprGraph, input *G.Node) ([]step, error) {
	// The order and each value's last reader are nn/exec's Schedule, the
	// liveness the CPU executor plans its arena by.
	sc, err := exec.NewSchedule(g)
	if err != nil {
		return nil, fmt.Errorf("cuda: %w", err)
	}
	consts := map[*G.Node]float64{}
	var steps []step
	stepOf := make([]int, len(sc.Nodes)) // each node's step, -1: none
	pinned := map[*G.Node]bool{}
	losses := 0
	for i, n := range sc.Nodes {
		stepOf[i] = -1
		if n.Op() == nil {
			if n.Dtype() != tensor.Float32 {
				return nil, fmt.Errorf("cuda: input %s is %v: only float32 runs on the GPU", n.Name(), n.Dtype())
			}
			if n != input {
				if _, ok := n.Value().(*tensor.Dense); !ok {
					return nil, fmt.Errorf("cuda: input %s has no tensor value", n.Name())
				}
			}
			continue
		}
		if fmt.Sprintf("%T", n.Op()) == "gorgonia.constantScalar" {
			v, err := scalarOf(n.Value())
			if err != nil {
				return nil, fmt.Errorf("cuda: constant %s: %w", n.Name(), err)
			}
			consts[n] = v
			continue
		}
		s := step{n: n}
		for _, c := range sc.Args[i] {
			s.in = append(s.in, sc.Nodes[c])
		}
		d, ours := ops.Describe(n.Op())
		for _, c := range s.in {
			if _, ok := consts[c]; ok && d.Kind != ops.KindSoftmaxCEGrad {
				return nil, fmt.Errorf("cuda: node %s (op %v) reads a constant: %w", n.Name(), n.Op(), ErrNoKernel)
			}
		}
		if ours && d.Blocked {
			return nil, fmt.Errorf("cuda: node %s (op %v) works on oneDNN's nChw16c layout (a CPU graph): %w", n.Name(), n.Op(), ErrNoKernel)
		}
		if ours {
			s.desc = d
			switch d.Kind {
			case ops.KindSoftmaxCE:
				losses++
				pinned[s.in[0]] = true // the logits, for Result
			case ops.KindSoftmaxCEGrad:
				v, ok := consts[s.in[1]]
				if !ok || v != 1 {
					return nil, fmt.Errorf("cuda: node %s: the loss gradient's upstream gradient must be the constant 1 (G.Grad of the loss): %w", n.Name(), ErrNoKernel)
				}
				s.dloss, s.in = v, s.in[:1]
			case ops.KindKeep:
				pinned[s.in[0]] = true
			}
			if d.Kind != ops.KindSoftmaxCE && d.Kind != ops.KindKeep {
				s.size = d.Out.TotalSize()
			}
		} else if fmt.Sprintf("%T", n.Op()) == "gorgonia.elemBinOp" && n.Op().String() == "+ false" && len(s.in) == 2 &&
			s.in[0].Shape().Eq(n.Shape()) && s.in[1].Shape().Eq(n.Shape()) && n.Dtype() == tensor.Float32 {
			s.add, s.size = true, n.Shape().TotalSize()
		} else {
			return nil, fmt.Errorf("cuda: node %s: op %v (%T): %w", n.Name(), n.Op(), n.Op(), ErrNoKernel)
		}
		stepOf[i] = len(steps)
		steps = append(steps, s)
	}
	if losses != 1 {
		return nil, fmt.Errorf("cuda: the graph has %d softmax cross-entropy losses, want 1", losses)
	}
	for i, k := range stepOf {
		if k < 0 {
			continue
		}
		n := steps[k].n
		j := sc.Last[i]
		if stepOf[j] < 0 {
			return nil, fmt.Errorf("cuda: node %s is read by %s, which runs no kernel: %w", n.Name(), sc.Nodes[j].Name(), ErrNoKernel)
		}
		if j != i && !pinned[n] {
			steps[stepOf[j]].release = append(steps[stepOf[j]].release, n)
		} else if j == i && steps[k].size > 0 {
			steps[k].release = append(steps[k].release, n) // nobody reads it
		}
	}
	return steps, nil
}

func scalarOf(v G.Value) (float64, error) {
	switch d := v.Data().(type) {
	case float32:
		return float64(d), nil
	case float64:
		return d, nil
	}
	return 0, fmt.Errorf("value %v is not a float scalar", v)
}

// setup uploads the parameters and allocates the per-op state.
func (e *Executor) setup() (err error) {
	alloc := func(n int) (*Buf, error) {
		if err := fitsInt32("buffer", n); err != nil {
			return nil, err
		}
		b, err := e.d.Alloc(max(n, 1))
		if err == nil {
			e.owned = append(e.owned, b)
		}
		return b, err
	}
	if e.inBuf, err = alloc(e.input.Shape().TotalSize()); err != nil {
		return err
	}
	col := 0
	for _, s := range e.steps {
		for _, c := range s.in {
			if c.Op() == nil && c != e.input {
				if _, err := e.st.buf(c.Value().(*tensor.Dense)); err != nil {
					return fmt.Errorf("upload %s: %w", c.Name(), err)
				}
			}
		}
		d := s.desc
		switch d.Kind {
		case ops.KindConv, ops.KindConvDataGrad, ops.KindConvFilterGrad, ops.KindConvBN:
			g := d.Conv
			per := max(g.C*g.R*g.S*g.OH()*g.OW(), g.C*g.H*g.W, g.K*g.OH()*g.OW())
			col = max(col, chunk(g)*per)
		}
		switch d.Kind {
		case ops.KindBatchNorm, ops.KindConvBN:
			c := d.C
			if d.Kind == ops.KindConvBN {
				c = d.Conv.K
			}
			st := &BNStats{}
			for _, b := range []**Buf{&st.Mean, &st.Invstd, &st.A, &st.B} {
				if *b, err = alloc(c); err != nil {
					return err
				}
			}
			e.bn[s.n.Op()] = st
			for _, t := range []*tensor.Dense{d.BN.Mean, d.BN.Variance} {
				if _, err := e.st.buf(t); err != nil {
					return err
				}
			}
		case ops.KindMaxPool:
			if e.argmax[s.n.Op()], err = alloc(d.Out.TotalSize()); err != nil {
				return err
			}
		case ops.KindDropout:
			if d.Train {
				n := d.Out.TotalSize()
				if e.mask[s.n.Op()], err = alloc((n + 3) / 4); err != nil {
					return err
				}
				e.hostMsk[s.n.Op()] = make([]byte, n)
			}
		case ops.KindSoftmaxCE:
			sc := &sceState{n: d.N, k: d.K}
			for _, b := range []struct {
				p **Buf
				n int
			}{{&sc.probs, d.N * d.K}, {&sc.loss, 2 * d.N}, {&sc.grad, d.N * d.K}, {&sc.labels, d.N}} {
				if *b.p, err = alloc(b.n); err != nil {
					return err
				}
			}
			e.sce, e.logits = sc, s.in[0]
		}
	}
	if col > 0 {
		if e.sc.Col, err = alloc(col); err != nil {
			return err
		}
		if e.sc.T, err = alloc(col); err != nil {
			return err
		}
	}
	return nil
}

// fitsInt32 checks that a device buffer (what: "buffer", "value") of n
// elements can be indexed by the kernels, which use int32 sizes.
func fitsInt32(what string, n int) error {
	if n >= math.MaxInt32 {
		return fmt.Errorf("cuda: a %s of %d elements (the kernels index with int32 sizes): use a smaller batch", what, n)
	}
	return nil
}

func (e *Executor) get(n int) (*Buf, error) {
	if l := e.pool[n]; len(l) > 0 {
		b := l[len(l)-1]
		e.pool[n] = l[:len(l)-1]
		return b, nil
	}
	if err := fitsInt32("value", n); err != nil {
		return nil, err
	}
	b, err := e.d.Alloc(n)
	if err != nil {
		return nil, err
	}
	e.poolEls += n
	e.PeakElements = max(e.PeakElements, e.poolEls)
	return b, nil
}

func (e *Executor) put(b *Buf) {
	if b != nil {
		e.pool[b.Len()] = append(e.pool[b.Len()], b)
	}
}

// val returns node c's device value.
func (e *Executor) val(c *G.Node) (*Buf, error) {
	if c == e.input {
		return e.inBuf, nil
	}
	if c.Op() == nil {
		return e.st.buf(c.Value().(*tensor.Dense))
	}
	if b, ok := e.live[c]; ok {
		return b, nil
	}
	return nil, fmt.Errorf("cuda: value of %s is not on the device", c.Name())
}

// Run feeds input to the input node (labels, one class per loss row, may
// be nil without gradient nodes) and runs every node. The values read by
// Keep nodes (the gradients) stay on the device for Step.
func (e *Executor) Run(input []float32, labels []int) (Result, error) {
	if len(input) != e.inBuf.Len() {
		return Result{}, fmt.Errorf("cuda: %d input values, the graph's input %s holds %d", len(input), e.input.Name(), e.inBuf.Len())
	}
	sc := e.sce
	if labels != nil && len(labels) != sc.n {
		return Result{}, fmt.Errorf("cuda: %d labels for %d rows", len(labels), sc.n)
	}
	for _, l := range labels {
		if l < 0 || l >= sc.k {
			return Result{}, fmt.Errorf("cuda: label %d outside [0, %d)", l, sc.k)
		}
	}
	e.d.lock()
	defer runtime.UnlockOSThread()
	// last run's kept values go back to the pool
	for n, b := range e.live {
		e.put(b)
		delete(e.live, n)
	}
	clear(e.keep)
	if err := e.d.Upload(e.inBuf, input); err != nil {
		return Result{}, err
	}
	if labels != nil {
		l32 := make([]byte, 4*len(labels))
		for i, l := range labels {
			binary.LittleEndian.PutUint32(l32[4*i:], uint32(int32(l)))
		}
		if err := e.d.uploadBytes(sc.labels, l32); err != nil {
			return Result{}, err
		}
	}
	for i := range e.steps {
		s := &e.steps[i]
		if err := e.exec(s, labels != nil); err != nil {
			return Result{}, fmt.Errorf("cuda: node %s (%v): %w", s.n.Name(), s.n.Op(), err)
		}
		for _, n := range s.release {
			e.put(e.live[n])
			delete(e.live, n)
		}
	}
	if err := e.d.Sync(); err != nil {
		return Result{}, err
	}
	res := Result{Probs: make([]float64, sc.n*sc.k), Logits: make([]float32, sc.n*sc.k)}
	p32 := make([]float32, sc.n*sc.k)
	if err := e.d.Download(p32, sc.probs); err != nil {
		return res, err
	}
	for i, v := range p32 {
		res.Probs[i] = float64(v)
	}
	lb, err := e.val(e.logits)
	if err != nil {
		return res, err
	}
	if err := e.d.Download(res.Logits, lb); err != nil {
		return res, err
	}
	if labels != nil {
		l32 := make([]float32, 2*sc.n)
		if err := e.d.Download(l32, sc.loss); err != nil {
			return res, err
		}
		for i := 0; i < sc.n; i++ {
			res.Loss += math.Float64frombits(uint64(math.Float32bits(l32[2*i])) | uint64(math.Float32bits(l32[2*i+1]))<<32)
		}
		res.Loss /= float64(sc.n)
	}
	return res, nil
}

// exec runs one step: its output goes into e.live.
func (e *Executor) exec(s *step, haveLabels bool) error {
	in := make([]*Buf, len(s.in))
	for i, c := range s.in {
		var err error
		if in[i], err = e.val(c); err != nil {
			return err
		}
	}
	d, dv, op := s.desc, e.d, s.n.Op()
	var y *Buf
	switch d.Kind {
	case ops.KindBatchNormParam:
		// the BatchNormGrad step computed it: take it over
		pair := e.gx[d.Parent]
		if pair == nil || pair[d.Which] == nil {
			return errors.New("batch norm parameter gradient before its data gradient")
		}
		y, pair[d.Which] = pair[d.Which], nil
		e.live[s.n] = y
		return nil
	}
	if s.size > 0 {
		var err error
		if y, err = e.get(s.size); err != nil {
			return err
		}
		e.live[s.n] = y
	}
	if s.add {
		return dv.Add(s.size, in[0], in[1], y)
	}
	switch d.Kind {
	case ops.KindConv:
		return dv.ConvForward(d.Conv, in[0], in[1], y, &e.sc)
	case ops.KindConvDataGrad:
		return dv.ConvBackwardData(d.Conv, in[0], in[1], y, &e.sc)
	case ops.KindConvFilterGrad:
		return dv.ConvBackwardFilter(d.Conv, in[0], in[1], y, &e.sc)
	case ops.KindConvBN:
		return e.convBN(s, in, y)
	case ops.KindBatchNorm:
		rm, rv, err := e.running(d.BN)
		if err != nil {
			return err
		}
		if d.Train {
			return dv.BNForwardTrain(d.N, d.C, d.HW, d.BN.Eps, d.BN.Momentum, d.ReLU, in[0], in[1], in[2], y, rm, rv, e.bn[op])
		}
		return dv.BNForwardEval(d.N, d.C, d.HW, d.BN.Eps, d.ReLU, in[0], in[1], in[2], rm, rv, y, e.bn[op])
	case ops.KindBatchNormGrad:
		st := e.bn[d.Parent]
		if st == nil {
			return errors.New("batch norm backward without its forward op in the graph")
		}
		ds, err := e.get(d.C)
		if err != nil {
			return err
		}
		db, err := e.get(d.C)
		if err != nil {
			return err
		}
		if old := e.gx[op]; old != nil { // an earlier run's, never taken
			e.put(old[0])
			e.put(old[1])
		}
		e.gx[op] = &[2]*Buf{ds, db}
		// inputs: x, scale, y, dy
		return dv.BNBackward(d.N, d.C, d.HW, d.Train, d.ReLU, in[0], in[2], in[3], in[1], st, y, ds, db)
	case ops.KindMaxPool:
		p := d.Pool
		return dv.MaxPoolForward(p.NC, p.H, p.W, p.K, p.Stride, p.Pad, in[0], y, e.argmax[op])
	case ops.KindMaxPoolGrad:
		p := d.Pool
		am := e.argmax[d.Parent]
		if am == nil {
			return errors.New("max pool backward without its forward op in the graph")
		}
		return dv.MaxPoolBackward(p.NC, p.H, p.W, p.K, p.Stride, p.Pad, am, in[0], y)
	case ops.KindGlobalAvgPool:
		return dv.GlobalAvgPool(d.N, d.HW, d.Back, in[0], y)
	case ops.KindTemporalShift:
		return dv.Shift(d.N, d.Shift.T, d.C, d.HW, d.Shift.C1, d.Shift.C2, d.Back, in[0], y)
	case ops.KindAddReLU:
		return dv.AddReLU(s.size, in[0], in[1], y)
	case ops.KindReLUGrad:
		return dv.ReLUGrad(s.size, in[0], in[1], y)
	case ops.KindDropout:
		if !d.Train {
			return dv.Dropout(s.size, nil, d.P, in[0], y)
		}
		// the mask from the op's own source, as ops.Dropout draws it
		hm := e.hostMsk[op]
		for i := range hm {
			hm[i] = 0
			if d.RNG.Float64() >= d.P {
				hm[i] = 1
			}
		}
		if err := dv.uploadBytes(e.mask[op], hm); err != nil {
			return err
		}
		return dv.Dropout(s.size, e.mask[op], d.P, in[0], y)
	case ops.KindDropoutGrad:
		var m *Buf
		if d.Train {
			if m = e.mask[d.Parent]; m == nil {
				return errors.New("dropout backward without its forward op in the graph")
			}
		}
		return dv.Dropout(s.size, m, d.P, in[0], y)
	case ops.KindSegmentMean:
		return dv.SegmentMean(d.N, d.T, d.C, d.Back, in[0], y)
	case ops.KindLinear:
		return dv.Linear(d.N, d.C, d.K, in[0], in[1], in[2], y)
	case ops.KindLinearGrad:
		n, c, k := d.N, d.C, d.K
		switch d.Which {
		case 0: // (w, dy) -> dx = dy·wᵀ
			return dv.gemm(false, true, n, c, k, in[1], 0, k, 0, in[0], 0, k, 0, 0, y, 0, c, 0, 1)
		case 1: // (x, dy) -> dw = xᵀ·dy
			return dv.gemm(true, false, c, k, n, in[0], 0, c, 0, in[1], 0, k, 0, 0, y, 0, k, 0, 1)
		default: // (dy) -> db
			return dv.run1("col_sum", k, p(in[0]), p(y), i32(n), i32(k))
		}
	case ops.KindSoftmaxCE:
		sc := e.sce
		var lab *Buf
		if haveLabels {
			lab = sc.labels
		}
		return dv.SoftmaxCE(sc.n, sc.k, in[0], lab, sc.probs, sc.loss, sc.grad)
	case ops.KindSoftmaxCEGrad:
		if !haveLabels {
			return errors.New("the loss gradient needs labels")
		}
		return dv.copyBuf(y, 0, e.sce.grad, 0, s.size)
	case ops.KindKeep:
		if in[0].Len() != d.Dst.Shape().TotalSize() {
			return fmt.Errorf("keep: %d values for a destination %v", in[0].Len(), d.Dst.Shape())
		}
		e.keep[d.Dst] = in[0]
		return nil
	}
	return fmt.Errorf("op kind %q: %w", d.Kind, ErrNoKernel)
}

func (e *Executor) running(st *ops.BNState) (rm, rv *Buf, err error) {
	if rm, err = e.st.buf(st.Mean); err != nil {
		return nil, nil, err
	}
	rv, err = e.st.buf(st.Variance)
	return rm, rv, err
}

// convBN is inference's fused conv + BN (+ shift before, + shortcut and
// ReLU after): the same kernels in sequence, the BN in place.
func (e *Executor) convBN(s *step, in []*Buf, y *Buf) error {
	d, dv := s.desc, e.d
	g := d.Conv
	x := in[0]
	if sh := d.Shift; sh != nil {
		t, err := e.get(g.N * g.C * g.H * g.W)
		if err != nil {
			return err
		}
		defer e.put(t)
		if err := dv.Shift(g.N, sh.T, g.C, g.H*g.W, sh.C1, sh.C2, false, x, t); err != nil {
			return err
		}
		x = t
	}
	if err := dv.ConvForward(g, x, in[1], y, &e.sc); err != nil {
		return err
	}
	rm, rv, err := e.running(d.BN)
	if err != nil {
		return err
	}
	relu := d.ReLU && !d.Residual
	if err := dv.BNForwardEval(g.N, g.K, g.OH()*g.OW(), d.BN.Eps, relu, y, in[2], in[3], rm, rv, y, e.bn[s.n.Op()]); err != nil {
		return err
	}
	if d.Residual {
		return dv.AddReLU(s.size, y, in[4], y)
	}
	return nil
}

// DownloadKept copies the last Run's kept value of each dst (a Keep
// node's destination: a gradient) into dst on the host, so that a
// data-parallel step can sum and allreduce gradients in host memory.
func (e *Executor) DownloadKept(dsts []*tensor.Dense) error {
	return e.eachKept(dsts, func(t *tensor.Dense, b *Buf) error { return e.d.Download(t.Float32s(), b) })
}

// UploadKept copies each dst's host values into the last Run's kept
// device value: the gradient Step then applies is the host's (a
// data-parallel step's averaged gradient).
func (e *Executor) UploadKept(dsts []*tensor.Dense) error {
	return e.eachKept(dsts, func(t *tensor.Dense, b *Buf) error { return e.d.Upload(b, t.Float32s()) })
}

// eachKept calls f with each dst and its kept device value, on the
// device's thread.
func (e *Executor) eachKept(dsts []*tensor.Dense, f func(*tensor.Dense, *Buf) error) error {
	e.d.lock()
	defer runtime.UnlockOSThread()
	for _, t := range dsts {
		b, err := e.kept(t)
		if err != nil {
			return err
		}
		if err := f(t, b); err != nil {
			return err
		}
	}
	return nil
}

func (e *Executor) kept(dst *tensor.Dense) (*Buf, error) {
	b := e.keep[dst]
	if b == nil {
		return nil, fmt.Errorf("cuda: no kept value for a %v tensor: run the training graph first", dst.Shape())
	}
	if dst.Dtype() != tensor.Float32 || b.Len() != dst.Shape().TotalSize() {
		return nil, fmt.Errorf("cuda: kept value of %d elements for a %v %v tensor", b.Len(), dst.Dtype(), dst.Shape())
	}
	return b, nil
}

// Step applies opt's update rule (fluid's Momentum with L2 decay, as
// optim.Momentum.Step) to every var on the device: Value must be an input
// node's tensor of this Executor's graph and Grad a Keep destination of
// its last Run. The velocities live in the Store, starting from opt's.
func (e *Executor) Step(vars []optim.Var, opt *optim.Momentum, lr float64) error {
	e.d.lock()
	defer runtime.UnlockOSThread()
	for _, v := range vars {
		w, ok := e.st.bufs[v.Value]
		if !ok {
			return fmt.Errorf("cuda: momentum: %s is not a parameter of the graph", v.Name)
		}
		g := e.keep[v.Grad]
		if g == nil {
			return fmt.Errorf("cuda: momentum: no gradient of %s: run the training graph first", v.Name)
		}
		vel, err := e.st.velocity(v.Name, v.Value.Shape(), opt)
		if err != nil {
			return err
		}
		mult := v.LRMult
		if mult == 0 {
			mult = 1
		}
		decay := opt.L2Decay
		if v.NoDecay {
			decay = 0
		}
		if err := e.d.Momentum(w.Len(), w, g, vel, opt.Mu, decay, lr*mult); err != nil {
			return fmt.Errorf("cuda: momentum %s: %w", v.Name, err)
		}
	}
	return e.d.Sync()
}

// velocity returns name's velocity on the device: opt's if it has one of
// the right size, else zeros. Callers hold the device lock.
func (s *Store) velocity(name string, shape tensor.Shape, opt *optim.Momentum) (*Buf, error) {
	if v, ok := s.vel[name]; ok {
		return v.b, nil
	}
	n := shape.TotalSize()
	b, err := s.d.Alloc(n)
	if err != nil {
		return nil, err
	}
	if h := opt.Velocity(name); h != nil && h.Dtype() == tensor.Float32 && h.Shape().TotalSize() == n {
		err = s.d.Upload(b, h.Float32s())
	} else {
		err = s.d.zero(b, 0, n)
	}
	if err != nil {
		s.d.Free(b)
		return nil, err
	}
	s.vel[name] = &velocity{b: b, shape: shape.Clone()}
	return b, nil
}

// Close frees the Executor's device memory (not the Store's).
func (e *Executor) Close() error {
	e.d.lock()
	defer runtime.UnlockOSThread()
	e.free()
	return nil
}

func (e *Executor) free() {
	for _, b := range e.owned {
		e.d.Free(b)
	}
	e.owned = nil
	for n, b := range e.live {
		e.d.Free(b)
		delete(e.live, n)
	}
	for _, pair := range e.gx {
		e.d.Free(pair[0])
		e.d.Free(pair[1])
	}
	clear(e.gx)
	for k, l := range e.pool {
		for _, b := range l {
			e.d.Free(b)
		}
		delete(e.pool, k)
	}
	e.poolEls = 0
}
