//go:build mpi

// Package mpi is a thin cgo binding to the MPI C API (Open MPI's libmpi,
// found with pkg-config ompi-c): the few calls data-parallel training
// needs, all on MPI_COMM_WORLD. It is built only with the build tag mpi
// (`make build` sets it; `make deps` installs libopenmpi-dev). Use it
// through package dist, whose Communicator also has a one-process
// implementation for builds without the tag.
package mpi

/*
#cgo pkg-config: ompi-c
#include <mpi.h>
#include <stdlib.h>

static int zoo_init(int *provided) {
	int inited = 0;
	MPI_Initialized(&inited);
	if (inited) { MPI_Query_thread(provided); return MPI_SUCCESS; }
	// Go calls C from any OS thread: ask for MPI_THREAD_SERIALIZED (one
	// call at a time, from whichever thread), which package dist's lock
	// guarantees.
	return MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}
static int zoo_errors_return(void) { return MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN); }
static int zoo_rank(int *r) { return MPI_Comm_rank(MPI_COMM_WORLD, r); }
static int zoo_size(int *s) { return MPI_Comm_size(MPI_COMM_WORLD, s); }
static int zoo_finalize(void) { int f = 0; MPI_Finalized(&f); return f ? MPI_SUCCESS : MPI_Finalize(); }
static int zoo_allreduce_f32(float *b, int n) { return MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); }
static int zoo_allreduce_f64(double *b, int n) { return MPI_Allreduce(MPI_IN_PLACE, b, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD); }
static int zoo_bcast(void *b, int n, int root) { return MPI_Bcast(b, n, MPI_BYTE, root, MPI_COMM_WORLD); }
static int zoo_gather(void *s, int n, void *r, int root) { return MPI_Gather(s, n, MPI_BYTE, r, n, MPI_BYTE, root, MPI_COMM_WORLD); }
static int zoo_gatherv(void *s, int n, void *r, int *counts, int *displs, int root) {
	return MPI_Gatherv(s, n, MPI_BYTE, r, counts, displs, MPI_BYTE, root, MPI_COMM_WORLD);
}
static int zoo_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static int zoo_abort(int code) { return MPI_Abort(MPI_COMM_WORLD, code); }
static void zoo_error_string(int code, char *buf) { int n = 0; MPI_Error_string(code, buf, &n); buf[n] = 0; }
static int zoo_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Error is a failed MPI call: the call's name and MPI's message.
type Error struct {
	Call string
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s (MPI error %d)", e.Call, e.Msg, e.Code) }

func check(call string, rc C.int) error {
	if rc == C.MPI_SUCCESS {
		return nil
	}
	buf := (*C.char)(C.malloc(C.size_t(C.zoo_max_error_string() + 1)))
	defer C.free(unsafe.Pointer(buf))
	C.zoo_error_string(rc, buf)
	return &Error{Call: call, Code: int(rc), Msg: C.GoString(buf)}
}

// Init initializes MPI (once; a second call is a no-op) and makes errors
// return to the caller instead of aborting the job.
func Init() error {
	var provided C.int
	if err := check("MPI_Init_thread", C.zoo_init(&provided)); err != nil {
		return err
	}
	if provided < C.MPI_THREAD_SERIALIZED {
		return fmt.Errorf("MPI_Init_thread: this MPI provides thread level %d, zoo needs MPI_THREAD_SERIALIZED (%d)", int(provided), int(C.MPI_THREAD_SERIALIZED))
	}
	return check("MPI_Comm_set_errhandler", C.zoo_errors_return())
}

// Finalize ends MPI (a no-op when already finalized).
func Finalize() error { return check("MPI_Finalize", C.zoo_finalize()) }

// Rank is this process's rank in MPI_COMM_WORLD.
func Rank() (int, error) {
	var r C.int
	err := check("MPI_Comm_rank", C.zoo_rank(&r))
	return int(r), err
}

// Size is the number of processes in MPI_COMM_WORLD.
func Size() (int, error) {
	var s C.int
	err := check("MPI_Comm_size", C.zoo_size(&s))
	return int(s), err
}

// AllreduceSumF32 replaces buf with the element-wise sum of every rank's buf.
func AllreduceSumF32(buf []float32) error {
	if len(buf) == 0 {
		return nil
	}
	return check("MPI_Allreduce", C.zoo_allreduce_f32((*C.float)(unsafe.Pointer(&buf[0])), C.int(len(buf))))
}

// AllreduceSumF64 replaces buf with the element-wise sum of every rank's buf.
func AllreduceSumF64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	return check("MPI_Allreduce", C.zoo_allreduce_f64((*C.double)(unsafe.Pointer(&buf[0])), C.int(len(buf))))
}

// Bcast copies root's buf into every rank's buf (all of one length).
func Bcast(buf []byte, root int) error {
	if len(buf) == 0 {
		return nil
	}
	return check("MPI_Bcast", C.zoo_bcast(unsafe.Pointer(&buf[0]), C.int(len(buf)), C.int(root)))
}

// Gather puts every rank's send (all of one length n) into root's recv,
// rank r's at recv[r*n:]; recv is used only at root (len size*n there).
func Gather(send, recv []byte, root int) error {
	var s, r unsafe.Pointer
	if len(send) > 0 {
		s = unsafe.Pointer(&send[0])
	}
	if len(recv) > 0 {
		r = unsafe.Pointer(&recv[0])
	}
	return check("MPI_Gather", C.zoo_gather(s, C.int(len(send)), r, C.int(root)))
}

// Gatherv puts every rank's send into root's recv at displs[r], counts[r]
// bytes; counts, displs and recv are used only at root.
func Gatherv(send, recv []byte, counts, displs []int, root int) error {
	var s, r unsafe.Pointer
	if len(send) > 0 {
		s = unsafe.Pointer(&send[0])
	}
	if len(recv) > 0 {
		r = unsafe.Pointer(&recv[0])
	}
	var cc, cd *C.int
	if len(counts) > 0 {
		ci := C.malloc(C.size_t(len(counts)) * C.size_t(unsafe.Sizeof(C.int(0))))
		di := C.malloc(C.size_t(len(displs)) * C.size_t(unsafe.Sizeof(C.int(0))))
		defer C.free(ci)
		defer C.free(di)
		cs := unsafe.Slice((*C.int)(ci), len(counts))
		ds := unsafe.Slice((*C.int)(di), len(displs))
		for i := range counts {
			cs[i] = C.int(counts[i])
			ds[i] = C.int(displs[i])
		}
		cc, cd = (*C.int)(ci), (*C.int)(di)
	}
	return check("MPI_Gatherv", C.zoo_gatherv(s, C.int(len(send)), r, cc, cd, C.int(root)))
}

// Barrier returns when every rank has called it.
func Barrier() error { return check("MPI_Barrier", C.zoo_barrier()) }

// Abort ends every process of the job with code (mpirun exits non-zero).
func Abort(code int) error { return check("MPI_Abort", C.zoo_abort(C.int(code))) }
