package classifier

import (
	"testing"

	"gorgonia.org/tensor"

	"github.com/zoo-ml/zoo/nn/resnet"
)

// fakeDevice is a GPURunner whose "device" gradients are copies of its
// model's, kept apart: after Forward the model's Grad tensors hold
// garbage until DownloadGradients, and Update applies what the host put
// back in Grad. It checks the order StepOn drives a device in, in the
// CPU build (CI has no CUDA).
type fakeDevice struct {
	m         *resnet.Model
	dev       [][]float32
	downloads int
	updates   int
}

func (f *fakeDevice) Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error) {
	res, err := f.m.Forward(mode, input, labels)
	if err != nil || mode != resnet.Train {
		return res, err
	}
	f.dev = f.dev[:0]
	for _, v := range f.m.Vars() {
		g := v.Grad.Float32s()
		f.dev = append(f.dev, append([]float32(nil), g...))
		for i := range g {
			g[i] = 1e9 // not on the host until DownloadGradients
		}
	}
	return res, nil
}

func (f *fakeDevice) DownloadGradients() error {
	f.downloads++
	for i, v := range f.m.Vars() {
		copy(v.Grad.Float32s(), f.dev[i])
	}
	return nil
}

func (f *fakeDevice) Update(lr float64) error { f.updates++; return f.m.Update(lr) }

func (f *fakeDevice) TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error) {
	return f.m.TrainStep(input, labels, lr)
}
func (f *fakeDevice) SeedDropout(seed int64)         { f.m.SeedDropout(seed) }
func (f *fakeDevice) Close() error                   { return nil }
func (f *fakeDevice) Download(m *resnet.Model) error { return nil }

// TestStepOnDevice: StepOn with a device runner (gradients downloaded
// after each part into the fused host buffer, the update through the
// runner) trains exactly as Step on the CPU, for 4 micro-batches and for
// 2 ranks x 2 micro-batches.
func TestStepOnDevice(t *testing.T) {
	for _, tc := range []struct {
		name  string
		ranks int
	}{{"4 parts", 1}, {"2 ranks x 2 parts", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			parts := 4 / tc.ranks
			in, labels := tinyBatch(tinyConfig(1, tensor.Float32), 4)
			clip := len(in) / 4
			run := func(device bool) []*resnet.Model {
				pair := newPair()
				ms := make([]*resnet.Model, tc.ranks)
				errs := make(chan error, tc.ranks)
				for r := range tc.ranks {
					ms[r] = newTiny(t, 1, tensor.Float32)
					go func(r int) {
						s := &Stepper{Parts: parts}
						if tc.ranks == 2 {
							s.Comm = pair[r]
						}
						lo, hi := r*parts, (r+1)*parts
						for step := range 2 {
							var err error
							if device {
								f := &fakeDevice{m: ms[r]}
								_, err = s.StepOn(f, ms[r], in[lo*clip:hi*clip], labels[lo:hi], 0.1, int64(step))
								if err == nil && (f.downloads != parts || f.updates != 1) {
									t.Errorf("rank %d: %d downloads and %d updates for %d parts, want %d and 1", r, f.downloads, f.updates, parts, parts)
								}
							} else {
								_, err = s.Step(ms[r], in[lo*clip:hi*clip], labels[lo:hi], 0.1, int64(step))
							}
							if err != nil {
								errs <- err
								return
							}
						}
						errs <- nil
					}(r)
				}
				for range tc.ranks {
					if err := <-errs; err != nil {
						t.Fatal(err)
					}
				}
				return ms
			}
			cpu, dev := run(false), run(true)
			for _, p := range cpu[0].Params() {
				q, _ := dev[0].Param(p.Name)
				if d := relDiff(p.Value.Float32s(), q.Value.Float32s()); d != 0 {
					t.Errorf("%s differs by %g", p.Name, d)
				}
			}
		})
	}
}
