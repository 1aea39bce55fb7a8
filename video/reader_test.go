package video

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func kineticsConfig(mode Mode) Config {
	return Config{
		Mode: mode, SegNum: 8, SegLen: 1, ShortSize: 256, TargetSize: 224,
		Mean:      [3]float32{0.485, 0.456, 0.406},
		Std:       [3]float32{0.229, 0.224, 0.225},
		BatchSize: 1, Workers: 1, BufSize: 4,
	}
}

func newReader(t *testing.T, cfg Config, items []Item) *Reader {
	t.Helper()
	r, err := NewReader(cfg, items)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestClipPixels checks whole clips value by value against frames decoded
// independently (ffmpeg's select filter to rgb24), center-cropped at
// Python's round((w-224)/2), round((h-224)/2) and normalised here.
// arm_wrestling is 340x256 and passes group_scale untouched (crop at 58,
// 16); test.avi is 320x240 and is first resized to 341x256 (crop at
// round(58.5) = 58, 16).
func TestClipPixels(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		w, h   int
		check  []int // segments compared
		resize bool
		n      int
	}{
		{"arm_wrestling.mp4", 340, 256, []int{0, 7}, false, 280},
		{"test.avi", 320, 240, []int{3}, true, 164},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := kineticsConfig(Test)
			path := videoPath(t, tc.name)
			r := newReader(t, cfg, []Item{{Path: path, Label: 0}})
			s, err := r.Load(context.Background(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if s.Frames != tc.n {
				t.Errorf("%d frames, want %d", s.Frames, tc.n)
			}
			for _, seg := range tc.check {
				k := s.Indices[seg]
				ref := &Image{W: tc.w, H: tc.h, Stride: 3 * tc.w, Pix: ffmpegFrame(t, path, k, tc.w, tc.h)}
				if tc.resize {
					ref = ResizeBilinear(ref, 341, 256)
				}
				x0, y0 := 58, 16
				plane := 224 * 224
				bad := 0
				for c := 0; c < 3; c++ {
					for y := 0; y < 224; y++ {
						for x := 0; x < 224; x++ {
							v := ref.Pix[(y0+y)*ref.Stride+3*(x0+x)+c]
							want := (float64(v)/255 - float64(cfg.Mean[c])) / float64(cfg.Std[c])
							got := s.Data[(seg*3+c)*plane+y*224+x]
							if math.Abs(float64(got)-want) > 1e-5 {
								bad++
							}
						}
					}
				}
				if bad > 0 {
					t.Errorf("segment %d (frame %d): %d of %d values differ from the reference", seg, k, bad, 3*plane)
				}
			}
		})
	}
}

// TestShortVideo reads part_0.mp4 (32 frames) with more segments than
// frames (avg 0: segment i takes frame i mod 32) and with seglen above avg
// (start i*avg, wrapping at the end).
func TestShortVideo(t *testing.T) {
	t.Parallel()
	path := videoPath(t, "part_0.mp4")
	cfg := kineticsConfig(Test)
	cfg.SegNum = 64
	s, err := newReader(t, cfg, []Item{{Path: path, Label: 0}}).Load(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := append(seq(0, 1, 32), seq(0, 1, 32)...); !slices.Equal(s.Indices, want) {
		t.Errorf("seg_num 64: indices %v", s.Indices)
	}
	n := 3 * 224 * 224
	if len(s.Data) != 64*n || !slices.Equal(s.Data[0:n], s.Data[32*n:33*n]) {
		t.Errorf("seg_num 64: segments 0 and 32 should be frame 0 twice")
	}
	cfg = kineticsConfig(Train)
	cfg.SegLen = 5
	s, err = newReader(t, cfg, []Item{{Path: path, Label: 0}}).Load(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Indices[35:]; !slices.Equal(got, []int{28, 29, 30, 31, 0}) || s.Indices[5] != 4 {
		t.Errorf("seglen 5 > avg 4: indices %v", s.Indices)
	}
	if len(s.Data) != 8*15*224*224 {
		t.Errorf("seglen 5: %d values, want [8, 15, 224, 224]", len(s.Data))
	}
}

// TestTrainLoadSeeded reads part_0 (32 frames, avg 4) in train mode: indices within
// Paddle's bounds, the same clip for the same (seed, epoch, index), another
// for another epoch.
func TestTrainLoadSeeded(t *testing.T) {
	t.Parallel()
	cfg := kineticsConfig(Train)
	cfg.Seed = 42
	r := newReader(t, cfg, []Item{{Path: videoPath(t, "part_0.mp4"), Label: 6}})
	ctx := context.Background()
	a, err := r.Load(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range a.Indices {
		if k < 4*i || k > 4*i+3 {
			t.Errorf("segment %d took frame %d, outside [%d, %d]", i, k, 4*i, 4*i+3)
		}
	}
	b, err := r.Load(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.Indices, b.Indices) || !slices.Equal(a.Data, b.Data) {
		t.Error("same seed, epoch and index gave different clips")
	}
	c, err := r.Load(ctx, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(a.Indices, c.Indices) {
		t.Error("epochs 0 and 1 drew the same indices")
	}
}

// TestPrecropMatchesTransforms checks the eval-mode shortcut, ffmpeg doing
// group_scale and the center crop when the short side already matches,
// against the Go transforms on whole frames: for frames that qualify
// (portrait, rotated, odd offset), frames that do not (odd sizes, a video
// exactly target x target) and the real Kinetics size.
func TestPrecropMatchesTransforms(t *testing.T) {
	t.Parallel()
	d := decoder(t)
	dir := generated(t)
	for _, tc := range []struct {
		path string
		cfg  Config
	}{
		{filepath.Join(dir, "portrait.mp4"), smallConfig(Test, 1, 1)},
		{filepath.Join(dir, "rotated.mp4"), smallConfig(Valid, 1, 1)},
		{filepath.Join(dir, "oddcrop.mp4"), smallConfig(Infer, 1, 1)},
		{filepath.Join(dir, "odd.mkv"), smallConfig(Test, 1, 1)},
		{filepath.Join(dir, "square.mp4"), smallConfig(Test, 1, 1)},
		{videoPath(t, "part_0.mp4"), kineticsConfig(Test)},
	} {
		t.Run(filepath.Base(tc.path), func(t *testing.T) {
			t.Parallel()
			tc.cfg.Decoder = d
			r := newReader(t, tc.cfg, []Item{{Path: tc.path, Label: 0}})
			s, err := r.Load(context.Background(), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			frames, n := mustSample(t, d, tc.path, func(n int) []int { return s.Indices })
			if n != s.Frames {
				t.Fatalf("%d frames, Load saw %d", n, s.Frames)
			}
			want, err := r.transform(nil, frames)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.Data, want) {
				t.Errorf("Load's clip differs from the transforms of whole frames (%dx%d)", frames[0].W, frames[0].H)
			}
		})
	}
}

// smallConfig suits the generated videos (48 to 101 pixels a side).
func smallConfig(mode Mode, batch, workers int) Config {
	cfg := kineticsConfig(mode)
	cfg.SegNum, cfg.ShortSize, cfg.TargetSize = 4, 48, 40
	cfg.BatchSize, cfg.Workers, cfg.BufSize = batch, workers, 3
	return cfg
}

// generatedItems lists the generated videos, good and broken, labelled by
// position.
func generatedItems(t *testing.T, names ...string) []Item {
	dir := generated(t)
	var items []Item
	for i, n := range names {
		items = append(items, Item{Path: filepath.Join(dir, n), Label: i, Where: fmt.Sprintf("list:%d", i+1)})
	}
	return items
}

type skip struct {
	path string
	err  error
}

// readAll runs one epoch to the end.
func readAll(t *testing.T, r *Reader, epoch int, skips *[]skip) ([]*Batch, Stats) {
	t.Helper()
	e := r.Epoch(context.Background(), epoch)
	defer e.Close()
	var out []*Batch
	for {
		b, err := e.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out, e.Stats()
}

func withSkips(cfg Config, skips *[]skip) Config {
	cfg.OnSkip = func(path string, err error) { *skips = append(*skips, skip{path, err}) }
	return cfg
}

// TestEpochOrderAndSkips: test mode keeps the list's order and the last
// partial batch; broken videos are skipped, each with one warning naming it
// in one line, and counted; train drops the partial batch.
func TestEpochOrderAndSkips(t *testing.T) {
	t.Parallel()
	all := generatedItems(t, "portrait.mp4", "text.mp4", "rot0.mp4", "odd.mkv", "zero.mp4", "vp9.webm", "truncated.mp4", "rotated.mp4", "big.mp4")
	for _, tc := range []struct {
		mode    Mode
		items   []Item
		batches []int // batch sizes
		read    int
	}{
		{Test, all, []int{4, 2}, 6},
		{Train, all[:7], []int{4}, 4},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			items := tc.items
			var broken []string
			for _, it := range items {
				switch filepath.Base(it.Path) {
				case "text.mp4", "zero.mp4", "truncated.mp4":
					broken = append(broken, it.Path)
				}
			}
			var skips []skip
			cfg := withSkips(smallConfig(tc.mode, 4, 2), &skips)
			batches, st := readAll(t, newReader(t, cfg, items), 0, &skips)
			var sizes []int
			var ids []string
			for _, b := range batches {
				sizes = append(sizes, len(b.IDs))
				ids = append(ids, b.IDs...)
				if b.Shape != [5]int{len(b.IDs), 4, 3, 40, 40} || len(b.Data) != len(b.IDs)*4*3*40*40 || len(b.Labels) != len(b.IDs) {
					t.Errorf("batch shape %v, %d values, %d labels", b.Shape, len(b.Data), len(b.Labels))
				}
				for i, id := range b.IDs {
					if j := slices.IndexFunc(items, func(it Item) bool { return it.Path == id }); j < 0 || items[j].Label != b.Labels[i] {
						t.Errorf("clip %s has label %d", id, b.Labels[i])
					}
				}
			}
			if !slices.Equal(sizes, tc.batches) {
				t.Errorf("batch sizes %v, want %v", sizes, tc.batches)
			}
			if st.Read != tc.read || st.Skipped != 3 {
				t.Errorf("stats %+v, want %d read, 3 skipped", st, tc.read)
			}
			if tc.mode == Test {
				var want []string
				for _, it := range items {
					if !slices.Contains(broken, it.Path) {
						want = append(want, it.Path)
					}
				}
				if !slices.Equal(ids, want) {
					t.Errorf("clips in order %v, want %v", ids, want)
				}
			}
			var got []string
			for _, s := range skips {
				got = append(got, s.path)
				// ffmpeg's reason, whether it ran at -v error (train) or
				// at level+verbose (test).
				if msg := s.err.Error(); !strings.Contains(msg, s.path) || strings.Contains(msg, "\n") || !strings.Contains(msg, "Invalid data found") {
					t.Errorf("skip error %q: want one line naming %s and ffmpeg's reason", msg, s.path)
				}
			}
			slices.Sort(got)
			want := slices.Clone(broken)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("warnings for %v, want one for each of %v", got, want)
			}
		})
	}
}

// TestEpochRepeatsAcrossWorkers: a seeded train epoch gives the same
// batches with 1 and 3 workers, and epochs are shuffled apart.
func TestEpochRepeatsAcrossWorkers(t *testing.T) {
	t.Parallel()
	items := generatedItems(t, "portrait.mp4", "rot0.mp4", "text.mp4", "odd.mkv", "big.mp4")
	var runs [2][]*Batch
	var r *Reader
	for k, workers := range []int{1, 3} {
		var skips []skip
		cfg := withSkips(smallConfig(Train, 2, workers), &skips)
		cfg.Seed = 7
		r = newReader(t, cfg, items)
		b, st := readAll(t, r, 1, &skips)
		if len(b) != 2 || st.Read != 4 || st.Skipped != 1 || len(skips) != 1 {
			t.Fatalf("workers %d: %d batches, stats %+v, %d warnings", workers, len(b), st, len(skips))
		}
		runs[k] = b
	}
	for i := range runs[0] {
		a, b := runs[0][i], runs[1][i]
		if !slices.Equal(a.IDs, b.IDs) || !slices.Equal(a.Labels, b.Labels) || !slices.Equal(a.Data, b.Data) {
			t.Errorf("batch %d differs between 1 and 3 workers: %v and %v", i, a.IDs, b.IDs)
		}
	}
	if o0, o1 := r.Order(0), r.Order(1); slices.Equal(o0, o1) {
		t.Errorf("epochs 0 and 1 read in the same order %v", o0)
	}
}

// TestEpochCancelKillsFFmpeg cancels an epoch while its workers' ffmpeg
// processes are running (slowed to real time with -re) and checks that
// Close leaves none behind.
func TestEpochCancelKillsFFmpeg(t *testing.T) {
	t.Parallel()
	real := decoder(t).FFmpeg
	dir := t.TempDir()
	pids := filepath.Join(dir, "pids")
	if err := os.Mkdir(pids, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "ffmpeg")
	script := "#!/bin/sh\necho $$ > " + pids + "/$$\nexec " + real + " -re \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	arm := videoPath(t, "arm_wrestling.mp4")
	items := []Item{{Path: arm, Label: 0}, {Path: arm, Label: 1}, {Path: arm, Label: 2}}
	cfg := kineticsConfig(Test)
	cfg.Workers, cfg.Decoder = 2, &Decoder{FFmpeg: wrapper}
	var skips []skip
	cfg = withSkips(cfg, &skips)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newReader(t, cfg, items).Epoch(ctx, 0)
	deadline := time.Now().Add(20 * time.Second)
	for {
		ents, _ := os.ReadDir(pids)
		if len(ents) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d ffmpeg processes started, want 2", len(ents))
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	start := time.Now()
	if _, err := e.Next(context.Background()); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v, want context.Canceled", err)
	}
	e.Close()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if len(skips) != 0 {
		t.Errorf("cancellation reported as skipped videos: %v", skips)
	}
	ents, err := os.ReadDir(pids)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("ffmpeg (pid %d) still running after Close", pid)
		}
	}
}

func TestNewReaderErrors(t *testing.T) {
	t.Parallel()
	d := &Decoder{FFmpeg: "unused"}
	items := []Item{{Path: "a.mp4", Label: 3, Where: "l:1"}}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		items []Item
		want  string
	}{
		{"seg_num", func(c *Config) { c.SegNum = 0 }, items, "seg_num"},
		{"target", func(c *Config) { c.TargetSize = 300 }, items, "target_size"},
		{"batch", func(c *Config) { c.BatchSize = 0 }, items, "batch_size"},
		{"std", func(c *Config) { c.Std[1] = 0 }, items, "image_std[1]"},
		{"empty", func(*Config) {}, nil, "no videos"},
		{"label", func(*Config) {}, []Item{{Path: "a.mp4", Label: NoLabel, Where: "l:1"}}, "l:1: test mode needs a label"},
		{"classes", func(c *Config) { c.NumClasses = 3 }, items, "l:1: label 3 out of range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := kineticsConfig(Test)
			cfg.Decoder = d
			tc.edit(&cfg)
			_, err := NewReader(cfg, tc.items)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	cfg := kineticsConfig(Infer)
	cfg.Decoder = d
	if _, err := NewReader(cfg, []Item{{Path: "a.mp4", Label: NoLabel}}); err != nil {
		t.Errorf("infer without labels: %v", err)
	}
}

// TestEpochFromResumes: an epoch started at a position of its order gives
// the batches of the whole epoch from there, clip for clip, without
// reading the clips before it (the resume of an interrupted epoch).
func TestEpochFromResumes(t *testing.T) {
	t.Parallel()
	items := generatedItems(t, "portrait.mp4", "rot0.mp4", "odd.mkv", "big.mp4")
	var skips []skip
	cfg := withSkips(smallConfig(Train, 1, 2), &skips)
	cfg.Seed = 7
	r := newReader(t, cfg, items)
	whole, st := readAll(t, r, 1, &skips)
	if len(whole) != 4 || st.Skipped != 0 {
		t.Fatalf("%d batches, stats %+v, warnings %v", len(whole), st, skips)
	}
	e := r.EpochFrom(context.Background(), 1, 2)
	defer e.Close()
	var tail []*Batch
	for {
		b, err := e.Next(context.Background())
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		tail = append(tail, b)
	}
	if len(tail) != 2 || e.Stats().Read != 2 {
		t.Fatalf("from position 2: %d batches, stats %+v; want 2 read", len(tail), e.Stats())
	}
	for i, b := range tail {
		w := whole[2+i]
		if !slices.Equal(b.IDs, w.IDs) || !slices.Equal(b.Data, w.Data) {
			t.Errorf("batch %d from position 2 is %v, the whole epoch's is %v (or their pixels differ)", 2+i, b.IDs, w.IDs)
		}
	}
}

// TestEpochBusy: Stats.Busy sums the wall time the workers spent on the
// clips taken, unreadable ones included: one worker reads one clip at a
// time inside the epoch, so its busy time is positive and within the
// epoch's wall time; two workers' stays within twice that.
func TestEpochBusy(t *testing.T) {
	t.Parallel()
	items := generatedItems(t, "rot0.mp4", "text.mp4", "portrait.mp4")
	for _, workers := range []int{1, 2} {
		start := time.Now()
		_, st := readAll(t, newReader(t, smallConfig(Test, 2, workers), items), 0, nil)
		wall := time.Since(start)
		if st.Read != 2 || st.Skipped != 1 || st.Busy <= 0 || st.Busy > time.Duration(workers)*wall {
			t.Errorf("%d worker(s): stats %+v over %v of wall time, want 2 read, 1 skipped, 0 < busy <= %d x wall", workers, st, wall, workers)
		}
	}
	// A clip that fails to read still took the worker's time.
	_, st := readAll(t, newReader(t, smallConfig(Test, 2, 1), items[1:2]), 0, nil)
	if st.Skipped != 1 || st.Busy <= 0 {
		t.Errorf("an unreadable clip alone: stats %+v, want it skipped with a busy time", st)
	}
}
