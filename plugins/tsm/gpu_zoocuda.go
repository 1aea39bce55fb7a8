//go:build zoocuda

package tsm

import (
	"os"
	"sync"

	"github.com/zoo-ml/zoo/nn/cuda"
	"github.com/zoo-ml/zoo/nn/resnet"
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
		return cuda.OpenEmulator(dir)
	}
	devOnce.Do(func() { dev, devErr = cuda.Open(0) })
	return dev, devErr
}

func checkGPU() error {
	if _, err := openDevice(); err != nil {
		return sdk.Errorf(sdk.CodeFailedPrecondition,
			"this is the CUDA build of zoo-plugin-tsm (`make cuda`) but no GPU is usable: %v", err)
	}
	return nil
}

func newGPUModel(m *resnet.Model) (gpuModel, error) {
	d, err := openDevice()
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeFailedPrecondition, "open the GPU: %v", err)
	}
	g, err := cuda.New(d, m)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeFailedPrecondition, "put the model on the GPU: %v", err)
	}
	return g, nil
}
