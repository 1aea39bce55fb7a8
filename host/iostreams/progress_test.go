package iostreams

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// stepClock advances by step on each call.
type stepClock struct {
	t    time.Time
	step time.Duration
}

func (c *stepClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func TestProgressPlain(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := NewProgress(&buf, false)
	clk := &stepClock{t: time.Unix(0, 0), step: time.Second}
	p.now = clk.now
	p.Start("train", 3, 100) // t=1s
	for i := 1; i <= 30; i++ {
		p.Update(i) // t=2s..31s
	}
	p.Println("[TRAIN] Epoch 3, iter 30  Loss: 1.000000, top1_acc: 50.00, top5_acc: 90.00")
	p.Done()
	p.Update(31) // after Done: ignored
	want := strings.Join([]string{
		"train epoch 3: 1/100 (1%), 1.00 it/s, ETA 1:39",
		"train epoch 3: 11/100 (11%), 1.00 it/s, ETA 1:29",
		"train epoch 3: 21/100 (21%), 1.00 it/s, ETA 1:19",
		"[TRAIN] Epoch 3, iter 30  Loss: 1.000000, top1_acc: 50.00, top5_acc: 90.00",
		"train epoch 3: 30/100 (30%), 0.97 it/s, took 0:31",
		"",
	}, "\n")
	if got := buf.String(); got != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", got, want)
	}
	if strings.Contains(buf.String(), "\r") || strings.Contains(buf.String(), "\x1b") {
		t.Error("plain output holds terminal control characters")
	}
}

func TestProgressNoTotalNoEpoch(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := NewProgress(&buf, false)
	clk := &stepClock{t: time.Unix(0, 0), step: 500 * time.Millisecond}
	p.now = clk.now
	p.Start("infer", -1, 0)
	p.Update(4)
	p.Done()
	want := "infer: 4, 8.00 it/s, ETA ?\ninfer: 4, 4.00 it/s, took 0:01\n"
	if buf.String() != want {
		t.Errorf("output %q, want %q", buf.String(), want)
	}
}

func TestProgressTTY(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := NewProgress(&buf, true)
	p.Width = 80
	clk := &stepClock{t: time.Unix(0, 0), step: 50 * time.Millisecond}
	p.now = clk.now
	p.Start("valid", 0, 10)
	for i := 1; i <= 10; i++ {
		p.Update(i)
	}
	out := buf.String()
	if n := strings.Count(out, "\r\x1b[2K"); n < 3 || n > 10 {
		t.Errorf("bar drawn %d times, want a few (rate-limited to every 100ms)", n)
	}
	last := out[strings.LastIndex(out, "\r\x1b[2K")+len("\r\x1b[2K"):]
	if !strings.HasPrefix(last, "valid epoch 0: 9/10 (90%)") && !strings.HasPrefix(last, "valid epoch 0: 10/10 (100%)") {
		t.Errorf("last bar %q", last)
	}
	if !strings.Contains(last, "[") || !strings.Contains(last, "=") || len(last) > 80 {
		t.Errorf("last bar %q: want a bar within 80 columns", last)
	}
	buf.Reset()
	p.Println("log line")
	if got := buf.String(); !strings.HasPrefix(got, "\r\x1b[2Klog line\n\r\x1b[2Kvalid epoch 0:") {
		t.Errorf("Println on a terminal = %q: want clear, line, redraw", got)
	}
	buf.Reset()
	p.Done()
	if got := buf.String(); !strings.HasPrefix(got, "\r\x1b[2Kvalid epoch 0: 10/10 (100%)") || !strings.HasSuffix(got, "\n") {
		t.Errorf("Done on a terminal = %q", got)
	}
}

func TestIsTerminal(t *testing.T) {
	t.Parallel()
	if IsTerminal(&bytes.Buffer{}) {
		t.Error("a bytes.Buffer is not a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
}

func TestClock(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{0: "0:00", 61 * time.Second: "1:01", 3725 * time.Second: "1:02:05", 1499 * time.Millisecond: "0:01"} {
		if got := clock(d); got != want {
			t.Errorf("clock(%v) = %q, want %q", d, got, want)
		}
	}
}
