//go:build !zoocuda

package classifier

import (
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/sdk"
)

// CheckGPU answers Device "gpu" at Open: this build has no GPU path.
func CheckGPU(plugin string) error {
	return sdk.Errorf(sdk.CodeFailedPrecondition,
		"this %s was built for the CPU only (`make cuda` builds the CUDA one)", plugin)
}

// NewGPURunner is CheckGPU's error in this build.
func NewGPURunner(plugin string, _ *resnet.Model) (GPURunner, error) { return nil, CheckGPU(plugin) }
