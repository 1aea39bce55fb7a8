//go:build onednn

#include "zdnnl.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t eng;
static dnnl_stream_t strm;

// The blocked copies of each argument live in one arena per argument slot,
// shared by every primitive: calls are serialised (one Go thread makes
// them all), so the arena only needs the largest size.
#define NSLOT 5
static void *arena[NSLOT];
static size_t arena_size[NSLOT];

// The ring: blocked outputs kept after a call for the next primitive to
// read without a reorder (zconv_exec's keep and from; Go checks that a
// slot still holds what the consumer wants).
#define NRING 4
static void *ring[NRING];
static size_t ring_size[NRING];
static dnnl_memory_desc_t ring_md[NRING];
static int ring_ok[NRING];

// Reorders run, by what they move (zcounts; for tests).
static unsigned long counts[ZR_N];

// grow makes *buf (*size bytes) hold at least n bytes, 64-byte aligned;
// it returns *buf, NULL when the allocation failed.
static void *grow(void **buf, size_t *size, size_t n) {
    if (*size < n) {
        free(*buf);
        *buf = aligned_alloc(64, (n + 63) / 64 * 64);
        *size = *buf ? n : 0;
    }
    return *buf;
}

// par_copy is memcpy on the OpenMP team (a block's summand, tens of MB).
static void par_copy(void *dst, const void *src, size_t n) {
    const size_t chunk = 1 << 20;
    long nc = (long)((n + chunk - 1) / chunk);
#pragma omp parallel for
    for (long i = 0; i < nc; i++) {
        size_t off = (size_t)i * chunk;
        memcpy((char *)dst + off, (const char *)src + off, off + chunk <= n ? chunk : n - off);
    }
}

static void *ring_buf(int i, size_t n) { return grow(&ring[i], &ring_size[i], n); }

static void *slot(int i, size_t n) { return grow(&arena[i], &arena_size[i], n); }

typedef struct {
    int id;                   // DNNL_ARG_*
    int out;                  // written by the primitive
    dnnl_memory_t user;       // the Go tensor (plain layout, f32)
    dnnl_memory_t inner;      // what the primitive reads or writes (== user when no reorder)
    dnnl_memory_desc_t md;    // inner's descriptor
    dnnl_primitive_t reorder; // user->inner (inputs) or inner->user (outputs)
    dnnl_primitive_t preload; // sum post-op: the summand (user layout) -> inner
    dnnl_memory_t sumsrc;     // the summand's user memory
    dnnl_primitive_t rfrom;   // a ring slot (layout rfrom_md) -> inner, when the producer's layout differs
    dnnl_memory_desc_t rfrom_md;
    dnnl_memory_t rfrom_mem;
    dnnl_primitive_t rsum;    // a ring slot (layout rsum_md) -> the output's layout: the summand
    dnnl_memory_desc_t rsum_md;
    dnnl_memory_t rsum_from, rsum_to;
    size_t size;              // inner's size in bytes
} zarg;

struct zprim {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    zarg arg[3];
    int nbin;
    dnnl_memory_t bin[2];
    size_t wsize; // the weights' element count when a scale is folded into them
    int wk;       // output channels of those weights
    dnnl_primitive_t wscaled; // the weights' reorder that folds the scale in (output scales), or NULL
    dnnl_memory_t wscale;     // its scale argument [K]
    int binpo;    // the scale and shift are binary post-ops (bf16), not folded
    char impl[64];
};

#define CHECK(x)                                                                   \
    do {                                                                           \
        dnnl_status_t st_ = (x);                                                   \
        if (st_ != dnnl_success) {                                                 \
            snprintf(err, errlen, "oneDNN: %s: %s", #x, dnnl_status2str(st_));     \
            goto fail;                                                             \
        }                                                                          \
    } while (0)

static int init(char *err, int errlen) {
    if (eng) return 0;
    CHECK(dnnl_engine_create(&eng, dnnl_cpu, 0));
    CHECK(dnnl_stream_create(&strm, eng, dnnl_stream_default_flags));
    return 0;
fail:
    return -1;
}

static void arg_free(zarg *a) {
    if (a->inner && a->inner != a->user) dnnl_memory_destroy(a->inner);
    if (a->user) dnnl_memory_destroy(a->user);
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    if (a->preload) dnnl_primitive_destroy(a->preload);
    if (a->sumsrc) dnnl_memory_destroy(a->sumsrc);
    if (a->rfrom) dnnl_primitive_destroy(a->rfrom);
    if (a->rfrom_mem) dnnl_memory_destroy(a->rfrom_mem);
    if (a->rsum) dnnl_primitive_destroy(a->rsum);
    if (a->rsum_from) dnnl_memory_destroy(a->rsum_from);
    if (a->rsum_to) dnnl_memory_destroy(a->rsum_to);
    memset(a, 0, sizeof *a);
}

void zprim_destroy(zprim *p) {
    if (!p) return;
    for (int i = 0; i < 3; i++) arg_free(&p->arg[i]);
    for (int i = 0; i < p->nbin; i++) dnnl_memory_destroy(p->bin[i]);
    if (p->wscaled) dnnl_primitive_destroy(p->wscaled);
    if (p->wscale) dnnl_memory_destroy(p->wscale);
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
    free(p);
}

const char *zprim_impl(zprim *p) { return p->impl; }

// arg_init sets up argument slot i: the user's plain f32 tensor and, when
// the primitive wants another layout or type, a reorder to or from it.
static int arg_init(zarg *a, int id, int out, const dnnl_memory_desc_t *umd,
                    const dnnl_memory_desc_t *pmd, char *err, int errlen) {
    dnnl_primitive_desc_t rpd = NULL;
    a->id = id;
    a->out = out;
    a->md = *pmd;
    CHECK(dnnl_memory_create(&a->user, umd, eng, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(umd, pmd)) {
        a->inner = a->user;
        return 0;
    }
    CHECK(dnnl_memory_create(&a->inner, pmd, eng, DNNL_MEMORY_NONE));
    a->size = dnnl_memory_desc_get_size(pmd);
    if (out)
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, pmd, eng, umd, eng, NULL));
    else
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, umd, eng, pmd, eng, NULL));
    CHECK(dnnl_primitive_create(&a->reorder, rpd));
    dnnl_primitive_desc_destroy(rpd);
    return 0;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return -1;
}

static int reorder(int what, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to, char *err, int errlen) {
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    CHECK(dnnl_primitive_execute(r, strm, 2, args));
    counts[what]++;
    return 0;
fail:
    return -1;
}

static void set_impl(zprim *p) {
    const char *s = NULL;
    if (dnnl_primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
        snprintf(p->impl, sizeof p->impl, "%s", s);
}

// act_tag (with any = 0) is the layout a convolution's activations use inside: the
// 16-channel blocked nChw16c where the channels fill whole blocks (the
// layout of oneDNN's direct avx512 kernels, and a cheaper reorder from
// NCHW than the NHWC brgconv picks by itself), else whatever oneDNN
// prefers (the stem's 3 input channels stay NCHW). ZOO_ONEDNN_LAYOUT=any
// lets oneDNN pick everywhere (to compare).
static int layout_any = -1;

static dnnl_format_tag_t act_tag(int c) {
    if (layout_any < 0) {
        const char *e = getenv("ZOO_ONEDNN_LAYOUT");
        layout_any = e && !strcmp(e, "any");
    }
    return !layout_any && c % 16 == 0 ? dnnl_nChw16c : dnnl_format_tag_any;
}

zprim *zconv_create(int kind, int n, int c, int h, int w, int k, int r, int s,
                    int stride, int pad, int post, int bf16, int any, int xblk, int yblk, char *err, int errlen) {
    zprim *p = calloc(1, sizeof *p);
    int saved_any = layout_any;
    dnnl_primitive_desc_t fwd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    if (!p) {
        snprintf(err, errlen, "oneDNN: out of memory");
        return NULL;
    }
    if (init(err, errlen)) goto fail;
    if (any) layout_any = 1;
    else act_tag(0);
    int oh = (h + 2 * pad - r) / stride + 1, ow = (w + 2 * pad - s) / stride + 1;
    dnnl_dims_t xd = {n, c, h, w}, wd = {k, c, r, s}, yd = {n, k, oh, ow}, bd1 = {k};
    dnnl_dims_t strides = {stride, stride}, pads = {pad, pad};
    dnnl_memory_desc_t ux, uw, uy, ax, aw, ay, ay32, bmd, cmd;
    dnnl_dims_t cd = {1, k, 1, 1};
    // bf16: the batch norm's scale stays an fp32 multiply after the
    // convolution (folded into the filter it would be rounded to bf16 with
    // it); fp32: folded (with a sum post-op, the binary post-ops left
    // oneDNN 2.6 only its reference 1x1 kernel).
    int binpo = bf16 && kind <= ZK_FWD_INFER && (post & ZP_SCALESHIFT);
    dnnl_data_type_t lo = bf16 ? dnnl_bf16 : dnnl_f32;
    CHECK(dnnl_memory_desc_init_by_tag(&ux, 4, xd, dnnl_f32, xblk ? dnnl_nChw16c : dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&uw, 4, wd, dnnl_f32, dnnl_oihw));
    CHECK(dnnl_memory_desc_init_by_tag(&uy, 4, yd, dnnl_f32, yblk ? dnnl_nChw16c : dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&bmd, 1, bd1, dnnl_f32, dnnl_a));
    CHECK(dnnl_memory_desc_init_by_tag(&cmd, 4, cd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&ax, 4, xd, lo, act_tag(c)));
    CHECK(dnnl_memory_desc_init_by_tag(&aw, 4, wd, lo, dnnl_format_tag_any));
    CHECK(dnnl_memory_desc_init_by_tag(&ay, 4, yd, lo, act_tag(k)));
    CHECK(dnnl_memory_desc_init_by_tag(&ay32, 4, yd, bf16 > 1 ? dnnl_bf16 : dnnl_f32, act_tag(k)));

    // The forward descriptor: the primitive itself for ZK_FWD*, the hint
    // for the backward ones. bf16 forward writes f32 (accumulated in f32).
    dnnl_convolution_desc_t fd;
    CHECK(dnnl_convolution_forward_desc_init(&fd, kind == ZK_FWD_INFER ? dnnl_forward_inference : dnnl_forward_training,
                                             dnnl_convolution_direct, &ax, &aw, (kind <= ZK_FWD_INFER && (post & ZP_SCALESHIFT) && !binpo) ? &bmd : NULL,
                                             (kind <= ZK_FWD_INFER) ? &ay32 : &ay,
                                             strides, pads, pads));
    if (kind <= ZK_FWD_INFER && (binpo || (post & (ZP_SUM | ZP_RELU)))) {
        CHECK(dnnl_primitive_attr_create(&attr));
        CHECK(dnnl_post_ops_create(&po));
        if (binpo) {
            CHECK(dnnl_post_ops_append_binary(po, dnnl_binary_mul, &cmd));
            CHECK(dnnl_post_ops_append_binary(po, dnnl_binary_add, &cmd));
        }
        if (post & ZP_SUM) CHECK(dnnl_post_ops_append_sum(po, 1.0f));
        if (post & ZP_RELU) CHECK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
        CHECK(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    CHECK(dnnl_primitive_desc_create(&fwd, &fd, attr, eng, NULL));

    switch (kind) {
    case ZK_FWD:
    case ZK_FWD_INFER:
        p->pd = fwd;
        fwd = NULL;
        if (arg_init(&p->arg[0], DNNL_ARG_SRC, 0, &ux, dnnl_primitive_desc_query_md(p->pd, dnnl_query_src_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[1], DNNL_ARG_WEIGHTS, 0, &uw, dnnl_primitive_desc_query_md(p->pd, dnnl_query_weights_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[2], DNNL_ARG_DST, 1, &uy, dnnl_primitive_desc_query_md(p->pd, dnnl_query_dst_md, 0), err, errlen)) goto fail;
        if (binpo) {
            for (int i = 0; i < 2; i++) CHECK(dnnl_memory_create(&p->bin[i], &cmd, eng, DNNL_MEMORY_NONE));
            p->nbin = 2;
            p->binpo = 1;
        } else if (post & ZP_SCALESHIFT) {
            // The scale is folded into the weights (exec), the shift is the bias.
            CHECK(dnnl_memory_create(&p->bin[0], &bmd, eng, DNNL_MEMORY_NONE));
            p->nbin = 1;
            p->wsize = (size_t)k * c * r * s;
            p->wk = k;
            // Folded by the weights' reorder itself (per output channel
            // scales) where it has one: one pass over the filter.
            if (p->arg[1].inner != p->arg[1].user) {
                dnnl_primitive_attr_t wa = NULL;
                dnnl_primitive_desc_t rpd = NULL;
                float rt = DNNL_RUNTIME_F32_VAL;
                if (dnnl_primitive_attr_create(&wa) == dnnl_success &&
                    dnnl_primitive_attr_set_output_scales(wa, 1, 1, &rt) == dnnl_success &&
                    dnnl_reorder_primitive_desc_create(&rpd, &uw, eng, &p->arg[1].md, eng, wa) == dnnl_success &&
                    dnnl_primitive_create(&p->wscaled, rpd) == dnnl_success &&
                    dnnl_memory_create(&p->wscale, &bmd, eng, DNNL_MEMORY_NONE) == dnnl_success) {
                } else {
                    if (p->wscaled) dnnl_primitive_destroy(p->wscaled);
                    p->wscaled = NULL;
                }
                if (rpd) dnnl_primitive_desc_destroy(rpd);
                if (wa) dnnl_primitive_attr_destroy(wa);
            }
        }
        if (post & ZP_SUM) {
            zarg *a = &p->arg[2];
            CHECK(dnnl_memory_create(&a->sumsrc, &uy, eng, DNNL_MEMORY_NONE));
            if (a->inner != a->user) {
                dnnl_primitive_desc_t rpd;
                CHECK(dnnl_reorder_primitive_desc_create(&rpd, &uy, eng, dnnl_primitive_desc_query_md(p->pd, dnnl_query_dst_md, 0), eng, NULL));
                dnnl_status_t st = dnnl_primitive_create(&a->preload, rpd);
                dnnl_primitive_desc_destroy(rpd);
                CHECK(st);
            }
        }
        break;
    case ZK_BWD_DATA: {
        dnnl_convolution_desc_t bd;
        dnnl_memory_desc_t adx;
        CHECK(dnnl_memory_desc_init_by_tag(&adx, 4, xd, dnnl_f32, act_tag(c)));
        CHECK(dnnl_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &adx, &aw, &ay, strides, pads, pads));
        CHECK(dnnl_primitive_desc_create(&p->pd, &bd, NULL, eng, fwd));
        if (arg_init(&p->arg[0], DNNL_ARG_WEIGHTS, 0, &uw, dnnl_primitive_desc_query_md(p->pd, dnnl_query_weights_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[1], DNNL_ARG_DIFF_DST, 0, &uy, dnnl_primitive_desc_query_md(p->pd, dnnl_query_diff_dst_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[2], DNNL_ARG_DIFF_SRC, 1, &ux, dnnl_primitive_desc_query_md(p->pd, dnnl_query_diff_src_md, 0), err, errlen)) goto fail;
        break;
    }
    case ZK_BWD_WEIGHTS: {
        dnnl_convolution_desc_t bd;
        dnnl_memory_desc_t adw;
        CHECK(dnnl_memory_desc_init_by_tag(&adw, 4, wd, dnnl_f32, dnnl_format_tag_any));
        CHECK(dnnl_convolution_backward_weights_desc_init(&bd, dnnl_convolution_direct, &ax, &adw, NULL, &ay, strides, pads, pads));
        CHECK(dnnl_primitive_desc_create(&p->pd, &bd, NULL, eng, fwd));
        if (arg_init(&p->arg[0], DNNL_ARG_SRC, 0, &ux, dnnl_primitive_desc_query_md(p->pd, dnnl_query_src_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[1], DNNL_ARG_DIFF_DST, 0, &uy, dnnl_primitive_desc_query_md(p->pd, dnnl_query_diff_dst_md, 0), err, errlen)) goto fail;
        if (arg_init(&p->arg[2], DNNL_ARG_DIFF_WEIGHTS, 1, &uw, dnnl_primitive_desc_query_md(p->pd, dnnl_query_diff_weights_md, 0), err, errlen)) goto fail;
        break;
    }
    default:
        snprintf(err, errlen, "oneDNN: unknown kind %d", kind);
        goto fail;
    }
    CHECK(dnnl_primitive_create(&p->prim, p->pd));
    set_impl(p);
    layout_any = saved_any;
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return p;
fail:
    layout_any = saved_any;
    if (fwd) dnnl_primitive_desc_destroy(fwd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    zprim_destroy(p);
    return NULL;
}

static void *shift_buf;
static size_t shift_size;

// shiftable returns 1 when m is f32 nChw16c, 2 when f32 NHWC (what
// bf16's 1x1 convs with a sum pick), else 0.
static int shiftable(const dnnl_memory_desc_t *m) {
    dnnl_memory_desc_t want;
    if (m->ndims != 4) return 0;
    if (dnnl_memory_desc_init_by_tag(&want, 4, m->dims, dnnl_f32, dnnl_nChw16c) == dnnl_success && dnnl_memory_desc_equal(&want, m))
        return 1;
    if (dnnl_memory_desc_init_by_tag(&want, 4, m->dims, dnnl_f32, dnnl_nhwc) == dnnl_success && dnnl_memory_desc_equal(&want, m))
        return 2;
    return 0;
}

// shift_ring copies ring slot from, an f32 nChw16c (or NHWC: shiftable)
// tensor of n = clips*t frames, into shift_buf with TSM's shift: channel
// blocks [0,c1) from the previous frame, [c1,c2) from the next (zeros
// past a clip's ends), the rest from the same frame. c1, c2 are
// multiples of 16. Returns 0 when the slot does not hold such a layout
// (the caller shifts NCHW itself).
static int shift_ring(int from, int t, int c1, int c2) {
    const dnnl_memory_desc_t *m = &ring_md[from];
    int kind = shiftable(m);
    if (!kind) return 0;
    int n = m->dims[0], cb = m->dims[1] / 16;
    size_t blk = (size_t)m->dims[2] * m->dims[3] * 16;
    size_t size = dnnl_memory_desc_get_size(m);
    if (shift_size < size && !grow(&shift_buf, &shift_size, size)) return 0;
    const float *x = ring[from];
    float *y = shift_buf;
    if (kind == 2) {
        int c = m->dims[1], hw = m->dims[2] * m->dims[3];
#pragma omp parallel for collapse(2)
        for (int f = 0; f < n; f++) {
            for (int p = 0; p < hw; p++) {
                int ti = f % t;
                float *d = y + ((size_t)f * hw + p) * c;
                const float *same = x + ((size_t)f * hw + p) * c;
                if (ti > 0) memcpy(d, same - (size_t)hw * c, c1 * sizeof(float));
                else memset(d, 0, c1 * sizeof(float));
                if (ti < t - 1) memcpy(d + c1, same + (size_t)hw * c + c1, (c2 - c1) * sizeof(float));
                else memset(d + c1, 0, (c2 - c1) * sizeof(float));
                memcpy(d + c2, same + c2, (c - c2) * sizeof(float));
            }
        }
        return 1;
    }
#pragma omp parallel for collapse(2)
    for (int f = 0; f < n; f++) {
        for (int b = 0; b < cb; b++) {
            int ti = f % t, st = ti;
            if (b < c1 / 16) st = ti - 1;
            else if (b < c2 / 16) st = ti + 1;
            float *d = y + ((size_t)f * cb + b) * blk;
            if (st < 0 || st >= t) memset(d, 0, blk * sizeof(float));
            else memcpy(d, x + ((size_t)(f - ti + st) * cb + b) * blk, blk * sizeof(float));
        }
    }
    return 1;
}

// from_ring points a's inner memory at ring slot from (the producer's
// blocked output): directly when the layouts agree, else through a
// reorder into the arena slot (made on first use, kept for the next
// call). Returns 1 when it did, 0 when the slot holds nothing usable, -1
// on error.
static int from_ring(zarg *a, int i, int from, int shifted, char *err, int errlen) {
    if (from < 0 || !ring_ok[from]) return 0;
    void *src = shifted ? shift_buf : ring[from];
    if (dnnl_memory_desc_equal(&ring_md[from], &a->md)) {
        CHECK(dnnl_memory_set_data_handle(a->inner, src));
        return 1;
    }
    if (!a->rfrom || !dnnl_memory_desc_equal(&a->rfrom_md, &ring_md[from])) {
        dnnl_primitive_desc_t rpd;
        if (a->rfrom) dnnl_primitive_destroy(a->rfrom);
        if (a->rfrom_mem) dnnl_memory_destroy(a->rfrom_mem);
        a->rfrom = NULL;
        a->rfrom_mem = NULL;
        CHECK(dnnl_reorder_primitive_desc_create(&rpd, &ring_md[from], eng, &a->md, eng, NULL));
        dnnl_status_t st = dnnl_primitive_create(&a->rfrom, rpd);
        dnnl_primitive_desc_destroy(rpd);
        CHECK(st);
        CHECK(dnnl_memory_create(&a->rfrom_mem, &ring_md[from], eng, DNNL_MEMORY_NONE));
        a->rfrom_md = ring_md[from];
    }
    void *buf = slot(i, a->size);
    if (!buf) {
        snprintf(err, errlen, "oneDNN: cannot allocate %zu bytes", a->size);
        return -1;
    }
    CHECK(dnnl_memory_set_data_handle(a->inner, buf));
    CHECK(dnnl_memory_set_data_handle(a->rfrom_mem, src));
    if (reorder(ZR_RING, a->rfrom, a->rfrom_mem, a->inner, err, errlen)) return -1;
    return 1;
fail:
    return -1;
}

// run executes p with its arguments' user handles set: inputs are
// reordered in, the sum post-op's summand preloaded, outputs reordered out.
// from (>= 0): read the source from that ring slot; keep (>= 0): write the
// blocked output into that ring slot; sumfrom (== keep): the slot already
// holds the summand (no preload); skipout: leave the NCHW output unwritten
// (keep must be set).
static int run(zprim *p, void *const user_in[3], const float *const bin[2], const float *sum, const float *scale,
               int from, int keep, int sumfrom, int skipout, const int shift[3], int *used, int *sumused, int *skipped,
               char *err, int errlen) {
    dnnl_exec_arg_t args[8];
    int na = 0, rc = -1;
    void *user[3] = {user_in[0], user_in[1], user_in[2]};
    int shifted = 0;
    if (shift[0] > 0) {
        // The source is shifted: only from the ring (else the caller
        // shifts the NCHW tensor and calls again without shift).
        if (from < 0 || !ring_ok[from] || !shift_ring(from, shift[0], shift[1], shift[2])) return 1;
        shifted = 1;
    }
    int wfold = 0; // the scale is folded by the weights' reorder
    if (scale && p->wsize && p->wscaled) {
        wfold = 1;
    } else if (scale && p->wsize) {
        // Batch norm folded into the filter: w'[k] = w[k] * scale[k].
        float *ws = slot(3, p->wsize * sizeof(float));
        const float *w = user[1];
        size_t per = p->wsize / p->wk;
        if (!ws) {
            snprintf(err, errlen, "oneDNN: cannot allocate %zu bytes", p->wsize * sizeof(float));
            return -1;
        }
#pragma omp parallel for
        for (int k = 0; k < p->wk; k++) {
            float a = scale[k];
            for (size_t i = k * per; i < (k + 1) * per; i++) ws[i] = w[i] * a;
        }
        user[1] = ws;
    }
    // The summand is in the ring slot the output goes to: the sum post-op
    // adds in place.
    int sum_in_ring = keep >= 0 && sumfrom == keep && ring_ok[keep] && p->arg[2].out && p->arg[2].inner != p->arg[2].user &&
                      dnnl_memory_desc_equal(&ring_md[keep], &p->arg[2].md);
    // The summand is in a ring slot in another layout: reordered into
    // arena slot 4 first (the output may go to that ring slot).
    void *sum_tmp = NULL;
    if (!sum_in_ring && sumfrom >= 0 && ring_ok[sumfrom] && p->arg[2].sumsrc) {
        zarg *a = &p->arg[2];
        size_t n = dnnl_memory_desc_get_size(&a->md);
        if (!a->rsum || !dnnl_memory_desc_equal(&a->rsum_md, &ring_md[sumfrom])) {
            dnnl_primitive_desc_t rpd;
            if (a->rsum) dnnl_primitive_destroy(a->rsum);
            if (a->rsum_from) dnnl_memory_destroy(a->rsum_from);
            if (a->rsum_to) dnnl_memory_destroy(a->rsum_to);
            a->rsum = NULL;
            a->rsum_from = a->rsum_to = NULL;
            CHECK(dnnl_reorder_primitive_desc_create(&rpd, &ring_md[sumfrom], eng, &a->md, eng, NULL));
            dnnl_status_t st = dnnl_primitive_create(&a->rsum, rpd);
            dnnl_primitive_desc_destroy(rpd);
            CHECK(st);
            CHECK(dnnl_memory_create(&a->rsum_from, &ring_md[sumfrom], eng, DNNL_MEMORY_NONE));
            CHECK(dnnl_memory_create(&a->rsum_to, &a->md, eng, DNNL_MEMORY_NONE));
            a->rsum_md = ring_md[sumfrom];
        }
        sum_tmp = slot(4, n);
        if (!sum_tmp) {
            snprintf(err, errlen, "oneDNN: cannot allocate %zu bytes", n);
            goto fail;
        }
        CHECK(dnnl_memory_set_data_handle(a->rsum_from, ring[sumfrom]));
        CHECK(dnnl_memory_set_data_handle(a->rsum_to, sum_tmp));
        if (reorder(ZR_RING, a->rsum, a->rsum_from, a->rsum_to, err, errlen)) goto fail;
    }
    // The ring slot's old contents are gone once the output goes there.
    if (keep >= 0) ring_ok[keep] = 0;
    for (int i = 0; i < 3; i++) {
        zarg *a = &p->arg[i];
        if (!a->user) continue;
        CHECK(dnnl_memory_set_data_handle(a->user, user[i]));
        int got = 0;
        if (i == 0 && !a->out && a->inner != a->user) {
            got = from_ring(a, i, from, shifted, err, errlen);
            if (got < 0) goto fail;
            if (got) *used = 1;
        }
        if (!got && a->inner != a->user) {
            void *buf = a->out && keep >= 0 ? ring_buf(keep, a->size) : slot(i, a->size);
            if (!buf) {
                snprintf(err, errlen, "oneDNN: cannot allocate %zu bytes", a->size);
                goto fail;
            }
            CHECK(dnnl_memory_set_data_handle(a->inner, buf));
            if (i == 1 && wfold) {
                CHECK(dnnl_memory_set_data_handle(p->wscale, (void *)scale));
                dnnl_exec_arg_t wargs[3] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->inner}, {DNNL_ARG_ATTR_OUTPUT_SCALES, p->wscale}};
                CHECK(dnnl_primitive_execute(p->wscaled, strm, 3, wargs));
                counts[ZR_WEIGHTS]++;
            } else if (!a->out && reorder(a->id == DNNL_ARG_WEIGHTS ? ZR_WEIGHTS : ZR_IN, a->reorder, a->user, a->inner, err, errlen))
                goto fail;
        }
        if (a->sumsrc) {
            if (sum_in_ring) {
                *sumused = 1;
            } else if (sum_tmp) {
                void *dst = NULL;
                CHECK(dnnl_memory_get_data_handle(a->inner, &dst));
                memcpy(dst, sum_tmp, dnnl_memory_desc_get_size(&a->md));
                *sumused = 1;
            } else if (a->preload) {
                CHECK(dnnl_memory_set_data_handle(a->sumsrc, (void *)sum));
                if (reorder(ZR_SUM, a->preload, a->sumsrc, a->inner, err, errlen)) goto fail;
            } else if (user[i] != sum) {
                // the summand in the output's own layout (NCHW, or
                // nChw16c when Go holds both blocked): copied as is
                par_copy(user[i], sum, dnnl_memory_desc_get_size(dnnl_primitive_desc_query_md(p->pd, dnnl_query_dst_md, 0)));
            }
        }
        args[na++] = (dnnl_exec_arg_t){a->id, a->inner};
    }
    for (int i = 0; i < p->nbin; i++) {
        CHECK(dnnl_memory_set_data_handle(p->bin[i], (void *)bin[i]));
        args[na++] = (dnnl_exec_arg_t){p->binpo ? DNNL_ARG_ATTR_MULTIPLE_POST_OP(i) | DNNL_ARG_SRC_1 : DNNL_ARG_BIAS, p->bin[i]};
    }
    CHECK(dnnl_primitive_execute(p->prim, strm, na, args));
    for (int i = 0; i < 3; i++) {
        zarg *a = &p->arg[i];
        if (!a->out || a->inner == a->user) continue;
        if (skipout && keep >= 0 && i == 2 && (skipout == 1 || shiftable(&a->md))) {
            *skipped = 1; // only chained readers read it, from the ring
            continue;
        }
        if (reorder(a->id == DNNL_ARG_DIFF_WEIGHTS ? ZR_WEIGHTS : ZR_OUT, a->reorder, a->inner, a->user, err, errlen)) goto fail;
    }
    CHECK(dnnl_stream_wait(strm));
    if (keep >= 0 && p->arg[2].out && p->arg[2].inner != p->arg[2].user) {
        ring_md[keep] = p->arg[2].md;
        ring_ok[keep] = 1;
    }
    rc = 0;
fail:
    // No Go pointer stays behind in a oneDNN object after the call.
    for (int i = 0; i < 3; i++) {
        if (p->arg[i].user) dnnl_memory_set_data_handle(p->arg[i].user, NULL);
        if (p->arg[i].sumsrc) dnnl_memory_set_data_handle(p->arg[i].sumsrc, NULL);
    }
    for (int i = 0; i < p->nbin; i++) dnnl_memory_set_data_handle(p->bin[i], NULL);
    if (p->wscale) dnnl_memory_set_data_handle(p->wscale, NULL);
    return rc;
}

int zconv_exec(zprim *p, const float *a, const float *b, float *out,
               const float *scale, const float *shift, const float *sum, int from, int keep, int sumfrom, int skipout,
               int shift_t, int shift_c1, int shift_c2, int *used, int *sumused, int *skipped, char *err, int errlen) {
    void *user[3] = {(void *)a, (void *)b, out};
    int sh[3] = {shift_t, shift_c1, shift_c2};
    const float *bin[2] = {shift, NULL};
    if (p->binpo) {
        bin[0] = scale;
        bin[1] = shift;
    }
    return run(p, user, bin, sum, scale, from, keep, sumfrom, skipout, sh, used, sumused, skipped, err, errlen);
}

void zcounts(unsigned long out[ZR_N]) {
    for (int i = 0; i < ZR_N; i++) out[i] = counts[i];
}

struct zbn {
    dnnl_primitive_desc_t fpd, bpd;
    dnnl_primitive_t fwd, bwd;
    dnnl_memory_t x, y, dy, dx, scale, shift, mean, var, dscale, dshift, ws;
    void *wsbuf; // the ReLU mask, written by the forward, read by the backward
    char impl[64];
};

void zbn_destroy(zbn *b) {
    if (!b) return;
    dnnl_memory_t *m[] = {&b->x, &b->y, &b->dy, &b->dx, &b->scale, &b->shift, &b->mean, &b->var, &b->dscale, &b->dshift, &b->ws};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (*m[i]) dnnl_memory_destroy(*m[i]);
    if (b->fwd) dnnl_primitive_destroy(b->fwd);
    if (b->bwd) dnnl_primitive_destroy(b->bwd);
    if (b->fpd) dnnl_primitive_desc_destroy(b->fpd);
    if (b->bpd) dnnl_primitive_desc_destroy(b->bpd);
    free(b->wsbuf);
    free(b);
}

const char *zbn_impl(zbn *b) { return b->impl; }

// bn_threads is the OpenMP team a batch norm runs on (ZOO_ONEDNN_BN_THREADS,
// else 1): oneDNN's jit batch norm synchronises its threads with spin
// barriers several times per call, and with OMP_WAIT_POLICY=passive (what
// zoo gives plugins) on a machine where another process takes a core a
// call took 128-256 ms instead of 1-3 (measured with a second process
// running); one thread cannot wait for another. bn_team sets it for a
// call and returns the team to restore.
static int bn_threads = -1;

static int bn_team(void) {
    if (bn_threads < 0) {
        const char *e = getenv("ZOO_ONEDNN_BN_THREADS");
        bn_threads = e && atoi(e) > 0 ? atoi(e) : 1;
    }
    int saved = omp_get_max_threads();
    omp_set_num_threads(bn_threads);
    return saved;
}

zbn *zbn_create(int n, int c, int h, int w, int blk, int relu, float eps, char *err, int errlen) {
    zbn *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "oneDNN: out of memory");
        return NULL;
    }
    // made with the team it runs on (a jit batch norm may size its
    // per-thread work when it is made)
    int team = bn_team();
    if (init(err, errlen)) goto fail;
    dnnl_dims_t d = {n, c, h, w}, cd = {c};
    dnnl_memory_desc_t md, cmd;
    CHECK(dnnl_memory_desc_init_by_tag(&md, 4, d, dnnl_f32, blk ? dnnl_nChw16c : dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&cmd, 1, cd, dnnl_f32, dnnl_a));
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);
    dnnl_batch_normalization_desc_t fd, bd;
    CHECK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &md, eps, flags));
    CHECK(dnnl_primitive_desc_create(&b->fpd, &fd, NULL, eng, NULL));
    CHECK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &md, &md, eps, flags));
    CHECK(dnnl_primitive_desc_create(&b->bpd, &bd, NULL, eng, b->fpd));
    CHECK(dnnl_primitive_create(&b->fwd, b->fpd));
    CHECK(dnnl_primitive_create(&b->bwd, b->bpd));
    dnnl_memory_t *act[] = {&b->x, &b->y, &b->dy, &b->dx}, *vec[] = {&b->scale, &b->shift, &b->mean, &b->var, &b->dscale, &b->dshift};
    for (size_t i = 0; i < 4; i++) CHECK(dnnl_memory_create(act[i], &md, eng, DNNL_MEMORY_NONE));
    for (size_t i = 0; i < 6; i++) CHECK(dnnl_memory_create(vec[i], &cmd, eng, DNNL_MEMORY_NONE));
    if (relu) {
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(b->fpd, dnnl_query_workspace_md, 0);
        size_t n = wmd ? dnnl_memory_desc_get_size(wmd) : 0;
        if (!n) {
            snprintf(err, errlen, "oneDNN: batch norm with ReLU has no workspace");
            goto fail;
        }
        b->wsbuf = aligned_alloc(64, (n + 63) / 64 * 64);
        if (!b->wsbuf) {
            snprintf(err, errlen, "oneDNN: cannot allocate %zu bytes", n);
            goto fail;
        }
        CHECK(dnnl_memory_create(&b->ws, wmd, eng, b->wsbuf));
    }
    const char *s = NULL;
    if (dnnl_primitive_desc_query(b->fpd, dnnl_query_impl_info_str, 0, &s) == dnnl_success && s)
        snprintf(b->impl, sizeof b->impl, "%s", s);
    omp_set_num_threads(team);
    return b;
fail:
    omp_set_num_threads(team);
    zbn_destroy(b);
    return NULL;
}

// set points m at a Go buffer for one call.
static int set(dnnl_memory_t m, const float *p, char *err, int errlen) {
    CHECK(dnnl_memory_set_data_handle(m, (void *)p));
    return 0;
fail:
    return -1;
}

static void bn_unset(zbn *b) {
    dnnl_memory_t m[] = {b->x, b->y, b->dy, b->dx, b->scale, b->shift, b->mean, b->var, b->dscale, b->dshift};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) dnnl_memory_set_data_handle(m[i], NULL);
}

int zbn_fwd(zbn *b, const float *x, float *y, const float *scale, const float *shift, float *mean, float *var, char *err, int errlen) {
    int rc = -1, team = bn_team();
    if (set(b->x, x, err, errlen) || set(b->y, y, err, errlen) || set(b->scale, scale, err, errlen) || set(b->shift, shift, err, errlen) ||
        set(b->mean, mean, err, errlen) || set(b->var, var, err, errlen))
        goto fail;
    dnnl_exec_arg_t args[7] = {{DNNL_ARG_SRC, b->x}, {DNNL_ARG_DST, b->y}, {DNNL_ARG_SCALE, b->scale}, {DNNL_ARG_SHIFT, b->shift},
                               {DNNL_ARG_MEAN, b->mean}, {DNNL_ARG_VARIANCE, b->var}, {DNNL_ARG_WORKSPACE, b->ws}};
    CHECK(dnnl_primitive_execute(b->fwd, strm, b->ws ? 7 : 6, args));
    CHECK(dnnl_stream_wait(strm));
    rc = 0;
fail:
    omp_set_num_threads(team);
    bn_unset(b);
    return rc;
}

int zbn_bwd(zbn *b, const float *x, const float *dy, const float *scale, const float *shift, const float *mean, const float *var,
            float *dx, float *dscale, float *dshift, char *err, int errlen) {
    int rc = -1, team = bn_team();
    if (set(b->x, x, err, errlen) || set(b->dy, dy, err, errlen) || set(b->scale, scale, err, errlen) || set(b->shift, shift, err, errlen) ||
        set(b->mean, mean, err, errlen) || set(b->var, var, err, errlen) || set(b->dx, dx, err, errlen) ||
        set(b->dscale, dscale, err, errlen) || set(b->dshift, dshift, err, errlen))
        goto fail;
    // oneDNN 2.6's backward with use_shift takes the shift too.
    dnnl_exec_arg_t args[10] = {{DNNL_ARG_SRC, b->x}, {DNNL_ARG_DIFF_DST, b->dy}, {DNNL_ARG_SCALE, b->scale}, {DNNL_ARG_SHIFT, b->shift},
                                {DNNL_ARG_MEAN, b->mean}, {DNNL_ARG_VARIANCE, b->var}, {DNNL_ARG_DIFF_SRC, b->dx},
                                {DNNL_ARG_DIFF_SCALE, b->dscale}, {DNNL_ARG_DIFF_SHIFT, b->dshift}, {DNNL_ARG_WORKSPACE, b->ws}};
    CHECK(dnnl_primitive_execute(b->bwd, strm, b->ws ? 10 : 9, args));
    CHECK(dnnl_stream_wait(strm));
    rc = 0;
fail:
    omp_set_num_threads(team);
    bn_unset(b);
    return rc;
}

zprim *zpool_create(int n, int c, int h, int w, int k, int stride, int pad, char *err, int errlen) {
    zprim *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "oneDNN: out of memory");
        return NULL;
    }
    if (init(err, errlen)) goto fail;
    int oh = (h + 2 * pad - k) / stride + 1, ow = (w + 2 * pad - k) / stride + 1;
    dnnl_dims_t xd = {n, c, h, w}, yd = {n, c, oh, ow};
    dnnl_dims_t strides = {stride, stride}, kern = {k, k}, dil = {0, 0}, pads = {pad, pad};
    dnnl_memory_desc_t ux, uy;
    CHECK(dnnl_memory_desc_init_by_tag(&ux, 4, xd, dnnl_f32, dnnl_nchw));
    CHECK(dnnl_memory_desc_init_by_tag(&uy, 4, yd, dnnl_f32, dnnl_nchw));
    dnnl_pooling_v2_desc_t pd;
    CHECK(dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference, dnnl_pooling_max, &ux, &uy, strides, kern, dil, pads, pads));
    CHECK(dnnl_primitive_desc_create(&p->pd, &pd, NULL, eng, NULL));
    if (arg_init(&p->arg[0], DNNL_ARG_SRC, 0, &ux, dnnl_primitive_desc_query_md(p->pd, dnnl_query_src_md, 0), err, errlen)) goto fail;
    if (arg_init(&p->arg[2], DNNL_ARG_DST, 1, &uy, dnnl_primitive_desc_query_md(p->pd, dnnl_query_dst_md, 0), err, errlen)) goto fail;
    CHECK(dnnl_primitive_create(&p->prim, p->pd));
    set_impl(p);
    return p;
fail:
    zprim_destroy(p);
    return NULL;
}

int zpool_exec(zprim *p, const float *x, float *y, char *err, int errlen) {
    void *user[3] = {(void *)x, NULL, y};
    const float *bin[2] = {NULL, NULL};
    int used = 0, sumused = 0, skipped = 0;
    int sh[3] = {0, 0, 0};
    return run(p, user, bin, NULL, NULL, -1, -1, -1, 0, sh, &used, &sumused, &skipped, err, errlen);
}

int zthreads(int n) {
    if (n > 0) omp_set_num_threads(n);
    return omp_get_max_threads();
}

const char *zisa(void) {
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_all: return "all";
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    default: return "unknown";
    }
}

int zhas_bf16(void) {
    dnnl_cpu_isa_t i = dnnl_get_effective_cpu_isa();
    return i == dnnl_cpu_isa_avx512_core_bf16 || i == dnnl_cpu_isa_avx512_core_amx;
}

const char *zversion(void) {
    static char buf[32];
    const dnnl_version_t *v = dnnl_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v->major, v->minor, v->patch);
    return buf;
}
