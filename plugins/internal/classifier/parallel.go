package classifier

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/dist"
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/sdk"
)

// Stepper runs training steps data-parallel: a global batch of B clips is
// split in rank order over Comm's W ranks, and each rank's B/W clips into
// Parts micro-batches of the model's graph batch B/(W*Parts). Each part's
// forward and backward pass has batch-norm statistics of its own; the
// parts' gradients are summed into one fused buffer, summed over ranks
// (one allreduce per step), divided by W*Parts and applied in one
// Momentum update, so every rank's parameters stay equal and the model is
// the same for every W*Parts split of the batch (docs/distributed.md).
// With one rank and one part it is exactly resnet.Model.TrainStep.
type Stepper struct {
	Comm  dist.Communicator
	Parts int
	// buf32 (or buf64) [i] holds a partial sum of parts' gradients; [0]
	// ends as the rank's sum, the fused buffer the allreduce sums.
	buf32 [][]float32
	buf64 [][]float64
	// Allreduce is the time spent in the gradient allreduce, summed over
	// steps; Steps counts them.
	Allreduce time.Duration
	Steps     int
	// LastAllreduce is the last step's.
	LastAllreduce time.Duration
}

// TrainGraphBatch is a train session's graph batch: the global batch split
// over comm's ranks and parts micro-batches, whose product must divide it.
func TrainGraphBatch(comm dist.Communicator, batch, parts int) (int, error) {
	if parts < 1 {
		return 0, sdk.Errorf(sdk.CodeInvalidArgument, "TRAIN.micro_batches %d: must be at least 1", parts)
	}
	if w := comm.Size(); batch%(w*parts) != 0 {
		return 0, sdk.Errorf(sdk.CodeInvalidArgument, "TRAIN.batch_size %d is not divisible by %d ranks x TRAIN.micro_batches %d: make it a multiple of %d", batch, w, parts, w*parts)
	}
	return batch / (comm.Size() * parts), nil
}

// PartSeed is the dropout seed of part p (counted over every rank's parts
// in rank order) of the step whose seed is step: so that a part draws the
// same mask whichever rank or micro-batch computes it.
func PartSeed(step int64, part int) int64 { return StepSeed(step, 0, int64(part)+1) }

// Step trains on this rank's share of a global batch: input and labels
// hold Parts graph batches. It returns the loss averaged over every part
// of every rank, Top1/Top5 counted over the global batch, and this rank's
// probabilities.
func (s *Stepper) Step(m *resnet.Model, input []float32, labels []int, lr float64, stepSeed int64) (resnet.Result, error) {
	return s.StepOn(nil, m, input, labels, lr, stepSeed)
}

// StepOn is Step with the parts' forward and backward passes and the
// update run by g, m's graphs on the GPU (nil: m itself, on the CPU).
// The gradients cross host memory (DeviceGradients): the same fused
// buffer, tree order and allreduce as on the CPU.
func (s *Stepper) StepOn(g GPURunner, m *resnet.Model, input []float32, labels []int, lr float64, stepSeed int64) (resnet.Result, error) {
	comm, parts := s.Comm, max(s.Parts, 1)
	if comm == nil {
		comm = dist.Local{}
	}
	var r Runner = m
	if g != nil {
		r = g
	}
	if parts == 1 && comm.Size() == 1 {
		r.SeedDropout(stepSeed)
		return r.TrainStep(input, labels, lr)
	}
	gb := m.Config().BatchSize
	clip := m.Config().InputSize() / gb
	if len(labels) != parts*gb || len(input) != parts*gb*clip {
		return resnet.Result{}, fmt.Errorf("train step: %d clips for %d micro-batches of %d", len(labels), parts, gb)
	}
	var out resnet.Result
	stats := make([]float64, 3) // loss sum over parts, top1, top5
	// The parts' gradients are summed pairwise, as a binary tree over the
	// parts (levels[i]: buffer i sums 2^levels[i] parts), so that with
	// power-of-two counts the sum is the one ranks compute, each summing
	// its parts and the allreduce the ranks' sums ((g0+g1)+(g2+g3) for 4
	// parts, whether 1 process x 4, 2 ranks x 2 or, with Open MPI's
	// recursive doubling, 4 ranks x 1): a resume with another layout
	// then continues the same arithmetic (float addition is not
	// associative, and training amplifies rounding differences).
	var levels []int
	for k := range parts {
		r.SeedDropout(PartSeed(stepSeed, comm.Rank()*parts+k))
		res, err := r.Forward(resnet.Train, input[k*gb*clip:(k+1)*gb*clip], labels[k*gb:(k+1)*gb])
		if err != nil {
			return out, err
		}
		if g != nil {
			if err := g.DownloadGradients(); err != nil {
				return out, err
			}
		}
		stats[0] += res.Loss
		stats[1] += float64(res.Top1)
		stats[2] += float64(res.Top5)
		out.Probs = append(out.Probs, res.Probs...)
		if err := s.accumulate(m, len(levels)); err != nil {
			return out, err
		}
		levels = append(levels, 0)
		for n := len(levels); n >= 2 && levels[n-1] == levels[n-2]; n = len(levels) {
			s.merge(n - 2)
			levels = levels[:n-1]
			levels[n-2]++
		}
	}
	for n := len(levels); n >= 2; n-- {
		s.merge(n - 2)
	}
	t0 := time.Now()
	var err error
	if s.buf32 != nil {
		err = comm.AllreduceSum(s.buf32[0])
	} else {
		err = comm.AllreduceSum64(s.buf64[0])
	}
	if err == nil {
		err = comm.AllreduceSum64(stats)
	}
	s.LastAllreduce = time.Since(t0)
	s.Allreduce += s.LastAllreduce
	s.Steps++
	if err != nil {
		return out, fmt.Errorf("gradient allreduce: %w", err)
	}
	if err := s.store(m, 1/float64(parts*comm.Size())); err != nil {
		return out, err
	}
	out.Loss = stats[0] / float64(parts*comm.Size())
	out.Top1, out.Top5 = int(stats[1]), int(stats[2])
	if g != nil {
		return out, g.Update(lr)
	}
	return out, m.Update(lr)
}

// trainable lists the parameters with gradients, in the model's order.
func trainable(m *resnet.Model) []*resnet.Param {
	var ps []*resnet.Param
	for _, p := range m.Params() {
		if p.Trainable {
			ps = append(ps, p)
		}
	}
	return ps
}

// accumulate copies every trainable gradient into fused buffer i.
func (s *Stepper) accumulate(m *resnet.Model, i int) error {
	off := 0
	for _, p := range trainable(m) {
		if p.Grad == nil {
			return fmt.Errorf("train step: %s has no gradient", p.Name)
		}
		switch p.Grad.Dtype() {
		case tensor.Float32:
			g := p.Grad.Float32s()
			s.buf64 = nil
			s.buf32 = growBufs(s.buf32, i)
			s.buf32[i] = grow(s.buf32[i], off+len(g))
			copy(s.buf32[i][off:off+len(g)], g)
			off += len(g)
		case tensor.Float64:
			g := p.Grad.Float64s()
			s.buf32 = nil
			s.buf64 = growBufs(s.buf64, i)
			s.buf64[i] = grow(s.buf64[i], off+len(g))
			copy(s.buf64[i][off:off+len(g)], g)
			off += len(g)
		default:
			return fmt.Errorf("train step: %s has dtype %v", p.Name, p.Grad.Dtype())
		}
	}
	return nil
}

// merge adds fused buffer i+1 into buffer i.
func (s *Stepper) merge(i int) {
	if s.buf32 != nil {
		addInto(s.buf32[i], s.buf32[i+1], false)
	} else {
		addInto(s.buf64[i], s.buf64[i+1], false)
	}
}

// growBufs makes bufs hold buffer i.
func growBufs[T any](bufs [][]T, i int) [][]T {
	for len(bufs) <= i {
		bufs = append(bufs, nil)
	}
	return bufs
}

// store writes the fused buffer times scale back into the gradients.
func (s *Stepper) store(m *resnet.Model, scale float64) error {
	off := 0
	for _, p := range trainable(m) {
		switch p.Grad.Dtype() {
		case tensor.Float32:
			g := p.Grad.Float32s()
			for i, v := range s.buf32[0][off : off+len(g)] {
				g[i] = v * float32(scale)
			}
			off += len(g)
		case tensor.Float64:
			g := p.Grad.Float64s()
			for i, v := range s.buf64[0][off : off+len(g)] {
				g[i] = v * scale
			}
			off += len(g)
		}
	}
	return nil
}

func grow[T any](b []T, n int) []T {
	if cap(b) < n {
		nb := make([]T, n, max(n, 2*cap(b)))
		copy(nb, b)
		return nb
	}
	return b[:n]
}

func addInto[T float32 | float64](dst, src []T, first bool) {
	if first {
		copy(dst, src)
		return
	}
	for i, v := range src {
		dst[i] += v
	}
}

// BroadcastState copies rank 0's parameters (batch-norm statistics
// included) and Momentum velocities into every rank's model, as one
// buffer. A missing velocity counts as zeros (what Momentum starts from).
func BroadcastState(comm dist.Communicator, m *resnet.Model) error {
	if comm == nil || comm.Size() == 1 {
		return nil
	}
	var ts []*tensor.Dense
	for _, p := range m.Params() {
		ts = append(ts, p.Value)
		if !p.Trainable {
			continue
		}
		v := m.Optimizer().Velocity(p.Name)
		if v == nil {
			v = tensor.New(tensor.Of(p.Value.Dtype()), tensor.WithShape(p.Value.Shape()...))
			m.Optimizer().SetVelocity(p.Name, v)
		}
		ts = append(ts, v)
	}
	n := 0
	for _, t := range ts {
		n += len(rawBytes(t))
	}
	buf := make([]byte, 0, n)
	if comm.Rank() == 0 {
		for _, t := range ts {
			buf = append(buf, rawBytes(t)...)
		}
	} else {
		buf = buf[:n]
	}
	if err := comm.Broadcast(buf, 0); err != nil {
		return fmt.Errorf("broadcast of rank 0's parameters: %w", err)
	}
	for _, t := range ts {
		k := copy(rawBytes(t), buf)
		buf = buf[k:]
	}
	return nil
}

// rawBytes is a float32 or float64 tensor's memory as bytes.
func rawBytes(t *tensor.Dense) []byte {
	switch t.Dtype() {
	case tensor.Float32:
		f := t.Float32s()
		if len(f) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 4*len(f))
	case tensor.Float64:
		f := t.Float64s()
		if len(f) == 0 {
			return nil
		}
		return unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), 8*len(f))
	}
	panic(fmt.Sprintf("rawBytes: dtype %v", t.Dtype()))
}

// ErrStopped ends a data-parallel pass that some rank stopped: every rank
// learns it at the same step (AgreeStep), so none waits in a collective
// the others never call.
var ErrStopped = errors.New("a rank stopped the pass")

// AgreeStep is the agreement that starts each step of a data-parallel
// train pass: stop says this rank stops (interrupted, or its host gone),
// and vals (this rank's numbers, e.g. vals[rank] = its clips decoded) are
// summed over ranks in the same allreduce. It returns whether any rank
// stops, and the sums.
func AgreeStep(comm dist.Communicator, stop bool, vals []float64) (bool, []float64, error) {
	v := make([]float64, 1+len(vals))
	if stop {
		v[0] = 1
	}
	copy(v[1:], vals)
	if err := comm.AllreduceSum64(v); err != nil {
		return false, nil, fmt.Errorf("agreeing on the next step: %w", err)
	}
	return v[0] > 0, v[1:], nil
}

// Stopped ends a data-parallel train pass that some rank stopped. A rank
// whose host is gone returns that error (emitErr); one interrupted itself,
// its ctx's error (its host saves the checkpoint). The others wait up to
// StopGrace for their own interrupt (mpirun and Slurm signal every rank at
// once), so that rank 0's host saves an interrupted checkpoint, and
// otherwise fail saying why.
func Stopped(ctx context.Context, comm dist.Communicator, emitErr error) error {
	if emitErr != nil {
		return emitErr
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(StopGrace):
		return fmt.Errorf("rank %d of %d: another rank stopped training (interrupted, or its zoo exited): stopping with it", comm.Rank(), comm.Size())
	}
}

// StopGrace is how long a rank waits for its own interrupt after another
// rank stopped.
const StopGrace = 20 * time.Second

// LockstepEmit wraps a data-parallel pass's emit: an emit error (the
// host's stream is gone) is kept for the next AgreeStep instead of
// returned, so that the rank stops with the others, not alone. err
// returns the first error.
func LockstepEmit(emit func(sdk.Event) error) (wrapped func(sdk.Event) error, err func() error) {
	var first error
	return func(e sdk.Event) error {
			if first == nil {
				first = emit(e)
			}
			return nil
		}, func() error {
			return first
		}
}
