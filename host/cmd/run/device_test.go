package run

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zoo-ml/zoo/host/config"
	"github.com/zoo-ml/zoo/sdk"
)

// modern is a minor-3 model: it does not declare use_gpu (the host owns it)
// and says its epoch count in OpenResult.
var modern = sdk.ModelInfo{
	Name:  "N",
	Tasks: []string{"train", "test"},
	Config: []sdk.ConfigKey{
		{Section: "TRAIN", Name: "epoch", Type: "int", Default: 5.0},
		{Section: "TRAIN", Name: "batch_size", Type: "int", Default: 8.0},
		{Section: "TEST", Name: "batch_size", Type: "int", Default: 8.0},
	},
}

// TestUseGPUIsTheHostsKey: a Paddle config's use_gpu is accepted for a
// plugin that does not declare it, read by the host, and not sent to the
// plugin; a plugin that declares it (minor < 3) still gets it.
func TestUseGPUIsTheHostsKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n.txt")
	os.WriteFile(path, []byte("[TRAIN]\nuse_gpu = True\nepoch = 2\n[TEST]\nuse_gpu = False\n"), 0o644)
	o, err := parse(t, "N", "train", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := BuildConfig(modern, o)
	if err != nil {
		t.Fatalf("a config with use_gpu for a plugin that does not declare it: %v", err)
	}
	if cfg["TRAIN"][GPUKey] != true || cfg["TEST"][GPUKey] != false {
		t.Errorf("host config: TRAIN.use_gpu = %v, TEST.use_gpu = %v", cfg["TRAIN"][GPUKey], cfg["TEST"][GPUKey])
	}
	sent := PluginConfig(modern, cfg)
	for sec, keys := range sent {
		if _, ok := keys[GPUKey]; ok {
			t.Errorf("the plugin gets %s.use_gpu", sec)
		}
	}
	if sent["TRAIN"]["epoch"] != 2 || cfg["TRAIN"][GPUKey] != true {
		t.Errorf("PluginConfig changed other keys or the host's config: %v / %v", sent, cfg)
	}
	// --use_gpu reaches the mode's use_gpu, as before.
	o, err = parse(t, "N", "test", "--use_gpu", "--config", path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err = BuildConfig(modern, o); err != nil || cfg["TEST"][GPUKey] != true {
		t.Errorf("--use_gpu: TEST.use_gpu = %v, %v", cfg["TEST"][GPUKey], err)
	}
	// An older plugin that declares use_gpu gets it as config.
	o, _ = parse(t, "M", "train")
	cfg, err = BuildConfig(model, o)
	if err != nil {
		t.Fatal(err)
	}
	if got := PluginConfig(model, cfg)["TRAIN"][GPUKey]; got != true {
		t.Errorf("a plugin that declares use_gpu gets TRAIN.use_gpu = %v, want true", got)
	}
	if n := len(Schema(model)) - len(model.Config); n != 2 {
		t.Errorf("Schema added %d use_gpu keys to M, want 2 (VALID and TEST; TRAIN is declared)", n)
	}
}

// TestEpochsFromTheProtocol: a minor-3 plugin's OpenResult.Epochs decides
// (0 is one); an older plugin's TRAIN.epoch key does.
func TestEpochsFromTheProtocol(t *testing.T) {
	cfg := config.Config{"TRAIN": {"epoch": 7}}
	for _, tc := range []struct {
		minor  uint32
		epochs int
		want   int
	}{
		{3, 4, 4},
		{3, 0, 1},
		{4, 9, 9},
		{2, 4, 7},
		{0, 0, 7},
	} {
		if got := Epochs(tc.minor, sdk.OpenResult{Epochs: tc.epochs}, cfg); got != tc.want {
			t.Errorf("Epochs(minor %d, answered %d) = %d, want %d", tc.minor, tc.epochs, got, tc.want)
		}
	}
	if got := Epochs(1, sdk.OpenResult{}, config.Config{}); got != 1 {
		t.Errorf("an older plugin without TRAIN.epoch: %d epochs, want 1", got)
	}
}
