//go:build !zoocuda

package tsm

import (
	"github.com/zoo-ml/zoo/nn/resnet"
	"github.com/zoo-ml/zoo/sdk"
)

func checkGPU() error {
	return sdk.Errorf(sdk.CodeFailedPrecondition,
		"this zoo-plugin-tsm was built for the CPU only (`make cuda` builds the CUDA one)")
}

func newGPUModel(*resnet.Model) (gpuModel, error) { return nil, checkGPU() }
