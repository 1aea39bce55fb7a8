package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// defaultSection is configparser's default_section: its keys appear in every
// other section unless that section sets them itself, and it is not a section
// of its own. Like configparser, only this exact spelling is special.
const defaultSection = "DEFAULT"

// maxInterpolationDepth is configparser's MAX_INTERPOLATION_DEPTH.
const maxInterpolationDepth = 10

// maxLineBytes bounds one line of a config file; Paddle's longest is under
// 100 bytes, so a longer line is a wrong file, not a config.
const maxLineBytes = 1 << 20

type rawOption struct {
	key    string
	lines  []string // first line's value, then continuation lines
	line   int      // line of the key
	indent int
}

type rawSection struct {
	name  string // as written, trimmed
	line  int
	order []string
	opts  map[string]*rawOption
}

// ParseINI reads a Paddle config in configparser's INI dialect (the format
// of PaddleCV/video/configs/tsm.txt, read by Paddle's config.py with
// ConfigParser and eval):
//
//   - "[SECTION]" headers; names are upper-cased, as Paddle does with
//     sec.upper(). A section appearing twice is an error even when only the
//     case differs (configparser rejects exact repeats; Paddle would let a
//     later [train] silently replace [TRAIN]).
//   - "key = value" or "key: value" lines; keys are lower-cased
//     (configparser's optionxform). A key set twice in one section is an
//     error naming both lines, as configparser's strict mode has it.
//   - lines starting with '#' or ';' are comments; a value may continue on
//     more-indented lines; [DEFAULT] keys are inherited by every section.
//   - values are Python literals (see ParseValue), after configparser's
//     basic interpolation: "%%" is a percent sign, "%(key)s" the raw value of
//     another key of the section, and any other '%' an error, as in Paddle.
//
// Errors are one line: "name:line: what".
func ParseINI(name string, r io.Reader) (Config, error) {
	sections, err := readINI(name, r)
	if err != nil {
		return nil, err
	}
	var defaults *rawSection
	cfg := Config{}
	for _, s := range sections {
		if s.name == defaultSection {
			defaults = s
		}
	}
	for _, s := range sections {
		if s == defaults {
			continue
		}
		sec := map[string]any{}
		keys := append([]string(nil), s.order...)
		if defaults != nil {
			for _, k := range defaults.order {
				if _, ok := s.opts[k]; !ok {
					keys = append(keys, k)
				}
			}
		}
		for _, k := range keys {
			o := lookupRaw(s, defaults, k)
			raw, err := interpolate(s, defaults, o, 0)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: key %s in [%s]: %w", name, o.line, k, s.name, err)
			}
			v, err := ParseValue(raw)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: cannot parse value %q for key %s: %w", name, o.line, strings.TrimSpace(raw), k, err)
			}
			sec[k] = v
		}
		cfg[strings.ToUpper(s.name)] = sec
	}
	return cfg, nil
}

func lookupRaw(s, defaults *rawSection, key string) *rawOption {
	if o, ok := s.opts[key]; ok {
		return o
	}
	if defaults != nil {
		return defaults.opts[key]
	}
	return nil
}

func (o *rawOption) value() string {
	return strings.TrimRightFunc(strings.Join(o.lines, "\n"), isSpace)
}

func isSpace(r rune) bool {
	return r == ' ' || r == '\t' || r == '\n' || r == '\r' || r == '\f' || r == '\v'
}

var errInterpolation = errors.New("bad interpolation")

// interpolate applies configparser's BasicInterpolation to the raw value.
func interpolate(s, defaults *rawSection, o *rawOption, depth int) (string, error) {
	raw := o.value()
	if !strings.Contains(raw, "%") {
		return raw, nil
	}
	if depth > maxInterpolationDepth {
		return "", fmt.Errorf("%w: references nested deeper than %d (a loop?)", errInterpolation, maxInterpolationDepth)
	}
	var b strings.Builder
	for raw != "" {
		i := strings.IndexByte(raw, '%')
		if i < 0 {
			b.WriteString(raw)
			break
		}
		b.WriteString(raw[:i])
		raw = raw[i:]
		switch {
		case strings.HasPrefix(raw, "%%"):
			b.WriteByte('%')
			raw = raw[2:]
		case strings.HasPrefix(raw, "%("):
			end := strings.Index(raw, ")s")
			if end < 0 {
				return "", fmt.Errorf("%w: %q must be %%(name)s", errInterpolation, raw)
			}
			ref := strings.ToLower(raw[2:end])
			ro := lookupRaw(s, defaults, ref)
			if ro == nil {
				return "", fmt.Errorf("%w: %%(%s)s names no key of [%s]", errInterpolation, ref, s.name)
			}
			v, err := interpolate(s, defaults, ro, depth+1)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			raw = raw[end+2:]
		default:
			return "", fmt.Errorf("%w: '%%' must be followed by '%%' or '(' (write %%%% for a percent sign)", errInterpolation)
		}
	}
	return b.String(), nil
}

// readINI splits the file into sections and raw option values, following
// configparser's RawConfigParser._read line rules.
func readINI(name string, r io.Reader) ([]*rawSection, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), maxLineBytes)
	var (
		sections []*rawSection
		byName   = map[string]*rawSection{}
		cur      *rawSection
		opt      *rawOption
		indent   = math.MaxInt
		lineno   = 0
	)
	for sc.Scan() {
		lineno++
		line := sc.Text()
		if lineno == 1 {
			line = strings.TrimPrefix(line, "\ufeff")
		}
		stripped := strings.TrimSpace(line)
		if stripped == "" || stripped[0] == '#' || stripped[0] == ';' {
			// configparser keeps blank lines inside a value (they matter
			// only before a continuation line and are trimmed at the end),
			// but drops comment lines.
			if stripped == "" && opt != nil {
				opt.lines = append(opt.lines, "")
			}
			continue
		}
		cur0 := len(line) - len(strings.TrimLeft(line, " \t\f\v\r"))
		if cur != nil && opt != nil && cur0 > indent {
			opt.lines = append(opt.lines, stripped)
			continue
		}
		indent = cur0
		if stripped[0] == '[' {
			end := strings.LastIndexByte(stripped, ']')
			if end < 0 {
				return nil, fmt.Errorf("%s:%d: section header %q has no closing ']'", name, lineno, stripped)
			}
			if tail := strings.TrimSpace(stripped[end+1:]); tail != "" && tail[0] != '#' && tail[0] != ';' {
				return nil, fmt.Errorf("%s:%d: unexpected %q after section header", name, lineno, tail)
			}
			sname := strings.TrimSpace(stripped[1:end])
			if sname == "" {
				return nil, fmt.Errorf("%s:%d: empty section name", name, lineno)
			}
			key := strings.ToUpper(sname)
			if sname == defaultSection {
				key = "\x00" + defaultSection // distinct from a section named [default]
			}
			if prev, ok := byName[key]; ok {
				return nil, fmt.Errorf("%s:%d: duplicate section [%s] (first on line %d)", name, lineno, strings.ToUpper(sname), prev.line)
			}
			cur = &rawSection{name: sname, line: lineno, opts: map[string]*rawOption{}}
			if sname != defaultSection {
				cur.name = strings.ToUpper(sname)
			}
			byName[key] = cur
			sections = append(sections, cur)
			opt = nil
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("%s:%d: %q before any [SECTION] header", name, lineno, stripped)
		}
		d := strings.IndexAny(stripped, "=:")
		if d < 0 {
			return nil, fmt.Errorf("%s:%d: %q is not a \"key = value\" line", name, lineno, stripped)
		}
		key := strings.ToLower(strings.TrimSpace(stripped[:d]))
		if key == "" {
			return nil, fmt.Errorf("%s:%d: missing key before %q", name, lineno, stripped[d:d+1])
		}
		if prev, ok := cur.opts[key]; ok {
			return nil, fmt.Errorf("%s:%d: duplicate key %s in [%s] (first set on line %d)", name, lineno, key, cur.name, prev.line)
		}
		opt = &rawOption{key: key, lines: []string{strings.TrimSpace(stripped[d+1:])}, line: lineno, indent: cur0}
		cur.opts[key] = opt
		cur.order = append(cur.order, key)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes: %w", name, lineno+1, maxLineBytes, err)
		}
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return sections, nil
}
