package video

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math/big"
	"os"
	"unicode/utf8"
)

// maxPKLBytes caps the size of a pkl file read into memory: a 10 s
// Kinetics clip of JPEG frames is a few MB.
const maxPKLBytes = 1 << 30

// Clip is the content of one of Paddle's pkl files: the pickled tuple
// (video_id, label, [JPEG bytes per frame]).
type Clip struct {
	ID     string
	Label  int
	Frames [][]byte
}

// ReadPKL reads a pkl clip written by Python 2's cPickle (protocol 2, str
// as BINSTRING/SHORT_BINSTRING) or Python 3 (protocol 2, where bytes are
// pickled as _codecs.encode(str, "latin1"), or protocol 3 and up).
func ReadPKL(path string) (*Clip, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read pkl: %w", err)
	}
	if st.Size() > maxPKLBytes {
		return nil, fmt.Errorf("read pkl %s: %d bytes, more than the %d allowed", path, st.Size(), maxPKLBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read pkl: %w", err)
	}
	v, err := unpickle(data)
	if err != nil {
		return nil, fmt.Errorf("read pkl %s: %w", path, err)
	}
	c, err := clipFrom(v)
	if err != nil {
		return nil, fmt.Errorf("read pkl %s: %w", path, err)
	}
	return c, nil
}

func clipFrom(v any) (*Clip, error) {
	t, ok := v.(pyTuple)
	if !ok {
		if l, isList := v.(pyList); isList {
			t = pyTuple(l)
		} else {
			return nil, fmt.Errorf("want a tuple (video_id, label, frames), got %s", pyType(v))
		}
	}
	if len(t) != 3 {
		return nil, fmt.Errorf("want a tuple (video_id, label, frames), got %d items", len(t))
	}
	c := &Clip{}
	switch id := t[0].(type) {
	case string:
		c.ID = id
	case []byte:
		c.ID = string(id)
	case int64:
		c.ID = fmt.Sprint(id)
	default:
		return nil, fmt.Errorf("video_id is %s, want str", pyType(t[0]))
	}
	label, ok := t[1].(int64)
	if !ok || label < 0 || label > 1<<30 {
		return nil, fmt.Errorf("label is %s %v, want a class index", pyType(t[1]), t[1])
	}
	c.Label = int(label)
	var frames []any
	switch f := t[2].(type) {
	case pyList:
		frames = f
	case pyTuple:
		frames = f
	default:
		return nil, fmt.Errorf("frames are %s, want a list of JPEG bytes", pyType(t[2]))
	}
	for i, f := range frames {
		b, ok := f.([]byte)
		if !ok {
			return nil, fmt.Errorf("frame %d is %s, want JPEG bytes", i, pyType(f))
		}
		c.Frames = append(c.Frames, b)
	}
	if len(c.Frames) == 0 {
		return nil, ErrNoFrames
	}
	return c, nil
}

// DecodeJPEG decodes one pkl frame to RGB.
func DecodeJPEG(b []byte) (*Image, error) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("decode jpeg: %w", err)
	}
	r := img.Bounds()
	m := NewImage(r.Dx(), r.Dy())
	switch src := img.(type) {
	case *image.YCbCr:
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				c := src.YCbCrAt(r.Min.X+x, r.Min.Y+y)
				i := y*m.Stride + 3*x
				m.Pix[i], m.Pix[i+1], m.Pix[i+2] = color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
			}
		}
	default:
		for y := 0; y < m.H; y++ {
			for x := 0; x < m.W; x++ {
				cr, cg, cb, _ := img.At(r.Min.X+x, r.Min.Y+y).RGBA()
				i := y*m.Stride + 3*x
				m.Pix[i], m.Pix[i+1], m.Pix[i+2] = uint8(cr>>8), uint8(cg>>8), uint8(cb>>8)
			}
		}
	}
	return m, nil
}

// pickle values: str is string, Python 2 str and bytes are []byte, int is
// int64.
type (
	pyList  []any
	pyTuple []any
	pyMark  struct{}
	pyNone  struct{}
	pyGlob  struct{ module, name string }
)

func pyType(v any) string {
	switch v.(type) {
	case string:
		return "str"
	case []byte:
		return "bytes"
	case int64:
		return "int"
	case bool:
		return "bool"
	case pyList:
		return "list"
	case pyTuple:
		return "tuple"
	case pyNone:
		return "None"
	}
	return fmt.Sprintf("%T", v)
}

var errPickleShort = errors.New("pickle truncated")

// unpickle runs the subset of the pickle machine that Paddle's pkl clips
// use. Every length is checked against the bytes left before anything is
// allocated.
func unpickle(data []byte) (any, error) {
	var stack []any
	memo := map[uint64]any{}
	pos := 0
	take := func(n uint64) ([]byte, error) {
		if n > uint64(len(data)-pos) {
			return nil, errPickleShort
		}
		b := data[pos : pos+int(n)]
		pos += int(n)
		return b, nil
	}
	u := func(n int) (uint64, error) {
		b, err := take(uint64(n))
		if err != nil {
			return 0, err
		}
		var v uint64
		for i := n - 1; i >= 0; i-- {
			v = v<<8 | uint64(b[i])
		}
		return v, nil
	}
	pop := func() (any, error) {
		if len(stack) == 0 {
			return nil, errors.New("pickle stack underflow")
		}
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		return v, nil
	}
	popMark := func() ([]any, error) {
		for i := len(stack) - 1; i >= 0; i-- {
			if _, ok := stack[i].(pyMark); ok {
				items := append([]any(nil), stack[i+1:]...)
				stack = stack[:i]
				return items, nil
			}
		}
		return nil, errors.New("pickle mark not found")
	}
	line := func() (string, error) {
		i := bytes.IndexByte(data[pos:], '\n')
		if i < 0 {
			return "", errPickleShort
		}
		s := string(data[pos : pos+i])
		pos += i + 1
		return s, nil
	}
	for {
		if pos >= len(data) {
			return nil, errPickleShort
		}
		op := data[pos]
		opAt := pos
		pos++
		var err error
		switch op {
		case 0x80: // PROTO
			_, err = u(1)
		case 0x95: // FRAME
			_, err = u(8)
		case '.': // STOP
			v, err := pop()
			if err != nil {
				return nil, err
			}
			return v, nil
		case '(':
			stack = append(stack, pyMark{})
		case ')':
			stack = append(stack, pyTuple{})
		case ']':
			stack = append(stack, pyList{})
		case 'N':
			stack = append(stack, pyNone{})
		case 0x88, 0x89: // NEWTRUE, NEWFALSE
			stack = append(stack, op == 0x88)
		case 'l', 't':
			var items []any
			if items, err = popMark(); err == nil {
				if op == 'l' {
					stack = append(stack, pyList(items))
				} else {
					stack = append(stack, pyTuple(items))
				}
			}
		case 0x85, 0x86, 0x87: // TUPLE1..3
			n := int(op-0x85) + 1
			if len(stack) < n {
				return nil, errors.New("pickle stack underflow")
			}
			t := append(pyTuple(nil), stack[len(stack)-n:]...)
			stack = append(stack[:len(stack)-n], t)
		case 'a', 'e': // APPEND, APPENDS
			var items []any
			if op == 'a' {
				var v any
				v, err = pop()
				items = []any{v}
			} else {
				items, err = popMark()
			}
			if err == nil {
				if len(stack) == 0 {
					return nil, errors.New("pickle stack underflow")
				}
				l, ok := stack[len(stack)-1].(pyList)
				if !ok {
					return nil, fmt.Errorf("pickle append to %s", pyType(stack[len(stack)-1]))
				}
				stack[len(stack)-1] = append(l, items...)
			}
		case 'J': // BININT
			var v uint64
			if v, err = u(4); err == nil {
				stack = append(stack, int64(int32(uint32(v))))
			}
		case 'K', 'M': // BININT1, BININT2
			n := 1
			if op == 'M' {
				n = 2
			}
			var v uint64
			if v, err = u(n); err == nil {
				stack = append(stack, int64(v))
			}
		case 0x8a: // LONG1
			var n uint64
			var b []byte
			if n, err = u(1); err == nil {
				if b, err = take(n); err == nil {
					stack = append(stack, long1(b))
				}
			}
		case 'T', 'U', 'B', 'C', 0x8e, 'X', 0x8c, 0x8d: // strings and bytes
			var n uint64
			switch op {
			case 'U', 'C', 0x8c:
				n, err = u(1)
			case 0x8e, 0x8d:
				n, err = u(8)
			default:
				n, err = u(4)
				if op == 'T' && int32(uint32(n)) < 0 {
					return nil, errors.New("pickle negative string length")
				}
			}
			var b []byte
			if err == nil {
				b, err = take(n)
			}
			if err == nil {
				switch op {
				case 'X', 0x8c, 0x8d:
					if !utf8.Valid(b) {
						return nil, errors.New("pickle unicode is not utf-8")
					}
					stack = append(stack, string(b))
				default:
					stack = append(stack, append([]byte(nil), b...))
				}
			}
		case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
			var k uint64
			switch op {
			case 'q':
				k, err = u(1)
			case 'r':
				k, err = u(4)
			default:
				k = uint64(len(memo))
			}
			if err == nil {
				if len(stack) == 0 {
					return nil, errors.New("pickle stack underflow")
				}
				memo[k] = stack[len(stack)-1]
			}
		case 'h', 'j': // BINGET, LONG_BINGET
			var k uint64
			if op == 'h' {
				k, err = u(1)
			} else {
				k, err = u(4)
			}
			if err == nil {
				v, ok := memo[k]
				if !ok {
					return nil, fmt.Errorf("pickle memo %d missing", k)
				}
				stack = append(stack, v)
			}
		case 'c': // GLOBAL
			var mod, name string
			if mod, err = line(); err == nil {
				if name, err = line(); err == nil {
					stack = append(stack, pyGlob{mod, name})
				}
			}
		case 'R': // REDUCE
			var args, fn any
			if args, err = pop(); err == nil {
				if fn, err = pop(); err == nil {
					var v any
					if v, err = reduce(fn, args); err == nil {
						stack = append(stack, v)
					}
				}
			}
		default:
			return nil, fmt.Errorf("pickle opcode 0x%02x at byte %d not supported (a pkl clip holds only str, bytes, int, list and tuple)", op, opAt)
		}
		if err != nil {
			return nil, err
		}
	}
}

// reduce handles the two callables Python 3 uses to pickle bytes at
// protocol 2: _codecs.encode(str, "latin1") and bytes() for b"".
func reduce(fn, args any) (any, error) {
	g, ok := fn.(pyGlob)
	a, okArgs := args.(pyTuple)
	if !ok || !okArgs {
		return nil, errors.New("pickle reduce without a global and an argument tuple")
	}
	switch {
	case g.module == "_codecs" && g.name == "encode" && len(a) == 2:
		s, ok1 := a[0].(string)
		enc, ok2 := a[1].(string)
		if !ok1 || !ok2 || (enc != "latin1" && enc != "latin-1") {
			return nil, errors.New("pickle _codecs.encode with unexpected arguments")
		}
		b := make([]byte, 0, len(s))
		for _, r := range s {
			if r > 0xff {
				return nil, errors.New("pickle latin1 text out of range")
			}
			b = append(b, byte(r))
		}
		return b, nil
	case (g.module == "__builtin__" || g.module == "builtins") && g.name == "bytes" && len(a) == 0:
		return []byte{}, nil
	}
	return nil, fmt.Errorf("pickle global %s.%s not supported", g.module, g.name)
}

// long1 decodes a little-endian two's complement integer; values beyond
// int64 are clamped so that they fail the range checks that follow.
func long1(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if !n.IsInt64() {
		if n.Sign() < 0 {
			return -1 << 63
		}
		return 1<<63 - 1
	}
	return n.Int64()
}
