package tsm

import "github.com/zoo-ml/zoo/nn/resnet"

// runner runs batches: *resnet.Model's graphs on the CPU or, in the CUDA
// build (gpu_zoocuda.go) with Device "gpu", its twin on the GPU.
type runner interface {
	Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error)
	TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error)
	// SeedDropout restarts the dropout masks: each train step seeds its
	// own (classifier.StepSeed), so that resume is exact.
	SeedDropout(seed int64)
	Close() error
}

// gpuModel is a runner holding its own copy of the parameters, which
// Download copies back into the resnet.Model (for Save and Load).
type gpuModel interface {
	runner
	Download(m *resnet.Model) error
}

var _ runner = (*resnet.Model)(nil)

// runner returns what runs this session's batches. The GPU twin is made
// on first use, so that it starts from the weights Load put in the model.
func (s *session) runner() (runner, error) {
	if !s.useGPU {
		return s.model, nil
	}
	if s.gpu == nil {
		g, err := newGPUModel(s.model)
		if err != nil {
			return nil, err
		}
		s.gpu = g
	}
	return s.gpu, nil
}

// syncFromGPU copies the GPU twin's parameters and velocities back into
// the model; with drop, it also releases the twin (Load changes the
// model's parameters, so the next Run makes a new one).
func (s *session) syncFromGPU(drop bool) error {
	if s.gpu == nil {
		return nil
	}
	err := s.gpu.Download(s.model)
	if drop {
		if cerr := s.gpu.Close(); err == nil {
			err = cerr
		}
		s.gpu = nil
	}
	return err
}
