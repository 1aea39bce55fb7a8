package video

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The transforms are checked against group_scale, group_multi_scale_crop,
// group_random_crop, group_random_flip, group_center_crop and
// imgs_transform in PaddlePaddle/models @ 4d7ec517db :
// PaddleCV/video/reader/kinetics_reader.py.

func TestGroupScale(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		w, h, size   int
		wantW, wantH int
		same         bool
	}{
		{340, 256, 256, 340, 256, true},  // Kinetics passes through
		{256, 340, 256, 256, 340, true},  // portrait, short side matches
		{320, 240, 256, 341, 256, false}, // int(256*4/3) = 341
		{400, 300, 256, 341, 256, false},
		{240, 320, 256, 256, 341, false}, // portrait: long side is the height
		{1920, 1080, 256, 341, 256, false},
		{300, 300, 256, 341, 256, false}, // square counts as landscape
		{256, 256, 256, 256, 256, true},
		{101, 57, 64, 85, 64, false}, // aspect ratio not kept
	} {
		in := NewImage(tc.w, tc.h)
		out := GroupScale([]*Image{in, in}, tc.size)
		for _, o := range out {
			if o.W != tc.wantW || o.H != tc.wantH {
				t.Errorf("%dx%d to %d: %dx%d, want %dx%d", tc.w, tc.h, tc.size, o.W, o.H, tc.wantW, tc.wantH)
			}
			if (o == in) != tc.same {
				t.Errorf("%dx%d to %d: returned the frame itself: %v, want %v", tc.w, tc.h, tc.size, o == in, tc.same)
			}
		}
	}
}

func TestCenterOffsetRoundsHalfToEven(t *testing.T) {
	t.Parallel()
	// Python 3: int(round((w - 224) / 2.)).
	for _, tc := range []struct{ n, size, want int }{
		{340, 224, 58},
		{341, 224, 58}, // round(58.5) = 58
		{343, 224, 60}, // round(59.5) = 60
		{345, 224, 60}, // round(60.5) = 60
		{256, 224, 16},
		{257, 224, 16}, // round(16.5) = 16
		{224, 224, 0},
	} {
		if got := CenterOffset(tc.n, tc.size); got != tc.want {
			t.Errorf("CenterOffset(%d, %d) = %d, want %d", tc.n, tc.size, got, tc.want)
		}
	}
	frames, err := GroupCenterCrop([]*Image{NewImage(341, 257)}, 224)
	if err != nil {
		t.Fatal(err)
	}
	if f := frames[0]; f.W != 224 || f.H != 224 {
		t.Errorf("center crop is %dx%d", f.W, f.H)
	}
	if _, err := GroupCenterCrop([]*Image{NewImage(223, 300)}, 224); err == nil {
		t.Error("center crop larger than the frame: no error")
	}
}

// TestMultiScaleCropBox draws many boxes for a Kinetics frame and checks
// them against group_multi_scale_crop's rules: crop sides from
// int(256*[1, .875, .75, .66]) = 256, 224, 192, 168, width and height scale
// indices at most one apart (max_distort 1), the position one of the 13
// fixed offsets in quarter steps of the slack, all pairs and offsets drawn.
func TestMultiScaleCropBox(t *testing.T) {
	t.Parallel()
	sides := []int{256, 224, 192, 168}
	pairOK := map[[2]int]bool{}
	for i := range sides {
		for j := range sides {
			if i-j <= 1 && j-i <= 1 {
				pairOK[[2]int{sides[j], sides[i]}] = true // (w, h)
			}
		}
	}
	if len(pairOK) != 10 {
		t.Fatalf("%d pairs", len(pairOK))
	}
	grid := map[[2]int]bool{
		{0, 0}: true, {4, 0}: true, {0, 4}: true, {4, 4}: true, {2, 2}: true,
		{0, 2}: true, {4, 2}: true, {2, 4}: true, {2, 0}: true,
		{1, 1}: true, {3, 1}: true, {1, 3}: true, {3, 3}: true,
	}
	for _, fr := range []struct{ w, h int }{{340, 256}, {256, 340}} {
		rng := rand.New(rand.NewPCG(3, 4))
		pairs := map[[2]int]int{}
		offs := map[[2]int]bool{}
		for d := 0; d < 20000; d++ {
			b := MultiScaleCropBox(rng, fr.w, fr.h, 256)
			cw, ch := b.X1-b.X0, b.Y1-b.Y0
			p := [2]int{int(cw), int(ch)}
			if float64(p[0]) != cw || float64(p[1]) != ch || !pairOK[p] {
				t.Fatalf("%dx%d: crop %vx%v not an allowed pair", fr.w, fr.h, cw, ch)
			}
			pairs[p]++
			ws, hs := float64(fr.w-p[0])/4, float64(fr.h-p[1])/4
			k := [2]int{-1, -1}
			for i := 0; i <= 4; i++ {
				if b.X0 == float64(i)*ws && k[0] < 0 {
					k[0] = i
				}
				if b.Y0 == float64(i)*hs && k[1] < 0 {
					k[1] = i
				}
			}
			if k[0] < 0 || k[1] < 0 {
				t.Fatalf("%dx%d: box %+v not on the quarter grid", fr.w, fr.h, b)
			}
			if ws != 0 && hs != 0 {
				if !grid[k] {
					t.Fatalf("%dx%d: box %+v at grid point %v, not one of the 13 offsets", fr.w, fr.h, b, k)
				}
				offs[k] = true
			}
		}
		if len(pairs) != 10 {
			t.Errorf("%dx%d: %d of 10 pairs drawn", fr.w, fr.h, len(pairs))
		}
		for p, c := range pairs {
			if c < 1600 || c > 2400 {
				t.Errorf("%dx%d: pair %v drawn %d times of 20000, expected about 2000", fr.w, fr.h, p, c)
			}
		}
		if len(offs) != 13 {
			t.Errorf("%dx%d: %d of 13 offsets drawn", fr.w, fr.h, len(offs))
		}
	}
	// Sides within 3 pixels of the target snap to it: int(258*.875) = 225.
	rng := rand.New(rand.NewPCG(5, 6))
	for d := 0; d < 500; d++ {
		b := MultiScaleCropBox(rng, 300, 258, 224)
		if w := b.X1 - b.X0; w == 225 {
			t.Fatalf("crop side 225 not snapped to 224")
		}
	}
}

func TestGroupRandomCrop(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	f := NewImage(230, 226)
	xs, ys := map[int]bool{}, map[int]bool{}
	for d := 0; d < 2000; d++ {
		out, err := GroupRandomCrop(rng, []*Image{f, f}, 224)
		if err != nil {
			t.Fatal(err)
		}
		// A crop is a view into f.Pix: its start gives the offset.
		off := cap(f.Pix) - cap(out[0].Pix)
		if cap(out[1].Pix) != cap(out[0].Pix) {
			t.Fatalf("frames of a clip cropped at different places")
		}
		xs[off%f.Stride/3] = true
		ys[off/f.Stride] = true
	}
	if len(xs) != 7 || !xs[0] || !xs[6] || len(ys) != 3 || !ys[0] || !ys[2] {
		t.Errorf("crop offsets x %v y %v, want 0..6 and 0..2, ends included", xs, ys)
	}
	if _, err := GroupRandomCrop(rng, []*Image{NewImage(200, 300)}, 224); err == nil {
		t.Error("random crop larger than the frame: no error")
	}
}

// TestNormalizeLayout checks imgs_transform's output: frame after frame,
// each CHW RGB, (v/255 - mean)/std in float32, mirrored when flipped.
func TestNormalizeLayout(t *testing.T) {
	t.Parallel()
	const w, h = 5, 3
	frames := []*Image{NewImage(w, h), NewImage(w, h)}
	for i, f := range frames {
		for j := range f.Pix {
			f.Pix[j] = uint8(j*7 + i*50)
		}
	}
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	for _, flip := range []bool{false, true} {
		dst := make([]float32, 2*3*w*h)
		Normalize(dst, frames, mean, std, flip)
		for i, f := range frames {
			for c := 0; c < 3; c++ {
				for y := 0; y < h; y++ {
					for x := 0; x < w; x++ {
						sx := x
						if flip {
							sx = w - 1 - x
						}
						v := f.Pix[y*f.Stride+3*sx+c]
						want := (float32(v)/255 - mean[c]) / std[c]
						got := dst[((i*3+c)*h+y)*w+x]
						if math.Abs(float64(got-want)) > 1e-6 {
							t.Fatalf("flip %v: frame %d channel %d (%d,%d) = %v, want %v", flip, i, c, x, y, got, want)
						}
					}
				}
			}
		}
	}
}

// TestTrainFlipsWholeClip transforms clips of identical frames holding a
// left-to-right ramp: every frame of a clip must come out identical (one
// crop, one flip), and over seeds both flipped and unflipped clips appear.
func TestTrainFlipsWholeClip(t *testing.T) {
	t.Parallel()
	f := NewImage(340, 256)
	for y := 0; y < f.H; y++ {
		for x := 0; x < f.W; x++ {
			i := y*f.Stride + 3*x
			f.Pix[i], f.Pix[i+1], f.Pix[i+2] = uint8(x*255/339), uint8(y), 128
		}
	}
	cfg := Config{Mode: Train, SegNum: 4, SegLen: 1, ShortSize: 256, TargetSize: 224,
		Mean: [3]float32{0.5, 0.5, 0.5}, Std: [3]float32{1, 1, 1}, BatchSize: 1,
		Decoder: &Decoder{FFmpeg: "unused"}}
	r, err := NewReader(cfg, []Item{{Path: "x.mp4", Label: 0}})
	if err != nil {
		t.Fatal(err)
	}
	flips := map[bool]int{}
	for seed := uint64(0); seed < 40; seed++ {
		data, err := r.transform(rand.New(rand.NewPCG(seed, 0)), []*Image{f, f, f, f})
		if err != nil {
			t.Fatal(err)
		}
		n := 3 * 224 * 224
		if len(data) != 4*n {
			t.Fatalf("%d values, want %d", len(data), 4*n)
		}
		for s := 1; s < 4; s++ {
			for j := 0; j < n; j++ {
				if data[s*n+j] != data[j] {
					t.Fatalf("seed %d: segment %d differs from segment 0 at %d", seed, s, j)
				}
			}
		}
		// Red channel, first row: increasing unless flipped.
		flips[data[0] > data[223]]++
	}
	if flips[true] < 8 || flips[false] < 8 {
		t.Errorf("flipped %d and unflipped %d clips of 40", flips[true], flips[false])
	}
}
