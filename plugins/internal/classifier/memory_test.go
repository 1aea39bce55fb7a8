package classifier

import (
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/nn/resnet"
)

// TestFootprintIsALowerBound: the parameter terms never exceed what
// nn/resnet allocates (so CheckMemory never refuses a model that fits),
// and stay close to it (so the bound means something).
func TestFootprintIsALowerBound(t *testing.T) {
	t.Parallel()
	for _, depth := range Depths {
		cfg := resnet.Config{Depth: depth, NumClasses: 10, SegNum: 1, BaseWidth: 16, BatchSize: 1, Height: 32, Width: 32}
		m, err := resnet.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var fc, backbone float64
		for _, p := range m.Params() {
			n := float64(p.Value.Size())
			if strings.HasPrefix(p.Name, "fc_0.") {
				fc += n
			} else {
				backbone += n
			}
		}
		m.Close()
		fp := EstimateFootprint(cfg, false)
		if fp.Classifier != 4*fc {
			t.Errorf("ResNet-%d: classifier %v bytes, the model has %v", depth, fp.Classifier, 4*fc)
		}
		if got := fp.Backbone / 4; got > backbone || got < 0.8*backbone {
			t.Errorf("ResNet-%d: backbone estimate %.0f parameters, the model has %.0f", depth, got, backbone)
		}
	}
}

func TestCheckMemory(t *testing.T) {
	t.Parallel()
	ok := resnet.Config{Depth: 50, NumClasses: 400, SegNum: 8, BaseWidth: 64, BatchSize: 1, Height: 224, Width: 224}
	if err := CheckMemory(ok, true, "TRAIN"); err != nil {
		t.Errorf("TSM-ResNet-50, batch 1: %v", err)
	}
	absurd := ok
	absurd.NumClasses = 99999999999
	if err := CheckMemory(absurd, true, "TRAIN"); err == nil || !strings.HasPrefix(err.Error(), "MODEL.num_classes 99999999999: the model needs at least 2.2 PiB") {
		t.Errorf("99999999999 classes: %v", err)
	}
	wide := ok
	wide.BatchSize, wide.Height, wide.Width = 64, 100000, 100000
	if err := CheckMemory(wide, false, "TEST"); err == nil || !strings.HasPrefix(err.Error(), "[TEST] batch_size 64 with target_size 100000") {
		t.Errorf("100000x100000 frames: %v", err)
	}
}
