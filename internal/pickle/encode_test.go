package pickle

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func list(items ...any) *List { return &List{Items: items} }

// goldenCases builds the values of testdata/gen.py's cases().
func goldenCases() map[string]any {
	two70 := new(big.Int).Lsh(big.NewInt(1), 70)
	dict := &Dict{}
	for i := range 1500 {
		dict.Set(fmt.Sprintf("k%d", i), list(int64(i), float64(i)))
	}
	long := &List{}
	for i := range 2500 {
		long.Items = append(long.Items, int64(i))
	}
	b200 := make([]byte, 400)
	for i := range b200 {
		b200[i] = byte(i % 200)
	}
	floats := &List{}
	for i := range 8000 {
		floats.Items = append(floats.Items, float64(i)/7)
	}
	return map[string]any{
		"scalars": Tuple{nil, true, false, int64(0), int64(255), int64(256), int64(65535), int64(65536), int64(-1),
			int64(math.MinInt32), int64(math.MaxInt32), int64(1 << 31), int64(math.MaxInt64), int64(math.MinInt64),
			two70, new(big.Int).Neg(two70), 1.5, math.Copysign(0, -1), math.Inf(1)},
		"text":      list("", "héllo", strings.Repeat("x", 300), []byte{}, []byte{0, 0xff, 0x80}, b200),
		"tuples":    list(Tuple{}, Tuple{int64(1)}, Tuple{int64(2), int64(3)}, Tuple{int64(4), int64(5), int64(6)}, Tuple{int64(7), int64(8), int64(9), int64(10)}),
		"dict":      dict,
		"long_list": long,
		"large":     list(strings.Repeat("é", 33000), make([]byte, 66000), floats),
	}
}

// TestMarshalGolden: Marshal writes CPython's pickle.dumps bytes for
// every protocol, and Decode reads them back to the same values.
func TestMarshalGolden(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "*.pickle"))
	if err != nil || len(files) != 22 {
		t.Fatalf("%d golden files (%v), want 22: run python3 gen.py in testdata", len(files), err)
	}
	cases := goldenCases()
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			name, proto, _ := strings.Cut(strings.TrimSuffix(filepath.Base(f), ".pickle"), ".p")
			want, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			v := cases[name]
			got, err := Marshal(v, int(proto[0]-'0'))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Errorf("Marshal differs from CPython's at byte %d of %d (got %d bytes)", i, len(want), len(got))
			}
			back, err := Decode(want, BytesGlobals)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, v) {
				t.Errorf("Decode of CPython's pickle differs from the value")
			}
		})
	}
}

func TestMarshalRefuses(t *testing.T) {
	t.Parallel()
	if _, err := Marshal(1, 1); err == nil {
		t.Error("protocol 1 accepted")
	}
	if _, err := Marshal(list(struct{}{}), 2); err == nil || !strings.Contains(err.Error(), "cannot encode struct {}") {
		t.Errorf("Marshal of a struct: %v", err)
	}
}

func TestEncodeLong(t *testing.T) {
	t.Parallel()
	// Expected bytes from Python's pickle.encode_long.
	for _, tt := range []struct {
		v    int64
		want []byte
	}{
		{1 << 40, []byte{0, 0, 0, 0, 0, 1}},
		{-1 << 40, []byte{0, 0, 0, 0, 0, 0xff}},
		{1 << 31, []byte{0, 0, 0, 0x80, 0}},
		{-1<<31 - 1, []byte{0xff, 0xff, 0xff, 0x7f, 0xff}},
		{math.MaxInt64, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},
		{math.MinInt64, []byte{0, 0, 0, 0, 0, 0, 0, 0x80}},
		{-128, []byte{0x80}},
		{128, []byte{0x80, 0}},
	} {
		if got := EncodeLong(tt.v); !bytes.Equal(got, tt.want) {
			t.Errorf("EncodeLong(%d) = % x, want % x", tt.v, got, tt.want)
		}
		if got := decodeLong(tt.want); got != tt.v {
			t.Errorf("decodeLong(% x) = %v, want %d", tt.want, got, tt.v)
		}
	}
}
