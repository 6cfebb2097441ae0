/* test_quant.c - block formats, scalar conversions and reference kernels.
 *
 * What is checked:
 *  - block struct sizes equal the traits table's type_size; fr_row_size;
 *  - fp16/bf16 conversions: exhaustive f16 -> f32 -> f16 round trip, and f32 -> f16 /
 *    f32 -> bf16 on a large sweep of floats against a reference nearest-even rounding
 *    computed in double;
 *  - for every type: quantize -> dequantize error within a per-type bound (normal data,
 *    data with outliers, all-zero blocks); garbage (inf/NaN) input must not crash;
 *  - vec_dot of every weight type against sum(dequant(x) * dequant(y)) in double, with
 *    relative tolerance 1e-5 of sum|terms| (both sides see the same quantized values),
 *    for n = 1, 2 and 7 blocks, with quantized and with random-byte weight blocks;
 *  - when ../shared is present: re-quantizing the F16/F32 models' tensors with our
 *    quantizers reproduces llama-quantize's bytes (Q8_0, Q4_0, Q6_K, Q4_K). */
#include "kernels/dispatch.h"
#include "testutil.h"

#include "core/quant.h"
#include "core/types.h"
#include "gguf/gguf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 0x5eed1234abcdULL;

static const fr_type k_quant_types[] = {
    FR_TYPE_Q4_0, FR_TYPE_Q4_1, FR_TYPE_Q5_0, FR_TYPE_Q5_1, FR_TYPE_Q8_0,
    FR_TYPE_Q8_1, FR_TYPE_Q4_K, FR_TYPE_Q5_K, FR_TYPE_Q6_K, FR_TYPE_Q8_K,
};
static const fr_type k_weight_types[] = {
    FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_BF16, FR_TYPE_Q4_0, FR_TYPE_Q4_1, FR_TYPE_Q5_0,
    FR_TYPE_Q5_1, FR_TYPE_Q8_0, FR_TYPE_Q4_K, FR_TYPE_Q5_K, FR_TYPE_Q6_K,
};
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------------ sizes */

static void test_sizes(void) {
    struct { fr_type t; size_t sz; } s[] = {
        {FR_TYPE_Q4_0, sizeof(fr_block_q4_0)}, {FR_TYPE_Q4_1, sizeof(fr_block_q4_1)},
        {FR_TYPE_Q5_0, sizeof(fr_block_q5_0)}, {FR_TYPE_Q5_1, sizeof(fr_block_q5_1)},
        {FR_TYPE_Q8_0, sizeof(fr_block_q8_0)}, {FR_TYPE_Q8_1, sizeof(fr_block_q8_1)},
        {FR_TYPE_Q4_K, sizeof(fr_block_q4_k)}, {FR_TYPE_Q5_K, sizeof(fr_block_q5_k)},
        {FR_TYPE_Q6_K, sizeof(fr_block_q6_k)}, {FR_TYPE_Q8_K, sizeof(fr_block_q8_k)},
    };
    for (size_t i = 0; i < N_ELEMS(s); i++) {
        const fr_type_traits *tr = fr_type_traits_get(s[i].t);
        CHECK(tr != NULL);
        if (!tr) continue;
        CHECKF(tr->type_size == s[i].sz, "%s: table %zu, struct %zu", tr->name, tr->type_size, s[i].sz);
        CHECK(tr->blck_size == (s[i].t >= FR_TYPE_Q2_K ? FR_QK_K : FR_QK));
        CHECK(tr->from_float != NULL);
    }
    for (size_t i = 0; i < N_ELEMS(k_weight_types); i++) {
        const fr_type_traits *tr = fr_type_traits_get(k_weight_types[i]);
        CHECK(tr && tr->to_float && tr->vec_dot && tr->from_float);
        if (tr) CHECK(fr_type_traits_get(tr->vec_dot_type)->from_float != NULL);
    }
    CHECK(fr_row_size(FR_TYPE_Q4_0, 64) == 36);
    CHECK(fr_row_size(FR_TYPE_Q8_0, 4096) == 128 * 34);
    CHECK(fr_row_size(FR_TYPE_Q4_K, 512) == 288);
    CHECK(fr_row_size(FR_TYPE_Q6_K, 256) == 210);
    CHECK(fr_row_size(FR_TYPE_Q4_K, 100) == 0); /* not a multiple of the block */
    CHECK(fr_row_size(FR_TYPE_F16, 7) == 14);
}

/* ------------------------------------------------------------------ f16 / bf16 */

static double f16_value(uint16_t h) { /* exact, for finite h */
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    double v = e == 0 ? ldexp(m, -24) : ldexp(1024 + m, e - 25);
    return (h & 0x8000) ? -v : v;
}

/* values of the finite non-negative halves 0..0x7bff, increasing; filled once */
static double g_f16_tab[0x7c00];

static void init_f16_tab(void) {
    for (uint32_t h = 0; h < 0x7c00; h++) g_f16_tab[h] = f16_value((uint16_t)h);
}

static float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* Reference f32 -> f16: bracket |f| between adjacent halves and pick the nearer, ties
 * to the even one; the half above 65504 is inf, treated as 65536 for the comparison
 * (that is exactly IEEE's overflow threshold). */
static uint16_t ref_f32_to_f16(float f) {
    uint16_t sign = signbit(f) ? 0x8000 : 0;
    double a = fabs((double)f);
    if (isnan(f)) return 0x7e00;
    uint16_t lo = 0, hi = 0x7c00; /* find largest finite h with value <= a */
    while (hi - lo > 1) {
        uint16_t mid = (uint16_t)((lo + hi) / 2);
        if (g_f16_tab[mid] <= a) lo = mid; else hi = mid;
    }
    if (g_f16_tab[lo] == a) return sign | lo;
    double vlo = g_f16_tab[lo], vhi = lo + 1 == 0x7c00 ? 65536.0 : g_f16_tab[lo + 1];
    if (a >= 65536.0) return sign | 0x7c00;
    double dlo = a - vlo, dhi = vhi - a;
    uint16_t r = (dlo < dhi || (dlo == dhi && !(lo & 1))) ? lo : (uint16_t)(lo + 1);
    return sign | r;
}

static uint16_t ref_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if (isnan(f)) return 0x7fc0;
    uint16_t lo = (uint16_t)(u >> 16) & 0x7fff, sign = (uint16_t)((u >> 16) & 0x8000);
    double a = fabs((double)f), vlo = fabs((double)bits_f32((uint32_t)lo << 16));
    if (vlo == a) return sign | lo;
    double vhi = lo + 1 == 0x7f80 ? ldexp(1.0, 128) : (double)bits_f32((uint32_t)(lo + 1) << 16);
    double dlo = a - vlo, dhi = vhi - a;
    return sign | ((dlo < dhi || (dlo == dhi && !(lo & 1))) ? lo : (uint16_t)(lo + 1));
}

static void check_f32_conv(float f, int *bad16, int *badbf) {
    uint16_t h = fr_f32_to_f16(f), rh = ref_f32_to_f16(f);
    bool ok16 = isnan(f) ? ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) : h == rh;
    if (!ok16 && (*bad16)++ < 5) fprintf(stderr, "f16(%a): got %04x want %04x\n", (double)f, h, rh);
    uint16_t b = fr_f32_to_bf16(f), rb = ref_f32_to_bf16(f);
    bool okb = isnan(f) ? isnan(fr_bf16_to_f32(b)) : b == rb;
    if (!okb && (*badbf)++ < 5) fprintf(stderr, "bf16(%a): got %04x want %04x\n", (double)f, b, rb);
}

static void test_half_conversions(void) {
    init_f16_tab();
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fr_f16_to_f32((uint16_t)h);
        bool is_nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
        if (is_nan) {
            if (!isnan(f) || !isnan(fr_f16_to_f32(fr_f32_to_f16(f)))) bad++;
            continue;
        }
        bool is_inf = ((h >> 10) & 0x1f) == 0x1f;
        if (!is_inf && (double)f != f16_value((uint16_t)h)) bad++;
        if (is_inf && !(isinf(f) && (signbit(f) != 0) == ((h & 0x8000) != 0))) bad++;
        if (fr_f32_to_f16(f) != h) bad++;
        /* bf16 round trip through f32 is the identity on the top 16 bits */
        float g = fr_bf16_to_f32((uint16_t)h);
        if (!isnan(g) && fr_f32_to_bf16(g) != h) bad++;
        if (isnan(g) && !isnan(fr_bf16_to_f32(fr_f32_to_bf16(g)))) bad++;
    }
    CHECKF(bad == 0, "%d half/bf16 round-trip failures", bad);

    int bad16 = 0, badbf = 0;
    /* a stride through all 2^32 patterns (hits every exponent, subnormals, inf, nan) */
    for (uint64_t u = 0; u < (1ull << 32); u += 2039) check_f32_conv(bits_f32((uint32_t)u), &bad16, &badbf);
    /* dense around interesting spots: f16 subnormal/normal boundary, overflow, ties */
    const float spots[] = {6.103515625e-05f, 5.9604644775390625e-08f, 65504.0f, 65520.0f, 1.0f,
                           2.9802322387695312e-08f, 3.0e-08f, 1024.5f};
    for (size_t i = 0; i < N_ELEMS(spots); i++) {
        uint32_t c = f32_bits(spots[i]);
        for (uint32_t d = 0; d < 20000; d++) {
            check_f32_conv(bits_f32(c + d - 10000), &bad16, &badbf);
            check_f32_conv(-bits_f32(c + d - 10000), &bad16, &badbf);
        }
    }
    /* every exact midpoint between adjacent finite halves must round to even */
    for (uint16_t h = 0; h < 0x7bff; h++) {
        float mid = (float)((f16_value(h) + f16_value((uint16_t)(h + 1))) / 2);
        check_f32_conv(mid, &bad16, &badbf);
    }
    CHECKF(bad16 == 0, "%d f32->f16 mismatches", bad16);
    CHECKF(badbf == 0, "%d f32->bf16 mismatches", badbf);
}

/* ------------------------------------------------------------------ data */

enum { DATA_NORMAL, DATA_OUTLIERS, DATA_ZERO, DATA_POSITIVE };

static void gen(float *x, int n, int kind) {
    for (int i = 0; i < n; i++) {
        switch (kind) {
        case DATA_NORMAL: x[i] = tu_rand_normal(&g_rng) * 0.05f; break;
        case DATA_OUTLIERS:
            x[i] = tu_rand_normal(&g_rng) * 0.02f;
            if (tu_rand_u64(&g_rng) % 37 == 0) x[i] *= 60.0f;
            break;
        case DATA_ZERO: x[i] = 0.0f; break;
        default: x[i] = 1.0f + tu_rand_uniform(&g_rng) * 3.0f; break; /* offset: tests mins */
        }
    }
}

static const fr_type_traits *tr_of(fr_type t) { return fr_type_traits_get(t); }

/* ------------------------------------------------------------------ round trips
 * Per-value bounds for the legacy and Q8 formats follow from their definitions
 * (scale d; rounding error d/2; the extra d for the values Q4_0/Q5_0 clamp at the
 * top level; plus the fp16 rounding of d and m: |q| * d * 2^-11 + |m| * 2^-11).
 * K-quants fit scales by least squares, so they get an RMS bound relative to the
 * data's RMS instead (about 1.5x what uniform quantization at that width gives). */

static double block_bound(fr_type t, const float *x, int j, int bs) {
    float amax = 0, mx = -INFINITY, mn = INFINITY, max = 0;
    for (int i = 0; i < bs; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
        if (x[i] > mx) mx = x[i];
        if (x[i] < mn) mn = x[i];
    }
    if (!(mx >= mn)) mx = mn = 0;
    const double e16 = 1.0 / 2048;
    switch (t) {
    case FR_TYPE_Q8_0: case FR_TYPE_Q8_1: { double d = amax / 127.0; return d * (0.5 + 127 * e16) + 1e-12; }
    case FR_TYPE_Q8_K: { double d = amax / 127.0; return d * 0.5 * (1 + 1e-5) + 1e-12; }
    case FR_TYPE_Q4_0: case FR_TYPE_Q5_0: {
        double lv = t == FR_TYPE_Q4_0 ? 8 : 16, d = amax / lv;
        double xi = max != 0 ? x[j] / (max / -lv) : 0; /* the value in units of d */
        return d * ((xi > lv - 0.6 ? 1.0 : 0.5) + lv * e16) + 1e-12;
    }
    case FR_TYPE_Q4_1: case FR_TYPE_Q5_1: {
        double lv = t == FR_TYPE_Q4_1 ? 15 : 31, d = (mx - mn) / lv;
        return d * (0.5 + lv * e16) + fabs(mn) * e16 + 1e-12;
    }
    default: return INFINITY;
    }
}

static double rms_bound(fr_type t) {
    switch (t) {
    case FR_TYPE_Q4_K: return 0.11;
    case FR_TYPE_Q5_K: return 0.075;
    case FR_TYPE_Q6_K: return 0.045;
    default: return INFINITY;
    }
}

static void test_roundtrip(fr_type t) {
    const fr_type_traits *tr = tr_of(t);
    const int bs = tr->blck_size, nb = 24, n = bs * nb;
    float *x = tu_malloc(sizeof(float) * n), *y = tu_malloc(sizeof(float) * n);
    uint8_t *q = tu_malloc(tr->type_size * nb);
    for (int kind = DATA_NORMAL; kind <= DATA_POSITIVE; kind++) {
        gen(x, n, kind);
        if (kind == DATA_NORMAL) memset(x + bs, 0, sizeof(float) * bs); /* one zero block */
        tr->from_float(x, q, n);
        tr->to_float(q, y, n);
        int bad = 0;
        double se = 0, sx = 0;
        for (int b = 0; b < nb; b++) {
            const float *xb = x + b * bs, *yb = y + b * bs;
            for (int j = 0; j < bs; j++) {
                double err = fabs((double)xb[j] - yb[j]);
                se += err * err;
                sx += (double)xb[j] * xb[j];
                double bound = block_bound(t, xb, j, bs);
                if (!(err <= bound) && bad++ < 3)
                    fprintf(stderr, "%s kind %d block %d [%d]: x=%g y=%g err=%g bound=%g\n",
                            tr->name, kind, b, j, xb[j], yb[j], err, bound);
            }
        }
        CHECKF(bad == 0, "%s kind %d: %d values over their bound", tr->name, kind, bad);
        if (kind == DATA_ZERO) {
            CHECKF(se == 0, "%s: zero input must dequantize to exact zeros", tr->name);
        } else if (rms_bound(t) < INFINITY) {
            double rel = sqrt(se / sx);
            if (getenv("QUANT_VERBOSE")) printf("%s kind %d rms rel %.4f\n", tr->name, kind, rel);
            CHECKF(rel <= rms_bound(t), "%s kind %d: rms rel error %.4f > %.4f", tr->name, kind, rel, rms_bound(t));
        }
    }
    /* Q8_1's s and Q8_K's bsums must agree with the quants they summarize */
    gen(x, n, DATA_NORMAL);
    tr->from_float(x, q, n);
    if (t == FR_TYPE_Q8_1) {
        const fr_block_q8_1 *b = (const fr_block_q8_1 *)q;
        for (int i = 0; i < nb; i++) {
            int sum = 0;
            for (int j = 0; j < FR_QK; j++) sum += b[i].qs[j];
            double want = sum * fr_f16_to_f32(b[i].d), got = fr_f16_to_f32(b[i].s);
            CHECKF(fabs(got - want) <= fabs(want) * 2.0 / 1024 + 1e-6, "q8_1 s %g vs %g", got, want);
        }
    }
    if (t == FR_TYPE_Q8_K) {
        const fr_block_q8_k *b = (const fr_block_q8_k *)q;
        int bad = 0;
        for (int i = 0; i < nb; i++)
            for (int g = 0; g < FR_QK_K / 16; g++) {
                int sum = 0;
                for (int j = 0; j < 16; j++) sum += b[i].qs[g * 16 + j];
                bad += sum != b[i].bsums[g];
            }
        CHECK(bad == 0);
    }
    /* garbage in: must not crash or trip the sanitizers; output content is unspecified */
    for (int i = 0; i < n; i++) x[i] = (i % 3 == 0) ? NAN : (i % 3 == 1) ? INFINITY : -1e38f;
    tr->from_float(x, q, n);
    tr->to_float(q, y, n);
    for (int i = 0; i < n; i++) x[i] = (i % 2) ? 1e30f : -3e-39f;
    tr->from_float(x, q, n);
    free(x); free(y); free(q);
}

static void test_float_roundtrip(void) {
    float x[300], y[300];
    uint16_t h[300];
    gen(x, 300, DATA_OUTLIERS);
    fr_from_float_f16(x, h, 300);
    fr_to_float_f16(h, y, 300);
    int bad = 0;
    for (int i = 0; i < 300; i++) bad += !(fabsf(x[i] - y[i]) <= fabsf(x[i]) / 2048 + 3e-8f);
    CHECK(bad == 0);
    fr_from_float_bf16(x, h, 300);
    fr_to_float_bf16(h, y, 300);
    for (int i = 0; i < 300; i++) bad += !(fabsf(x[i] - y[i]) <= fabsf(x[i]) / 256);
    CHECK(bad == 0);
    fr_from_float_f32(x, y, 300);
    CHECK(memcmp(x, y, sizeof(x)) == 0);
}

/* ------------------------------------------------------------------ vec_dot */

/* Fill n values of type t with random bytes, then overwrite every fp16 scale field
 * with a sane value, so all bit patterns of quants and packed scales are exercised. */
static void random_blocks(fr_type t, void *dst, int n) {
    const fr_type_traits *tr = tr_of(t);
    const int nb = n / tr->blck_size;
    uint8_t *p = dst;
    for (size_t i = 0; i < (size_t)nb * tr->type_size; i++) p[i] = (uint8_t)tu_rand_u64(&g_rng);
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = p + (size_t)b * tr->type_size;
        uint16_t d = fr_f32_to_f16(0.001f + 0.01f * tu_rand_uniform(&g_rng));
        uint16_t m = fr_f32_to_f16(0.02f * (tu_rand_uniform(&g_rng) - 0.5f));
        switch (t) {
        case FR_TYPE_Q6_K: memcpy(blk + 208, &d, 2); break;
        case FR_TYPE_Q4_K: case FR_TYPE_Q5_K: case FR_TYPE_Q4_1: case FR_TYPE_Q5_1:
            memcpy(blk, &d, 2);
            m = fr_f32_to_f16(fabsf(fr_f16_to_f32(m)));
            memcpy(blk + 2, &m, 2);
            break;
        default: memcpy(blk, &d, 2); break;
        }
    }
}

/* Reference: sum of products of the dequantized vectors, in double. For Q8_1
 * activations the kernel uses the stored s (fp16 of d*sum q) in the min term, which
 * dequantized values do not carry: add that documented difference m * (s - d*sum q). */
static void dot_reference(fr_type t, const void *xq, const void *yq, int n, double *ref, double *mag) {
    const fr_type_traits *tr = tr_of(t), *ty = tr_of(tr->vec_dot_type);
    float *xd = tu_malloc(sizeof(float) * n), *yd = tu_malloc(sizeof(float) * n);
    tr->to_float(xq, xd, n);
    ty->to_float(yq, yd, n);
    double s = 0, a = 0;
    for (int i = 0; i < n; i++) {
        s += (double)xd[i] * yd[i];
        a += fabs((double)xd[i] * yd[i]);
    }
    if (tr->vec_dot_type == FR_TYPE_Q8_1) {
        for (int b = 0; b < n / FR_QK; b++) {
            const fr_block_q8_1 *yb = (const fr_block_q8_1 *)yq + b;
            const uint16_t *xm = (const uint16_t *)((const uint8_t *)xq + (size_t)b * tr->type_size) + 1;
            int sum = 0;
            for (int j = 0; j < FR_QK; j++) sum += yb->qs[j];
            double m = fr_f16_to_f32(*xm);
            double corr = m * (fr_f16_to_f32(yb->s) - (double)fr_f16_to_f32(yb->d) * sum);
            s += corr;
            a += fabs(m * fr_f16_to_f32(yb->s));
        }
    }
    *ref = s;
    *mag = a;
    free(xd); free(yd);
}

static void test_vec_dot(fr_type t) {
    const fr_type_traits *tr = tr_of(t), *ty = tr_of(tr->vec_dot_type);
    const int bs = tr->blck_size == 1 ? FR_QK : tr->blck_size;
    const int nblocks[] = {1, 2, 7};
    for (size_t k = 0; k < N_ELEMS(nblocks); k++) {
        const int n = bs * nblocks[k];
        for (int variant = 0; variant < 3; variant++) {
            float *x = tu_malloc(sizeof(float) * n), *y = tu_malloc(sizeof(float) * n);
            void *xq = tu_malloc(fr_row_size(t, n)), *yq = tu_malloc(fr_row_size(tr->vec_dot_type, n));
            gen(x, n, variant == 1 ? DATA_OUTLIERS : DATA_NORMAL);
            gen(y, n, variant == 2 ? DATA_POSITIVE : DATA_OUTLIERS);
            if (variant == 2 && tr->blck_size > 1) random_blocks(t, xq, n);
            else tr->from_float(x, xq, n);
            ty->from_float(y, yq, n);
            float got = NAN;
            tr->vec_dot(n, &got, xq, yq);
            double ref, mag;
            dot_reference(t, xq, yq, n, &ref, &mag);
            const double tol = 1e-5 * mag + 1e-30;
            CHECKF(fabs(got - ref) <= tol, "%s n=%d variant %d: got %.9g ref %.9g (tol %.3g)",
                   tr->name, n, variant, got, ref, tol);
            free(x); free(y); free(xq); free(yq);
        }
    }
}

/* ------------------------------------------------------------------ vs llama-quantize */

typedef struct {
    int tensors, same_tensors;
    long blocks, diff_blocks;
} cmp_stats;

/* Re-quantize every tensor of `dst` whose type we can write, from the same-named F16/F32
 * tensor of `src`, and compare bytes. Stats per destination type. Returns false when
 * a file cannot be opened. */
static bool compare_model(const char *src_rel, const char *dst_rel, cmp_stats st[FR_TYPE_COUNT]) {
    const char *sp = tu_shared(src_rel), *dp = tu_shared(dst_rel);
    if (!sp || !dp) return false;
    gguf_file *fs = NULL, *fd = NULL;
    fr_err err = {0};
    if (gguf_open(sp, &fs, &err) != FRUGAL_OK || gguf_open(dp, &fd, &err) != FRUGAL_OK) {
        CHECKF(0, "cannot open %s / %s", sp, dp);
        gguf_close(fs);
        return false;
    }
    int n_cmp = 0;
    long n_diff = 0;
    for (uint64_t i = 0; i < fd->n_tensors; i++) {
        const gguf_tensor *td = &fd->tensors[i];
        const fr_type_traits *tt = fr_type_traits_get(td->type);
        if (!tt || td->type == FR_TYPE_F32 || td->type == FR_TYPE_F16 || !tt->from_float) continue;
        char name[256];
        size_t nl = td->name.len < sizeof(name) - 1 ? (size_t)td->name.len : sizeof(name) - 1;
        memcpy(name, td->name.ptr, nl);
        name[nl] = 0;
        const gguf_tensor *ts = gguf_find_tensor(fs, name);
        if (!ts || (ts->type != FR_TYPE_F16 && ts->type != FR_TYPE_F32)) continue;
        int64_t n = 1, rows = 1;
        for (int d = 1; d < 4; d++) rows *= ts->ne[d];
        if (memcmp(ts->ne, td->ne, sizeof(ts->ne)) != 0) {
            CHECKF(0, "%s: shapes differ between %s and %s", name, src_rel, dst_rel);
            continue;
        }
        /* rows quantize independently, so a prefix is a fair sample; the big
         * embedding matrices take many seconds under the sanitizers otherwise.
         * FRUGAL_QUANT_FULL=1 compares every row. */
        if (rows > 2048 && !getenv("FRUGAL_QUANT_FULL")) rows = 2048;
        n = ts->ne[0] * rows;
        float *f = tu_malloc(sizeof(float) * (size_t)n);
        const size_t qbytes = fr_row_size((fr_type)td->type, n);
        CHECK(qbytes > 0 && qbytes <= td->nbytes);
        if (!(qbytes > 0 && qbytes <= td->nbytes)) continue;
        uint8_t *q = tu_malloc(qbytes ? qbytes : 1);
        if (!f || !q) { free(f); free(q); CHECK(0); continue; }
        tr_of((fr_type)ts->type)->to_float(ts->data, f, n);
        tt->from_float(f, q, n);
        const size_t bsz = tt->type_size;
        long nb = (long)(qbytes / bsz), diff = 0;
        for (long b = 0; b < nb; b++) diff += memcmp(q + b * bsz, (const uint8_t *)td->data + b * bsz, bsz) != 0;
        cmp_stats *s = &st[td->type];
        s->tensors++;
        s->same_tensors += diff == 0;
        s->blocks += nb;
        s->diff_blocks += diff;
        n_cmp++;
        n_diff += diff;
        if (diff) printf("  %s %s: %ld of %ld blocks differ\n", dst_rel, name, diff, nb);
        free(f); free(q);
    }
    printf("%s: %d tensors re-quantized from %s, %ld blocks differ\n", dst_rel, n_cmp, src_rel, n_diff);
    gguf_close(fs);
    gguf_close(fd);
    return true;
}

static void test_against_llama_quantize(void) {
    static const struct { const char *src, *dst; } pairs[] = {
        {"models/synth-spm-f16.gguf", "models/synth-spm-q8_0.gguf"},
        {"models/synth-spm-f16.gguf", "models/synth-spm-q4_0.gguf"},
        {"models/synth-spm-f16.gguf", "models/synth-spm-q4_k_m.gguf"},
        {"models/fortune-3m-f32.gguf", "models/fortune-3m-q8_0.gguf"},
        {"models/fortune-3m-f32.gguf", "models/fortune-3m-q4_0.gguf"},
        {"models/fortune-3m-f32.gguf", "models/fortune-3m-q4_k_m.gguf"},
        {"models/tinystories-xs-f32.gguf", "models/tinystories-xs-q8_0.gguf"},
        {"models/tinystories-xs-f32.gguf", "models/tinystories-xs-q4_0.gguf"},
    };
    cmp_stats st[FR_TYPE_COUNT];
    memset(st, 0, sizeof(st));
    int done = 0;
    for (size_t i = 0; i < N_ELEMS(pairs); i++) done += compare_model(pairs[i].src, pairs[i].dst, st);
    if (!done) {
        printf("SKIP (part): no shared models, re-quantization comparison not run\n");
        return;
    }
    for (int t = 0; t < FR_TYPE_COUNT; t++) {
        if (!st[t].tensors) continue;
        printf("re-quantized %-5s: %d tensors, %d identical; %ld of %ld blocks differ\n",
               fr_type_name((uint32_t)t), st[t].tensors, st[t].same_tensors, st[t].diff_blocks, st[t].blocks);
        CHECKF(st[t].diff_blocks == 0, "%s: our quantizer differs from llama-quantize", fr_type_name((uint32_t)t));
    }
}

int main(void) {
    test_sizes();
    test_half_conversions();
    test_float_roundtrip();
    for (size_t i = 0; i < N_ELEMS(k_quant_types); i++) test_roundtrip(k_quant_types[i]);
    for (size_t i = 0; i < N_ELEMS(k_weight_types); i++) test_vec_dot(k_weight_types[i]);
    test_against_llama_quantize();
    return tu_finish("test_quant");
}
