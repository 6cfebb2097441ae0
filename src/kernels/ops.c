/* ops.c - scalar reference ops (see ops.h). Numerics follow ggml's CPU backend
 * where it matters for matching llama.cpp's logits: activations are quantized to
 * the weight type's vec_dot_type before the dot products; RoPE angles are built
 * by repeated multiplication with theta_scale as ggml does. */
#include "kernels/ops.h"

#include <math.h>
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

/* Several matrices that read the same input (Wq/Wk/Wv, gate/up) are computed in one
 * parallel pass over their concatenated rows: one activation conversion and one
 * barrier instead of one per matrix. */
typedef struct {
    int n_w;
    const fr_weight *const *ws;
    float *const *ys;
    long total_rows;
    const void *xq;        /* converted (or packed, for gemm) activations */
    size_t xq_row;         /* bytes per row of xq */
    int n_tok;
    int il;                /* all matrices FR_LAYOUT_IL16 */
    long chunk;            /* rows per share taken from `next`; 0: guided (decode) */
    long unit;             /* shares are whole multiples of this many rows */
    _Atomic long next;     /* first row no thread has taken yet */
} matmul_job;

/* Rows [r0, r1) (whole groups) of an IL16 matrix at a level without an IL16 GEMM:
 * each row is unpacked to row-major and dotted as usual. */
static void il_rows_fallback(const fr_weight *w, long r0, long r1, const matmul_job *j, float *y) {
    const fr_type_traits *tr = fr_type_traits_get(w->type);
    const size_t w_row = fr_row_size(w->type, w->n_in);
    uint8_t *row = malloc(w_row);
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

/* Threads take shares until none are left: in decode, when one core is slowed (a
 * neighbour on the machine, a page fault) the other takes more instead of waiting at
 * the barrier for a fixed half. Decode shares shrink as the rows run out ("guided":
 * a share is 1/(2 nth) of what is left, at least one unit), so the threads finish
 * within about one small share of each other - with fixed shares the last one left a
 * core idle for half a share on average, ~5 % of decode time. A batch takes one
 * contiguous share each (j->chunk). Outputs do not depend on who computes them, so
 * this changes no bit. */
static void matmul_worker(void *arg, int ith, int nth) {
    (void)ith;
    matmul_job *j = arg;
    for (;;) {
        long r0 = atomic_load(&j->next), c;
        do {
            if (r0 >= j->total_rows) return;
            c = j->chunk;
            if (c == 0) { /* guided */
                c = (j->total_rows - r0) / (2L * nth);
                c = (c + j->unit - 1) / j->unit * j->unit;
                if (c < j->unit) c = j->unit;
            }
        } while (!atomic_compare_exchange_weak(&j->next, &r0, r0 + c));
        matmul_rows(j, r0, r0 + c < j->total_rows ? r0 + c : j->total_rows);
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
    /* decode (memory-bound, at the mercy of the machine's bandwidth): guided shares;
     * a batch (compute-bound, evenly paced): one contiguous share each, so every
     * weight is streamed once and the activations are read once per share */
    const int nth = fr_pool_size(pool);
    const long unit = il ? FR_IL_ROWS : 4;
    long chunk = 0;
    if (n_tok > 1) {
        chunk = ((total + nth - 1) / nth + unit - 1) / unit * unit;
        if (chunk < unit) chunk = unit;
    }
    matmul_job j = {n_w, ws, ys, total, xq, row, n_tok, il, chunk, unit, 0};
    atomic_store(&j.next, 0);
    fr_pool_run(pool, matmul_worker, &j);
}

void fr_matmul(fr_pool *pool, const fr_weight *w, const float *x, int n_tok, float *y, void *qbuf) {
    fr_matmul_multi(pool, 1, &w, &y, x, n_tok, qbuf);
}

void fr_weight_row(const fr_weight *w, int64_t r, float *out) {
    const fr_type_traits *t = fr_type_traits_get(w->type);
    size_t rs = fr_row_size(w->type, w->n_in);
    t->to_float((const uint8_t *)w->data + (size_t)r * rs, out, w->n_in);
}

void fr_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    /* as ggml: squares formed in float, summed in double, mean and scale in float */
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    const float mean = (float)(ss / n);
    const float scale = 1.0f / sqrtf(mean + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void fr_rope(float *x, int n_head, int head_dim, int n_rot, int pos, float freq_base, int neox) {
    const float theta_scale = powf(freq_base, -2.0f / (float)n_rot);
    /* one cos/sin table per call, shared by all heads */
    float cs[512], sn[512];
    int half = n_rot / 2;
    float theta = (float)pos;
    for (int i = 0; i < half && i < 512; i++) {
        cs[i] = cosf(theta);
        sn[i] = sinf(theta);
        theta *= theta_scale;
    }
    for (int h = 0; h < n_head; h++) {
        float *v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            int a = neox ? i : 2 * i;
            int b = neox ? i + half : 2 * i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs[i] - x1 * sn[i];
            v[b] = x0 * sn[i] + x1 * cs[i];
        }
    }
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
