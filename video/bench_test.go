package video

import (
	"context"
	"io"
	"os/exec"
	"sync"
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
			var tFF, tReader time.Duration
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				start := time.Now()
				ffmpegAlone(b, ffmpeg, arm, clips, workers)
				mid := time.Now()
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
				n += clips
			}
			b.ReportMetric(float64(n)/tReader.Seconds(), "clips/s")
			b.ReportMetric(float64(n)/tFF.Seconds(), "ffmpeg_clips/s")
			b.ReportMetric(100*(tReader.Seconds()/tFF.Seconds()-1), "overhead_%")
		})
	}
}

// ffmpegAlone decodes path clips times, workers processes at a time.
func ffmpegAlone(b *testing.B, ffmpeg, path string, clips, workers int) {
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
