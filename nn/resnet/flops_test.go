package resnet

import (
	"math"
	"testing"
)

func TestFLOPs(t *testing.T) {
	t.Parallel()
	// ResNet-50 at 224x224 is 4.09e9 multiply-adds per image in its
	// convolutions and fc (He et al. quote 3.8e9, counting without the
	// projection shortcuts' full cost; torchvision/fvcore count 4.09e9).
	const r50MACs = 4.089e9
	for _, tc := range []struct {
		name         string
		cfg          Config
		forward      float64 // per clip
		trainOverFwd float64 // approximate
	}{
		{"tsm-r50 8x224", Config{Depth: 50, NumClasses: 1000, BatchSize: 1, Height: 224, Width: 224}, 8 * 2 * r50MACs, 3},
		{"one frame", Config{Depth: 50, NumClasses: 1000, SegNum: 1, BatchSize: 4, Height: 224, Width: 224}, 2 * r50MACs, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fwd, train := tc.cfg.FLOPs()
			if math.Abs(float64(fwd)/tc.forward-1) > 0.005 {
				t.Errorf("forward FLOPs %.4g, want %.4g", float64(fwd), tc.forward)
			}
			// everything is computed three times except the stem's data gradient
			if r := float64(train) / float64(fwd); r >= tc.trainOverFwd || r < tc.trainOverFwd-0.1 {
				t.Errorf("train/forward FLOPs %.3f, want just under %v", r, tc.trainOverFwd)
			}
		})
	}
}
