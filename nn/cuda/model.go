//go:build zoocuda

package cuda

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"runtime"
	"sort"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/ops"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// Model runs a resnet.Model's network on the GPU, parameters, gradients,
// velocities and activations resident in device memory. It is the GPU
// twin of the model's two gorgonia graphs: Forward in Eval mode matches
// resnet.Model.Forward(Eval) and TrainStep matches resnet.Model.TrainStep,
// including the dropout masks (drawn on the host from the same sequence a
// fresh resnet.Model draws). A Model is not safe for concurrent use.
type Model struct {
	d      backend
	cfg    resnet.Config
	lay    resnet.Layout
	params []*resnet.Param
	val    map[string]*Buf // every parameter, running statistics included
	grad   map[string]*Buf // trainable ones
	vel    map[string]*Buf
	rng    *rand.Rand
	sc     Scratch
	pool   pool

	input    *Buf
	stem     *unit
	mpOut    *Buf
	argmax   *Buf
	blocks   []*block
	feat     *Buf // [NT, F] after the global average pool
	featD    *Buf // after dropout
	mask     *Buf // dropout mask, bytes
	pooled   *Buf // [N, F] after the segment mean
	logits   *Buf
	probs    *Buf
	losses   *Buf // N float64s
	labels   *Buf // N int32s
	dlog     *Buf
	hostMask []byte
	hw0      [2]int // maxpool input H, W
}

type unit struct {
	u        resnet.ConvUnit
	g        ops.ConvGeom
	in       *Buf // not owned
	conv, bn *Buf // conv output, BN output
	st       BNStats
}

type block struct {
	b       resnet.Block
	in      *Buf // not owned: the previous block's output
	shifted *Buf // nil without the temporal shift
	convs   []*unit
	short   *unit
	out     *Buf
	c, hw   int
}

// New uploads m's parameters, running statistics and Momentum velocities
// to the device d. Load weights into m before calling it.
func New(d *Device, m *resnet.Model) (*Model, error) { return newModel(d, m) }

func newModel(d backend, m *resnet.Model) (_ *Model, err error) {
	d.lock()
	defer runtime.UnlockOSThread()
	cfg := m.Config()
	if cfg.Dtype != tensor.Float32 {
		return nil, fmt.Errorf("cuda model: dtype %v, only float32 runs on the GPU", cfg.Dtype)
	}
	g := &Model{d: d, cfg: cfg, lay: m.Layout(), params: m.Params(), val: map[string]*Buf{}, grad: map[string]*Buf{}, vel: map[string]*Buf{},
		rng: rand.New(rand.NewSource(cfg.Seed + 1)), pool: pool{d: d}}
	defer func() {
		if err != nil {
			g.free()
		}
	}()
	for _, p := range g.params {
		n := p.Value.Shape().TotalSize()
		if g.val[p.Name], err = g.alloc(n); err != nil {
			return nil, err
		}
		if err := d.Upload(g.val[p.Name], p.Value.Float32s()); err != nil {
			return nil, err
		}
		if !p.Trainable {
			continue
		}
		if g.grad[p.Name], err = g.alloc(n); err != nil {
			return nil, err
		}
		if g.vel[p.Name], err = g.alloc(n); err != nil {
			return nil, err
		}
		// a resumed model's velocities come along; a fresh one's are zero
		if v := m.Optimizer().Velocity(p.Name); v != nil && v.Dtype() == tensor.Float32 && v.Shape().TotalSize() == n {
			err = d.Upload(g.vel[p.Name], v.Float32s())
		} else {
			err = d.zero(g.vel[p.Name], 0, n)
		}
		if err != nil {
			return nil, err
		}
	}
	return g, g.layout()
}

func (g *Model) alloc(n int) (*Buf, error) {
	if n >= math.MaxInt32 {
		return nil, fmt.Errorf("cuda model: a buffer of %d elements (the kernels index with int32 sizes): use a smaller batch", n)
	}
	b, err := g.d.Alloc(n)
	if err == nil {
		g.pool.owned = append(g.pool.owned, b)
	}
	return b, err
}

// layout allocates the activations and the scratch buffers.
func (g *Model) layout() (err error) {
	c := g.cfg
	nt := c.BatchSize * c.SegNum
	if g.input, err = g.alloc(nt * 3 * c.Height * c.Width); err != nil {
		return err
	}
	maxAct, col := 0, 0
	newUnit := func(u resnet.ConvUnit, in *Buf, h, w int) (*unit, error) {
		cg := ops.ConvGeom{N: nt, C: u.Cin, H: h, W: w, K: u.Cout, R: u.K, S: u.K, Stride: u.Stride, Pad: u.Pad}
		n := nt * u.Cout * cg.OH() * cg.OW()
		maxAct = max(maxAct, n, nt*u.Cin*h*w)
		per := max(cg.C*cg.R*cg.S*cg.OH()*cg.OW(), cg.C*h*w, cg.K*cg.OH()*cg.OW())
		col = max(col, chunk(cg)*per)
		x := &unit{u: u, g: cg, in: in}
		var err error
		for _, b := range []**Buf{&x.conv, &x.bn} {
			if *b, err = g.alloc(n); err != nil {
				return nil, err
			}
		}
		for _, b := range []**Buf{&x.st.Mean, &x.st.Invstd, &x.st.A, &x.st.B} {
			if *b, err = g.alloc(u.Cout); err != nil {
				return nil, err
			}
		}
		return x, nil
	}
	if g.stem, err = newUnit(g.lay.Stem, g.input, c.Height, c.Width); err != nil {
		return err
	}
	h, w := g.stem.g.OH(), g.stem.g.OW()
	g.hw0 = [2]int{h, w}
	h, w = (h+2-3)/2+1, (w+2-3)/2+1
	ch := g.lay.Stem.Cout
	if g.mpOut, err = g.alloc(nt * ch * h * w); err != nil {
		return err
	}
	if g.argmax, err = g.alloc(nt * ch * h * w); err != nil {
		return err
	}
	prev := g.mpOut
	for _, b := range g.lay.Blocks {
		bl := &block{b: b, in: prev, c: ch, hw: h * w}
		x := prev
		if c.TemporalShift {
			if bl.shifted, err = g.alloc(nt * ch * h * w); err != nil {
				return err
			}
			x = bl.shifted
		}
		bh, bw := h, w
		for _, u := range b.Convs {
			un, err := newUnit(u, x, bh, bw)
			if err != nil {
				return err
			}
			bl.convs = append(bl.convs, un)
			x, bh, bw = un.bn, un.g.OH(), un.g.OW()
		}
		if b.Short != nil {
			if bl.short, err = newUnit(*b.Short, prev, h, w); err != nil {
				return err
			}
		}
		last := bl.convs[len(bl.convs)-1]
		if bl.out, err = g.alloc(nt * last.u.Cout * bh * bw); err != nil {
			return err
		}
		g.blocks = append(g.blocks, bl)
		prev, h, w, ch = bl.out, bh, bw, last.u.Cout
	}
	f, n, k := g.lay.Features, c.BatchSize, c.NumClasses
	for _, b := range []struct {
		p **Buf
		n int
	}{{&g.feat, nt * f}, {&g.featD, nt * f}, {&g.mask, (nt*f + 3) / 4}, {&g.pooled, n * f}, {&g.logits, n * k}, {&g.probs, n * k},
		{&g.losses, 2 * n}, {&g.labels, n}, {&g.dlog, n * k}, {&g.sc.Col, col}, {&g.sc.T, col}} {
		if *b.p, err = g.alloc(max(b.n, 1)); err != nil {
			return err
		}
	}
	g.pool.size = maxAct
	return nil
}

// SeedDropout restarts the dropout mask sequence, as resnet.Model's does.
func (g *Model) SeedDropout(seed int64) { g.rng.Seed(seed) }

// Forward runs a batch (as resnet.Model.Forward) and returns its result.
// In Train mode it also leaves the gradients for Step.
func (g *Model) Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error) {
	g.d.lock()
	defer runtime.UnlockOSThread()
	return g.forward(mode, input, labels, mode == resnet.Train)
}

// TrainStep is resnet.Model.TrainStep on the GPU: forward, backward and
// one Momentum step with learning rate lr.
func (g *Model) TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error) {
	g.d.lock()
	defer runtime.UnlockOSThread()
	res, err := g.forward(resnet.Train, input, labels, true)
	if err != nil {
		return res, err
	}
	return res, g.step(lr)
}

func (g *Model) forward(mode resnet.Mode, input []float32, labels []int, backward bool) (resnet.Result, error) {
	c, d := g.cfg, g.d
	train := mode == resnet.Train
	if len(input) != c.InputSize() {
		return resnet.Result{}, fmt.Errorf("forward: %d input values, want %d", len(input), c.InputSize())
	}
	if labels != nil && len(labels) != c.BatchSize {
		return resnet.Result{}, fmt.Errorf("%d labels for %d clips", len(labels), c.BatchSize)
	}
	if train && labels == nil {
		return resnet.Result{}, errors.New("training needs labels")
	}
	for _, l := range labels {
		if l < 0 || l >= c.NumClasses {
			return resnet.Result{}, fmt.Errorf("label %d outside [0, %d)", l, c.NumClasses)
		}
	}
	if err := d.Upload(g.input, input); err != nil {
		return resnet.Result{}, err
	}
	nt := c.BatchSize * c.SegNum
	if err := g.unitForward(g.stem, train); err != nil {
		return resnet.Result{}, err
	}
	if err := d.MaxPoolForward(nt*g.lay.Stem.Cout, g.hw0[0], g.hw0[1], 3, 2, 1, g.stem.bn, g.mpOut, g.argmax); err != nil {
		return resnet.Result{}, err
	}
	for _, b := range g.blocks {
		if b.shifted != nil {
			c1, c2 := shiftChannels(b.c, c.ShiftRatio)
			if err := d.Shift(nt, c.SegNum, b.c, b.hw, c1, c2, false, b.in, b.shifted); err != nil {
				return resnet.Result{}, err
			}
		}
		for _, u := range b.convs {
			if err := g.unitForward(u, train); err != nil {
				return resnet.Result{}, err
			}
		}
		short := b.in
		if b.short != nil {
			if err := g.unitForward(b.short, train); err != nil {
				return resnet.Result{}, err
			}
			short = b.short.bn
		}
		last := b.convs[len(b.convs)-1]
		if err := d.AddReLU(b.out.Len(), last.bn, short, b.out); err != nil {
			return resnet.Result{}, err
		}
	}
	lastB := g.blocks[len(g.blocks)-1]
	f, n, k := g.lay.Features, c.BatchSize, c.NumClasses
	if err := d.GlobalAvgPool(nt*f, lastB.out.Len()/(nt*f), false, lastB.out, g.feat); err != nil {
		return resnet.Result{}, err
	}
	feat := g.feat
	if !c.NoDropout {
		var mask *Buf
		if train {
			if g.hostMask == nil {
				g.hostMask = make([]byte, nt*f)
			}
			for i := range g.hostMask {
				g.hostMask[i] = 0
				if g.rng.Float64() >= resnet.DropoutProb {
					g.hostMask[i] = 1
				}
			}
			if err := d.uploadBytes(g.mask, g.hostMask); err != nil {
				return resnet.Result{}, err
			}
			mask = g.mask
		}
		if err := d.Dropout(nt*f, mask, resnet.DropoutProb, g.feat, g.featD); err != nil {
			return resnet.Result{}, err
		}
		feat = g.featD
	}
	if err := d.SegmentMean(n, c.SegNum, f, false, feat, g.pooled); err != nil {
		return resnet.Result{}, err
	}
	if err := d.Linear(n, f, k, g.pooled, g.val["fc_0.w_0"], g.val["fc_0.b_0"], g.logits); err != nil {
		return resnet.Result{}, err
	}
	var lab *Buf
	if labels != nil {
		l32 := make([]byte, 4*n)
		for i, l := range labels {
			binary.LittleEndian.PutUint32(l32[4*i:], uint32(int32(l)))
		}
		if err := d.uploadBytes(g.labels, l32); err != nil {
			return resnet.Result{}, err
		}
		lab = g.labels
	}
	if err := d.SoftmaxCE(n, k, g.logits, lab, g.probs, g.losses, g.dlog); err != nil {
		return resnet.Result{}, err
	}
	if backward {
		if err := g.backward(feat); err != nil {
			return resnet.Result{}, err
		}
	}
	probs32 := make([]float32, n*k)
	if err := d.Download(probs32, g.probs); err != nil {
		return resnet.Result{}, err
	}
	l32 := make([]float32, 2*n)
	if err := d.Download(l32, g.losses); err != nil {
		return resnet.Result{}, err
	}
	res := resnet.Result{Probs: make([]float64, n*k)}
	for i, v := range probs32 {
		res.Probs[i] = float64(v)
	}
	if labels != nil {
		for i := 0; i < n; i++ {
			res.Loss += math.Float64frombits(uint64(math.Float32bits(l32[2*i])) | uint64(math.Float32bits(l32[2*i+1]))<<32)
		}
		res.Loss /= float64(n)
		res.Top1, res.Top5 = topK(res.Probs, k, labels)
	}
	return res, nil
}

// shiftChannels is ops.TemporalShift's split: c1 = int(C*ratio),
// c2 = int(C*2*ratio).
func shiftChannels(c int, ratio float64) (int, int) {
	return int(float64(c) * ratio), int(float64(c) * 2 * ratio)
}

func (g *Model) unitForward(u *unit, train bool) error {
	d, nt := g.d, u.g.N
	if err := d.ConvForward(u.g, u.in, g.val[u.u.Name+"_weights"], u.conv, &g.sc); err != nil {
		return fmt.Errorf("%s: %w", u.u.Name, err)
	}
	bn := u.u.BN
	hw := u.g.OH() * u.g.OW()
	if train {
		return d.BNForwardTrain(nt, u.u.Cout, hw, resnet.BNEpsilon, resnet.BNMomentum, u.u.ReLU, u.conv, g.val[bn+"_scale"], g.val[bn+"_offset"],
			u.bn, g.val[bn+"_mean"], g.val[bn+"_variance"], &u.st)
	}
	return d.BNForwardEval(nt, u.u.Cout, hw, resnet.BNEpsilon, u.u.ReLU, u.conv, g.val[bn+"_scale"], g.val[bn+"_offset"],
		g.val[bn+"_mean"], g.val[bn+"_variance"], u.bn, &u.st)
}

// backward computes every trainable parameter's gradient from dlog.
func (g *Model) backward(feat *Buf) error {
	c, d := g.cfg, g.d
	nt, f, n, k := c.BatchSize*c.SegNum, g.lay.Features, c.BatchSize, c.NumClasses
	dPooled, err := g.pool.get()
	if err != nil {
		return err
	}
	if err := d.LinearBackward(n, f, k, g.pooled, g.val["fc_0.w_0"], g.dlog, dPooled, g.grad["fc_0.w_0"], g.grad["fc_0.b_0"]); err != nil {
		return err
	}
	dFeat, err := g.pool.get()
	if err != nil {
		return err
	}
	if err := d.SegmentMean(n, c.SegNum, f, true, dPooled, dFeat); err != nil {
		return err
	}
	if !c.NoDropout {
		if err := d.Dropout(nt*f, g.mask, resnet.DropoutProb, dFeat, dFeat); err != nil {
			return err
		}
	}
	lastB := g.blocks[len(g.blocks)-1]
	dOut := dPooled // reuse: dPooled is dead
	if err := d.GlobalAvgPool(nt*f, lastB.out.Len()/(nt*f), true, dFeat, dOut); err != nil {
		return err
	}
	g.pool.put(dFeat)
	for i := len(g.blocks) - 1; i >= 0; i-- {
		b := g.blocks[i]
		if err := d.ReLUGrad(b.out.Len(), b.out, dOut, dOut); err != nil {
			return err
		}
		dy := dOut
		for j := len(b.convs) - 1; j >= 0; j-- {
			dx, err := g.unitBackward(b.convs[j], dy, true)
			if err != nil {
				return err
			}
			if dy != dOut {
				g.pool.put(dy)
			}
			dy = dx
		}
		dIn := dy
		if b.shifted != nil {
			if dIn, err = g.pool.get(); err != nil {
				return err
			}
			c1, c2 := shiftChannels(b.c, c.ShiftRatio)
			if err := d.Shift(nt, c.SegNum, b.c, b.hw, c1, c2, true, dy, dIn); err != nil {
				return err
			}
			g.pool.put(dy)
		}
		dShort := dOut
		if b.short != nil {
			if dShort, err = g.unitBackward(b.short, dOut, true); err != nil {
				return err
			}
			g.pool.put(dOut)
		}
		if err := d.Add(nt*b.c*b.hw, dIn, dShort, dIn); err != nil {
			return err
		}
		g.pool.put(dShort)
		dOut = dIn
	}
	dStem, err := g.pool.get()
	if err != nil {
		return err
	}
	if err := d.MaxPoolBackward(nt*g.lay.Stem.Cout, g.hw0[0], g.hw0[1], 3, 2, 1, g.argmax, dOut, dStem); err != nil {
		return err
	}
	g.pool.put(dOut)
	if _, err := g.unitBackward(g.stem, dStem, false); err != nil {
		return err
	}
	g.pool.put(dStem)
	return nil
}

// unitBackward takes the gradient of u's output and returns that of its
// input (from the pool; nil when dataGrad is false), filling the unit's
// parameter gradients.
func (g *Model) unitBackward(u *unit, dy *Buf, dataGrad bool) (*Buf, error) {
	d := g.d
	bn := u.u.BN
	dConv, err := g.pool.get()
	if err != nil {
		return nil, err
	}
	defer g.pool.put(dConv)
	if err := d.BNBackward(u.g.N, u.u.Cout, u.g.OH()*u.g.OW(), true, u.u.ReLU, u.conv, u.bn, dy, g.val[bn+"_scale"], &u.st,
		dConv, g.grad[bn+"_scale"], g.grad[bn+"_offset"]); err != nil {
		return nil, fmt.Errorf("%s: %w", bn, err)
	}
	if err := d.ConvBackwardFilter(u.g, u.in, dConv, g.grad[u.u.Name+"_weights"], &g.sc); err != nil {
		return nil, fmt.Errorf("%s: %w", u.u.Name, err)
	}
	if !dataGrad {
		return nil, nil
	}
	dx, err := g.pool.get()
	if err != nil {
		return nil, err
	}
	if err := d.ConvBackwardData(u.g, g.val[u.u.Name+"_weights"], dConv, dx, &g.sc); err != nil {
		return nil, fmt.Errorf("%s: %w", u.u.Name, err)
	}
	return dx, nil
}

// step is optim.Momentum.Step over every trainable parameter.
func (g *Model) step(lr float64) error {
	for _, p := range g.params {
		if !p.Trainable {
			continue
		}
		mult := p.LRMult
		if mult == 0 {
			mult = 1
		}
		decay := resnet.L2Decay
		if p.NoDecay {
			decay = 0
		}
		if err := g.d.Momentum(g.val[p.Name].Len(), g.val[p.Name], g.grad[p.Name], g.vel[p.Name], resnet.Momentum, decay, lr*mult); err != nil {
			return fmt.Errorf("momentum %s: %w", p.Name, err)
		}
	}
	return g.d.Sync()
}

// Logits downloads the last forward pass's logits, BatchSize rows of
// NumClasses.
func (g *Model) Logits() ([]float32, error) {
	g.d.lock()
	defer runtime.UnlockOSThread()
	out := make([]float32, g.cfg.BatchSize*g.cfg.NumClasses)
	return out, g.d.Download(out, g.logits)
}

// Param downloads the named parameter (running statistics included).
func (g *Model) Param(name string) ([]float32, error) {
	b, ok := g.val[name]
	if !ok {
		return nil, fmt.Errorf("parameter %q: %w", name, resnet.ErrUnknownParam)
	}
	g.d.lock()
	defer runtime.UnlockOSThread()
	out := make([]float32, b.Len())
	return out, g.d.Download(out, b)
}

// Download copies every parameter back into the resnet.Model it came
// from (for checkpoints), and the velocities into its optimizer.
func (g *Model) Download(m *resnet.Model) error {
	for _, p := range m.Params() {
		v, err := g.Param(p.Name)
		if err != nil {
			return err
		}
		if err := m.SetParam(p.Name, p.Shape, v); err != nil {
			return err
		}
		if vb, ok := g.vel[p.Name]; ok {
			t := tensor.New(tensor.Of(tensor.Float32), tensor.WithShape(p.Shape...))
			g.d.lock()
			err := g.d.Download(t.Float32s(), vb)
			runtime.UnlockOSThread()
			if err != nil {
				return err
			}
			m.Optimizer().SetVelocity(p.Name, t)
		}
	}
	return nil
}

// Close frees the model's device memory (the Device stays open).
func (g *Model) Close() error {
	g.d.lock()
	defer runtime.UnlockOSThread()
	g.free()
	return nil
}

func (g *Model) free() {
	for _, b := range g.pool.owned {
		g.d.Free(b)
	}
	g.pool.owned = nil
	for _, b := range g.pool.free {
		g.d.Free(b)
	}
	g.pool.free = nil
}

// pool hands out gradient buffers of the largest activation's size: the
// backward pass needs only a few at a time.
type pool struct {
	d     backend
	size  int
	free  []*Buf
	owned []*Buf // everything else the model allocated
}

func (p *pool) get() (*Buf, error) {
	if n := len(p.free); n > 0 {
		b := p.free[n-1]
		p.free = p.free[:n-1]
		return b, nil
	}
	return p.d.Alloc(p.size)
}

func (p *pool) put(b *Buf) {
	if b != nil {
		p.free = append(p.free, b)
	}
}

// topK is resnet's: rows whose label ranks first, and within five.
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
