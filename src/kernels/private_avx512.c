/* private_avx512.c - AVX-512 dot products of frugal's own types (I8C, NF4, FP8O;
 * layouts in core/quant_private.h). Compiled with the same -m flags as cpu_avx512.c
 * and entered only when kernels/dispatch.c selected the AVX512 level (so the CPU and
 * OS were checked); core/quant_private.c installs them into its own table, separate
 * from the GGUF kernel table.
 *
 * Contract: as the scalar reference, with
 *   |simd - scalar| <= 1e-5 * sum_i |w_i * y_i| + 1e-6
 * (I8C's integer block sums are exact; NF4 and FP8O decode to the very floats the
 * scalar code uses — NF4 via a 16-entry vpermps table, FP8 E4M3 via the
 * E4M3 << 7 == F16 * 2^-8 identity and vcvtph2ps — only the summation order differs). */
#include "core/quant_private.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX2__) && \
    defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* ------------------------------------------------------------------ I8C x Q8_0 */

/* int8 x int8 over one 32-value block: 16 int32 partial sums (exact, -128 included). */
static inline __m512i idot32(const int8_t *a, const int8_t *b) {
    const __m512i wa = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)a));
    const __m512i wb = _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)b));
    return _mm512_madd_epi16(wa, wb);
}

static void dot_i8c(int n, float *s, const void *vx, const void *vy) {
    const uint8_t *row = vx;
    const int8_t *q = (const int8_t *)(row + 2);
    const fr_block_q8_0 *y = vy;
    const int nb = n / FR_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot32(q + b * FR_QK, y[b].qs)), _mm512_set1_ps(h2f(y[b].d)), acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot32(q + (b + 1) * FR_QK, y[b + 1].qs)),
                               _mm512_set1_ps(h2f(y[b + 1].d)), acc1);
    }
    if (b < nb)
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot32(q + b * FR_QK, y[b].qs)), _mm512_set1_ps(h2f(y[b].d)), acc0);
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) * h2f(rd16(row));
}

/* ------------------------------------------------------------------ NF4 x F32 */

static void dot_nf4(int n, float *s, const void *vx, const void *vy) {
    const fr_block_nf4 *x = vx;
    const float *y = vy;
    const __m512 tbl = _mm512_loadu_ps(fr_nf4_levels);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512 acc = _mm512_setzero_ps();
    for (int i = 0; i < n / FR_NF4_SUPER; i++) {
        const float D = h2f(rd16(&x[i].d));
        for (int j = 0; j < FR_NF4_SUPER / FR_NF4_BLOCK; j++) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(x[i].qs + j * (FR_NF4_BLOCK / 2)));
            const __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            const float *yb = y + i * FR_NF4_SUPER + j * FR_NF4_BLOCK;
            const __m512 l0 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(lo)), tbl);
            const __m512 l1 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(lo, 1)), tbl);
            const __m512 l2 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_castsi256_si128(hi)), tbl);
            const __m512 l3 = _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm256_extracti128_si256(hi, 1)), tbl);
            __m512 bs = _mm512_mul_ps(l0, _mm512_loadu_ps(yb));
            bs = _mm512_fmadd_ps(l1, _mm512_loadu_ps(yb + 16), bs);
            bs = _mm512_fmadd_ps(l2, _mm512_loadu_ps(yb + 32), bs);
            bs = _mm512_fmadd_ps(l3, _mm512_loadu_ps(yb + 48), bs);
            acc = _mm512_fmadd_ps(bs, _mm512_set1_ps(D * (float)x[i].scales[j]), acc);
        }
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ------------------------------------------------------------------ FP8O x F32 */

/* 16 E4M3 codes -> 16 floats worth 2^-8 times their value (see above). */
static inline __m512 fp8x16(const uint8_t *c) {
    const __m256i w = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)c));
    const __m256i h = _mm256_or_si256(_mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x7f)), 7),
                                      _mm256_slli_epi16(_mm256_and_si256(w, _mm256_set1_epi16(0x80)), 8));
    return _mm512_cvtph_ps(h);
}

static void dot_fp8o(int n, float *s, const void *vx, const void *vy) {
    const fr_block_fp8o *x = vx;
    const float *y = vy;
    __m512 acc = _mm512_setzero_ps();
    float corr = 0.0f;
    for (int i = 0; i < n / FR_FP8O_BLOCK; i++) {
        const float d = h2f(rd16(&x[i].d));
        const float *yb = y + i * FR_FP8O_BLOCK;
        __m512 b0 = _mm512_mul_ps(fp8x16(x[i].qs), _mm512_loadu_ps(yb));
        __m512 b1 = _mm512_mul_ps(fp8x16(x[i].qs + 16), _mm512_loadu_ps(yb + 16));
        for (int g = 32; g < FR_FP8O_BLOCK; g += 32) {
            b0 = _mm512_fmadd_ps(fp8x16(x[i].qs + g), _mm512_loadu_ps(yb + g), b0);
            b1 = _mm512_fmadd_ps(fp8x16(x[i].qs + g + 16), _mm512_loadu_ps(yb + g + 16), b1);
        }
        acc = _mm512_fmadd_ps(_mm512_add_ps(b0, b1), _mm512_set1_ps(d * 256.0f), acc);
        for (int k = 0; k < FR_FP8O_MAX_OUT; k++) {
            const int j = x[i].idx[k];
            if (j < FR_FP8O_BLOCK)
                corr += (h2f(rd16(&x[i].out[k])) - fr_fp8_e4m3_to_f32(x[i].qs[j]) * d) * yb[j];
        }
    }
    *s = _mm512_reduce_add_ps(acc) + corr;
}

int fr_private_install_avx512(fr_type_traits *t) {
    t[FR_TYPE_I8C - FR_TYPE_PRIVATE_BASE].vec_dot = dot_i8c;
    t[FR_TYPE_NF4 - FR_TYPE_PRIVATE_BASE].vec_dot = dot_nf4;
    t[FR_TYPE_FP8O - FR_TYPE_PRIVATE_BASE].vec_dot = dot_fp8o;
    return 1;
}

#else /* compiler without these ISA flags, or not x86-64 */

int fr_private_install_avx512(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
