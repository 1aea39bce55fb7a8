//go:build zoocuda

package classifier

import (
	"os"
	"sync"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/nn/resnetgpu"
	"github.com/zoo-ml/zoo/sdk"
)

var (
	devOnce sync.Once
	dev     *cuda.Device
	devErr  error
)

// openDevice opens GPU 0 once per process. With ZOO_CUDA_EMULATOR set to
// a folder it opens nn/cuda's CPU emulator of the kernels there instead,
// which is how the GPU path is tested without a GPU (slow: tests only).
func openDevice() (*cuda.Device, error) {
	if dir := os.Getenv("ZOO_CUDA_EMULATOR"); dir != "" {
		// a folder of this process's own: the ranks of an mpirun share
		// the environment, and each compiles the kernels
		sub, err := os.MkdirTemp(dir, "emu-")
		if err != nil {
			return nil, err
		}
		d, err := cuda.OpenEmulator(sub)
		if err == nil {
			d.SetEmulatorBlock(4)
		}
		return d, err
	}
	devOnce.Do(func() { dev, devErr = cuda.Open(0) })
	return dev, devErr
}

// CheckGPU answers Device "gpu" at Open: an error unless a GPU is usable.
func CheckGPU(plugin string) error {
	if _, err := openDevice(); err != nil {
		return sdk.Errorf(sdk.CodeFailedPrecondition,
			"this is the CUDA build of %s (`make cuda`) but no GPU is usable: %v", plugin, err)
	}
	return nil
}

// NewGPURunner runs m's graphs on the GPU, from the weights m holds now.
func NewGPURunner(plugin string, m *resnet.Model) (GPURunner, error) {
	d, err := openDevice()
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeFailedPrecondition, "%s: open the GPU: %v", plugin, err)
	}
	g, err := resnetgpu.New(d, m)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeFailedPrecondition, "%s: put the model on the GPU: %v", plugin, err)
	}
	return g, nil
}
