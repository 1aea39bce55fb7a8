package iostreams

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws the progress of a phase: on a terminal a bar redrawn in
// place at most every BarInterval, otherwise a plain line on the first
// update, then at most every PlainInterval, and one at the end, so logs stay
// readable. Each shows the
// phase, epoch, iter/total, rate (iterations per second) and ETA. Use
// Println for log lines so they do not collide with the bar. Safe for
// concurrent use.
type Progress struct {
	// BarInterval and PlainInterval limit how often output is drawn.
	BarInterval, PlainInterval time.Duration
	// Width is the terminal width in columns (80 when unset).
	Width int

	mu        sync.Mutex
	w         io.Writer
	tty       bool
	now       func() time.Time
	phase     string
	epoch     int
	total     int
	iter      int
	start     time.Time
	lastDraw  time.Time
	barShown  bool
	active    bool
	drawnOnce bool
}

// NewProgress returns a Progress writing to w; tty selects the bar (pass
// IsTerminal(w)), drawn within the terminal's width when w is one.
func NewProgress(w io.Writer, tty bool) *Progress {
	return &Progress{BarInterval: 100 * time.Millisecond, PlainInterval: 10 * time.Second,
		Width: width(w, tty), w: w, tty: tty, now: time.Now}
}

// Start begins a phase ("train", "valid", "test", "infer") of total
// iterations (0 if unknown) in an epoch (negative for none).
func (p *Progress) Start(phase string, epoch, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	p.phase, p.epoch, p.total, p.iter = phase, epoch, total, 0
	p.start = p.now()
	p.lastDraw = p.start
	p.active = true
	p.drawnOnce = false
}

// Update records that iter iterations of the phase are done.
func (p *Progress) Update(iter int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return
	}
	p.iter = iter
	now := p.now()
	interval := p.PlainInterval
	if p.tty {
		interval = p.BarInterval
	}
	if p.drawnOnce && now.Sub(p.lastDraw) < interval {
		return
	}
	p.drawLocked(now)
}

// Done ends the phase with a final line (the bar is replaced by it).
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.active {
		return
	}
	p.clearLocked()
	fmt.Fprintln(p.w, p.statusLocked(p.now(), true))
	p.active = false
}

// Println writes a log line, keeping the bar below it.
func (p *Progress) Println(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	wasShown := p.barShown
	p.clearLocked()
	fmt.Fprintln(p.w, line)
	if wasShown && p.active {
		p.drawLocked(p.now())
	}
}

func (p *Progress) clearLocked() {
	if p.barShown {
		fmt.Fprint(p.w, clearLine)
		p.barShown = false
	}
}

func (p *Progress) drawLocked(now time.Time) {
	p.lastDraw = now
	p.drawnOnce = true
	if !p.tty {
		fmt.Fprintln(p.w, p.statusLocked(now, false))
		return
	}
	status := p.statusLocked(now, false)
	bar := ""
	if p.total > 0 {
		bar = drawBar(p.Width-len(status)-4, float64(p.iter)/float64(p.total))
	}
	fmt.Fprint(p.w, clearLine+status+bar)
	p.barShown = true
}

// statusLocked is "train epoch 3: 20/100 (20%), 4.50 it/s, ETA 0:17".
func (p *Progress) statusLocked(now time.Time, done bool) string {
	var b strings.Builder
	b.WriteString(p.phase)
	if p.epoch >= 0 {
		fmt.Fprintf(&b, " epoch %d", p.epoch)
	}
	b.WriteString(": ")
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d (%d%%)", p.iter, p.total, 100*p.iter/p.total)
	} else {
		fmt.Fprintf(&b, "%d", p.iter)
	}
	elapsed := now.Sub(p.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.iter) / elapsed.Seconds()
	}
	fmt.Fprintf(&b, ", %.2f it/s", rate)
	switch {
	case done:
		fmt.Fprintf(&b, ", took %s", clock(elapsed))
	case p.total > 0 && rate > 0:
		eta := time.Duration(float64(p.total-p.iter) / rate * float64(time.Second))
		fmt.Fprintf(&b, ", ETA %s", clock(eta))
	default:
		b.WriteString(", ETA ?")
	}
	return b.String()
}

// clearLine returns the cursor to the start of the line and clears it.
const clearLine = "\r\x1b[2K"

// drawBar is " [====    ]" of width columns (brackets excluded) filled to
// fraction, or "" when fewer than 10 columns are left for it.
func drawBar(width int, fraction float64) string {
	if width < 10 {
		return ""
	}
	filled := min(width, max(0, int(float64(width)*fraction)))
	return " [" + strings.Repeat("=", filled) + strings.Repeat(" ", width-filled) + "]"
}

// clock formats d as m:ss or h:mm:ss.
func clock(d time.Duration) string {
	s := int(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
