package pickle

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Error is a decoding failure at a byte offset of the stream.
type Error struct {
	Offset int64
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("%s (at byte %d)", e.Reason, e.Offset) }

// maxLine caps the text arguments of protocol 0 opcodes (GLOBAL names,
// INT, FLOAT, PUT): none is longer than a few hundred bytes in practice.
const maxLine = 4096

// Decoder holds one use's allow-list.
type Decoder struct {
	// Globals maps every global the stream may name to what calling it
	// makes. Any other global fails the decode: nothing is imported or
	// called by name.
	Globals map[Global]Func
	// PersistentLoad, when set, stands for Python's
	// Unpickler.persistent_load: it gets the persistent id of PERSID (a
	// str) or BINPERSID (any value) and returns the object it names.
	// Without it a persistent id fails the decode.
	PersistentLoad func(pid any) (any, error)
}

// Decode unpickles b. Bytes values share memory with b.
func (d *Decoder) Decode(b []byte) (any, error) {
	v, _, err := d.DecodePrefix(b)
	return v, err
}

// DecodePrefix unpickles the pickle at the start of b and also returns
// its length (the offset after STOP), for streams that hold several
// pickles one after another (torch.save's legacy format).
func (d *Decoder) DecodePrefix(b []byte) (any, int, error) {
	m := &machine{in: b, globals: d.Globals, persistent: d.PersistentLoad, memo: map[uint64]any{}}
	v, err := m.run()
	if err != nil {
		return nil, 0, &Error{Offset: int64(m.op), Reason: err.Error()}
	}
	return v, m.pos, nil
}

// Decode unpickles b with the allow-list globals.
func Decode(b []byte, globals map[Global]Func) (any, error) {
	return (&Decoder{Globals: globals}).Decode(b)
}

type machine struct {
	in      []byte
	pos, op int
	stack   []any
	marks   []int
	memo    map[uint64]any
	globals map[Global]Func

	persistent func(any) (any, error)
	updated    int // dict entries BUILD has copied
}

var errUnderflow = errors.New("stack underflow")

func (m *machine) need(n uint64) ([]byte, error) {
	if n > uint64(len(m.in)-m.pos) {
		return nil, fmt.Errorf("truncated: need %d bytes at %d, the stream is %d bytes long", n, m.pos, len(m.in))
	}
	b := m.in[m.pos : m.pos+int(n)]
	m.pos += int(n)
	return b, nil
}

// sized reads an n-byte little-endian length and then that many bytes.
func (m *machine) sized(n int) ([]byte, error) {
	l, err := m.uint(n)
	if err != nil {
		return nil, err
	}
	if l > uint64(len(m.in)-m.pos) {
		return nil, fmt.Errorf("%d bytes announced, longer than the file's %d left", l, len(m.in)-m.pos)
	}
	return m.need(l)
}

func (m *machine) uint(n int) (uint64, error) {
	b, err := m.need(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

func (m *machine) line() (string, error) {
	i := bytes.IndexByte(m.in[m.pos:min(len(m.in), m.pos+maxLine)], '\n')
	if i < 0 {
		return "", errors.New("unterminated line")
	}
	s := string(m.in[m.pos : m.pos+i])
	m.pos += i + 1
	return s, nil
}

// push never grows the stack past the input's length: every push comes
// from at least one byte of input, except DUP and memo gets, which a
// hostile stream could repeat; the cap stops those.
func (m *machine) push(v any) error {
	if len(m.stack) > len(m.in) {
		return errors.New("stack deeper than the stream is long")
	}
	m.stack = append(m.stack, v)
	return nil
}

func (m *machine) floor() int {
	if len(m.marks) > 0 {
		return m.marks[len(m.marks)-1]
	}
	return 0
}

func (m *machine) pop() (any, error) {
	if len(m.stack) <= m.floor() {
		return nil, errUnderflow
	}
	v := m.stack[len(m.stack)-1]
	m.stack = m.stack[:len(m.stack)-1]
	return v, nil
}

func (m *machine) top() (any, error) {
	if len(m.stack) <= m.floor() {
		return nil, errUnderflow
	}
	return m.stack[len(m.stack)-1], nil
}

func (m *machine) popN(n int) ([]any, error) {
	if len(m.stack)-n < m.floor() {
		return nil, errUnderflow
	}
	items := make([]any, n) // never nil: Tuple{} and TUPLE of nothing are one value
	copy(items, m.stack[len(m.stack)-n:])
	m.stack = m.stack[:len(m.stack)-n]
	return items, nil
}

func (m *machine) popMark() ([]any, error) {
	if len(m.marks) == 0 {
		return nil, errors.New("no mark")
	}
	k := m.marks[len(m.marks)-1]
	m.marks = m.marks[:len(m.marks)-1]
	items := make([]any, len(m.stack)-k)
	copy(items, m.stack[k:])
	m.stack = m.stack[:k]
	return items, nil
}

func (m *machine) run() (any, error) {
	for {
		if m.pos >= len(m.in) {
			m.op = m.pos
			return nil, errors.New("no STOP opcode")
		}
		m.op = m.pos
		op := m.in[m.pos]
		m.pos++
		if op == '.' {
			v, err := m.pop()
			if err != nil {
				return nil, err
			}
			if len(m.marks) > 0 {
				return nil, errors.New("STOP inside a MARK")
			}
			return v, nil
		}
		if err := m.step(op); err != nil {
			return nil, err
		}
	}
}

func (m *machine) step(op byte) error {
	switch op {
	case 0x80: // PROTO
		v, err := m.uint(1)
		if err == nil && v > 5 {
			err = fmt.Errorf("pickle protocol %d, want at most 5", v)
		}
		return err
	case 0x95: // FRAME: frames only group opcodes
		l, err := m.uint(8)
		if err == nil && l > uint64(len(m.in)-m.pos) {
			err = fmt.Errorf("frame of %d bytes, longer than the file", l)
		}
		return err
	case 0x98: // READONLY_BUFFER: no-op on bytes
		_, err := m.top()
		return err
	case 0x97: // NEXT_BUFFER
		return errors.New("out-of-band buffers (NEXT_BUFFER) are not supported")
	case '(': // MARK
		if len(m.marks) > len(m.in) {
			return errors.New("too many marks")
		}
		m.marks = append(m.marks, len(m.stack))
		return nil
	case 'N':
		return m.push(nil)
	case 0x88, 0x89: // NEWTRUE, NEWFALSE
		return m.push(op == 0x88)
	case ')':
		return m.push(Tuple{})
	case ']':
		return m.push(&List{Items: []any{}})
	case '}':
		return m.push(&Dict{})
	case 0x8f: // EMPTY_SET
		return m.push(&Set{Items: []any{}})
	case 'J', 'K', 'M': // BININT, BININT1, BININT2
		n := map[byte]int{'J': 4, 'K': 1, 'M': 2}[op]
		v, err := m.uint(n)
		if err != nil {
			return err
		}
		if op == 'J' {
			return m.push(int64(int32(uint32(v))))
		}
		return m.push(int64(v))
	case 0x8a, 0x8b: // LONG1, LONG4
		b, err := m.sized(map[byte]int{0x8a: 1, 0x8b: 4}[op])
		if err != nil {
			return err
		}
		return m.push(decodeLong(b))
	case 'G': // BINFLOAT
		b, err := m.need(8)
		if err != nil {
			return err
		}
		return m.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
	case 'I', 'L': // INT, LONG (protocol 0)
		s, err := m.line()
		if err != nil {
			return err
		}
		switch s = strings.TrimSuffix(s, "L"); s {
		case "00":
			return m.push(false)
		case "01":
			return m.push(true)
		}
		if v, err := strconv.ParseInt(s, 10, 64); err == nil {
			return m.push(v)
		}
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			return fmt.Errorf("bad int %q", s)
		}
		return m.push(v)
	case 'F': // FLOAT
		s, err := m.line()
		if err != nil {
			return err
		}
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("bad float %q", s)
		}
		return m.push(v)
	case 'X', 0x8c, 0x8d: // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
		b, err := m.sized(map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8}[op])
		if err != nil {
			return err
		}
		if !utf8.Valid(b) {
			return errors.New("invalid utf-8 string")
		}
		return m.push(string(b))
	case 'B', 'C', 0x8e, 'T', 'U', 0x96: // BINBYTES, SHORT_BINBYTES, BINBYTES8, BINSTRING, SHORT_BINSTRING, BYTEARRAY8
		n := map[byte]int{'B': 4, 'C': 1, 0x8e: 8, 'T': 4, 'U': 1, 0x96: 8}[op]
		b, err := m.sized(n)
		if err != nil {
			return err
		}
		return m.push(b)
	case 'V': // UNICODE (raw-unicode-escape)
		s, err := m.line()
		if err != nil {
			return err
		}
		u, err := rawUnicodeEscape(s)
		if err != nil {
			return err
		}
		return m.push(u)
	case 'S': // STRING (a Python repr)
		s, err := m.line()
		if err != nil {
			return err
		}
		b, err := unrepr(s)
		if err != nil {
			return err
		}
		return m.push(b)
	case 't':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(Tuple(items))
	case 0x85, 0x86, 0x87: // TUPLE1..3
		items, err := m.popN(int(op - 0x84))
		if err != nil {
			return err
		}
		return m.push(Tuple(items))
	case 'l':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&List{Items: items})
	case 'd':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		d := &Dict{}
		if err := setItems(d, items); err != nil {
			return err
		}
		return m.push(d)
	case 0x91: // FROZENSET
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.push(&Set{Items: items})
	case 'a':
		v, err := m.pop()
		if err != nil {
			return err
		}
		return m.appendTo([]any{v})
	case 'e':
		items, err := m.popMark()
		if err != nil {
			return err
		}
		return m.appendTo(items)
	case 0x90: // ADDITEMS
		items, err := m.popMark()
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		s, ok := t.(*Set)
		if !ok {
			return fmt.Errorf("ADDITEMS on %s", TypeName(t))
		}
		s.Items = append(s.Items, items...)
		return nil
	case 's', 'u': // SETITEM, SETITEMS
		var items []any
		var err error
		if op == 's' {
			items, err = m.popN(2)
		} else {
			items, err = m.popMark()
		}
		if err != nil {
			return err
		}
		t, err := m.top()
		if err != nil {
			return err
		}
		d, ok := t.(*Dict)
		if !ok {
			return fmt.Errorf("SETITEM on %s", TypeName(t))
		}
		return setItems(d, items)
	case '0': // POP
		if len(m.marks) > 0 && len(m.stack) == m.marks[len(m.marks)-1] {
			_, err := m.popMark() // POP of a MARK, as CPython allows
			return err
		}
		_, err := m.pop()
		return err
	case '1': // POP_MARK
		_, err := m.popMark()
		return err
	case '2': // DUP
		v, err := m.top()
		if err != nil {
			return err
		}
		return m.push(v)
	case 'p', 'g': // PUT, GET
		s, err := m.line()
		if err != nil {
			return err
		}
		i, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("bad memo index %q", s)
		}
		if op == 'p' {
			return m.put(i)
		}
		return m.get(i)
	case 'q', 'r', 0x94: // BINPUT, LONG_BINPUT, MEMOIZE
		var i uint64
		var err error
		switch op {
		case 'q':
			i, err = m.uint(1)
		case 'r':
			i, err = m.uint(4)
		default:
			i = uint64(len(m.memo))
		}
		if err != nil {
			return err
		}
		return m.put(i)
	case 'h', 'j': // BINGET, LONG_BINGET
		i, err := m.uint(map[byte]int{'h': 1, 'j': 4}[op])
		if err != nil {
			return err
		}
		return m.get(i)
	case 'c': // GLOBAL
		mod, err := m.line()
		if err != nil {
			return err
		}
		name, err := m.line()
		if err != nil {
			return err
		}
		return m.global(mod, name)
	case 0x93: // STACK_GLOBAL
		items, err := m.popN(2)
		if err != nil {
			return err
		}
		mod, ok1 := items[0].(string)
		name, ok2 := items[1].(string)
		if !ok1 || !ok2 {
			return errors.New("STACK_GLOBAL of non-strings")
		}
		return m.global(mod, name)
	case 'R', 0x81: // REDUCE, NEWOBJ
		items, err := m.popN(2)
		if err != nil {
			return err
		}
		return m.call(items[0], items[1])
	case 0x92: // NEWOBJ_EX
		items, err := m.popN(3)
		if err != nil {
			return err
		}
		if kw, ok := items[2].(*Dict); !ok || kw.Len() > 0 {
			return errors.New("NEWOBJ_EX with keyword arguments")
		}
		return m.call(items[0], items[1])
	case 'b': // BUILD
		state, err := m.pop()
		if err != nil {
			return err
		}
		obj, err := m.top()
		if err != nil {
			return err
		}
		return m.build(obj, state)
	case 'P', 'Q': // PERSID, BINPERSID
		var pid any
		if op == 'P' {
			l, err := m.line()
			if err != nil {
				return err
			}
			pid = l
		} else {
			v, err := m.pop()
			if err != nil {
				return err
			}
			pid = v
		}
		if m.persistent == nil {
			return errors.New("persistent ids (PERSID) are not supported in this file")
		}
		v, err := m.persistent(pid)
		if err != nil {
			return fmt.Errorf("persistent id: %w", err)
		}
		return m.push(v)
	case 0x82, 0x83, 0x84:
		return errors.New("extension registry codes (EXT) are not supported")
	case 'i', 'o':
		return errors.New("protocol 0/1 instances (INST, OBJ) are not supported")
	}
	return fmt.Errorf("unsupported pickle opcode %#x", op)
}

func (m *machine) appendTo(items []any) error {
	t, err := m.top()
	if err != nil {
		return err
	}
	l, ok := t.(*List)
	if !ok {
		return fmt.Errorf("APPEND on %s", TypeName(t))
	}
	l.Items = append(l.Items, items...)
	return nil
}

func setItems(d *Dict, items []any) error {
	if len(items)%2 != 0 {
		return errors.New("odd number of dict items")
	}
	for i := 0; i < len(items); i += 2 {
		d.Set(items[i], items[i+1])
	}
	return nil
}

func (m *machine) put(i uint64) error {
	v, err := m.top()
	if err != nil {
		return err
	}
	m.memo[i] = v
	return nil
}

func (m *machine) get(i uint64) error {
	v, ok := m.memo[i]
	if !ok {
		return fmt.Errorf("memo %d not set", i)
	}
	return m.push(v)
}

func (m *machine) global(module, name string) error {
	g := Global{module, name}
	if _, ok := m.globals[g]; !ok {
		return fmt.Errorf("global %s.%s is not allowed in this file", module, name)
	}
	return m.push(g)
}

func (m *machine) call(f, args any) error {
	g, ok := f.(Global)
	if !ok {
		return fmt.Errorf("call of %s", TypeName(f))
	}
	a, ok := args.(Tuple)
	if !ok {
		return fmt.Errorf("call of %s.%s with %s arguments", g.Module, g.Name, TypeName(args))
	}
	v, err := m.globals[g](a)
	if err != nil {
		return fmt.Errorf("%s.%s: %w", g.Module, g.Name, err)
	}
	return m.push(v)
}

// build applies BUILD's state. A dict's update is charged to a budget of
// the stream's length: keys Dict cannot hash (tuples) are appended, not
// merged, so BUILDs of a memoized dict into itself would double it each
// time (two bytes per doubling) where Python's would not grow.
func (m *machine) build(obj, state any) error {
	switch o := obj.(type) {
	case Stater:
		return o.SetState(state)
	case *Dict:
		if d, ok := state.(*Dict); ok { // __dict__ update
			m.updated += len(d.Keys)
			if m.updated > 8*len(m.in)+1024 {
				return errors.New("BUILD updates more dict entries than the stream could hold")
			}
			for i := range d.Keys {
				o.Set(d.Keys[i], d.Vals[i])
			}
			return nil
		}
	}
	return fmt.Errorf("BUILD on %s", TypeName(obj))
}

// decodeLong is pickle's decode_long: little-endian two's complement.
func decodeLong(b []byte) any {
	if len(b) <= 8 {
		var v int64
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | int64(b[i])
		}
		if n := len(b); n > 0 && n < 8 && b[n-1]&0x80 != 0 {
			v -= 1 << (8 * n)
		}
		return v
	}
	be := make([]byte, len(b))
	for i := range b {
		be[len(b)-1-i] = b[i]
	}
	n := new(big.Int).SetBytes(be)
	if b[len(b)-1]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	if n.IsInt64() {
		return n.Int64()
	}
	return n
}

// rawUnicodeEscape decodes Python's raw-unicode-escape: \uXXXX and
// \UXXXXXXXX escapes, every other byte a latin-1 character.
func rawUnicodeEscape(s string) (string, error) {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == 'u' || s[i+1] == 'U') {
			n := 4
			if s[i+1] == 'U' {
				n = 8
			}
			if i+2+n > len(s) {
				return "", errors.New("truncated \\u escape")
			}
			r, err := strconv.ParseUint(s[i+2:i+2+n], 16, 32)
			if err != nil || r > utf8.MaxRune {
				return "", fmt.Errorf("bad \\u escape %q", s[i:i+2+n])
			}
			sb.WriteRune(rune(r))
			i += 1 + n
			continue
		}
		sb.WriteRune(rune(s[i]))
	}
	return sb.String(), nil
}

// unrepr decodes STRING's argument, a Python 2 str repr: quoted with ' or
// ", with \\, \', \", \n, \r, \t and \xHH escapes.
func unrepr(s string) ([]byte, error) {
	if len(s) < 2 || (s[0] != '\'' && s[0] != '"') || s[len(s)-1] != s[0] {
		return nil, errors.New("STRING argument is not quoted")
	}
	s = s[1 : len(s)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		if i+1 >= len(s) {
			return nil, errors.New("STRING ends in a backslash")
		}
		i++
		switch s[i] {
		case '\\', '\'', '"':
			out = append(out, s[i])
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'x':
			if i+3 > len(s) {
				return nil, errors.New("truncated \\x escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("bad \\x escape in STRING")
			}
			out = append(out, byte(v))
			i += 2
		default:
			return nil, fmt.Errorf("unsupported escape \\%c in STRING", s[i])
		}
	}
	return out, nil
}
