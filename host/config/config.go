package config

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Config is a parsed config: section (upper case) to key (lower case) to
// value. Values are int, float64, bool, string, nil (Python's None) or []any
// of those; Go slices ([]int, []float64, []string) are accepted wherever a
// Config is read, but the parsers and Defaults produce []any.
type Config map[string]map[string]any

// Load reads a config file, choosing the format by extension: .txt, .ini and
// .cfg are Paddle's INI dialect (ParseINI), .yaml and .yml are YAML
// (ParseYAML).
func Load(path string) (Config, error) {
	ext := strings.ToLower(filepath.Ext(path))
	var parse func(string, *os.File) (Config, error)
	switch ext {
	case ".txt", ".ini", ".cfg":
		parse = func(n string, f *os.File) (Config, error) { return ParseINI(n, f) }
	case ".yaml", ".yml":
		parse = func(n string, f *os.File) (Config, error) { return ParseYAML(n, f) }
	default:
		return nil, fmt.Errorf("load config %s: unknown extension %q (want .txt, .ini, .cfg, .yaml or .yml)", path, ext)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	defer f.Close()
	return parse(path, f)
}

// Merge returns a new Config with every key of base, replaced or added by
// the keys of over. Neither argument is modified and the result shares no
// slices with them.
func Merge(base, over Config) Config {
	out := Config{}
	for _, c := range []Config{base, over} {
		for sec, kv := range c {
			s := strings.ToUpper(sec)
			if out[s] == nil {
				out[s] = map[string]any{}
			}
			for k, v := range kv {
				out[s][strings.ToLower(k)] = canonical(v)
			}
		}
	}
	return out
}

// Clone returns a deep copy of c.
func (c Config) Clone() Config { return Merge(c, nil) }

// Sections returns the section names of c, sorted.
func (c Config) Sections() []string { return slices.Sorted(maps.Keys(c)) }

// canonical deep-copies v, turning Go slices into []any, so that configs
// built in Go compare equal to parsed ones.
func canonical(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = canonical(e)
		}
		return out
	case []int:
		return toAny(x)
	case []float64:
		return toAny(x)
	case []float32:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = float64(e)
		}
		return out
	case []string:
		return toAny(x)
	case []bool:
		return toAny(x)
	case float32:
		return float64(x)
	case int64:
		return int(x)
	case int32:
		return int(x)
	}
	return v
}

func toAny[T any](xs []T) []any {
	out := make([]any, len(xs))
	for i, e := range xs {
		out[i] = e
	}
	return out
}
