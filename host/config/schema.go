package config

import (
	"errors"
	"fmt"
	"github.com/zoo-ml/zoo/internal/textdist"
	"math"
	"slices"
	"strings"
)

// Key declares one config key of a model: where it lives, its type, its
// default and a line of help. Type is one of the Type* constants.
type Key struct {
	Section, Name, Type string
	Default             any
	Help                string
}

// The value types a Key may declare.
const (
	TypeInt        = "int"
	TypeFloat      = "float"
	TypeBool       = "bool"
	TypeString     = "string"
	TypeIntList    = "[]int"
	TypeFloatList  = "[]float"
	TypeStringList = "[]string"
)

// Schema is the set of keys a plugin accepts.
type Schema []Key

// Sentinel errors, for errors.Is.
var (
	ErrUnknownSection = errors.New("unknown section")
	ErrUnknownKey     = errors.New("unknown key")
	ErrType           = errors.New("wrong type")
)

// KeyError is a problem with one key of a config.
type KeyError struct {
	Section, Key string
	Err          error // wraps one of the sentinels
	msg          string
}

func (e *KeyError) Error() string { return e.msg }
func (e *KeyError) Unwrap() error { return e.Err }

func (s Schema) lookup(section, name string) (Key, bool) {
	for _, k := range s {
		if strings.EqualFold(k.Section, section) && strings.EqualFold(k.Name, name) {
			return k, true
		}
	}
	return Key{}, false
}

func (s Schema) sections() []string {
	var out []string
	for _, k := range s {
		u := strings.ToUpper(k.Section)
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

func (s Schema) keysOf(section string) []string {
	var out []string
	for _, k := range s {
		if strings.EqualFold(k.Section, section) {
			out = append(out, strings.ToLower(k.Name))
		}
	}
	return out
}

// Check reports a mistake in the schema itself, for a plugin's tests and for
// the host when a plugin hands its schema over: a key without a section or
// name, an unknown type, a key declared twice, or a default of the wrong
// type.
func (s Schema) Check() error {
	seen := map[string]bool{}
	for _, k := range s {
		if k.Section == "" || k.Name == "" {
			return fmt.Errorf("schema key %+v: empty section or name", k)
		}
		id := strings.ToUpper(k.Section) + "." + strings.ToLower(k.Name)
		if seen[id] {
			return fmt.Errorf("schema key %s declared twice", id)
		}
		seen[id] = true
		if wantName(k.Type) == k.Type {
			return fmt.Errorf("schema key %s: unknown type %q", id, k.Type)
		}
		if k.Default != nil {
			if _, err := coerce(k, k.Default); err != nil {
				return fmt.Errorf("schema default: %w", err)
			}
		}
	}
	return nil
}

// Defaults returns a Config holding every key whose Default is not nil.
func (s Schema) Defaults() Config {
	c := Config{}
	for _, k := range s {
		if k.Default == nil {
			continue
		}
		sec := strings.ToUpper(k.Section)
		if c[sec] == nil {
			c[sec] = map[string]any{}
		}
		c[sec][strings.ToLower(k.Name)] = canonical(k.Default)
	}
	return c
}

// Validate checks that every section and key of c is declared in s and that
// every value has the declared type. It reports the first problem in
// section, then key, order, as a *KeyError.
//
// Type rules: an int is accepted where a float is wanted (Python and YAML
// write 1 for 1.0), but a float is never taken as an int, even 3.0: Paddle
// would pass 3.0 on and fail later (range(3.0)), so zoo says so at once.
// None (nil) is accepted only for keys whose Default is nil, the way a plugin
// declares "optional, no value". Bool is never an int.
func (s Schema) Validate(c Config) error {
	for _, sec := range c.Sections() {
		keys := s.keysOf(sec)
		if keys == nil {
			msg := fmt.Sprintf("unknown section [%s]", sec)
			if best := closest(sec, s.sections()); best != "" {
				msg += fmt.Sprintf("; did you mean [%s]?", best)
			}
			return &KeyError{Section: sec, Err: ErrUnknownSection, msg: msg}
		}
		kv := c[sec]
		for _, k := range sortedKeys(kv) {
			key, ok := s.lookup(sec, k)
			if !ok {
				return unknownKey(s, sec, k)
			}
			if _, err := coerce(key, kv[k]); err != nil {
				return err
			}
		}
	}
	return nil
}

// unknownKey names the closest key of the section; when the key is valid in
// other sections (epoch under [VALID]) it says where it belongs instead,
// which is the likelier fix.
func unknownKey(s Schema, sec, k string) error {
	msg := fmt.Sprintf("unknown key %q in [%s]", k, sec)
	var elsewhere []string
	for _, other := range s.sections() {
		if _, ok := s.lookup(other, k); ok {
			elsewhere = append(elsewhere, "["+other+"]")
		}
	}
	if len(elsewhere) > 0 {
		msg += fmt.Sprintf("; it is a key of %s", strings.Join(elsewhere, ", "))
	} else if best := closest(k, s.keysOf(sec)); best != "" {
		msg += fmt.Sprintf("; did you mean %q?", best)
	}
	return &KeyError{Section: sec, Key: k, Err: ErrUnknownKey, msg: msg}
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// coerce checks v against k's type and returns it in canonical form (floats
// as float64 even when written as ints, lists as []any).
func coerce(k Key, v any) (any, error) {
	v = canonical(v)
	bad := func() error {
		return &KeyError{Section: strings.ToUpper(k.Section), Key: strings.ToLower(k.Name), Err: ErrType,
			msg: fmt.Sprintf("%s.%s: value %s is %s, wanted %s",
				strings.ToUpper(k.Section), strings.ToLower(k.Name), pyRepr(v), typeName(v), wantName(k.Type))}
	}
	if v == nil {
		if k.Default == nil {
			return nil, nil
		}
		return nil, bad()
	}
	// JSON, which carries configs to plugins, has no inf or nan, and no
	// learning rate or size is meant to be one.
	notFinite := func(x any) error {
		if f, ok := x.(float64); ok && (math.IsInf(f, 0) || math.IsNaN(f)) {
			return &KeyError{Section: strings.ToUpper(k.Section), Key: strings.ToLower(k.Name), Err: ErrType,
				msg: fmt.Sprintf("%s.%s: value %s is not a finite number", strings.ToUpper(k.Section), strings.ToLower(k.Name), pyRepr(v))}
		}
		return nil
	}
	elem := ""
	switch k.Type {
	case TypeInt, TypeFloat, TypeBool, TypeString:
		out, ok := coerceScalar(k.Type, v)
		if !ok {
			return nil, bad()
		}
		if err := notFinite(out); err != nil {
			return nil, err
		}
		return out, nil
	case TypeIntList:
		elem = TypeInt
	case TypeFloatList:
		elem = TypeFloat
	case TypeStringList:
		elem = TypeString
	default:
		return nil, fmt.Errorf("%s.%s: schema declares unknown type %q", k.Section, k.Name, k.Type)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, bad()
	}
	out := make([]any, len(list))
	for i, e := range list {
		ce, ok := coerceScalar(elem, e)
		if !ok {
			return nil, bad()
		}
		if err := notFinite(ce); err != nil {
			return nil, err
		}
		out[i] = ce
	}
	return out, nil
}

func coerceScalar(typ string, v any) (any, bool) {
	switch typ {
	case TypeInt:
		i, ok := v.(int)
		return i, ok
	case TypeFloat:
		switch x := v.(type) {
		case int:
			return float64(x), true
		case float64:
			return x, true
		}
	case TypeBool:
		b, ok := v.(bool)
		return b, ok
	case TypeString:
		s, ok := v.(string)
		return s, ok
	}
	return nil, false
}

func wantName(typ string) string {
	switch typ {
	case TypeInt:
		return "an int"
	case TypeFloat:
		return "a float"
	case TypeBool:
		return "a bool (True or False)"
	case TypeString:
		return "a string"
	case TypeIntList:
		return "a list of ints"
	case TypeFloatList:
		return "a list of floats"
	case TypeStringList:
		return "a list of strings"
	}
	return typ
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case int:
		return "an int"
	case float64:
		return "a float"
	case bool:
		return "a bool"
	case string:
		return "a string"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("a %T", v)
}

// pyRepr writes v as a Python literal, for error messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return fmt.Sprintf("%q", x)
	case float64:
		switch {
		case math.IsNaN(x):
			return "nan"
		case math.IsInf(x, 1):
			return "inf"
		case math.IsInf(x, -1):
			return "-inf"
		}
		if x == math.Trunc(x) && math.Abs(x) < 1e16 {
			return fmt.Sprintf("%.1f", x)
		}
		return fmt.Sprint(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v)
}

// closest returns the candidate with the smallest edit distance to name, or
// "" when there are none. Ties go to the longer common prefix, then suffix
// (l2_decay is nearer l2_weight_decay than epoch, at distance 7 from both),
// then to candidate order.
func closest(name string, candidates []string) string {
	name = strings.ToLower(name)
	best := ""
	bestScore := [3]int{math.MaxInt}
	for _, c := range candidates {
		lc := strings.ToLower(c)
		score := [3]int{textdist.Edit(name, lc), -commonPrefix(name, lc), -commonPrefix(reverse(name), reverse(lc))}
		if slices.Compare(score[:], bestScore[:]) < 0 {
			best, bestScore = c, score
		}
	}
	return best
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func reverse(s string) string {
	b := []byte(s)
	slices.Reverse(b)
	return string(b)
}
