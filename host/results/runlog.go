package results

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// OpenRunLog opens save_dir's metrics.jsonl for the training run run, so
// that the file only ever holds one run's events and metrics.png plots one
// run: when the file holds another run's events, it and metrics.png are
// first moved aside to metrics.<that run>.jsonl and .png (events written
// before runs were tagged: metrics.untagged.jsonl); when the run's own log
// was moved aside that way and is resumed, it is moved back. Every event
// written through the log is tagged with run. The notes say what was moved.
func OpenRunLog(dir, run string) (*MetricsLog, []string, error) {
	path := filepath.Join(dir, MetricsFile)
	var notes []string
	cur, ok, err := fileRun(path)
	if err != nil {
		return nil, nil, err
	}
	if ok && cur != run {
		to, err := moveAside(dir, cur)
		if err != nil {
			return nil, nil, err
		}
		notes = append(notes, fmt.Sprintf("note: %s held an earlier run's metrics (run %s); moved to %s", path, orUntagged(cur), to))
	}
	if !ok || cur != run {
		if err := moveBack(dir, run); err != nil {
			return nil, nil, err
		}
	}
	m, err := OpenMetricsLog(path)
	if err != nil {
		return nil, nil, err
	}
	m.run = run
	return m, notes, nil
}

// RunEvents returns the events of one run.
func RunEvents(events []Event, run string) []Event {
	var out []Event
	for _, e := range events {
		if e.Run == run {
			out = append(out, e)
		}
	}
	return out
}

// fileRun reads the run of a metrics log's first event; ok is false when
// the file does not exist or holds no whole event.
func fileRun(path string) (run string, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read metrics: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), maxMetricsLine)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			return e.Run, true, nil
		}
	}
	return "", false, nil
}

func orUntagged(run string) string {
	if run == "" {
		return "untagged"
	}
	return run
}

// archiveBase is the name metrics.jsonl and metrics.png of run get when
// moved aside, without the extension; run ids come from checkpoint files,
// so anything but a plain name is replaced.
func archiveBase(run string) string {
	safe := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, orUntagged(run))
	return "metrics." + safe
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

func moveAside(dir, run string) (string, error) {
	base := archiveBase(run)
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		jsonl, png := filepath.Join(dir, name+".jsonl"), filepath.Join(dir, name+".png")
		if exists(jsonl) || exists(png) {
			continue
		}
		if err := os.Rename(filepath.Join(dir, MetricsFile), jsonl); err != nil {
			return "", fmt.Errorf("move the earlier run's metrics aside: %w", err)
		}
		if err := os.Rename(filepath.Join(dir, PlotFile), png); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("move the earlier run's plot aside: %w", err)
		}
		return jsonl, nil
	}
}

func moveBack(dir, run string) error {
	base := filepath.Join(dir, archiveBase(run))
	if run == "" || !exists(base+".jsonl") || exists(filepath.Join(dir, MetricsFile)) {
		return nil
	}
	if err := os.Rename(base+".jsonl", filepath.Join(dir, MetricsFile)); err != nil {
		return fmt.Errorf("move run %s's metrics back: %w", run, err)
	}
	if err := os.Rename(base+".png", filepath.Join(dir, PlotFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("move run %s's plot back: %w", run, err)
	}
	return nil
}
