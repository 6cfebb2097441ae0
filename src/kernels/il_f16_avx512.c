/* il_f16_avx512.c - AVX-512 GEMM over IL16 F16 weights (layout in
 * kernels/interleave.h: column j of a 16-row group is 16 consecutive F16 values),
 * compiled with the AVX-512 flags of cpu_avx512.c and installed by
 * fr_kernels_install_il_avx512.
 *
 * Outer-product form: a column widens to one register of 16 rows' weights, which
 * meets each token's activation x[t][j] broadcast:
 *   acc[t] = fma(w[0..15][j], x[t][j], acc[t])        j in order, in blocks of 64
 * so no output needs a horizontal sum and one widened column serves every token of
 * the tile from registers. Row-major dot products instead spend a load and a
 * conversion per 16 multiply-adds of each row: that, not the FMA units, bounded the
 * old F16 prefill. Every output is one FMA chain in column order whatever the tile,
 * token count or thread split, so results are bit-identical across them (tested).
 * Activations arrive as F16 (the type's vec_dot_type, as ggml rounds them) and are
 * widened to F32 once per matmul by il_pack. */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__F16C__)

#include <immintrin.h>

#include "kernels/il_avx512.h"

#define FR_INLINE static inline __attribute__((always_inline))

/* F16 activations -> F32 (the packed rows the GEMM reads). */
static void il_pack_f16(const void *vq, void *vp, int64_t n) {
    const uint16_t *x = vq;
    float *y = vp;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* G groups (16 rows each, gs values apart) x T tokens (rows of y, y_row floats
 * apart) over all n columns, into out[t * ld + 16 * gi + r]. G * T accumulators
 * plus G weight registers stay in the 32 zmm registers (G * T <= 24).
 * Columns go in blocks of FR_F16_COLS: each block's chain starts from zero and is
 * then added to the output, so a long row is not one chain of n roundings into an
 * ever larger sum (one chain moved the golden F16 logits ~30 % further from
 * llama.cpp's, whose dot products keep 16 lane sums). */
#define FR_F16_COLS 64
FR_INLINE void tile_f16(int G, int T, int n, const uint16_t *g, size_t gs, const float *y, size_t y_row, float *out,
                        size_t ld) {
    for (int j0 = 0; j0 < n; j0 += FR_F16_COLS) {
        const int j1 = n - j0 < FR_F16_COLS ? n : j0 + FR_F16_COLS;
        __m512 acc[4][8];
        for (int gi = 0; gi < G; gi++)
            for (int t = 0; t < T; t++) acc[gi][t] = _mm512_setzero_ps();
        for (int j = j0; j < j1; j++) {
            if (!(j & 1)) /* one line holds two columns of a group */
                for (int gi = 0; gi < G; gi++) fr_il_prefetch(g + gi * gs + (size_t)j * 16, 64);
            __m512 w[4];
            for (int gi = 0; gi < G; gi++)
                w[gi] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + gi * gs + (size_t)j * 16)));
            for (int t = 0; t < T; t++) {
                const __m512 x = _mm512_set1_ps(y[(size_t)t * y_row + j]);
                for (int gi = 0; gi < G; gi++) acc[gi][t] = _mm512_fmadd_ps(w[gi], x, acc[gi][t]);
            }
        }
        for (int gi = 0; gi < G; gi++)
            for (int t = 0; t < T; t++) {
                float *o = out + (size_t)t * ld + 16 * gi;
                _mm512_storeu_ps(o, j0 ? _mm512_add_ps(_mm512_loadu_ps(o), acc[gi][t]) : acc[gi][t]);
            }
    }
}

/* The tile shapes as compile-time constants (accumulators in registers). Decode
 * (T = 1) takes 4 groups: 4 independent FMA chains hide the FMA latency; a batch
 * takes 3 groups x 8 tokens: 24 FMAs per 3 widened columns and 8 broadcasts. */
#define TILE_T(G, T) tile_f16(G, T, n, g, gs, y, y_row, out, ld)
#define TILE_G(G)                                                                                                    \
    switch (T) {                                                                                                     \
    case 1: TILE_T(G, 1); break;                                                                                     \
    case 2: TILE_T(G, 2); break;                                                                                     \
    case 3: TILE_T(G, 3); break;                                                                                     \
    case 4: TILE_T(G, 4); break;                                                                                     \
    case 5: TILE_T(G, 5); break;                                                                                     \
    case 6: TILE_T(G, 6); break;                                                                                     \
    case 7: TILE_T(G, 7); break;                                                                                     \
    default: TILE_T(G, 8); break;                                                                                    \
    }

static void tile_any(int G, int T, int n, const uint16_t *g, size_t gs, const float *y, size_t y_row, float *out,
                     size_t ld) {
    switch (G) {
    case 1: TILE_G(1); break;
    case 2: TILE_G(2); break;
    case 3: TILE_G(3); break;
    default: TILE_T(4, 1); break; /* only T == 1 comes with 4 groups */
    }
}

/* fr_il_gemm_fn for F16: n_groups groups at w (16 * n values each), n_tok packed
 * activation rows at yp (yp_row bytes apart). Tokens go in chunks whose activations
 * (4n bytes per token) stay within ~768 KiB of L2 while the groups stream past. */
static void il_gemm_f16(int n, const void *w, int n_groups, const void *yp, size_t yp_row, int n_tok, float *out,
                        size_t ld) {
    const uint16_t *wg = w;
    const size_t gs = (size_t)16 * (size_t)n, y_row = yp_row / sizeof(float);
    const int gmax = n_tok == 1 ? 4 : 3;
    int chunk = (int)((768u << 10) / ((size_t)4 * (size_t)n));
    chunk = chunk < 8 ? 8 : chunk / 8 * 8;
    for (int t0 = 0; t0 < n_tok; t0 += chunk) {
        const int tn = n_tok - t0 < chunk ? n_tok - t0 : chunk;
        for (int gi = 0; gi < n_groups; gi += gmax) {
            const int G = n_groups - gi < gmax ? n_groups - gi : gmax;
            for (int t = t0; t < t0 + tn; t += 8) {
                const int T = t0 + tn - t < 8 ? t0 + tn - t : 8;
                tile_any(G, T, n, wg + (size_t)gi * gs, gs, (const float *)yp + (size_t)t * y_row, y_row,
                         out + (size_t)t * ld + (size_t)gi * 16, ld);
            }
        }
    }
}

void fr_kernels_install_il_f16_avx512(fr_type_traits *t) {
    t[FR_TYPE_F16].il_pack = il_pack_f16;
    t[FR_TYPE_F16].il_gemm = il_gemm_f16;
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_f16_avx512(fr_type_traits *t) { (void)t; }

#endif
