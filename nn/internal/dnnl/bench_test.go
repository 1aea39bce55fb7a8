//go:build onednn

package dnnl

import (
	"fmt"
	"testing"
)

// BenchmarkConv times a primitive, reorders included, on shapes of
// TSM-ResNet-50 at 224 px (8 frames); GFLOP/s in the metrics.
func BenchmarkConv(b *testing.B) {
	for _, s := range []ConvSpec{
		{N: 8, C: 3, H: 224, W: 224, K: 64, R: 7, S: 7, Stride: 2, Pad: 3},
		{N: 8, C: 64, H: 56, W: 56, K: 64, R: 3, S: 3, Stride: 1, Pad: 1},
		{N: 8, C: 256, H: 56, W: 56, K: 64, R: 1, S: 1, Stride: 1},
		{N: 8, C: 1024, H: 14, W: 14, K: 256, R: 1, S: 1, Stride: 1},
		{N: 8, C: 2048, H: 7, W: 7, K: 512, R: 1, S: 1, Stride: 1},
		{N: 8, C: 512, H: 7, W: 7, K: 512, R: 3, S: 3, Stride: 1, Pad: 1},
	} {
		for _, kind := range []Kind{ForwardInfer, BackwardData, BackwardWeights} {
			s := s
			s.Kind = kind
			if kind == ForwardInfer {
				s.Post = ScaleShift | ReLU
			}
			oh, ow := (s.H+2*s.Pad-s.R)/s.Stride+1, (s.W+2*s.Pad-s.S)/s.Stride+1
			b.Run(fmt.Sprintf("k%d/%dx%d/%dx%dx%d->%d", kind, s.R, s.S, s.C, s.H, s.W, s.K), func(b *testing.B) {
				p, err := NewConv(s)
				if err != nil {
					b.Fatal(err)
				}
				x := make([]float32, s.N*s.C*s.H*s.W)
				w := make([]float32, s.K*s.C*s.R*s.S)
				y := make([]float32, s.N*s.K*oh*ow)
				sc, sh := make([]float32, s.K), make([]float32, s.K)
				for i := range x {
					x[i] = float32(i%7) - 3
				}
				for i := range w {
					w[i] = float32(i%5) - 2
				}
				for i := range y {
					y[i] = float32(i%3) - 1
				}
				run := func() error {
					switch kind {
					case BackwardData:
						return p.Conv(w, y, x, nil, nil, nil)
					case BackwardWeights:
						return p.Conv(x, y, w, nil, nil, nil)
					}
					return p.Conv(x, w, y, sc, sh, nil)
				}
				if err := run(); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := run(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(2*float64(s.N*s.K*oh*ow*s.C*s.R*s.S)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.Logf("%s", p.Impl())
			})
		}
	}
}
