/* test_quant_private.c - frugal's own types I8C, NF4, FP8O (core/quant_private.h):
 *  - FP8 E4M3 coding: every finite code round-trips, RNE at midpoints, saturation;
 *  - quantize -> dequantize error bounds on Gaussian and on heavy-tailed data
 *    (FP8O keeps its outliers exactly at F16 precision; I8C never errs by more than
 *    half a step of its row scale);
 *  - vec_dot (scalar, and AVX-512 when the CPU has it) against the float dot of the
 *    dequantized operands, within |err| <= 1e-5 * sum|w*y| + 1e-6;
 *  - traits: names, ids, row sizes (I8C's 2-byte row header);
 *  - the fortune model quantized to each type (needs ../shared): the GGUF reader
 *    loads tensors bit-identical to quantizing the source rows directly, inspect
 *    flags the file as frugal-only, and the model runs with finite logits close to
 *    the F32 model's. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "core/quant_private.h"
#include "frugal.h"
#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "testutil.h"

static const fr_type k_types[] = {FR_TYPE_I8C, FR_TYPE_NF4, FR_TYPE_FP8O};

static void test_fp8(void) {
    int bad = 0;
    for (int c = 0; c < 256; c++) {
        if ((c & 0x7f) == 0x7f) continue; /* NaN codes */
        float v = fr_fp8_e4m3_to_f32((uint8_t)c);
        uint8_t back = fr_fp8_e4m3_from_f32(v);
        if (back != c && !(c == 0x80 && back == 0x80)) bad++;
        if (c > 0 && c < 0x7e && !(fr_fp8_e4m3_to_f32((uint8_t)(c + 1)) > v)) bad++; /* monotone */
    }
    CHECKF(bad == 0, "%d fp8 codes do not round-trip or are not monotone", bad);
    CHECK(fr_fp8_e4m3_to_f32(0x7e) == 448.0f);
    CHECK(fr_fp8_e4m3_to_f32(0x01) == ldexpf(1.0f, -9)); /* smallest subnormal */
    CHECK(fr_fp8_e4m3_to_f32(0x08) == ldexpf(1.0f, -6)); /* smallest normal */
    CHECK(fr_fp8_e4m3_from_f32(1.0625f) == fr_fp8_e4m3_from_f32(1.0f));  /* tie -> even mantissa */
    CHECK(fr_fp8_e4m3_from_f32(1.1875f) == fr_fp8_e4m3_from_f32(1.25f)); /* tie -> even mantissa */
    CHECK(fr_fp8_e4m3_from_f32(1e6f) == 0x7e && fr_fp8_e4m3_from_f32(-1e6f) == 0xfe);
    CHECK(fr_fp8_e4m3_from_f32(-2.0f) == (0x80 | fr_fp8_e4m3_from_f32(2.0f)));
}

/* Gaussian rows; heavy: plus one value per 128 at 20-60 sigma and a t-like tail. */
static void fill(float *x, int64_t n, int heavy, uint64_t *rng) {
    for (int64_t i = 0; i < n; i++) {
        x[i] = 0.02f * tu_rand_normal(rng);
        if (heavy && tu_rand_uniform(rng) < 0.05f) x[i] /= 0.2f + tu_rand_uniform(rng); /* heavier tail */
    }
    if (heavy)
        for (int64_t b = 0; b + 128 <= n; b += 128) {
            int64_t j = b + (int64_t)(tu_rand_u64(rng) % 128);
            x[j] = (tu_rand_uniform(rng) < 0.5f ? -1.0f : 1.0f) * 0.02f * (20.0f + 40.0f * tu_rand_uniform(rng));
        }
}

static double rel_rmse(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)a[i] * a[i];
    }
    return sqrt(num / den);
}

/* Quantize/dequantize one row of n values; checks the type's error bounds. */
static void test_roundtrip(fr_type ty, int heavy, uint64_t *rng) {
    const fr_type_traits *tr = fr_private_traits_scalar(ty);
    const int64_t n = 1024;
    float *x = tu_malloc(n * sizeof *x), *y = tu_malloc(n * sizeof *y);
    uint8_t *q = tu_malloc(fr_row_size(ty, n));
    fill(x, n, heavy, rng);
    tr->from_float(x, q, n);
    tr->to_float(q, y, n);
    double e = rel_rmse(x, y, n);
    /* bounds: ~1.5x what the formats give on these data (seeded, deterministic) */
    double lim = ty == FR_TYPE_I8C ? (heavy ? 0.06 : 0.01) : ty == FR_TYPE_NF4 ? (heavy ? 0.2 : 0.11) : 0.04;
    CHECKF(e < lim, "%s %s: relative RMS error %.4f >= %.3f", tr->name, heavy ? "heavy" : "gauss", e, lim);
    CHECKF(e > 0.0, "%s: no error at all is suspicious", tr->name);
    if (ty == FR_TYPE_I8C) { /* every value within half a step of the row scale */
        uint16_t dh;
        memcpy(&dh, q, 2);
        const float d = fr_f16_to_f32(dh);
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += fabsf(x[i] - y[i]) > 0.5f * d * 1.0001f + 1e-12f;
        CHECKF(bad == 0, "I8C: %d values off by more than d/2", bad);
    }
    if (ty == FR_TYPE_FP8O && heavy) {
        /* each block's injected outlier (|z| > 3) comes back exactly as its F16 */
        int kept = 0, blocks = (int)(n / FR_FP8O_BLOCK);
        for (int b = 0; b < blocks; b++) {
            const fr_block_fp8o *blk = (const fr_block_fp8o *)q + b;
            int big = 0;
            for (int i = 1; i < FR_FP8O_BLOCK; i++)
                if (fabsf(x[b * FR_FP8O_BLOCK + i]) > fabsf(x[b * FR_FP8O_BLOCK + big])) big = i;
            for (int k = 0; k < FR_FP8O_MAX_OUT; k++)
                if (blk->idx[k] == big) kept++;
            const float want = fr_f16_to_f32(fr_f32_to_f16(x[b * FR_FP8O_BLOCK + big]));
            CHECKF(y[b * FR_FP8O_BLOCK + big] == want, "FP8O block %d: outlier %g came back as %g", b, want,
                   y[b * FR_FP8O_BLOCK + big]);
        }
        CHECKF(kept == blocks, "FP8O: the largest value is an outlier in %d of %d blocks", kept, blocks);
        /* inliers keep fp8 precision: the outliers did not blow up the scale */
        double num = 0, den = 0;
        for (int64_t i = 0; i < n; i++) {
            if (fabsf(x[i]) > 0.3f) continue;
            num += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            den += (double)x[i] * x[i];
        }
        CHECKF(sqrt(num / den) < 0.05, "FP8O inliers: relative RMS error %.4f", sqrt(num / den));
    }
    free(x);
    free(y);
    free(q);
}

/* vec_dot of one type at n values against the float dot of dequantized operands. */
static void test_dot(const fr_type_traits *tr, fr_type ty, int n, int heavy, uint64_t *rng, const char *what) {
    float *x = tu_malloc((size_t)n * sizeof *x), *w = tu_malloc((size_t)n * sizeof *w);
    float *a = tu_malloc((size_t)n * sizeof *a), *ad = tu_malloc((size_t)n * sizeof *ad);
    uint8_t *q = tu_malloc(fr_row_size(ty, n)), *aq = tu_malloc((size_t)n * 4 + 64);
    fill(x, n, heavy, rng);
    for (int i = 0; i < n; i++) a[i] = tu_rand_normal(rng);
    tr->from_float(x, q, n);
    tr->to_float(q, w, n);
    const void *act = a;
    memcpy(ad, a, (size_t)n * sizeof *a);
    if (tr->vec_dot_type == FR_TYPE_Q8_0) { /* the activation as the matmul gives it */
        const fr_type_traits *vt = fr_type_traits_scalar(FR_TYPE_Q8_0);
        vt->act_from_float(a, aq, n);
        vt->to_float(aq, ad, n);
        act = aq;
    }
    double ref = 0, mag = 0;
    for (int i = 0; i < n; i++) {
        ref += (double)w[i] * ad[i];
        mag += fabs((double)w[i] * ad[i]);
    }
    float got = NAN;
    tr->vec_dot(n, &got, q, act);
    CHECKF(fabs(got - ref) <= 1e-5 * mag + 1e-6, "%s %s n=%d: dot %.9g vs %.9g (|w*y| %.3g)", what, tr->name, n,
           got, ref, mag);
    free(x); free(w); free(a); free(ad); free(q); free(aq);
}

static void test_traits(void) {
    CHECK(fr_type_traits_get(FR_TYPE_I8C) && strcmp(fr_type_name(FR_TYPE_I8C), "I8C") == 0);
    CHECK(fr_type_traits_get(FR_TYPE_NF4) && strcmp(fr_type_name(FR_TYPE_NF4), "NF4") == 0);
    CHECK(fr_type_traits_get(FR_TYPE_FP8O) && strcmp(fr_type_name(FR_TYPE_FP8O), "FP8O") == 0);
    CHECK(fr_type_traits_get(FR_TYPE_PRIVATE_END) == NULL && fr_type_name(FR_TYPE_PRIVATE_END) == NULL);
    CHECK(fr_type_traits_get(1023) == NULL && fr_type_traits_get(40) == NULL);
    CHECK(fr_row_size(FR_TYPE_I8C, 256) == 258);
    CHECK(fr_row_size(FR_TYPE_I8C, 100) == 0); /* not a multiple of 32 */
    CHECK(fr_row_size(FR_TYPE_NF4, 768) == 3 * 134);
    CHECK(fr_row_size(FR_TYPE_FP8O, 256) == 2 * 142);
    CHECK(fr_row_size(FR_TYPE_Q8_0, 64) == 68); /* GGUF types unchanged */
}

static void test_kernels(uint64_t *rng) {
    const int ns[] = {256, 768, 1024, 2816};
    for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++)
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int heavy = 0; heavy < 2; heavy++)
                test_dot(fr_private_traits_scalar(k_types[t]), k_types[t], ns[k], heavy, rng, "scalar");
    int simd = 0;
#if defined(__x86_64__)
    simd = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl"); /* every AVX-512 CPU has F16C */
#endif
    if (!simd) { fprintf(stderr, "note: no AVX-512 F/BW/VL here: SIMD dots not tested\n"); return; }
    fr_type_traits tab[FR_TYPE_PRIVATE_END - FR_TYPE_PRIVATE_BASE];
    for (int i = 0; i < FR_TYPE_PRIVATE_END - FR_TYPE_PRIVATE_BASE; i++)
        tab[i] = *fr_private_traits_scalar(FR_TYPE_PRIVATE_BASE + (uint32_t)i);
    if (!fr_private_install_avx512(tab)) { fprintf(stderr, "note: built without AVX-512\n"); return; }
    for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++) {
        const fr_type_traits *st = &tab[k_types[t] - FR_TYPE_PRIVATE_BASE];
        CHECK(st->vec_dot != fr_private_traits_scalar(k_types[t])->vec_dot);
        for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
            for (int heavy = 0; heavy < 2; heavy++) test_dot(st, k_types[t], ns[k], heavy, rng, "avx512");
    }
    /* I8C with an odd number of 32-blocks (the kernel's 2-block loop has a tail) */
    test_dot(&tab[FR_TYPE_I8C - FR_TYPE_PRIVATE_BASE], FR_TYPE_I8C, 96, 0, rng, "avx512");
    /* the active table switches with the kernel level */
    int saved = fr_kernels_get_level();
    CHECK(fr_kernels_set_level(FR_KERNELS_SCALAR) == 0);
    CHECK(fr_type_traits_get(FR_TYPE_NF4)->vec_dot == fr_vec_dot_nf4);
    if (fr_kernels_set_level(FR_KERNELS_AVX2) == 0)
        CHECK(fr_type_traits_get(FR_TYPE_NF4)->vec_dot == tab[FR_TYPE_NF4 - FR_TYPE_PRIVATE_BASE].vec_dot);
    fr_kernels_set_level(saved);
}

/* Logits of the first 8 tokens of a fixed text (last position), n_vocab values. */
static float *run_logits(const char *path, int *n_vocab) {
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    frugal_model *m = NULL;
    if (frugal_model_load(path, &mp, &m, &err) != FRUGAL_OK) {
        fprintf(stderr, "%s: %s\n", path, err.message);
        return NULL;
    }
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 64;
    frugal_context *c = NULL;
    float *out = NULL;
    int32_t toks[16];
    int nt = frugal_tokenize(m, "The meaning of life is", 22, 1, 0, toks, 16);
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    if (nt > 0 && frugal_context_new(m, &cp, &c, &err) == FRUGAL_OK && frugal_eval(c, toks, nt, 0, &err) == FRUGAL_OK) {
        const float *l = frugal_get_logits(c, -1);
        *n_vocab = info.n_vocab;
        out = tu_malloc((size_t)info.n_vocab * sizeof *out);
        if (l && out) memcpy(out, l, (size_t)info.n_vocab * sizeof *out);
        else { free(out); out = NULL; }
    }
    frugal_context_free(c);
    frugal_model_free(m);
    return out;
}

static void test_model(void) {
    const char *src = tu_shared("models/fortune-3m-f32.gguf");
    if (!src) { fprintf(stderr, "note: ../shared absent: model round trip skipped\n"); return; }
    int nv0 = 0;
    float *base = run_logits(src, &nv0);
    CHECK(base != NULL);
    const char *names[] = {"i8c", "nf4", "fp8o"};
    for (size_t t = 0; t < 3; t++) {
        char out[512];
        snprintf(out, sizeof out, "%s/fortune-%s.gguf", tu_tmpdir(), names[t]);
        frugal_quantize_params p;
        frugal_quantize_params_default(&p);
        p.type = names[t];
        p.n_threads = 2;
        p.log = fopen("/dev/null", "w");
        frugal_error err = FRUGAL_ERROR_INIT;
        CHECKF(frugal_quantize(src, out, &p, NULL, &err) == FRUGAL_OK, "%s: %s", names[t], err.message);
        fclose(p.log);
        gguf_file *fs = NULL, *fq = NULL;
        fr_err e2 = FRUGAL_ERROR_INIT;
        CHECK(gguf_open(src, &fs, &e2) == FRUGAL_OK);
        CHECKF(gguf_open(out, &fq, &e2) == FRUGAL_OK, "%s", e2.message);
        if (!fs || !fq) { gguf_close(fs); gguf_close(fq); continue; }
        int n_private = 0, bad = 0;
        for (uint64_t i = 0; i < fq->n_tensors; i++) { /* each tensor = its source rows quantized directly */
            const gguf_tensor *tq = &fq->tensors[i];
            if (!fr_type_is_private(tq->type)) continue;
            n_private++;
            char nm[256];
            snprintf(nm, sizeof nm, "%.*s", (int)tq->name.len, tq->name.ptr);
            const gguf_tensor *ts = gguf_find_tensor(fs, nm);
            if (!ts || ts->type != FR_TYPE_F32) { bad++; continue; }
            const fr_type_traits *tr = fr_type_traits_get(tq->type);
            size_t rs = fr_row_size((fr_type)tq->type, tq->ne[0]);
            uint8_t *row = tu_malloc(rs);
            int64_t nrows = tq->ne[1] * tq->ne[2] * tq->ne[3];
            CHECK(tq->nbytes == rs * (uint64_t)nrows);
            for (int64_t r = 0; r < nrows && row; r++) {
                tr->from_float((const float *)ts->data + r * ts->ne[0], row, tq->ne[0]);
                if (memcmp(row, (const uint8_t *)tq->data + (size_t)r * rs, rs) != 0) { bad++; break; }
            }
            free(row);
        }
        CHECKF(n_private == 29 || n_private == 30, "%s: %d frugal-only tensors", names[t], n_private);
        CHECKF(bad == 0, "%s: %d tensors differ from direct quantization", names[t], bad);
        gguf_close(fs);
        gguf_close(fq);
        /* inspect says other engines cannot read it */
        char ip[600];
        snprintf(ip, sizeof ip, "%s.inspect", out);
        FILE *fo = fopen(ip, "w");
        CHECK(fo && frugal_inspect(out, fo, &err) == FRUGAL_OK);
        if (fo) fclose(fo);
        char *txt = tu_read_file(ip, NULL);
        CHECKF(txt && strstr(txt, "frugal-only tensor types") && strstr(txt, "other engines cannot read"),
               "%s: inspect does not flag the frugal-only types", names[t]);
        free(txt);
        int nv = 0;
        float *l = run_logits(out, &nv);
        CHECKF(l && nv == nv0, "%s: model does not run", names[t]);
        if (l && base) {
            int finite = 1, am = 0, bm = 0;
            double md = 0;
            for (int i = 0; i < nv; i++) {
                finite &= isfinite(l[i]);
                md = fmax(md, fabs((double)l[i] - base[i]));
                if (l[i] > l[am]) am = i;
                if (base[i] > base[bm]) bm = i;
            }
            CHECKF(finite, "%s: non-finite logits", names[t]);
            CHECKF(md < (t == 1 ? 2.0 : 0.5), "%s: logits differ from F32 by %.3f", names[t], md);
            CHECKF(am == bm, "%s: top-1 token %d vs F32's %d", names[t], am, bm);
        }
        free(l);
        remove(out);
        remove(ip);
    }
    free(base);
}

int main(void) {
    uint64_t rng = 0x5eed1234abcdULL;
    test_fp8();
    test_traits();
    for (size_t t = 0; t < sizeof k_types / sizeof k_types[0]; t++)
        for (int heavy = 0; heavy < 2; heavy++) test_roundtrip(k_types[t], heavy, &rng);
    test_kernels(&rng);
    test_model();
    return tu_finish("test_quant_private");
}
