package iostreams

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zoo-ml/zoo/weights"
)

// fakeClock returns a clock the test moves by hand.
func fakeClock() (now func() time.Time, advance func(time.Duration)) {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return t }, func(d time.Duration) { t = t.Add(d) }
}

func download(done, total int64, rate float64) weights.ProgressEvent {
	return weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseDownload, Done: done, Total: total, Rate: rate, Attempt: 1}
}

func TestByteProgressPlain(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := NewByteProgress(&buf, false)
	now, advance := fakeClock()
	p.now = now
	p.Event(download(0, 10_000_000, 0))
	for i := int64(1); i <= 10; i++ {
		advance(time.Second)
		p.Event(download(i*1_000_000, 10_000_000, 1e6))
	}
	p.Event(weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseVerify})
	p.Event(weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseExtract})
	p.Event(weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseDone})
	want := []string{
		"tsm_kinetics: 0 B of 10.0 MB (0%), 0 B/s, ETA ?",
		"tsm_kinetics: 5.0 MB of 10.0 MB (50%), 1.0 MB/s, ETA 0:05",
		"tsm_kinetics: 10.0 MB of 10.0 MB (100%), 1.0 MB/s, ETA 0:00",
		"tsm_kinetics: downloaded 10.0 MB in 0:10 (1.0 MB/s)",
	}
	if got := strings.Split(strings.TrimSpace(buf.String()), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("plain output:\n%s\nwant:\n%s", buf.String(), strings.Join(want, "\n"))
	}
	if strings.Contains(buf.String(), "\r") {
		t.Errorf("plain output redraws in place: %q", buf.String())
	}
}

func TestByteProgressBar(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := NewByteProgress(&buf, true)
	now, advance := fakeClock()
	p.now = now
	p.Event(download(0, -1, 0))
	advance(time.Second)
	p.Event(download(2_500_000, -1, 2.5e6))
	p.Event(weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseRetry, Attempt: 1, Err: errors.New("connection reset")})
	advance(time.Second)
	p.Event(download(4_000_000, 8_000_000, 2e6))
	p.Event(weights.ProgressEvent{Set: "tsm_kinetics", Phase: weights.PhaseVerify})
	out := buf.String()
	for _, want := range []string{
		"\r\x1b[2Ktsm_kinetics: 2.5 MB, 2.5 MB/s",
		"\r\x1b[2Ktsm_kinetics: download attempt 1 failed: connection reset; retrying\n",
		"\r\x1b[2Ktsm_kinetics: 4.0 MB of 8.0 MB (50%), 2.0 MB/s, ETA 0:02 [",
		" ]\r\x1b[2Ktsm_kinetics: downloaded 4.0 MB in 0:02 (2.0 MB/s)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}
	// The bar fills half its width at 50%, and the line fits 80 columns.
	var line string
	for _, seg := range strings.Split(out, "\r\x1b[2K") {
		if strings.Contains(seg, "[") {
			line = seg
		}
	}
	bar := line[strings.Index(line, "[")+1 : strings.Index(line, "]")]
	if n := strings.Count(bar, "="); n != len(bar)/2 || len(bar) < 10 {
		t.Errorf("bar %q has %d of %d filled, want half", bar, n, len(bar))
	}
	if len(line) > 80 {
		t.Errorf("bar line is %d columns, want at most 80: %q", len(line), line)
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 123_456_789: "123.5 MB", 999_990_000: "1.0 GB", 5 << 40: "5.5 TB"} {
		if got := HumanBytes(n); got != want {
			t.Errorf("HumanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
