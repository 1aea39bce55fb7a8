package blas

// Float is the element type the nn kernels are written for.
type Float interface{ ~float32 | ~float64 }

// Gemm computes C = A·B + beta·C (with A or B transposed when tA or tB is
// set) on row-major matrices: op(A) is m×k, op(B) is k×n, C is m×n.
func Gemm[T Float](tA, tB bool, m, n, k int, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	switch a := any(a).(type) {
	case []float32:
		sgemm(tA, tB, m, n, k, a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		dgemm(tA, tB, m, n, k, a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	default:
		panic("blas: unsupported element type")
	}
}

// Backend names the BLAS implementation compiled in: "gonum" or "openblas".
func Backend() string { return backend }
