package video

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The transforms below are the group_* functions of Paddle's
// kinetics_reader.py (PaddlePaddle/models @ 4d7ec517db,
// PaddleCV/video/reader/kinetics_reader.py), in imgs_transform's order:
// group_scale; for train group_multi_scale_crop (TSM only), then
// group_random_crop and group_random_flip; otherwise group_center_crop.
// Each takes the frames of one clip and treats them alike.

// GroupScale is group_scale: a frame whose short side already equals size
// is returned unchanged; otherwise the short side becomes size and the long
// side int(size*4/3), whatever the aspect ratio was (a square frame counts
// as landscape: size*4/3 wide).
func GroupScale(frames []*Image, size int) []*Image {
	out := make([]*Image, len(frames))
	long := int(float64(size) * 4.0 / 3.0)
	for i, f := range frames {
		w, h := f.W, f.H
		switch {
		case (w <= h && w == size) || (h <= w && h == size):
			out[i] = f
		case w < h:
			out[i] = ResizeBilinear(f, size, long)
		default:
			out[i] = ResizeBilinear(f, long, size)
		}
	}
	return out
}

// multiScaleScales are group_multi_scale_crop's default scales of the short
// side.
var multiScaleScales = []float64{1, .875, .75, .66}

// CropBox is a crop rectangle in Pillow's float coordinates.
type CropBox struct{ X0, Y0, X1, Y1 float64 }

// MultiScaleCropBox draws group_multi_scale_crop's crop for a w x h frame
// (fix_crop and more_fix_crop on, max_distort 1): crop sides from the
// scales of the short side, snapped to size when within 3 pixels, width and
// height scale indices at most one apart, the position one of up to 13
// fixed offsets on a grid of quarter steps. The steps are float (Python 3
// division), so the box may hold halves.
func MultiScaleCropBox(rng *rand.Rand, w, h, size int) CropBox {
	base := min(w, h)
	sizes := make([]int, len(multiScaleScales))
	for i, s := range multiScaleScales {
		c := int(float64(base) * s)
		if abs(c-size) < 3 {
			c = size
		}
		sizes[i] = c
	}
	type pair struct{ w, h int }
	var pairs []pair
	for i, ch := range sizes {
		for j, cw := range sizes {
			if abs(i-j) <= 1 {
				pairs = append(pairs, pair{cw, ch})
			}
		}
	}
	p := pairs[rng.IntN(len(pairs))]
	ws := float64(w-p.w) / 4
	hs := float64(h-p.h) / 4
	offs := [][2]float64{{0, 0}}
	if ws != 0 {
		offs = append(offs, [2]float64{4 * ws, 0})
	}
	if hs != 0 {
		offs = append(offs, [2]float64{0, 4 * hs})
	}
	if hs != 0 && ws != 0 {
		offs = append(offs, [2]float64{4 * ws, 4 * hs})
	}
	if hs != 0 || ws != 0 {
		offs = append(offs, [2]float64{2 * ws, 2 * hs})
	}
	offs = append(offs,
		[2]float64{0, 2 * hs}, [2]float64{4 * ws, 2 * hs},
		[2]float64{2 * ws, 4 * hs}, [2]float64{2 * ws, 0},
		[2]float64{ws, hs}, [2]float64{3 * ws, hs},
		[2]float64{ws, 3 * hs}, [2]float64{3 * ws, 3 * hs})
	o := offs[rng.IntN(len(offs))]
	return CropBox{o[0], o[1], o[0] + float64(p.w), o[1] + float64(p.h)}
}

// GroupMultiScaleCrop is group_multi_scale_crop as TSM calls it: one box
// for the clip, then each crop resized to size x size (bilinear).
func GroupMultiScaleCrop(rng *rand.Rand, frames []*Image, size int) ([]*Image, error) {
	b := MultiScaleCropBox(rng, frames[0].W, frames[0].H, size)
	out := make([]*Image, len(frames))
	for i, f := range frames {
		c, err := f.cropBox(b.X0, b.Y0, b.X1, b.Y1)
		if err != nil {
			return nil, fmt.Errorf("multi-scale crop: %w", err)
		}
		out[i] = ResizeBilinear(c, size, size)
	}
	return out, nil
}

// GroupRandomCrop is group_random_crop: x then y drawn like Python's
// random.randint(0, w - size), inclusive.
func GroupRandomCrop(rng *rand.Rand, frames []*Image, size int) ([]*Image, error) {
	w, h := frames[0].W, frames[0].H
	if w < size || h < size {
		return nil, fmt.Errorf("random crop %d from a %dx%d frame: frame smaller than crop", size, w, h)
	}
	x := randint(rng, 0, w-size)
	y := randint(rng, 0, h-size)
	return cropAll(frames, x, y, size)
}

// CenterOffset is group_center_crop's offset: int(round((n - size) / 2.)),
// Python 3's round, half to even: a 341-wide frame cropped to 224 starts at
// 58 (round(58.5) = 58), not 59.
func CenterOffset(n, size int) int {
	return int(math.RoundToEven(float64(n-size) / 2))
}

// GroupCenterCrop is group_center_crop.
func GroupCenterCrop(frames []*Image, size int) ([]*Image, error) {
	w, h := frames[0].W, frames[0].H
	if w < size || h < size {
		return nil, fmt.Errorf("center crop %d from a %dx%d frame: frame smaller than crop", size, w, h)
	}
	return cropAll(frames, CenterOffset(w, size), CenterOffset(h, size), size)
}

func cropAll(frames []*Image, x, y, size int) ([]*Image, error) {
	out := make([]*Image, len(frames))
	for i, f := range frames {
		c, err := f.Crop(x, y, size, size)
		if err != nil {
			return nil, err
		}
		out[i] = c
	}
	return out, nil
}

// FlipDraw is group_random_flip's draw: flip when random() < 0.5.
func FlipDraw(rng *rand.Rand) bool { return rng.Float64() < 0.5 }

// Normalize writes frames (all size x size) to dst as float32 CHW RGB, one
// frame after the other, each value v/255 minus mean divided by std, and
// mirrors every frame left to right when flip is set. dst must hold
// len(frames)*3*size*size values; read as [seg_num, 3*seglen, H, W] it is
// Paddle's layout.
func Normalize(dst []float32, frames []*Image, mean, std [3]float32, flip bool) {
	var lut [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			// Paddle divides in float32 numpy arrays: (v/255 - mean) / std.
			lut[c][v] = (float32(v)/255 - mean[c]) / std[c]
		}
	}
	for i, f := range frames {
		plane := f.W * f.H
		base := dst[i*3*plane : (i+1)*3*plane]
		r, g, b := base[:plane], base[plane:2*plane], base[2*plane:]
		for y := 0; y < f.H; y++ {
			row := f.Pix[y*f.Stride : y*f.Stride+3*f.W]
			o := y * f.W
			for x := 0; x < f.W; x++ {
				sx := x
				if flip {
					sx = f.W - 1 - x
				}
				p := row[3*sx : 3*sx+3]
				r[o+x] = lut[0][p[0]]
				g[o+x] = lut[1][p[1]]
				b[o+x] = lut[2][p[2]]
			}
		}
	}
}

// randint is Python's random.randint(a, b): a <= n <= b.
func randint(rng *rand.Rand, a, b int) int { return a + rng.IntN(b-a+1) }

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
