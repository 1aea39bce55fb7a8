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
