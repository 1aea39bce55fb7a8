package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLiteralDepth caps list nesting so that a hostile value cannot exhaust
// the stack; Paddle's configs nest at most one level.
const maxLiteralDepth = 32

// ParseValue interprets s the way Paddle's parse_config does: it runs
// Python's eval on the raw text and keeps the text when eval fails. zoo
// evaluates only literals:
//
//   - ints (42, -3, 1_000, 0x1f), floats (0.01, 1e-4, .5), True, False, None
//     (nil), strings in single or double quotes with Python escapes, and lists
//     or tuples of those ([1, 2], (0.485, 0.456), ["a"]); a '#' starts a
//     comment, as in Python;
//   - anything else that starts like a literal (a quote, a bracket, a digit,
//     a sign or a dot followed by a digit) must parse completely, or ParseValue
//     fails; Paddle would silently keep such text as a string, and a typo like
//     "[1, 2" is far likelier than a string that looks like that;
//   - any other text is a bare string, kept as written (trimmed), which is
//     what Paddle's failing eval gives for paths and words.
//
// Ints are int, floats float64, lists and tuples []any.
func ParseValue(s string) (any, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return "", nil
	}
	if !startsLiteral(t) {
		// True/False/None may be followed by a Python comment.
		word := t
		if i := strings.IndexByte(word, '#'); i >= 0 {
			word = strings.TrimSpace(word[:i])
		}
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
		return t, nil
	}
	p := &litParser{s: t}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.i < len(p.s) {
		return nil, fmt.Errorf("unexpected %q after the value", p.rest())
	}
	return v, nil
}

// startsLiteral reports whether t must be parsed as a Python literal.
func startsLiteral(t string) bool {
	c := t[0]
	switch {
	case strings.ContainsRune("[({'\"", rune(c)):
		return true
	case c >= '0' && c <= '9':
		return true
	case c == '+' || c == '-' || c == '.':
		r := strings.TrimLeft(t, "+- \t")
		r = strings.TrimPrefix(r, ".")
		return r != "" && r[0] >= '0' && r[0] <= '9'
	}
	return false
}

type litParser struct {
	s string
	i int
}

var errEnd = errors.New("unexpected end of value")

func (p *litParser) rest() string {
	r := p.s[p.i:]
	if len(r) > 20 {
		r = r[:20] + "..."
	}
	return r
}

// space skips whitespace, newlines (values may span continuation lines) and
// Python comments.
func (p *litParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.i++
		case '#':
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			return
		}
	}
}

func (p *litParser) value(depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, fmt.Errorf("lists nested deeper than %d", maxLiteralDepth)
	}
	p.space()
	if p.i >= len(p.s) {
		return nil, errEnd
	}
	c := p.s[p.i]
	switch {
	case c == '[':
		p.i++
		return p.sequence(']', depth)
	case c == '(':
		p.i++
		return p.sequence(')', depth)
	case c == '{':
		return nil, errors.New("dict and set values are not supported")
	case c == '\'' || c == '"':
		return p.strings()
	case c == '+' || c == '-':
		neg := false
		for p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-' || p.s[p.i] == ' ' || p.s[p.i] == '\t') {
			if p.s[p.i] == '-' {
				neg = !neg
			}
			p.i++
		}
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		if neg {
			switch n := v.(type) {
			case int:
				return -n, nil
			case float64:
				return -n, nil
			}
		}
		return v, nil
	case c == '.' || (c >= '0' && c <= '9'):
		return p.number()
	case isIdentStart(c):
		j := p.i
		for j < len(p.s) && isIdentChar(p.s[j]) {
			j++
		}
		word := p.s[p.i:j]
		switch word {
		case "True":
			p.i = j
			return true, nil
		case "False":
			p.i = j
			return false, nil
		case "None":
			p.i = j
			return nil, nil
		}
		return nil, fmt.Errorf("name %q is not a literal (quote strings inside lists)", word)
	}
	return nil, fmt.Errorf("unexpected %q", p.rest())
}

// sequence parses list or tuple items up to the closing bracket. A
// parenthesised single value without a comma is just that value, as in
// Python.
func (p *litParser) sequence(closing byte, depth int) (any, error) {
	items := []any{}
	sawComma := false
	for {
		p.space()
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("%w, wanted %q", errEnd, closing)
		}
		if p.s[p.i] == closing {
			p.i++
			if closing == ')' && len(items) == 1 && !sawComma {
				return items[0], nil
			}
			return items, nil
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.space()
		if p.i >= len(p.s) {
			return nil, fmt.Errorf("%w, wanted %q", errEnd, closing)
		}
		switch p.s[p.i] {
		case ',':
			sawComma = true
			p.i++
		case closing:
		default:
			return nil, fmt.Errorf("unexpected %q, wanted ',' or %q", p.rest(), closing)
		}
	}
}

// number parses an unsigned Python int or float literal.
func (p *litParser) number() (any, error) {
	start := p.i
	j := p.i
	for j < len(p.s) && (isIdentChar(p.s[j]) || p.s[j] == '.' ||
		((p.s[j] == '+' || p.s[j] == '-') && j > start && (p.s[j-1] == 'e' || p.s[j-1] == 'E') && !isHexPrefixed(p.s[start:j]))) {
		j++
	}
	tok := p.s[start:j]
	if tok == "" {
		return nil, fmt.Errorf("unexpected %q", p.rest())
	}
	p.i = j
	if v, ok := parsePyInt(tok); ok {
		return v, nil
	}
	if v, ok := parsePyFloat(tok); ok {
		if math.IsInf(v, 0) {
			// Python's eval gives inf; zoo refuses, as no key wants it and
			// JSON cannot carry it to the plugin.
			return nil, fmt.Errorf("number %s is out of range", tok)
		}
		return v, nil
	}
	if strings.Trim(tok, "0123456789_") == "" && validUnderscores(tok, isDec) && (tok[0] != '0' || len(tok) == 1) {
		return nil, fmt.Errorf("integer %s is out of range", tok)
	}
	return nil, fmt.Errorf("invalid number %q", tok)
}

func isHexPrefixed(s string) bool {
	return len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')
}

// validUnderscores checks Python's rule: an underscore only between digits.
func validUnderscores(s string, isDigit func(byte) bool) bool {
	for k := 0; k < len(s); k++ {
		if s[k] == '_' && (k == 0 || k == len(s)-1 || !isDigit(s[k-1]) || !isDigit(s[k+1])) {
			return false
		}
	}
	return true
}

func isDec(c byte) bool { return c >= '0' && c <= '9' }

func parsePyInt(tok string) (int, bool) {
	if len(tok) > 2 && tok[0] == '0' && strings.ContainsRune("xXoObB", rune(tok[1])) {
		digits := tok[2:]
		base := map[byte]int{'x': 16, 'X': 16, 'o': 8, 'O': 8, 'b': 2, 'B': 2}[tok[1]]
		// Python allows one underscore right after the prefix: 0x_ff.
		digits = strings.TrimPrefix(digits, "_")
		isDigit := func(c byte) bool {
			_, err := strconv.ParseUint(string(c), base, 8)
			return err == nil
		}
		if digits == "" || !validUnderscores(digits, isDigit) {
			return 0, false
		}
		v, err := strconv.ParseInt(strings.ReplaceAll(digits, "_", ""), base, 64)
		return int(v), err == nil
	}
	for k := 0; k < len(tok); k++ {
		if !isDec(tok[k]) && tok[k] != '_' {
			return 0, false
		}
	}
	if !validUnderscores(tok, isDec) {
		return 0, false
	}
	plain := strings.ReplaceAll(tok, "_", "")
	// Python 3 rejects leading zeros ("007") except in zero itself ("00").
	if len(plain) > 1 && plain[0] == '0' && strings.Trim(plain, "0") != "" {
		return 0, false
	}
	v, err := strconv.ParseInt(plain, 10, 64)
	return int(v), err == nil
}

func parsePyFloat(tok string) (float64, bool) {
	mant, exp := tok, ""
	if k := strings.IndexAny(tok, "eE"); k >= 0 {
		mant, exp = tok[:k], tok[k+1:]
		e := strings.TrimLeft(exp, "+-")
		if len(exp)-len(e) > 1 || e == "" || !isDec(e[0]) || !validUnderscores(e, isDec) {
			return 0, false
		}
		for k := 0; k < len(e); k++ {
			if !isDec(e[k]) && e[k] != '_' {
				return 0, false
			}
		}
	}
	intPart, frac, hasDot := strings.Cut(mant, ".")
	if !hasDot && exp == "" {
		return 0, false
	}
	if intPart == "" && frac == "" {
		return 0, false
	}
	for _, part := range []string{intPart, frac} {
		for k := 0; k < len(part); k++ {
			if !isDec(part[k]) && part[k] != '_' {
				return 0, false
			}
		}
		if part != "" && (!isDec(part[0]) || !validUnderscores(part, isDec)) {
			return 0, false
		}
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(tok, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return v, true
}

// strings parses one or more adjacent quoted strings ("a" "b" is "ab" in
// Python).
func (p *litParser) strings() (any, error) {
	var b strings.Builder
	for {
		s, err := p.quoted()
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
		j := p.i
		p.space()
		if p.i < len(p.s) && (p.s[p.i] == '\'' || p.s[p.i] == '"') {
			continue
		}
		p.i = j
		return b.String(), nil
	}
}

func (p *litParser) quoted() (string, error) {
	q := p.s[p.i]
	if strings.HasPrefix(p.s[p.i:], strings.Repeat(string(q), 3)) {
		return "", errors.New("triple-quoted strings are not supported")
	}
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == q:
			p.i++
			return b.String(), nil
		case c == '\n':
			return "", errors.New("unterminated string")
		case c == '\\':
			if err := p.escape(&b); err != nil {
				return "", err
			}
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", errors.New("unterminated string")
}

// escape decodes one backslash escape as Python 3 does for str literals;
// unknown escapes keep the backslash, as Python does.
func (p *litParser) escape(b *strings.Builder) error {
	p.i++ // the backslash
	if p.i >= len(p.s) {
		return errors.New("unterminated string")
	}
	c := p.s[p.i]
	p.i++
	simple := map[byte]string{'\\': "\\", '\'': "'", '"': "\"", 'n': "\n", 't': "\t", 'r': "\r",
		'a': "\a", 'b': "\b", 'f': "\f", 'v': "\v", '\n': ""}
	if s, ok := simple[c]; ok {
		b.WriteString(s)
		return nil
	}
	hex := func(n int) error {
		if p.i+n > len(p.s) {
			return fmt.Errorf("truncated \\%c escape", c)
		}
		v, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
		if err != nil || !utf8.ValidRune(rune(v)) {
			return fmt.Errorf("invalid \\%c escape %q", c, p.s[p.i:p.i+n])
		}
		b.WriteRune(rune(v))
		p.i += n
		return nil
	}
	switch {
	case c == 'x':
		return hex(2)
	case c == 'u':
		return hex(4)
	case c == 'U':
		return hex(8)
	case c >= '0' && c <= '7':
		v := int(c - '0')
		for k := 0; k < 2 && p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '7'; k++ {
			v = v*8 + int(p.s[p.i]-'0')
			p.i++
		}
		b.WriteRune(rune(v))
		return nil
	}
	b.WriteByte('\\')
	b.WriteByte(c)
	return nil
}

func isIdentStart(c byte) bool {
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool { return isIdentStart(c) || isDec(c) }
