package pickle

import (
	"fmt"
	"math/big"
)

// Python values as Decode returns them and Marshal takes them: None is
// nil, bool is bool, int is int64 (*big.Int beyond int64), float is
// float64, str is string, bytes and Python 2 str are []byte, bytearray is
// []byte. Containers are the types below.
type (
	// Tuple is a Python tuple.
	Tuple []any
	// List is a Python list (a pointer: APPEND changes it in place).
	List struct{ Items []any }
	// Set is a Python set or frozenset, items in stream order.
	Set struct{ Items []any }
	// Global names a module-level object (GLOBAL, STACK_GLOBAL). Decode
	// pushes it only if the Decoder's allow-list has it.
	Global struct{ Module, Name string }
)

// Object is what Marshal writes for an object pickled through its
// __reduce__: Func(*Args), then BUILD with State unless State is nil.
// The same *Object twice is one Python object: the second is a memo get.
type Object struct {
	Func  Global
	Args  Tuple
	State any
}

// Dict is a Python dict in insertion order. A later value for an equal
// key replaces the earlier one in place, as in Python.
type Dict struct {
	Keys, Vals []any
	index      map[any]int
}

// bytesKey keeps b"x" and "x" apart as dict keys, as Python 3 does.
type bytesKey string

func hashKey(k any) (any, bool) {
	switch v := k.(type) {
	case string, int64, bool, float64, nil:
		return v, true
	case []byte:
		return bytesKey(v), true
	}
	return nil, false
}

// Set adds or replaces k's value.
func (d *Dict) Set(k, v any) {
	hk, ok := hashKey(k)
	if ok {
		if d.index == nil {
			d.index = map[any]int{}
		}
		if i, dup := d.index[hk]; dup {
			d.Vals[i] = v
			return
		}
		d.index[hk] = len(d.Keys)
	}
	d.Keys = append(d.Keys, k)
	d.Vals = append(d.Vals, v)
}

// Get returns the value of a string key.
func (d *Dict) Get(k string) (any, bool) {
	i, ok := d.index[k]
	if !ok {
		return nil, false
	}
	return d.Vals[i], true
}

// Len is the number of entries.
func (d *Dict) Len() int { return len(d.Keys) }

// Func is what calling an allowed global makes (REDUCE, NEWOBJ and
// NEWOBJ_EX all call it with the positional arguments).
type Func func(args Tuple) (any, error)

// Stater is implemented by objects a Func makes that take BUILD's state
// (Python's __setstate__).
type Stater interface {
	SetState(state any) error
}

// TypeName is the Python name of v's type, for error messages.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case bool:
		return "bool"
	case int64, *big.Int:
		return "int"
	case float64:
		return "float"
	case string:
		return "str"
	case []byte:
		return "bytes"
	case Tuple:
		return "tuple"
	case *List:
		return "list"
	case *Dict:
		return "dict"
	case *Set:
		return "set"
	case Global:
		return "global"
	}
	return fmt.Sprintf("%T", v)
}

// String returns s as text if it is a str or a Python 2 str.
func String(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte:
		return string(s), true
	}
	return "", false
}

// Latin1 is _codecs.encode(str, "latin1"), how Python 3 pickles bytes at
// protocol 2. Allow it as {"_codecs", "encode"}.
func Latin1(a Tuple) (any, error) {
	if len(a) != 2 {
		return nil, fmt.Errorf("_codecs.encode with %d arguments", len(a))
	}
	s, ok1 := a[0].(string)
	enc, ok2 := a[1].(string)
	if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
		return nil, fmt.Errorf("_codecs.encode arguments (%s, %s)", TypeName(a[0]), TypeName(a[1]))
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff {
			return nil, fmt.Errorf("_codecs.encode: %U is not latin1", r)
		}
		b = append(b, byte(r))
	}
	return b, nil
}

// EmptyBytes is bytes() with no arguments, how Python 3 pickles b"" at
// protocol 2.
func EmptyBytes(a Tuple) (any, error) {
	if len(a) != 0 {
		return nil, fmt.Errorf("bytes() with %d arguments", len(a))
	}
	return []byte{}, nil
}

// BytesGlobals are the globals Python 3 uses to pickle bytes at protocol
// 2; a use that reads bytes from such files adds them to its allow-list.
var BytesGlobals = map[Global]Func{
	{"_codecs", "encode"}:    Latin1,
	{"builtins", "bytes"}:    EmptyBytes,
	{"__builtin__", "bytes"}: EmptyBytes,
}
