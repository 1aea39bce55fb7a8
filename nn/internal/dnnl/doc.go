// Package dnnl is a thin cgo binding to oneDNN (Debian's libdnnl-dev
// 2.6.3), built with the build tag onednn; without it the package is
// empty and nn/ops uses its own kernels.
//
// It offers what nn/ops needs: convolution forward (with zoo's inference
// fusions as oneDNN post-ops: the batch norm's per-channel scale and
// shift, the residual add as a sum, the ReLU), backward data and backward
// weights, and max pooling, on the NCHW float32 tensors gorgonia holds.
// A primitive is created once per shape and kept by its op; inside a
// call, the tensors are reordered into the blocked layouts oneDNN's
// kernels pick (format_tag any) and back, through buffers shared by all
// primitives.
//
// Threads: Debian builds oneDNN with OpenMP (libgomp). OpenMP keeps a
// thread team per calling thread, so every call goes through one
// goroutine locked to one OS thread, whose team is set to GOMAXPROCS
// threads (the caller's thread and GOMAXPROCS-1 workers): never more
// threads computing than Go itself would use. The team's workers spin
// for a while after each call (libgomp's default, GOMP_SPINCOUNT), as
// in PyTorch.
package dnnl
