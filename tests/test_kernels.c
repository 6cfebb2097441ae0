/* test_kernels.c - every SIMD kernel against the scalar reference, at every dispatch
 * level this machine supports (kernels/dispatch.h).
 *
 * Dots: |level - scalar| <= 2e-5 * sum_i |x_i * y_i| + 1e-6 (x, y dequantized with
 * the scalar to_float; 2e-5, not less: where a K-quant's d*sc*q and dmin*m terms
 * cancel, the scalar reference itself is up to ~8e-6 of that sum off the exact dot -
 * measured on a Q4_K row: reference 94.9922, exact 95.0029, IL16 GEMM 95.0056 -
 * while a wrong kernel is off by 1e-2 of it and more), on normal data, data with
 * outliers, data with all-zero blocks and exact rounding ties, for ragged sizes (1, 2,
 * 7, 33 blocks).
 * Activation quantizers and F16 row conversions: bit-identical.
 * fr_matmul (n_tok 1, 2, 7, 128; through the blocked gemm kernels where a level has
 * them): 1 and 3 threads give bitwise identical output at each level, and match the
 * scalar dots within the same tolerance. IL16 GEMMs: also at the extremes of their
 * integer paths, and bitwise identical across the levels that have one. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "core/quant.h"
#include "core/types.h"
#include "kernels/dispatch.h"
#include "kernels/interleave.h"
#include "kernels/ops.h"
#include "testutil.h"

enum { DATA_NORMAL, DATA_OUTLIERS, DATA_ZERO_BLOCKS, DATA_TIES, DATA_KINDS };
static const char *const k_data_names[DATA_KINDS] = {"normal", "outliers", "zero-blocks", "ties"};

static const fr_type k_weight_types[] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_BF16, FR_TYPE_Q4_0, FR_TYPE_Q4_1,
                                         FR_TYPE_Q5_0, FR_TYPE_Q5_1, FR_TYPE_Q8_0, FR_TYPE_Q4_K, FR_TYPE_Q5_K,
                                         FR_TYPE_Q6_K};
#define N_WTYPES (int)(sizeof(k_weight_types) / sizeof(k_weight_types[0]))

/* n floats of the given kind; blk is the block size zero blocks / ties align to. */
static void gen(float *x, int n, int kind, int blk, uint64_t *rng) {
    if (blk < 32) blk = 32;
    for (int i = 0; i < n; i++) x[i] = tu_rand_normal(rng);
    switch (kind) {
    case DATA_OUTLIERS:
        for (int i = 0; i < n; i++)
            if (tu_rand_u64(rng) % 37 == 0) x[i] *= 100.0f;
        break;
    case DATA_ZERO_BLOCKS:
        for (int b = 0; b < n; b += blk)
            if (b == 0 || tu_rand_u64(rng) % 3 == 0)
                for (int i = b; i < b + blk && i < n; i++) x[i] = 0.0f;
        break;
    case DATA_TIES:
        /* halves with |x| <= 127 and a +-127 in every block: scales become exactly 1,
         * so quantizers hit round-half-even ties; +127 and -127 both present test
         * which sign the signed-max quantizers (Q8_K) pick */
        for (int i = 0; i < n; i++) x[i] = (float)((int)(tu_rand_u64(rng) % 509) - 254) * 0.5f;
        for (int b = 0; b < n; b += blk) {
            x[b] = (tu_rand_u64(rng) & 1) ? 127.0f : -127.0f;
            if (b + 5 < n) x[b + 5] = -x[b];
        }
        break;
    default: break;
    }
}

/* Quantize x (n floats) with the SCALAR from_float/act quantizer of type t. */
static void quant_scalar(fr_type t, const float *x, void *out, int n, int act) {
    const fr_type_traits *tr = fr_type_traits_scalar(t);
    fr_from_float_fn f = act && tr->act_from_float ? tr->act_from_float : tr->from_float;
    f(x, out, n);
}

/* sum |x_i y_i| of the dequantized rows: the scale of the dot's rounding error. */
static double abs_dot(fr_type wt, const void *w, fr_type vt, const void *yq, int n, float *tmp_a, float *tmp_b) {
    fr_type_traits_scalar(wt)->to_float(w, tmp_a, n);
    fr_type_traits_scalar(vt)->to_float(yq, tmp_b, n);
    double s = 0.0;
    for (int i = 0; i < n; i++) s += fabs((double)tmp_a[i] * (double)tmp_b[i]);
    return s;
}

static int close_enough(float a, float ref, double scale) {
    return fabs((double)a - (double)ref) <= 2e-5 * scale + 1e-6;
}

/* Every weight type's vec_dot at the active level vs scalar. */
static void check_dots(const char *lvl, uint64_t *rng) {
    static const int nblocks[] = {1, 2, 7, 33};
    static const int nfloat[] = {1, 2, 7, 33, 100, 4099};
    for (int ti = 0; ti < N_WTYPES; ti++) {
        const fr_type wt = k_weight_types[ti];
        const fr_type_traits *sc = fr_type_traits_scalar(wt), *ac = fr_type_traits_get(wt);
        const fr_type vt = sc->vec_dot_type;
        const int bs = sc->blck_size;
        for (int si = 0; si < 6; si++) {
            if (bs > 1 && si >= 4) break;
            const int n = bs > 1 ? nblocks[si] * bs : nfloat[si];
            float *x = tu_malloc(sizeof(float) * n), *y = tu_malloc(sizeof(float) * n);
            float *ta = tu_malloc(sizeof(float) * n), *tb = tu_malloc(sizeof(float) * n);
            void *w = tu_malloc(fr_row_size(wt, n)), *yq = tu_malloc(fr_row_size(vt, n));
            for (int kind = 0; kind < DATA_KINDS; kind++) {
                gen(x, n, kind, bs, rng);
                gen(y, n, (kind + 1) % DATA_KINDS, fr_type_traits_scalar(vt)->blck_size, rng);
                quant_scalar(wt, x, w, n, 0);
                quant_scalar(vt, y, yq, n, 1);
                float ref = 0, got = 0;
                sc->vec_dot(n, &ref, w, yq);
                ac->vec_dot(n, &got, w, yq);
                const double scale = abs_dot(wt, w, vt, yq, n, ta, tb);
                CHECKF(close_enough(got, ref, scale), "%s %s n=%d %s: got %.9g ref %.9g (scale %g)", lvl,
                       sc->name, n, k_data_names[kind], got, ref, scale);
            }
            free(x), free(y), free(ta), free(tb), free(w), free(yq);
        }
    }
}

/* Activation quantizers (Q8_0/Q8_1 act, Q8_K) must be bit-identical to scalar. */
static void check_quantizers(const char *lvl, uint64_t *rng) {
    static const fr_type types[] = {FR_TYPE_Q8_0, FR_TYPE_Q8_1, FR_TYPE_Q8_K};
    for (int ti = 0; ti < 3; ti++) {
        const fr_type t = types[ti];
        const fr_type_traits *sc = fr_type_traits_scalar(t), *ac = fr_type_traits_get(t);
        fr_from_float_fn fs = sc->act_from_float ? sc->act_from_float : sc->from_float;
        fr_from_float_fn fa = ac->act_from_float ? ac->act_from_float : ac->from_float;
        for (int nbk = 1; nbk <= 33; nbk += 8) {
            const int n = nbk * sc->blck_size;
            float *x = tu_malloc(sizeof(float) * n);
            const size_t sz = fr_row_size(t, n);
            uint8_t *a = tu_malloc(sz), *b = tu_malloc(sz);
            for (int kind = 0; kind < DATA_KINDS; kind++) {
                gen(x, n, kind, sc->blck_size, rng);
                memset(a, 0xAA, sz);
                memset(b, 0x55, sz);
                fs(x, a, n);
                fa(x, b, n);
                CHECKF(!memcmp(a, b, sz), "%s quantizer %s n=%d %s differs from scalar", lvl, sc->name, n,
                       k_data_names[kind]);
            }
            free(x), free(a), free(b);
        }
    }
}

/* F16 <-> F32 rows: bit-identical, including subnormals, infinities and NaNs. */
static void check_f16_rows(const char *lvl, uint64_t *rng) {
    const fr_type_traits *sc = fr_type_traits_scalar(FR_TYPE_F16), *ac = fr_type_traits_get(FR_TYPE_F16);
    enum { N = 1003 };
    static uint16_t h[N], h2[N];
    static float f[N], g[N];
    for (int i = 0; i < N; i++) h[i] = (uint16_t)tu_rand_u64(rng); /* every bit pattern class */
    h[0] = 0x7c00, h[1] = 0xfc00, h[2] = 0x7c01, h[3] = 0x0001, h[4] = 0x8000, h[5] = 0x03ff;
    sc->to_float(h, f, N);
    ac->to_float(h, g, N);
    CHECKF(!memcmp(f, g, sizeof(f)), "%s F16 to_float differs from scalar", lvl);
    for (int i = 0; i < N; i++) {
        uint32_t u = (uint32_t)tu_rand_u64(rng);
        float v;
        memcpy(&v, &u, 4);
        f[i] = (i % 3 == 0) ? v : tu_rand_normal(rng) * ((i % 5 == 0) ? 1e-6f : 100.0f);
    }
    f[0] = INFINITY, f[1] = -INFINITY, f[2] = NAN, f[3] = 65519.0f, f[4] = 65520.0f, f[5] = 3e-8f;
    sc->from_float(f, h, N);
    ac->from_float(f, h2, N);
    CHECKF(!memcmp(h, h2, sizeof(h)), "%s F16 from_float differs from scalar", lvl);
}

/* fr_matmul at the active level: identical across 1 and 3 threads, close to scalar. */
static void check_matmul(const char *lvl, fr_pool *p1, fr_pool *p3, uint64_t *rng) {
    /* 128: the prefill shape of the blocked gemm kernels (tiles of 4 rows x 2..4
     * tokens; 37 rows and 7 tokens leave ragged tiles, 3 threads split rows mid-tile) */
    static const int ntoks[] = {1, 2, 7, 128};
    /* each type row-major (37 rows), and the types with an IL16 layout also repacked
     * (48 rows = 3 groups, one per thread of 3): the IL16 GEMM at levels that have
     * one, the unpack-and-dot fallback at the others */
    for (int ti = 0; ti < 2 * N_WTYPES; ti++) {
        const fr_type wt = k_weight_types[ti % N_WTYPES];
        const int il = ti >= N_WTYPES;
        if (il && !fr_il_layout_known(wt)) continue;
        const fr_type_traits *sc = fr_type_traits_scalar(wt);
        const fr_type vt = sc->vec_dot_type;
        /* Q4_0/Q8_0: 7 blocks, one full group of 4 in the packed gemm layout plus a
         * short one. (Q4_1/Q5_1 stay at 3: their AVX2 dots add d*q and m*s apart,
         * which cancel, and at 7 blocks of outlier data one output exceeded the
         * relative bound, then 1e-5 - a property of the format's split, as in ggml.) */
        const int legacy7 = wt == FR_TYPE_Q4_0 || wt == FR_TYPE_Q8_0;
        /* IL16: 5 groups, so a decode tile of 4 groups (F16) meets a last, single one */
        const int n_in = (sc->blck_size > 1 ? (legacy7 ? 7 : 3) * sc->blck_size : 100), n_out = il ? 80 : 37;
        const size_t rs = fr_row_size(wt, n_in), vrs = fr_row_size(vt, n_in);
        uint8_t *wd = tu_malloc(rs * n_out);
        float *row = tu_malloc(sizeof(float) * n_in), *ta = tu_malloc(sizeof(float) * n_in),
              *tb = tu_malloc(sizeof(float) * n_in);
        for (int r = 0; r < n_out; r++) {
            gen(row, n_in, r % DATA_KINDS, sc->blck_size, rng);
            quant_scalar(wt, row, wd + (size_t)r * rs, n_in, 0);
        }
        fr_weight w = {.data = wd, .type = wt, .n_in = n_in, .n_out = n_out, .layout = FR_LAYOUT_ROWS, .src = wd};
        const fr_weight w_rows = w;
        uint8_t *wil = il ? tu_malloc(rs * n_out) : NULL, *back = il ? tu_malloc(rs) : NULL;
        if (il) {
            fr_il_repack(&w, wil);
            int same = 1;
            for (int r = 0; r < n_out; r++) {
                fr_il_unpack_row(wt, wil + (size_t)(r / 16) * 16 * rs, n_in, r % 16, back);
                same &= !memcmp(back, wd + (size_t)r * rs, rs);
            }
            CHECKF(same && w.layout == FR_LAYOUT_IL16, "%s IL16 %s: repack then unpack is not the identity", lvl,
                   sc->name);
        }
        for (int k = 0; k < (int)(sizeof ntoks / sizeof *ntoks); k++) {
            const int nt = ntoks[k];
            float *x = tu_malloc(sizeof(float) * n_in * nt);
            float *y1 = tu_malloc(sizeof(float) * n_out * nt), *y3 = tu_malloc(sizeof(float) * n_out * nt);
            void *qb = tu_malloc(fr_matmul_scratch(&w, nt) + 1), *yq = tu_malloc(vrs);
            for (int t = 0; t < nt; t++) gen(x + (size_t)t * n_in, n_in, t % DATA_KINDS, sc->blck_size, rng);
            fr_matmul(p1, &w, x, nt, y1, qb);
            fr_matmul(p3, &w, x, nt, y3, qb);
            CHECKF(!memcmp(y1, y3, sizeof(float) * n_out * nt), "%s matmul %s%s n_tok=%d: 1 vs 3 threads differ", lvl,
                   sc->name, il ? " IL16" : "", nt);
            if (il && !fr_type_traits_get(wt)->il_gemm) {
                /* no IL16 GEMM at this level: rows are unpacked and dotted as row-major ones */
                fr_matmul(p3, &w_rows, x, nt, y3, qb);
                CHECKF(!memcmp(y1, y3, sizeof(float) * n_out * nt),
                       "%s matmul %s n_tok=%d: IL16 fallback and row-major storage differ", lvl, sc->name, nt);
            }
            /* the last token alone gives the same bits as inside the batch */
            fr_matmul(p3, &w, x + (size_t)(nt - 1) * n_in, 1, y3, qb);
            CHECKF(!memcmp(y1 + (size_t)(nt - 1) * n_out, y3, sizeof(float) * n_out),
                   "%s matmul %s%s n_tok=%d: last token differs when computed alone", lvl, sc->name, il ? " IL16" : "",
                   nt);
            /* AVX2's row-major Q4_0 / Q8_0 GEMMs (cpu_avx2.c) promise vec_dot's bits */
            if (!il && !strcmp(lvl, "avx2") && (wt == FR_TYPE_Q4_0 || wt == FR_TYPE_Q8_0)) {
                const fr_type_traits *ac = fr_type_traits_get(wt), *av = fr_type_traits_get(vt);
                int differ = 0;
                for (int t = 0; t < nt; t++) {
                    (av->act_from_float ? av->act_from_float : av->from_float)(x + (size_t)t * n_in, yq, n_in);
                    for (int r = 0; r < n_out; r++) {
                        float d;
                        ac->vec_dot(n_in, &d, wd + (size_t)r * rs, yq);
                        differ += memcmp(&d, &y1[(size_t)t * n_out + r], sizeof d) != 0;
                    }
                }
                CHECKF(differ == 0, "%s matmul %s n_tok=%d: %d outputs differ from vec_dot's bits", lvl, sc->name, nt,
                       differ);
            }
            int bad = 0;
            for (int t = 0; t < nt; t++) {
                quant_scalar(vt, x + (size_t)t * n_in, yq, n_in, 1);
                for (int r = 0; r < n_out; r++) {
                    float ref;
                    sc->vec_dot(n_in, &ref, wd + (size_t)r * rs, yq);
                    const double scale = abs_dot(wt, wd + (size_t)r * rs, vt, yq, n_in, ta, tb);
                    if (!close_enough(y1[(size_t)t * n_out + r], ref, scale)) bad++;
                }
            }
            CHECKF(bad == 0, "%s matmul %s%s n_tok=%d: %d outputs off the scalar reference", lvl, sc->name,
                   il ? " IL16" : "", nt, bad);
            free(x), free(y1), free(y3), free(qb), free(yq);
        }
        free(wd), free(row), free(ta), free(tb), free(wil), free(back);
    }
}

/* IL16 K-quants at the extremes the integer paths must hold exactly, fed straight
 * to il_pack / il_gemm (fr_matmul's quantizer never yields -128): the 16 rows at w
 * (NB super-blocks each, row-major) against activations all 127 / all -128
 * (sub-block sums -4096..4064) and random. Any int16/int32 overflow in the kernel
 * would be far off the scalar dot. */
enum { EX_NB = 2, EX_N = EX_NB * FR_QK_K, EX_NT = 3 };
static void check_il_extremes(const char *lvl, fr_type wt, const void *w, uint64_t *rng) {
    const fr_type_traits *ac = fr_type_traits_get(wt), *sc = fr_type_traits_scalar(wt);
    const size_t rs = fr_row_size(wt, EX_N);
    static uint8_t g[16 * EX_NB * sizeof(fr_block_q6_k)];
    static fr_block_q8_k y[EX_NT][EX_NB];
    static uint8_t yp[EX_NT][2 * sizeof(y[0]) + 256] __attribute__((aligned(64)));
    for (int t = 0; t < EX_NT; t++)
        for (int b = 0; b < EX_NB; b++) {
            y[t][b].d = 0.5f;
            for (int i = 0; i < FR_QK_K; i++)
                y[t][b].qs[i] = (int8_t)(t == 0 ? 127 : t == 1 ? -128 : (int)(tu_rand_u64(rng) % 256) - 128);
            for (int j = 0; j < FR_QK_K / 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += y[t][b].qs[16 * j + i];
                y[t][b].bsums[j] = (int16_t)sum;
            }
        }
    fr_il_pack_group(wt, w, EX_N, g);
    for (int t = 0; t < EX_NT; t++) ac->il_pack(y[t], yp[t], EX_N);
    float out[EX_NT][16];
    ac->il_gemm(EX_N, g, 1, yp, sizeof(yp[0]), EX_NT, &out[0][0], 16);
    int bad = 0;
    for (int t = 0; t < EX_NT; t++)
        for (int r = 0; r < 16; r++) {
            const uint8_t *wr = (const uint8_t *)w + (size_t)r * rs;
            float ref;
            sc->vec_dot(EX_N, &ref, wr, y[t]);
            float ta[EX_N], tb[EX_N];
            const double scale = abs_dot(wt, wr, FR_TYPE_Q8_K, y[t], EX_N, ta, tb);
            if (!close_enough(out[t][r], ref, scale)) bad++;
        }
    CHECKF(bad == 0, "%s IL16 %s extremes: %d outputs off the scalar reference", lvl, sc->name, bad);
}

/* Q4_K: nibbles 15 and 0, scales and mins 63 (every fourth row random). */
static void check_il_q4_k_extremes(const char *lvl, uint64_t *rng) {
    if (!fr_type_traits_get(FR_TYPE_Q4_K)->il_gemm) return;
    static fr_block_q4_k w[16][EX_NB];
    static const uint8_t qbyte[4] = {0xFF, 0x00, 0, 0xF0}; /* 0: random */
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < EX_NB; b++) {
            w[r][b].d = fr_f32_to_f16(0.01f * (float)(r + 1));
            w[r][b].dmin = fr_f32_to_f16(0.003f * (float)(16 - r));
            for (int i = 0; i < 12; i++) w[r][b].scales[i] = r % 4 == 2 ? (uint8_t)tu_rand_u64(rng) : 0xFF;
            for (int i = 0; i < FR_QK_K / 2; i++)
                w[r][b].qs[i] = r % 4 == 2 ? (uint8_t)tu_rand_u64(rng) : qbyte[r % 4];
        }
    check_il_extremes(lvl, FR_TYPE_Q4_K, w, rng);
}

/* Q5_K: weights all 31 (nibble 15, fifth bit set) or all 0, scales and mins 63;
 * row 3 mod 4 has 31 in its first 8 values and 0 in the rest of each sub-block
 * (a single 8-value chain at its bound); rows 2 mod 4 random. */
static void check_il_q5_k_extremes(const char *lvl, uint64_t *rng) {
    if (!fr_type_traits_get(FR_TYPE_Q5_K)->il_gemm) return;
    static fr_block_q5_k w[16][EX_NB];
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < EX_NB; b++) {
            const int rnd = r % 4 == 2;
            w[r][b].d = fr_f32_to_f16(0.01f * (float)(r + 1));
            w[r][b].dmin = fr_f32_to_f16(0.003f * (float)(16 - r));
            for (int i = 0; i < 12; i++) w[r][b].scales[i] = rnd ? (uint8_t)tu_rand_u64(rng) : 0xFF;
            for (int i = 0; i < FR_QK_K / 8; i++) {
                const uint8_t h = r % 4 == 0 ? 0xFF : r % 4 == 1 ? 0x00 : (uint8_t)(i < 8 ? 0xFF : 0x00);
                w[r][b].qh[i] = rnd ? (uint8_t)tu_rand_u64(rng) : h;
            }
            for (int i = 0; i < FR_QK_K / 2; i++) {
                const uint8_t q = r % 4 == 0 ? 0xFF : r % 4 == 1 ? 0x00 : (uint8_t)(i % 32 < 8 ? 0xFF : 0x00);
                w[r][b].qs[i] = rnd ? (uint8_t)tu_rand_u64(rng) : q;
            }
        }
    check_il_extremes(lvl, FR_TYPE_Q5_K, w, rng);
}

/* Q6_K: quants all 0 (-32) or all 63 (+31) with scales -128 or 127, each of the
 * four pairs (x_j reaches 65536, sc * x_j -2^23, isum -2^27); rows 7 and 15
 * random. */
static void check_il_q6_k_extremes(const char *lvl, uint64_t *rng) {
    if (!fr_type_traits_get(FR_TYPE_Q6_K)->il_gemm) return;
    static fr_block_q6_k w[16][EX_NB];
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < EX_NB; b++) {
            const int rnd = r % 8 == 7;
            const uint8_t qb = (r & 1) ? 0xFF : 0x00; /* rows 0, 4, ...: q = 0; odd rows: q = 63 */
            w[r][b].d = fr_f32_to_f16(0.01f * (float)(r + 1));
            for (int i = 0; i < FR_QK_K / 2; i++) w[r][b].ql[i] = rnd ? (uint8_t)tu_rand_u64(rng) : qb;
            for (int i = 0; i < FR_QK_K / 4; i++) w[r][b].qh[i] = rnd ? (uint8_t)tu_rand_u64(rng) : qb;
            for (int j = 0; j < FR_QK_K / 16; j++)
                w[r][b].scales[j] = (int8_t)(rnd ? (int)(tu_rand_u64(rng) % 256) - 128 : (r & 2) ? 127 : -128);
        }
    check_il_extremes(lvl, FR_TYPE_Q6_K, w, rng);
}

/* IL16 Q4_0 / Q8_0 at the extremes, fed straight to il_pack / il_gemm: weights
 * all at the top or bottom of their range (Q8_0 -128 and 127, Q4_0 nibbles 0 and
 * 15), alternating, or random, against activations all 127, all -128 (which
 * fr_matmul's quantizer never yields), alternating, or random. The AVX2 kernels
 * add products in int16 (Q4_0) or widen them with vpmaddwd (Q8_0): any saturation
 * or overflow would be far off the scalar dot. */
enum { LX_NB = 4, LX_N = LX_NB * FR_QK, LX_NT = 4 };
static void check_il_legacy_extremes(const char *lvl, fr_type wt, uint64_t *rng) {
    const fr_type_traits *ac = fr_type_traits_get(wt), *sc = fr_type_traits_scalar(wt);
    if (!ac->il_gemm) return;
    const int q8 = wt == FR_TYPE_Q8_0;
    const size_t rs = fr_row_size(wt, LX_N);
    static uint8_t w[16 * LX_NB * sizeof(fr_block_q8_0)], g[sizeof(w)];
    static fr_block_q8_0 y[LX_NT][LX_NB];
    static uint8_t yp[LX_NT][2 * sizeof(y[0]) + 256] __attribute__((aligned(64)));
    const int lo = q8 ? -128 : 0, hi = q8 ? 127 : 15; /* Q4_0: the stored nibble */
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < LX_NB; b++) {
            uint8_t *blk = w + (size_t)r * rs + (size_t)b * sc->type_size;
            const uint16_t d = fr_f32_to_f16(0.01f * (float)(r + 1));
            memcpy(blk, &d, 2);
            for (int i = 0; i < FR_QK; i++) {
                const int kind = r % 4; /* 0: all lo, 1: all hi, 2: alternating, 3: random */
                const int v = kind == 0   ? lo
                              : kind == 1 ? hi
                              : kind == 2 ? ((i & 1) ? hi : lo)
                                          : lo + (int)(tu_rand_u64(rng) % (uint64_t)(hi - lo + 1));
                if (q8) blk[2 + i] = (uint8_t)(int8_t)v;
                else if (i < FR_QK / 2) blk[2 + i] = (uint8_t)((blk[2 + i] & 0xF0) | v);
                else blk[2 + i - FR_QK / 2] = (uint8_t)((blk[2 + i - FR_QK / 2] & 0x0F) | (v << 4));
            }
        }
    const int ylo = -128;
    for (int t = 0; t < LX_NT; t++)
        for (int b = 0; b < LX_NB; b++) {
            y[t][b].d = fr_f32_to_f16(0.5f);
            for (int i = 0; i < FR_QK; i++)
                y[t][b].qs[i] = (int8_t)(t == 0   ? 127
                                         : t == 1 ? ylo
                                         : t == 2 ? ((i & 1) ? ylo : 127)
                                                  : ylo + (int)(tu_rand_u64(rng) % (uint64_t)(127 - ylo + 1)));
        }
    fr_il_pack_group(wt, w, LX_N, g);
    for (int t = 0; t < LX_NT; t++) ac->il_pack(y[t], yp[t], LX_N);
    float out[LX_NT][16];
    ac->il_gemm(LX_N, g, 1, yp, sizeof(yp[0]), LX_NT, &out[0][0], 16);
    int bad = 0;
    for (int t = 0; t < LX_NT; t++)
        for (int r = 0; r < 16; r++) {
            const uint8_t *wr = w + (size_t)r * rs;
            float ref, ta[LX_N], tb[LX_N];
            sc->vec_dot(LX_N, &ref, wr, y[t]);
            const double scale = abs_dot(wt, wr, FR_TYPE_Q8_0, y[t], LX_N, ta, tb);
            if (!close_enough(out[t][r], ref, scale)) bad++;
        }
    CHECKF(bad == 0, "%s IL16 %s extremes: %d outputs off the scalar reference", lvl, sc->name, bad);
}

/* Every level's IL16 GEMM computes each output with the same integer block dots
 * and the same float operations in the same order (kernels/il_avx2.c,
 * il_avx512.c; F16: the same FMA chains per 64 columns, il_f16_avx2.c and
 * il_f16_avx512.c), so the levels that have one give the same bits: the same repacked
 * matrix (48 rows) and inputs through fr_matmul (3 threads) at each such level,
 * for token counts that leave ragged tiles at every tile width. */
static void check_il_levels(fr_pool *p3) {
    static const fr_type types[] = {FR_TYPE_Q4_0, FR_TYPE_Q8_0, FR_TYPE_Q4_K, FR_TYPE_Q5_K, FR_TYPE_Q6_K, FR_TYPE_F16};
    static const int ntoks[] = {1, 5, 13, 37};
    const int initial = fr_kernels_get_level();
    for (int ti = 0; ti < (int)(sizeof types / sizeof *types); ti++) {
        const fr_type wt = types[ti];
        const fr_type_traits *sc = fr_type_traits_scalar(wt);
        /* F16: two whole 64-column chains and a ragged third */
        const int legacy = wt == FR_TYPE_Q4_0 || wt == FR_TYPE_Q8_0;
        const int n_in = wt == FR_TYPE_F16 ? 150 : (legacy ? 9 : 3) * sc->blck_size, n_out = 48;
        const size_t rs = fr_row_size(wt, n_in);
        uint64_t rng = 0x11e7e15u + (uint64_t)ti;
        uint8_t *wd = tu_malloc(rs * n_out), *wil = tu_malloc(rs * n_out);
        float *row = tu_malloc(sizeof(float) * n_in), *x = tu_malloc(sizeof(float) * n_in * 37);
        float *ref = tu_malloc(sizeof(float) * n_out * 37), *y = tu_malloc(sizeof(float) * n_out * 37);
        for (int r = 0; r < n_out; r++) {
            gen(row, n_in, r % DATA_KINDS, sc->blck_size, &rng);
            quant_scalar(wt, row, wd + (size_t)r * rs, n_in, 0);
        }
        fr_weight w = {.data = wd, .type = wt, .n_in = n_in, .n_out = n_out, .layout = FR_LAYOUT_ROWS, .src = wd};
        fr_il_repack(&w, wil);
        void *qb = tu_malloc(fr_matmul_scratch(&w, 37));
        for (int k = 0; k < (int)(sizeof ntoks / sizeof *ntoks); k++) {
            const int nt = ntoks[k];
            for (int t = 0; t < nt; t++) gen(x + (size_t)t * n_in, n_in, t % DATA_KINDS, sc->blck_size, &rng);
            const char *first = NULL;
            int n_levels = 0;
            for (int l = 0; l < FR_KERNELS_LEVEL_COUNT; l++) {
                if (!fr_kernels_supported(l) || fr_kernels_set_level(l) != 0 || !fr_type_traits_get(wt)->il_gemm)
                    continue;
                fr_matmul(p3, &w, x, nt, first ? y : ref, qb);
                n_levels++;
                if (!first) first = fr_kernels_level_str(l);
                else
                    CHECKF(!memcmp(ref, y, sizeof(float) * n_out * nt), "IL16 %s n_tok=%d: levels %s and %s differ",
                           sc->name, nt, first, fr_kernels_level_str(l));
            }
            if (k == 0) printf("IL16 %s: %d level(s) with a GEMM compared\n", sc->name, n_levels);
        }
        free(wd), free(wil), free(row), free(x), free(ref), free(y), free(qb);
    }
    CHECK(fr_kernels_set_level(initial) == 0);
}

/* Attention kernels of the cache types that have them, against the loops they
 * replace: attn_kdot must give exactly vec_dot's result for every head (same
 * operations), attn_vacc exactly acc + p * v per value (a multiply, then an add). */
static void check_attn(const char *lvl, uint64_t *rng) {
    static const int dims[] = {64, 128, 80, 40, 64, 128, 200};
    for (int ti = 0; ti < N_WTYPES; ti++) {
        const fr_type kt = k_weight_types[ti];
        const fr_type_traits *t = fr_type_traits_get(kt);
        if (!t->attn_kdot && !t->attn_vacc) continue;
        const fr_type_traits *tq = fr_type_traits_get(t->vec_dot_type);
        for (int di = 0; di < 7; di++) {
            /* 64 x 10: 4-head blocks + 2 more; 64 x 3 / 128 x 8: AVX2's kdot reads few heads' rows
             * as F16, many heads' from a widened tile (both paths, both sizes); 200: generic */
            const int n = dims[di], nh = (int[]){10, 4, 7, 1, 3, 8, 2}[di];
            const size_t rs = fr_row_size(kt, n), qs = fr_row_size(t->vec_dot_type, n);
            uint8_t *row = tu_malloc(rs), *qc = tu_malloc(qs * nh);
            float *f = tu_malloc(sizeof(float) * n * nh), *qf = tu_malloc(sizeof(float) * n * nh);
            float *acc = tu_malloc(sizeof(float) * n * nh), *ref = tu_malloc(sizeof(float) * n * nh);
            float p[16 * 3], v[256];
            gen(f, n, 0, 1, rng);
            t->from_float(f, row, n);
            for (int h = 0; h < nh; h++) {
                gen(f + (size_t)h * n, n, 0, 1, rng);
                tq->from_float(f + (size_t)h * n, qc + h * qs, n);
                tq->to_float(qc + h * qs, qf + (size_t)h * n, n);
            }
            if (t->attn_kdot) { /* 1, 16 and 37 rows (full and ragged 16-row tiles), into a strided s */
                static const int nrows[] = {1, 16, 37};
                enum { MAXR = 37 };
                uint8_t *krows = tu_malloc(rs * MAXR);
                const void *kp[MAXR];
                float *sk = tu_malloc(sizeof(float) * (MAXR + 3) * nh);
                for (int r = 0; r < MAXR; r++) {
                    float kf[256];
                    gen(kf, n, 0, 1, rng);
                    t->from_float(kf, krows + r * rs, n);
                    kp[r] = krows + r * rs;
                }
                for (int ri = 0; ri < 3; ri++) {
                    const int nr = nrows[ri];
                    t->attn_kdot(n, kp, nr, qf, nh, sk, (size_t)nr + 3);
                    int same = 1;
                    for (int r = 0; r < nr; r++)
                        for (int h = 0; h < nh; h++) {
                            float ref1;
                            t->vec_dot(n, &ref1, kp[r], qc + h * qs);
                            same &= memcmp(&ref1, &sk[(size_t)h * (nr + 3) + r], sizeof ref1) == 0;
                        }
                    CHECKF(same, "%s attn_kdot %s n=%d heads=%d rows=%d differs from vec_dot", lvl, t->name, n, nh,
                           nr);
                }
                free(krows), free(sk);
            }
            if (t->attn_vacc) { /* 3 rows: the row, another (from the first query), the row again */
                uint8_t *rows3 = tu_malloc(3 * rs);
                const void *rp[3] = {rows3, rows3 + rs, rows3 + 2 * rs};
                memcpy(rows3, row, rs);
                for (int i = 0; i < n; i++) f[i] = -f[i];
                t->from_float(f, rows3 + rs, n);
                memcpy(rows3 + 2 * rs, row, rs);
                for (int i = 0; i < nh * 3; i++) p[i] = tu_rand_normal(rng);
                for (int i = 0; i < n * nh; i++) acc[i] = ref[i] = tu_rand_normal(rng);
                for (int r = 0; r < 3; r++) {
                    t->to_float(rp[r], v, n);
                    for (int h = 0; h < nh; h++)
                        for (int d = 0; d < n; d++) {
                            volatile float prod = p[h * 3 + r] * v[d]; /* rounded on its own, as the loop */
                            ref[(size_t)h * n + d] = ref[(size_t)h * n + d] + prod;
                        }
                }
                t->attn_vacc(n, rp, 3, p, 3, nh, acc);
                free(rows3);
                CHECKF(!memcmp(acc, ref, sizeof(float) * n * nh), "%s attn_vacc %s n=%d heads=%d differs", lvl,
                       t->name, n, nh);
            }
            free(row), free(qc), free(f), free(qf), free(acc), free(ref);
        }
    }
}

/* The element-wise F32 ops of the level against the scalar references: softmax
 * within 1e-6 relative (the double sum runs in another order), SwiGLU within 1e-6
 * relative (its exp is the float nearest e^x, as expf's). Lengths with ragged tails,
 * inputs spanning exp's range. */
static void check_elementwise(const char *lvl, uint64_t *rng) {
    const fr_type_traits *t = fr_type_traits_get(FR_TYPE_F32);
    static const int lens[] = {1, 15, 16, 33, 1000};
    for (int li = 0; li < 5; li++) {
        const int n = lens[li];
        float *a = tu_malloc(sizeof(float) * n), *b = tu_malloc(sizeof(float) * n), *u = tu_malloc(sizeof(float) * n);
        float *o1 = tu_malloc(sizeof(float) * n), *o2 = tu_malloc(sizeof(float) * n);
        for (int i = 0; i < n; i++) {
            a[i] = b[i] = tu_rand_normal(rng) * (i % 7 == 0 ? 40.0f : 4.0f);
            u[i] = tu_rand_normal(rng);
        }
        if (t->softmax) {
            fr_softmax(a, n);
            t->softmax(b, n);
            int bad = 0;
            for (int i = 0; i < n; i++) bad += fabsf(a[i] - b[i]) > 1e-6f * fabsf(a[i]) + 1e-30f;
            CHECKF(bad == 0, "%s softmax n=%d: %d values off the scalar reference", lvl, n, bad);
        }
        if (t->swiglu) {
            for (int i = 0; i < n; i++) a[i] = tu_rand_normal(rng) * (i % 5 == 0 ? 60.0f : 3.0f);
            fr_swiglu(o1, a, u, n);
            t->swiglu(o2, a, u, n);
            int bad = 0;
            for (int i = 0; i < n; i++) bad += fabsf(o1[i] - o2[i]) > 1e-6f * fabsf(o1[i]) + 1e-30f;
            CHECKF(bad == 0, "%s swiglu n=%d: %d values off the scalar reference", lvl, n, bad);
        }
        free(a), free(b), free(u), free(o1), free(o2);
    }
}

int main(void) {
    fr_pool *p1 = fr_pool_new(1), *p3 = fr_pool_new(3);
    CHECK(p1 && p3);
    if (!p1 || !p3) return tu_finish("test_kernels");
    const int initial = fr_kernels_get_level();
    printf("default kernel level: %s\n", fr_kernels_level_name());
    CHECK(fr_kernels_set_level(-1) != 0);
    CHECK(fr_kernels_set_level(FR_KERNELS_LEVEL_COUNT) != 0);
    int tested = 0;
    for (int l = 0; l < FR_KERNELS_LEVEL_COUNT; l++) {
        const char *name = fr_kernels_level_str(l);
        if (!fr_kernels_supported(l)) {
            printf("level %s: not supported on this machine/build, skipped\n", name);
            CHECK(fr_kernels_set_level(l) != 0);
            continue;
        }
        CHECK(fr_kernels_set_level(l) == 0);
        CHECK(!strcmp(fr_kernels_level_name(), name));
        uint64_t rng = 0x5eed0000u + (uint64_t)l; /* same data at every level */
        check_dots(name, &rng);
        check_quantizers(name, &rng);
        check_f16_rows(name, &rng);
        check_matmul(name, p1, p3, &rng);
        check_attn(name, &rng);
        check_elementwise(name, &rng);
        check_il_q4_k_extremes(name, &rng);
        check_il_q5_k_extremes(name, &rng);
        check_il_q6_k_extremes(name, &rng);
        check_il_legacy_extremes(name, FR_TYPE_Q4_0, &rng);
        check_il_legacy_extremes(name, FR_TYPE_Q8_0, &rng);
        printf("level %s: tested\n", name);
        tested++;
    }
    CHECK(tested >= 1);
    check_il_levels(p3);
    CHECK(fr_kernels_set_level(initial) == 0);
    fr_pool_free(p1);
    fr_pool_free(p3);
    return tu_finish("test_kernels");
}
