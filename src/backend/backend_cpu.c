/* backend_cpu.c - the CPU as a backend (backend.h): buffers in accounted host memory,
 * ops by the scalar reference kernels of kernels/ops.h, run at once (sync is a no-op).
 * It is the reference the device backends are checked against through the same
 * interface, and the fallback when no device opens. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "backend/backend.h"
#include "mem/alloc.h"

struct fr_bbuf {
    uint8_t *p;
    size_t n;
};

typedef struct {
    uint64_t cur, peak, budget;
} cpu_state;

#define F(buf, off) ((float *)(void *)(buf)->p + (off))

static void cpu_close(fr_backend *b) {
    free(b->impl);
    free(b);
}

static int cpu_buf_new(fr_backend *b, size_t n, fr_bbuf **out, fr_err *err) {
    cpu_state *s = b->impl;
    *out = NULL;
    if (s->budget && s->cur + n > s->budget)
        return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: %zu bytes would exceed the budget", n);
    fr_bbuf *buf = fr_calloc(1, sizeof *buf);
    if (!buf || !(buf->p = fr_mem_alloc(FR_MEM_OTHER, n ? n : 1))) {
        free(buf);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: out of memory allocating %zu bytes", n);
    }
    buf->n = n ? n : 1;
    s->cur += buf->n;
    if (s->cur > s->peak) s->peak = s->cur;
    *out = buf;
    return FRUGAL_OK;
}

static void cpu_buf_free(fr_backend *b, fr_bbuf *buf) {
    if (!buf) return;
    ((cpu_state *)b->impl)->cur -= buf->n;
    fr_mem_free(FR_MEM_OTHER, buf->p, buf->n);
    free(buf);
}

static int cpu_upload(fr_backend *b, fr_bbuf *buf, size_t off, const void *src, size_t n, fr_err *err) {
    (void)b;
    if (off > buf->n || n > buf->n - off) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "cpu backend: upload past the buffer");
    memcpy(buf->p + off, src, n);
    return FRUGAL_OK;
}

static int cpu_download(fr_backend *b, fr_bbuf *buf, size_t off, void *dst, size_t n, fr_err *err) {
    (void)b;
    if (off > buf->n || n > buf->n - off)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "cpu backend: download past the buffer");
    memcpy(dst, buf->p + off, n);
    return FRUGAL_OK;
}

static int cpu_sync(fr_backend *b, fr_err *err) { (void)b, (void)err; return FRUGAL_OK; }
static uint64_t cpu_cur(const fr_backend *b) { return ((const cpu_state *)b->impl)->cur; }
static uint64_t cpu_peak(const fr_backend *b) { return ((const cpu_state *)b->impl)->peak; }
static void cpu_budget(fr_backend *b, uint64_t bytes) { ((cpu_state *)b->impl)->budget = bytes; }

static int cpu_type_ok(fr_type t) {
    const fr_type_traits *tr = fr_type_traits_scalar(t);
    return tr && tr->supported && tr->row_overhead == 0;
}

static int cpu_matmul(fr_backend *b, fr_type type, fr_bbuf *w, size_t w_off, int64_t n_in, int64_t n_out, fr_bbuf *x,
                      size_t x_off, int n_tok, fr_bbuf *y, size_t y_off, fr_err *err) {
    (void)b;
    fr_weight wt = {.data = w->p + w_off, .type = type, .n_in = n_in, .n_out = n_out, .layout = FR_LAYOUT_ROWS};
    const size_t qn = fr_matmul_scratch(&wt, n_tok);
    void *q = fr_mem_alloc(FR_MEM_SCRATCH, qn ? qn : 1);
    if (!q) return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: out of memory");
    fr_matmul(NULL, &wt, F(x, x_off), n_tok, F(y, y_off), q);
    fr_mem_free(FR_MEM_SCRATCH, q, qn ? qn : 1);
    return FRUGAL_OK;
}

static int cpu_norm(fr_backend *b, int layer, int n, int n_rows, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off,
                    fr_bbuf *w, size_t w_off, fr_bbuf *bias, size_t b_off, float eps, fr_err *err) {
    (void)b, (void)err;
    float *ones = NULL;
    if (!w) { /* the kernels always scale: scale by one */
        if (!(ones = fr_malloc(sizeof(float) * (size_t)n))) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        for (int i = 0; i < n; i++) ones[i] = 1.0f;
    }
    const float *wp = w ? F(w, w_off) : ones;
    for (int r = 0; r < n_rows; r++) {
        float *out = F(o, o_off + (size_t)r * n), *in = F(x, x_off + (size_t)r * n);
        if (layer) fr_layernorm(out, in, wp, bias ? F(bias, b_off) : NULL, n, eps);
        else fr_rmsnorm(out, in, wp, n, eps);
    }
    free(ones);
    return FRUGAL_OK;
}

static int cpu_rope(fr_backend *b, fr_bbuf *x, size_t x_off, int x_stride, int n_tok, int n_head, int head_dim,
                    int n_rot, int neox, fr_bbuf *pos, const fr_rope_cfg *cfg, fr_bbuf *factors, fr_err *err) {
    (void)b, (void)err;
    const int32_t *p = (const int32_t *)(void *)pos->p;
    for (int t = 0; t < n_tok; t++)
        fr_rope_ext(F(x, x_off + (size_t)t * x_stride), n_head, head_dim, n_rot, p[t], cfg,
                    factors ? F(factors, 0) : NULL, neox);
    return FRUGAL_OK;
}

static int cpu_act(fr_backend *b, int mode, fr_bbuf *g, size_t g_off, fr_bbuf *u, size_t u_off, fr_bbuf *o,
                   size_t o_off, int64_t n, fr_err *err) {
    (void)b, (void)err;
    if (mode == FR_ACT_SWIGLU) fr_swiglu(F(o, o_off), F(g, g_off), F(u, u_off), (int)n);
    else if (mode == FR_ACT_GEGLU) fr_geglu(F(o, o_off), F(g, g_off), F(u, u_off), (int)n);
    else fr_gelu(F(o, o_off), F(g, g_off), (int)n);
    return FRUGAL_OK;
}

static int cpu_add(fr_backend *b, fr_bbuf *a, size_t a_off, fr_bbuf *bb, size_t b_off, int b_mod, fr_bbuf *o,
                   size_t o_off, int64_t n, fr_err *err) {
    (void)b, (void)err;
    const float *pa = F(a, a_off), *pb = F(bb, b_off);
    float *po = F(o, o_off);
    for (int64_t i = 0; i < n; i++) po[i] = pa[i] + pb[b_mod ? i % b_mod : i];
    return FRUGAL_OK;
}

static int cpu_softmax(fr_backend *b, fr_bbuf *x, size_t x_off, int n, int n_rows, fr_err *err) {
    (void)b, (void)err;
    for (int r = 0; r < n_rows; r++) fr_softmax(F(x, x_off + (size_t)r * n), n);
    return FRUGAL_OK;
}

static int cpu_attn(fr_backend *b, fr_bbuf *q, size_t q_off, fr_bbuf *k, fr_bbuf *v, int n_kv, int kv_stride,
                    int n_head, int n_head_kv, int head_dim, float scale, float softcap, fr_bbuf *o, size_t o_off,
                    fr_bbuf *scratch, fr_err *err) {
    (void)b;
    if (n_head_kv <= 0 || n_head % n_head_kv)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "cpu backend: %d query heads over %d KV heads", n_head, n_head_kv);
    for (int h = 0; h < n_head; h++) {
        const int kh = h / (n_head / n_head_kv);
        float *s = F(scratch, (size_t)h * n_kv), *out = F(o, o_off + (size_t)h * head_dim);
        const float *qh = F(q, q_off + (size_t)h * head_dim);
        for (int j = 0; j < n_kv; j++) {
            const float *kr = F(k, (size_t)j * kv_stride + (size_t)kh * head_dim);
            float d = 0;
            for (int e = 0; e < head_dim; e++) d += qh[e] * kr[e];
            s[j] = d * scale;
            if (softcap > 0) s[j] = softcap * tanhf(s[j] / softcap);
        }
        fr_softmax(s, n_kv);
        for (int e = 0; e < head_dim; e++) {
            float acc = 0;
            for (int j = 0; j < n_kv; j++) acc += s[j] * F(v, (size_t)j * kv_stride + (size_t)kh * head_dim)[e];
            out[e] = acc;
        }
    }
    return FRUGAL_OK;
}

static float f16r(float v) { return fr_f16_to_f32(fr_f32_to_f16(v)); }

/* The CPU kernels' own conversions there and back (quant_act.c, quant_k.c, F16). */
static int cpu_round(fr_backend *b, int mode, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off, int64_t n,
                     int n_rows, fr_err *err) {
    (void)b;
    const fr_type t = mode == FR_ROUND_Q8_0 ? FR_TYPE_Q8_0 : mode == FR_ROUND_Q8_K ? FR_TYPE_Q8_K : FR_TYPE_F16;
    const fr_type_traits *tr = fr_type_traits_get(t);
    fr_from_float_fn conv = tr->act_from_float ? tr->act_from_float : tr->from_float;
    void *tmp = fr_malloc(fr_row_size(t, n));
    if (!tmp) return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: out of memory");
    for (int r = 0; r < n_rows; r++) {
        conv(F(x, x_off + (size_t)r * n), tmp, n);
        tr->to_float(tmp, F(o, o_off + (size_t)r * n), n);
    }
    free(tmp);
    return FRUGAL_OK;
}

static int cpu_kv_store(fr_backend *b, fr_bbuf *k, size_t k_off, fr_bbuf *v, size_t v_off, int src_stride, int n_tok,
                        int row_len, fr_bbuf *pos, fr_bbuf *kc, fr_bbuf *vc, fr_err *err) {
    (void)b, (void)err;
    const int32_t *p = (const int32_t *)(void *)pos->p;
    for (int t = 0; t < n_tok; t++) {
        uint16_t *kr = (uint16_t *)(void *)kc->p + (size_t)p[t] * row_len, *vr = (uint16_t *)(void *)vc->p + (size_t)p[t] * row_len;
        for (int e = 0; e < row_len; e++) {
            kr[e] = fr_f32_to_f16(F(k, k_off + (size_t)t * src_stride)[e]);
            vr[e] = fr_f32_to_f16(F(v, v_off + (size_t)t * src_stride)[e]);
        }
    }
    return FRUGAL_OK;
}

static int cpu_attn16(fr_backend *b, fr_bbuf *q, size_t q_off, int q_stride, int n_tok, fr_bbuf *kc, fr_bbuf *vc,
                      fr_bbuf *pos, int n_head, int n_head_kv, int head_dim, int window, float q_scale, float scale,
                      float softcap, fr_bbuf *o, size_t o_off, int o_stride, fr_err *err) {
    (void)b;
    const int32_t *p = (const int32_t *)(void *)pos->p;
    const int row = n_head_kv * head_dim;
    const uint16_t *K = (const uint16_t *)(void *)kc->p, *V = (const uint16_t *)(void *)vc->p;
    int mx = 1;
    for (int t = 0; t < n_tok; t++) mx = p[t] + 1 > mx ? p[t] + 1 : mx;
    float *s = fr_malloc(sizeof(float) * (size_t)mx);
    if (!s) return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: out of memory");
    for (int t = 0; t < n_tok; t++) {
        const int lo = window > 0 && p[t] >= window ? p[t] - window + 1 : 0, n = p[t] + 1 - lo;
        float qbuf[256];
        for (int h = 0; h < n_head; h++) {
            const int kh = h / (n_head / n_head_kv);
            for (int e = 0; e < head_dim; e++) qbuf[e] = f16r(F(q, q_off + (size_t)t * q_stride + (size_t)h * head_dim)[e] * q_scale);
            for (int j = 0; j < n; j++) {
                const uint16_t *kr = K + (size_t)(lo + j) * row + (size_t)kh * head_dim;
                float d = 0;
                for (int e = 0; e < head_dim; e++) d += qbuf[e] * fr_f16_to_f32(kr[e]);
                if (softcap > 0) d = tanhf(d / softcap) * softcap;
                s[j] = d * scale;
            }
            fr_softmax(s, n);
            float *out = F(o, o_off + (size_t)t * o_stride + (size_t)h * head_dim);
            for (int e = 0; e < head_dim; e++) out[e] = 0;
            for (int j = 0; j < n; j++) {
                const float w = f16r(s[j]);
                const uint16_t *vr = V + (size_t)(lo + j) * row + (size_t)kh * head_dim;
                for (int e = 0; e < head_dim; e++) out[e] += w * fr_f16_to_f32(vr[e]);
            }
        }
    }
    free(s);
    return FRUGAL_OK;
}

static void *cpu_buf_host(fr_backend *b, fr_bbuf *buf) {
    (void)b;
    return buf->p;
}

static const fr_backend_ops cpu_ops = {
    cpu_close, cpu_buf_new, cpu_buf_free, cpu_upload, cpu_download, cpu_sync, cpu_cur, cpu_peak, cpu_budget,
    cpu_type_ok, cpu_matmul, cpu_norm, cpu_rope, cpu_act, cpu_add, cpu_softmax, cpu_attn, NULL, NULL,
    cpu_round, cpu_kv_store, cpu_attn16, cpu_buf_host,
};

int fr_backend_cpu_open(fr_backend **out, fr_err *err) {
    fr_backend *b = fr_calloc(1, sizeof *b);
    cpu_state *s = fr_calloc(1, sizeof *s);
    if (!b || !s) {
        free(b), free(s);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cpu backend: out of memory");
    }
    b->ops = &cpu_ops;
    b->kind = "cpu";
    snprintf(b->name, sizeof b->name, "CPU");
    b->is_cpu_device = 1;
    b->impl = s;
    *out = b;
    return FRUGAL_OK;
}
