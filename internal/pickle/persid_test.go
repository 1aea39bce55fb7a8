package pickle

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestPersistentLoad: PERSID and BINPERSID hand their id to
// PersistentLoad and push what it returns; its error fails the decode.
func TestPersistentLoad(t *testing.T) {
	t.Parallel()
	var got []any
	d := &Decoder{PersistentLoad: func(pid any) (any, error) {
		got = append(got, pid)
		if s, ok := pid.(string); ok && s == "bad" {
			return nil, errors.New("no such storage")
		}
		return "loaded", nil
	}}
	v, err := d.Decode([]byte("\x80\x02\x8c\x01kK\x05\x86QPtext\n\x86."))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Tuple{"loaded", "loaded"}); !reflect.DeepEqual(v, want) {
		t.Errorf("Decode = %#v, want %#v", v, want)
	}
	if want := []any{Tuple{"k", int64(5)}, "text"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ids = %#v, want %#v", got, want)
	}
	if _, err := d.Decode([]byte("Pbad\n.")); err == nil || !strings.Contains(err.Error(), "no such storage") {
		t.Errorf("a refused id: %v", err)
	}
	if _, err := d.Decode([]byte("\x80\x02Q.")); err == nil || !strings.Contains(err.Error(), "underflow") {
		t.Errorf("BINPERSID on an empty stack: %v", err)
	}
}

// TestDecodePrefix: several pickles in one stream, each with its length.
func TestDecodePrefix(t *testing.T) {
	t.Parallel()
	b := []byte("\x80\x02K\x01.\x80\x02K\x02.junk")
	d := &Decoder{}
	v, n, err := d.DecodePrefix(b)
	if err != nil || v != int64(1) || n != 5 {
		t.Fatalf("first = %v, %d, %v", v, n, err)
	}
	v, n, err = d.DecodePrefix(b[5:])
	if err != nil || v != int64(2) || n != 5 {
		t.Fatalf("second = %v, %d, %v", v, n, err)
	}
}

// TestBuildBomb: BUILD of a dict with tuple keys into itself, repeated,
// would double it each time; the decode fails at once instead.
func TestBuildBomb(t *testing.T) {
	t.Parallel()
	in := "\x80\x02}(K\x01K\x01\x86K\x02u" + strings.Repeat("2b", 60) + "."
	if _, err := Decode([]byte(in), nil); err == nil || !strings.Contains(err.Error(), "more dict entries") {
		t.Errorf("Decode = %v", err)
	}
	// A real update still works: {"a": 1} updated with {"b": 2}.
	v, err := Decode([]byte("\x80\x02}\x8c\x01aK\x01s}\x8c\x01bK\x02sb."), nil)
	if d, ok := v.(*Dict); err != nil || !ok || d.Len() != 2 {
		t.Errorf("update: %v %v", v, err)
	}
}
