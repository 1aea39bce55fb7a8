// Package cuda runs zoo's ResNet/TSM networks (nn/resnet) on an NVIDIA GPU.
//
// It is built only with the zoocuda build tag; without it the package is
// this comment alone, so the CPU build and CI never need CUDA. (The tag is
// not "cuda": Go build tags are global, and "cuda" switches gorgonia itself
// to its own CUDA engine, which needs cuDNN 8 headers and moves our CPU
// ops' values to the GPU and back.)
//
// The GPU code talks to the CUDA driver API, NVRTC and cuBLAS through a
// thin cgo binding (driver.go): the kernels are CUDA C source strings
// (kernels.go) compiled at run time for the device present, so building
// needs only the CUDA headers and libraries, never nvcc. Convolutions are
// im2col + cuBLAS sgemm (a plain gemm for 1x1 stride-1 convs).
//
// A Model mirrors a resnet.Model: New uploads its parameters, Forward and
// TrainStep run the same network as the model's gorgonia graphs with the
// same semantics (fluid's batch norm, downgrade_in_infer dropout with the
// same mask sequence, Momentum with L2 decay), and Download copies
// parameters, running statistics and velocities back. Every kernel has a
// CPU twin in nn/ops; ops_test.go and cmd/zoo-gpucheck compare them.
package cuda
