package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestShardEmpty: `--shard I/N` without MPI on a list shorter than N (a
// Kubernetes Indexed Job with more pods than videos) leaves the parts
// with no video done, not failed: exit 0, empty result files under the
// shard's names and a line saying so. Before, such a part failed with
// "the plugin found no inputs".
func TestShardEmpty(t *testing.T) {
	t.Parallel()
	save := t.TempDir()
	tiny := []string{"--save_dir", save, "--set", "MODEL.base_width=4", "--set", "SYNTHETIC.train_videos=16",
		"--set", "SYNTHETIC.infer_videos=2", "--set", "SYNTHETIC.test_videos=2"}
	if r := zoo(t, nil, append([]string{"run", "TSM", "train", "--epoch", "1", "--valid_interval", "0"}, tiny...)...); r.code != 0 {
		t.Fatalf("train: exit %d\n%s", r.code, r.stderr)
	}
	r := zoo(t, nil, append([]string{"run", "TSM", "infer", "--shard", "3/4"}, tiny...)...)
	if r.code != 0 {
		t.Fatalf("infer --shard 3/4 of 2 videos: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "shard 3-of-4 holds no video of the list") {
		t.Errorf("stdout does not say the shard is empty:\n%s", r.stdout)
	}
	var recs []any
	b, err := os.ReadFile(filepath.Join(save, "TSM_infer_result_3-of-4.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &recs); err != nil || recs == nil || len(recs) != 0 {
		t.Errorf("TSM_infer_result_3-of-4.json = %s (%v), want []", b, err)
	}
	if _, err := os.Stat(filepath.Join(save, "TSM_infer_result_3-of-4")); err != nil {
		t.Errorf("no pickle: %v", err)
	}
	r = zoo(t, nil, append([]string{"run", "TSM", "test", "--shard", "2/4"}, tiny...)...)
	if r.code != 0 {
		t.Fatalf("test --shard 2/4 of 2 videos: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var res map[string]any
	b, err = os.ReadFile(filepath.Join(save, "TSM_test_result_2-of-4.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil || res["videos"] != 0.0 {
		t.Errorf("TSM_test_result_2-of-4.json = %s (%v), want 0 videos", b, err)
	}
	// A part that holds videos is unchanged.
	if r := zoo(t, nil, append([]string{"run", "TSM", "infer", "--shard", "1/4"}, tiny...)...); r.code != 0 || strings.Contains(r.stdout, "no video") {
		t.Errorf("infer --shard 1/4: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}
