package ops

import (
	"math"
	"math/rand"
	"testing"
)

// The plain two-pass batch norm kernels the tuned ones replaced: the
// reference they must match.

func refBNForwardTrain[T Float](n, c, hw int, eps float64, relu bool, x, scale, offset, y, mean, invstd, variance []T) {
	m := float64(n * hw)
	parallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var s float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*hw:][:hw] {
					s += float64(v)
				}
			}
			mu := s / m
			var ss float64
			for i := 0; i < n; i++ {
				for _, v := range x[(i*c+ch)*hw:][:hw] {
					d := float64(v) - mu
					ss += d * d
				}
			}
			va := ss / m
			is := 1 / math.Sqrt(va+eps)
			mean[ch], variance[ch], invstd[ch] = T(mu), T(va), T(is)
			a := float64(scale[ch]) * is
			b := float64(offset[ch]) - mu*a
			bnApply(n, c, hw, ch, T(a), T(b), relu, x, y)
		}
	})
}

func refBNBackward[T Float](n, c, hw int, train, relu bool, x, y, dy, scale, mean, invstd, dx, dscale, doffset []T) {
	m := float64(n * hw)
	parallelFor(c, func(lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mu, is := float64(mean[ch]), float64(invstd[ch])
			var sdy, sdyx float64
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, gs := x[off:][:hw], dy[off:][:hw]
				var ys []T
				if relu {
					ys = y[off:][:hw]
				}
				for j, g := range gs {
					if relu && ys[j] <= 0 {
						continue
					}
					sdy += float64(g)
					sdyx += float64(g) * (float64(xs[j]) - mu) * is
				}
			}
			dscale[ch], doffset[ch] = T(sdyx), T(sdy)
			k := float64(scale[ch]) * is
			for i := 0; i < n; i++ {
				off := (i*c + ch) * hw
				xs, gs, ds := x[off:][:hw], dy[off:][:hw], dx[off:][:hw]
				var ys []T
				if relu {
					ys = y[off:][:hw]
				}
				for j, g := range gs {
					gv := float64(g)
					if relu && ys[j] <= 0 {
						gv = 0
					}
					if train {
						xh := (float64(xs[j]) - mu) * is
						ds[j] = T(k * (gv - sdy/m - xh*sdyx/m))
					} else {
						ds[j] = T(k * gv)
					}
				}
			}
		}
	})
}

func TestBNKernelsMatchPlain(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		n, c, hw    int
		mean        float64
		relu, train bool
	}{
		{"train", 3, 4, 7, 0, false, true},
		{"train_relu", 2, 5, 9, 0.3, true, true},
		{"eval_relu", 2, 3, 6, 0, true, false},
		{"large_mean", 2, 3, 13, 1000, false, true},
		{"one_value_per_plane", 4, 2, 1, 0, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(21))
			size := tc.n * tc.c * tc.hw
			x, dy := make([]float64, size), make([]float64, size)
			for i := range x {
				x[i], dy[i] = tc.mean+rng.NormFloat64(), rng.NormFloat64()
			}
			scale, offset := make([]float64, tc.c), make([]float64, tc.c)
			for i := range scale {
				scale[i], offset[i] = 1+0.5*rng.NormFloat64(), rng.NormFloat64()
			}
			type out struct{ y, mean, invstd, variance, dx, dscale, doffset []float64 }
			mk := func() out {
				return out{make([]float64, size), make([]float64, tc.c), make([]float64, tc.c), make([]float64, tc.c),
					make([]float64, size), make([]float64, tc.c), make([]float64, tc.c)}
			}
			want, got := mk(), mk()
			refBNForwardTrain(tc.n, tc.c, tc.hw, 1e-5, tc.relu, x, scale, offset, want.y, want.mean, want.invstd, want.variance)
			BNForwardTrain(tc.n, tc.c, tc.hw, 1e-5, tc.relu, x, scale, offset, got.y, got.mean, got.invstd, got.variance)
			refBNBackward(tc.n, tc.c, tc.hw, tc.train, tc.relu, x, want.y, dy, scale, want.mean, want.invstd, want.dx, want.dscale, want.doffset)
			BNBackward(tc.n, tc.c, tc.hw, tc.train, tc.relu, x, want.y, dy, scale, want.mean, want.invstd, got.dx, got.dscale, got.doffset)
			// float32: the tuned kernels against the plain ones, both in float32
			x32, dy32, sc32, of32 := f32s(x), f32s(dy), f32s(scale), f32s(offset)
			type out32 struct{ y, mean, invstd, variance, dx, dscale, doffset []float32 }
			mk32 := func() out32 {
				return out32{make([]float32, size), make([]float32, tc.c), make([]float32, tc.c), make([]float32, tc.c),
					make([]float32, size), make([]float32, tc.c), make([]float32, tc.c)}
			}
			want32, got32 := mk32(), mk32()
			refBNForwardTrain(tc.n, tc.c, tc.hw, 1e-5, tc.relu, x32, sc32, of32, want32.y, want32.mean, want32.invstd, want32.variance)
			BNForwardTrain(tc.n, tc.c, tc.hw, 1e-5, tc.relu, x32, sc32, of32, got32.y, got32.mean, got32.invstd, got32.variance)
			refBNBackward(tc.n, tc.c, tc.hw, tc.train, tc.relu, x32, want32.y, dy32, sc32, want32.mean, want32.invstd, want32.dx, want32.dscale, want32.doffset)
			BNBackward(tc.n, tc.c, tc.hw, tc.train, tc.relu, x32, want32.y, dy32, sc32, want32.mean, want32.invstd, got32.dx, got32.dscale, got32.doffset)
			w32 := func(v []float32) []float64 {
				r := make([]float64, len(v))
				for i, x := range v {
					r[i] = float64(x)
				}
				return r
			}
			for _, cmp := range []struct {
				what          string
				got, want     []float64
				got32, want32 []float32
			}{
				{"y", got.y, want.y, got32.y, want32.y}, {"mean", got.mean, want.mean, got32.mean, want32.mean},
				{"invstd", got.invstd, want.invstd, got32.invstd, want32.invstd},
				{"variance", got.variance, want.variance, got32.variance, want32.variance},
				{"dx", got.dx, want.dx, got32.dx, want32.dx},
				{"dscale", got.dscale, want.dscale, got32.dscale, want32.dscale},
				{"doffset", got.doffset, want.doffset, got32.doffset, want32.doffset},
			} {
				// the tolerance scales with the plane's magnitude: a sum of
				// terms of size ~1 can be near 0
				var mag float64
				for _, v := range cmp.want {
					mag = max(mag, math.Abs(v))
				}
				for i, w := range cmp.want {
					if math.Abs(cmp.got[i]-w) > 1e-10*(1+mag) {
						t.Fatalf("%s[%d] = %v, plain kernel %v", cmp.what, i, cmp.got[i], w)
					}
				}
				var mag32 float64
				want32 := w32(cmp.want32)
				for _, v := range want32 {
					mag32 = max(mag32, math.Abs(v))
				}
				for i, w := range want32 {
					if math.Abs(float64(cmp.got32[i])-w) > 1e-5*(1+mag32) {
						t.Fatalf("float32 %s[%d] = %v, plain kernel %v", cmp.what, i, cmp.got32[i], w)
					}
				}
			}
		})
	}
}

// The ReLU gradients on a random mask, as in training (no timing
// threshold: run with -bench to compare kernels).
func BenchmarkReLUGrad(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	n := 1 << 22
	y, dy, dx := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range y {
		y[i] = float32(max(rng.NormFloat64(), 0))
		dy[i] = float32(rng.NormFloat64())
	}
	for b.Loop() {
		reluGrad(y, dy, dx)
	}
}

func BenchmarkBNBackwardReLU(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	n, c, hw := 8, 64, 56*56
	x, y, dy, dx := make([]float32, n*c*hw), make([]float32, n*c*hw), make([]float32, n*c*hw), make([]float32, n*c*hw)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
		dy[i] = float32(rng.NormFloat64())
	}
	scale, offset, mean, invstd, variance := make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c), make([]float32, c)
	for i := range scale {
		scale[i] = 1
	}
	BNForwardTrain(n, c, hw, 1e-5, true, x, scale, offset, y, mean, invstd, variance)
	ds, do := make([]float32, c), make([]float32, c)
	for b.Loop() {
		BNBackward(n, c, hw, true, true, x, y, dy, scale, mean, invstd, dx, ds, do)
	}
}
