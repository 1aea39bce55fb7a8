// Package cuda executes gorgonia graphs on an NVIDIA GPU: the graphs zoo's
// models build (nn/resnet), with no model of its own.
//
// It is built only with the zoocuda build tag; without it the package is
// this comment alone, so the CPU build and CI never need CUDA. (The tag is
// not "cuda": Go build tags are global, and "cuda" switches gorgonia itself
// to its own CUDA engine, which needs cuDNN 8 headers and moves our CPU
// ops' values to the GPU and back.)
//
// An Executor walks a graph in topological order (gorgonia's Sort) and
// runs each op node's kernel on device-resident values: zoo's ops
// (recognised through nn/ops.Describe) and gorgonia's elementwise + (the
// gradient sums G.Grad adds); an op without a kernel is an error naming
// it. Parameters, batch-norm running statistics and Momentum velocities
// live in a Store shared by a model's graphs; intermediate values come
// from a pool and go back to it after their last reader. Step applies
// nn/optim's Momentum rule to the gradients the graph's Keep nodes read.
//
// The GPU code talks to the CUDA driver API, NVRTC and cuBLAS through a
// thin cgo binding (driver.go): the kernels are CUDA C source strings
// (kernels.go) compiled at run time for the device present, so building
// needs only the CUDA headers and libraries, never nvcc. Convolutions are
// im2col + cuBLAS sgemm (a plain gemm for 1x1 stride-1 convs). Every
// kernel has a CPU twin in nn/ops (ops_test.go); OpenEmulator runs the
// kernels on the CPU, for machines without a GPU. docs/gpu.md has the
// design and what was checked.
package cuda
