//go:build zoocuda

package resnetgpu

import (
	"errors"
	"fmt"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnet"
)

// Model runs m's graphs on a device: Forward and TrainStep match
// resnet.Model's (the same graph, the same dropout source, the same
// Momentum rule), with parameters, running statistics and velocities
// resident on the device until Download copies them back into m. Do not
// run m itself while a Model holds it. A Model is not safe for concurrent
// use.
type Model struct {
	m   *resnet.Model
	st  *cuda.Store
	ex  [2]*cuda.Executor
	res cuda.Result
}

// New prepares m for d. Load weights into m first.
func New(d *cuda.Device, m *resnet.Model) (*Model, error) {
	if c := m.Config(); c.ReverseShift && c.TemporalShift {
		return nil, errors.New("resnetgpu: ReverseShift (PyTorch's TSM conventions) runs on the CPU only")
	}
	return &Model{m: m, st: cuda.NewStore(d)}, nil
}

func (g *Model) executor(mode resnet.Mode) (*cuda.Executor, error) {
	if g.ex[mode] != nil {
		return g.ex[mode], nil
	}
	gr, in, err := g.m.Graph(mode)
	if err != nil {
		return nil, err
	}
	e, err := cuda.NewExecutor(g.st, gr, in)
	if err != nil {
		return nil, fmt.Errorf("%v graph: %w", mode, err)
	}
	g.ex[mode] = e
	return e, nil
}

// Forward runs a batch through mode's graph, as resnet.Model.Forward.
func (g *Model) Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error) {
	c := g.m.Config()
	if len(input) != c.InputSize() {
		return resnet.Result{}, fmt.Errorf("forward: %d input values, want %d", len(input), c.InputSize())
	}
	if mode == resnet.Train && labels == nil {
		return resnet.Result{}, errors.New("training needs labels")
	}
	e, err := g.executor(mode)
	if err != nil {
		return resnet.Result{}, err
	}
	r, err := e.Run(input, labels)
	if err != nil {
		return resnet.Result{}, fmt.Errorf("%v pass: %w", mode, err)
	}
	g.res = r
	res := resnet.Result{Probs: r.Probs, Loss: r.Loss}
	if labels != nil {
		res.Top1, res.Top5 = resnet.TopK(r.Probs, c.NumClasses, labels)
	}
	return res, nil
}

// TrainStep is resnet.Model.TrainStep: the training graph (forward and
// G.Grad's gradient nodes), then the model's Momentum rule on the device.
func (g *Model) TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error) {
	res, err := g.Forward(resnet.Train, input, labels)
	if err != nil {
		return res, err
	}
	return res, g.ex[resnet.Train].Step(g.m.Vars(), g.m.Optimizer(), lr)
}

// DownloadGradients copies the last training pass's gradients (left on
// the device by Forward(resnet.Train, ...)) into the model's Grad
// tensors, where resnet.Model.Forward leaves them on the CPU: a
// data-parallel step sums them in host memory.
func (g *Model) DownloadGradients() error {
	e := g.ex[resnet.Train]
	if e == nil {
		return errors.New("resnetgpu: no training pass to take gradients from")
	}
	return e.DownloadKept(g.grads())
}

// Update is resnet.Model.Update on the device: the model's Grad tensors
// (a data-parallel step's averaged gradient) go up as the last training
// pass's gradients, then the Momentum rule runs on the device.
func (g *Model) Update(lr float64) error {
	e := g.ex[resnet.Train]
	if e == nil {
		return errors.New("resnetgpu: no training pass to update from")
	}
	if err := e.UploadKept(g.grads()); err != nil {
		return err
	}
	return e.Step(g.m.Vars(), g.m.Optimizer(), lr)
}

func (g *Model) grads() []*tensor.Dense {
	var ts []*tensor.Dense
	for _, v := range g.m.Vars() {
		ts = append(ts, v.Grad)
	}
	return ts
}

// Logits returns the last pass's logits, BatchSize rows of NumClasses.
func (g *Model) Logits() []float32 { return g.res.Logits }

// SeedDropout restarts the dropout masks (the model's own source).
func (g *Model) SeedDropout(seed int64) { g.m.SeedDropout(seed) }

// Download copies parameters, running statistics and velocities back
// into m, which must be the Model's own.
func (g *Model) Download(m *resnet.Model) error {
	if m != g.m {
		return errors.New("resnetgpu: download into another model")
	}
	return g.st.Download(m.Optimizer())
}

// PeakElements is the most 4-byte elements the executors' value pools
// held at once (parameters and per-op state not counted).
func (g *Model) PeakElements() int {
	n := 0
	for _, e := range g.ex {
		if e != nil {
			n += e.PeakElements
		}
	}
	return n
}

// Close frees the device memory (the Device stays open).
func (g *Model) Close() error {
	for i, e := range g.ex {
		if e != nil {
			e.Close()
			g.ex[i] = nil
		}
	}
	g.st.Close()
	return nil
}
