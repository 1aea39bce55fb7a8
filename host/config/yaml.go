package config

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"

	"gopkg.in/yaml.v3"
)

// maxYAMLBytes bounds a YAML config read into memory; Paddle's are ~1 KiB.
const maxYAMLBytes = 1 << 20

// ParseYAML reads the same keys as ParseINI from YAML, the format later Paddle
// releases use (configs/tsm.yaml): a mapping of sections, each a mapping of
// keys to scalars or lists. Section names are upper-cased and keys
// lower-cased, and a section or key repeated in another case is an error.
//
// Like Paddle's create_attr_dict (which runs ast.literal_eval on every string
// value of a section), a string value that is a complete Python literal
// becomes that literal: image_mean: "[0.485, 0.456, 0.406]" is a list and
// lr: "1e-4" a float. List elements are taken as YAML typed them.
func ParseYAML(name string, r io.Reader) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxYAMLBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxYAMLBytes {
		return nil, fmt.Errorf("read %s: larger than %d bytes", name, maxYAMLBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %s", name, oneLine(err))
	}
	cfg := Config{}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return cfg, nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: top level must be a mapping of sections", name, root.Line)
	}
	secLine := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		kn, vn := root.Content[i], root.Content[i+1]
		sec := strings.ToUpper(strings.TrimSpace(kn.Value))
		if sec == "" {
			return nil, fmt.Errorf("%s:%d: empty section name", name, kn.Line)
		}
		if prev, ok := secLine[sec]; ok {
			return nil, fmt.Errorf("%s:%d: duplicate section %s (first on line %d)", name, kn.Line, sec, prev)
		}
		secLine[sec] = kn.Line
		kv := map[string]any{}
		cfg[sec] = kv
		if vn.Kind == yaml.ScalarNode && vn.Tag == "!!null" {
			continue
		}
		if vn.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: section %s must be a mapping of keys", name, vn.Line, sec)
		}
		keyLine := map[string]int{}
		for j := 0; j+1 < len(vn.Content); j += 2 {
			k, v := vn.Content[j], vn.Content[j+1]
			key := strings.ToLower(strings.TrimSpace(k.Value))
			if prev, ok := keyLine[key]; ok {
				return nil, fmt.Errorf("%s:%d: duplicate key %s in [%s] (first set on line %d)", name, k.Line, key, sec, prev)
			}
			keyLine[key] = k.Line
			val, err := yamlValue(v, 0)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: cannot parse value for key %s: %w", name, v.Line, key, err)
			}
			if s, ok := val.(string); ok && startsLiteralNonEmpty(s) {
				if lit, err := ParseValue(s); err == nil {
					val = lit
				}
			}
			kv[key] = val
		}
	}
	return cfg, nil
}

// startsLiteralNonEmpty reports whether literal_eval could succeed on s:
// it starts like a literal, or is True, False or None (PyYAML, which Paddle
// uses, reads a plain None as the string "None", which literal_eval then
// turns into None; yaml.v3 does the same, so this matters).
func startsLiteralNonEmpty(s string) bool {
	t := strings.TrimSpace(s)
	switch t {
	case "True", "False", "None":
		return true
	}
	return t != "" && startsLiteral(t)
}

func yamlValue(n *yaml.Node, depth int) (any, error) {
	if depth > maxLiteralDepth {
		return nil, fmt.Errorf("lists nested deeper than %d", maxLiteralDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return yamlValue(n.Alias, depth+1)
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := yamlValue(e, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return nil, errors.New("nested mappings are not supported")
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, errors.New(oneLine(err))
		}
		switch x := v.(type) {
		case uint64:
			if x > math.MaxInt64 {
				return nil, fmt.Errorf("integer %d out of range", x)
			}
			return int(x), nil
		case int, float64, bool, string, nil:
			return x, nil
		default:
			// Timestamps and binary: keep the text, as Paddle's loader would
			// hand it on as something other than a number anyway.
			return n.Value, nil
		}
	}
	return nil, fmt.Errorf("unsupported yaml node kind %d", n.Kind)
}

func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
