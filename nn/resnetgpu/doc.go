// Package resnetgpu runs a resnet.Model's own gorgonia graphs on an NVIDIA
// GPU through nn/cuda's graph executor: the model describes the network
// once (nn/resnet), nn/cuda runs whatever graph it is given. This package
// is the thin binding between the two (a Model with resnet.Model's
// Forward/TrainStep), and the GPU-against-CPU numerics check.
//
// It is built only with the zoocuda build tag; without it the package is
// this comment alone.
package resnetgpu
