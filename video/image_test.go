package video

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// pilFixture is testdata/pil_resize.json, written by testdata/gen.py with
// Pillow 9.4.0: a pseudo-random 37x23 RGB image and what Image.resize
// (BILINEAR) and Image.crop with float boxes make of it.
type pilFixture struct {
	Pillow string
	Src    struct {
		W, H int
		Pix  string
	}
	Cases []struct {
		Op     string
		W, H   int
		Box    []float64
		CW, CH int
		Pix    string
	}
}

func readPILFixture(t *testing.T) (*pilFixture, *Image) {
	t.Helper()
	b, err := os.ReadFile("testdata/pil_resize.json")
	if err != nil {
		t.Fatal(err)
	}
	var f pilFixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	src := &Image{W: f.Src.W, H: f.Src.H, Stride: 3 * f.Src.W, Pix: mustB64(t, f.Src.Pix)}
	if len(src.Pix) != 3*src.W*src.H || len(f.Cases) == 0 {
		t.Fatalf("bad fixture: %d bytes for %dx%d, %d cases", len(src.Pix), src.W, src.H, len(f.Cases))
	}
	return &f, src
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestResizeMatchesPillow checks ResizeBilinear and cropBox bit for bit
// against Pillow: up- and downscaling on each axis, identity, and float
// crop boxes whose halves round to even.
func TestResizeMatchesPillow(t *testing.T) {
	t.Parallel()
	f, src := readPILFixture(t)
	for _, c := range f.Cases {
		name := fmt.Sprintf("%s_%dx%d_%v", c.Op, c.W, c.H, c.Box)
		t.Run(name, func(t *testing.T) {
			in := src
			if c.Op == "crop_resize" {
				var err error
				in, err = src.cropBox(c.Box[0], c.Box[1], c.Box[2], c.Box[3])
				if err != nil {
					t.Fatal(err)
				}
				if in.W != c.CW || in.H != c.CH {
					t.Fatalf("crop %v is %dx%d, Pillow's %dx%d", c.Box, in.W, in.H, c.CW, c.CH)
				}
			}
			got := ResizeBilinear(in, c.W, c.H)
			want := mustB64(t, c.Pix)
			if got.W != c.W || got.H != c.H || !bytes.Equal(got.Pix, want) {
				diff := 0
				for i := range min(len(got.Pix), len(want)) {
					if got.Pix[i] != want[i] {
						diff++
					}
				}
				t.Errorf("%dx%d differs from Pillow's in %d of %d bytes", got.W, got.H, diff, len(want))
			}
		})
	}
}

func TestCropOutside(t *testing.T) {
	t.Parallel()
	m := NewImage(10, 8)
	for _, r := range [][4]int{{-1, 0, 5, 5}, {6, 0, 5, 5}, {0, 4, 5, 5}, {0, 0, 0, 5}} {
		if _, err := m.Crop(r[0], r[1], r[2], r[3]); err == nil {
			t.Errorf("Crop%v of a 10x8 image: no error", r)
		}
	}
	c, err := m.Crop(2, 3, 8, 5)
	if err != nil {
		t.Fatal(err)
	}
	m.Pix[3*m.W*3+3*2] = 9
	if r, _, _ := c.At(0, 0); r != 9 {
		t.Errorf("a crop does not share the pixels of its image")
	}
}
