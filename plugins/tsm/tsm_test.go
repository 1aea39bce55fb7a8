package tsm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zoo-ml/zoo/internal/shareddata"
	"github.com/zoo-ml/zoo/plugins/internal/classifier"
	"github.com/zoo-ml/zoo/sdk"
	"github.com/zoo-ml/zoo/weights"
)

// tinyConfig is the built-in job shrunk further for unit tests.
func tinyConfig(t *testing.T, mode string, over map[string]map[string]any) sdk.Config {
	t.Helper()
	c := sdk.Config{}
	for _, k := range mustSchema() {
		if c[k.Section] == nil {
			c[k.Section] = map[string]any{}
		}
		c[k.Section][k.Name] = k.Default
	}
	for sec, kv := range DefaultJob() {
		for k, v := range kv {
			c[sec][k] = v
		}
	}
	for _, sec := range []string{"TRAIN", "VALID", "TEST", "INFER"} {
		c[sec]["batch_size"] = 2
	}
	c["MODEL"]["base_width"] = 4
	c["SYNTHETIC"]["train_videos"] = 4
	c["SYNTHETIC"]["valid_videos"] = 3
	c["SYNTHETIC"]["test_videos"] = 3
	c["SYNTHETIC"]["infer_videos"] = 3
	for sec, kv := range over {
		for k, v := range kv {
			c[sec][k] = v
		}
	}
	return c
}

func openTiny(t *testing.T, mode string, over map[string]map[string]any, w map[string]string) *session {
	t.Helper()
	s, _, err := open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: mode, Config: tinyConfig(t, mode, over), Weights: w, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func collect(t *testing.T, s *session, req sdk.RunRequest) []sdk.Event {
	t.Helper()
	var evs []sdk.Event
	err := s.Run(context.Background(), req, func(e sdk.Event) error { evs = append(evs, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestSyntheticOnlyOrderTellsClasses checks the property the built-in
// dataset exists for: every clip's frames show the bar at every position
// exactly once, whatever the class, so the set of frames carries no label.
func TestSyntheticOnlyOrderTellsClasses(t *testing.T) {
	const seg, size = 8, 32
	clip := make([]float32, seg*3*size*size)
	seen := map[int]bool{}
	for i := 0; i < 200; i++ {
		label := synthClip(clip, splitTrain, i, seg, size, 0)
		seen[label] = true
		var positions []int
		var steps []int
		for f := 0; f < seg; f++ {
			frame := clip[f*3*size*size : f*3*size*size+size*size] // red plane
			x := -1
			for y := 0; y < size && x < 0; y++ {
				for xx := 0; xx < size; xx++ {
					if frame[y*size+xx] != 0 {
						x = xx
						break
					}
				}
			}
			if x < 0 || x%(size/seg) != 0 {
				t.Fatalf("clip %d frame %d: bar at x=%d", i, f, x)
			}
			positions = append(positions, x/(size/seg))
			if f > 0 {
				steps = append(steps, (positions[f]-positions[f-1]+seg)%seg)
			}
		}
		sorted := slices.Clone(positions)
		slices.Sort(sorted)
		if !slices.Equal(sorted, []int{0, 1, 2, 3, 4, 5, 6, 7}) {
			t.Fatalf("clip %d (class %d) visits %v, want every position once", i, label, positions)
		}
		want := (synthClasses[label].step + seg) % seg
		for _, s := range steps {
			if s != want {
				t.Fatalf("clip %d (class %d) steps %v, want all %d", i, label, steps, want)
			}
		}
	}
	if len(seen) != len(synthClasses) {
		t.Errorf("200 clips cover %d classes", len(seen))
	}
}

func TestTrainValidTestInferPasses(t *testing.T) {
	s := openTiny(t, sdk.ModeTrain, nil, nil)
	evs := collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTrain})
	if evs[0].Start == nil || evs[0].Start.Steps != 2 || evs[0].Start.Samples != 4 {
		t.Fatalf("train start = %+v", evs[0].Start)
	}
	if len(evs) != 3 || evs[1].Step.Metrics["lr"] != 0.02 {
		t.Fatalf("train events = %d, first step %+v", len(evs), evs[1].Step)
	}
	// Validation keeps the odd last clip (3 clips in batches of 2).
	evs = collect(t, s, sdk.RunRequest{Phase: sdk.PhaseValid})
	if len(evs) != 3 || evs[2].Step.Samples != 1 {
		t.Fatalf("valid events %d, last %+v", len(evs), evs[len(evs)-1].Step)
	}
	for _, e := range evs[1:] {
		if l := e.Step.Metrics["loss"]; !(l > 0) {
			t.Errorf("valid loss %v", l)
		}
	}
}

func TestInferPredictsEveryClip(t *testing.T) {
	s := openTiny(t, sdk.ModeInfer, nil, nil)
	evs := collect(t, s, sdk.RunRequest{Phase: sdk.PhaseInfer})
	var preds []*sdk.Prediction
	for _, e := range evs {
		if e.Prediction != nil {
			preds = append(preds, e.Prediction)
		}
	}
	if len(preds) != 3 {
		t.Fatalf("%d predictions, want 3", len(preds))
	}
	for _, p := range preds {
		var sum float64
		for _, v := range p.Scores.Data {
			sum += float64(v)
		}
		if len(p.Scores.Data) != 4 || sum < 0.999 || sum > 1.001 {
			t.Errorf("%s: scores %v (sum %v)", p.ID, p.Scores.Data, sum)
		}
	}
}

// TestCheckpointRoundTrip: what zoo saves loads back bit-identically, in
// Paddle's format, optimizer state included.
func TestCheckpointRoundTrip(t *testing.T) {
	s := openTiny(t, sdk.ModeTrain, nil, nil)
	collect(t, s, sdk.RunRequest{Phase: sdk.PhaseTrain})
	dir1 := t.TempDir()
	if err := s.Save(context.Background(), dir1); err != nil {
		t.Fatal(err)
	}
	names, _ := weights.ListDir(dir1)
	if !slices.Contains(names, "fc_0.w_0") || !slices.Contains(names, "conv1_weights_velocity_0") || !slices.Contains(names, "bn_conv1_mean") {
		t.Fatalf("checkpoint holds %d files, missing fc_0.w_0, a velocity or a BN statistic", len(names))
	}
	s2 := openTiny(t, sdk.ModeTrain, nil, nil)
	res, err := s2.Load(context.Background(), dir1, sdk.LoadResume)
	if err != nil {
		t.Fatal(err)
	}
	if res.Loaded != len(names) || res.Ignored != 0 {
		t.Errorf("loaded %d, ignored %d of %d files", res.Loaded, res.Ignored, len(names))
	}
	dir2 := t.TempDir()
	if err := s2.Save(context.Background(), dir2); err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		a, _ := os.ReadFile(filepath.Join(dir1, n))
		b, err := os.ReadFile(filepath.Join(dir2, n))
		if err != nil || !bytes.Equal(a, b) {
			t.Fatalf("%s differs after a save-load-save round trip (%v)", n, err)
		}
	}
	// Test mode reads the same files through --weights, ignoring velocities.
	openTiny(t, sdk.ModeTest, nil, map[string]string{sdk.UseWeights: dir1})
}

func TestWeightsErrorsNameTheVariable(t *testing.T) {
	s := openTiny(t, sdk.ModeTrain, nil, nil)
	dir := t.TempDir()
	if err := s.Save(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	// Another width: every conv has the wrong shape.
	_, _, err := open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: sdk.ModeTest,
		Config: tinyConfig(t, sdk.ModeTest, map[string]map[string]any{"MODEL": {"base_width": 8}}), Weights: map[string]string{sdk.UseWeights: dir}})
	if err == nil || !strings.Contains(err.Error(), "shape [") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("wrong shapes: %v", err)
	}
	os.Remove(filepath.Join(dir, "fc_0.b_0"))
	_, _, err = open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: sdk.ModeTest,
		Config: tinyConfig(t, sdk.ModeTest, nil), Weights: map[string]string{sdk.UseWeights: dir}})
	if !errors.Is(err, weights.ErrMismatch) && (err == nil || !strings.Contains(err.Error(), "fc_0.b_0")) {
		t.Fatalf("missing fc_0.b_0: %v", err)
	}
	// Pretraining skips fc_0.* and so does not miss it.
	openTiny(t, sdk.ModeTrain, nil, map[string]string{sdk.UsePretrain: dir})
}

// TestResNet50StemLoadsByName loads the real Paddle ResNet-50 files into a
// TSM-ResNet-50: every file present fills its variable exactly, and the
// variables the stem lacks are reported as missing by name.
func TestResNet50StemLoadsByName(t *testing.T) {
	dir := filepath.Join(shareddata.Dir(t), "paddle", "resnet50_stem")
	c := tinyConfig(t, sdk.ModeTest, map[string]map[string]any{
		"MODEL": {"num_layers": 50, "base_width": 64, "num_classes": 400},
		"TEST":  {"batch_size": 1, "target_size": 32, "short_size": 32},
	})
	s, _, err := open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: sdk.ModeTest, Config: c})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := classifier.Specs(s.model, classifier.All)
	_, err = weights.Check(dir, want)
	var me *weights.MismatchError
	if !errors.As(err, &me) || len(me.Wrong) != 0 {
		t.Fatalf("Check = %v, want only missing variables", err)
	}
	files, _ := weights.ListDir(dir)
	if len(me.Missing)+len(files) != len(want) {
		t.Errorf("%d missing + %d present != %d model variables", len(me.Missing), len(files), len(want))
	}
	if slices.Contains(me.Missing, "res2a_branch2a_weights") || !slices.Contains(me.Missing, "res5c_branch2c_weights") || !slices.Contains(me.Missing, "fc_0.w_0") {
		t.Errorf("missing list is wrong: %v", me.Missing)
	}
	present := map[string]weights.Spec{}
	for _, f := range files {
		present[f] = want[f]
	}
	n, err := s.load(dir, func(name string) bool { _, ok := present[name]; return ok }, false)
	if err != nil || n != len(files) {
		t.Fatalf("load %d of %d: %v", n, len(files), err)
	}
	ts, _ := weights.ReadDir(dir, []string{"conv1_weights", "bn_conv1_variance"})
	for name, tt := range ts {
		v, _ := tt.Float32s()
		p, _ := s.model.Param(name)
		if !slices.Equal(p.Value.Float32s(), v) {
			t.Errorf("%s not loaded exactly", name)
		}
	}
}

func TestBadConfigIsInvalidArgument(t *testing.T) {
	for _, over := range []map[string]map[string]any{
		{"MODEL": {"num_layers": 20}},
		{"MODEL": {"seglen": 2}},
		{"TRAIN": {"batch_size": 0}},
		{"MODEL": {"bogus": 1}},
	} {
		_, _, err := open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: sdk.ModeTrain, Config: tinyConfig(t, sdk.ModeTrain, over)})
		if sdk.CodeOf(err) != sdk.CodeInvalidArgument {
			t.Errorf("%v: err = %v, want CodeInvalidArgument", over, err)
		}
	}
	_, _, err := open(context.Background(), sdk.OpenRequest{Model: "TSM", Mode: sdk.ModeTrain, Device: "gpu", Config: tinyConfig(t, sdk.ModeTrain, nil)})
	if sdk.CodeOf(err) != sdk.CodeFailedPrecondition || !strings.Contains(err.Error(), "make cuda") {
		t.Errorf("gpu on a CPU build: %v", err)
	}
}
