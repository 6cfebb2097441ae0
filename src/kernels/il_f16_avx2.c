/* il_f16_avx2.c - AVX2 GEMM over IL16 F16 weights (layout in kernels/interleave.h:
 * column j of a 16-row group is the 16 rows' F16 values, consecutive), for CPUs
 * with AVX2 + FMA + F16C but no AVX-512. Compiled with the AVX2 level's flags
 * (-mavx2 -mfma -mf16c) and installed by fr_kernels_install_il_avx2; the AVX-512
 * level installs il_f16_avx512.c's kernel over it.
 *
 * The AVX-512 kernel's outer product, with a 16-row column as two ymm registers
 * (rows 0..7 and rows 8..15) instead of one zmm:
 *   acc[t] = fma(w[0..15][j], x[t][j], acc[t])        j in order, in blocks of 64
 * Each 64-column block's chain starts from zero, then out = block 0, out += block 1,
 * ... in block order - per output lane exactly the operations of il_f16_avx512.c
 * (a lane of an FMA does not see its neighbours), so both levels give the same bits
 * whatever tile, token count or thread share an output falls in (tested).
 * Activations arrive as F16 (the type's vec_dot_type) and il_pack widens them to
 * F32 once per matmul. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>

#include "kernels/il_avx2.h"
#include "kernels/il_drive.h"

#define FR_INLINE static inline __attribute__((always_inline))

/* Columns per partial chain: must be il_f16_avx512.c's FR_F16_COLS (the same
 * chains and the same additions of their sums, hence the same bits). */
#define F16_COLS 64

/* Batch tile: 1 group x F16_T tokens. 12 accumulators, the column's 2 widened
 * weight registers and one broadcast fill 15 of the 16 ymm registers; each column
 * costs 2 conversions and 6 broadcasts (loads) per 12 FMAs, so the FMA units, not
 * the load or shuffle ports, set the pace. Single thread on Zen 4 (n = 2048, 2048
 * rows, 128 tokens), GMAC/s: T = 4: 45, 5: 46, 6: 46, 7: 28, 8: 30 (7 and 8 run
 * out of registers). 6 rather than 4 or 5: 12 independent chains also cover the
 * 5-cycle FMA latency of Zen 2/3 and Haswell (2 FMAs a cycle need 10 in flight). */
#define F16_T 6
/* Decode tile: F16_G groups x 1 token, 2 * F16_G independent FMA chains on one
 * broadcast, and F16_G concurrent weight streams for the prefetcher. Single
 * thread, 2048 x 5632 (23 MiB), median GMAC/s: G = 3: 14.4, 4: 16.0, 6: 14.5. */
#define F16_G 4

/* F16 activations -> F32 (the packed rows the GEMM reads); n values. */
static void il_pack_f16(const void *vq, void *vp, int64_t n) {
    const uint16_t *x = vq;
    float *y = vp;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

/* G groups (16 rows each, gs values apart, from g) x T tokens (rows of y, y_row
 * floats apart) over all n columns, into out[t * ld + 16 * gi + r]. G and T are
 * compile-time constants after inlining (2 * G * T accumulators in registers).
 * Per output: one FMA chain from zero per F16_COLS columns, added to the output in
 * block order (the first block stored as it is), as il_f16_avx512.c. */
FR_INLINE void tile_f16(int G, int T, int n, const uint16_t *g, size_t gs, const float *y, size_t y_row, float *out,
                        size_t ld) {
    for (int j0 = 0; j0 < n; j0 += F16_COLS) {
        const int j1 = n - j0 < F16_COLS ? n : j0 + F16_COLS;
        __m256 acc[F16_G][2][F16_T];
        for (int gi = 0; gi < G; gi++)
            for (int t = 0; t < T; t++) acc[gi][0][t] = acc[gi][1][t] = _mm256_setzero_ps();
        for (int j = j0; j < j1; j++) {
            if (!(j & 1)) /* one line holds two columns of a group */
                for (int gi = 0; gi < G; gi++) fr_il_prefetch(g + gi * gs + (size_t)j * 16, 64);
            if (T == 1) { /* each widened half straight into its FMA: 8 held weights would spill */
                const __m256 x = _mm256_broadcast_ss(y + j);
                for (int gi = 0; gi < G; gi++)
                    for (int h = 0; h < 2; h++)
                        acc[gi][h][0] = _mm256_fmadd_ps(
                            _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + gi * gs + (size_t)j * 16 + 8 * h))),
                            x, acc[gi][h][0]);
                continue;
            }
            __m256 w[F16_G][2];
            for (int gi = 0; gi < G; gi++)
                for (int h = 0; h < 2; h++)
                    w[gi][h] =
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(g + gi * gs + (size_t)j * 16 + 8 * h)));
            for (int t = 0; t < T; t++) {
                const __m256 x = _mm256_broadcast_ss(y + (size_t)t * y_row + j);
                for (int gi = 0; gi < G; gi++)
                    for (int h = 0; h < 2; h++) acc[gi][h][t] = _mm256_fmadd_ps(w[gi][h], x, acc[gi][h][t]);
            }
        }
        for (int gi = 0; gi < G; gi++)
            for (int t = 0; t < T; t++)
                for (int h = 0; h < 2; h++) {
                    float *o = out + (size_t)t * ld + 16 * gi + 8 * h;
                    _mm256_storeu_ps(o, j0 ? _mm256_add_ps(_mm256_loadu_ps(o), acc[gi][h][t]) : acc[gi][h][t]);
                }
    }
}

/* fr_il_tile_fn shape for the shared driver: one group (g) x T tokens of the F32
 * rows at yt (yp_row bytes apart); nb = n, the values per row (F16 blocks are 1). */
#define TILE_F16(T, nb, g, yt, yp_row, o, ld)                                                                       \
    tile_f16(1, T, nb, (const uint16_t *)(g), 0, (const float *)(yt), (yp_row) / sizeof(float), o, ld)
FR_IL_DEFINE_GEMM_T(il_gemm_f16_batch, TILE_F16, F16_T, 1, 16 * sizeof(uint16_t), sizeof(float))

/* Decode: n_groups groups at w (16 * n values each), F16_G at a time (a last
 * shorter tile), against the one F32 activation row y. */
static void il_gemv_f16(int n, const uint16_t *w, int n_groups, const float *y, float *out) {
    const size_t gs = (size_t)16 * (size_t)n;
    int gi = 0;
    for (; gi + F16_G <= n_groups; gi += F16_G) tile_f16(F16_G, 1, n, w + (size_t)gi * gs, gs, y, 0, out + 16 * gi, 0);
    for (; gi < n_groups; gi++) tile_f16(1, 1, n, w + (size_t)gi * gs, gs, y, 0, out + 16 * gi, 0);
}

/* fr_il_gemm_fn for F16: n_groups groups at w, n_tok packed F32 activation rows at
 * yp (yp_row bytes apart), out[t * ld + r]. One token goes through the multi-group
 * decode tile, more through the shared driver's token tiles; every output is the
 * same chain either way. */
static void il_gemm_f16(int n, const void *w, int n_groups, const void *yp, size_t yp_row, int n_tok, float *out,
                        size_t ld) {
    if (n_tok == 1) il_gemv_f16(n, w, n_groups, yp, out);
    else il_gemm_f16_batch(n, w, n_groups, yp, yp_row, n_tok, out, ld);
}

void fr_kernels_install_il_f16_avx2(fr_type_traits *t) {
    t[FR_TYPE_F16].il_pack = il_pack_f16;
    t[FR_TYPE_F16].il_gemm = il_gemm_f16;
}

#else

#include "kernels/il_avx2.h"

void fr_kernels_install_il_f16_avx2(fr_type_traits *t) { (void)t; }

#endif
