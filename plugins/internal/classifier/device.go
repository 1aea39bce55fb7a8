package classifier

import "github.com/zoo-ml/zoo/nn/resnet"

// Runner runs batches: a *resnet.Model's graphs on the CPU (its tape
// machine) or, in the CUDA build (device_zoocuda.go) with Device "gpu",
// the same graphs on the GPU through nn/cuda's executor. Every plugin
// that wraps a resnet.Model picks its device here (CheckGPU at Open,
// NewGPURunner on first use).
type Runner interface {
	Forward(mode resnet.Mode, input []float32, labels []int) (resnet.Result, error)
	TrainStep(input []float32, labels []int, lr float64) (resnet.Result, error)
	// SeedDropout restarts the dropout masks: each train step seeds its
	// own (StepSeed), so that resume is exact.
	SeedDropout(seed int64)
	Close() error
}

// GPURunner is a Runner holding the parameters, running statistics and
// velocities on the GPU; Download copies them back into the resnet.Model
// (for Save, and before Load changes them).
type GPURunner interface {
	Runner
	Download(m *resnet.Model) error
}

var _ Runner = (*resnet.Model)(nil)
