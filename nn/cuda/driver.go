//go:build zoocuda

package cuda

/*
#cgo LDFLAGS: -lcuda -lcublas -lnvrtc
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cuda.h>
#include <cublas_v2.h>
#include <nvrtc.h>

static CUresult zooLaunch(CUfunction f, unsigned gx, unsigned gy, unsigned gz,
		unsigned bx, unsigned by, unsigned bz, unsigned shared, void *args, int nargs) {
	// args is nargs consecutive 8-byte slots; CUDA wants a pointer to each.
	void *ptrs[32];
	for (int i = 0; i < nargs && i < 32; i++) ptrs[i] = (char *)args + 8 * i;
	return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, 0, ptrs, 0);
}

// Device pointers cross from Go as integers; the casts live here so that
// Go never turns an integer into an unsafe.Pointer.
static cublasStatus_t zooSgemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb,
		int m, int n, int k, float alpha, CUdeviceptr a, int lda, long long sa,
		CUdeviceptr b, int ldb, long long sb, float beta, CUdeviceptr c, int ldc, long long sc, int batch) {
	if (batch <= 1)
		return cublasSgemm(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, (const float *)b, ldb, &beta, (float *)c, ldc);
	return cublasSgemmStridedBatched(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, sa,
		(const float *)b, ldb, sb, &beta, (float *)c, ldc, sc, batch);
}
// Host memory stands in for device memory: a "device pointer" is the
// address, carried as an integer like a CUdeviceptr.
static uint64_t zooHostAlloc(size_t n) { return (uint64_t)(uintptr_t)calloc(n, 1); }
static void zooHostFree(uint64_t p) { free((void *)(uintptr_t)p); }
static void zooHostCopyIn(uint64_t dst, const void *src, size_t n) { memcpy((void *)(uintptr_t)dst, src, n); }
static void zooHostCopyOut(void *dst, uint64_t src, size_t n) { memcpy(dst, (const void *)(uintptr_t)src, n); }
static void zooHostZero(uint64_t p, size_t n) { memset((void *)(uintptr_t)p, 0, n); }
static void zooHostMove(uint64_t dst, uint64_t src, size_t n) { memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n); }

// The reference for cublasSgemm(StridedBatched): column-major,
// C = alpha*op(A)*op(B) + beta*C, in double.
static void zooRefSgemm(int ta, int tb, int m, int n, int k, float alpha,
		uint64_t pa, int lda, long long sa, uint64_t pb, int ldb, long long sb,
		float beta, uint64_t pc, int ldc, long long sc, int batch) {
	if (batch < 1) batch = 1;
	for (int q = 0; q < batch; q++) {
		const float *A = (const float *)(uintptr_t)pa + q * sa;
		const float *B = (const float *)(uintptr_t)pb + q * sb;
		float *C = (float *)(uintptr_t)pc + q * sc;
		for (int j = 0; j < n; j++)
			for (int i = 0; i < m; i++) {
				double s = 0;
				for (int l = 0; l < k; l++) {
					float a = ta ? A[l + (long long)i * lda] : A[i + (long long)l * lda];
					float b = tb ? B[j + (long long)l * ldb] : B[l + (long long)j * ldb];
					s += (double)a * b;
				}
				float *c = &C[i + (long long)j * ldc];
				*c = (float)(alpha * s + (beta == 0 ? 0 : (double)beta * *c));
			}
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"
)

// Error is a failed CUDA, NVRTC or cuBLAS call.
type Error struct {
	Op   string // the API call
	Code int
	Msg  string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: error %d (%s)", e.Op, e.Code, e.Msg) }

func cuErr(op string, r C.CUresult) error {
	if r == C.CUDA_SUCCESS {
		return nil
	}
	var s *C.char
	C.cuGetErrorString(r, &s)
	msg := "unknown"
	if s != nil {
		msg = C.GoString(s)
	}
	return &Error{Op: op, Code: int(r), Msg: msg}
}

func blasErr(op string, r C.cublasStatus_t) error {
	if r == C.CUBLAS_STATUS_SUCCESS {
		return nil
	}
	return &Error{Op: op, Code: int(r), Msg: "cublas status"}
}

func rtcErr(op string, r C.nvrtcResult) error {
	if r == C.NVRTC_SUCCESS {
		return nil
	}
	return &Error{Op: op, Code: int(r), Msg: C.GoString(C.nvrtcGetErrorString(r))}
}

// Device is an initialised GPU: its primary context, a cuBLAS handle and
// the compiled kernels. The CUDA context is current on one OS thread at a
// time, so every method that touches the GPU runs between lock and unlock.
type Device struct {
	dev      C.CUdevice
	ctx      C.CUcontext
	blas     C.cublasHandle_t
	mod      C.CUmodule
	fns      map[string]C.CUfunction
	emu      unsafe.Pointer // OpenEmulator's launcher; nil on a GPU
	emuBlock int            // if > 0, the emulator's block size for reductions
	Name     string
	Major    int // compute capability
	Minor    int
	MemSize  int64
}

// Open initialises device ordinal and compiles the kernels with NVRTC for
// its compute capability.
func Open(ordinal int) (*Device, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cuErr("cuInit", C.cuInit(0)); err != nil {
		return nil, err
	}
	d := &Device{fns: map[string]C.CUfunction{}}
	if err := cuErr("cuDeviceGet", C.cuDeviceGet(&d.dev, C.int(ordinal))); err != nil {
		return nil, err
	}
	var name [256]C.char
	C.cuDeviceGetName(&name[0], 256, d.dev)
	d.Name = C.GoString(&name[0])
	var maj, min C.int
	C.cuDeviceGetAttribute(&maj, C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d.dev)
	C.cuDeviceGetAttribute(&min, C.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d.dev)
	d.Major, d.Minor = int(maj), int(min)
	var total C.size_t
	C.cuDeviceTotalMem(&total, d.dev)
	d.MemSize = int64(total)
	// The primary context (not cuCtxCreate, whose signature changed in
	// CUDA 13) is also the one cuBLAS, which uses the runtime API, binds to.
	if err := cuErr("cuDevicePrimaryCtxRetain", C.cuDevicePrimaryCtxRetain(&d.ctx, d.dev)); err != nil {
		return nil, err
	}
	if err := cuErr("cuCtxSetCurrent", C.cuCtxSetCurrent(d.ctx)); err != nil {
		return nil, err
	}
	if err := blasErr("cublasCreate", C.cublasCreate(&d.blas)); err != nil {
		return nil, err
	}
	// fp32 results must match the CPU build to 1e-3: no TF32 tensor cores.
	C.cublasSetMathMode(d.blas, C.CUBLAS_DEFAULT_MATH)
	bin, err := Compile(kernelSource, fmt.Sprintf("sm_%d%d", d.Major, d.Minor))
	if err != nil {
		return nil, err
	}
	if err := cuErr("cuModuleLoadData", C.cuModuleLoadData(&d.mod, unsafe.Pointer(&bin[0]))); err != nil {
		return nil, err
	}
	for _, k := range kernelNames {
		var f C.CUfunction
		cs := C.CString(k)
		r := C.cuModuleGetFunction(&f, d.mod, cs)
		C.free(unsafe.Pointer(cs))
		if err := cuErr("cuModuleGetFunction "+k, r); err != nil {
			return nil, err
		}
		d.fns[k] = f
	}
	return d, nil
}

// newEmuDevice is a Device whose kernels run in OpenEmulator's library.
func newEmuDevice(launcher unsafe.Pointer) *Device {
	d := &Device{Name: "CPU emulator", emu: launcher, fns: map[string]C.CUfunction{}}
	for _, k := range kernelNames {
		d.fns[k] = nil
	}
	return d
}

// Close releases the cuBLAS handle, the kernels and the primary context.
func (d *Device) Close() error {
	if d.emu != nil {
		return nil
	}
	d.lock()
	defer runtime.UnlockOSThread()
	C.cublasDestroy(d.blas)
	C.cuModuleUnload(d.mod)
	return cuErr("cuDevicePrimaryCtxRelease", C.cuDevicePrimaryCtxRelease(d.dev))
}

func (d *Device) lock() {
	runtime.LockOSThread()
	if d.emu != nil {
		return
	}
	C.cuCtxSetCurrent(d.ctx)
}

// Sync waits for the GPU to finish all work.
func (d *Device) Sync() error {
	if d.emu != nil {
		return nil
	}
	// all work goes to the legacy default stream; cuCtxSynchronize grew a
	// _v2 with another signature in recent CUDA, this call did not
	return cuErr("cuStreamSynchronize", C.cuStreamSynchronize(nil))
}

// Compile compiles CUDA C source with NVRTC for arch ("sm_90"; a
// "compute_XX" arch gives PTX instead of a cubin). It needs libnvrtc but no
// GPU, which is what lets `make cuda-check` compile the kernels anywhere.
func Compile(src, arch string) ([]byte, error) {
	csrc, cname := C.CString(src), C.CString("zoo_kernels.cu")
	defer C.free(unsafe.Pointer(csrc))
	defer C.free(unsafe.Pointer(cname))
	var prog C.nvrtcProgram
	if err := rtcErr("nvrtcCreateProgram", C.nvrtcCreateProgram(&prog, csrc, cname, 0, nil, nil)); err != nil {
		return nil, err
	}
	defer C.nvrtcDestroyProgram(&prog)
	opts := []string{"--gpu-architecture=" + arch, "--std=c++14", "--fmad=false"}
	copts := make([]*C.char, len(opts))
	for i, o := range opts {
		copts[i] = C.CString(o)
		defer C.free(unsafe.Pointer(copts[i]))
	}
	if r := C.nvrtcCompileProgram(prog, C.int(len(copts)), &copts[0]); r != C.NVRTC_SUCCESS {
		var n C.size_t
		C.nvrtcGetProgramLogSize(prog, &n)
		log := make([]byte, int(n)+1)
		C.nvrtcGetProgramLog(prog, (*C.char)(unsafe.Pointer(&log[0])))
		return nil, fmt.Errorf("%w\n%s", rtcErr("nvrtcCompileProgram", r), string(log[:n]))
	}
	var n C.size_t
	if len(arch) > 3 && arch[:3] == "sm_" {
		if err := rtcErr("nvrtcGetCUBINSize", C.nvrtcGetCUBINSize(prog, &n)); err != nil {
			return nil, err
		}
		out := make([]byte, int(n))
		return out, rtcErr("nvrtcGetCUBIN", C.nvrtcGetCUBIN(prog, (*C.char)(unsafe.Pointer(&out[0]))))
	}
	if err := rtcErr("nvrtcGetPTXSize", C.nvrtcGetPTXSize(prog, &n)); err != nil {
		return nil, err
	}
	out := make([]byte, int(n))
	return out, rtcErr("nvrtcGetPTX", C.nvrtcGetPTX(prog, (*C.char)(unsafe.Pointer(&out[0]))))
}

// Buf is a float32 (or int32, or byte) array in device memory.
type Buf struct {
	ptr C.CUdeviceptr
	n   int // elements of 4 bytes
}

// Len returns the number of 4-byte elements.
func (b *Buf) Len() int { return b.n }

func (b *Buf) at(off int) C.CUdeviceptr { return b.ptr + C.CUdeviceptr(4*off) }

// Alloc allocates n 4-byte elements (uninitialised).
func (d *Device) Alloc(n int) (*Buf, error) {
	b := &Buf{n: n}
	if n == 0 {
		return b, nil
	}
	if d.emu != nil {
		b.ptr = C.CUdeviceptr(C.zooHostAlloc(C.size_t(4 * n)))
		if b.ptr == 0 {
			return nil, fmt.Errorf("emulator: out of memory for %d values", n)
		}
		return b, nil
	}
	if err := cuErr(fmt.Sprintf("cuMemAlloc(%d MB)", 4*n>>20), C.cuMemAlloc(&b.ptr, C.size_t(4*n))); err != nil {
		return nil, err
	}
	return b, nil
}

// Free releases b.
func (d *Device) Free(b *Buf) {
	if b != nil && b.ptr != 0 && d.emu != nil {
		C.zooHostFree(C.uint64_t(b.ptr))
		b.ptr = 0
	}
	if b != nil && b.ptr != 0 {
		C.cuMemFree(b.ptr)
		b.ptr = 0
	}
}

// Upload copies src into b.
func (d *Device) Upload(b *Buf, src []float32) error {
	if len(src) > b.n {
		return fmt.Errorf("upload: %d values into a buffer of %d", len(src), b.n)
	}
	if len(src) == 0 {
		return nil
	}
	if d.emu != nil {
		C.zooHostCopyIn(C.uint64_t(b.ptr), unsafe.Pointer(&src[0]), C.size_t(4*len(src)))
		return nil
	}
	return cuErr("cuMemcpyHtoD", C.cuMemcpyHtoD(b.ptr, unsafe.Pointer(&src[0]), C.size_t(4*len(src))))
}

// UploadBytes copies src (len a multiple of 4 not required) into b.
func (d *Device) uploadBytes(b *Buf, src []byte) error {
	if len(src) > 4*b.n {
		return fmt.Errorf("upload: %d bytes into a buffer of %d", len(src), 4*b.n)
	}
	if len(src) == 0 {
		return nil
	}
	if d.emu != nil {
		C.zooHostCopyIn(C.uint64_t(b.ptr), unsafe.Pointer(&src[0]), C.size_t(len(src)))
		return nil
	}
	return cuErr("cuMemcpyHtoD", C.cuMemcpyHtoD(b.ptr, unsafe.Pointer(&src[0]), C.size_t(len(src))))
}

// Download copies b's first len(dst) values into dst.
func (d *Device) Download(dst []float32, b *Buf) error {
	if len(dst) > b.n {
		return fmt.Errorf("download: %d values from a buffer of %d", len(dst), b.n)
	}
	if len(dst) == 0 {
		return nil
	}
	if d.emu != nil {
		C.zooHostCopyOut(unsafe.Pointer(&dst[0]), C.uint64_t(b.ptr), C.size_t(4*len(dst)))
		return nil
	}
	return cuErr("cuMemcpyDtoH", C.cuMemcpyDtoH(unsafe.Pointer(&dst[0]), b.ptr, C.size_t(4*len(dst))))
}

// zero clears n elements of b from off.
func (d *Device) zero(b *Buf, off, n int) error {
	if d.emu != nil {
		C.zooHostZero(C.uint64_t(b.at(off)), C.size_t(4*n))
		return nil
	}
	return cuErr("cuMemsetD32", C.cuMemsetD32(b.at(off), 0, C.size_t(n)))
}

// copyBuf copies n elements.
func (d *Device) copyBuf(dst *Buf, doff int, src *Buf, soff, n int) error {
	if d.emu != nil {
		C.zooHostMove(C.uint64_t(dst.at(doff)), C.uint64_t(src.at(soff)), C.size_t(4*n))
		return nil
	}
	return cuErr("cuMemcpyDtoD", C.cuMemcpyDtoD(dst.at(doff), src.at(soff), C.size_t(4*n)))
}

// arg is one kernel argument: a device pointer, an int or a float.
type arg = uint64

func p(b *Buf) arg            { return uint64(b.ptr) }
func pAt(b *Buf, off int) arg { return uint64(b.at(off)) }
func i32(v int) arg           { return uint64(uint32(int32(v))) }
func f32(v float64) arg       { return uint64(math.Float32bits(float32(v))) }
func f64(v float64) arg       { return math.Float64bits(v) }

var errNoKernel = errors.New("no such kernel")

// launch runs kernel name over n threads in blocks of 256 (a 1-D grid),
// or over grid x block when grid is given.
func (d *Device) launch(name string, grid, block [3]int, args ...arg) error {
	f, ok := d.fns[name]
	if !ok {
		return fmt.Errorf("launch %s: %w", name, errNoKernel)
	}
	if len(args) > 32 {
		return fmt.Errorf("launch %s: %d arguments", name, len(args))
	}
	if d.emu != nil {
		return d.emuLaunch(name, grid, block, args)
	}
	// Each argument sits in its own 8-byte slot; CUDA reads as many bytes
	// from a slot as the kernel's parameter has, so a 4-byte int or float
	// in the slot's low half (little-endian) is read correctly.
	r := C.zooLaunch(f, C.uint(grid[0]), C.uint(grid[1]), C.uint(grid[2]), C.uint(block[0]), C.uint(block[1]), C.uint(block[2]), 0,
		unsafe.Pointer(&args[0]), C.int(len(args)))
	return cuErr("cuLaunchKernel "+name, r)
}

// run1 launches name over n elements, 256 threads a block.
func (d *Device) run1(name string, n int, args ...arg) error {
	if n == 0 {
		return nil
	}
	return d.launch(name, [3]int{(n + 255) / 256, 1, 1}, [3]int{256, 1, 1}, args...)
}

// gemm is row-major C[m,n] = A[m,k]·B[k,n] (+ beta*C), with tA/tB
// transposing the stored A ([k,m]) or B ([n,k]); batch > 1 runs it batch
// times with the given element strides (0: shared operand).
func (d *Device) gemm(tA, tB bool, m, n, k int, a *Buf, aoff, lda, sA int, b *Buf, boff, ldb, sB int, beta float32, c *Buf, coff, ldc, sC, batch int) error {
	// cuBLAS is column-major: row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.
	opA, opB := C.cublasOperation_t(C.CUBLAS_OP_N), C.cublasOperation_t(C.CUBLAS_OP_N)
	if tA {
		opA = C.CUBLAS_OP_T
	}
	if tB {
		opB = C.CUBLAS_OP_T
	}
	if d.emu != nil {
		C.zooRefSgemm(C.int(b2int(tB)), C.int(b2int(tA)), C.int(n), C.int(m), C.int(k), 1,
			C.uint64_t(b.at(boff)), C.int(ldb), C.longlong(sB), C.uint64_t(a.at(aoff)), C.int(lda), C.longlong(sA),
			C.float(beta), C.uint64_t(c.at(coff)), C.int(ldc), C.longlong(sC), C.int(batch))
		return nil
	}
	return blasErr("cublasSgemm", C.zooSgemm(d.blas, opB, opA, C.int(n), C.int(m), C.int(k), 1,
		b.at(boff), C.int(ldb), C.longlong(sB), a.at(aoff), C.int(lda), C.longlong(sA),
		C.float(beta), c.at(coff), C.int(ldc), C.longlong(sC), C.int(batch)))
}

func unlock() { runtime.UnlockOSThread() }

func b2int(b bool) int {
	if b {
		return 1
	}
	return 0
}
