package pickle

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
)

// Opcodes Marshal writes (names as in Python's pickletools).
const (
	OpProto          = 0x80
	OpFrame          = 0x95
	OpStop           = '.'
	OpNone           = 'N'
	OpNewTrue        = 0x88
	OpNewFalse       = 0x89
	OpBinInt         = 'J'
	OpBinInt1        = 'K'
	OpBinInt2        = 'M'
	OpLong1          = 0x8a
	OpLong4          = 0x8b
	OpBinFloat       = 'G'
	OpBinUnicode     = 'X'
	OpShortBinUni    = 0x8c
	OpBinUnicode8    = 0x8d
	OpBinBytes       = 'B'
	OpShortBinBytes  = 'C'
	OpBinBytes8      = 0x8e
	OpGlobal         = 'c'
	OpStackGlobal    = 0x93
	OpReduce         = 'R'
	OpBuild          = 'b'
	OpEmptyTuple     = ')'
	OpTuple          = 't'
	OpTuple1         = 0x85
	OpTuple2         = 0x86
	OpTuple3         = 0x87
	OpEmptyList      = ']'
	OpAppend         = 'a'
	OpAppends        = 'e'
	OpEmptyDict      = '}'
	OpSetItem        = 's'
	OpSetItems       = 'u'
	OpMark           = '('
	OpBinPut         = 'q'
	OpLongBinPut     = 'r'
	OpMemoize        = 0x94
	OpBinGet         = 'h'
	OpLongBinGet     = 'j'
	opFrameHeaderLen = 9
)

// Batch is Python's Pickler._BATCHSIZE: APPENDS and SETITEMS carry at
// most this many items.
const Batch = 1000

// Framing sizes of CPython's _Framer: a frame is closed at the first
// opcode boundary past 64 KiB, and frames under 4 bytes get no header.
const (
	frameTarget = 64 << 10
	frameMin    = 4
)

// Marshal pickles v with protocol 2 to 5 and returns exactly the bytes
// CPython's pickle.dumps(v, protocol) gives for the same Python objects,
// provided no two of them are the same Python object (Go values have no
// identity, so nothing is shared through the memo except the globals and
// the "latin1" constant CPython itself shares). v may hold nil, bool,
// int, int64, *big.Int, float32 and float64 (Python floats), string,
// []byte, Tuple, *Dict, *Object, Global, and lists as *List, []any,
// []float32 or []float64 (of Python floats), []int or []int64, []string.
func Marshal(v any, protocol int) ([]byte, error) {
	return AppendMarshal(nil, v, protocol)
}

// AppendMarshal is Marshal appending to dst, for callers that know the
// size to expect.
func AppendMarshal(dst []byte, v any, protocol int) ([]byte, error) {
	if protocol < 2 || protocol > 5 {
		return nil, fmt.Errorf("pickle protocol %d: want 2 to 5", protocol)
	}
	e := &encoder{proto: protocol, out: dst, shared: map[any]uint32{}}
	e.out = append(e.out, OpProto, byte(protocol))
	if protocol >= 4 {
		e.frame = []byte{}
	}
	if err := e.save(v); err != nil {
		return nil, err
	}
	e.write(OpStop)
	e.commit(true)
	return e.out, nil
}

type encoder struct {
	proto  int
	out    []byte
	frame  []byte // the open frame (protocol 4+), nil without framing
	memo   uint32
	shared map[any]uint32 // memo index of Globals and constant strings
}

// buf is the open frame, or the output without framing.
func (e *encoder) buf() *[]byte {
	if e.frame != nil {
		return &e.frame
	}
	return &e.out
}

func (e *encoder) write(b ...byte) {
	p := e.buf()
	*p = append(*p, b...)
}

func (e *encoder) commit(force bool) {
	if e.frame == nil || (len(e.frame) < frameTarget && !force) || len(e.frame) == 0 {
		return
	}
	if len(e.frame) >= frameMin {
		e.out = append(e.out, OpFrame)
		e.out = binary.LittleEndian.AppendUint64(e.out, uint64(len(e.frame)))
	}
	e.out = append(e.out, e.frame...)
	e.frame = e.frame[:0]
}

// writeLarge is the _Framer's write_large_bytes: a payload of a frame's
// size goes outside frames.
func (e *encoder) writeLarge(header, payload []byte) {
	if e.frame != nil && len(payload) >= frameTarget {
		e.commit(true)
		e.out = append(e.out, header...)
		e.out = append(e.out, payload...)
		return
	}
	e.write(header...)
	e.write(payload...)
}

func (e *encoder) memoize() {
	switch {
	case e.proto >= 4:
		e.write(OpMemoize)
	case e.memo < 256:
		e.write(OpBinPut, byte(e.memo))
	default:
		p := e.buf()
		*p = binary.LittleEndian.AppendUint32(append(*p, OpLongBinPut), e.memo)
	}
	e.memo++
}

func (e *encoder) get(i uint32) {
	if i < 256 {
		e.write(OpBinGet, byte(i))
		return
	}
	p := e.buf()
	*p = binary.LittleEndian.AppendUint32(append(*p, OpLongBinGet), i)
}

func (e *encoder) save(v any) error {
	e.commit(false) // Pickler.save starts with framer.commit_frame()
	switch x := v.(type) {
	case nil:
		e.write(OpNone)
	case bool:
		if x {
			e.write(OpNewTrue)
		} else {
			e.write(OpNewFalse)
		}
	case int:
		e.int(int64(x))
	case int64:
		e.int(x)
	case *big.Int:
		if x.IsInt64() {
			e.int(x.Int64())
		} else {
			e.long(encodeBig(x))
		}
	case float32:
		e.float(float64(x))
	case float64:
		e.float(x)
	case string:
		e.str(x)
	case []byte:
		return e.bytes(x)
	case Tuple:
		return e.tuple(x)
	case []any:
		return e.list(x)
	case []float64:
		return e.typedList(len(x), func(i int) { e.float(x[i]) })
	case []float32:
		return e.typedList(len(x), func(i int) { e.float(float64(x[i])) })
	case []int:
		return e.typedList(len(x), func(i int) { e.int(int64(x[i])) })
	case []int64:
		return e.typedList(len(x), func(i int) { e.int(x[i]) })
	case []string:
		return e.typedList(len(x), func(i int) { e.str(x[i]) })
	case *List:
		return e.list(x.Items)
	case *Dict:
		return e.dict(x)
	case Global:
		e.global(x)
	case *Object:
		return e.object(x)
	default:
		return fmt.Errorf("pickle: cannot encode %T", v)
	}
	return nil
}

func (e *encoder) float(f float64) {
	p := e.buf()
	*p = binary.BigEndian.AppendUint64(append(*p, OpBinFloat), math.Float64bits(f))
}

// int follows Pickler.save_long.
func (e *encoder) int(v int64) {
	switch {
	case v >= 0 && v <= 0xff:
		e.write(OpBinInt1, byte(v))
	case v >= 0 && v <= 0xffff:
		p := e.buf()
		*p = binary.LittleEndian.AppendUint16(append(*p, OpBinInt2), uint16(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		p := e.buf()
		*p = binary.LittleEndian.AppendUint32(append(*p, OpBinInt), uint32(int32(v)))
	default:
		e.long(EncodeLong(v))
	}
}

func (e *encoder) long(enc []byte) {
	if len(enc) < 256 {
		e.write(OpLong1, byte(len(enc)))
	} else {
		e.write(OpLong4)
		e.write(binary.LittleEndian.AppendUint32(nil, uint32(len(enc)))...)
	}
	e.write(enc...)
}

func (e *encoder) str(s string) {
	n := uint64(len(s))
	var h []byte
	switch {
	case n < 256 && e.proto >= 4:
		h = []byte{OpShortBinUni, byte(n)}
	case n > math.MaxUint32 && e.proto >= 4:
		h = binary.LittleEndian.AppendUint64([]byte{OpBinUnicode8}, n)
	default:
		h = binary.LittleEndian.AppendUint32([]byte{OpBinUnicode}, uint32(n))
	}
	e.writeLarge(h, []byte(s))
	e.memoize()
}

// constStr writes a string CPython shares between uses (a literal in
// pickle.py, such as "latin1"): memoized once, then fetched.
func (e *encoder) constStr(s string) {
	if i, ok := e.shared[s]; ok {
		e.get(i)
		return
	}
	e.shared[s] = e.memo
	e.str(s)
}

func (e *encoder) bytes(b []byte) error {
	if e.proto < 3 { // Pickler.save_bytes, protocol 2
		if len(b) == 0 {
			return e.reduce(Global{"__builtin__", "bytes"}, Tuple{})
		}
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		e.global(Global{"_codecs", "encode"})
		e.str(string(r))
		e.constStr("latin1")
		e.write(OpTuple2)
		e.memoize()
		e.write(OpReduce)
		e.memoize()
		return nil
	}
	n := uint64(len(b))
	var h []byte
	switch {
	case n < 256:
		h = []byte{OpShortBinBytes, byte(n)}
	case n > math.MaxUint32 && e.proto >= 4:
		h = binary.LittleEndian.AppendUint64([]byte{OpBinBytes8}, n)
	default:
		h = binary.LittleEndian.AppendUint32([]byte{OpBinBytes}, uint32(n))
	}
	e.writeLarge(h, b)
	e.memoize()
	return nil
}

// object is Pickler.save_reduce for a callable that is not __newobj__.
func (e *encoder) object(o *Object) error {
	if i, ok := e.shared[o]; ok {
		e.get(i)
		return nil
	}
	e.global(o.Func)
	if err := e.save(o.Args); err != nil {
		return err
	}
	e.write(OpReduce)
	e.shared[o] = e.memo
	e.memoize()
	if o.State != nil {
		if err := e.save(o.State); err != nil {
			return err
		}
		e.write(OpBuild)
	}
	return nil
}

func (e *encoder) reduce(g Global, args Tuple) error {
	e.global(g)
	if err := e.save(args); err != nil {
		return err
	}
	e.write(OpReduce)
	e.memoize()
	return nil
}

// global is Pickler.save_global: GLOBAL (with protocol 2's module
// names) before protocol 4, STACK_GLOBAL after, memoized once.
func (e *encoder) global(g Global) {
	if i, ok := e.shared[g]; ok {
		e.get(i)
		return
	}
	if e.proto >= 4 {
		e.constStr(g.Module)
		e.constStr(g.Name)
		e.write(OpStackGlobal)
	} else {
		e.write(OpGlobal)
		e.write([]byte(g.Module + "\n" + g.Name + "\n")...)
	}
	e.shared[g] = e.memo
	e.memoize()
}

func (e *encoder) tuple(t Tuple) error {
	if len(t) == 0 {
		e.write(OpEmptyTuple)
		return nil
	}
	if len(t) > 3 {
		e.write(OpMark)
	}
	for _, v := range t {
		if err := e.save(v); err != nil {
			return err
		}
	}
	switch len(t) {
	case 1:
		e.write(OpTuple1)
	case 2:
		e.write(OpTuple2)
	case 3:
		e.write(OpTuple3)
	default:
		e.write(OpTuple)
	}
	e.memoize()
	return nil
}

// list writes the items the way Pickler._batch_appends does.
func (e *encoder) list(items []any) error {
	e.write(OpEmptyList)
	e.memoize()
	return e.batches(len(items), OpAppend, OpAppends, func(i int) error { return e.save(items[i]) })
}

// typedList is list for Go slices of one scalar type, which need no
// boxing into []any.
func (e *encoder) typedList(n int, item func(int)) error {
	e.write(OpEmptyList)
	e.memoize()
	return e.batches(n, OpAppend, OpAppends, func(i int) error {
		e.commit(false)
		item(i)
		return nil
	})
}

func (e *encoder) dict(d *Dict) error {
	e.write(OpEmptyDict)
	e.memoize()
	return e.batches(d.Len(), OpSetItem, OpSetItems, func(i int) error {
		if err := e.save(d.Keys[i]); err != nil {
			return err
		}
		return e.save(d.Vals[i])
	})
}

func (e *encoder) batches(n int, one, many byte, item func(int) error) error {
	for start := 0; ; start += Batch {
		k := min(n-start, Batch)
		switch {
		case k > 1:
			e.write(OpMark)
			for i := start; i < start+k; i++ {
				if err := item(i); err != nil {
					return err
				}
			}
			e.write(many)
		case k == 1:
			if err := item(start); err != nil {
				return err
			}
			e.write(one)
		}
		if k < Batch {
			return nil
		}
	}
}

// EncodeLong is pickle's encode_long: two's complement, little endian,
// in the fewest bytes that keep the sign.
func EncodeLong(v int64) []byte {
	return encodeBig(big.NewInt(v))
}

func encodeBig(x *big.Int) []byte {
	if x.Sign() == 0 {
		return nil
	}
	n := x.BitLen()>>3 + 1
	// Two's complement in n bytes: x mod 2^(8n).
	m := new(big.Int).Set(x)
	if x.Sign() < 0 {
		m.Add(m, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
	}
	be := m.FillBytes(make([]byte, n))
	out := make([]byte, n)
	for i := range be {
		out[i] = be[n-1-i]
	}
	// Python trims a redundant sign byte: 0xff then a byte with the top
	// bit set, for negatives at a byte boundary.
	if x.Sign() < 0 && n > 1 && out[n-1] == 0xff && out[n-2]&0x80 != 0 {
		out = out[:n-1]
	}
	return out
}
