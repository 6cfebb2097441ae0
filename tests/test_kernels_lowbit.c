/* test_kernels_lowbit.c - the low-bit GGUF types (core/quant_lowbit.h): layouts,
 * scalar references, and every SIMD level's kernels against them.
 *
 * Weight blocks are random bytes (every bit pattern is a valid block of these
 * formats) with their F16 scales set to finite values, so all grid entries, sign
 * patterns and sub-block scales occur; activations are Q8_K / Q8_0 rows quantized
 * from normal data, data with outliers and the extremes +-127.
 *  - scalar vec_dot against the dot of the scalar dequantized rows (double): the
 *    reader and the dot decode the bits the same way, |diff| <= 1e-5 * sum|x y| + 1e-6;
 *  - each level's vec_dot against the scalar one: |diff| <= 2e-5 * sum|x y| + 1e-6
 *    (integer parts exact, float order differs; as test_kernels.c), at 1, 2, 7 and 33
 *    blocks (odd sizes);
 *  - fr_matmul (n_tok 1, 2, 7, 9, 128: through the prefill GEMMs where a level has
 *    them): 1 and 3 threads bitwise identical, the last token alone identical to it
 *    inside the batch, every output within the dot bound of the scalar vec_dot;
 *  - the same for the types with an IL16 layout (Q3_K, IQ4_XS, IQ4_NL) repacked: repack then
 *    unpack is the identity, and their IL16 GEMMs also hold at the extremes of the
 *    integer paths (activations -128, quants and scales at both ends);
 *  - traits: block sizes and bytes match the structs; bits per weight as GGUF says. */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "core/pool.h"
#include "kernels/dispatch.h"
#include "kernels/interleave.h"
#include "kernels/ops.h"
#include "testutil.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

typedef struct {
    fr_type t;
    size_t size;
    double bpw;      /* bits per weight */
    int d_off[2];    /* byte offsets of F16 scales in the block (-1: none) */
} lowbit_type;

static const lowbit_type k_types[] = {
    {FR_TYPE_Q2_K, sizeof(fr_block_q2_k), 2.625, {80, 82}},
    {FR_TYPE_Q3_K, sizeof(fr_block_q3_k), 3.4375, {108, -1}},
    {FR_TYPE_IQ4_NL, sizeof(fr_block_iq4_nl), 4.5, {0, -1}},
    {FR_TYPE_IQ4_XS, sizeof(fr_block_iq4_xs), 4.25, {0, -1}},
    {FR_TYPE_IQ3_S, sizeof(fr_block_iq3_s), 3.4375, {0, -1}},
    {FR_TYPE_IQ3_XXS, sizeof(fr_block_iq3_xxs), 3.0625, {0, -1}},
    {FR_TYPE_IQ2_S, sizeof(fr_block_iq2_s), 2.5625, {0, -1}},
    {FR_TYPE_IQ2_XS, sizeof(fr_block_iq2_xs), 2.3125, {0, -1}},
    {FR_TYPE_IQ2_XXS, sizeof(fr_block_iq2_xxs), 2.0625, {0, -1}},
    {FR_TYPE_IQ1_M, sizeof(fr_block_iq1_m), 1.75, {-1, -1}},
    {FR_TYPE_IQ1_S, sizeof(fr_block_iq1_s), 1.5625, {0, -1}},
};

/* A random F16 in [2^-10, 2^-5) with random sign (finite, realistic magnitude). */
static uint16_t rand_scale(uint64_t *rng) {
    const float v = ldexpf(1.0f + tu_rand_uniform(rng), -10 + (int)(tu_rand_u64(rng) % 5));
    return fr_f32_to_f16(tu_rand_u64(rng) & 1 ? -v : v);
}

/* nb random blocks of type lt. */
static void rand_blocks(const lowbit_type *lt, uint8_t *w, int nb, uint64_t *rng) {
    for (size_t i = 0; i < lt->size * (size_t)nb; i++) w[i] = (uint8_t)tu_rand_u64(rng);
    for (int b = 0; b < nb; b++) {
        uint8_t *blk = w + lt->size * (size_t)b;
        for (int k = 0; k < 2; k++) {
            if (lt->d_off[k] < 0) continue;
            const uint16_t h = rand_scale(rng);
            memcpy(blk + lt->d_off[k], &h, 2);
        }
        if (lt->t == FR_TYPE_IQ1_M) {
            /* its F16 scale is the top nibbles of the 4 scale words: keep the
             * exponent's top bit clear (finite, below 2) */
            blk[FR_QK_K / 8 + FR_QK_K / 16 + 7] &= 0xBF;
        }
    }
}

static void gen_act(float *y, int n, int kind, uint64_t *rng) {
    for (int i = 0; i < n; i++) {
        y[i] = tu_rand_normal(rng);
        if (kind == 1 && tu_rand_u64(rng) % 29 == 0) y[i] *= 60.0f;
        if (kind == 2) y[i] = tu_rand_u64(rng) & 1 ? 1.0f : -1.0f; /* every quant +-127 */
    }
}

/* sum |x_i y_i| and the exact dot of the dequantized rows */
static void ref_dots(const fr_type_traits *tr, const void *w, const void *yq, int n, double *abs_s,
                     double *exact) {
    float *a = tu_malloc(sizeof(float) * n), *b = tu_malloc(sizeof(float) * n);
    tr->to_float(w, a, n);
    fr_type_traits_scalar(tr->vec_dot_type)->to_float(yq, b, n);
    *abs_s = *exact = 0;
    for (int i = 0; i < n; i++) {
        *abs_s += fabs((double)a[i] * b[i]);
        *exact += (double)a[i] * b[i];
    }
    free(a), free(b);
}

static void check_traits(void) {
    for (size_t i = 0; i < N_ELEMS(k_types); i++) {
        const fr_type_traits *tr = fr_type_traits_get(k_types[i].t);
        CHECK(tr && tr->supported && tr->to_float && tr->vec_dot);
        if (!tr) continue;
        CHECKF(tr->type_size == k_types[i].size, "%s: table %zu struct %zu", tr->name, tr->type_size, k_types[i].size);
        CHECKF(fabs(8.0 * tr->type_size / tr->blck_size - k_types[i].bpw) < 1e-9, "%s: %.4f bpw", tr->name,
               8.0 * tr->type_size / tr->blck_size);
        CHECK(tr->vec_dot_type == (k_types[i].t == FR_TYPE_IQ4_NL ? FR_TYPE_Q8_0 : FR_TYPE_Q8_K));
    }
    /* still-unsupported ids keep their names (files using them are rejected by name) */
    CHECK(fr_type_traits_get(34) && !fr_type_traits_get(34)->supported && !strcmp(fr_type_name(34), "TQ1_0"));
}

/* One type at the active level: scalar vs its own dequantization, level vs scalar. */
static void check_type(const lowbit_type *lt, const char *lvl, uint64_t *rng) {
    static const int nblocks[] = {1, 2, 7, 33};
    const fr_type_traits *sc = fr_type_traits_scalar(lt->t), *ac = fr_type_traits_get(lt->t);
    const fr_type_traits *vt = fr_type_traits_scalar(sc->vec_dot_type);
    const fr_from_float_fn act = fr_type_traits_get(sc->vec_dot_type)->act_from_float
                                     ? fr_type_traits_get(sc->vec_dot_type)->act_from_float
                                     : vt->from_float;
    for (size_t si = 0; si < N_ELEMS(nblocks); si++) {
        const int n = nblocks[si] * sc->blck_size * (sc->blck_size == FR_QK ? 8 : 1);
        uint8_t *w = tu_malloc(fr_row_size(lt->t, n)), *yq = tu_malloc(fr_row_size(sc->vec_dot_type, n));
        float *y = tu_malloc(sizeof(float) * n);
        for (int kind = 0; kind < 3; kind++) {
            rand_blocks(lt, w, n / sc->blck_size, rng);
            gen_act(y, n, kind, rng);
            act(y, yq, n);
            float ref = 0, got = 0;
            double abs_s, exact;
            sc->vec_dot(n, &ref, w, yq);
            ac->vec_dot(n, &got, w, yq);
            ref_dots(sc, w, yq, n, &abs_s, &exact);
            CHECKF(fabs(ref - exact) <= 1e-5 * abs_s + 1e-6, "%s n=%d kind %d: scalar dot %.9g, dequantized %.9g",
                   sc->name, n, kind, ref, exact);
            CHECKF(fabs((double)got - ref) <= 2e-5 * abs_s + 1e-6, "%s %s n=%d kind %d: got %.9g ref %.9g (scale %g)",
                   lvl, sc->name, n, kind, got, ref, abs_s);
        }
        free(w), free(yq), free(y);
    }
}

/* fr_matmul of one type at the active level: row-major over 37 rows, and for the
 * types with an IL16 layout also repacked (48 rows = 3 groups, so 3 threads split
 * them): repack then unpack must be the identity, and the IL16 GEMM (or, at levels
 * without one, the unpack-and-dot fallback) obeys the same bounds. */
static void check_matmul(const lowbit_type *lt, const char *lvl, fr_pool *p1, fr_pool *p3, int il, uint64_t *rng) {
    static const int ntoks[] = {1, 2, 7, 9, 128};
    const fr_type_traits *sc = fr_type_traits_scalar(lt->t);
    const fr_type vt = sc->vec_dot_type;
    const fr_from_float_fn act = fr_type_traits_get(vt)->act_from_float ? fr_type_traits_get(vt)->act_from_float
                                                                       : fr_type_traits_scalar(vt)->from_float;
    const int n_in = 3 * FR_QK_K, n_out = il ? 48 : 37;
    const size_t rs = fr_row_size(lt->t, n_in);
    uint8_t *wd = tu_malloc(rs * n_out), *yq = tu_malloc(fr_row_size(vt, n_in)), *wil = il ? tu_malloc(rs * n_out) : NULL;
    rand_blocks(lt, wd, n_out * n_in / sc->blck_size, rng);
    fr_weight w = {.data = wd, .type = lt->t, .n_in = n_in, .n_out = n_out, .layout = FR_LAYOUT_ROWS, .src = wd};
    if (il) {
        fr_il_repack(&w, wil);
        uint8_t *back = tu_malloc(rs);
        int same = w.layout == FR_LAYOUT_IL16;
        for (int r = 0; r < n_out; r++) {
            fr_il_unpack_row(lt->t, wil + (size_t)(r / 16) * 16 * rs, n_in, r % 16, back);
            same &= !memcmp(back, wd + (size_t)r * rs, rs);
        }
        CHECKF(same, "%s IL16 %s: repack then unpack is not the identity", lvl, sc->name);
        free(back);
    }
    const char *tag = il ? " IL16" : "";
    for (size_t k = 0; k < sizeof ntoks / sizeof *ntoks; k++) {
        const int nt = ntoks[k];
        float *x = tu_malloc(sizeof(float) * n_in * nt), *y1 = tu_malloc(sizeof(float) * n_out * nt),
              *y3 = tu_malloc(sizeof(float) * n_out * nt);
        void *qb = tu_malloc(fr_matmul_scratch(&w, nt) + 1);
        for (int t = 0; t < nt; t++) gen_act(x + (size_t)t * n_in, n_in, t % 3, rng);
        fr_matmul(p1, &w, x, nt, y1, qb);
        fr_matmul(p3, &w, x, nt, y3, qb);
        CHECKF(!memcmp(y1, y3, sizeof(float) * n_out * nt), "%s matmul %s%s n_tok=%d: 1 vs 3 threads differ", lvl,
               sc->name, tag, nt);
        fr_matmul(p3, &w, x + (size_t)(nt - 1) * n_in, 1, y3, qb);
        CHECKF(!memcmp(y1 + (size_t)(nt - 1) * n_out, y3, sizeof(float) * n_out),
               "%s matmul %s%s n_tok=%d: last token differs alone", lvl, sc->name, tag, nt);
        int bad = 0;
        for (int t = 0; t < nt; t++) {
            act(x + (size_t)t * n_in, yq, n_in);
            for (int r = 0; r < n_out; r++) {
                float ref;
                double abs_s, exact;
                sc->vec_dot(n_in, &ref, wd + (size_t)r * rs, yq);
                ref_dots(sc, wd + (size_t)r * rs, yq, n_in, &abs_s, &exact);
                bad += !(fabs((double)y1[(size_t)t * n_out + r] - ref) <= 2e-5 * abs_s + 1e-6);
            }
        }
        CHECKF(bad == 0, "%s matmul %s%s n_tok=%d: %d outputs off the scalar dot", lvl, sc->name, tag, nt, bad);
        free(x), free(y1), free(y3), free(qb);
    }
    free(wd), free(yq), free(wil);
}

/* IL16 GEMMs at the extremes of their integer paths, fed straight to il_pack /
 * il_gemm (fr_matmul's quantizer never yields -128): 16 rows of blocks with every
 * quant byte 0x00 or 0xFF (Q3_K: all -4 or all +3; IQ4_XS: all -127 or all 113) and
 * scale bytes 0xFF or 0x00 (sc - 32 = +31 or -32), every fourth row random, against
 * activations all 127, all -128 and random. An int16 or int32 overflow would be far
 * off the scalar dot. */
enum { LBX_NB = 2, LBX_N = LBX_NB * FR_QK_K, LBX_NT = 3 };
static void check_il_extremes(const lowbit_type *lt, const char *lvl, uint64_t *rng) {
    const fr_type_traits *ac = fr_type_traits_get(lt->t), *sc = fr_type_traits_scalar(lt->t);
    /* IQ4_NL's IL16 GEMM is Q4_0's over Q8_0 activations: all int32, no int16 step */
    if (!fr_il_layout_known(lt->t) || !ac->il_gemm || sc->vec_dot_type != FR_TYPE_Q8_K) return;
    const size_t rs = lt->size * LBX_NB;
    static uint8_t w[16 * LBX_NB * 256], g[16 * LBX_NB * 256];
    static fr_block_q8_k y[LBX_NT][LBX_NB];
    static uint8_t yp[LBX_NT][2 * sizeof(y[0]) + 256] __attribute__((aligned(64)));
    rand_blocks(lt, w, 16 * LBX_NB, rng);
    for (int r = 0; r < 16; r++)
        for (int b = 0; b < LBX_NB; b++) {
            if (r % 4 == 3) continue;
            uint8_t *blk = w + (size_t)r * rs + lt->size * (size_t)b;
            uint16_t d;
            memcpy(&d, blk + lt->d_off[0], 2);
            memset(blk, (r & 1) ? 0xFF : 0x00, lt->size);
            if (lt->t == FR_TYPE_Q3_K && (r & 2)) memset(blk + offsetof(fr_block_q3_k, scales), 0x00, 12);
            if (lt->t == FR_TYPE_IQ4_XS) {
                const uint8_t sb = (r & 2) ? 0x00 : 0xFF;
                memset(blk + offsetof(fr_block_iq4_xs, scales_h), sb, 2 + FR_QK_K / 64);
            }
            memcpy(blk + lt->d_off[0], &d, 2);
        }
    for (int t = 0; t < LBX_NT; t++)
        for (int b = 0; b < LBX_NB; b++) {
            y[t][b].d = 0.5f;
            for (int i = 0; i < FR_QK_K; i++)
                y[t][b].qs[i] = (int8_t)(t == 0 ? 127 : t == 1 ? -128 : (int)(tu_rand_u64(rng) % 256) - 128);
            for (int j = 0; j < FR_QK_K / 16; j++) {
                int sum = 0;
                for (int i = 0; i < 16; i++) sum += y[t][b].qs[16 * j + i];
                y[t][b].bsums[j] = (int16_t)sum;
            }
        }
    fr_il_pack_group(lt->t, w, LBX_N, g);
    for (int t = 0; t < LBX_NT; t++) ac->il_pack(y[t], yp[t], LBX_N);
    float out[LBX_NT][16];
    ac->il_gemm(LBX_N, g, 1, yp, sizeof(yp[0]), LBX_NT, &out[0][0], 16);
    int bad = 0;
    for (int t = 0; t < LBX_NT; t++)
        for (int r = 0; r < 16; r++) {
            float ref;
            double abs_s, exact;
            sc->vec_dot(LBX_N, &ref, w + (size_t)r * rs, y[t]);
            ref_dots(sc, w + (size_t)r * rs, y[t], LBX_N, &abs_s, &exact);
            bad += !(fabs((double)out[t][r] - ref) <= 2e-5 * abs_s + 1e-6);
        }
    CHECKF(bad == 0, "%s IL16 %s extremes: %d outputs off the scalar dot", lvl, sc->name, bad);
}

int main(void) {
    fr_pool *p1 = fr_pool_new(1), *p3 = fr_pool_new(3);
    CHECK(p1 && p3);
    if (!p1 || !p3) return tu_finish("test_kernels_lowbit");
    check_traits();
    const int initial = fr_kernels_get_level();
    for (int l = 0; l < FR_KERNELS_LEVEL_COUNT; l++) {
        if (!fr_kernels_supported(l)) {
            printf("level %s: not supported here, skipped\n", fr_kernels_level_str(l));
            continue;
        }
        CHECK(fr_kernels_set_level(l) == 0);
        uint64_t rng = 0x10b17000u; /* same data at every level */
        for (size_t i = 0; i < N_ELEMS(k_types); i++) {
            check_type(&k_types[i], fr_kernels_level_str(l), &rng);
            check_matmul(&k_types[i], fr_kernels_level_str(l), p1, p3, 0, &rng);
            if (fr_il_layout_known(k_types[i].t)) {
                check_matmul(&k_types[i], fr_kernels_level_str(l), p1, p3, 1, &rng);
                check_il_extremes(&k_types[i], fr_kernels_level_str(l), &rng);
            }
        }
        printf("level %s: %zu types tested\n", fr_kernels_level_str(l), N_ELEMS(k_types));
    }
    CHECK(fr_kernels_set_level(initial) == 0);
    fr_pool_free(p1);
    fr_pool_free(p3);
    return tu_finish("test_kernels_lowbit");
}
