package pickle

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzDecode: no input panics or allocates past its size, every failure
// is an *Error, and what decodes re-encodes to a stream that decodes to
// the same value.
func FuzzDecode(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.pickle"))
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) < 8000 {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"(I12\nF1.5\nS'it\\'s'\nVcaf\\u00e9\ntp0\n0g0\n.",
		"\x80\x04\x8c\x03mod\x8c\x03Obj\x93)R}\x8c\x01kK\x07sb.",
		"\x80\x04\x8f(K\x01K\x02\x90(K\x03\x91\x86.",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		v, err := Decode(in, stubs)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not an *Error", err)
			}
			return
		}
		if !plain(v, 0) {
			return
		}
		for proto := 2; proto <= 5; proto++ {
			b, err := Marshal(v, proto)
			if err != nil {
				t.Fatalf("Marshal(protocol %d): %v", proto, err)
			}
			back, err := Decode(b, BytesGlobals)
			if err != nil {
				t.Fatalf("Decode(Marshal(protocol %d)): %v", proto, err)
			}
			if !reflect.DeepEqual(back, v) {
				t.Fatalf("protocol %d round trip: %#v, want %#v", proto, back, v)
			}
		}
	})
}

// plain reports whether v is a tree Marshal writes and Decode gives back
// as is: no sets or objects, no cycles or shared containers, no NaN
// (NaN != NaN), and no tuples holding lists (the memo makes those
// identical only up to sharing).
func plain(v any, depth int) bool {
	if depth > 50 {
		return false
	}
	seen := map[any]bool{}
	var walk func(v any, depth int) bool
	walk = func(v any, depth int) bool {
		if depth > 50 {
			return false
		}
		switch x := v.(type) {
		case nil, bool, int64, string, []byte:
			return true
		case float64:
			return x == x
		case Tuple:
			for _, it := range x {
				if !walk(it, depth+1) {
					return false
				}
			}
			return true
		case *List:
			if seen[x] {
				return false
			}
			seen[x] = true
			for _, it := range x.Items {
				if !walk(it, depth+1) {
					return false
				}
			}
			return true
		case *Dict:
			if seen[x] {
				return false
			}
			seen[x] = true
			for i := range x.Keys {
				if !walk(x.Keys[i], depth+1) || !walk(x.Vals[i], depth+1) {
					return false
				}
			}
			return true
		}
		return false
	}
	return walk(v, depth)
}
