package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestStemRoundTripByteIdentical(t *testing.T) {
	dir := stemDir(t)
	names, err := ListDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 55 {
		t.Fatalf("ListDir(%s): %d variables, want 55", dir, len(names))
	}
	out := t.TempDir()
	for _, name := range names {
		path := filepath.Join(dir, name)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ten, err := ReadFile(path)
		if err != nil {
			t.Fatalf("ReadFile: %v", err)
		}
		if ten.Name != name || ten.DType != FP32 || len(ten.LoD) != 0 {
			t.Errorf("%s: name %q dtype %s lod %v", name, ten.Name, ten.DType, ten.LoD)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, ten); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(buf.Bytes(), raw) {
			t.Errorf("%s: Encode differs from the Paddle file (%d vs %d bytes)", name, buf.Len(), len(raw))
		}
		if err := WriteFile(filepath.Join(out, name), ten); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, raw) {
			t.Errorf("%s: WriteFile differs from the Paddle file", name)
		}
	}
	// No temporary files are left behind.
	ents, _ := os.ReadDir(out)
	if len(ents) != len(names) {
		t.Errorf("%d entries in the output dir, want %d", len(ents), len(names))
	}
}

func TestStemShapesAndValues(t *testing.T) {
	ts, err := ReadDir(stemDir(t), []string{"conv1_weights", "bn_conv1_variance", "res2a_branch2b_weights", "res2a_branch1_weights"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int64{
		"conv1_weights":          {64, 3, 7, 7},
		"bn_conv1_variance":      {64},
		"res2a_branch2b_weights": {64, 64, 3, 3},
		"res2a_branch1_weights":  {256, 64, 1, 1},
	}
	for n, d := range want {
		if !slices.Equal(ts[n].Dims, d) {
			t.Errorf("%s: dims %v, want %v", n, ts[n].Dims, d)
		}
	}
	v, err := ts["bn_conv1_variance"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range v {
		if !(x > 0) || math.IsInf(float64(x), 0) {
			t.Fatalf("bn_conv1_variance[%d] = %v, want a positive finite variance", i, x)
		}
	}
	// The first weight, read from the file's bytes directly.
	raw, _ := os.ReadFile(filepath.Join(stemDir(t), "conv1_weights"))
	w, _ := ts["conv1_weights"].Float32s()
	if first := math.Float32frombits(binary.LittleEndian.Uint32(raw[len(raw)-4*64*3*7*7:])); w[0] != first {
		t.Errorf("conv1_weights[0] = %v, want %v", w[0], first)
	}
}

func TestWriteDirReadDir(t *testing.T) {
	src, err := ReadDir(stemDir(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "TSM_epoch1")
	for range 2 { // the second write replaces the first
		if err := WriteDir(dst, src); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadDir(dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, src) {
		t.Error("ReadDir(WriteDir(x)) != x")
	}
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Errorf("%d entries beside the written dir, want 1 (no temp dirs left)", len(ents))
	}
	// A failing write leaves the previous directory intact.
	bad := map[string]*Tensor{"ok": NewFloat32("ok", []int64{1}, []float32{1}), "bad": {Name: "bad", DType: FP32, Dims: []int64{2}, Data: []byte{1}}}
	if err := WriteDir(dst, bad); err == nil {
		t.Fatal("WriteDir with a bad tensor: no error")
	}
	if err := WriteDir(dst, map[string]*Tensor{"../x": NewFloat32("x", []int64{1}, []float32{1})}); err == nil {
		t.Fatal("WriteDir with name ../x: no error")
	}
	if names, _ := ListDir(dst); len(names) != 55 {
		t.Errorf("after failed writes %d variables, want 55", len(names))
	}
}

func TestCombined(t *testing.T) {
	path := filepath.Join(dataDir(t), "paddle", "combined", "model.pdiparams")
	// Given in any order: records are matched in sorted order.
	names := []string{"conv_w", "bn_var", "bn_mean", "bn_scale", "bn_bias"}
	ts, err := ReadCombined(path, names)
	if err != nil {
		t.Fatal(err)
	}
	sorted := slices.Sorted(slices.Values(names))
	wantDims := [][]int64{{32}, {32}, {32}, {32}, {32, 3, 3, 3}}
	for i, n := range sorted {
		if !slices.Equal(ts[n].Dims, wantDims[i]) || ts[n].DType != FP32 || ts[n].Name != n {
			t.Errorf("record %d %s: %s %v, want FP32 %v", i, n, ts[n].DType, ts[n].Dims, wantDims[i])
		}
	}
	// The names Paddle gives a conv + batch norm: sorted, the four BN
	// vectors come first and the conv last, as in the file.
	alpha := []string{"conv2d_0.w_0", "batch_norm_0.b_0", "batch_norm_0.w_0", "batch_norm_0.w_1", "batch_norm_0.w_2"}
	ts, err = ReadCombined(path, alpha)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ts["conv2d_0.w_0"].Dims, []int64{32, 3, 3, 3}) || !slices.Equal(ts["batch_norm_0.b_0"].Dims, []int64{32}) {
		t.Errorf("dims conv %v bn %v, want [32 3 3 3] and [32]", ts["conv2d_0.w_0"].Dims, ts["batch_norm_0.b_0"].Dims)
	}
	variance, err := ts["batch_norm_0.w_2"].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range variance {
		if !(v > 0) {
			t.Errorf("batch_norm_0.w_2[%d] = %v: the BN variance (last vector) should be positive", i, v)
		}
	}
	out := filepath.Join(t.TempDir(), "x.pdiparams")
	if err := WriteCombined(out, ts); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	got, _ := os.ReadFile(out)
	if !bytes.Equal(raw, got) {
		t.Error("WriteCombined(ReadCombined(f)) is not byte-identical")
	}
	for _, tc := range []struct {
		names []string
		want  string
	}{
		{alpha[:4], "trailing bytes after 4 records"},
		{append(slices.Clone(alpha), "zz"), `5 records, want 6 (ends before "zz")`},
		{[]string{"a", "a", "b", "c", "d"}, `"a" listed twice`},
	} {
		_, err := ReadCombined(path, tc.names)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("ReadCombined(%v) = %v, want an error naming the file and %q", tc.names, err, tc.want)
		}
	}
}

func TestOldLayoutRejected(t *testing.T) {
	for _, name := range []string{"fc_0.w_0", "fc_0.b_0"} {
		path := filepath.Join(dataDir(t), "paddle", "old_layout", name)
		_, err := ReadFile(path)
		if !errors.Is(err, ErrFormat) {
			t.Fatalf("ReadFile(%s) = %v, want ErrFormat", name, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "not a fluid LoDTensor file") || !strings.Contains(msg, "pre-1.0 layout") || !strings.Contains(msg, path) || strings.Contains(msg, "\n") {
			t.Errorf("ReadFile(%s) error %q: want one line naming the file and the pre-1.0 layout", name, msg)
		}
		if _, err := Check(filepath.Dir(path), map[string]Spec{name: {FP32, []int64{2, 1}}}); !errors.Is(err, ErrFormat) {
			t.Errorf("Check on old layout = %v, want ErrFormat", err)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	good := record{desc: desc(5, 2, 3), data: make([]byte, 24)}
	packed := append([]byte{0x08, 0x05, 0x12, 0x02}, 2, 3)
	unknown := append(desc(5, 2, 3), 0x1a, 0x02, 'h', 'i', 0x20, 0x07, 0x2d, 1, 2, 3, 4, 0x31, 1, 2, 3, 4, 5, 6, 7, 8)
	cases := []struct {
		name string
		in   []byte
		want string // "" means success
		dims []int64
	}{
		{"good", good.bytes(), "", []int64{2, 3}},
		{"lod", record{lod: [][]uint64{{0, 2}}, desc: desc(5, 2, 3), data: make([]byte, 24)}.bytes(), "", []int64{2, 3}},
		{"packed dims", record{desc: packed, data: make([]byte, 24)}.bytes(), "", []int64{2, 3}},
		{"unknown fields skipped", record{desc: unknown, data: make([]byte, 24)}.bytes(), "", []int64{2, 3}},
		{"0-D", record{desc: desc(3), data: make([]byte, 8)}.bytes(), "", []int64{}},
		{"zero dim", record{desc: desc(5, 0, 1<<40)}.bytes(), "", []int64{0, 1 << 40}},
		{"empty", nil, "truncated lodtensor version", nil},
		{"lod version", record{lodVersion: 1, desc: desc(5, 1), data: make([]byte, 4)}.bytes(), "not a fluid LoDTensor file (version 1", nil},
		{"tensor version", record{tenVersion: 2, desc: desc(5, 1), data: make([]byte, 4)}.bytes(), "unsupported tensor version 2", nil},
		{"absurd lod levels", record{lodLevels: ptr(uint64(1 << 40)), desc: desc(5, 1)}.bytes(), "lod level 1099511627776 above 32", nil},
		{"lod level bytes beyond file", append(binary.LittleEndian.AppendUint64(make([]byte, 12)[:4:4], 1), binary.LittleEndian.AppendUint64(nil, 1<<60)...), "truncated lod level 0", nil},
		{"lod level not multiple of 8", append(binary.LittleEndian.AppendUint64(make([]byte, 4), 1), binary.LittleEndian.AppendUint64(nil, 7)...), "not a multiple of 8", nil},
		{"desc size 0", record{descSize: ptr(int32(0))}.bytes(), "tensor desc size 0", nil},
		{"desc size negative", record{descSize: ptr(int32(-5)), desc: desc(5, 1)}.bytes(), "tensor desc size -5", nil},
		{"desc size huge", record{descSize: ptr(int32(1 << 30)), desc: desc(5, 1)}.bytes(), "tensor desc size 1073741824", nil},
		{"desc beyond file", record{descSize: ptr(int32(100)), desc: desc(5, 1)}.bytes(), "truncated tensor desc", nil},
		{"unknown dtype", record{desc: desc(7, 1), data: make([]byte, 4)}.bytes(), "unsupported data type 7", nil},
		{"dtype beyond int32", record{desc: desc(1<<33+5, 1), data: make([]byte, 4)}.bytes(), "unsupported data type", nil},
		{"no dtype", record{desc: []byte{0x10, 0x01}, data: make([]byte, 4)}.bytes(), "no data_type", nil},
		{"negative dim", record{desc: desc(5, -1)}.bytes(), "negative dim", nil},
		{"overflow", record{desc: desc(5, 1<<32, 1<<32, 1<<32)}.bytes(), "more than 2147483648 elements", nil},
		{"over cap", record{desc: desc(5, 1<<31+1)}.bytes(), "more than 2147483648 elements", nil},
		{"rank 10", record{desc: desc(5, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1), data: make([]byte, 4)}.bytes(), "rank above 9", nil},
		{"data beyond file", record{desc: desc(5, 1000, 1000), data: make([]byte, 16)}.bytes(), "truncated data: FP32 [1000 1000] needs 4000000 bytes, 16 left", nil},
		{"bad varint", record{desc: []byte{0x08, 0x85}}.bytes(), "bad data_type varint", nil},
		{"bad packed length", record{desc: []byte{0x08, 0x05, 0x12, 0x09, 0x01}}.bytes(), "bad packed dims length", nil},
		{"group wire type", record{desc: append(desc(5, 1), 0x1b)}.bytes(), "unsupported wire type 3", nil},
		{"field 0", record{desc: []byte{0x00, 0x05}}.bytes(), "field number 0", nil},
		{"dtype wrong wire type", record{desc: []byte{0x0d, 5, 0, 0, 0}, data: make([]byte, 4)}.bytes(), "no data_type", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ten, err := Decode(bytes.NewReader(tc.in), int64(len(tc.in)))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if !slices.Equal(ten.Dims, tc.dims) {
					t.Errorf("dims %v, want %v", ten.Dims, tc.dims)
				}
				return
			}
			if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Decode = %v, want ErrFormat containing %q", err, tc.want)
			}
			// With a lying limit (a stream of unknown length), still an error.
			if _, err := Decode(bytes.NewReader(tc.in), 1<<62); err == nil {
				t.Fatalf("Decode with limit 1<<62: no error")
			}
		})
	}
}

// Every strict prefix of a valid record (with and without LoD) is an
// error, never a panic, both as a file and as a stream.
func TestTruncatedAtEveryOffset(t *testing.T) {
	recs := [][]byte{
		record{desc: desc(5, 2, 3), data: seq(24)}.bytes(),
		record{lod: [][]uint64{{0, 1, 3}, {0, 2}}, desc: desc(6, 3), data: seq(24)}.bytes(),
	}
	dir := t.TempDir()
	for ri, rec := range recs {
		for i := range len(rec) {
			p := rec[:i]
			if _, err := Decode(bytes.NewReader(p), int64(len(p))); !errors.Is(err, ErrFormat) {
				t.Fatalf("record %d cut at %d: Decode = %v, want ErrFormat", ri, i, err)
			}
			if _, err := Decode(bytes.NewReader(p), int64(len(rec))); !errors.Is(err, ErrFormat) {
				t.Fatalf("record %d cut at %d, stream: Decode = %v, want ErrFormat", ri, i, err)
			}
			path := filepath.Join(dir, "v")
			if err := os.WriteFile(path, p, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadFile(path); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), path) {
				t.Fatalf("record %d cut at %d: ReadFile = %v, want ErrFormat naming the file", ri, i, err)
			}
		}
		ten, err := Decode(bytes.NewReader(rec), int64(len(rec)))
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, ten); err != nil || !bytes.Equal(buf.Bytes(), rec) {
			t.Errorf("record %d: Encode(Decode(x)) != x (err %v)", ri, err)
		}
	}
}

func seq(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestReadFileTrailingBytes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w")
	rec := record{desc: desc(5, 2), data: make([]byte, 8)}.bytes()
	if err := os.WriteFile(path, append(rec, 0), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := ReadFile(path)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "1 trailing bytes after the record") {
		t.Errorf("ReadFile = %v, want trailing bytes error", err)
	}
	if _, err := Check(filepath.Dir(path), map[string]Spec{"w": {FP32, []int64{2}}}); !errors.Is(err, ErrFormat) {
		t.Errorf("Check = %v, want ErrFormat", err)
	}
	if _, err := ReadFile(filepath.Dir(path)); err == nil {
		t.Error("ReadFile(a directory): no error")
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReadFile(missing) = %v, want ErrNotExist", err)
	}
}

func TestEncodeRefusesInconsistentTensors(t *testing.T) {
	for _, ten := range []*Tensor{
		{Name: "a", DType: FP32, Dims: []int64{2}, Data: make([]byte, 4)},
		{Name: "b", DType: DType(7), Dims: []int64{1}, Data: make([]byte, 4)},
		{Name: "c", DType: FP32, Dims: []int64{-1}},
	} {
		if err := Encode(&bytes.Buffer{}, ten); err == nil || !strings.Contains(err.Error(), ten.Name) {
			t.Errorf("Encode(%s) = %v, want an error naming it", ten.Name, err)
		}
		if err := WriteFile(filepath.Join(t.TempDir(), ten.Name), ten); err == nil {
			t.Errorf("WriteFile(%s): no error", ten.Name)
		}
	}
}

func TestFloat32s(t *testing.T) {
	le16 := func(v ...uint16) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint16(b, x)
		}
		return b
	}
	f64 := func(v ...float64) []byte {
		var b []byte
		for _, x := range v {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
		}
		return b
	}
	inf := float32(math.Inf(1))
	cases := []struct {
		name string
		ten  Tensor
		want []float32
	}{
		{"fp32", *NewFloat32("x", []int64{2}, []float32{1.5, -2}), []float32{1.5, -2}},
		// 1, -2, 65504 (max), 2^-24 (smallest subnormal), 2^-14 (smallest normal), +Inf, -0
		{"fp16", Tensor{DType: FP16, Dims: []int64{7}, Data: le16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0x8000)},
			[]float32{1, -2, 65504, float32(math.Ldexp(1, -24)), float32(math.Ldexp(1, -14)), inf, float32(math.Copysign(0, -1))}},
		{"fp16 subnormal", Tensor{DType: FP16, Dims: []int64{1}, Data: le16(0x0203)}, []float32{float32(0x203) * float32(math.Ldexp(1, -24))}},
		{"bf16", Tensor{DType: BF16, Dims: []int64{2}, Data: le16(0x3f80, 0xc040)}, []float32{1, -3}},
		{"fp64", Tensor{DType: FP64, Dims: []int64{3}, Data: f64(0.25, 1e300, -1)}, []float32{0.25, inf, -1}},
	}
	for _, tc := range cases {
		got, err := tc.ten.Float32s()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(tc.want[i]) {
				t.Errorf("%s[%d] = %v, want %v", tc.name, i, got[i], tc.want[i])
			}
		}
	}
	nan := Tensor{DType: FP16, Dims: []int64{1}, Data: le16(0x7e00)}
	if v, _ := nan.Float32s(); !math.IsNaN(float64(v[0])) {
		t.Errorf("fp16 NaN -> %v", v[0])
	}
	for _, bad := range []Tensor{
		{Name: "ints", DType: Int64, Dims: []int64{1}, Data: make([]byte, 8)},
		{Name: "short", DType: FP32, Dims: []int64{2}, Data: make([]byte, 4)},
	} {
		if _, err := bad.Float32s(); err == nil || !strings.Contains(err.Error(), bad.Name) {
			t.Errorf("Float32s(%s) = %v, want an error", bad.Name, err)
		}
	}
}

func TestDTypes(t *testing.T) {
	for d, w := range map[DType]struct {
		s string
		n int
	}{Bool: {"BOOL", 1}, Int16: {"INT16", 2}, Int32: {"INT32", 4}, Int64: {"INT64", 8}, FP16: {"FP16", 2}, FP32: {"FP32", 4}, FP64: {"FP64", 8}, Uint8: {"UINT8", 1}, Int8: {"INT8", 1}, BF16: {"BF16", 2}, DType(9): {"DType(9)", 0}} {
		if d.String() != w.s || d.Size() != w.n {
			t.Errorf("%d: %s %d, want %s %d", int32(d), d, d.Size(), w.s, w.n)
		}
		if d.Valid() {
			// Every valid type round-trips through a record.
			ten := &Tensor{Name: "v", DType: d, Dims: []int64{3}, Data: seq(3 * d.Size())}
			var buf bytes.Buffer
			if err := Encode(&buf, ten); err != nil {
				t.Fatal(err)
			}
			got, err := Decode(&buf, int64(buf.Len()))
			if err != nil || got.DType != d || !bytes.Equal(got.Data, ten.Data) {
				t.Errorf("%s: round trip %v %v", d, got, err)
			}
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, p := range []string{"resnet50_stem/bn_conv1_mean", "resnet50_stem/res2a_branch2a_weights", "combined/model.pdiparams", "old_layout/fc_0.w_0", "old_layout/fc_0.b_0"} {
		b, err := os.ReadFile(filepath.Join(dataDir(f), "paddle", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(record{lod: [][]uint64{{0, 1, 3}}, desc: desc(4, 3), data: seq(6)}.bytes())
	f.Add(record{desc: []byte{0x08, 0x05, 0x12, 0x02, 2, 1}, data: seq(8)}.bytes())
	f.Fuzz(func(t *testing.T, in []byte) {
		ten, err := Decode(bytes.NewReader(in), int64(len(in)))
		if err != nil {
			if !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v does not wrap ErrFormat", err)
			}
			return
		}
		if int64(len(ten.Data)) != ten.Numel()*int64(ten.DType.Size()) {
			t.Fatalf("%d data bytes for %s %v", len(ten.Data), ten.DType, ten.Dims)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, ten); err != nil {
			t.Fatalf("Encode(Decode(x)): %v", err)
		}
		again, err := Decode(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
		if err != nil {
			t.Fatalf("Decode(Encode(Decode(x))): %v", err)
		}
		if !reflect.DeepEqual(again, ten) {
			t.Fatalf("round trip changed the tensor")
		}
		if ten.DType == FP16 || ten.DType == BF16 || ten.DType == FP32 || ten.DType == FP64 {
			if _, err := ten.Float32s(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	for _, dims := range [][]int64{{64}, {64, 64, 3, 3}, {2048, 1000}} {
		n := 1
		for _, d := range dims {
			n *= int(d)
		}
		var buf bytes.Buffer
		if err := Encode(&buf, NewFloat32("w", dims, make([]float32, n))); err != nil {
			b.Fatal(err)
		}
		raw := buf.Bytes()
		b.Run(fmtDims(dims), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(raw), int64(len(raw))); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmtDims(dims)+"/float32s", func(b *testing.B) {
			ten, _ := Decode(bytes.NewReader(raw), int64(len(raw)))
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ten.Float32s(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func fmtDims(dims []int64) string {
	s := make([]string, len(dims))
	for i, d := range dims {
		s[i] = strconv.FormatInt(d, 10)
	}
	return strings.Join(s, "x")
}
