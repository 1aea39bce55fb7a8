package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestTSMEndToEnd runs the real TSM plugin through zoo: train, test and
// infer on the built-in dataset (shrunk), then infer and test on the real
// videos with the checkpoint train saved.
func TestTSMEndToEnd(t *testing.T) {
	save := t.TempDir()
	small := []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=32",
		"--set", "SYNTHETIC.valid_videos=8", "--set", "SYNTHETIC.test_videos=8", "--set", "SYNTHETIC.infer_videos=3"}
	r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--log_interval", "1"}, small...)...)
	if r.code != 0 {
		t.Fatalf("train: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"[TRAIN] Epoch 0, iter 1  Loss:", "[VALID] Epoch 0", "saved checkpoint " + filepath.Join(save, "TSM_epoch0")} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("train output lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "TSM-ResNet-18, 8 segments, 32x32, 4 classes, batch 16") {
		t.Errorf("no model note:\n%s", r.stderr)
	}
	ckpt := filepath.Join(save, "TSM_epoch0")
	if _, err := os.Stat(filepath.Join(ckpt, "fc_0.w_0")); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}

	r = zoo(t, nil, append([]string{"run", "TSM", "test"}, small...)...)
	var tr results.TestResult
	readJSON(t, filepath.Join(save, "TSM_test_result.json"), &tr)
	if r.code != 0 || tr.Videos != 8 || !(tr.Loss > 0) {
		t.Fatalf("test: %d %+v\n%s", r.code, tr, r.stderr)
	}

	r = zoo(t, nil, append([]string{"run", "TSM", "infer", "--infer_topk", "2"}, small...)...)
	var recs []results.InferRecord
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != 3 || len(recs[0].Names) != 2 || !strings.Contains(strings.Join(recs[0].Names, ","), "by") {
		t.Fatalf("infer: %d %+v\n%s", r.code, recs, r.stderr)
	}

	// Real videos: a config in Paddle's INI form with the same small
	// network, the checkpoint above, and lists of the shared videos.
	videos := filepath.Join(shareddata.Dir(t), "videos")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "small.txt")
	os.WriteFile(cfg, []byte(`[MODEL]
name = "TSM"
num_classes = 4
num_layers = 18
base_width = 4
seg_num = 8

[TEST]
short_size = 40
target_size = 32
batch_size = 2
num_reader_threads = 2

[INFER]
short_size = 40
target_size = 32
batch_size = 2
`), 0o644)
	broken := filepath.Join(dir, "broken.mp4")
	os.WriteFile(broken, []byte("this is not a video\n"), 0o644)
	list := filepath.Join(dir, "test.list")
	os.WriteFile(list, []byte(fmt.Sprintf("# real clips\n%s 1\n%s 2\n%s 0\n%s 3\n", filepath.Join(videos, "arm_wrestling.mp4"),
		filepath.Join(videos, "archery.avi"), broken, filepath.Join(videos, "part_0.mp4"))), 0o644)

	r = zoo(t, nil, "run", "TSM", "test", "--config", cfg, "--weights", ckpt, "--filelist", list, "--save_dir", save)
	if r.code != 0 {
		t.Fatalf("test on videos: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	readJSON(t, filepath.Join(save, "TSM_test_result.json"), &tr)
	if tr.Videos != 3 || !strings.Contains(r.stdout, "1 video(s) could not be read") || !strings.Contains(r.stderr, "broken.mp4") {
		t.Errorf("test on videos: %+v\n%s\n%s", tr, r.stdout, r.stderr)
	}

	r = zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--filelist", videos, "--save_dir", save)
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != 5 || filepath.Base(recs[0].VideoID) != "archery.avi" {
		t.Fatalf("infer on a directory: %d %+v\n%s", r.code, recs, r.stderr)
	}
	r = zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--video_path", filepath.Join(videos, "test.avi"), "--save_dir", save)
	readJSON(t, filepath.Join(save, "TSM_infer_result.json"), &recs)
	if r.code != 0 || len(recs) != 1 || len(recs[0].Labels) != 4 {
		t.Fatalf("infer --video_path: %d %+v\n%s", r.code, recs, r.stderr)
	}
	b, _ := json.Marshal(recs[0])
	t.Logf("test.avi: %s", b)

	// A list with a label outside [0, num_classes) is refused up front.
	bad := filepath.Join(dir, "bad.list")
	os.WriteFile(bad, []byte(filepath.Join(videos, "part_0.mp4")+" 7\n"), 0o644)
	r = zoo(t, nil, "run", "TSM", "test", "--config", cfg, "--weights", ckpt, "--filelist", bad, "--save_dir", save)
	oneLineError(t, r, 1, "bad.list:1")
}
