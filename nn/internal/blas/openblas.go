//go:build openblas

package blas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>

// openblas_get_corename is in OpenBLAS's openblas_config.h, which some
// packagings do not install beside cblas.h.
char *openblas_get_corename(void);
*/
import "C"

import (
	"os"
	"strconv"
	"strings"
)

const backend = "openblas"

func init() {
	// nn/ops parallelises over images with GOMAXPROCS goroutines, each
	// calling gemm; OpenBLAS threads on top of that would oversubscribe
	// the cores (and its idle threads spin). So OpenBLAS runs
	// single-threaded unless OPENBLAS_NUM_THREADS says otherwise.
	if n, err := strconv.Atoi(os.Getenv("OPENBLAS_NUM_THREADS")); err == nil && n > 0 {
		SetThreads(n)
	} else {
		SetThreads(1)
	}
}

// SetThreads sets the number of OpenBLAS worker threads.
func SetThreads(n int) {
	if n < 1 {
		n = 1
	}
	C.openblas_set_num_threads(C.int(n))
}

// Kernels names the CPU kernel set OpenBLAS chose ("Haswell",
// "SkylakeX", ...): it picks one at load time from the CPU, or from
// OPENBLAS_CORETYPE when that is set, and the choice is worth a factor of
// two in sgemm speed between AVX2 and AVX-512 kernels.
func Kernels() string { return strings.TrimSpace(C.GoString(C.openblas_get_corename())) }

func tr(t bool) C.enum_CBLAS_TRANSPOSE {
	if t {
		return C.CblasTrans
	}
	return C.CblasNoTrans
}

func sgemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if k == 0 {
		scale(c, m, n, ldc, beta)
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, tr(tA), tr(tB), C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.float)(&a[0]), C.blasint(lda), (*C.float)(&b[0]), C.blasint(ldb), C.float(beta), (*C.float)(&c[0]), C.blasint(ldc))
}

func dgemm(tA, tB bool, m, n, k int, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if k == 0 {
		scale(c, m, n, ldc, beta)
		return
	}
	C.cblas_dgemm(C.CblasRowMajor, tr(tA), tr(tB), C.blasint(m), C.blasint(n), C.blasint(k), 1,
		(*C.double)(&a[0]), C.blasint(lda), (*C.double)(&b[0]), C.blasint(ldb), C.double(beta), (*C.double)(&c[0]), C.blasint(ldc))
}

func scale[T float32 | float64](c []T, m, n, ldc int, beta T) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		for j := range row {
			row[j] *= beta
		}
	}
}
