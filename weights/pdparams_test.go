package weights

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// testdata/p2.pdparams and p4.pdparams are made by testdata/gen_pdparams.py
// (protocol 2 as Paddle 1.6-1.8 writes, protocol 4 as Paddle 2.x writes)
// from the real resnet50_stem values.
func TestReadPdparams(t *testing.T) {
	stem, err := ReadDir(stemDir(t), []string{"conv1_weights", "bn_conv1_scale"})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"p2.pdparams", "p4.pdparams"} {
		t.Run(file, func(t *testing.T) {
			ts, err := ReadPdparams(filepath.Join("testdata", file))
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 7 {
				t.Errorf("%d tensors, want 7 (the name map skipped): %v", len(ts), sortedKeys(ts))
			}
			for _, n := range []string{"conv1_weights", "bn_conv1_scale"} {
				if !bytes.Equal(ts[n].Data, stem[n].Data) || !slices.Equal(ts[n].Dims, stem[n].Dims) || ts[n].DType != FP32 {
					t.Errorf("%s differs from the fluid file", n)
				}
			}
			want := map[string]struct {
				dt   DType
				dims []int64
				f    []float32
			}{
				"half":       {FP16, []int64{3}, []float32{1, -2, 0.5}},
				"fortran":    {FP32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}},
				"big_endian": {FP32, []int64{2}, []float32{1.5, -3}},
				"ids":        {Int64, []int64{2, 2}, nil},
				"step":       {Int64, []int64{}, nil},
			}
			for n, w := range want {
				got := ts[n]
				if got == nil || got.DType != w.dt || !slices.Equal(got.Dims, w.dims) || got.Name != n {
					t.Errorf("%s: %+v, want %s %v", n, got, w.dt, w.dims)
					continue
				}
				if w.f != nil {
					if f, err := got.Float32s(); err != nil || !slices.Equal(f, w.f) {
						t.Errorf("%s = %v %v, want %v", n, f, err, w.f)
					}
				}
			}
			if !bytes.Equal(ts["ids"].Data[24:], []byte{0, 0, 0, 0, 0, 1, 0, 0}) {
				t.Errorf("ids[3] bytes %v, want 1<<40", ts["ids"].Data[24:])
			}
			if !bytes.Equal(ts["step"].Data, []byte{7, 0, 0, 0, 0, 0, 0, 0}) {
				t.Errorf("step %v", ts["step"].Data)
			}
			// What a pdparams holds can be written as fluid files.
			if err := WriteDir(filepath.Join(t.TempDir(), "out"), ts); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestPdparamsRefusals(t *testing.T) {
	p4, err := os.ReadFile(filepath.Join("testdata", "p4.pdparams"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []byte
		want string
	}{
		{"os.system", []byte("cos\nsystem\n(S'echo hi'\ntR."), "global os.system is not allowed"},
		{"builtins eval", []byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93."), "global builtins.eval is not allowed"},
		{"not a dict", []byte("\x80\x02]q\x00."), "top object is list, want a dict"},
		{"no stop", []byte("\x80\x02}q\x00"), "no STOP opcode"},
		{"empty", nil, "no STOP opcode"},
		{"underflow", []byte("\x80\x02s."), "stack underflow"},
		{"bad memo", []byte("\x80\x02h\x05."), "memo 5 not set"},
		{"huge bytes", []byte("\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f."), "longer than the file"},
		{"unknown opcode", []byte("\x80\x02\xff."), "unsupported pickle opcode 0xff"},
		{"split params", []byte("\x80\x02}X\x15\x00\x00\x00UnpackBigParamInfor@@}s."), "UnpackBigParamInfor@@"},
	}
	for i := 1; i < len(p4); i += 97 {
		cases = append(cases, struct {
			name string
			in   []byte
			want string
		}{"truncated", p4[:i], ""})
	}
	for _, tc := range cases {
		_, err := DecodePdparams(tc.in)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: DecodePdparams = %v, want ErrFormat with %q", tc.name, err, tc.want)
		}
	}
	if _, err := ReadPdparams(filepath.Join(dataDir(t), "paddle", "combined", "model.pdiparams")); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "model.pdiparams") {
		t.Errorf("ReadPdparams of a fluid file = %v", err)
	}
}

func FuzzPdparams(f *testing.F) {
	for _, p := range []string{"p2.pdparams", "p4.pdparams"} {
		b, err := os.ReadFile(filepath.Join("testdata", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 4000)])
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ts, err := DecodePdparams(in)
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		for n, ten := range ts {
			if err := ten.validate(); err != nil {
				t.Fatalf("%s: %v", n, err)
			}
		}
	})
}

// TestWritePdparams: what WritePdparams writes reads back the same, in
// order, with one dtype object shared by the arrays of a type (as numpy
// pickles it) and numpy's module names.
func TestWritePdparams(t *testing.T) {
	src, err := ReadPdparamsList(filepath.Join("testdata", "p4.pdparams"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.pdparams")
	if err := WritePdparams(path, src); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPdparamsList(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(src) {
		t.Fatalf("%d tensors back, want %d", len(got), len(src))
	}
	for i := range src {
		if got[i].Name != src[i].Name || got[i].DType != src[i].DType || !slices.Equal(got[i].Dims, src[i].Dims) || !bytes.Equal(got[i].Data, src[i].Data) {
			t.Errorf("tensor %d: %s %s %v, want %s %s %v", i, got[i].Name, got[i].DType, got[i].Dims, src[i].Name, src[i].DType, src[i].Dims)
		}
	}
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte("\x8c\x02f4")); n != 1 {
		t.Errorf("dtype f4 written %d times, want once (then memo gets)", n)
	}
	if !bytes.Contains(b, []byte("numpy.core.multiarray")) || b[1] != 4 {
		t.Errorf("not a protocol 4 pickle of numpy.core.multiarray._reconstruct")
	}
	if err := WritePdparams(path, []*Tensor{{Name: "b", DType: BF16, Dims: []int64{1}, Data: []byte{0, 0}}}); err == nil || !strings.Contains(err.Error(), "no numpy type") {
		t.Errorf("BF16: %v", err)
	}
}

// TestReadParams reads each of Paddle's forms.
func TestReadParams(t *testing.T) {
	combined := filepath.Join(dataDir(t), "paddle", "combined", "model.pdiparams")
	one := filepath.Join(stemDir(t), "conv1_weights")
	for _, tc := range []struct {
		name, path string
		names      []string
		form       string
		n          int
		first      string
		dims       []int64
	}{
		{"directory", stemDir(t), nil, FormDir, 55, "bn2a_branch1_mean", []int64{256}},
		{"checkpoint directory", checkpointDir(t), nil, FormDir, 1, "w", []int64{2}},
		{"one variable", one, nil, FormFile, 1, "conv1_weights", []int64{64, 3, 7, 7}},
		{"combined with names", combined, []string{"conv_w", "bn_var", "bn_mean", "bn_scale", "bn_bias"}, FormCombined, 5, "bn_bias", []int64{32}},
		{"combined without names", combined, nil, FormCombined, 5, "", []int64{32}},
		{"pdparams", filepath.Join("testdata", "p4.pdparams"), nil, FormPdparams, 7, "conv1_weights", []int64{64, 3, 7, 7}},
		{"pdparams by content", copyTo(t, filepath.Join("testdata", "p2.pdparams"), "params.bin"), nil, FormPdparams, 7, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := ReadParams(tc.path, tc.names)
			if err != nil {
				t.Fatal(err)
			}
			form, ts := ps.Form, ps.Tensors
			if form != tc.form || len(ts) != tc.n {
				t.Fatalf("%s with %d tensors, want %s with %d", form, len(ts), tc.form, tc.n)
			}
			if tc.dims != nil && (ts[0].Name != tc.first || !slices.Equal(ts[0].Dims, tc.dims)) {
				t.Errorf("first %q %v, want %q %v", ts[0].Name, ts[0].Dims, tc.first, tc.dims)
			}
		})
	}
	for _, tc := range []struct {
		name, path string
		names      []string
		want       string
	}{
		{"names for a directory", stemDir(t), []string{"a"}, "names are for a combined file"},
		{"names for a pdparams", filepath.Join("testdata", "p4.pdparams"), []string{"a"}, "names are for a combined file"},
		{"too few names", combined, []string{"a", "b"}, "trailing bytes"},
		{"missing", filepath.Join(t.TempDir(), "nope"), nil, "no such file"},
		{"empty file", copyBytes(t, nil), nil, "record 0"},
		{"not parameters", copyBytes(t, []byte("hello, world\n")), nil, "record 0"},
	} {
		if _, err := ReadParams(tc.path, tc.names); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ReadParams = %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}

func copyTo(t *testing.T, src, name string) string {
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyBytes(t *testing.T, b []byte) string {
	dst := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dst
}

// checkpointDir is a zoo checkpoint: a variable and zoo_state.json, which
// ReadParams skips.
func checkpointDir(t *testing.T) string {
	dir := t.TempDir()
	if err := WriteFile(filepath.Join(dir, "w"), NewFloat32("w", []int64{2}, []float32{1, 2})); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "zoo_state.json"), []byte(`{"epoch": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	ps, err := ReadParams(dir, nil)
	if err != nil || !slices.Equal(ps.Skipped, []string{"zoo_state.json"}) {
		t.Fatalf("ReadParams(checkpoint) skipped %v, %v; want zoo_state.json", ps, err)
	}
	return dir
}
