package run

import (
	"fmt"
	"strings"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/sdk"
)

// paddleFlags are the Paddle override flags and the key each sets in the
// mode's sections (config.ModeSections). --use_gpu is not among them: it
// also picks the device, so it means something to every model.
var paddleFlags = []struct{ flag, key string }{
	{"batch-size", "batch_size"},
	{"learning-rate", "learning_rate"},
	{"epoch", "epoch"},
	{"filelist", "filelist"},
}

// checkFlagKeys refuses a Paddle override flag whose key the model does
// not declare in any section the mode merges flags into: Paddle drops such
// a flag silently, and a user who asked for 5 epochs would get 1.
func checkFlagKeys(m sdk.ModelInfo, o *Options) error {
	sections := config.ModeSections(o.Mode)
	for _, f := range paddleFlags {
		if !o.changed[f.flag] {
			continue
		}
		declared := false
		for _, k := range m.Config {
			for _, sec := range sections {
				if strings.EqualFold(k.Section, sec) && strings.EqualFold(k.Name, f.key) {
					declared = true
				}
			}
		}
		if declared {
			continue
		}
		var keys []string
		for _, k := range m.Config {
			keys = append(keys, strings.ToUpper(k.Section)+"."+strings.ToLower(k.Name))
		}
		has := "declares no config keys"
		if len(keys) > 0 {
			has = "declares " + strings.Join(keys, ", ")
		}
		return cmdutil.FlagErrorf("--%s: model %s has no %s key in [%s] for %s, so the flag would do nothing (it %s)",
			strings.ReplaceAll(f.flag, "-", "_"), m.Name, f.key, strings.Join(sections, "] or ["), o.Mode, has)
	}
	return nil
}

// CheckModel checks what a plugin declares about a model before a user's
// config is measured against it: a default of the wrong type ("two" for an
// int key) is the plugin's mistake, not the user's.
func CheckModel(plugin string, m sdk.ModelInfo) error {
	if err := Schema(m).Check(); err != nil {
		return fmt.Errorf("plugin %s declares model %s wrongly: %w; fix the plugin's ModelInfo.Config", plugin, m.Name, err)
	}
	return nil
}
