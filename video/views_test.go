package video

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
)

func TestMultiClipIndices(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		n, seg, k int
		want      []int
	}{
		// one clip is Paddle's centre rule
		{80, 8, 1, []int{4, 14, 24, 34, 44, 54, 64, 74}},
		// avg 20, K 2: offsets 0 and 10, plus (20//2 - 1)//2 = 4
		{80, 4, 2, []int{4, 24, 44, 64, 14, 34, 54, 74}},
		// avg 20, K 10 (dense 8x10 style): offsets 0, 2, ..., 18 plus 0
		{40, 2, 10, []int{0, 20, 2, 22, 4, 24, 6, 26, 8, 28, 10, 30, 12, 32, 14, 34, 16, 36, 18, 38}},
		// avg 2 < K 3: (2//3 - 1)//2 = -1, the first index wraps
		{8, 4, 3, []int{7, 1, 3, 5, 7, 1, 3, 5, 0, 2, 4, 6}},
		// fewer frames than segments: Paddle's i
		{3, 4, 2, []int{0, 1, 2, 0, 0, 1, 2, 0}},
	} {
		if got := MultiClipIndices(tc.n, tc.seg, 1, tc.k); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MultiClipIndices(%d, %d, 1, %d) = %v, want %v", tc.n, tc.seg, tc.k, got, tc.want)
		}
	}
	for n := 1; n < 200; n++ {
		if got, want := MultiClipIndices(n, 8, 1, 1), SampleIndices(Test, n, 8, 1, nil); !slices.Equal(got, want) {
			t.Fatalf("n %d: one clip %v, Paddle's %v", n, got, want)
		}
	}
}

func TestCropOffsets(t *testing.T) {
	t.Parallel()
	got, err := CropOffsets(341, 256, 224, 3)
	if want := [][2]int{{0, 16}, {58, 16}, {117, 16}}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("landscape: %v %v, want %v", got, err, want)
	}
	got, _ = CropOffsets(256, 341, 224, 3)
	if want := [][2]int{{16, 0}, {16, 58}, {16, 117}}; !reflect.DeepEqual(got, want) {
		t.Errorf("portrait: %v, want %v", got, want)
	}
	if _, err := CropOffsets(341, 256, 224, 2); err == nil {
		t.Errorf("2 crops accepted")
	}
}

// TestMultiViewSample: a 2-clip, 3-crop sample of a real video holds six
// views from the formula's frames; with one clip, the centre view equals
// what the one-view reader makes.
func TestMultiViewSample(t *testing.T) {
	t.Parallel()
	path := filepath.Join(shareddata.Dir(t), "videos", "archery.avi")
	cfg := Config{Mode: Test, SegNum: 4, SegLen: 1, ShortSize: 64, TargetSize: 56, Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{0.25, 0.25, 0.25}, BatchSize: 1}
	items := []Item{{Path: path, Label: 5, Where: path}}
	load := func(clips, crops int) *Sample {
		t.Helper()
		c := cfg
		c.NumClips, c.NumCrops = clips, crops
		r, err := NewReader(c, items)
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Load(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(s.Data) != r.SampleLen() {
			t.Fatalf("%d values, SampleLen %d", len(s.Data), r.SampleLen())
		}
		return s
	}
	one, three, six := load(1, 1), load(1, 3), load(2, 3)
	view := len(one.Data)
	if len(six.Data) != 6*view {
		t.Fatalf("%d values, want 6 views of %d", len(six.Data), view)
	}
	// archery.avi: 131 frames, avg 32: clip 0 starts at (16-1)//2 = 7,
	// clip 1 at 16 + 7.
	if want := []int{7, 39, 71, 103, 23, 55, 87, 119}; !slices.Equal(six.Indices, want) {
		t.Errorf("indices %v, want %v", six.Indices, want)
	}
	if !slices.Equal(three.Data[view:2*view], one.Data) {
		t.Errorf("the centre view differs from the one-view sample")
	}
	if slices.Equal(three.Data[:view], three.Data[view:2*view]) {
		t.Errorf("the start crop equals the centre crop")
	}
}
