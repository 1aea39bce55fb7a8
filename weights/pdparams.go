package weights

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Paddle 1.6+ saves parameters (fluid.save, paddle.save) as .pdparams: a
// Python pickle of a dict {name: numpy array}. ReadPdparams runs a small
// pickle machine that knows only what such files hold: dicts, lists,
// tuples, strings, numbers, numpy arrays and dtypes. Every other global is
// refused, so a hostile pickle cannot do anything but fail.

// MaxPdparamsSize caps the .pdparams file read into memory: ResNet-152's
// parameters take about 240 MB; 4 GiB is far above any zoo model.
const MaxPdparamsSize = 4 << 30

// ReadPdparams reads a .pdparams pickle and returns its numpy arrays as
// tensors, named by their keys. Entries that are not arrays (Paddle 2's
// "StructuredToParameterName@@" name map) are skipped.
func ReadPdparams(path string) (map[string]*Tensor, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	if !st.Mode().IsRegular() || st.Size() > MaxPdparamsSize {
		return nil, fmt.Errorf("weights: %s: not a regular file of at most %d bytes", path, int64(MaxPdparamsSize))
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("weights: %w", err)
	}
	ts, err := DecodePdparams(b)
	if err != nil {
		return nil, withPath(err, path)
	}
	return ts, nil
}

// DecodePdparams is ReadPdparams on the bytes of a file. The tensors'
// data may share memory with b.
func DecodePdparams(b []byte) (map[string]*Tensor, error) {
	u := &unpickler{in: b}
	top, err := u.run()
	if err != nil {
		return nil, &FormatError{Offset: int64(u.pos), Reason: "pdparams: " + err.Error()}
	}
	d, ok := top.(*pyDict)
	if !ok {
		return nil, &FormatError{Offset: int64(u.pos), Reason: fmt.Sprintf("pdparams: top object is %s, want a dict", typeName(top))}
	}
	out := map[string]*Tensor{}
	for i, k := range d.keys {
		name, ok := pyString(k)
		if !ok {
			continue
		}
		if name == "UnpackBigParamInfor@@" {
			return nil, &FormatError{Offset: int64(u.pos), Reason: "pdparams: parameters split into slices (UnpackBigParamInfor@@) are not supported"}
		}
		a, ok := d.vals[i].(*npArray)
		if !ok {
			continue
		}
		t, err := a.tensor(name)
		if err != nil {
			return nil, &FormatError{Offset: int64(u.pos), Reason: "pdparams: " + err.Error()}
		}
		out[name] = t
	}
	return out, nil
}

type (
	pyTuple []any
	pyList  struct{ items []any }
	pyDict  struct {
		keys, vals []any
		index      map[string]int // string key -> position in keys
	}
	pyGlobal struct{ module, name string }
	npDtype  struct {
		code  string
		order byte // '<', '>', '|' or '='
	}
	npArray struct {
		built   bool
		shape   []int64
		dtype   *npDtype
		fortran bool
		data    []byte
	}
)

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case *pyDict:
		return "dict"
	case *pyList:
		return "list"
	case pyTuple:
		return "tuple"
	case *npArray:
		return "ndarray"
	}
	return fmt.Sprintf("%T", v)
}

func pyString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case []byte: // Python 2 str
		return string(s), true
	}
	return "", false
}

// allowed lists the only globals a .pdparams may name.
var allowed = map[pyGlobal]bool{
	{"numpy.core.multiarray", "_reconstruct"}:  true,
	{"numpy._core.multiarray", "_reconstruct"}: true,
	{"numpy.core.multiarray", "scalar"}:        true,
	{"numpy._core.multiarray", "scalar"}:       true,
	{"numpy", "ndarray"}:                       true,
	{"numpy", "dtype"}:                         true,
	{"_codecs", "encode"}:                      true,
	{"collections", "OrderedDict"}:             true,
	{"__builtin__", "set"}:                     true,
	{"builtins", "set"}:                        true,
}

type unpickler struct {
	in    []byte
	pos   int
	stack []any
	marks []int
	memo  map[uint64]any
}

const maxStack = 1 << 20

func (u *unpickler) need(n int) ([]byte, error) {
	if n < 0 || n > len(u.in)-u.pos {
		return nil, fmt.Errorf("truncated: need %d bytes at %d", n, u.pos)
	}
	b := u.in[u.pos : u.pos+n]
	u.pos += n
	return b, nil
}

func (u *unpickler) push(v any) error {
	if len(u.stack) >= maxStack {
		return errors.New("stack too deep")
	}
	u.stack = append(u.stack, v)
	return nil
}

func (u *unpickler) pop() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	v := u.stack[len(u.stack)-1]
	u.stack = u.stack[:len(u.stack)-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	if len(u.stack) == 0 || (len(u.marks) > 0 && len(u.stack) <= u.marks[len(u.marks)-1]) {
		return nil, errors.New("stack underflow")
	}
	return u.stack[len(u.stack)-1], nil
}

// popMark returns the items above the last mark.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, errors.New("no mark")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) line() (string, error) {
	i := bytes.IndexByte(u.in[u.pos:min(len(u.in), u.pos+4096)], '\n')
	if i < 0 {
		return "", errors.New("unterminated line")
	}
	s := string(u.in[u.pos : u.pos+i])
	u.pos += i + 1
	return s, nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.need(n)
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (u *unpickler) run() (any, error) {
	u.memo = map[uint64]any{}
	for {
		if u.pos >= len(u.in) {
			return nil, errors.New("no STOP opcode")
		}
		op := u.in[u.pos]
		u.pos++
		var err error
		switch op {
		case 0x80: // PROTO
			_, err = u.need(1)
		case 0x95: // FRAME
			_, err = u.need(8)
		case '.': // STOP
			v, err := u.pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(':
			if len(u.marks) >= maxStack {
				return nil, errors.New("too many marks")
			}
			u.marks = append(u.marks, len(u.stack))
		case '}':
			err = u.push(&pyDict{})
		case ']':
			err = u.push(&pyList{})
		case ')':
			err = u.push(pyTuple{})
		case 0x8f: // EMPTY_SET: a list will do
			err = u.push(&pyList{})
		case 'N':
			err = u.push(nil)
		case 0x88:
			err = u.push(true)
		case 0x89:
			err = u.push(false)
		case 'J':
			var v uint64
			if v, err = u.uint(4); err == nil {
				err = u.push(int64(int32(uint32(v))))
			}
		case 'K':
			var v uint64
			if v, err = u.uint(1); err == nil {
				err = u.push(int64(v))
			}
		case 'M':
			var v uint64
			if v, err = u.uint(2); err == nil {
				err = u.push(int64(v))
			}
		case 0x8a: // LONG1
			var n uint64
			if n, err = u.uint(1); err == nil {
				err = u.long(int(n))
			}
		case 'G':
			var v uint64
			if b, e := u.need(8); e != nil {
				err = e
			} else {
				v = binary.BigEndian.Uint64(b)
				err = u.push(math.Float64frombits(v))
			}
		case 'I', 'L': // INT, LONG (protocol 0)
			var s string
			if s, err = u.line(); err == nil {
				s = strings.TrimSuffix(s, "L")
				switch s {
				case "00":
					err = u.push(false)
				case "01":
					err = u.push(true)
				default:
					v, e := strconv.ParseInt(s, 10, 64)
					if e != nil {
						return nil, fmt.Errorf("bad int %q", s)
					}
					err = u.push(v)
				}
			}
		case 'F':
			var s string
			if s, err = u.line(); err == nil {
				v, e := strconv.ParseFloat(s, 64)
				if e != nil {
					return nil, fmt.Errorf("bad float %q", s)
				}
				err = u.push(v)
			}
		case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
			n := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op]
			var l uint64
			if l, err = u.uint(n); err == nil {
				var b []byte
				if l > uint64(len(u.in)) {
					return nil, errors.New("string longer than the file")
				}
				if b, err = u.need(int(l)); err == nil {
					if !utf8.Valid(b) {
						return nil, errors.New("invalid utf-8 string")
					}
					err = u.push(string(b))
				}
			}
		case 'B', 'C', 0x8e, 'T', 'U', 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BINSTRING, SHORT_BINSTRING, BYTEARRAY8
			n := map[byte]int{'B': 4, 'C': 1, 0x8e: 8, 'T': 4, 'U': 1, 0x96: 8}[op]
			var l uint64
			if l, err = u.uint(n); err == nil {
				var b []byte
				if l > uint64(len(u.in)) {
					return nil, errors.New("bytes longer than the file")
				}
				if b, err = u.need(int(l)); err == nil {
					err = u.push(b)
				}
			}
		case 'V': // UNICODE (protocol 0, raw-unicode-escape; ASCII names only)
			var s string
			if s, err = u.line(); err == nil {
				err = u.push(s)
			}
		case 't':
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.push(pyTuple(items))
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op - 0x84)
			if len(u.stack) < n || (len(u.marks) > 0 && len(u.stack)-n < u.marks[len(u.marks)-1]) {
				return nil, errors.New("stack underflow")
			}
			t := append(pyTuple(nil), u.stack[len(u.stack)-n:]...)
			u.stack = u.stack[:len(u.stack)-n]
			err = u.push(t)
		case 'l': // LIST
			var items []any
			if items, err = u.popMark(); err == nil {
				err = u.push(&pyList{items})
			}
		case 'd': // DICT
			var items []any
			if items, err = u.popMark(); err == nil {
				d := &pyDict{}
				err = d.setItems(items)
				if err == nil {
					err = u.push(d)
				}
			}
		case 'a':
			var v, l any
			if v, err = u.pop(); err == nil {
				if l, err = u.top(); err == nil {
					err = appendTo(l, v)
				}
			}
		case 'e', 0x90: // APPENDS, ADDITEMS
			var items []any
			if items, err = u.popMark(); err == nil {
				var l any
				if l, err = u.top(); err == nil {
					for _, v := range items {
						if err = appendTo(l, v); err != nil {
							break
						}
					}
				}
			}
		case 's':
			var k, v, d any
			if v, err = u.pop(); err == nil {
				if k, err = u.pop(); err == nil {
					if d, err = u.top(); err == nil {
						dd, ok := d.(*pyDict)
						if !ok {
							return nil, fmt.Errorf("SETITEM on %s", typeName(d))
						}
						err = dd.setItems([]any{k, v})
					}
				}
			}
		case 'u':
			var items []any
			if items, err = u.popMark(); err == nil {
				var d any
				if d, err = u.top(); err == nil {
					dd, ok := d.(*pyDict)
					if !ok {
						return nil, fmt.Errorf("SETITEMS on %s", typeName(d))
					}
					err = dd.setItems(items)
				}
			}
		case '0':
			_, err = u.pop()
		case '1':
			_, err = u.popMark()
		case '2':
			var v any
			if v, err = u.top(); err == nil {
				err = u.push(v)
			}
		case 'p':
			var s string
			if s, err = u.line(); err == nil {
				i, e := strconv.ParseUint(s, 10, 64)
				if e != nil {
					return nil, fmt.Errorf("bad PUT %q", s)
				}
				err = u.put(i)
			}
		case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
			var i uint64
			switch op {
			case 'q':
				i, err = u.uint(1)
			case 'r':
				i, err = u.uint(4)
			default:
				i = uint64(len(u.memo))
			}
			if err == nil {
				err = u.put(i)
			}
		case 'g':
			var s string
			if s, err = u.line(); err == nil {
				i, e := strconv.ParseUint(s, 10, 64)
				if e != nil {
					return nil, fmt.Errorf("bad GET %q", s)
				}
				err = u.get(i)
			}
		case 'h', 'j':
			var i uint64
			if i, err = u.uint(map[byte]int{'h': 1, 'j': 4}[op]); err == nil {
				err = u.get(i)
			}
		case 'c': // GLOBAL
			var m, n string
			if m, err = u.line(); err == nil {
				if n, err = u.line(); err == nil {
					err = u.global(m, n)
				}
			}
		case 0x93: // STACK_GLOBAL
			var m, n any
			if n, err = u.pop(); err == nil {
				if m, err = u.pop(); err == nil {
					ms, ok1 := m.(string)
					ns, ok2 := n.(string)
					if !ok1 || !ok2 {
						return nil, errors.New("STACK_GLOBAL of non-strings")
					}
					err = u.global(ms, ns)
				}
			}
		case 'R': // REDUCE
			var args, f any
			if args, err = u.pop(); err == nil {
				if f, err = u.pop(); err == nil {
					var v any
					if v, err = reduce(f, args); err == nil {
						err = u.push(v)
					}
				}
			}
		case 'b': // BUILD
			var state, obj any
			if state, err = u.pop(); err == nil {
				if obj, err = u.top(); err == nil {
					err = build(obj, state)
				}
			}
		default:
			return nil, fmt.Errorf("unsupported pickle opcode %#x", op)
		}
		if err != nil {
			return nil, err
		}
	}
}

func (u *unpickler) long(n int) error {
	b, err := u.need(n)
	if err != nil {
		return err
	}
	if n > 8 {
		return fmt.Errorf("integer of %d bytes", n)
	}
	var v int64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	if n > 0 && n < 8 && b[n-1]&0x80 != 0 { // sign-extend
		v -= 1 << (8 * n)
	}
	return u.push(v)
}

func (u *unpickler) put(i uint64) error {
	v, err := u.top()
	if err != nil {
		return err
	}
	u.memo[i] = v
	return nil
}

func (u *unpickler) get(i uint64) error {
	v, ok := u.memo[i]
	if !ok {
		return fmt.Errorf("memo %d not set", i)
	}
	return u.push(v)
}

func (u *unpickler) global(module, name string) error {
	g := pyGlobal{module, name}
	if !allowed[g] {
		return fmt.Errorf("global %s.%s is not allowed in a parameter file", module, name)
	}
	return u.push(g)
}

func appendTo(l, v any) error {
	pl, ok := l.(*pyList)
	if !ok {
		return fmt.Errorf("APPEND on %s", typeName(l))
	}
	pl.items = append(pl.items, v)
	return nil
}

func (d *pyDict) setItems(items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of dict items")
	}
	if d.index == nil {
		d.index = map[string]int{}
	}
	for i := 0; i < len(items); i += 2 {
		if k, ok := pyString(items[i]); ok {
			if j, dup := d.index[k]; dup {
				d.vals[j] = items[i+1]
				continue
			}
			d.index[k] = len(d.keys)
		}
		d.keys = append(d.keys, items[i])
		d.vals = append(d.vals, items[i+1])
	}
	return nil
}

func reduce(f, args any) (any, error) {
	g, ok := f.(pyGlobal)
	if !ok {
		return nil, fmt.Errorf("REDUCE on %s", typeName(f))
	}
	a, ok := args.(pyTuple)
	if !ok {
		return nil, fmt.Errorf("REDUCE %s.%s with %s arguments", g.module, g.name, typeName(args))
	}
	switch g.name {
	case "encode": // _codecs.encode(str, "latin1"): how protocol 2 pickles bytes
		if len(a) != 2 {
			return nil, errors.New("_codecs.encode arguments")
		}
		s, ok1 := a[0].(string)
		enc, ok2 := a[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("_codecs.encode arguments")
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, errors.New("non-latin1 character in bytes")
			}
			b = append(b, byte(r))
		}
		return b, nil
	case "_reconstruct":
		return &npArray{}, nil
	case "dtype":
		if len(a) < 1 {
			return nil, errors.New("dtype arguments")
		}
		code, ok := pyString(a[0])
		if !ok {
			return nil, errors.New("dtype arguments")
		}
		return &npDtype{code: code, order: '='}, nil
	case "scalar": // numpy scalar: (dtype, bytes)
		if len(a) != 2 {
			return nil, errors.New("scalar arguments")
		}
		dt, ok1 := a[0].(*npDtype)
		data, ok2 := a[1].([]byte)
		if !ok1 || !ok2 {
			return nil, errors.New("scalar arguments")
		}
		return &npArray{built: true, shape: []int64{}, dtype: dt, data: data}, nil
	case "OrderedDict":
		return &pyDict{}, nil
	case "set":
		return &pyList{}, nil
	}
	return nil, fmt.Errorf("cannot call %s.%s", g.module, g.name)
}

func build(obj, state any) error {
	switch o := obj.(type) {
	case *npDtype:
		st, ok := state.(pyTuple)
		if !ok || len(st) < 2 {
			return errors.New("dtype state")
		}
		order, ok := pyString(st[1])
		if !ok || len(order) != 1 {
			return errors.New("dtype byte order")
		}
		o.order = order[0]
		return nil
	case *npArray:
		st, ok := state.(pyTuple)
		if !ok || len(st) != 5 {
			return errors.New("ndarray state")
		}
		shape, ok := st[1].(pyTuple)
		if !ok {
			return errors.New("ndarray shape")
		}
		o.shape = make([]int64, len(shape))
		for i, d := range shape {
			v, ok := d.(int64)
			if !ok {
				return errors.New("ndarray shape")
			}
			o.shape[i] = v
		}
		if o.dtype, ok = st[2].(*npDtype); !ok {
			return errors.New("ndarray dtype")
		}
		f, ok := st[3].(bool)
		if !ok {
			if i, isInt := st[3].(int64); isInt {
				f, ok = i != 0, true
			}
		}
		if !ok {
			return errors.New("ndarray order flag")
		}
		o.fortran = f
		switch d := st[4].(type) {
		case []byte:
			o.data = d
		case string: // Python 2 str read as unicode by mistake: refuse
			return errors.New("ndarray data is text")
		default:
			return fmt.Errorf("ndarray data is %s (object arrays are not parameters)", typeName(d))
		}
		o.built = true
		return nil
	case *pyDict:
		if d, ok := state.(*pyDict); ok { // __dict__ update
			return o.setItems(interleave(d))
		}
	}
	return fmt.Errorf("BUILD on %s", typeName(obj))
}

func interleave(d *pyDict) []any {
	out := make([]any, 0, 2*len(d.keys))
	for i := range d.keys {
		out = append(out, d.keys[i], d.vals[i])
	}
	return out
}

var npCodes = map[string]DType{
	"f2": FP16, "f4": FP32, "f8": FP64,
	"i1": Int8, "i2": Int16, "i4": Int32, "i8": Int64,
	"u1": Uint8, "b1": Bool,
}

func (a *npArray) tensor(name string) (*Tensor, error) {
	if !a.built {
		return nil, fmt.Errorf("%s: ndarray without state", name)
	}
	dt, ok := npCodes[a.dtype.code]
	if !ok {
		return nil, fmt.Errorf("%s: numpy dtype %q is not a Paddle parameter type", name, a.dtype.code)
	}
	n, err := numel(a.shape)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	sz := dt.Size()
	if int64(len(a.data)) != n*int64(sz) {
		return nil, fmt.Errorf("%s: %d data bytes for %s %v", name, len(a.data), dt, a.shape)
	}
	data := a.data
	if a.dtype.order == '>' && sz > 1 {
		data = make([]byte, len(a.data))
		for i := 0; i < len(data); i += sz {
			for j := range sz {
				data[i+j] = a.data[i+sz-1-j]
			}
		}
	}
	if a.fortran && len(a.shape) > 1 && n > 0 {
		data = fortranToC(data, a.shape, sz)
	}
	return &Tensor{Name: name, DType: dt, Dims: a.shape, Data: data}, nil
}

// fortranToC reorders column-major data to row-major.
func fortranToC(src []byte, shape []int64, sz int) []byte {
	dst := make([]byte, len(src))
	idx := make([]int64, len(shape))
	for c := int64(0); c < int64(len(src)/sz); c++ {
		// Column-major offset of the row-major index idx.
		var f, stride int64 = 0, 1
		for k := range shape {
			f += idx[k] * stride
			stride *= shape[k]
		}
		copy(dst[c*int64(sz):], src[f*int64(sz):(f+1)*int64(sz)])
		for k := len(shape) - 1; k >= 0; k-- {
			idx[k]++
			if idx[k] < shape[k] {
				break
			}
			idx[k] = 0
		}
	}
	return dst
}
