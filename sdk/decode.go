package sdk

import (
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Decode fills out, a struct with one field per section tagged
// `mapstructure:"SECTION"` whose fields carry `mapstructure:"key"` tags,
// from the config the host sent. The host has already validated the keys
// and types against the model's declared ConfigKeys; a key out does not
// have is still an error here (CodeInvalidArgument), so that a plugin's
// declared keys and its struct cannot drift apart unnoticed.
func (c Config) Decode(out any) error {
	raw := make(map[string]any, len(c))
	for k, v := range c {
		raw[k] = v
	}
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: out, WeaklyTypedInput: true, ErrorUnused: true, TagName: "mapstructure",
	})
	if err != nil {
		return err
	}
	if err := dec.Decode(raw); err != nil {
		// mapstructure lists its errors one per line; zoo prints one line.
		var lines []string
		for _, l := range strings.Split(err.Error(), "\n") {
			if l = strings.TrimPrefix(strings.TrimSpace(l), "* "); l != "" {
				lines = append(lines, l)
			}
		}
		msg := lines[0]
		if len(lines) > 1 {
			msg += " " + strings.Join(lines[1:], "; ")
		}
		return Errorf(CodeInvalidArgument, "config: %s", msg)
	}
	return nil
}
