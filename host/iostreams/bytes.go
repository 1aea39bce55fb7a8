package iostreams

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/zoo-ml/zoo/weights"
)

// ByteProgress draws the weights store's progress events: on a terminal a
// bar with size, rate and ETA redrawn in place; otherwise a plain line on
// the first event of a download, then at most every PlainInterval, and one
// when the download ends, so logs stay short. Safe for concurrent use.
type ByteProgress struct {
	// PlainInterval limits how often plain lines are written.
	PlainInterval time.Duration
	// Width is the terminal width in columns.
	Width int

	mu       sync.Mutex
	w        io.Writer
	tty      bool
	now      func() time.Time
	set      string // the set whose download is in progress, "" when none
	start    time.Time
	lastLine time.Time
	last     weights.ProgressEvent
	barShown bool
}

// NewByteProgress returns a ByteProgress writing to w; tty selects the bar,
// drawn within the terminal's width when w is one.
func NewByteProgress(w io.Writer, tty bool) *ByteProgress {
	return &ByteProgress{PlainInterval: 5 * time.Second, Width: width(w, tty), w: w, tty: tty, now: time.Now}
}

// Event draws e; pass it as weights.Store.Progress.
func (p *ByteProgress) Event(e weights.ProgressEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	switch e.Phase {
	case weights.PhaseDownload:
		if p.set != e.Set {
			p.finishLocked(now)
			p.set, p.start = e.Set, now
			p.lastLine = time.Time{}
		}
		p.last = e
		if p.tty {
			p.drawBarLocked()
			return
		}
		if p.lastLine.IsZero() || now.Sub(p.lastLine) >= p.PlainInterval {
			p.lastLine = now
			fmt.Fprintln(p.w, p.statusLocked())
		}
	case weights.PhaseRetry:
		p.clearLocked()
		fmt.Fprintf(p.w, "%s: download attempt %d failed: %v; retrying\n", e.Set, e.Attempt, e.Err)
	case weights.PhaseVerify, weights.PhaseExtract, weights.PhaseDone:
		p.finishLocked(now)
	}
}

// finishLocked ends a download with its summary line.
func (p *ByteProgress) finishLocked(now time.Time) {
	if p.set == "" {
		return
	}
	p.clearLocked()
	e := p.last
	fmt.Fprintf(p.w, "%s: downloaded %s in %s (%s/s)\n", e.Set, HumanBytes(e.Done), clock(now.Sub(p.start)), HumanBytes(int64(e.Rate)))
	p.set = ""
}

func (p *ByteProgress) clearLocked() {
	if p.barShown {
		fmt.Fprint(p.w, clearLine)
		p.barShown = false
	}
}

func (p *ByteProgress) drawBarLocked() {
	status := p.statusLocked()
	bar := ""
	e := p.last
	if e.Total > 0 {
		bar = drawBar(p.Width-len(status)-4, float64(e.Done)/float64(e.Total))
	}
	fmt.Fprint(p.w, clearLine+status+bar)
	p.barShown = true
}

// statusLocked is "tsm_kinetics: 12.3 MB of 98.1 MB (12%), 2.1 MB/s, ETA 0:41".
func (p *ByteProgress) statusLocked() string {
	e := p.last
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", e.Set, HumanBytes(e.Done))
	if e.Total > 0 {
		fmt.Fprintf(&b, " of %s (%d%%)", HumanBytes(e.Total), 100*e.Done/e.Total)
	}
	fmt.Fprintf(&b, ", %s/s", HumanBytes(int64(e.Rate)))
	if e.Total > 0 && e.Rate > 0 {
		eta := time.Duration(float64(e.Total-e.Done) / e.Rate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", clock(eta))
	} else if e.Total > 0 {
		b.WriteString(", ETA ?")
	}
	return b.String()
}

// HumanBytes formats n in decimal units: "512 B", "12.3 MB".
func HumanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		v /= 1000
		if v < 999.95 || u == "TB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return ""
}
