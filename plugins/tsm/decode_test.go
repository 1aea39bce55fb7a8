package tsm

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
	"github.com/zoo-ml/zoo/sdk"
)

// TestDecodeInferMatchesRun: Decode then Infer, the views' probabilities
// averaged (what `zoo serve` does with an upload), gives an infer pass's
// numbers for the same videos, with one view and with 2 clips x 3 crops;
// a file that is not a video is INVALID_ARGUMENT naming the file.
func TestDecodeInferMatchesRun(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"test.mp4", "archery.avi"} {
		b, err := os.ReadFile(filepath.Join(shareddata.Dir(t), "videos", n))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name         string
		clips, crops int
	}{{"one view", 1, 1}, {"2 clips x 3 crops", 2, 3}} {
		t.Run(c.name, func(t *testing.T) {
			s := openTiny(t, sdk.ModeInfer, map[string]map[string]any{
				"INFER": {"video_path": dir, "short_size": 40, "target_size": 32, "num_clips": c.clips, "num_crops": c.crops},
			}, nil)
			want := map[string][]float32{}
			for _, e := range collect(t, s, sdk.RunRequest{Phase: sdk.PhaseInfer}) {
				if e.Prediction != nil {
					want[filepath.Base(e.Prediction.ID)] = e.Prediction.Scores.Data
				}
			}
			views := c.clips * c.crops
			for n, w := range want {
				d, err := s.Decode(context.Background(), filepath.Join(dir, n))
				if err != nil {
					t.Fatalf("decode %s: %v", n, err)
				}
				if got := d.Input.Shape; len(got) != 5 || got[0] != int64(views) || got[1] != 8 || got[3] != 32 {
					t.Fatalf("decode %s: shape %v, want [%d 8 3 32 32]", n, got, views)
				}
				if len(d.Frames) != c.clips*8 || len(d.Mean) != 3 || len(d.Std) != 3 {
					t.Errorf("decode %s: frames %v mean %v std %v", n, d.Frames, d.Mean, d.Std)
				}
				out, err := s.Infer(context.Background(), d.Input)
				if err != nil {
					t.Fatal(err)
				}
				k := len(w)
				for j := range k {
					var p float64
					for v := range views {
						p += float64(out.Data[v*k+j]) / float64(views)
					}
					if math.Abs(p-float64(w[j])) > 1e-5 {
						t.Fatalf("%s: Decode+Infer %v (views averaged), infer pass %v", n, out.Data, w)
					}
				}
			}
			if len(want) != 2 {
				t.Fatalf("the infer pass predicted %d videos, want 2", len(want))
			}
			bad := filepath.Join(t.TempDir(), "x.mp4")
			os.WriteFile(bad, []byte("not a video"), 0o600)
			if _, err := s.Decode(context.Background(), bad); sdk.CodeOf(err) != sdk.CodeInvalidArgument {
				t.Errorf("decode of a non-video: %v (code %v), want INVALID_ARGUMENT", err, sdk.CodeOf(err))
			}
		})
	}
}
