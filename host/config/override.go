package config

import (
	"fmt"
	"strings"
)

// ModeSections returns the sections Paddle's scripts merge flags into for a
// mode: train.py calls merge_configs for 'train' and 'valid', test.py for
// 'test', infer.py for 'infer'. It returns nil for an unknown mode.
func ModeSections(mode string) []string {
	switch strings.ToLower(mode) {
	case "train":
		return []string{"TRAIN", "VALID"}
	case "valid":
		return []string{"VALID"}
	case "test":
		return []string{"TEST"}
	case "infer":
		return []string{"INFER"}
	}
	return nil
}

// ApplyFlagTo applies a command-line flag the way Paddle's merge_configs
// does, to every one of sections (ModeSections for the run's mode) that
// already has the key: --batch_size in a train run changes TRAIN and VALID,
// --epoch only TRAIN, --use_gpu wherever use_gpu is set. A flag whose key
// no section has is ignored, as in Paddle, and a flag never touches [MODEL]
// (merge_configs asserts sec in CONFIG_SECS = ['train', 'valid', 'test',
// 'infer'] and sets an argument only "if hasattr(sec_dict, k)"). Dashes in
// key are read as underscores (--learning-rate is --learning_rate).
//
// Apply flags after merging the file over the schema's defaults
// (Merge(schema.Defaults(), file)): then "already exists" means "the plugin
// declares the key in that section", which is Paddle's rule whenever the
// file lists every key, as Paddle's own configs do, and it still works with
// no file at all (zoo's built-in default), where nothing would "exist".
func ApplyFlagTo(c Config, s Schema, sections []string, key, value string) error {
	key = strings.ToLower(strings.ReplaceAll(strings.TrimLeft(key, "-"), "-", "_"))
	for _, sec := range sections {
		sec = strings.ToUpper(sec)
		kv := c[sec]
		if kv == nil {
			continue
		}
		if _, ok := kv[key]; !ok {
			continue
		}
		v, err := parseFor(s, sec, key, value)
		if err != nil {
			return fmt.Errorf("flag --%s: %w", key, err)
		}
		kv[key] = v
	}
	return nil
}

// ApplySet applies --set assignments of the form SECTION.key=value. Unlike a
// flag, --set may set any key the schema declares, present in c or not. The
// value is a Python literal, type-checked against the schema; for a string
// key any text is accepted as the string itself (a bare word, a path, or a
// quoted literal whose quotes are removed).
func ApplySet(c Config, s Schema, assignments []string) error {
	for _, a := range assignments {
		lhs, value, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("--set %q: want SECTION.key=value", a)
		}
		secName, key, ok := strings.Cut(strings.TrimSpace(lhs), ".")
		if !ok || secName == "" || key == "" {
			return fmt.Errorf("--set %q: want SECTION.key=value", a)
		}
		sec, key := strings.ToUpper(secName), strings.ToLower(key)
		if s.keysOf(sec) == nil {
			msg := fmt.Sprintf("--set %q: unknown section [%s]", a, sec)
			if best := closest(sec, s.sections()); best != "" {
				msg += fmt.Sprintf("; did you mean [%s]?", best)
			}
			return &KeyError{Section: sec, Err: ErrUnknownSection, msg: msg}
		}
		if _, ok := s.lookup(sec, key); !ok {
			err := unknownKey(s, sec, key).(*KeyError)
			err.msg = fmt.Sprintf("--set %q: %s", a, err.msg)
			return err
		}
		v, err := parseFor(s, sec, key, value)
		if err != nil {
			return fmt.Errorf("--set %q: %w", a, err)
		}
		if c[sec] == nil {
			c[sec] = map[string]any{}
		}
		c[sec][key] = v
	}
	return nil
}

// parseFor parses an override value and checks it against the schema.
func parseFor(s Schema, sec, key, text string) (any, error) {
	k, known := s.lookup(sec, key)
	v, err := ParseValue(text)
	if known && k.Type == TypeString {
		if str, ok := v.(string); ok && err == nil {
			return str, nil
		}
		if v == nil && err == nil && k.Default == nil {
			return nil, nil
		}
		return strings.TrimSpace(text), nil
	}
	if err != nil {
		return nil, fmt.Errorf("cannot parse value %q for %s.%s: %w", text, sec, key, err)
	}
	if !known {
		return v, nil
	}
	return coerce(k, v)
}
