package video

import (
	"context"
	"io"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkReadTest reads arm_wrestling.mp4 (340x256, 280 frames) the way
// test mode does (seg_num 8, 224 center crop, normalised batches) with 1
// and 2 workers, and in the same iterations runs ffmpeg alone on the same
// file as many at a time, decoding every frame to its null muxer (no
// conversion, no pipe). The two alternate so that a shared machine's load
// falls on both; overhead_% is the reader's time per clip over ffmpeg's.
func BenchmarkReadTest(b *testing.B) {
	arm := videoPath(b, "arm_wrestling.mp4")
	ffmpeg := decoder(b).FFmpeg
	const clips = 8
	items := make([]Item, clips)
	for i := range items {
		items[i] = Item{Path: arm, Label: 6}
	}
	for _, workers := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+workers)), func(b *testing.B) {
			cfg := kineticsConfig(Test)
			cfg.BatchSize, cfg.Workers, cfg.BufSize = 1, workers, workers
			r, err := NewReader(cfg, items)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var tFF, tReader, cFF, cReader time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				start, c0 := time.Now(), cpuTime()
				ffmpegAlone(b, ffmpeg, arm, clips, workers)
				mid, c1 := time.Now(), cpuTime()
				e := r.Epoch(ctx, 0)
				got := 0
				for {
					bt, err := e.Next(ctx)
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					got += len(bt.IDs)
				}
				e.Close()
				if got != clips {
					b.Fatalf("read %d clips, want %d", got, clips)
				}
				tFF += mid.Sub(start)
				tReader += time.Since(mid)
				cFF += c1 - c0
				cReader += cpuTime() - c1
				n += clips
			}
			b.ReportMetric(float64(n)/tReader.Seconds(), "clips/s")
			b.ReportMetric(float64(n)/tFF.Seconds(), "ffmpeg_clips/s")
			b.ReportMetric(100*(tReader.Seconds()/tFF.Seconds()-1), "overhead_%")
			// CPU time (this process and its waited-for children) is
			// steadier than wall time on a shared machine.
			b.ReportMetric(cReader.Seconds()*1000/float64(n), "cpu_ms/clip")
			b.ReportMetric(cFF.Seconds()*1000/float64(n), "ffmpeg_cpu_ms/clip")
			b.ReportMetric(100*(cReader.Seconds()/cFF.Seconds()-1), "cpu_overhead_%")
		})
	}
}

// cpuTime is the user and system time of this process and of its
// children that have been waited for.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	d := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return d(self.Utime) + d(self.Stime) + d(kids.Utime) + d(kids.Stime)
}

// ffmpegAlone decodes path clips times, workers processes at a time.
func ffmpegAlone(b testing.TB, ffmpeg, path string, clips, workers int) {
	var wg sync.WaitGroup
	next := make(chan struct{}, clips)
	for range clips {
		next <- struct{}{}
	}
	close(next)
	for range workers {
		wg.Go(func() {
			for range next {
				cmd := exec.Command(ffmpeg, "-v", "error", "-nostdin", "-i", "file:"+path,
					"-map", "0:v:0", "-vsync", "passthrough", "-f", "null", "-")
				if out, err := cmd.CombinedOutput(); err != nil {
					b.Errorf("ffmpeg alone: %v: %s", err, out)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkNormalize is the per-clip float conversion of a Kinetics test
// clip: 8 frames of 224x224.
func BenchmarkNormalize(b *testing.B) {
	frames := make([]*Image, 8)
	for i := range frames {
		frames[i] = NewImage(224, 224)
		for j := range frames[i].Pix {
			frames[i].Pix[j] = uint8(j * (i + 1))
		}
	}
	dst := make([]float32, 8*3*224*224)
	cfg := kineticsConfig(Test)
	b.SetBytes(8 * 3 * 224 * 224)
	for b.Loop() {
		Normalize(dst, frames, cfg.Mean, cfg.Std, false)
	}
}
