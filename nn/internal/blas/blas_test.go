package blas

import (
	"math"
	"testing"
)

func naive(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				av := a[i*lda+p]
				if tA {
					av = a[p*lda+i]
				}
				bv := b[p*ldb+j]
				if tB {
					bv = b[j*ldb+p]
				}
				s += av * bv
			}
			c[i*ldc+j] = s + beta*c[i*ldc+j]
		}
	}
}

func TestGemm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		tA, tB  bool
		m, n, k int
	}{{"NN", false, false, 3, 5, 4}, {"TN", true, false, 4, 2, 7}, {"NT", false, true, 5, 3, 2}, {"TT", true, true, 6, 6, 6}} {
		t.Run(tc.name, func(t *testing.T) {
			a := make([]float64, tc.m*tc.k)
			b := make([]float64, tc.k*tc.n)
			for i := range a {
				a[i] = math.Sin(float64(i))
			}
			for i := range b {
				b[i] = math.Cos(float64(i))
			}
			lda, ldb := tc.k, tc.n
			if tc.tA {
				lda = tc.m
			}
			if tc.tB {
				ldb = tc.k
			}
			want := make([]float64, tc.m*tc.n)
			got := make([]float64, tc.m*tc.n)
			got32 := make([]float32, tc.m*tc.n)
			for i := range want {
				want[i], got[i], got32[i] = 1, 1, 1
			}
			naive(tc.tA, tc.tB, tc.m, tc.n, tc.k, a, lda, b, ldb, 0.5, want, tc.n)
			Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, a, lda, b, ldb, 0.5, got, tc.n)
			a32, b32 := f32(a), f32(b)
			Gemm(tc.tA, tc.tB, tc.m, tc.n, tc.k, a32, lda, b32, ldb, 0.5, got32, tc.n)
			for i := range want {
				if math.Abs(want[i]-got[i]) > 1e-12 || math.Abs(want[i]-float64(got32[i])) > 1e-5 {
					t.Fatalf("%s: c[%d] = %v (f32 %v), want %v", Backend(), i, got[i], got32[i], want[i])
				}
			}
		})
	}
}

func f32(x []float64) []float32 {
	r := make([]float32, len(x))
	for i, v := range x {
		r[i] = float32(v)
	}
	return r
}
