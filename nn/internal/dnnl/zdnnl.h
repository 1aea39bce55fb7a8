//go:build onednn

// zdnnl: the small C layer between Go and oneDNN's C API (oneDNN 2.6).
#ifndef ZDNNL_H
#define ZDNNL_H

#include <stddef.h>

enum { ZK_FWD = 0, ZK_FWD_INFER = 1, ZK_BWD_DATA = 2, ZK_BWD_WEIGHTS = 3 };
enum { ZR_IN = 0, ZR_OUT = 1, ZR_WEIGHTS = 2, ZR_SUM = 3, ZR_RING = 4, ZR_N = 5 };
enum { ZP_SCALESHIFT = 1, ZP_SUM = 2, ZP_RELU = 4 };

typedef struct zprim zprim;

// zconv_create makes a convolution primitive for NCHW tensors and an OIHW
// filter: kind is ZK_*, post a set of ZP_* (forward only), bf16 makes the
// source and weights (forward), or diff_dst and weights (backward data),
// bfloat16 inside (bf16 == 2: the forward's output too, for a chained
// reader only); the tensors Go sees stay float32; any lets oneDNN pick
// the activations' layout (else nChw16c where it fits). ZP_SCALESHIFT
// folds the scale into the filter and adds the shift as the bias. Returns NULL and
// writes err (errlen bytes) on failure.
// xblk (yblk): the Go tensor of the source or its gradient (the
// destination or its gradient) is f32 nChw16c instead of NCHW (c, k
// multiples of 16): no reorder when the primitive uses that layout.
zprim *zconv_create(int kind, int n, int c, int h, int w, int k, int r, int s,
                    int stride, int pad, int post, int bf16, int any, int xblk, int yblk, char *err, int errlen);
void zprim_destroy(zprim *p);
const char *zprim_impl(zprim *p);

// zconv_exec runs it: a, b are the inputs (forward: src, weights;
// backward data: weights, diff_dst; backward weights: src, diff_dst), out
// the output, scale/shift the per-channel post-op vectors, sum the tensor
// added before the ReLU (may be NULL when unused). keep >= 0 writes the
// blocked output into ring slot keep (and leaves it there); from >= 0
// reads the source from ring slot from instead of reordering a, when the
// slot holds a valid output (*used is then set to 1; a different layout
// or type is reordered from the slot). sumfrom == keep says the slot
// already holds the sum post-op's summand in the output's layout: it is
// added in place (*sumused set to 1) instead of preloaded from sum.
// skipout (with keep) leaves out unwritten: only chained readers read
// the output, from the ring; skipout == 2 only when the output is f32
// nChw16c or NHWC (which a shift can read); *skipped says it did. A
// summand in the ring in another layout than the output's is reordered
// from there. shift_t > 0: the source is ring slot from (f32 nChw16c or
// NHWC) with TSM's temporal shift applied (shift_t frames per clip, channels [0,shift_c1) from the previous frame, [shift_c1,
// shift_c2) from the next; multiples of 16), a is not read; when the
// slot does not hold that, nothing runs and it returns 1. Returns 0, or
// -1 and writes err.
int zconv_exec(zprim *p, const float *a, const float *b, float *out,
               const float *scale, const float *shift, const float *sum, int from, int keep, int sumfrom, int skipout,
               int shift_t, int shift_c1, int shift_c2, int *used, int *sumused, int *skipped, char *err, int errlen);

// zcounts copies the number of reorders run so far, by ZR_* (what they
// move: activations in, outputs out, weights either way, sum post-op
// summands in, ring outputs into another layout or type).
void zcounts(unsigned long out[ZR_N]);

// zbn_create makes a training batch normalisation (forward with the
// batch's statistics, and its backward) over an f32 tensor [n,c,h,w],
// nChw16c when blk, else NCHW, with a per-channel scale and shift; relu
// fuses a ReLU after it, whose mask the forward keeps in the primitive's
// workspace for the backward. Returns NULL and writes err on failure.
typedef struct zbn zbn;
zbn *zbn_create(int n, int c, int h, int w, int blk, int relu, float eps, char *err, int errlen);
void zbn_destroy(zbn *b);
const char *zbn_impl(zbn *b);
// zbn_fwd writes y and the batch's mean and (biased) variance [c].
int zbn_fwd(zbn *b, const float *x, float *y, const float *scale, const float *shift, float *mean, float *var, char *err, int errlen);
// zbn_bwd writes dx, dscale and dshift from x, dy and the forward's
// statistics (and, with relu, its mask).
int zbn_bwd(zbn *b, const float *x, const float *dy, const float *scale, const float *shift, const float *mean, const float *var,
            float *dx, float *dscale, float *dshift, char *err, int errlen);

// zpool_create / zpool_exec: max pooling forward (kind ZK_FWD_INFER) on
// NCHW tensors.
zprim *zpool_create(int n, int c, int h, int w, int k, int stride, int pad, char *err, int errlen);
int zpool_exec(zprim *p, const float *x, float *y, char *err, int errlen);

int zthreads(int n);        // sets OpenMP's thread count for the calling thread, returns omp_get_max_threads()
const char *zisa(void);     // the ISA oneDNN dispatches to
int zhas_bf16(void);        // 1 when the effective ISA has AVX512_BF16 (avx512_core_bf16 or above)
const char *zversion(void);

#endif
