package sdk

import (
	"fmt"
	"reflect"
	"strings"
)

// SchemaOf derives a model's config keys from its config struct, so that
// the keys a plugin declares and the struct Config.Decode fills are one
// definition. v is the struct (or a pointer to it) holding the defaults:
//
//   - each field of v is a section, its `mapstructure:"SECTION"` tag the
//     section's name (upper case);
//   - each field of a section's struct is a key: `mapstructure:"key"` names
//     it (lower case), `help:"..."` says what it does, its value in v is
//     the default; an embedded struct tagged `mapstructure:",squash"` adds
//     its fields in place, as Config.Decode reads them;
//   - a key's type comes from the field's Go type: int, float64, bool,
//     string, []int, []float64, []string (as "int", "float", "bool",
//     "string", "[]int", "[]float", "[]string"); a nil slice defaults to
//     an empty list.
//
// Keys come in field order. A field without a tag, a type outside that
// list, a section or key named twice or spelt in the wrong case is an
// error: SchemaOf refuses what Config.Decode would read differently.
func SchemaOf(v any) ([]ConfigKey, error) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct {
		return nil, fmt.Errorf("sdk.SchemaOf: %T is not a struct", v)
	}
	var keys []ConfigKey
	seen := map[string]bool{}
	rt := rv.Type()
	for i := range rt.NumField() {
		f := rt.Field(i)
		if !f.IsExported() {
			continue
		}
		sec, opts, err := tagOf(rt, f)
		if err != nil {
			return nil, err
		}
		if sec == "-" {
			continue
		}
		if opts != "" || sec == "" || sec != strings.ToUpper(sec) {
			return nil, fmt.Errorf("sdk.SchemaOf: %s.%s: section tag %q: want an upper-case name and no options", rt.Name(), f.Name, sec+opts)
		}
		if seen[sec] {
			return nil, fmt.Errorf("sdk.SchemaOf: %s.%s: section %s declared twice", rt.Name(), f.Name, sec)
		}
		seen[sec] = true
		fv := rv.Field(i)
		if fv.Kind() != reflect.Struct {
			return nil, fmt.Errorf("sdk.SchemaOf: %s.%s: section %s is a %s, want a struct", rt.Name(), f.Name, sec, fv.Type())
		}
		ks, err := sectionKeys(sec, fv, map[string]bool{})
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	return keys, nil
}

// sectionKeys lists the keys of one section's struct, squashed embedded
// structs in place.
func sectionKeys(sec string, v reflect.Value, seen map[string]bool) ([]ConfigKey, error) {
	var keys []ConfigKey
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		// mapstructure squashes an embedded struct of an unexported type
		// too (its fields are promoted, so settable).
		if !f.IsExported() && !f.Anonymous {
			continue
		}
		name, opts, err := tagOf(t, f)
		if err != nil {
			return nil, err
		}
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if opts == ",squash" && name == "" {
			if fv.Kind() != reflect.Struct {
				return nil, fmt.Errorf("sdk.SchemaOf: %s.%s: squash on a %s, want a struct", t.Name(), f.Name, fv.Type())
			}
			ks, err := sectionKeys(sec, fv, seen)
			if err != nil {
				return nil, err
			}
			keys = append(keys, ks...)
			continue
		}
		where := fmt.Sprintf("%s.%s (%s.%s)", t.Name(), f.Name, sec, name)
		if opts != "" || name == "" || name != strings.ToLower(name) {
			return nil, fmt.Errorf("sdk.SchemaOf: %s: key tag %q: want a lower-case name and no options", where, name+opts)
		}
		if seen[name] {
			return nil, fmt.Errorf("sdk.SchemaOf: %s: key declared twice in [%s]", where, sec)
		}
		seen[name] = true
		typ, def, ok := keyType(fv)
		if !ok {
			return nil, fmt.Errorf("sdk.SchemaOf: %s: type %s: want int, float64, bool, string, []int, []float64 or []string", where, fv.Type())
		}
		keys = append(keys, ConfigKey{Section: sec, Name: name, Type: typ, Default: def, Help: f.Tag.Get("help")})
	}
	return keys, nil
}

// tagOf splits a field's mapstructure tag into its name and options; a
// field without one is an error, since mapstructure would then match the
// Go field name, which no user writes.
func tagOf(t reflect.Type, f reflect.StructField) (name, opts string, err error) {
	tag, ok := f.Tag.Lookup("mapstructure")
	if !ok {
		return "", "", fmt.Errorf("sdk.SchemaOf: %s.%s: no mapstructure tag", t.Name(), f.Name)
	}
	if i := strings.IndexByte(tag, ','); i >= 0 {
		return tag[:i], tag[i:], nil
	}
	return tag, "", nil
}

// keyType returns the ConfigKey type of v and v as the default, slices
// copied so that the schema shares no memory with the struct.
func keyType(v reflect.Value) (typ string, def any, ok bool) {
	// Exact types only: a named type (type Mode string) would decode, but
	// its default would cross as that type, which JSON and the host see as
	// the underlying one anyway; refuse it rather than guess.
	switch v.Type() {
	case reflect.TypeFor[int]():
		return "int", v.Interface(), true
	case reflect.TypeFor[float64]():
		return "float", v.Interface(), true
	case reflect.TypeFor[bool]():
		return "bool", v.Interface(), true
	case reflect.TypeFor[string]():
		return "string", v.Interface(), true
	case reflect.TypeFor[[]int]():
		return "[]int", append([]int{}, v.Interface().([]int)...), true
	case reflect.TypeFor[[]float64]():
		return "[]float", append([]float64{}, v.Interface().([]float64)...), true
	case reflect.TypeFor[[]string]():
		return "[]string", append([]string{}, v.Interface().([]string)...), true
	}
	return "", nil, false
}
