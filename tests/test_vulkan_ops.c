/* test_vulkan_ops.c - every Vulkan shader against the CPU scalar reference on random
 * inputs with odd sizes (src/backend/vulkan/). Runs on any Vulkan device; CI uses Mesa's
 * lavapipe. Skips (77) when the build has no Vulkan backend or the machine no device.
 *
 * Tolerances, and why:
 *  - matrix products: the device sums in float in its own order, the reference in
 *    double over the same dequantized weights: |d| <= 1e-5 * sum|w*x| + 1e-6.
 *  - norms, softmax, attention, SwiGLU: float rounding of a different summation order
 *    and the device's exp: 2e-5 relative to the values' scale.
 *  - RoPE: the device computes theta = pos * base^(-2i/n_rot) with pow, the CPU by
 *    repeated multiplication; at position 1000 the angles differ by ~1e-4 rad: 2e-3.
 *  - GELU/GeGLU: both round through F16, but tanh may differ by an ulp before the
 *    rounding, which then moves the result by one F16 step: 2e-3 relative.
 *  - act_round (a product's input rounded as the CPU kernels round it): the same
 *    operations in float, so the same values: 1e-6 relative (the device's 127/amax may
 *    be off by an ulp where its division is not exact; lavapipe's is).
 *  - attention over the F16 cache: the attention weights are rounded to F16 on both
 *    sides, and a different exp or summation order can move one by an F16 step
 *    (5e-4 relative): 2e-3 relative to the outputs' scale. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#ifndef FRUGAL_HAVE_VULKAN
int main(void) { tu_skip("built without the Vulkan backend (FRUGAL_VULKAN=OFF)"); }
#else
#include "backend/vulkan/vk.h"
#include "backend/vulkan/vk_ops.h"
#include "core/types.h"
#include "kernels/ops.h"

static fr_vk *vk;
static uint64_t rng = 12345;

static void fill(float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = tu_rand_normal(&rng) * scale;
}

static fr_vk_buf *buf_from(const void *src, size_t n) {
    fr_vk_buf *b = NULL;
    if (fr_vk_buf_new(vk, n, &b, NULL)) return NULL;
    if (src && fr_vk_upload(vk, b, 0, src, n, NULL)) return NULL;
    return b;
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

/* |got - want| <= tol_rel * scale + tol_abs for all; prints the worst on failure */
static int close_all(const char *what, const float *got, const float *want, size_t n, float scale, float tol_rel,
                     float tol_abs) {
    size_t worst = 0;
    float wd = -1;
    for (size_t i = 0; i < n; i++) {
        const float d = fabsf(got[i] - want[i]);
        if (!(d <= wd)) {
            wd = d;
            worst = i;
        }
    }
    const int ok = wd <= tol_rel * scale + tol_abs;
    CHECKF(ok, "%s: [%zu] got %g want %g (diff %g, scale %g)", what, worst, got[worst], want[worst], wd, scale);
    return ok;
}

static void test_matmul(fr_type t, int64_t n_in, int64_t n_out, int n_tok) {
    const fr_type_traits *tr = fr_type_traits_scalar(t);
    const size_t rs = fr_row_size(t, n_in), w_off = 64; /* weights not at the buffer start */
    float *wf = tu_malloc(sizeof(float) * n_in * n_out), *wd = tu_malloc(sizeof(float) * n_in * n_out);
    float *x = tu_malloc(sizeof(float) * n_in * n_tok), *y = tu_malloc(sizeof(float) * n_out * n_tok);
    uint8_t *wq = tu_calloc(1, w_off + rs * n_out);
    fill(wf, n_in * n_out, 1.0f);
    fill(x, n_in * n_tok, 1.0f);
    for (int64_t r = 0; r < n_out; r++) {
        if (t == FR_TYPE_F32) memcpy(wq + w_off + r * rs, wf + r * n_in, rs);
        else tr->from_float(wf + r * n_in, wq + w_off + r * rs, n_in);
        tr->to_float(wq + w_off + r * rs, wd + r * n_in, n_in);
    }
    fr_vk_buf *bw = buf_from(wq, w_off + rs * n_out), *bx = buf_from(x, sizeof(float) * n_in * n_tok);
    fr_vk_buf *by = buf_from(NULL, sizeof(float) * (n_out * n_tok + 5));
    int rc = fr_vk_matmul(vk, t, bw, w_off, n_in, n_out, bx, 0, n_tok, by, 5, NULL);
    rc = rc ? rc : fr_vk_download(vk, by, 5 * sizeof(float), y, sizeof(float) * n_out * n_tok, NULL);
    CHECKF(rc == 0, "%s matmul rc %d", tr->name, rc);
    int bad = 0;
    for (int tk = 0; tk < n_tok && !bad; tk++)
        for (int64_t r = 0; r < n_out && !bad; r++) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < n_in; k++) {
                ref += (double)wd[r * n_in + k] * x[tk * n_in + k];
                mag += fabs((double)wd[r * n_in + k] * x[tk * n_in + k]);
            }
            const double got = y[(size_t)tk * n_out + r];
            if (!(fabs(got - ref) <= 1e-5 * mag + 1e-6)) {
                bad = 1;
                CHECKF(0, "%s %lldx%lld n_tok %d: y[%d][%lld] = %g, want %g", tr->name, (long long)n_out,
                       (long long)n_in, n_tok, tk, (long long)r, got, ref);
            }
        }
    if (!bad) CHECK(1);
    fr_vk_buf_free(vk, bw);
    fr_vk_buf_free(vk, bx);
    fr_vk_buf_free(vk, by);
    free(wf), free(wd), free(x), free(y), free(wq);
}

static void test_norm(int layer) {
    const int n = 97, rows = 3;
    float x[97 * 3], w[97], b[97], want[97 * 3], got[97 * 3];
    fill(x, n * rows, 2.0f);
    fill(w, n, 1.0f);
    fill(b, n, 1.0f);
    for (int r = 0; r < rows; r++) {
        if (layer) fr_layernorm(want + r * n, x + r * n, w, b, n, 1e-5f);
        else fr_rmsnorm(want + r * n, x + r * n, w, n, 1e-6f);
    }
    fr_vk_buf *bx = buf_from(x, sizeof x), *bw = buf_from(w, sizeof w), *bb = buf_from(b, sizeof b);
    /* in place, as the forward uses it */
    int rc = fr_vk_norm(vk, layer, n, rows, bx, 0, bx, 0, bw, 0, layer ? bb : NULL, 0, layer ? 1e-5f : 1e-6f, NULL);
    rc = rc ? rc : fr_vk_download(vk, bx, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    close_all(layer ? "layernorm" : "rmsnorm", got, want, n * rows, max_abs(want, n * rows), 2e-5f, 0);
    fr_vk_buf_free(vk, bx), fr_vk_buf_free(vk, bw), fr_vk_buf_free(vk, bb);
}

static void test_rope(int neox, int yarn, int with_factors) {
    enum { NH = 3, HD = 18, NROT = 16, NT = 3 };
    const int pos[NT] = {0, 5, 1000};
    float x[NT * NH * HD], want[NT * NH * HD], got[NT * NH * HD], fac[NROT / 2];
    fill(x, NT * NH * HD, 1.0f);
    for (int i = 0; i < NROT / 2; i++) fac[i] = 1.0f + 0.5f * i;
    fr_rope_cfg cfg = {.base = 10000.0f, .freq_scale = 1.0f, .attn_factor = 1.0f, .beta_fast = 32, .beta_slow = 1,
                       .n_ctx_orig = 512};
    if (yarn) cfg.freq_scale = 0.25f, cfg.ext_factor = 1.0f;
    memcpy(want, x, sizeof x);
    for (int t = 0; t < NT; t++)
        fr_rope_ext(want + t * NH * HD, NH, HD, NROT, pos[t], &cfg, with_factors ? fac : NULL, neox);
    fr_vk_buf *bx = buf_from(x, sizeof x), *bp = buf_from(pos, sizeof pos), *bf = buf_from(fac, sizeof fac);
    int rc = fr_vk_rope(vk, bx, 0, NH * HD, NT, NH, HD, NROT, neox, bp, &cfg, with_factors ? bf : NULL, NULL);
    rc = rc ? rc : fr_vk_download(vk, bx, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    char what[64];
    snprintf(what, sizeof what, "rope neox=%d yarn=%d factors=%d", neox, yarn, with_factors);
    close_all(what, got, want, NT * NH * HD, 1.0f, 2e-3f, 0);
    fr_vk_buf_free(vk, bx), fr_vk_buf_free(vk, bp), fr_vk_buf_free(vk, bf);
}

static void test_act(int mode) {
    enum { N = 1001 };
    static float g[N], u[N], want[N], got[N];
    fill(g, N, 4.0f);
    fill(u, N, 1.0f);
    g[0] = -12.0f, g[1] = 11.0f; /* beyond GELU's +-10 */
    if (mode == FR_VK_SWIGLU) fr_swiglu(want, g, u, N);
    else if (mode == FR_VK_GEGLU) fr_geglu(want, g, u, N);
    else fr_gelu(want, g, N);
    fr_vk_buf *bg = buf_from(g, sizeof g), *bu = buf_from(u, sizeof u), *bo = buf_from(NULL, sizeof got);
    int rc = fr_vk_act(vk, mode, bg, 0, bu, 0, bo, 0, N, NULL);
    rc = rc ? rc : fr_vk_download(vk, bo, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    const char *names[3] = {"swiglu", "geglu", "gelu"};
    for (int i = 0; i < N; i++) /* relative per element */
        if (!(fabsf(got[i] - want[i]) <= (mode == FR_VK_SWIGLU ? 2e-5f : 2e-3f) * fabsf(want[i]) + 1e-5f)) {
            CHECKF(0, "%s [%d] (g %g): got %g want %g", names[mode], i, g[i], got[i], want[i]);
            break;
        }
    fr_vk_buf_free(vk, bg), fr_vk_buf_free(vk, bu), fr_vk_buf_free(vk, bo);
}

static void test_add_softmax(void) {
    enum { N = 333, R = 2 };
    static float a[N * R], b[N], want[N * R], got[N * R];
    fill(a, N * R, 3.0f);
    fill(b, N, 3.0f);
    for (int i = 0; i < N * R; i++) want[i] = a[i] + b[i % N];
    for (int r = 0; r < R; r++) fr_softmax(want + r * N, N);
    fr_vk_buf *ba = buf_from(a, sizeof a), *bb = buf_from(b, sizeof b);
    int rc = fr_vk_add(vk, ba, 0, bb, 0, N, ba, 0, N * R, NULL); /* a bias over rows, in place */
    rc = rc ? rc : fr_vk_softmax(vk, ba, 0, N, R, NULL);
    rc = rc ? rc : fr_vk_download(vk, ba, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    close_all("add+softmax", got, want, N * R, max_abs(want, N * R), 2e-5f, 1e-9f);
    fr_vk_buf_free(vk, ba), fr_vk_buf_free(vk, bb);
}

static void test_attn(float softcap) {
    enum { NH = 4, NKV = 2, HD = 20, T = 37 };
    static float q[NH * HD], k[T * NKV * HD], v[T * NKV * HD], want[NH * HD], got[NH * HD], s[T];
    fill(q, NH * HD, 1.0f), fill(k, T * NKV * HD, 1.0f), fill(v, T * NKV * HD, 1.0f);
    const float scale = 1.0f / sqrtf(HD);
    for (int h = 0; h < NH; h++) {
        const int kh = h / (NH / NKV);
        for (int t = 0; t < T; t++) {
            float d = 0;
            for (int e = 0; e < HD; e++) d += q[h * HD + e] * k[(t * NKV + kh) * HD + e];
            s[t] = d * scale;
            if (softcap > 0) s[t] = softcap * tanhf(s[t] / softcap);
        }
        fr_softmax(s, T);
        for (int e = 0; e < HD; e++) {
            float acc = 0;
            for (int t = 0; t < T; t++) acc += s[t] * v[(t * NKV + kh) * HD + e];
            want[h * HD + e] = acc;
        }
    }
    fr_vk_buf *bq = buf_from(q, sizeof q), *bk = buf_from(k, sizeof k), *bv = buf_from(v, sizeof v);
    fr_vk_buf *bo = buf_from(NULL, sizeof got), *bs = buf_from(NULL, sizeof(float) * NH * T);
    int rc = fr_vk_attn_decode(vk, bq, 0, bk, bv, T, NKV * HD, NH, NKV, HD, scale, softcap, bo, 0, bs, NULL);
    rc = rc ? rc : fr_vk_download(vk, bo, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    close_all(softcap > 0 ? "attention (soft-capped)" : "attention", got, want, NH * HD, max_abs(want, NH * HD), 2e-5f,
              0);
    fr_vk_buf_free(vk, bq), fr_vk_buf_free(vk, bk), fr_vk_buf_free(vk, bv), fr_vk_buf_free(vk, bo);
    fr_vk_buf_free(vk, bs);
}

/* act_round: each row converted by the CPU's own quantizer (the active kernels', as the
 * forward pass uses) and back; the device must reproduce it. Rows with an all-zero
 * block and (Q8_K) a negative extreme included. */
static void test_round(int mode) {
    enum { ROWS = 5 };
    const fr_type t = mode == FR_VK_ROUND_Q8_0 ? FR_TYPE_Q8_0 : mode == FR_VK_ROUND_Q8_K ? FR_TYPE_Q8_K : FR_TYPE_F16;
    const int n = mode == FR_VK_ROUND_Q8_0 ? 7 * 32 : mode == FR_VK_ROUND_Q8_K ? 3 * 256 : 67;
    static float x[ROWS * 768], want[ROWS * 768], got[ROWS * 768];
    static uint8_t q[4096];
    fill(x, (size_t)ROWS * n, 2.0f);
    for (int j = 0; j < 32; j++) x[j] = 0.0f;   /* an all-zero block (Q8_0) */
    x[n + 5] = -40.0f;                          /* a negative extreme */
    const fr_type_traits *tr = fr_type_traits_get(t);
    fr_from_float_fn conv = tr->act_from_float ? tr->act_from_float : tr->from_float;
    for (int r = 0; r < ROWS; r++) {
        conv(x + (size_t)r * n, q, n);
        tr->to_float(q, want + (size_t)r * n, n);
    }
    fr_vk_buf *bx = buf_from(x, sizeof(float) * ROWS * n), *bo = buf_from(NULL, sizeof(float) * ROWS * n);
    int rc = fr_vk_act_round(vk, mode, bx, 0, bo, 0, n, ROWS, NULL);
    rc = rc ? rc : fr_vk_download(vk, bo, 0, got, sizeof(float) * ROWS * n, NULL);
    CHECK(rc == 0);
    close_all(mode == 0 ? "round Q8_0" : mode == 1 ? "round Q8_K" : "round F16", got, want, (size_t)ROWS * n,
              max_abs(want, (size_t)ROWS * n), 1e-6f, 0);
    fr_vk_buf_free(vk, bx), fr_vk_buf_free(vk, bo);
}

static float f16r(float v) { return fr_f16_to_f32(fr_f32_to_f16(v)); }

/* kv_store + attn_kv16: two chunks of tokens stored into an F16 cache (the second from a
 * strided fused buffer), then causal attention of the second chunk's tokens, against a
 * reference that follows the CPU's F16-cache attention (q and weights rounded to F16). */
static void test_kv_attn(float softcap, int window, float q_scale) {
    enum { NH = 6, NKV = 2, HD = 20, KVD = NKV * HD, T1 = 45, T2 = 7, NCTX = 64, STRIDE = KVD * 2 + 3 };
    static float k1[T1 * KVD], v1[T1 * KVD], f2[T2 * STRIDE], q[T2 * NH * HD], want[T2 * NH * HD], got[T2 * NH * HD];
    static float kc[NCTX * KVD], vc[NCTX * KVD], s[NCTX];
    int32_t p1[T1], p2[T2];
    for (int t = 0; t < T1; t++) p1[t] = t;
    for (int t = 0; t < T2; t++) p2[t] = T1 + t;
    fill(k1, T1 * KVD, 1.0f), fill(v1, T1 * KVD, 1.0f), fill(f2, T2 * STRIDE, 1.0f), fill(q, T2 * NH * HD, 1.0f);
    for (int t = 0; t < T1; t++)
        for (int e = 0; e < KVD; e++) kc[t * KVD + e] = f16r(k1[t * KVD + e]), vc[t * KVD + e] = f16r(v1[t * KVD + e]);
    for (int t = 0; t < T2; t++)
        for (int e = 0; e < KVD; e++)
            kc[(T1 + t) * KVD + e] = f16r(f2[t * STRIDE + e]), vc[(T1 + t) * KVD + e] = f16r(f2[t * STRIDE + KVD + e]);
    const float scale = 1.0f / sqrtf(HD);
    for (int t = 0; t < T2; t++) {
        const int pos = T1 + t, lo = window && pos >= window ? pos - window + 1 : 0, n = pos + 1 - lo;
        for (int h = 0; h < NH; h++) {
            const int kh = h / (NH / NKV);
            float qh[HD];
            for (int e = 0; e < HD; e++) qh[e] = f16r(q[(t * NH + h) * HD + e] * q_scale);
            for (int j = 0; j < n; j++) {
                float d = 0;
                for (int e = 0; e < HD; e++) d += qh[e] * kc[(lo + j) * KVD + kh * HD + e];
                if (softcap > 0) d = tanhf(d / softcap) * softcap;
                s[j] = d * scale;
            }
            fr_softmax(s, n);
            for (int e = 0; e < HD; e++) {
                float acc = 0;
                for (int j = 0; j < n; j++) acc += f16r(s[j]) * vc[(lo + j) * KVD + kh * HD + e];
                want[(t * NH + h) * HD + e] = acc;
            }
        }
    }
    fr_vk_buf *bk1 = buf_from(k1, sizeof k1), *bv1 = buf_from(v1, sizeof v1), *bf2 = buf_from(f2, sizeof f2);
    fr_vk_buf *bp1 = buf_from(p1, sizeof p1), *bp2 = buf_from(p2, sizeof p2), *bq = buf_from(q, sizeof q);
    fr_vk_buf *bkc = buf_from(NULL, NCTX * KVD * 2), *bvc = buf_from(NULL, NCTX * KVD * 2);
    fr_vk_buf *bo = buf_from(NULL, sizeof got);
    int rc = fr_vk_kv_store(vk, bk1, 0, bv1, 0, KVD, T1, KVD, bp1, bkc, bvc, NULL);
    rc = rc ? rc : fr_vk_run(vk, NULL);
    rc = rc ? rc : fr_vk_kv_store(vk, bf2, 0, bf2, KVD, STRIDE, T2, KVD, bp2, bkc, bvc, NULL);
    rc = rc ? rc : fr_vk_attn_kv16(vk, bq, 0, NH * HD, T2, bkc, bvc, bp2, NH, NKV, HD, window, q_scale, scale, softcap,
                                   bo, 0, NH * HD, NULL);
    rc = rc ? rc : fr_vk_download(vk, bo, 0, got, sizeof got, NULL);
    CHECK(rc == 0);
    char what[160];
    snprintf(what, sizeof what, "attention over the F16 cache (softcap %g, window %d, q_scale %g)", softcap, window,
             q_scale);
    close_all(what, got, want, T2 * NH * HD, max_abs(want, T2 * NH * HD), 2e-3f, 0);
    fr_vk_buf *all[] = {bk1, bv1, bf2, bp1, bp2, bq, bkc, bvc, bo};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) fr_vk_buf_free(vk, all[i]);
    frugal_error err = {0}; /* a head size the shader cannot hold: a clear error */
    CHECK(fr_vk_attn_kv16(vk, bq, 0, 0, 1, bq, bq, bq, 2, 2, 258, 0, 1, 1, 0, bq, 0, 0, &err) == FRUGAL_E_INVALID_ARG);
}

/* accounting, budget, bad requests: clear errors, nothing leaks */
static void test_runtime(void) {
    const uint64_t before = fr_vk_mem_current(vk);
    fr_vk_buf *b = NULL;
    CHECK(fr_vk_buf_new(vk, 1000, &b, NULL) == 0);
    CHECK(fr_vk_mem_current(vk) == before + 1000);
    CHECK(fr_vk_mem_peak(vk) >= before + 1000);
    char tmp[16];
    frugal_error err = {0};
    CHECK(fr_vk_download(vk, b, 990, tmp, 16, &err) == FRUGAL_E_INVALID_ARG);
    CHECK(strstr(err.message, "past") != NULL);
    fr_err_clear(&err);
    CHECK(fr_vk_dispatch(vk, "no_such_shader", 1, &b, NULL, 0, 1, 1, 1, &err) == FRUGAL_E_INTERNAL);
    CHECK(strstr(err.message, "no_such_shader") != NULL);
    fr_vk_buf_free(vk, b);
    CHECK(fr_vk_mem_current(vk) == before);
    fr_vk_set_budget(vk, before + 4096);
    fr_err_clear(&err);
    fr_vk_buf *big = NULL;
    CHECK(fr_vk_buf_new(vk, 8192, &big, &err) == FRUGAL_E_NOMEM && big == NULL);
    CHECK(strstr(err.message, "budget") != NULL);
    fr_vk_set_budget(vk, 0);
    fr_err_clear(&err);
    CHECK(fr_vk_matmul(vk, FR_TYPE_Q2_K, b, 0, 256, 1, b, 0, 1, b, 0, &err) == FRUGAL_E_UNSUPPORTED);
}

static void run_all(void) {
    const fr_type types[6] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_Q8_0, FR_TYPE_Q4_0, FR_TYPE_Q4_K, FR_TYPE_Q6_K};
    for (int i = 0; i < 6; i++) {
        const int64_t blk = fr_type_traits_scalar(types[i])->blck_size;
        const int64_t n_in = blk == 1 ? 67 : blk == 32 ? 7 * 32 : 3 * 256; /* odd counts of blocks */
        test_matmul(types[i], n_in, 37, 1);  /* decode: matrix-vector */
        test_matmul(types[i], n_in, 37, 3);  /* small batch, still matrix-vector */
        test_matmul(types[i], n_in, 37, 37); /* prefill: tiled, partial tiles both ways */
    }
    test_norm(0);
    test_norm(1);
    for (int neox = 0; neox < 2; neox++)
        for (int yarn = 0; yarn < 2; yarn++) test_rope(neox, yarn, yarn == neox);
    test_act(FR_VK_SWIGLU);
    test_act(FR_VK_GEGLU);
    test_act(FR_VK_GELU);
    test_add_softmax();
    test_attn(0.0f);
    test_attn(30.0f);
    for (int mode = 0; mode < 3; mode++) test_round(mode);
    test_kv_attn(0.0f, 0, 1.0f);
    test_kv_attn(30.0f, 16, 0.25f); /* soft-cap, sliding window, Gemma's pre-scaled queries */
    test_runtime();
}

int main(void) {
    frugal_error err = {0};
    if (fr_vk_open(-1, &vk, &err) != 0) {
        char why[600];
        snprintf(why, sizeof why, "no Vulkan device (%s)", err.message);
        tu_skip(why);
    }
    printf("device: %s\n", fr_vk_name(vk));
    run_all();
    fr_vk_close(vk);
    /* again with every transfer through the staging buffer, as on a discrete GPU whose
     * memory the host cannot map */
    setenv("FRUGAL_VK_STAGING", "1", 1);
    CHECK(fr_vk_open(-1, &vk, &err) == 0);
    run_all();
    CHECK(fr_vk_mem_current(vk) == 0); /* every buffer given back, the staging one uncharged */
    fr_vk_close(vk);
    return tu_finish("test_vulkan_ops");
}
#endif
