package results

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"sync"
)

// MetricsFile is the name of the metrics log inside save_dir.
const MetricsFile = "metrics.jsonl"

// Event is one logged measurement: a train log line every log_interval
// iterations, a validation or test summary. Top1 and Top5 are fractions in
// [0, 1]. In JSON a NaN or infinite value is null (JSON has no NaN), and
// null reads back as NaN, so a diverging loss is still logged.
type Event struct {
	Phase     string  `json:"phase"` // "train", "valid" or "test"
	Epoch     int     `json:"epoch"`
	Iter      int     `json:"iter"`
	Loss      float64 `json:"loss"`
	Top1      float64 `json:"top1"`
	Top5      float64 `json:"top5"`
	LR        float64 `json:"lr"`
	ClipsPerS float64 `json:"clips_per_s"`
	Run       string  `json:"run,omitempty"` // the training run's id (driver.State.RunID)
	// Extra holds the step's other metrics, those a plugin sends beyond
	// loss, top1, top5 and lr (e.g. allreduce_s, a data-parallel step's
	// gradient allreduce seconds). In JSON they are fields of the line
	// itself, after the fixed ones, in name order.
	Extra map[string]float64 `json:"-"`
}

// eventFields are the JSON names of Event's fixed fields: an extra metric
// of one of these names is not written (the fixed field wins).
var eventFields = map[string]bool{"phase": true, "epoch": true, "iter": true, "loss": true, "top1": true,
	"top5": true, "lr": true, "clips_per_s": true, "run": true}

// eventJSON mirrors Event with nullable floats.
type eventJSON struct {
	Phase     string   `json:"phase"`
	Epoch     int      `json:"epoch"`
	Iter      int      `json:"iter"`
	Loss      *float64 `json:"loss"`
	Top1      *float64 `json:"top1"`
	Top5      *float64 `json:"top5"`
	LR        *float64 `json:"lr"`
	ClipsPerS *float64 `json:"clips_per_s"`
	Run       string   `json:"run,omitempty"`
}

func finite(f float64) *float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil
	}
	return &f
}

func orNaN(f *float64) float64 {
	if f == nil {
		return math.NaN()
	}
	return *f
}

// MarshalJSON writes non-finite values as null, and Extra's metrics as
// fields of their own after the fixed ones.
func (e Event) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(eventJSON{e.Phase, e.Epoch, e.Iter, finite(e.Loss), finite(e.Top1),
		finite(e.Top5), finite(e.LR), finite(e.ClipsPerS), e.Run})
	if err != nil {
		return b, err
	}
	return appendExtra(b, e.Extra, eventFields), nil
}

// appendExtra adds extra's metrics to the JSON object b as fields of their
// own, in name order, non-finite values as null, leaving out the names in
// fixed (the object's own fields win).
func appendExtra(b []byte, extra map[string]float64, fixed map[string]bool) []byte {
	if len(extra) == 0 {
		return b
	}
	b = b[:len(b)-1] // the closing brace
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		if fixed[k] {
			continue
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(finite(extra[k]))
		b = append(append(append(append(b, ','), kb...), ':'), vb...)
	}
	return append(b, '}')
}

// readExtra returns the fields of the JSON object b not named in fixed, as
// metrics (null as NaN); nil when there are none.
func readExtra(b []byte, fixed map[string]bool) (map[string]float64, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, err
	}
	var extra map[string]float64
	for k, raw := range all {
		if fixed[k] {
			continue
		}
		var v *float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, fmt.Errorf("metric %q: %w", k, err)
		}
		if extra == nil {
			extra = map[string]float64{}
		}
		extra[k] = orNaN(v)
	}
	return extra, nil
}

// UnmarshalJSON reads null (or a missing field) as NaN, and fields other
// than the fixed ones into Extra.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	extra, err := readExtra(b, eventFields)
	if err != nil {
		return err
	}
	*e = Event{j.Phase, j.Epoch, j.Iter, orNaN(j.Loss), orNaN(j.Top1), orNaN(j.Top5), orNaN(j.LR), orNaN(j.ClipsPerS), j.Run, extra}
	return nil
}

// MetricsLog appends Events to a JSON-lines file. Each event is one write
// of one line to a file opened O_APPEND, so once Write returns the line
// survives the process being killed (Ctrl-C, a crash), and a write cut short
// leaves at most one torn last line, which ReadMetrics skips. The file is
// fsynced (which only matters if the machine itself goes down) once per
// epoch rather than per line: on every non-"train" event (validation ends
// each epoch), on Sync and on Close. An fsync costs ~2 ms here
// (BenchmarkMetricsLogWrite/valid), a line without one ~8 µs: with ~10 ms
// steps (the built-in model) and log_interval 10, a sync per line alone
// would use the driver's whole 2% overhead budget. A resumed run appends to
// the same file; a new run starts its own (OpenRunLog). Safe for concurrent
// use.
type MetricsLog struct {
	mu   sync.Mutex
	f    *os.File
	path string
	run  string // tags events without one (OpenRunLog)
}

// OpenMetricsLog opens (creating if needed) the log at path for appending.
func OpenMetricsLog(path string) (*MetricsLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open metrics log: %w", err)
	}
	return &MetricsLog{f: f, path: path}, nil
}

// Write appends e as one line, syncing the file when e is not a training
// event.
func (m *MetricsLog) Write(e Event) error {
	if e.Run == "" {
		e.Run = m.run
	}
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("write %s: %w", m.path, err)
	}
	b = append(b, '\n')
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return fmt.Errorf("write %s: %w", m.path, os.ErrClosed)
	}
	if _, err := m.f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", m.path, err)
	}
	if e.Phase != "train" {
		return m.syncLocked()
	}
	return nil
}

// Sync flushes the log to disk.
func (m *MetricsLog) Sync() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return fmt.Errorf("sync %s: %w", m.path, os.ErrClosed)
	}
	return m.syncLocked()
}

func (m *MetricsLog) syncLocked() error {
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", m.path, err)
	}
	return nil
}

// Close closes the file. Closing twice is not an error.
func (m *MetricsLog) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.f == nil {
		return nil
	}
	serr := m.syncLocked()
	err := m.f.Close()
	m.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", m.path, err)
	}
	return serr
}

// maxMetricsLine caps one line of metrics.jsonl; an Event is ~150 bytes.
const maxMetricsLine = 64 << 10

// ReadMetrics reads a metrics log. Blank lines are skipped, and so is a last
// line without its newline that does not parse (a write cut short by a
// crash); any other bad line is an error naming path:line.
func ReadMetrics(path string) ([]Event, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	var events []Event
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), maxMetricsLine)
	torn := len(data) > 0 && data[len(data)-1] != '\n'
	line, nLines := 0, bytes.Count(data, []byte{'\n'})
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(b, &e); err != nil {
			if torn && line == nLines+1 {
				break
			}
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("%s:%d: line longer than %d bytes: %w", path, line+1, maxMetricsLine, err)
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return events, nil
}
