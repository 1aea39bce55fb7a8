package run

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/zoo-ml/zoo/host/cmdutil"
	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/sdk"
)

// model is a model as it arrives over the protocol: defaults as JSON
// numbers (float64).
var model = sdk.ModelInfo{
	Name:  "M",
	Tasks: []string{"train", "test", "infer"},
	Config: []sdk.ConfigKey{
		{Section: "MODEL", Name: "layers", Type: "int", Default: 50.0},
		{Section: "TRAIN", Name: "epoch", Type: "int", Default: 65.0},
		{Section: "TRAIN", Name: "batch_size", Type: "int", Default: 128.0},
		{Section: "TRAIN", Name: "learning_rate", Type: "float", Default: 0.01},
		{Section: "TRAIN", Name: "decay_epochs", Type: "[]int", Default: []any{40.0, 60.0}},
		{Section: "TRAIN", Name: "use_gpu", Type: "bool", Default: true},
		{Section: "TRAIN", Name: "filelist", Type: "string", Default: ""},
		{Section: "VALID", Name: "batch_size", Type: "int", Default: 128.0},
		{Section: "TEST", Name: "batch_size", Type: "int", Default: 16.0},
		{Section: "TEST", Name: "filelist", Type: "string", Default: ""},
	},
	DefaultConfig: sdk.Config{"MODEL": {"layers": 18.0}, "TRAIN": {"epoch": 3.0}},
}

// parse runs the command's parsing and validation only.
func parse(t *testing.T, args ...string) (*Options, error) {
	t.Helper()
	ios, _, _, _ := iostreams.Test()
	f := &cmdutil.Factory{IO: ios}
	var got *Options
	cmd := NewCmdRun(f, func(o *Options) error { got = o; return nil })
	cmd.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
	})
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	return got, err
}

func TestBuiltInJobWithFlags(t *testing.T) {
	o, err := parse(t, "M", "train", "--batch_size", "8", "--learning-rate", "0.5", "--set", "TRAIN.decay_epochs=[1, 2]")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := BuildConfig(model, o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"MODEL.layers": 18, "TRAIN.epoch": 3, "TRAIN.batch_size": 8, "VALID.batch_size": 8,
		"TEST.batch_size": 16, "TRAIN.learning_rate": 0.5, "TRAIN.use_gpu": true,
	}
	for k, v := range want {
		sec, key, _ := strings.Cut(k, ".")
		if got := cfg[sec][key]; got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
	if d, ok := cfg["TRAIN"]["decay_epochs"].([]any); !ok || len(d) != 2 || d[0] != 1 {
		t.Errorf("decay_epochs = %#v", cfg["TRAIN"]["decay_epochs"])
	}
}

func TestConfigFileUnderFlags(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.txt")
	os.WriteFile(path, []byte("[TRAIN]\nepoch = 7\nfilelist = \"train.list\"\n[TEST]\nbatch_size = 4\n"), 0o644)
	o, err := parse(t, "M", "test", "--config", path, "--batch_size", "2", "--filelist", "t.list")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := BuildConfig(model, o)
	if err != nil {
		t.Fatal(err)
	}
	// test mode: flags touch [TEST] only; the file beats the key defaults;
	// keys the file leaves out take the key defaults, not the built-in job.
	for k, v := range map[string]any{"TEST.batch_size": 2, "TEST.filelist": "t.list", "TRAIN.batch_size": 128,
		"TRAIN.epoch": 7, "TRAIN.filelist": "train.list", "MODEL.layers": 50} {
		sec, key, _ := strings.Cut(k, ".")
		if got := cfg[sec][key]; got != v {
			t.Errorf("%s = %#v, want %#v", k, got, v)
		}
	}
}

func TestFlagValidation(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"M", "fly"}, `unknown mode "fly"`},
		{[]string{"M"}, "run needs a model and a mode"},
		{[]string{"M", "test", "--pretrain", dir}, "--pretrain is for train"},
		{[]string{"M", "train", "--weights", dir}, "--weights is for test and infer"},
		{[]string{"M", "train", "--video_path", file}, "--video_path is for infer"},
		{[]string{"M", "test", "--weights", file}, "not a directory"},
		{[]string{"M", "train", "--epoch", "0"}, "--epoch 0: must be at least 1"},
		{[]string{"M", "train", "--learning_rate", "-1"}, "must be positive"},
		{[]string{"M", "infer", "--infer_topk", "0"}, "--infer_topk 0"},
		{[]string{"M", "train", "--log_interval", "0"}, "--log_interval 0"},
	} {
		_, err := parse(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || cmdutil.ExitCode(err) != cmdutil.ExitUsage {
			t.Errorf("%v: err = %v (exit %d), want usage error containing %q", tc.args, err, cmdutil.ExitCode(err), tc.want)
		}
	}
}

func TestSetErrors(t *testing.T) {
	for _, set := range []string{"TRAIN.epochs=3", "TRAIN.epoch=many", "NOPE.x=1", "epoch"} {
		o, err := parse(t, "M", "train", "--set", set)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := BuildConfig(model, o); err == nil {
			t.Errorf("--set %s accepted", set)
		}
	}
}
