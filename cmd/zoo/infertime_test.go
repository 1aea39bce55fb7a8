package main_test

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestInferTimings: `zoo run TSM infer` over the real shared videos (and
// one file that is no video) reports where its time went, in
// TSM_infer_summary.json and its last log line: the reader's busy time
// (decode_s), what the forward passes waited for it (decode_wait_s) and
// the forward passes (forward_s), beside the videos, the skipped input,
// the pass's seconds and clips/s. The figures are positive and
// consistent with the pass's wall time: the forward passes and the waits
// for the reader follow one another inside it, and the reader's two
// workers are busy at most twice that long. The built-in dataset's infer
// pass reports its clip generation as decode_s the same way.
func TestInferTimings(t *testing.T) {
	t.Parallel()
	save := t.TempDir()
	tiny := []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=16", "--set", "SYNTHETIC.infer_videos=3"}
	if r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, tiny...)...); r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	ckpt := filepath.Join(save, "TSM_epoch0")

	videos := filepath.Join(shareddata.Dir(t), "videos")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "small.txt")
	os.WriteFile(cfg, []byte(`[MODEL]
name = "TSM"
num_classes = 4
num_layers = 18
base_width = 4
seg_num = 8

[INFER]
short_size = 40
target_size = 32
batch_size = 2
num_reader_threads = 2
`), 0o644)
	broken := filepath.Join(dir, "broken.mp4")
	os.WriteFile(broken, []byte("this is not a video\n"), 0o644)
	var list strings.Builder
	for _, n := range []string{"arm_wrestling.mp4", "test.mp4", "part_0.mp4", "test.avi", "archery.avi"} {
		fmt.Fprintln(&list, filepath.Join(videos, n))
	}
	fmt.Fprintln(&list, broken)
	listPath := filepath.Join(dir, "infer.list")
	os.WriteFile(listPath, []byte(list.String()), 0o644)

	out := t.TempDir()
	r := zoo(t, nil, "run", "TSM", "infer", "--config", cfg, "--weights", ckpt, "--filelist", listPath, "--save_dir", out)
	if r.code != 0 {
		t.Fatalf("infer on the videos: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkInferSummary(t, r, filepath.Join(out, "TSM_infer_summary.json"), 5, 1, 2)

	r = zoo(t, nil, append([]string{"run", "TSM", "infer"}, tiny...)...)
	if r.code != 0 {
		t.Fatalf("infer on the built-in dataset: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	checkInferSummary(t, r, filepath.Join(save, "TSM_infer_summary.json"), 3, 0, 1)
}

// checkInferSummary checks an infer run's summary file and last log line:
// videos and skipped inputs as given, every figure positive, clips/s the
// videos over the seconds, and the forward passes and the waits for the
// reader within the pass's seconds (workers reader workers busy at most
// workers times as long). slack covers the three decimals of the log.
func checkInferSummary(t *testing.T, r result, path string, videos, skipped, workers int) {
	t.Helper()
	var s results.InferSummary
	readJSON(t, path, &s)
	t.Logf("%s: %+v", filepath.Base(path), s)
	dec, wait, fwd := s.Extra["decode_s"], s.Extra["decode_wait_s"], s.Extra["forward_s"]
	const slack = 1e-3
	switch {
	case s.Videos != videos || s.Skipped != skipped:
		t.Errorf("summary: %d videos, %d skipped; want %d and %d", s.Videos, s.Skipped, videos, skipped)
	case !(s.Seconds > 0 && dec > 0 && wait > 0 && fwd > 0):
		t.Errorf("summary: seconds %g, decode_s %g, decode_wait_s %g, forward_s %g: want each positive", s.Seconds, dec, wait, fwd)
	case math.Abs(s.ClipsPerS*s.Seconds-float64(videos)) > 1e-6*float64(videos):
		t.Errorf("summary: clips_per_s %g over %g s, want %d videos / seconds", s.ClipsPerS, s.Seconds, videos)
	case wait+fwd > s.Seconds+slack:
		t.Errorf("summary: decode_wait_s %g + forward_s %g exceed the pass's %g s", wait, fwd, s.Seconds)
	case dec > float64(workers)*s.Seconds+slack:
		t.Errorf("summary: decode_s %g exceeds %d worker(s) busy through the pass's %g s", dec, workers, s.Seconds)
	}
	line := fmt.Sprintf("[INFER] Finish, videos: %d  seconds: %.3f, clips_per_s: %.3f, decode_s: %.3f, decode_wait_s: %.3f, forward_s: %.3f\n",
		videos, s.Seconds, s.ClipsPerS, dec, wait, fwd)
	if !strings.Contains(r.stdout, line) {
		t.Errorf("stdout lacks %q:\n%s", line, r.stdout)
	}
}
