package main_test

import (
	"testing"
)

// TestResNetUseGPU: the ResNet plugin takes --use_gpu through the same
// device choice as TSM (plugins/internal/classifier): on this CPU-only
// build it is the same one-line refusal naming the plugin and `make
// cuda`, before any step. (Before, the ResNet plugin answered "runs on
// the CPU only" and had no GPU build at all.)
func TestResNetUseGPU(t *testing.T) {
	t.Parallel()
	r := zoo(t, nil, "run", "ResNet", "train", "--epoch", "1", "--use_gpu", "--save_dir", t.TempDir(), "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_images=8")
	oneLineError(t, r, 1, "--use_gpu: this zoo-plugin-resnet was built for the CPU only (`make cuda` builds the CUDA one); drop --use_gpu to run on the CPU")
}
