package tsm

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

// TestResumeInsideEpochOverBrokenVideo: a train epoch over a video list
// with undecodable entries, stopped after three steps, saved, and resumed
// in a new session at step 3 ends with the same parameters and velocities as
// the epoch run whole. A broken video before the stop shifts the batches'
// boundaries, so the resume must start where the checkpoint's position
// says, not at 3 * batch_size.
func TestResumeInsideEpochOverBrokenVideo(t *testing.T) {
	tmp := t.TempDir()
	videos := filepath.Join(shareddata.Dir(t), "videos")
	var list strings.Builder
	for i, name := range []string{"bad0.mp4", "archery.avi", "bad1.mp4", "test.mp4", "bad2.mp4", "arm_wrestling.mp4", "bad3.mp4", "test.avi", "part_0.mp4"} {
		path := filepath.Join(videos, name)
		if strings.HasPrefix(name, "bad") {
			path = filepath.Join(tmp, name)
			if err := os.WriteFile(path, []byte("not a video"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		fmt.Fprintf(&list, "%s %d\n", path, i%4)
	}
	listFile := filepath.Join(tmp, "train.list")
	if err := os.WriteFile(listFile, []byte(list.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	over := map[string]map[string]any{"TRAIN": {"filelist": listFile, "batch_size": 1, "short_size": 32, "target_size": 32}}
	save := func(s *session) string {
		dir := t.TempDir()
		if err := s.Save(context.Background(), dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	train := func(s *session, req sdk.RunRequest) {
		req.Phase = sdk.PhaseTrain
		err := s.Run(context.Background(), req, func(sdk.Event) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
	}

	whole := openTiny(t, sdk.ModeTrain, over, nil)
	train(whole, sdk.RunRequest{})
	want := save(whole)

	stopped := openTiny(t, sdk.ModeTrain, over, nil)
	train(stopped, sdk.RunRequest{MaxSteps: 3})
	ckpt := save(stopped)
	p, err := readPosition(ckpt)
	if err != nil || p == nil {
		t.Fatalf("no position in the checkpoint of a stopped epoch: %v", err)
	}
	if p.Step != 3 || p.Order <= 3 {
		t.Fatalf("position %+v: the list no longer puts a broken video among the first clips of epoch 0", p)
	}

	resumed := openTiny(t, sdk.ModeTrain, over, nil)
	if _, err := resumed.Load(context.Background(), ckpt, sdk.LoadResume); err != nil {
		t.Fatal(err)
	}
	train(resumed, sdk.RunRequest{StartStep: 3, GlobalStep: 3})
	got := save(resumed)
	if _, err := os.Stat(filepath.Join(got, positionFile)); err == nil {
		t.Errorf("the checkpoint of a whole epoch holds %s", positionFile)
	}
	names, _ := weights.ListDir(want)
	if len(names) < 10 {
		t.Fatalf("checkpoint holds %d files", len(names))
	}
	for _, n := range names {
		a, _ := os.ReadFile(filepath.Join(want, n))
		b, err := os.ReadFile(filepath.Join(got, n))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs between the whole epoch and the resumed one (%v)", n, err)
		}
	}
}
