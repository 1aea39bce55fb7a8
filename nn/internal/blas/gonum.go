//go:build !openblas

package blas

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

const backend = "gonum"

var impl gonum.Implementation

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl.Sgemm(tr(tA), tr(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

func dgemm(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	impl.Dgemm(tr(tA), tr(tB), m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
}

// SetThreads is a no-op for gonum, whose gemm splits work over GOMAXPROCS
// goroutines; limit runtime.GOMAXPROCS to bound it.
func SetThreads(n int) {}

// Kernels names gonum's kernels: pure Go (with its assembly helpers).
func Kernels() string { return "go" }
