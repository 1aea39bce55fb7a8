// Package tsm is zoo's TSM plugin as a library: PaddlePaddle's Temporal
// Shift Module video classifier (nn/resnet with the shift) with Paddle's
// config keys, Paddle's reader (video/) and Paddle's parameter files
// (weights/), served over zoo's protocol by cmd/zoo-plugin-tsm.
//
// With no filelist the plugin uses its built-in synthetic dataset (synth.go),
// on which only temporal order tells the classes apart.
//
// labels/kinetics_labels.json is the Kinetics-400 class list as Paddle's
// video zoo ships it (PaddlePaddle/models PaddleCV/video/data/dataset,
// copied from ../shared/data/labels).
package tsm
