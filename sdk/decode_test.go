package sdk

import (
	"strings"
	"testing"
)

// TestDecodeErrorIsOneLine: mapstructure lists its errors one per line; zoo
// prints an error's first line, so Decode folds them into one (a published
// config once failed as "config: decoding failed due to the following
// error(s):" and nothing more).
func TestDecodeErrorIsOneLine(t *testing.T) {
	var out struct {
		Train struct {
			Epoch int `mapstructure:"epoch"`
		} `mapstructure:"TRAIN"`
		Test struct {
			BatchSize int `mapstructure:"batch_size"`
		} `mapstructure:"TEST"`
	}
	cfg := Config{"TRAIN": {"epoch": 1, "use_gpu": false}, "TEST": {"batch_size": 2, "use_gpu": false}}
	err := cfg.Decode(&out)
	if err == nil {
		t.Fatal("Decode accepted keys the struct lacks")
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "'TRAIN' has invalid keys: use_gpu") || !strings.Contains(msg, "'TEST' has invalid keys: use_gpu") {
		t.Errorf("Decode error %q: want one line naming both sections", msg)
	}
	if CodeOf(err) != CodeInvalidArgument {
		t.Errorf("code %v, want CodeInvalidArgument", CodeOf(err))
	}
}
