package video

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/pickle"
)

// TestReadPKL reads the same clip pickled three ways (testdata/gen.py) and
// compares the JPEG decodes with Pillow's.
func TestReadPKL(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("testdata/clip_frames.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		W, H   int
		Frames []string
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		file, id string
		label    int
	}{
		{"clip_py2.pkl", "vid_py2", 7},
		{"clip_py3p2.pkl", "vid_py3p2", 300},
		{"clip_py3p4.pkl", "vid_py3p4", 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			c, err := ReadPKL(filepath.Join("testdata", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if c.ID != tc.id || c.Label != tc.label || len(c.Frames) != len(ref.Frames) {
				t.Fatalf("clip %q label %d, %d frames; want %q %d %d", c.ID, c.Label, len(c.Frames), tc.id, tc.label, len(ref.Frames))
			}
			for i, f := range c.Frames {
				m, err := DecodeJPEG(f)
				if err != nil {
					t.Fatal(err)
				}
				want := mustB64(t, ref.Frames[i])
				if m.W != ref.W || m.H != ref.H || len(want) != len(m.Pix) {
					t.Fatalf("frame %d: %dx%d", i, m.W, m.H)
				}
				// Luma agrees; the colour differences are chroma
				// upsampling (libjpeg's fancy triangle filter against
				// image/jpeg's replication), large only at sharp chroma
				// edges such as these frames' x^y pattern.
				worst, sum := 0.0, 0.0
				for j := 0; j < len(want); j += 3 {
					d := luma(m.Pix[j:]) - luma(want[j:])
					d = max(d, -d)
					worst, sum = max(worst, d), sum+d
				}
				if mean := sum / float64(m.W*m.H); worst > 20 || mean > 0.5 {
					t.Errorf("frame %d: luma differs from Pillow's by up to %.1f, %.2f on average", i, worst, mean)
				}
			}
		})
	}
}

func luma(p []byte) float64 {
	return 0.299*float64(p[0]) + 0.587*float64(p[1]) + 0.114*float64(p[2])
}

func TestReadPKLErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, err := os.ReadFile("testdata/clip_py3p4.pkl")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"truncated.pkl":  good[:len(good)/2],
		"empty.pkl":      nil,
		"text.pkl":       []byte("not a pickle\n"),
		"global.pkl":     []byte("cos\nsystem\n(S'echo hi'\ntR."),
		"numpy.pkl":      []byte("\x80\x02cnumpy\ndtype\n."),
		"deep label.pkl": []byte("\x80\x02X\x01\x00\x00\x00v)" + strings.Repeat("\x85", 1<<20) + "]\x87."),
		"huge label.pkl": []byte("\x80\x02X\x01\x00\x00\x00v\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01]\x87."),
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadPKL(p)
			if err == nil {
				t.Fatal("no error")
			}
			if msg := err.Error(); !strings.Contains(msg, p) || strings.Contains(msg, "\n") || len(msg) > 300 {
				t.Errorf("error %q: want one line naming %s", msg, p)
			}
		})
	}
}

// FuzzPKL: no input panics the pkl reader; a clip it accepts has frames.
func FuzzPKL(f *testing.F) {
	for _, p := range []string{"clip_py2.pkl", "clip_py3p2.pkl", "clip_py3p4.pkl"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 2000)])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := pickle.Decode(in, pklGlobals)
		if err != nil {
			return
		}
		if c, err := clipFrom(v); err == nil && len(c.Frames) == 0 {
			t.Fatal("clip without frames accepted")
		}
	})
}
