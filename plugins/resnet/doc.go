// Package resnet is zoo's ResNet plugin as a library: PaddlePaddle's
// ImageNet ResNet-18/34/50/101/152 image classifier (nn/resnet with one
// segment, no temporal shift and no dropout) with Paddle's ImageNet
// preprocessing, Paddle's parameter files and the host's generic driver,
// served over zoo's protocol by cmd/zoo-plugin-resnet.
//
// Data are "path label" lists of JPEG or PNG files (images.go); with no
// filelist the plugin uses its built-in synthetic dataset (synth.go), in
// which the orientation of stripes tells four classes apart.
//
// labels/imagenet_labels.json holds the 1000 ImageNet-1k class names in
// class-index order, the order of ResNet50_pretrained's fc_0. Source: the
// npm package @tensorflow-models/mobilenet 2.1.1 (Apache-2.0),
// dist/imagenet_classes.js, IMAGENET_CLASSES[0..999].
//
// The parameter I/O, metrics and batch padding are shared with plugins/tsm
// through plugins/internal/classifier.
package resnet
