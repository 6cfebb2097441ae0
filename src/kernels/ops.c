/* ops.c - scalar reference ops (see ops.h). Numerics follow ggml's CPU backend
 * where it matters for matching llama.cpp's logits: activations are quantized to
 * the weight type's vec_dot_type before the dot products; RoPE angles are built
 * by repeated multiplication with theta_scale as ggml does. */
#include "core/fault.h"
#include "kernels/ops.h"

#include <math.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/interleave.h"

/* Activation rows for a gemm kernel are packed after the converted rows, each
 * padded to whole cache lines; the size bound is the one types.h promises. */
static size_t pack_stride(size_t xq_row) { return (2 * xq_row + 256 + 63) & ~(size_t)63; }

size_t fr_matmul_scratch(const fr_weight *w, int n_tok) {
    const fr_type_traits *t = fr_type_traits_get(w->type);
    const size_t row = fr_row_size(t->vec_dot_type, w->n_in);
    /* room for the packed rows whatever the level: tests switch levels between calls */
    return (row + pack_stride(row)) * (size_t)n_tok + 64;
}

/* Rows not yet taken of one thread's stretch, [lo, hi) packed as lo | hi << 32 in
 * one word so that the owner (from the front) and a thief (from the back) agree by
 * compare-and-swap (a matmul's rows, at most a vocabulary's, fit in 32 bits); one
 * cache line each. */
typedef struct {
    _Atomic uint64_t lohi;
    char pad[64 - sizeof(uint64_t)];
} mm_stretch;

#define MM_MAX_STRETCH 64 /* threads past this many own nothing and only steal */

/* Several matrices that read the same input (Wq/Wk/Wv, gate/up) are computed in one
 * parallel pass over their concatenated rows: one activation conversion and one
 * barrier instead of one per matrix. */
typedef struct {
    int n_w;
    const fr_weight *const *ws;
    float *const *ys;
    const void *xq;        /* converted (or packed, for gemm) activations */
    size_t xq_row;         /* bytes per row of xq */
    int n_tok;
    int il;                /* all matrices FR_LAYOUT_IL16 */
    long unit;             /* shares are whole multiples of this many rows */
    long step;             /* rows an owner takes from its stretch at a time */
    int n_own;             /* stretches in use (min(threads, MM_MAX_STRETCH)) */
    mm_stretch *stretch;
} matmul_job;

/* Rows [r0, r1) (whole groups) of an IL16 matrix at a level without an IL16 GEMM:
 * each row is unpacked to row-major and dotted as usual. */
static void il_rows_fallback(const fr_weight *w, long r0, long r1, const matmul_job *j, float *y) {
    const fr_type_traits *tr = fr_type_traits_get(w->type);
    const size_t w_row = fr_row_size(w->type, w->n_in);
    uint8_t *row = fr_malloc(w_row);
    if (!row) abort(); /* one row of scratch; the forward pass has no error path here */
    for (long r = r0; r < r1; r++) {
        const uint8_t *g = (const uint8_t *)w->data + (size_t)(r / FR_IL_ROWS) * FR_IL_ROWS * w_row;
        fr_il_unpack_row(w->type, g, w->n_in, (int)(r % FR_IL_ROWS), row);
        for (int t = 0; t < j->n_tok; t++)
            tr->vec_dot((int)w->n_in, &y[(size_t)t * w->n_out + r], row, (const uint8_t *)j->xq + (size_t)t * j->xq_row);
    }
    free(row);
}

/* Rows [r0, r1) of the concatenated matrices. */
static void matmul_rows(const matmul_job *j, long r0, long r1) {
    const uint8_t *xq = j->xq;
    long base = 0;
    for (int k = 0; k < j->n_w && r0 < r1; k++) {
        const fr_weight *w = j->ws[k];
        long n_out = (long)w->n_out;
        if (r0 >= base + n_out) { base += n_out; continue; }
        const fr_type_traits *tr = fr_type_traits_get(w->type);
        const fr_vec_dot_fn dot = tr->vec_dot;
        const size_t w_row = fr_row_size(w->type, w->n_in);
        const int n_in = (int)w->n_in;
        float *y = j->ys[k];
        long end = r1 < base + n_out ? r1 : base + n_out;
        if (j->il) {
            if (tr->il_gemm)
                tr->il_gemm(n_in, (const uint8_t *)w->data + (size_t)(r0 - base) * w_row,
                            (int)((end - r0) / FR_IL_ROWS), xq, j->xq_row, j->n_tok, y + (r0 - base), (size_t)n_out);
            else
                il_rows_fallback(w, r0 - base, end - base, j, y);
        } else if (tr->gemm) {
            /* the kernel tiles rows x tokens itself; its outputs do not depend on
             * where a share starts, so the split stays bit-neutral */
            tr->gemm(n_in, (const uint8_t *)w->data + (size_t)(r0 - base) * w_row, w_row, (int)(end - r0), xq,
                     j->xq_row, j->n_tok, y + (r0 - base), (size_t)n_out);
        } else {
            for (long r = r0 - base; r < end - base; r++) {
                const void *row = (const uint8_t *)w->data + (size_t)r * w_row;
                for (int t = 0; t < j->n_tok; t++)
                    dot(n_in, &y[(size_t)t * n_out + r], row, xq + (size_t)t * j->xq_row);
            }
        }
        r0 = end;
        base += n_out;
    }
}

/* How rows are shared. Thread i owns the i-th of equal stretches of the rows and
 * takes them front to back, j->step rows at a time; one done with its own stretch
 * takes the back half of what is left of the fullest other one and makes it its
 * own. Why: decode reads every weight once, and each thread then reads one
 * contiguous stream per matmul, as the bandwidth probe does - each jump to a new
 * place costs a memory latency before the prefetch ahead of the kernel is running
 * again, and the shares taken in turn from one counter that this replaced (one
 * matrix of 2048 rows: ~20 shares, ~10 jumps per thread) cost ~10 % of decode. The
 * stealing keeps a core slowed by a neighbour or a page fault from holding the
 * barrier: the threads finish within about one step of each other. A batch steps
 * through its whole stretch at once (one contiguous share each: every weight
 * streamed once, the activations read once per share). Outputs do not depend on
 * who computes them, so none of this changes a bit. */
static int take_front(mm_stretch *st, long step, long *r0, long *r1) {
    uint64_t v = atomic_load(&st->lohi);
    for (;;) {
        const long lo = (long)(uint32_t)v, hi = (long)(v >> 32);
        if (lo >= hi) return 0;
        const long e = hi - lo > step ? lo + step : hi;
        if (atomic_compare_exchange_weak(&st->lohi, &v, (uint64_t)e | (uint64_t)hi << 32)) {
            *r0 = lo, *r1 = e;
            return 1;
        }
    }
}

/* Move the back half (whole units) of the fullest other stretch into `mine`. */
static int steal(matmul_job *j, mm_stretch *mine) {
    for (;;) {
        int victim = -1;
        long most = 0;
        for (int i = 0; i < j->n_own; i++) {
            uint64_t v = atomic_load(&j->stretch[i].lohi);
            long left = (long)(v >> 32) - (long)(uint32_t)v;
            if (&j->stretch[i] != mine && left > most) most = left, victim = i;
        }
        if (victim < 0) return 0;
        mm_stretch *st = &j->stretch[victim];
        uint64_t v = atomic_load(&st->lohi);
        const long lo = (long)(uint32_t)v, hi = (long)(v >> 32);
        if (lo >= hi) continue; /* emptied meanwhile: look again */
        long n = ((hi - lo) / 2 + j->unit - 1) / j->unit * j->unit;
        if (n < j->unit) n = j->unit;
        if (n > hi - lo) n = hi - lo;
        if (atomic_compare_exchange_strong(&st->lohi, &v, (uint64_t)lo | (uint64_t)(hi - n) << 32)) {
            /* mine is empty, so only failing thieves read it: a plain store will do */
            atomic_store(&mine->lohi, (uint64_t)(hi - n) | (uint64_t)hi << 32);
            return 1;
        }
    }
}

static void matmul_worker(void *arg, int ith, int nth) {
    (void)nth;
    matmul_job *j = arg;
    mm_stretch spare = {0}; /* a thread past MM_MAX_STRETCH works on what it steals */
    mm_stretch *mine = ith < j->n_own ? &j->stretch[ith] : &spare;
    for (;;) {
        long r0, r1;
        while (take_front(mine, j->step, &r0, &r1)) matmul_rows(j, r0, r1);
        if (!steal(j, mine)) return;
    }
}

typedef struct {
    fr_from_float_fn conv;
    fr_gemm_pack_fn pack;  /* NULL: no packing */
    const float *x;
    uint8_t *xq;
    uint8_t *xp;           /* packed rows (when pack) */
    int64_t n_in;
    size_t xq_row, xp_row;
    int n_tok;
} quant_job;

static void quant_worker(void *arg, int ith, int nth) {
    const quant_job *j = arg;
    long t0, t1;
    fr_split(j->n_tok, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++) {
        uint8_t *q = j->xq + (size_t)t * j->xq_row;
        if (j->conv) j->conv(j->x + (size_t)t * j->n_in, q, j->n_in);
        else q = (uint8_t *)(j->x + (size_t)t * j->n_in); /* F32: the input itself */
        if (j->pack) j->pack(q, j->xp + (size_t)t * j->xp_row, j->n_in);
    }
}

void fr_matmul_multi(fr_pool *pool, int n_w, const fr_weight *const *ws, float *const *ys,
                     const float *x, int n_tok, void *qbuf) {
    const fr_type_traits *t0 = fr_type_traits_get(ws[0]->type);
    const fr_type vdt = t0->vec_dot_type;
    long total = 0;
    for (int k = 0; k < n_w; k++) {
        const fr_type_traits *tk = fr_type_traits_get(ws[k]->type);
        /* one shared activation layout: same vec_dot_type, length and packing */
        if (tk->vec_dot_type != vdt || ws[k]->n_in != ws[0]->n_in || !tk->gemm != !t0->gemm ||
            tk->gemm_pack != t0->gemm_pack || ws[k]->layout != ws[0]->layout ||
            (ws[0]->layout == FR_LAYOUT_IL16 && (tk->il_pack != t0->il_pack || !tk->il_gemm != !t0->il_gemm))) {
            for (int i = 0; i < n_w; i++) fr_matmul_multi(pool, 1, &ws[i], &ys[i], x, n_tok, qbuf);
            return;
        }
        total += (long)ws[k]->n_out;
    }
    const fr_type_traits *vt = fr_type_traits_get(vdt);
    const size_t xq_row = fr_row_size(vdt, ws[0]->n_in);
    const int il = ws[0]->layout == FR_LAYOUT_IL16;
    const fr_gemm_pack_fn pack = il ? (t0->il_gemm ? t0->il_pack : NULL) : t0->gemm ? t0->gemm_pack : NULL;
    const void *xq = x;
    size_t row = xq_row;
    if (vdt != FR_TYPE_F32 || pack) {
        uint8_t *xp = (uint8_t *)(((uintptr_t)qbuf + xq_row * (size_t)n_tok + 63) & ~(uintptr_t)63);
        quant_job q = {vdt == FR_TYPE_F32 ? NULL : vt->act_from_float ? vt->act_from_float : vt->from_float,
                       pack, x, qbuf, xp, ws[0]->n_in, xq_row, pack_stride(xq_row), n_tok};
        if (n_tok > 1) fr_pool_run(pool, quant_worker, &q);
        else quant_worker(&q, 0, 1);
        xq = pack ? (const void *)xp : qbuf;
        row = pack ? q.xp_row : xq_row;
    }
    /* the stretches: whole units, as equal as they can be; decode steps ~64 KiB of
     * weights at a time (a few microseconds: stealing stays fine-grained, and a
     * compare-and-swap per step costs nothing next to it) */
    const int nth = fr_pool_size(pool);
    const long unit = il ? FR_IL_ROWS : 4;
    const long w_row = (long)fr_row_size(ws[0]->type, ws[0]->n_in);
    const long units = (total + unit - 1) / unit;
    long step = total;
    if (n_tok == 1) {
        step = ((65536 + w_row - 1) / w_row + unit - 1) / unit * unit;
        if (step < unit) step = unit;
    }
    mm_stretch stretch[MM_MAX_STRETCH];
    const int n_own = nth < MM_MAX_STRETCH ? nth : MM_MAX_STRETCH;
    for (int i = 0; i < n_own; i++) {
        long a, b;
        fr_split(units, i, n_own, &a, &b);
        a *= unit, b *= unit;
        if (b > total) b = total;
        if (a > b) a = b;
        atomic_init(&stretch[i].lohi, (uint64_t)a | (uint64_t)b << 32);
    }
    matmul_job j = {n_w, ws, ys, xq, row, n_tok, il, unit, step, n_own, stretch};
    fr_pool_run(pool, matmul_worker, &j);
}

void fr_matmul(fr_pool *pool, const fr_weight *w, const float *x, int n_tok, float *y, void *qbuf) {
    fr_matmul_multi(pool, 1, &w, &y, x, n_tok, qbuf);
}

void fr_weight_row(const fr_weight *w, int64_t r, float *out) {
    const fr_type_traits *t = fr_type_traits_get(w->type);
    size_t rs = fr_row_size(w->type, w->n_in);
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * rs;
    t->to_float(row, out, w->n_in);
    if (w->drop_pages) {
        /* the fault mapped the aligned 64 KiB around the row (Linux's default
         * fault_around_bytes), not just its own pages: release that whole window,
         * kept inside the table (other tensors' pages are not ours to drop) */
        const uintptr_t win = 64 * 1024, pg = (uintptr_t)sysconf(_SC_PAGESIZE);
        const uintptr_t lo = ((uintptr_t)w->data + pg - 1) & ~(pg - 1);
        const uintptr_t hi = ((uintptr_t)w->data + rs * (size_t)w->n_out) & ~(pg - 1);
        uintptr_t a = (uintptr_t)row & ~(win - 1), b = ((uintptr_t)row + rs + win - 1) & ~(win - 1);
        if (a < lo) a = lo;
        if (b > hi) b = hi;
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED); /* advice: a failure only costs RSS */
    }
}

void fr_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* as ggml: squares formed in float, summed in double, mean and scale in float */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float mean = (float)(ss / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void fr_softmax(float *x, int n) {
    float mx = -INFINITY;
    for (int i = 0; i < n; i++) if (x[i] > mx) mx = x[i];
    double sum = 0.0;
    for (int i = 0; i < n; i++) { x[i] = expf(x[i] - mx); sum += x[i]; }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}

void fr_swiglu(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i++) out[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

/* YaRN's correction dims: where the rotation of dim pair i crosses n_ctx_orig / (2 pi
 * beta) turns, for beta_fast and beta_slow (ggml's rope_yarn_corr_dims). */
static void yarn_corr_dims(int n_rot, int n_ctx_orig, float base, float beta_fast, float beta_slow, float d[2]) {
    const float pi = 3.14159265358979323846f;
    float lo = floorf(n_rot * logf(n_ctx_orig / (beta_fast * 2 * pi)) / (2 * logf(base)));
    float hi = ceilf(n_rot * logf(n_ctx_orig / (beta_slow * 2 * pi)) / (2 * logf(base)));
    d[0] = lo > 0 ? lo : 0;
    d[1] = hi < n_rot - 1 ? hi : (float)(n_rot - 1);
}

void fr_rope_ext(float *x, int n_head, int head_dim, int n_rot, int pos, const fr_rope_cfg *cfg,
                 const float *factors, int neox) {
    const float theta_scale = powf(cfg->base, -2.0f / (float)n_rot);
    float corr[2] = {0, 0};
    if (cfg->ext_factor != 0.0f) yarn_corr_dims(n_rot, cfg->n_ctx_orig, cfg->base, cfg->beta_fast, cfg->beta_slow, corr);
    float cs[512], sn[512];
    const int half = n_rot / 2 < 512 ? n_rot / 2 : 512;
    float theta = (float)pos;
    for (int i = 0; i < half; i++) {
        const float extrap = theta / (factors ? factors[i] : 1.0f);
        float th = cfg->freq_scale * extrap, mscale = cfg->attn_factor;
        if (cfg->ext_factor != 0.0f) {
            const float y = ((float)i - corr[0]) / fmaxf(0.001f, corr[1] - corr[0]);
            const float ramp = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * cfg->ext_factor;
            th = th * (1.0f - ramp) + extrap * ramp;
            mscale *= 1.0f + 0.1f * logf(1.0f / cfg->freq_scale);
        }
        cs[i] = cosf(th) * mscale;
        sn[i] = sinf(th) * mscale;
        theta *= theta_scale;
    }
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
}

void fr_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps) {
    /* as ggml's norm: sums in double, the variance of the centred values */
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)x[i];
    const float mean = (float)(sum / n);
    double sum2 = 0.0;
    for (int i = 0; i < n; i++) {
        const float v = x[i] - mean;
        out[i] = v;
        sum2 += (double)(v * v);
    }
    const float scale = 1.0f / sqrtf((float)(sum2 / n) + eps);
    for (int i = 0; i < n; i++) out[i] = out[i] * scale * w[i] + (b ? b[i] : 0.0f);
}

/* gelu(h) rounded to F16 for every F16 input h: the reference engine's table */
static uint16_t g_gelu_tab[1 << 16];
static pthread_once_t g_gelu_once = PTHREAD_ONCE_INIT;

static void gelu_tab_init(void) {
    for (int i = 0; i < (1 << 16); i++) {
        const float v = fr_f16_to_f32((uint16_t)i);
        const float g = 0.5f * v * (1.0f + tanhf(0.79788456080286535587989211986876f * v * (1.0f + 0.044715f * v * v)));
        g_gelu_tab[i] = fr_f32_to_f16(g);
    }
}

static inline float gelu_one(float v) {
    if (v <= -10.0f) return 0.0f;
    if (v >= 10.0f) return v;
    return fr_f16_to_f32(g_gelu_tab[fr_f32_to_f16(v)]);
}

void fr_gelu(float *out, const float *x, int n) {
    pthread_once(&g_gelu_once, gelu_tab_init);
    for (int i = 0; i < n; i++) out[i] = gelu_one(x[i]);
}

void fr_geglu(float *out, const float *g, const float *u, int n) {
    pthread_once(&g_gelu_once, gelu_tab_init);
    for (int i = 0; i < n; i++) out[i] = gelu_one(g[i]) * u[i];
}

void fr_softcap(float *x, int n, float cap) {
    const float inv = 1.0f / cap; /* as the reference: scale, tanh, scale */
    for (int i = 0; i < n; i++) x[i] = tanhf(x[i] * inv) * cap;
}
