// Package ops holds the custom gorgonia operations zoo's video models are
// built from, with the exact semantics of PaddlePaddle fluid's operators:
// NCHW convolution as im2col + gemm (a plain gemm for 1x1 stride-1 convs,
// images split over GOMAXPROCS goroutines), batch normalisation (optionally
// fused with a ReLU) with running statistics kept outside gorgonia, an
// inference-only conv+BN+ReLU (also with the residual shortcut added, or
// with the TSM shift folded into a 1x1 conv), max and global average
// pooling, the TSM temporal shift, fluid's downgrade_in_infer dropout, a
// fully connected layer, softmax with cross entropy, and Keep, which copies
// a node's value (a gradient, say) out of the graph while it runs.
//
// Every op works on float32 and float64 tensors (float64 is what the
// gradient checks use). Each forward op implements gorgonia.SDOp; its
// SymDiff builds the backward pass from further custom ops of this package,
// so gorgonia.Grad differentiates a model built from them.
//
// Each op reuses its output buffer from run to run (see base.output for
// why that is safe with gorgonia's register reuse), or writes into the
// buffer a memory-planning executor gave it (PlannedOutput, nn/exec), so a
// node's Value is only meaningful during a run: read results through Keep,
// or from op state such as SoftmaxCE's. Convolutions may share one im2col
// scratch (ShareScratch). State an op needs between its forward and backward
// pass (batch statistics, pooling argmax, dropout mask) lives in the op and
// is never exposed as a Value.
//
// nn/resnet imports this package; it imports gorgonia, tensor and
// nn/internal/blas.
package ops
