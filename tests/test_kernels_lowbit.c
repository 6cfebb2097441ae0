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
 *  - traits: block sizes and bytes match the structs; bits per weight as GGUF says. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "core/pool.h"
#include "kernels/dispatch.h"
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
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
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
        uint8_t *w = malloc(fr_row_size(lt->t, n)), *yq = malloc(fr_row_size(sc->vec_dot_type, n));
        float *y = malloc(sizeof(float) * n);
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

/* fr_matmul of one type over 37 rows (3 blocks each) at the active level. */
static void check_matmul(const lowbit_type *lt, const char *lvl, fr_pool *p1, fr_pool *p3, uint64_t *rng) {
    static const int ntoks[] = {1, 2, 7, 9, 128};
    const fr_type_traits *sc = fr_type_traits_scalar(lt->t);
    const fr_type vt = sc->vec_dot_type;
    const fr_from_float_fn act = fr_type_traits_get(vt)->act_from_float ? fr_type_traits_get(vt)->act_from_float
                                                                       : fr_type_traits_scalar(vt)->from_float;
    const int n_in = 3 * FR_QK_K, n_out = 37;
    const size_t rs = fr_row_size(lt->t, n_in);
    uint8_t *wd = malloc(rs * n_out), *yq = malloc(fr_row_size(vt, n_in));
    rand_blocks(lt, wd, n_out * n_in / sc->blck_size, rng);
    const fr_weight w = {.data = wd, .type = lt->t, .n_in = n_in, .n_out = n_out, .layout = FR_LAYOUT_ROWS, .src = wd};
    for (size_t k = 0; k < sizeof ntoks / sizeof *ntoks; k++) {
        const int nt = ntoks[k];
        float *x = malloc(sizeof(float) * n_in * nt), *y1 = malloc(sizeof(float) * n_out * nt),
              *y3 = malloc(sizeof(float) * n_out * nt);
        void *qb = malloc(fr_matmul_scratch(&w, nt) + 1);
        for (int t = 0; t < nt; t++) gen_act(x + (size_t)t * n_in, n_in, t % 3, rng);
        fr_matmul(p1, &w, x, nt, y1, qb);
        fr_matmul(p3, &w, x, nt, y3, qb);
        CHECKF(!memcmp(y1, y3, sizeof(float) * n_out * nt), "%s matmul %s n_tok=%d: 1 vs 3 threads differ", lvl,
               sc->name, nt);
        fr_matmul(p3, &w, x + (size_t)(nt - 1) * n_in, 1, y3, qb);
        CHECKF(!memcmp(y1 + (size_t)(nt - 1) * n_out, y3, sizeof(float) * n_out),
               "%s matmul %s n_tok=%d: last token differs alone", lvl, sc->name, nt);
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
        CHECKF(bad == 0, "%s matmul %s n_tok=%d: %d outputs off the scalar dot", lvl, sc->name, nt, bad);
        free(x), free(y1), free(y3), free(qb);
    }
    free(wd), free(yq);
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
            check_matmul(&k_types[i], fr_kernels_level_str(l), p1, p3, &rng);
        }
        printf("level %s: %zu types tested\n", fr_kernels_level_str(l), N_ELEMS(k_types));
    }
    CHECK(fr_kernels_set_level(initial) == 0);
    fr_pool_free(p1);
    fr_pool_free(p3);
    return tu_finish("test_kernels_lowbit");
}
