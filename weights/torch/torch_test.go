package torch

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/weights"
)

// The files in testdata come from testdata/gen.py (python3-torch 1.13).

func TestRead(t *testing.T) {
	t.Parallel()
	w32 := []float32{0, .25, .5, .75, 1, 1.25}
	for _, tc := range []struct {
		file, format string
		keys         []string
	}{
		{"zip.pth", "zip", []string{"epoch", "arch", "best_prec1", "state_dict"}},
		{"legacy.pth", "legacy", []string{"epoch", "arch", "best_prec1", "state_dict"}},
		{"bare.pth", "zip", nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", tc.file)
			if !IsTorch(path) {
				t.Errorf("IsTorch = false")
			}
			c, err := Read(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Format != tc.format || !reflect.DeepEqual(c.Keys, tc.keys) {
				t.Errorf("format %q keys %q, want %q %q", c.Format, c.Keys, tc.format, tc.keys)
			}
			var names []string
			got := map[string]*weights.Tensor{}
			for _, x := range c.Tensors {
				names = append(names, x.Name)
				got[x.Name] = x
			}
			if want := []string{"w32", "w16", "wbf", "n", "t", "s"}; !reflect.DeepEqual(names, want) {
				t.Fatalf("names %q, want %q", names, want)
			}
			check := func(name string, dt weights.DType, dims []int64, want []float32, tol float32) {
				x := got[name]
				if x.DType != dt || !reflect.DeepEqual(x.Dims, dims) {
					t.Errorf("%s: %s %v, want %s %v", name, x.DType, x.Dims, dt, dims)
					return
				}
				v, err := x.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if d := v[i] - want[i]; d > tol || d < -tol {
						t.Errorf("%s = %v, want %v", name, v, want)
						break
					}
				}
			}
			check("w32", weights.FP32, []int64{2, 3}, w32, 0)
			check("w16", weights.FP16, []int64{4}, []float32{0, 1. / 3, 2. / 3, 1}, 1e-3)
			check("wbf", weights.BF16, []int64{4}, []float32{0, 1. / 3, 2. / 3, 1}, 4e-3)
			check("t", weights.FP32, []int64{3, 2}, []float32{0, .75, .25, 1, .5, 1.25}, 0)
			check("s", weights.FP32, []int64{3}, []float32{.75, 1, 1.25}, 0)
			if n := got["n"]; n.DType != weights.Int64 || len(n.Dims) != 0 || string(n.Data) != "\x07\x00\x00\x00\x00\x00\x00\x00" {
				t.Errorf("n = %+v", n)
			}
		})
	}
}

// TestRefusesGlobals: a checkpoint naming os.system fails with that
// name, and nothing runs.
func TestRefusesGlobals(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"evil.pth", "evil-legacy.pth"} {
		_, err := Read(filepath.Join("testdata", f))
		if !errors.Is(err, weights.ErrFormat) || !strings.Contains(err.Error(), "posix.system is not allowed") && !strings.Contains(err.Error(), "os.system is not allowed") {
			t.Errorf("%s: %v", f, err)
		}
		if err != nil && strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error of several lines: %q", f, err)
		}
	}
}

// TestTruncated: every prefix of a checkpoint fails cleanly.
func TestTruncated(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"zip.pth", "legacy.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(b) - 1 {
			if _, err := Decode(b[:i]); err == nil {
				t.Fatalf("%s: prefix of %d bytes decoded", f, i)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, n := range []string{"zip.pth", "legacy.pth", "bare.pth", "evil.pth"} {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Decode(b)
		if err != nil {
			return
		}
		for _, x := range c.Tensors {
			if int64(len(x.Data)) != x.Numel()*int64(x.DType.Size()) {
				t.Fatalf("%s: %d bytes for %s %v", x.Name, len(x.Data), x.DType, x.Dims)
			}
		}
	})
}
