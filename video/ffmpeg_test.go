package video

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFrameCounts decodes each real video once and checks the frame count,
// the frame size, the centre rule's indices for seg_num 8 and the clip's
// [8, 3, 224, 224] geometry after group_scale and center crop.
func TestFrameCounts(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	// Containers that say otherwise, and FFmpeg's default output sync,
	// would give 33 for part_0.mp4 and 165 for test.avi.
	for _, tc := range []struct {
		name string
		n    int
		w, h int
		idx  []int // avg = n//8; (avg-1)//2 + i*avg
	}{
		{"part_0.mp4", 32, 340, 256, []int{1, 5, 9, 13, 17, 21, 25, 29}},
		{"test.avi", 164, 320, 240, []int{9, 29, 49, 69, 89, 109, 129, 149}},
		{"archery.avi", 131, 320, 240, []int{7, 23, 39, 55, 71, 87, 103, 119}},
		{"arm_wrestling.mp4", 280, 340, 256, []int{17, 52, 87, 122, 157, 192, 227, 262}},
		{"test.mp4", 300, 340, 256, []int{18, 55, 92, 129, 166, 203, 240, 277}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var idx []int
			frames, n := mustSample(t, d, videoPath(t, tc.name), func(n int) []int {
				idx = SampleIndices(Test, n, 8, 1, nil)
				return idx
			})
			if n != tc.n {
				t.Errorf("decoded %d frames, want %d", n, tc.n)
			}
			if !slices.Equal(idx, tc.idx) {
				t.Errorf("indices %v, want %v", idx, tc.idx)
			}
			for _, f := range frames {
				if f.W != tc.w || f.H != tc.h {
					t.Fatalf("frame %dx%d, want %dx%d", f.W, f.H, tc.w, tc.h)
				}
			}
			cfg := kineticsConfig(Test)
			cfg.Decoder = d
			r := newReader(t, cfg, []Item{{Path: tc.name, Label: 0}})
			data, err := r.transform(nil, frames)
			if err != nil {
				t.Fatal(err)
			}
			if len(data) != 8*3*224*224 {
				t.Errorf("%d values, want 8*3*224*224", len(data))
			}
		})
	}
}

// TestPixelsMatchIndependentDecode compares the frames Sample keeps with
// single frames that a separate ffmpeg run selects by number.
func TestPixelsMatchIndependentDecode(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	for _, tc := range []struct {
		name string
		idx  []int
	}{
		// arm_wrestling.mp4 is checked by TestClipPixels.
		{"part_0.mp4", []int{0, 31}},
		{"test.avi", []int{81, 163}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := videoPath(t, tc.name)
			frames, _ := mustSample(t, d, path, func(int) []int { return tc.idx })
			for i, k := range tc.idx {
				want := ffmpegFrame(t, path, k, frames[i].W, frames[i].H)
				if !bytes.Equal(frames[i].Pix, want) {
					t.Errorf("frame %d differs from the reference decode", k)
				}
			}
		})
	}
}

func TestTwoPassesMatchOne(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	path := videoPath(t, "part_0.mp4")
	pick := func(n int) []int { return SampleIndices(Test, n, 8, 1, nil) }
	one, n1 := mustSample(t, d, path, pick)
	small := &Decoder{FFmpeg: d.FFmpeg, MaxKeepBytes: 5 * 340 * 256 * 3}
	two, n2 := mustSample(t, small, path, pick)
	if n1 != 32 || n2 != 32 {
		t.Fatalf("frame counts %d and %d, want 32", n1, n2)
	}
	for i := range one {
		if !bytes.Equal(one[i].Pix, two[i].Pix) {
			t.Errorf("frame %d differs between one and two passes", i)
		}
	}
}

func TestGeneratedVideos(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	dir := generated(t)
	for _, tc := range []struct {
		name string
		n    int
		w, h int
	}{
		{"portrait.mp4", 20, 48, 80},
		{"rotated.mp4", 12, 48, 64}, // coded 64x48, rotation -90
		{"odd.mkv", 9, 101, 57},
		{"vp9.webm", 15, 96, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			frames, n := mustSample(t, d, path, func(n int) []int { return []int{n / 2} })
			if n != tc.n {
				t.Errorf("decoded %d frames, want %d", n, tc.n)
			}
			if f := frames[0]; f.W != tc.w || f.H != tc.h {
				t.Errorf("frame %dx%d, want %dx%d", f.W, f.H, tc.w, tc.h)
			}
		})
	}
}

// TestRotation checks that the rotated video's frames are the coded frames
// turned a quarter clockwise, as ffmpeg's autorotation (transpose=clock)
// does for rotation -90.
func TestRotation(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	dir := generated(t)
	rot, _ := mustSample(t, d, filepath.Join(dir, "rotated.mp4"), func(int) []int { return []int{3} })
	raw, _ := mustSample(t, d, filepath.Join(dir, "rot0.mp4"), func(int) []int { return []int{3} })
	r, c := rot[0], raw[0]
	if r.W != c.H || r.H != c.W {
		t.Fatalf("rotated %dx%d from coded %dx%d", r.W, r.H, c.W, c.H)
	}
	for y := 0; y < r.H; y++ {
		for x := 0; x < r.W; x++ {
			r1, g1, b1 := r.At(x, y)
			r2, g2, b2 := c.At(y, c.H-1-x)
			if r1 != r2 || g1 != g2 || b1 != b2 {
				t.Fatalf("rotated pixel (%d,%d) = %d,%d,%d, coded (%d,%d) = %d,%d,%d", x, y, r1, g1, b1, y, c.H-1-x, r2, g2, b2)
			}
		}
	}
}

func TestBrokenFiles(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	dir := generated(t)
	for _, name := range []string{"truncated.mp4", "zero.mp4", "text.mp4", "missing.mp4"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name)
			_, _, err := d.Sample(context.Background(), path, func(n int) []int { return []int{0} })
			if err == nil {
				t.Fatalf("no error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			if !strings.Contains(msg, path) {
				t.Errorf("error does not name the file: %q", msg)
			}
			// ffmpeg's own diagnosis is its last stderr line.
			if !strings.Contains(msg, "ffmpeg: ") || !strings.Contains(msg, "Invalid data found") && !strings.Contains(msg, "No such file") {
				t.Errorf("error lacks ffmpeg's reason: %q", msg)
			}
		})
	}
}

func TestMissingFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := NewDecoder()
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "apt-get install ffmpeg") {
		t.Fatalf("NewDecoder without ffmpeg: %v", err)
	}
	d := &Decoder{FFmpeg: filepath.Join(t.TempDir(), "ffmpeg")}
	if _, err := d.Count(context.Background(), "x.mp4"); !errors.Is(err, ErrNoFFmpeg) {
		t.Fatalf("Count with a missing ffmpeg: %v", err)
	}
}

// TestCancelKillsFFmpeg runs ffmpeg through a wrapper that records its
// process id, cancels mid-decode, and checks that the process is gone.
func TestCancelKillsFFmpeg(t *testing.T) {
	t.Parallel()
	real := decoder(t).FFmpeg
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	wrapper := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\necho $$ > " + pidFile + "\nexec " + real + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	d := &Decoder{FFmpeg: wrapper}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	frames := 0
	start := time.Now()
	_, err := d.run(ctx, videoPath(t, "test.mp4"), runOpts{}, func(_, w, h int, r *bufio.Reader) error {
		frames++
		if frames == 3 {
			cancel()
		}
		_, err := r.Discard(3 * w * h)
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("decode after cancel: %v, want context.Canceled", err)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("cancel took %v", time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// Wait reaped the child, so the pid no longer names a process (or
	// names an unrelated one only after reuse, which a fresh pid space
	// makes unlikely within this test).
	if err := syscall.Kill(pid, 0); err == nil {
		t.Errorf("ffmpeg (pid %d) still running after cancel", pid)
	}
}

// TestSampleSelect decodes part_0.mp4 (32 frames) keeping only the frames
// the centre rule can pick near a guessed count: with the guess within
// guessWindow it gives Sample's frames, otherwise it reports the true count
// and leaves the decode to Sample.
func TestSampleSelect(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	path := videoPath(t, "part_0.mp4")
	pick := func(n int) []int { return SampleIndices(Test, n, 8, 1, nil) }
	want, _ := mustSample(t, d, path, pick)
	for _, tc := range []struct {
		guess int
		ok    bool
	}{
		{32, true}, {35, true}, {28, false},
	} {
		got, n, ok, err := d.sampleSelect(context.Background(), path, runOpts{}, tc.guess, pick)
		if err != nil || n != 32 || ok != tc.ok {
			t.Errorf("guess %d: %d frames, ok %v, %v; want 32, %v", tc.guess, n, ok, err, tc.ok)
			continue
		}
		for i := range got {
			if !bytes.Equal(got[i].Pix, want[i].Pix) {
				t.Errorf("guess %d: frame %d differs from Sample's", tc.guess, i)
			}
		}
	}
}
