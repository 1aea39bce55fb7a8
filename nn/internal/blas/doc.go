// Package blas is the matrix-multiply backend of zoo's nn ops.
//
// By default it uses gonum's pure-Go BLAS (gonum.org/v1/gonum/blas/gonum),
// so zoo builds anywhere without cgo. Building with the tag "openblas"
// (go build -tags openblas, needs cgo and libopenblas-dev) routes the same
// calls to OpenBLAS's cblas_sgemm / cblas_dgemm instead. Only nn/ops imports
// this package.
package blas
