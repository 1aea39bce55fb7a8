package driver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/host/iostreams"
	"github.com/zoo-ml/zoo/host/results"
	"github.com/zoo-ml/zoo/sdk"
)

// fakeSession is a Session in process: train passes of two steps, test and
// infer passes of the events in evalEvents, and a Save that writes the
// file "w" holding the number of saves so far, or fails as saveFail says.
type fakeSession struct {
	saves      int
	loads      int
	saveFail   func(n int, dir string) error // n counts from 1; nil: never fails
	evalEvents []sdk.Event
	extra      map[string]float64 // more metrics of every train step
}

func (f *fakeSession) Run(_ context.Context, req sdk.RunRequest) iter.Seq2[sdk.Event, error] {
	return func(yield func(sdk.Event, error) bool) {
		if req.Phase == sdk.PhaseTest || req.Phase == sdk.PhaseInfer {
			for _, e := range f.evalEvents {
				if !yield(e, nil) {
					return
				}
			}
			return
		}
		for i := range int64(2) {
			m := map[string]float64{"loss": 1, "top1": 0.5, "top5": 1, "lr": 0.1}
			for k, v := range f.extra {
				m[k] = v * float64(i+1)
			}
			if !yield(sdk.Event{Step: &sdk.Step{Iter: i, Samples: 1, Metrics: m}}, nil) {
				return
			}
		}
	}
}

func (f *fakeSession) SaveState(_ context.Context, dir string) (sdk.SaveResult, error) {
	f.saves++
	if err := os.WriteFile(filepath.Join(dir, "w"), []byte{byte(f.saves)}, 0o644); err != nil {
		return sdk.SaveResult{}, err
	}
	if f.saveFail != nil {
		return sdk.SaveResult{}, f.saveFail(f.saves, dir)
	}
	return sdk.SaveResult{}, nil
}

func (f *fakeSession) Load(context.Context, string, string) (sdk.LoadResult, error) {
	f.loads++
	return sdk.LoadResult{Loaded: 1}, nil
}

func (f *fakeSession) Close(context.Context) error { return nil }

func options(dir, mode string, out *bytes.Buffer) Options {
	return Options{Model: sdk.ModelInfo{Name: "M", Labels: []string{"a", "b"}}, Mode: mode, SaveDir: dir, Epochs: 2,
		LogInterval: 1, IO: &iostreams.IOStreams{Out: out, ErrOut: out}}
}

// hidden lists dir's entries whose names start with a dot.
func hidden(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestSaveFailureKeepsOlderCheckpoint: a save that fails at any point leaves
// the checkpoint it was replacing whole at its name, and nothing beside it.
func TestSaveFailureKeepsOlderCheckpoint(t *testing.T) {
	errDisk := errors.New("no space left on device")
	tests := []struct {
		name     string
		saveFail func(n int, dir string) error
		rename   func(from, to string) error
		want     string
	}{
		{"plugin Save fails halfway", func(n int, dir string) error {
			if n == 2 {
				return errDisk
			}
			return nil
		}, nil, "no space left on device"},
		{"state file cannot be written", func(n int, dir string) error {
			if n == 2 {
				// A directory where the state file goes: its rename fails.
				return os.Mkdir(filepath.Join(dir, StateFile), 0o755)
			}
			return nil
		}, nil, StateFile},
		{"rename into place fails", nil, func(from, to string) error {
			if strings.Contains(from, ".tmp-") {
				return errDisk
			}
			return os.Rename(from, to)
		}, "no space left on device"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.rename != nil {
				defer func() { rename = os.Rename }()
			}
			dir := t.TempDir()
			s := &fakeSession{saveFail: tc.saveFail}
			st := State{Model: "M", Epoch: 0, Complete: true, GlobalStep: 2, RunID: "r1"}
			first, err := saveCheckpoint(context.Background(), s, dir, "M_epoch0", st)
			if err != nil {
				t.Fatal(err)
			}
			if tc.rename != nil {
				rename = tc.rename
			}
			st.GlobalStep, st.RunID = 4, "r2"
			_, err = saveCheckpoint(context.Background(), s, dir, "M_epoch0", st)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("second save = %v, want an error containing %q", err, tc.want)
			}
			if b, err := os.ReadFile(filepath.Join(first, "w")); err != nil || !bytes.Equal(b, []byte{1}) {
				t.Errorf("older checkpoint's w = %v, %v; want it intact ([1])", b, err)
			}
			got, err := readState(first)
			if err != nil || got.RunID != "r1" || got.GlobalStep != 2 {
				t.Errorf("older checkpoint's state = %+v, %v", got, err)
			}
			if h := hidden(t, dir); len(h) > 0 {
				t.Errorf("stray files left: %v", h)
			}
		})
	}
}

// TestTrainSaveFailure: a failing save stops training with the error, and
// the earlier epoch's checkpoint and nothing else is left.
func TestTrainSaveFailure(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	s := &fakeSession{saveFail: func(n int, _ string) error {
		if n == 2 {
			return errors.New("plugin exited")
		}
		return nil
	}}
	err := Run(context.Background(), s, options(dir, sdk.ModeTrain, &out))
	if err == nil || !strings.Contains(err.Error(), "save checkpoint "+filepath.Join(dir, "M_epoch1")+": plugin exited") {
		t.Fatalf("Run = %v", err)
	}
	if st, err := readState(filepath.Join(dir, "M_epoch0")); err != nil || !st.Complete || st.RunID == "" {
		t.Errorf("epoch 0 state = %+v, %v", st, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "M_epoch1")); err == nil {
		t.Error("M_epoch1 exists after its save failed")
	}
	if h := hidden(t, dir); len(h) > 0 {
		t.Errorf("stray files left: %v", h)
	}
}

// TestResumeFinished: --resume of a run's last checkpoint says the run is
// finished and trains nothing.
func TestResumeFinished(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	s := &fakeSession{}
	if err := Run(context.Background(), s, options(dir, sdk.ModeTrain, &out)); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	o := options(dir, sdk.ModeTrain, &out)
	o.Resume = filepath.Join(dir, "M_epoch1")
	saves := s.saves
	if err := Run(context.Background(), s, o); err != nil {
		t.Fatalf("resume of a finished run = %v", err)
	}
	if !strings.Contains(out.String(), "M run finished: "+o.Resume+" ends epoch 1 of 2") || !strings.Contains(out.String(), "pass --epoch N with N > 2") {
		t.Errorf("no finished message:\n%s", out.String())
	}
	if s.saves != saves || s.loads != 0 {
		t.Errorf("resume of a finished run saved %d and loaded %d times", s.saves-saves, s.loads)
	}
}

// TestEvalNothingDone: test and infer whose every input failed (or that
// had none) fail and write no result file.
func TestEvalNothingDone(t *testing.T) {
	warn := sdk.Event{Warning: &sdk.Warning{Message: "cannot decode", Path: "a.mp4"}}
	for _, tc := range []struct {
		mode   string
		events []sdk.Event
		want   string
	}{
		{sdk.ModeTest, []sdk.Event{warn, warn}, "test failed: none of the 2 input(s) could be read"},
		{sdk.ModeInfer, []sdk.Event{warn}, "infer failed: none of the 1 input(s) could be read"},
		{sdk.ModeTest, nil, "test failed: the plugin found no inputs"},
		{sdk.ModeInfer, nil, "infer failed: the plugin found no inputs"},
	} {
		dir := t.TempDir()
		var out bytes.Buffer
		err := Run(context.Background(), &fakeSession{evalEvents: tc.events}, options(dir, tc.mode, &out))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s with %d warnings = %v, want %q", tc.mode, len(tc.events), err, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			t.Errorf("%s wrote %v", tc.mode, entries)
		}
	}
}

func writeState(t *testing.T, dir string, st State) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := results.WriteJSON(filepath.Join(dir, StateFile), st); err != nil {
		t.Fatal(err)
	}
}

// TestLatestCheckpoint: the newest complete checkpoint of the run that
// saved last, never an older run's higher epoch, an interrupted one or a
// hidden temp directory.
func TestLatestCheckpoint(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	type ck struct {
		name string
		st   State
	}
	old := []ck{
		{"M_epoch0", State{Model: "M", Epoch: 0, Complete: true, RunID: "a", Saved: at(0)}},
		{"M_epoch1", State{Model: "M", Epoch: 1, Complete: true, RunID: "a", Saved: at(1)}},
		{"M_epoch2", State{Model: "M", Epoch: 2, Complete: true, RunID: "a", Saved: at(2)}},
	}
	tests := []struct {
		name    string
		ckpts   []ck
		want    string
		wantErr string
	}{
		{"none", nil, "", ""},
		{"one run", old, "M_epoch2", ""},
		{"a newer run with fewer epochs", append(old[1:3:3], ck{"M_epoch0", State{Model: "M", Epoch: 0, Complete: true, RunID: "b", Saved: at(5)}}), "M_epoch0", ""},
		{"the newest is interrupted", []ck{
			{"M_epoch0", State{Model: "M", Epoch: 0, Complete: true, RunID: "a", Saved: at(0)}},
			{"M_epoch1", State{Model: "M", Epoch: 1, Complete: false, RunID: "a", Saved: at(1)}},
		}, "M_epoch0", ""},
		{"the latest run has only an interrupted one", append(old[1:3:3], ck{"M_epoch0", State{Model: "M", Epoch: 0, Complete: false, RunID: "b", Saved: at(5)}}), "",
			"the latest M run in DIR has no complete checkpoint: M_epoch0 was interrupted in epoch 0; continue it with `zoo run M train --save_dir DIR --resume DIR/M_epoch0`"},
		{"a hidden temp directory", append(old[:2:2], ck{".M_epoch5.tmp-123", State{Model: "M", Epoch: 5, Complete: true, RunID: "a", Saved: at(9)}},
			ck{".M_epoch7.old", State{Model: "M", Epoch: 7, Complete: true, RunID: "c", Saved: at(9)}}), "M_epoch1", ""},
		{"another model", append(old[:1:1], ck{"N_epoch4", State{Model: "N", Epoch: 4, Complete: true, RunID: "z", Saved: at(9)}}), "M_epoch0", ""},
		{"checkpoints of an older zoo", []ck{
			{"M_epoch0", State{Model: "M", Epoch: 0, Complete: true}},
			{"M_epoch1", State{Model: "M", Epoch: 1, Complete: false}},
		}, "M_epoch0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, c := range tc.ckpts {
				writeState(t, filepath.Join(dir, c.name), c.st)
			}
			got, err := LatestCheckpoint(dir, "M")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), strings.ReplaceAll(tc.wantErr, "DIR", dir)) {
					t.Fatalf("LatestCheckpoint = %q, %v; want error %q", got, err, tc.wantErr)
				}
				return
			}
			want := ""
			if tc.want != "" {
				want = filepath.Join(dir, tc.want)
			}
			if err != nil || got != want {
				t.Errorf("LatestCheckpoint = %q, %v; want %q", got, err, want)
			}
		})
	}
}

// TestTrainRunsDoNotMix: a second fresh run in a save dir tags its
// checkpoints and metrics with its own run id, moves the first run's
// metrics aside, and test then uses the second run's checkpoint.
func TestTrainRunsDoNotMix(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	o := options(dir, sdk.ModeTrain, &out)
	o.Epochs = 3
	if err := Run(context.Background(), &fakeSession{}, o); err != nil {
		t.Fatal(err)
	}
	first, _ := readState(filepath.Join(dir, "M_epoch2"))
	o.Epochs = 1
	out.Reset()
	if err := Run(context.Background(), &fakeSession{}, o); err != nil {
		t.Fatal(err)
	}
	if want := "note: " + dir + " holds checkpoints of earlier runs (M_epoch0, M_epoch1, M_epoch2)"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	second, _ := readState(filepath.Join(dir, "M_epoch0"))
	if first.RunID == "" || second.RunID == first.RunID {
		t.Fatalf("run ids %q and %q", first.RunID, second.RunID)
	}
	events, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range events {
		if e.Run != second.RunID || e.Epoch != 0 {
			t.Errorf("metrics.jsonl holds %+v, want only run %s's epoch 0", e, second.RunID)
		}
	}
	archived, err := results.ReadMetrics(filepath.Join(dir, "metrics."+first.RunID+".jsonl"))
	if err != nil || len(archived) == 0 || archived[len(archived)-1].Epoch != 2 {
		t.Errorf("the first run's metrics: %v, %d events", err, len(archived))
	}
	if got, err := LatestCheckpoint(dir, "M"); err != nil || got != filepath.Join(dir, "M_epoch0") {
		t.Errorf("LatestCheckpoint = %q, %v", got, err)
	}
}

// TestOpenSaveDir: one holder at a time, named in the error; a dead
// holder's lock taken over with a note; leftovers of dead runs cleaned.
func TestOpenSaveDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	d, err := OpenSaveDir(dir, "zoo run M train")
	if err != nil || len(d.Notes) > 0 {
		t.Fatalf("OpenSaveDir = %v, notes %v", err, d.Notes)
	}
	_, err = OpenSaveDir(dir, "zoo run M test")
	var busy *BusyError
	if !errors.As(err, &busy) || busy.Holder.PID != os.Getpid() || !strings.Contains(err.Error(), "zoo run M train") {
		t.Fatalf("second OpenSaveDir = %v, want a BusyError naming this process", err)
	}
	d.Close()
	if _, err := os.Stat(dir); err == nil {
		t.Error("the save dir OpenSaveDir made is left after Close though the run wrote nothing")
	}

	// A run killed with the lock: its file stays, but no lock on it.
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, LockFile), []byte(`{"pid":4242,"host":"h","command":"zoo run M train"}`), 0o644)
	// What it left: a temp checkpoint, a result's temp file, a checkpoint
	// moved aside whose replacement never arrived, and one that did.
	writeState(t, filepath.Join(dir, ".M_epoch3.tmp-99"), State{Model: "M", Epoch: 3, Complete: true})
	os.WriteFile(filepath.Join(dir, ".metrics.png.tmp-12"), nil, 0o644)
	writeState(t, filepath.Join(dir, ".M_epoch1.old"), State{Model: "M", Epoch: 1, Complete: true})
	writeState(t, filepath.Join(dir, ".M_epoch0.old"), State{Model: "M", Epoch: 0, Complete: true})
	writeState(t, filepath.Join(dir, "M_epoch0"), State{Model: "M", Epoch: 0, Complete: true})
	os.WriteFile(filepath.Join(dir, ".keep"), nil, 0o644)
	d, err = OpenSaveDir(dir, "zoo run M train")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	notes := strings.Join(d.Notes, "\n")
	for _, want := range []string{"took over the lock of PID 4242 on h, zoo run M train", "removed what an interrupted run left in " + dir + ": .M_epoch0.old, .M_epoch3.tmp-99, .metrics.png.tmp-12",
		"put back M_epoch1 in " + dir} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	if got := hidden(t, dir); strings.Join(got, " ") != ".keep "+LockFile {
		t.Errorf("hidden entries left: %v", got)
	}
	if _, err := readState(filepath.Join(dir, "M_epoch1")); err != nil {
		t.Errorf("M_epoch1 not put back: %v", err)
	}
}

// TestStepExtraMetrics: a metric a plugin sends beyond loss, top1, top5 and
// lr (data-parallel TSM's allreduce_s) shows in the train log line and in
// metrics.jsonl, whatever its name.
func TestStepExtraMetrics(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	o := options(dir, sdk.ModeTrain, &out)
	o.Epochs = 1
	if err := Run(context.Background(), &fakeSession{extra: map[string]float64{"allreduce_s": 0.25, "queue_ms": 3}}, o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"[TRAIN] Epoch 0, iter 0  Loss: 1.000000, top1_acc: 50.00, top5_acc: 100.00, allreduce_s: 0.250000, queue_ms: 3.000000",
		"[TRAIN] Epoch 0, iter 1  Loss: 1.000000, top1_acc: 50.00, top5_acc: 100.00, allreduce_s: 0.500000, queue_ms: 6.000000",
	} {
		if !strings.Contains(out.String(), want+"\n") {
			t.Errorf("the log lacks %q:\n%s", want, out.String())
		}
	}
	events, err := results.ReadMetrics(filepath.Join(dir, results.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, e := range events {
		if e.Phase == "train" && e.ClipsPerS == 0 { // a step, not the epoch's summary
			steps++
			if want := 0.25 * float64(e.Iter+1); e.Extra["allreduce_s"] != want || e.Extra["queue_ms"] != 12*want {
				t.Errorf("metrics.jsonl step %d: extra %v, want allreduce_s %g", e.Iter, e.Extra, want)
			}
		}
	}
	if steps != 2 {
		t.Errorf("metrics.jsonl holds %d steps, want 2: %+v", steps, events)
	}
	b, _ := os.ReadFile(filepath.Join(dir, results.MetricsFile))
	if !strings.Contains(string(b), `"allreduce_s":0.25`) {
		t.Errorf("metrics.jsonl does not name allreduce_s:\n%s", b)
	}
}

// TestInferSummary: an infer pass's step metrics (TSM's decode and forward
// seconds) are summed over the pass into TSM_infer_summary.json and the
// pass's last log line, beside the videos, the skipped inputs, the pass's
// seconds and clips/s; the steps count no videos.
func TestInferSummary(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	pred := func(id string) sdk.Event {
		return sdk.Event{Prediction: &sdk.Prediction{ID: id, Scores: sdk.Tensor{Shape: []int64{2}, Data: []float32{0.25, 0.75}}, Label: -1}}
	}
	step := func(iter int64, decode, wait, forward float64) sdk.Event {
		return sdk.Event{Step: &sdk.Step{Iter: iter, Samples: 2, Metrics: map[string]float64{"decode_s": decode, "decode_wait_s": wait, "forward_s": forward}}}
	}
	events := []sdk.Event{
		{Start: &sdk.Start{Steps: 2, Samples: 3}},
		step(0, 0.5, 0.5, 1), pred("a.mp4"), pred("b.mp4"),
		{Warning: &sdk.Warning{Message: "cannot decode", Path: "c.mp4"}},
		step(1, 0.25, 0.125, 2), pred("d.mp4"),
	}
	if err := Run(context.Background(), &fakeSession{evalEvents: events}, options(dir, sdk.ModeInfer, &out)); err != nil {
		t.Fatal(err)
	}
	var sum results.InferSummary
	b, err := os.ReadFile(filepath.Join(dir, "M_infer_summary.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"decode_s": 0.75, "decode_wait_s": 0.625, "forward_s": 3}
	if sum.Videos != 3 || sum.Skipped != 1 || !(sum.Seconds > 0) || math.Abs(sum.ClipsPerS*sum.Seconds-3) > 1e-9 || !maps.Equal(sum.Extra, want) {
		t.Errorf("summary %+v, want 3 videos, 1 skipped, extra %v", sum, want)
	}
	line := fmt.Sprintf("[INFER] Finish, videos: 3  seconds: %.3f, clips_per_s: %.3f, decode_s: 0.750, decode_wait_s: 0.625, forward_s: 3.000\n", sum.Seconds, sum.ClipsPerS)
	if !strings.Contains(out.String(), line) || !strings.Contains(out.String(), "M_infer_summary.json (3 videos, top 20)") {
		t.Errorf("the log lacks %q and the summary's name:\n%s", line, out.String())
	}
	var recs []results.InferRecord
	b, _ = os.ReadFile(filepath.Join(dir, "M_infer_result.json"))
	if err := json.Unmarshal(b, &recs); err != nil || len(recs) != 3 {
		t.Errorf("M_infer_result.json holds %d records (%v), want 3", len(recs), err)
	}
}
