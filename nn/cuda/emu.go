//go:build zoocuda

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int (*zoo_emu_fn)(const char *, unsigned, unsigned, void *);

static void *zooDlopen(const char *p) { return dlopen(p, RTLD_NOW | RTLD_LOCAL); }
static void *zooDlsym(void *h, const char *s) { return dlsym(h, s); }
static const char *zooDlerror(void) { const char *e = dlerror(); return e ? e : "unknown"; }
static int zooEmuCall(void *fn, const char *name, unsigned gx, unsigned bx, void *args) {
	return ((zoo_emu_fn)fn)(name, gx, bx, args);
}

*/
import "C"

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"unsafe"
)

// The emulator runs the kernels of kernelSource on the CPU: the source,
// with a few macros for CUDA's built-ins, is compiled as C by the host C
// compiler into a shared library that runs each block's threads one after
// another (or as real threads with a barrier for the kernels that call
// __syncthreads). Device memory is host memory and cuBLAS is a reference
// gemm. It checks the kernels' indexing and arithmetic on machines without
// a GPU (ops_test.go's twins run on it); it says nothing about speed or
// about races between blocks.

const emuPrelude = `
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
typedef struct { unsigned x, y, z; } zoo_dim3;
static __thread zoo_dim3 threadIdx, blockIdx;
static zoo_dim3 blockDim, gridDim;
static pthread_barrier_t zoo_bar;
static int zoo_threaded;
static void __syncthreads(void) { if (zoo_threaded) pthread_barrier_wait(&zoo_bar); }
#define __global__
#define __device__ static
#define __shared__ static
#define min(a, b) ((a) < (b) ? (a) : (b))
static float zoo_f32(uint64_t v) { uint32_t u = (uint32_t)v; float f; memcpy(&f, &u, 4); return f; }
static double zoo_f64(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
`

var kernelDecl = regexp.MustCompile(`__global__ void (\w+)\(([^)]*)\)\s*\{`)

// emuSource turns kernelSource into C with a launcher, zoo_emu_launch.
func emuSource() (string, error) {
	body := strings.Replace(kernelSource, `extern "C" {`, "", 1)
	i := strings.LastIndex(body, "}")
	body = body[:i] // the extern block's brace
	var b strings.Builder
	b.WriteString(emuPrelude)
	b.WriteString(body)
	type kern struct {
		name     string
		threaded bool
	}
	var ks []kern
	decls := kernelDecl.FindAllStringSubmatchIndex(body, -1)
	for di, m := range decls {
		name, params := body[m[2]:m[3]], body[m[4]:m[5]]
		end := len(body)
		if di+1 < len(decls) {
			end = decls[di+1][0]
		}
		k := kern{name: name, threaded: strings.Contains(body[m[1]:end], "block_sum(") || strings.Contains(body[m[1]:end], "__syncthreads")}
		ks = append(ks, k)
		fmt.Fprintf(&b, "static void w_%s(uint64_t *a) { %s(", name, name)
		for j, p := range strings.Split(params, ",") {
			p = strings.Join(strings.Fields(p), " ")
			typ := strings.TrimSpace(p[:strings.LastIndexAny(p, " *")+1])
			if j > 0 {
				b.WriteString(", ")
			}
			switch {
			case strings.HasSuffix(typ, "*"):
				fmt.Fprintf(&b, "(%s)(uintptr_t)a[%d]", typ, j)
			case typ == "int":
				fmt.Fprintf(&b, "(int)(int32_t)(uint32_t)a[%d]", j)
			case typ == "float":
				fmt.Fprintf(&b, "zoo_f32(a[%d])", j)
			case typ == "double":
				fmt.Fprintf(&b, "zoo_f64(a[%d])", j)
			default:
				return "", fmt.Errorf("emulator: kernel %s: parameter type %q", name, typ)
			}
		}
		b.WriteString("); }\n")
	}
	b.WriteString(`
typedef struct { void (*fn)(uint64_t *); uint64_t *args; unsigned bx, tx; } zoo_job;
static void *zoo_thread(void *p) {
	zoo_job *j = (zoo_job *)p;
	blockIdx.x = j->bx; threadIdx.x = j->tx; blockIdx.y = blockIdx.z = threadIdx.y = threadIdx.z = 0;
	j->fn(j->args);
	return 0;
}
int zoo_emu_launch(const char *name, unsigned gx, unsigned bx, void *args) {
	static const struct { const char *name; void (*fn)(uint64_t *); int threaded; } ks[] = {
`)
	for _, k := range ks {
		t := 0
		if k.threaded {
			t = 1
		}
		fmt.Fprintf(&b, "\t\t{%q, w_%s, %d},\n", k.name, k.name, t)
	}
	b.WriteString(`	};
	for (unsigned i = 0; i < sizeof ks / sizeof ks[0]; i++) {
		if (strcmp(ks[i].name, name)) continue;
		blockDim.x = bx; blockDim.y = blockDim.z = 1; gridDim.x = gx; gridDim.y = gridDim.z = 1;
		for (unsigned b = 0; b < gx; b++) {
			if (!ks[i].threaded) {
				zoo_threaded = 0;
				for (unsigned t = 0; t < bx; t++) {
					blockIdx.x = b; threadIdx.x = t;
					ks[i].fn((uint64_t *)args);
				}
				continue;
			}
			zoo_threaded = 1;
			pthread_t th[1024];
			zoo_job jobs[1024];
			pthread_barrier_init(&zoo_bar, 0, bx);
			for (unsigned t = 0; t < bx; t++) {
				jobs[t] = (zoo_job){ks[i].fn, (uint64_t *)args, b, t};
				pthread_create(&th[t], 0, zoo_thread, &jobs[t]);
			}
			for (unsigned t = 0; t < bx; t++) pthread_join(th[t], 0);
			pthread_barrier_destroy(&zoo_bar);
		}
		return 0;
	}
	return 1;
}
`)
	return b.String(), nil
}

// OpenEmulator compiles the kernels with the host C compiler (cc, or $CC)
// into dir and returns a Device that runs them on the CPU.
func OpenEmulator(dir string) (*Device, error) {
	src, err := emuSource()
	if err != nil {
		return nil, err
	}
	cfile, so := filepath.Join(dir, "zoo_kernels_emu.c"), filepath.Join(dir, "zoo_kernels_emu.so")
	if err := os.WriteFile(cfile, []byte(src), 0o644); err != nil {
		return nil, err
	}
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if out, err := exec.Command(cc, "-std=gnu11", "-O1", "-shared", "-fPIC", "-pthread", "-o", so, cfile, "-lm").CombinedOutput(); err != nil {
		return nil, fmt.Errorf("emulator: %s: %v\n%s", cc, err, out)
	}
	cso := C.CString(so)
	defer C.free(unsafe.Pointer(cso))
	h := C.zooDlopen(cso)
	if h == nil {
		return nil, fmt.Errorf("emulator: dlopen %s: %s", so, C.GoString(C.zooDlerror()))
	}
	sym := C.CString("zoo_emu_launch")
	defer C.free(unsafe.Pointer(sym))
	fn := C.zooDlsym(h, sym)
	if fn == nil {
		return nil, fmt.Errorf("emulator: no zoo_emu_launch in %s", so)
	}
	return newEmuDevice(fn), nil
}

// kernelsWithReductions are the kernels launched with real threads and a
// barrier in the emulator.
var kernelsWithReductions = map[string]bool{"bn_stats": true, "bn_bwd_reduce": true}

func (d *Device) emuLaunch(name string, grid, block [3]int, args []arg) error {
	if grid[1] != 1 || grid[2] != 1 || block[1] != 1 || block[2] != 1 || block[0] > 1024 {
		return fmt.Errorf("emulator: launch %s: only 1-D grids of blocks up to 1024 threads", name)
	}
	if d.emuBlock > 0 && kernelsWithReductions[name] {
		// these kernels loop over blockDim and reduce with block_sum for any
		// power-of-two block: fewer emulated threads, same result
		block[0] = d.emuBlock
	}
	cn := C.CString(name)
	defer C.free(unsafe.Pointer(cn))
	if C.zooEmuCall(d.emu, cn, C.uint(grid[0]), C.uint(block[0]), unsafe.Pointer(&args[0])) != 0 {
		return fmt.Errorf("emulator: launch %s: %w", name, errNoKernel)
	}
	return nil
}

// SetEmulatorBlock sets the emulator's thread-block size for the two
// block-reduction kernels (256 on a GPU): fewer emulated threads make
// tests of whole networks minutes faster. No effect on a GPU.
func (d *Device) SetEmulatorBlock(n int) {
	if d.emu != nil {
		d.emuBlock = n
	}
}
