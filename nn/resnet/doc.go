// Package resnet builds PaddlePaddle's ResNet video classifiers, TSM
// (ResNet with the temporal shift module) and TSN (the same without the
// shift), as gorgonia graphs from the custom ops of nn/ops, with Paddle's
// layer order and parameter names so that Paddle's published weights
// (tsm_kinetics, ResNet50_pretrained) load by name.
//
// A Model owns its named parameters; New initialises them as fluid does,
// Build compiles a training or an evaluation graph over the same parameter
// tensors, Forward evaluates a batch and TrainStep runs forward, backward
// and a Momentum update. The graphs run on nn/exec, which plans their
// memory into one arena per model (docs/memory.md). plugins/tsm imports
// this package.
package resnet
