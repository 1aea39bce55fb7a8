package run

import (
	"math"

	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/sdk"
)

// Values that crossed the protocol as JSON come back as float64; the
// config package types an int key strictly, so integral numbers of int
// keys are turned back into ints here, at the one place JSON enters.
func fromJSON(typ string, v any) any {
	switch typ {
	case config.TypeInt:
		if f, ok := v.(float64); ok && f == math.Trunc(f) {
			return int(f)
		}
	case config.TypeIntList:
		if xs, ok := v.([]any); ok {
			out := make([]any, len(xs))
			for i, x := range xs {
				out[i] = fromJSON(config.TypeInt, x)
			}
			return out
		}
	}
	return v
}

// defaultConfig is the model's built-in job with JSON's numbers retyped.
func defaultConfig(m sdk.ModelInfo, s config.Schema) config.Config {
	types := map[[2]string]string{}
	for _, k := range s {
		types[[2]string{k.Section, k.Name}] = k.Type
	}
	out := config.Config{}
	for sec, kv := range m.DefaultConfig {
		out[sec] = map[string]any{}
		for k, v := range kv {
			out[sec][k] = fromJSON(types[[2]string{sec, k}], v)
		}
	}
	return out
}
