package results

import (
	"fmt"
	"path/filepath"
	"testing"
)

// The driver pays these per logged step; the budget is 2% of a
// TSM-R50 step at batch 1 (hundreds of ms on CPU).

// BenchmarkMetricsLogWrite measures a train event (no fsync) and a valid
// event (fsync).
func BenchmarkMetricsLogWrite(b *testing.B) {
	for _, phase := range []string{"train", "valid"} {
		b.Run(phase, func(b *testing.B) {
			m, err := OpenMetricsLog(filepath.Join(b.TempDir(), MetricsFile))
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			e := Event{Phase: phase, Epoch: 3, Iter: 20, Loss: 1.234567, Top1: 0.45, Top5: 0.9, LR: 0.01, ClipsPerS: 12.5}
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Write(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFormatLine(b *testing.B) {
	e := Event{Phase: "train", Epoch: 3, Iter: 20, Loss: 1.234567, Top1: 0.45, Top5: 0.9}
	b.ReportAllocs()
	for b.Loop() {
		_ = FormatLine(e)
	}
}

func BenchmarkEncodePickle(b *testing.B) {
	for _, n := range []int{100, 10000} {
		rows := make([]InferRow, n)
		for i := range rows {
			rows[i] = InferRow{VideoID: fmt.Sprintf("video_%06d.mp4", i), Scores: make([]float32, 20), Labels: make([]int, 20)}
		}
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			enc, err := EncodePickle(rows)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(enc)))
			for b.Loop() {
				_, _ = EncodePickle(rows)
			}
		})
	}
}

func BenchmarkTopK400(b *testing.B) {
	scores := make([]float32, 400)
	for i := range scores {
		scores[i] = float32((i * 7919) % 400)
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = TopK(scores, 20)
	}
}
