package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Decode decodes one section of c into out (a pointer to a struct whose
// fields carry `config:"key"` tags). A key of the section that out has no
// field for is an error.
//
// Sections are decoded on their own, not merged over [MODEL]: Paddle's
// models and readers read cfg.MODEL and cfg[MODE] separately
// (get_config_from_sec('model', ...) and get_config_from_sec(mode, ...)),
// and only a few readers let a mode override a MODEL key, explicitly
// (seg_num in kinetics_reader.py). A plugin that wants that does
// DecodeMerged(c, out, "MODEL", "TEST").
func Decode(c Config, section string, out any) error {
	return DecodeMerged(c, out, section)
}

// DecodeMerged decodes the keys of the given sections, later sections
// overriding earlier ones, into out.
func DecodeMerged(c Config, out any, sections ...string) error {
	merged := map[string]any{}
	for _, sec := range sections {
		for k, v := range c[strings.ToUpper(sec)] {
			merged[strings.ToLower(k)] = canonical(v)
		}
	}
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		ErrorUnused: true,
		TagName:     "config",
		Result:      out,
	})
	if err != nil {
		return fmt.Errorf("decode config [%s]: %w", strings.Join(sections, "+"), err)
	}
	if err := d.Decode(merged); err != nil {
		msg := strings.TrimPrefix(oneLine(err), "decoding failed due to the following error(s): ")
		msg = invalidKeys.ReplaceAllString(msg, "no field for keys: ")
		return &decodeError{msg: fmt.Sprintf("decode config [%s]: %s", strings.ToUpper(strings.Join(sections, "+")), msg), err: err}
	}
	return nil
}

// invalidKeys matches mapstructure's ErrorUnused message, which names the Go
// struct type rather than anything the user wrote.
var invalidKeys = regexp.MustCompile(`'[^']*' has invalid keys: `)

// decodeError keeps mapstructure's error for errors.As while printing its
// several lines as one.
type decodeError struct {
	msg string
	err error
}

func (e *decodeError) Error() string { return e.msg }
func (e *decodeError) Unwrap() error { return e.err }
