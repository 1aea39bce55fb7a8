package video

import (
	"fmt"
	"math"
)

// Image is an 8-bit RGB image, three bytes per pixel, rows Stride bytes
// apart. A crop is a view that shares Pix with the image it came from.
type Image struct {
	W, H   int
	Stride int
	Pix    []uint8
}

// NewImage returns a zeroed w x h image.
func NewImage(w, h int) *Image {
	return &Image{W: w, H: h, Stride: 3 * w, Pix: make([]uint8, 3*w*h)}
}

// At returns the RGB value at (x, y).
func (m *Image) At(x, y int) (r, g, b uint8) {
	i := y*m.Stride + 3*x
	return m.Pix[i], m.Pix[i+1], m.Pix[i+2]
}

// Crop returns the view of the w x h rectangle at (x, y). The rectangle
// must lie inside the image.
func (m *Image) Crop(x, y, w, h int) (*Image, error) {
	if x < 0 || y < 0 || w <= 0 || h <= 0 || x+w > m.W || y+h > m.H {
		return nil, fmt.Errorf("crop %dx%d at (%d,%d) outside a %dx%d image", w, h, x, y, m.W, m.H)
	}
	off := y*m.Stride + 3*x
	return &Image{W: w, H: h, Stride: m.Stride, Pix: m.Pix[off : off+(h-1)*m.Stride+3*w]}, nil
}

// cropBox crops like Pillow's Image.crop with a float box: each coordinate
// is rounded on its own with Python 3's round() (half to even), so the
// width can differ from x1-x0 by one.
func (m *Image) cropBox(x0, y0, x1, y1 float64) (*Image, error) {
	ix0, iy0 := int(math.RoundToEven(x0)), int(math.RoundToEven(y0))
	ix1, iy1 := int(math.RoundToEven(x1)), int(math.RoundToEven(y1))
	return m.Crop(ix0, iy0, ix1-ix0, iy1-iy0)
}

// Pillow's fixed-point precision for 8-bit resampling (Resample.c).
const precisionBits = 32 - 8 - 2

// resampleCoeffs is Pillow's precompute_coeffs followed by
// normalize_coeffs_8bpc for the bilinear filter (support 1) over the whole
// input: for each output pixel, the first input pixel and integer weights.
func resampleCoeffs(inSize, outSize int) (bounds []int, ksize int, kk []int32) {
	scale := float64(inSize) / float64(outSize)
	filterscale := scale
	if filterscale < 1 {
		filterscale = 1
	}
	support := 1.0 * filterscale
	ksize = int(math.Ceil(support))*2 + 1
	bounds = make([]int, 2*outSize)
	kk = make([]int32, outSize*ksize)
	k := make([]float64, ksize)
	for xx := 0; xx < outSize; xx++ {
		center := (float64(xx) + 0.5) * scale
		ss := 1.0 / filterscale
		xmin := int(center - support + 0.5)
		if xmin < 0 {
			xmin = 0
		}
		xmax := int(center + support + 0.5)
		if xmax > inSize {
			xmax = inSize
		}
		xmax -= xmin
		ww := 0.0
		for x := 0; x < xmax; x++ {
			t := (float64(x+xmin) - center + 0.5) * ss
			if t < 0 {
				t = -t
			}
			w := 0.0
			if t < 1 {
				w = 1 - t
			}
			k[x] = w
			ww += w
		}
		for x := 0; x < xmax; x++ {
			v := k[x]
			if ww != 0 {
				v /= ww
			}
			if v < 0 {
				kk[xx*ksize+x] = int32(-0.5 + v*(1<<precisionBits))
			} else {
				kk[xx*ksize+x] = int32(0.5 + v*(1<<precisionBits))
			}
		}
		bounds[2*xx], bounds[2*xx+1] = xmin, xmax
	}
	return bounds, ksize, kk
}

func clip8(v int32) uint8 {
	v >>= precisionBits
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}

// ResizeBilinear resizes like Pillow's Image.resize((w, h), Image.BILINEAR)
// on an RGB image, bit for bit: a horizontal pass over the rows the
// vertical pass needs, rounded to 8 bits, then a vertical pass. When
// downscaling the filter support widens by the scale, so it averages like
// an antialiasing filter rather than sampling two pixels. An image already
// w x h is copied unchanged, as Pillow does.
func ResizeBilinear(src *Image, w, h int) *Image {
	if w <= 0 || h <= 0 {
		panic(fmt.Sprintf("video: resize to %dx%d", w, h))
	}
	in := src
	needH := w != src.W
	needV := h != src.H
	vb, vk, vkk := resampleCoeffs(src.H, h)
	if needH {
		first := vb[0]
		last := vb[2*h-2] + vb[2*h-1]
		for i := 0; i < h; i++ {
			vb[2*i] -= first
		}
		hb, hk, hkk := resampleCoeffs(src.W, w)
		tmp := NewImage(w, last-first)
		for y := 0; y < tmp.H; y++ {
			row := src.Pix[(y+first)*src.Stride:]
			out := tmp.Pix[y*tmp.Stride:]
			for xx := 0; xx < w; xx++ {
				xmin, xmax := hb[2*xx], hb[2*xx+1]
				k := hkk[xx*hk : xx*hk+xmax]
				r, g, b := int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1)), int32(1<<(precisionBits-1))
				p := row[3*xmin:]
				for x, c := range k {
					r += int32(p[3*x]) * c
					g += int32(p[3*x+1]) * c
					b += int32(p[3*x+2]) * c
				}
				out[3*xx], out[3*xx+1], out[3*xx+2] = clip8(r), clip8(g), clip8(b)
			}
		}
		in = tmp
	}
	if !needV {
		if in == src {
			return copyImage(src)
		}
		return in
	}
	dst := NewImage(in.W, h)
	for yy := 0; yy < h; yy++ {
		ymin, ymax := vb[2*yy], vb[2*yy+1]
		k := vkk[yy*vk : yy*vk+ymax]
		out := dst.Pix[yy*dst.Stride : yy*dst.Stride+3*in.W]
		for i := range out {
			s := int32(1 << (precisionBits - 1))
			for y, c := range k {
				s += int32(in.Pix[(y+ymin)*in.Stride+i]) * c
			}
			out[i] = clip8(s)
		}
	}
	return dst
}

func copyImage(src *Image) *Image {
	dst := NewImage(src.W, src.H)
	for y := 0; y < src.H; y++ {
		copy(dst.Pix[y*dst.Stride:(y+1)*dst.Stride], src.Pix[y*src.Stride:])
	}
	return dst
}
