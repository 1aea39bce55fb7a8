package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
)

// TestServeMultiView: with INFER asking for 2 clips x 3 crops a video,
// classify (the plugin's Decode, six views through Infer, averaged by the
// server) answers what `zoo run TSM infer` answers for the same file
// within 1e-5, for uploads sent at once; ?frames=1 gives the first
// clip's eight frames.
func TestServeMultiView(t *testing.T) {
	_, ckpt := servedTSM(t)
	cfg := filepath.Join(t.TempDir(), "views.txt")
	if err := os.WriteFile(cfg, []byte(serveConfig+"num_clips = 2\nnum_crops = 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	videos := filepath.Join(shareddata.Dir(t), "videos")
	names := []string{"test.mp4", "arm_wrestling.mp4"}
	s := startServe(t, "TSM", "--config", cfg, "--weights", ckpt, "--window", "2s")
	var wg sync.WaitGroup
	got := make([]classifyAnswer, len(names))
	for i, n := range names {
		body := mustRead(t, filepath.Join(videos, n))
		wg.Go(func() {
			code, b := s.call("POST", "/v2/models/TSM/classify?topk=4", "video/mp4", body)
			if err := json.Unmarshal(b, &got[i]); err != nil || code != 200 {
				t.Errorf("classify %s: %d %s", n, code, b)
			}
		})
	}
	wg.Wait()
	for i, n := range names {
		want := runInfer(t, cfg, ckpt, filepath.Join(videos, n))
		sameScores(t, "classify "+n+" (6 views)", got[i].Scores, want.Scores, got[i].Labels, want.Labels)
	}
	var fr struct {
		Frames []struct {
			Index int64 `json:"index"`
		} `json:"frames"`
	}
	code, b := s.call("POST", "/v2/models/TSM/classify?frames=1", "video/mp4", mustRead(t, filepath.Join(videos, "test.mp4")))
	if json.Unmarshal(b, &fr); code != 200 || len(fr.Frames) != 8 {
		t.Errorf("classify?frames=1: %d %.200s, want 8 frames", code, b)
	}
}
