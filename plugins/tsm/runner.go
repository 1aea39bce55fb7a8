package tsm

import "github.com/zoo-ml/zoo/plugins/internal/classifier"

// runner is classifier.Runner: the model's graphs on the CPU or the GPU.
type runner = classifier.Runner

// runner returns what runs this session's batches. The GPU twin is made
// on first use, so that it starts from the weights Load put in the model.
func (s *session) runner() (runner, error) {
	if !s.useGPU {
		return s.model, nil
	}
	if s.gpu == nil {
		g, err := classifier.NewGPURunner("zoo-plugin-tsm", s.model)
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
