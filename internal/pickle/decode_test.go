package pickle

import (
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// stub is what an allowed global makes in these tests.
type stub struct{ state any }

func (s *stub) SetState(st any) error { s.state = st; return nil }

var stubs = map[Global]Func{
	{"mod", "Obj"}: func(a Tuple) (any, error) { return &stub{}, nil },
	{"mod", "bad"}: func(a Tuple) (any, error) { return nil, errors.New("refused") },
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		want any
	}{
		{"protocol 0 text", "(I12\nF1.5\nS'it\\'s\\x00'\nVcaf\\u00e9\nL99999999999999999999L\nI01\ntp0\n0g0\n.",
			Tuple{int64(12), 1.5, []byte("it's\x00"), "café", mustBig("99999999999999999999"), true}},
		{"memo get", "\x80\x02]q\x00h\x00a.", nil}, // a list holding itself
		{"dup", "\x80\x02K\x072\x86.", Tuple{int64(7), int64(7)}},
		{"dict dedup keeps order", // b"a" is another key than "a"
			"\x80\x04}(\x8c\x01aK\x01C\x01aK\x02\x8c\x01aK\x03u.", nil},
		{"set and frozenset", "\x80\x04\x8f(K\x01K\x02\x90(K\x03\x91\x86.", Tuple{&Set{Items: []any{int64(1), int64(2)}}, &Set{Items: []any{int64(3)}}}},
		{"allowed global with state", "\x80\x04\x8c\x03mod\x8c\x03Obj\x93)R}\x8c\x01kK\x07sb.", nil},
		{"NEWOBJ_EX with empty kwargs", "\x80\x04\x8c\x03mod\x8c\x03Obj\x93)}\x92.", &stub{}},
		{"bytearray8 and readonly buffer", "\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00hi\x98.", []byte("hi")},
		{"long4", "\x80\x02\x8b\x02\x00\x00\x00\xff\x7f.", int64(0x7fff)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode([]byte(tc.in), stubs)
			if err != nil {
				t.Fatal(err)
			}
			switch tc.name {
			case "memo get":
				l, ok := got.(*List)
				if !ok || len(l.Items) != 1 || l.Items[0] != got {
					t.Errorf("got %#v, want a list holding itself", got)
				}
				return
			case "dict dedup keeps order":
				gd := got.(*Dict)
				if !reflect.DeepEqual(gd.Keys, []any{"a", []byte("a")}) || !reflect.DeepEqual(gd.Vals, []any{int64(3), int64(2)}) {
					t.Errorf("got %v %v", gd.Keys, gd.Vals)
				}
				return
			case "allowed global with state":
				s, ok := got.(*stub)
				sd, _ := s.state.(*Dict)
				if v, _ := sd.Get("k"); !ok || v != int64(7) {
					t.Errorf("got %#v", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func mustBig(s string) *big.Int {
	v, _ := new(big.Int).SetString(s, 10)
	return v
}

// TestDecodeRefusals: every bad stream is an *Error naming what is
// wrong; nothing is called unless allowed, nothing is allocated from a
// size the stream cannot back.
func TestDecodeRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, in, want string }{
		{"os.system", "cos\nsystem\n(S'echo hi'\ntR.", "global os.system is not allowed"},
		{"builtins eval", "\x80\x04\x8c\x08builtins\x8c\x04eval\x93.", "global builtins.eval is not allowed"},
		{"bytes global not allowed unless asked", "\x80\x02c_codecs\nencode\n.", "global _codecs.encode is not allowed"},
		{"allowed global fails", "\x80\x04\x8c\x03mod\x8c\x03bad\x93)R.", "mod.bad: refused"},
		{"call of a non-global", "\x80\x02K\x01)R.", "call of int"},
		{"NEWOBJ_EX kwargs", "\x80\x04\x8c\x03mod\x8c\x03Obj\x93)}K\x01K\x02s\x92.", "keyword arguments"},
		{"BUILD on int", "\x80\x02K\x01}b.", "BUILD on int"},
		{"no stop", "\x80\x02}q\x00", "no STOP opcode"},
		{"empty", "", "no STOP opcode"},
		{"underflow", "\x80\x02s.", "stack underflow"},
		{"underflow below mark", "K\x01(s.", "stack underflow"},
		{"stop inside mark", "(K\x01.", "STOP inside a MARK"},
		{"bad memo", "\x80\x02h\x05.", "memo 5 not set"},
		{"huge bytes8", "\x80\x04\x8e\xff\xff\xff\xff\xff\xff\xff\x7f.", "longer than the file"},
		{"huge unicode8", "\x80\x04\x8d\x00\x00\x00\x00\x01\x00\x00\x00.", "longer than the file"},
		{"huge long4", "\x80\x02\x8b\xff\xff\xff\x7f.", "longer than the file"},
		{"huge frame", "\x80\x04\x95\x00\x00\x00\x00\x01\x00\x00\x00.", "frame of"},
		{"protocol 6", "\x80\x06N.", "protocol 6"},
		{"invalid utf-8", "\x80\x04\x8c\x01\xff.", "invalid utf-8"},
		{"unknown opcode", "\x80\x02\xff.", "unsupported pickle opcode 0xff"},
		{"persistent id", "\x80\x02K\x01Q.", "persistent ids"},
		{"next buffer", "\x80\x05\x97.", "NEXT_BUFFER"},
		{"unterminated line", "cos", "unterminated line"},
		{"append to dict", "\x80\x02}K\x01a.", "APPEND on dict"},
		{"odd dict items", "\x80\x02}(K\x01u.", "odd number"},
		{"bad STRING", "S'abc\n.", "not quoted"},
	} {
		_, err := Decode([]byte(tc.in), stubs)
		var pe *Error
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Decode = %v, want an *Error with %q", tc.name, err, tc.want)
		}
	}
}

// TestDecodeTruncated: every prefix of a real pickle fails cleanly.
func TestDecodeTruncated(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("testdata", "text.p2.pickle"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range len(b) - 1 {
		if _, err := Decode(b[:i], BytesGlobals); err == nil {
			t.Fatalf("prefix of %d bytes decoded", i)
		}
	}
}
