package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenRunLog: metrics.jsonl holds one run; another run's log (and
// plot) is moved aside, and moved back when that run is resumed.
func TestOpenRunLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, MetricsFile)
	write := func(run string, epoch int) []string {
		t.Helper()
		m, notes, err := OpenRunLog(dir, run)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Write(Event{Phase: "train", Epoch: epoch}); err != nil {
			t.Fatal(err)
		}
		m.Close()
		os.WriteFile(filepath.Join(dir, PlotFile), []byte(run), 0o644)
		return notes
	}
	runs := func(path string) string {
		t.Helper()
		events, err := ReadMetrics(path)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, e := range events {
			s = append(s, e.Run)
		}
		return strings.Join(s, " ")
	}
	// Written before runs were tagged.
	os.WriteFile(path, []byte(`{"phase":"train","epoch":0,"iter":0,"loss":1,"top1":0.5,"top5":1,"lr":0.1,"clips_per_s":3}`+"\n"), 0o644)
	if notes := write("a", 0); len(notes) != 1 || !strings.Contains(notes[0], "(run untagged); moved to "+filepath.Join(dir, "metrics.untagged.jsonl")) {
		t.Errorf("notes = %q", notes)
	}
	if notes := write("a", 1); len(notes) != 0 {
		t.Errorf("the same run's log was moved: %q", notes)
	}
	write("b", 0)
	if got := runs(path); got != "b" {
		t.Errorf("metrics.jsonl runs = %q, want b", got)
	}
	if got := runs(filepath.Join(dir, "metrics.a.jsonl")); got != "a a" {
		t.Errorf("metrics.a.jsonl runs = %q, want a a", got)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "metrics.a.png")); string(b) != "a" {
		t.Errorf("run a's plot not moved aside with its log: %q", b)
	}
	// Run a resumed: its own log comes back, b's goes aside.
	write("a", 2)
	if got := runs(path); got != "a a a" {
		t.Errorf("metrics.jsonl after resuming a = %q", got)
	}
	if got := runs(filepath.Join(dir, "metrics.b.jsonl")); got != "b" {
		t.Errorf("metrics.b.jsonl = %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "metrics.a.jsonl")); err == nil {
		t.Error("metrics.a.jsonl still there after a was resumed")
	}
	// A run id from a checkpoint file never names a path outside dir.
	write("../x", 0)
	write("c", 0)
	if _, err := os.Stat(filepath.Join(dir, "metrics.___x.jsonl")); err != nil {
		t.Errorf("odd run id: %v", err)
	}
}

func TestRunEvents(t *testing.T) {
	t.Parallel()
	ev := []Event{{Run: "a", Epoch: 0}, {Run: "b", Epoch: 0}, {Run: "a", Epoch: 1}}
	if got := RunEvents(ev, "a"); len(got) != 2 || got[1].Epoch != 1 {
		t.Errorf("RunEvents = %+v", got)
	}
}
