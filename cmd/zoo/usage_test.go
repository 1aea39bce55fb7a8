package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestEnvOverridesAreLogged: a flag set from ZOO_<FLAG> is said on stderr
// before the run starts; one given on the command line wins and is not.
func TestEnvOverridesAreLogged(t *testing.T) {
	t.Parallel()
	save := filepath.Join(t.TempDir(), "from-env")
	r := zoo(t, []string{"ZOO_SAVE_DIR=" + save, "ZOO_EPOCH=1", "ZOO_LOG_INTERVAL=3"}, "run", "alpha", "train", "--log_interval", "2")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(r.stderr, "\n")
	for _, want := range []string{"environment: ZOO_SAVE_DIR=" + save + " sets --save-dir", "environment: ZOO_EPOCH=1 sets --epoch"} {
		found := false
		for _, l := range lines[:min(len(lines), 3)] {
			found = found || l == want
		}
		if !found {
			t.Errorf("the first lines of stderr lack %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "ZOO_LOG_INTERVAL") {
		t.Errorf("ZOO_LOG_INTERVAL was reported though --log_interval overrode it:\n%s", r.stderr)
	}
	// A stray ZOO_CONFIG is named even when the run fails on it.
	cfg := filepath.Join(t.TempDir(), "stray.txt")
	os.WriteFile(cfg, []byte("[TRAIN]\nepoch = 'x'\n"), 0o644)
	r = zoo(t, []string{"ZOO_CONFIG=" + cfg}, "run", "alpha", "train", "--save_dir", t.TempDir())
	oneLineError(t, r, 1, "TRAIN.epoch")
	if !strings.HasPrefix(r.stderr, "environment: ZOO_CONFIG="+cfg+" sets --config\n") {
		t.Errorf("ZOO_CONFIG not reported first:\n%s", r.stderr)
	}
}

// tinyTSM is the built-in job shrunk to train in a few seconds.
func tinyTSM(save string) []string {
	return []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=32",
		"--set", "SYNTHETIC.valid_videos=8", "--set", "SYNTHETIC.test_videos=8", "--set", "SYNTHETIC.infer_videos=3"}
}

// TestValidateBeforeWork: a config that cannot work is refused when the
// session opens, before the first step, with one line naming the key.
// Before, these trained an epoch and then failed, panicked, trained no
// step at all and exited 0, or died of the Go runtime's out-of-memory
// crash.
func TestValidateBeforeWork(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	videos := filepath.Join(shareddata.Dir(t), "videos")
	short := filepath.Join(dir, "short.list")
	os.WriteFile(short, []byte(fmt.Sprintf("%s 1\n%s 2\n", filepath.Join(videos, "archery.avi"), filepath.Join(videos, "part_0.mp4"))), 0o644)
	infYAML := filepath.Join(dir, "inf.yaml")
	os.WriteFile(infYAML, []byte("TRAIN:\n  learning_rate: .inf\n"), 0o644)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"1x1 frames", []string{"run", "TSM", "train", "--set", "TRAIN.short_size=1", "--set", "TRAIN.target_size=1", "--set", "VALID.short_size=1", "--set", "VALID.target_size=1"},
			"[TRAIN] target_size 1: the built-in dataset needs frames of at least 2x2"},
		{"valid crops otherwise", []string{"run", "TSM", "train", "--set", "VALID.short_size=48", "--set", "VALID.target_size=40"},
			"[VALID] target_size 40 differs from [TRAIN] target_size 32"},
		{"valid short side below the crop", []string{"run", "TSM", "train", "--set", "VALID.short_size=30"},
			"VALID.target_size 32 must be positive and at most short_size 30"},
		{"absurd num_classes", []string{"run", "TSM", "train", "--set", "MODEL.num_classes=99999999999"},
			"MODEL.num_classes 99999999999: the model needs at least 36.0 TiB of memory, more than"},
		{"absurd frames", []string{"run", "TSM", "test", "--weights", dir, "--set", "TEST.short_size=100000", "--set", "TEST.target_size=100000"},
			"[TEST] batch_size 16 with target_size 100000 and 8 frames per clip: the model needs at least"},
		{"no training clips", []string{"run", "TSM", "train", "--set", "SYNTHETIC.train_videos=0"}, "SYNTHETIC.train_videos 0: must be at least 1"},
		{"no validation clips", []string{"run", "TSM", "train", "--set", "SYNTHETIC.valid_videos=0"}, "SYNTHETIC.valid_videos 0: must be at least 1"},
		{"list shorter than a batch", []string{"run", "TSM", "train", "--set", "TRAIN.filelist=" + short, "--set", "VALID.filelist=" + short},
			"[TRAIN] filelist " + short + " lists 2 videos, less than one batch of 16: training would take no step"},
		{"missing validation list", []string{"run", "TSM", "train", "--set", "TRAIN.filelist=" + short, "--set", "TRAIN.batch_size=2", "--set", "VALID.filelist=" + filepath.Join(dir, "val.list")},
			"[VALID] filelist: read list"},
		{"resnet absurd num_classes", []string{"run", "ResNet", "train", "--set", "MODEL.num_classes=99999999999"}, "MODEL.num_classes 99999999999: the model needs at least"},
		{"resnet valid crops otherwise", []string{"run", "ResNet", "train", "--set", "VALID.short_size=16", "--set", "VALID.target_size=16"},
			"[VALID] target_size 16 differs from [TRAIN] target_size 32"},
		{"inf in a config", []string{"run", "TSM", "train", "--config", infYAML, "--pretrain", dir}, "TRAIN.learning_rate: value inf is not a finite number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(tc.args, "--save_dir", t.TempDir(), "--set", "MODEL.base_width=4")
			if tc.args[2] == "train" {
				// test has no epoch key: --epoch there is a usage error.
				args = append(args, "--epoch", "1")
			}
			r := zoo(t, nil, args...)
			oneLineError(t, r, 1, tc.want)
			if strings.Contains(r.stdout, "Epoch") {
				t.Errorf("the run took steps before failing:\n%s", r.stdout)
			}
		})
	}
}

// TestUseGPUInConfig: use_gpu = True in a config (Paddle's configs/tsm.txt
// has it) runs on the CPU after a warning naming where it came from, when
// the plugin has no GPU build; the --use_gpu flag still requires a GPU.
func TestUseGPUInConfig(t *testing.T) {
	t.Parallel()
	save := t.TempDir()
	r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--set", "TRAIN.use_gpu=True"}, tinyTSM(save)...)...)
	if r.code != 0 {
		t.Fatalf("train with TRAIN.use_gpu=True: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning: --set TRAIN.use_gpu=True asks for a GPU, but this zoo-plugin-tsm was built for the CPU only") ||
		!strings.Contains(r.stderr, "running on the CPU") {
		t.Errorf("no warning naming the setting:\n%s", r.stderr)
	}
	cfg := filepath.Join(t.TempDir(), "gpu.txt")
	os.WriteFile(cfg, []byte("[MODEL]\nnum_classes = 4\nnum_layers = 18\nbase_width = 4\n\n[TEST]\nuse_gpu = True\nshort_size = 32\ntarget_size = 32\n\n[SYNTHETIC]\ntest_videos = 8\n"), 0o644)
	r = zoo(t, nil, "run", "TSM", "test", "--config", cfg, "--weights", filepath.Join(save, "TSM_epoch0"), "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("test with use_gpu = True in %s: exit %d\n%s\n%s", cfg, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "warning: [TEST] use_gpu = True in "+cfg+" asks for a GPU") {
		t.Errorf("no warning naming the config line:\n%s", r.stderr)
	}
	r = zoo(t, nil, append([]string{"run", "TSM", "test", "--use_gpu"}, tinyTSM(save)...)...)
	oneLineError(t, r, 1, "--use_gpu: this zoo-plugin-tsm was built for the CPU only (`make cuda` builds the CUDA one); drop --use_gpu to run on the CPU")
}

// TestVideoPathDirectory: --video_path DIR infers every video in it, as
// the README says; a directory without videos is an error naming it.
// Before, the directory was taken for one video: "Is a directory", 0
// videos, exit 0.
func TestVideoPathDirectory(t *testing.T) {
	t.Parallel()
	save := t.TempDir()
	r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, tinyTSM(save)...)...)
	if r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	videos := filepath.Join(shareddata.Dir(t), "videos")
	cfg := filepath.Join(t.TempDir(), "small.txt")
	os.WriteFile(cfg, []byte("[MODEL]\nnum_classes = 4\nnum_layers = 18\nbase_width = 4\n\n[INFER]\nshort_size = 40\ntarget_size = 32\nbatch_size = 2\n"), 0o644)
	ckpt := filepath.Join(save, "TSM_epoch0")
	r = zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--video_path", videos, "--save_dir", save)
	var recs []results.InferRecord
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	var ids []string
	for _, rec := range recs {
		ids = append(ids, filepath.Base(rec.VideoID))
	}
	if r.code != 0 || strings.Join(ids, " ") != "archery.avi arm_wrestling.mp4 part_0.mp4 test.avi test.mp4" {
		t.Fatalf("infer --video_path DIR: exit %d, videos %v\n%s", r.code, ids, r.stderr)
	}
	empty := t.TempDir()
	r = zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--video_path", empty, "--save_dir", save)
	oneLineError(t, r, 1, "video_path "+empty+": no video files")
}
