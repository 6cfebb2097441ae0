/* cpu_avx512.c - AVX-512 F/BW/VL + VNNI kernels (+ AVX512_BF16 when the compiler
 * has it), compiled with the matching -m flags and entered only after
 * kernels/dispatch.c checked the CPU and OS. The level installs the AVX2 table
 * first; this file overrides the hot dots: Q4_0, Q8_0, Q4_K, Q6_K, F16, F32, BF16.
 *
 * Contract of every dot here: as the scalar reference, with
 * |simd - scalar| <= 1e-5 * sum_i |x_i * y_i| + 1e-6 (integer parts exact; only the
 * float accumulation order differs). Unlike the AVX2 sign trick, the integer dots
 * here are exact for the full int8 range, -128 included.
 *
 * Integer technique: vpdpbusd multiplies unsigned by signed bytes. Signed weights are
 * made unsigned by an offset (q + 128, or Q4_0's raw nibble 0..15 = (q - 8) + 8) and
 * the offset is taken back out with a second vpdpbusd of the constant against y:
 *   sum (q+c) y - c sum y = sum q y, all in int32 without saturation.
 * Two legacy blocks share one 512-bit register (8 int32 lanes each) and get their own
 * d_x*d_y through a lane mask, so no horizontal sum is needed per block. */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/exp_poly.h"
#include "kernels/il_avx512.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum256_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* Two 32-byte rows into one register: a in lanes 0..7, b in 8..15. */
static inline __m512i load2x32(const void *a, const void *b) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(a)), loadu256(b), 1);
}

/* Lanes 0..left-1 (all 16 when left >= 16). */
static inline __mmask16 tail_mask(int left) {
    return left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

/* 8 lanes of s0 then 8 lanes of s1. */
static inline __m512 scale2(float s0, float s1) {
    return _mm512_mask_blend_ps((__mmask16)0xFF00, _mm512_set1_ps(s0), _mm512_set1_ps(s1));
}

/* ------------------------------------------------------------ float rows
 * The F16 dot uses ggml's AVX-512 order (4 x 16 lanes, 64 per step, (a0+a2)+(a1+a3),
 * _mm512_reduce_add_ps, float leftovers), the F32 dot the order below; cpu_avx2.c
 * computes both orders with ymm pairs, so the two levels agree bit for bit. Golden
 * logits of the F32 models turned out sensitive to the F32 order: this one keeps
 * them within test_golden's tolerance, ggml's (a0+a2)+(a1+a3) did not. */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
        a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(y + i + 16), a1);
        a2 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 32), _mm512_loadu_ps(y + i + 32), a2);
        a3 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i + 48), _mm512_loadu_ps(y + i + 48), a3);
    }
    for (; i + 16 <= n; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(y + i), a0);
    if (i < n) { /* masked tail: lanes past n load as 0 and add nothing */
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i), a1);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
    *s = sum;
}

static inline __m512 ld_f16(const uint16_t *p) { return _mm512_cvtph_ps(loadu256(p)); }

/* The horizontal sum of the F16 dot, by a fixed tree: lane i + lane i+8, then i+4,
 * i+2, i+1 (the tree GCC's _mm512_reduce_add_ps uses; written out so every compiler
 * gives the same bits and hsum512_x16 can reproduce it). */
static inline float hsum512(__m512 v) {
    __m256 a = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 b = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    b = _mm_add_ps(b, _mm_movehl_ps(b, b));
    return _mm_cvtss_f32(_mm_add_ss(b, _mm_movehdup_ps(b)));
}

/* Input slot s of hsum512_x16 comes out in lane KDOT_LANE[s] (an involution). */
static const int KDOT_LANE[16] = {0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15};

/* hsum512 of 16 vectors at once, lane KDOT_LANE[s] = hsum512(v[s]): the same
 * pairs added at every level of the tree, two vectors' halves per instruction, so
 * 16 sums cost 15 adds instead of 16 reductions of 4 dependent steps. */
static inline __m512 hsum512_x16(const __m512 v[16]) {
    __m512 c[8], e[4], f[2];
    for (int k = 0; k < 8; k++) /* i + i+8 of rows k and k+8 */
        c[k] = _mm512_add_ps(_mm512_shuffle_f32x4(v[k], v[k + 8], 0x44), _mm512_shuffle_f32x4(v[k], v[k + 8], 0xEE));
    for (int k = 0; k < 4; k++) /* i + i+4 */
        e[k] = _mm512_add_ps(_mm512_shuffle_f32x4(c[k], c[k + 4], 0x88), _mm512_shuffle_f32x4(c[k], c[k + 4], 0xDD));
    for (int k = 0; k < 2; k++) /* i + i+2 */
        f[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(e[k]), _mm512_castps_pd(e[k + 2]))),
                             _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(e[k]), _mm512_castps_pd(e[k + 2]))));
    return _mm512_add_ps(_mm512_shuffle_ps(f[0], f[1], _MM_SHUFFLE(2, 0, 2, 0)), /* i + i+1 */
                         _mm512_shuffle_ps(f[0], f[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

/* F16 row x (F16 or F32) vector: 4 accumulators over 64-value steps, a scalar tail.
 * y_f32 is a compile-time constant after inlining. */
static inline __attribute__((always_inline)) float dot_f16_core(int n, const uint16_t *x, const void *vy,
                                                                 int y_f32) {
    const uint16_t *yh = vy;
    const float *yf = vy;
#define LDY(i) (y_f32 ? _mm512_loadu_ps(yf + (i)) : ld_f16(yh + (i)))
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_fmadd_ps(ld_f16(x + i), LDY(i), a0);
        a1 = _mm512_fmadd_ps(ld_f16(x + i + 16), LDY(i + 16), a1);
        a2 = _mm512_fmadd_ps(ld_f16(x + i + 32), LDY(i + 32), a2);
        a3 = _mm512_fmadd_ps(ld_f16(x + i + 48), LDY(i + 48), a3);
    }
#undef LDY
    float sum = hsum512(_mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3)));
    for (; i < n; i++) sum += h2f(x[i]) * (y_f32 ? yf[i] : h2f(yh[i]));
    return sum;
}

static void dot_f16(int n, float *s, const void *vx, const void *vy) { *s = dot_f16_core(n, vx, vy, 0); }

/* dot_f16 of K rows against nh query heads (their F16 values as F32), with the same
 * operations dot_f16 gives each pair, 16 rows at a time: the rows' first n & ~63
 * values are widened once into an F32 tile (L1) that every head reads, each row's
 * 64-value chains end in one vector, and hsum512_x16 reduces the 16 vectors
 * together; values past the last 64-step are added after, in order, as dot_f16
 * does. kdot_tile is instantiated for n64 = 64 and 128 (head sizes 64..191), so
 * the query stays in registers and the 16 row vectors need no stack; other sizes
 * take the generic instance. Heads of more than 256 values go row by row. */
#define KDOT_MAX_N 256
static inline __attribute__((always_inline)) void kdot_tile(int n64, const float *tile, const float *qh, __m512 v[16]) {
    if (n64 == 0) {
        for (int r = 0; r < 16; r++) v[r] = _mm512_setzero_ps();
        return;
    }
    __m512 q[8];
    const int nq = n64 / 16 < 8 ? n64 / 16 : 8;
    for (int j = 0; j < nq; j++) q[j] = _mm512_loadu_ps(qh + 16 * j);
#pragma GCC unroll 16
    for (int r = 0; r < 16; r++) {
        const float *k = tile + r * n64;
        __m512 a0, a1, a2, a3;
        if (n64 <= 128) { /* q in registers */
            a0 = _mm512_mul_ps(_mm512_load_ps(k), q[0]);
            a1 = _mm512_mul_ps(_mm512_load_ps(k + 16), q[1]);
            a2 = _mm512_mul_ps(_mm512_load_ps(k + 32), q[2]);
            a3 = _mm512_mul_ps(_mm512_load_ps(k + 48), q[3]);
            if (n64 == 128) {
                a0 = _mm512_fmadd_ps(_mm512_load_ps(k + 64), q[4], a0);
                a1 = _mm512_fmadd_ps(_mm512_load_ps(k + 80), q[5], a1);
                a2 = _mm512_fmadd_ps(_mm512_load_ps(k + 96), q[6], a2);
                a3 = _mm512_fmadd_ps(_mm512_load_ps(k + 112), q[7], a3);
            }
        } else {
            a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (int i = 0; i < n64; i += 64) {
                a0 = _mm512_fmadd_ps(_mm512_load_ps(k + i), _mm512_loadu_ps(qh + i), a0);
                a1 = _mm512_fmadd_ps(_mm512_load_ps(k + i + 16), _mm512_loadu_ps(qh + i + 16), a1);
                a2 = _mm512_fmadd_ps(_mm512_load_ps(k + i + 32), _mm512_loadu_ps(qh + i + 32), a2);
                a3 = _mm512_fmadd_ps(_mm512_load_ps(k + i + 48), _mm512_loadu_ps(qh + i + 48), a3);
            }
        }
        v[r] = _mm512_add_ps(_mm512_add_ps(a0, a2), _mm512_add_ps(a1, a3));
    }
}

static inline __attribute__((always_inline)) void kdot_rows(int n, int n64, const void *const *krows, int n_rows,
                                                            const float *q, int nh, float *s, size_t s_stride) {
    float tile[16 * KDOT_MAX_N] __attribute__((aligned(64)));
    for (int t0 = 0; t0 < n_rows; t0 += 16) {
        const int nr = n_rows - t0 < 16 ? n_rows - t0 : 16;
        /* the next tile's rows: a KV page holds 16 positions of a head, so a long
         * cache is runs of 2 KB one page apart, which the hardware prefetchers pick up
         * late (measured, 2048 positions x 22 layers from DRAM: 56 -> 48 ns per row
         * of K dot + V accumulation) */
        for (int r = t0 + 16; r < n_rows && r < t0 + 32; r++)
            for (int b = 0; b < n * 2; b += 64) _mm_prefetch((const char *)krows[r] + b, _MM_HINT_T0);
        for (int r = 0; r < 16; r++) /* slot r holds row KDOT_LANE[r] (zeros past nr) */
            for (int i = 0; i < n64; i += 16)
                _mm512_store_ps(tile + r * n64 + i, KDOT_LANE[r] < nr ? ld_f16((const uint16_t *)krows[t0 + KDOT_LANE[r]] + i)
                                                                      : _mm512_setzero_ps());
        for (int h = 0; h < nh; h++) {
            const float *qh = q + (size_t)h * n;
            __m512 v[16];
            kdot_tile(n64, tile, qh, v);
            float *sh = s + (size_t)h * s_stride + t0;
            /* + 0: the chains start with a multiply, dot_f16's with an FMA onto +0,
             * which differ only for a sum of -0 products (-0 + +0 = +0) */
            const __m512 sum = _mm512_add_ps(hsum512_x16(v), _mm512_setzero_ps());
            if (n64 == n) {
                _mm512_mask_storeu_ps(sh, tail_mask(nr), sum);
                continue;
            }
            float sums[16];
            _mm512_storeu_ps(sums, sum);
            for (int t = 0; t < nr; t++) {
                const uint16_t *k = krows[t0 + t];
                float x = sums[t];
                for (int i = n64; i < n; i++) x += h2f(k[i]) * qh[i];
                sh[t] = x;
            }
        }
    }
}

static void attn_kdot_f16(int n, const void *const *krows, int n_rows, const float *q, int nh, float *s,
                          size_t s_stride) {
    if (n > KDOT_MAX_N) {
        for (int t = 0; t < n_rows; t++)
            for (int h = 0; h < nh; h++) s[(size_t)h * s_stride + t] = dot_f16_core(n, krows[t], q + (size_t)h * n, 1);
    } else if ((n & ~63) == 64) {
        kdot_rows(n, 64, krows, n_rows, q, nh, s, s_stride);
    } else if ((n & ~63) == 128) {
        kdot_rows(n, 128, krows, n_rows, q, nh, s, s_stride);
    } else {
        kdot_rows(n, n & ~63, krows, n_rows, q, nh, s, s_stride);
    }
}

/* V rows (F16) times each head's weights into its accumulators: per block of 64
 * values and up to 4 heads, the 16 accumulators stay in registers over all rows and
 * each row is widened once for the 4 heads. Per value a multiply then an add, rows in
 * order: the plain loop's rounding exactly. */
/* 64 values of 4 heads (full blocks): the same operations with every size known,
 * so the 16 accumulators stay in registers without masks. */
static inline void vacc_64x4(int n, int d0, const void *const *vrows, int n_rows, const float *p, size_t p_stride,
                             int h0, float *acc) {
    __m512 a[4][4];
    for (int h = 0; h < 4; h++)
        for (int j = 0; j < 4; j++) a[h][j] = _mm512_loadu_ps(acc + (size_t)(h0 + h) * n + d0 + 16 * j);
    for (int t = 0; t < n_rows; t++) {
        const uint16_t *v = (const uint16_t *)vrows[t] + d0;
        if (t + 16 < n_rows) _mm_prefetch((const char *)((const uint16_t *)vrows[t + 16] + d0), _MM_HINT_T0),
                             _mm_prefetch((const char *)((const uint16_t *)vrows[t + 16] + d0 + 32), _MM_HINT_T0);
        const __m512 x0 = ld_f16(v), x1 = ld_f16(v + 16), x2 = ld_f16(v + 32), x3 = ld_f16(v + 48);
        for (int h = 0; h < 4; h++) {
            const __m512 w = _mm512_set1_ps(p[(size_t)(h0 + h) * p_stride + t]);
            a[h][0] = _mm512_add_ps(a[h][0], _mm512_mul_ps(w, x0));
            a[h][1] = _mm512_add_ps(a[h][1], _mm512_mul_ps(w, x1));
            a[h][2] = _mm512_add_ps(a[h][2], _mm512_mul_ps(w, x2));
            a[h][3] = _mm512_add_ps(a[h][3], _mm512_mul_ps(w, x3));
        }
    }
    for (int h = 0; h < 4; h++)
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(acc + (size_t)(h0 + h) * n + d0 + 16 * j, a[h][j]);
}

static void attn_vacc_f16(int n, const void *const *vrows, int n_rows, const float *p, size_t p_stride, int nh,
                          float *acc) {
    int nh4 = 0; /* heads done by vacc_64x4 (every 64-block full) */
    if (n % 64 == 0) {
        nh4 = nh & ~3;
        for (int d0 = 0; d0 < n; d0 += 64)
            for (int h0 = 0; h0 < nh4; h0 += 4) vacc_64x4(n, d0, vrows, n_rows, p, p_stride, h0, acc);
        if (nh4 == nh) return;
    }
    for (int d0 = 0; d0 < n; d0 += 64) {
        const int nv = (n - d0 + 15) / 16 < 4 ? (n - d0 + 15) / 16 : 4; /* vectors in this block */
        __mmask16 m[4];
        for (int j = 0; j < 4; j++) {
            const int left = n - d0 - 16 * j;
            m[j] = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
        }
        for (int h0 = nh4; h0 < nh; h0 += 4) {
            const int hn = nh - h0 < 4 ? nh - h0 : 4;
            __m512 a[4][4];
            for (int h = 0; h < hn; h++)
                for (int j = 0; j < nv; j++)
                    a[h][j] = _mm512_maskz_loadu_ps(m[j], acc + (size_t)(h0 + h) * n + d0 + 16 * j);
            for (int t = 0; t < n_rows; t++) {
                const uint16_t *v = (const uint16_t *)vrows[t] + d0;
                __m512 x[4];
                for (int j = 0; j < nv; j++) x[j] = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m[j], v + 16 * j));
                for (int h = 0; h < hn; h++) {
                    const __m512 w = _mm512_set1_ps(p[(size_t)(h0 + h) * p_stride + t]);
                    for (int j = 0; j < nv; j++) a[h][j] = _mm512_add_ps(a[h][j], _mm512_mul_ps(w, x[j]));
                }
            }
            for (int h = 0; h < hn; h++)
                for (int j = 0; j < nv; j++)
                    _mm512_mask_storeu_ps(acc + (size_t)(h0 + h) * n + d0 + 16 * j, m[j], a[h][j]);
        }
    }
}

/* e^x for 8 doubles (exp_poly.h). */
static inline __m512d exp512_pd(__m512d x) {
    const __m512d n = _mm512_roundscale_pd(_mm512_mul_pd(x, _mm512_set1_pd(FR_EXP_LOG2E)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512d r = _mm512_fnmadd_pd(n, _mm512_set1_pd(FR_EXP_LN2_HI), x);
    r = _mm512_fnmadd_pd(n, _mm512_set1_pd(FR_EXP_LN2_LO), r);
    __m512d p = _mm512_set1_pd(fr_exp_taylor[0]);
    for (int k = 1; k < 13; k++) p = _mm512_fmadd_pd(p, r, _mm512_set1_pd(fr_exp_taylor[k]));
    return _mm512_scalef_pd(p, n);
}

/* e^x for 16 floats, computed in double and rounded once: the float nearest to e^x
 * (as libm's expf gives, bar results within 1e-14 of a rounding boundary), so the
 * softmax weights match the scalar path's - which matters where they are rounded to
 * F16 next, as a 1-ulp change can move that rounding. */
static inline __m512 exp512(__m512 x) {
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.8f)), _mm512_set1_ps(-104.0f));
    const __m512d lo = exp512_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(x)));
    const __m512d hi = exp512_pd(_mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1))));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
                                               _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}

/* As fr_softmax: max, exponentials summed in double, one multiply by the inverse. */
static void softmax_avx512(float *x, int n) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 16)
        vm = _mm512_mask_max_ps(vm, tail_mask(n - i), vm, _mm512_maskz_loadu_ps(tail_mask(n - i), x + i));
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512d s0 = _mm512_setzero_pd(), s1 = s0;
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 e = _mm512_maskz_mov_ps(m, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), mx)));
        _mm512_mask_storeu_ps(x + i, m, e);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(e)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(e), 1))));
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / _mm512_reduce_add_pd(_mm512_add_pd(s0, s1))));
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

/* As fr_swiglu: g / (1 + e^-g) * u. */
static void swiglu_avx512(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i += 16) {
        const __mmask16 m = tail_mask(n - i);
        const __m512 gv = _mm512_maskz_loadu_ps(m, g + i);
        const __m512 d = _mm512_add_ps(_mm512_set1_ps(1.0f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), gv)));
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_div_ps(gv, d), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

#if defined(__AVX512BF16__)
/* vdpbf16ps: pairs of bf16 products (exact in f32) added into f32 lanes. It always
 * rounds to nearest-even and flushes denormals, which only matters for values below
 * 1e-38 - far inside the stated tolerance for any real data. */
static void dot_bf16_native(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0;
    int i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_loadu_si512(x + i), (__m512bh)_mm512_loadu_si512(y + i));
        a1 = _mm512_dpbf16_ps(a1, (__m512bh)_mm512_loadu_si512(x + i + 32),
                              (__m512bh)_mm512_loadu_si512(y + i + 32));
    }
    for (; i < n; i += 32) {
        const int left = n - i < 32 ? n - i : 32;
        const __mmask32 m = left == 32 ? (__mmask32)~0u : (__mmask32)((1u << left) - 1);
        a0 = _mm512_dpbf16_ps(a0, (__m512bh)_mm512_maskz_loadu_epi16(m, x + i),
                              (__m512bh)_mm512_maskz_loadu_epi16(m, y + i));
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}
#endif

/* ------------------------------------------------------------ legacy blocks */

/* sum q_x * q_y per block for blocks a (lanes 0..7) and b (8..15), x any int8:
 * (x ^ 0x80) = x + 128 as unsigned, minus 128 * sum y. */
static inline __m512i idot_q8_pair(__m512i xq, __m512i yq) {
    const __m512i c = _mm512_set1_epi8((char)0x80);
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_xor_si512(xq, c), yq);
    return _mm512_sub_epi32(p, _mm512_dpbusd_epi32(_mm512_setzero_si512(), c, yq));
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    const int nb = n / FR_QK;
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int b = 0;
    for (; b + 4 <= nb; b += 4) {
        const __m512i i0 = idot_q8_pair(load2x32(x[b].qs, x[b + 1].qs), load2x32(y[b].qs, y[b + 1].qs));
        const __m512i i1 = idot_q8_pair(load2x32(x[b + 2].qs, x[b + 3].qs), load2x32(y[b + 2].qs, y[b + 3].qs));
        const __m512 d0 = scale2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        const __m512 d1 = scale2(h2f(x[b + 2].d) * h2f(y[b + 2].d), h2f(x[b + 3].d) * h2f(y[b + 3].d));
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0), d0, acc0);
        acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1), d1, acc1);
    }
    for (; b < nb; b++) { /* 1..3 leftover blocks: the upper half carries zeros */
        const __m512i xq = _mm512_zextsi256_si512(loadu256(x[b].qs));
        const __m512i yq = _mm512_zextsi256_si512(loadu256(y[b].qs));
        const __m512 d0 = scale2(h2f(x[b].d) * h2f(y[b].d), 0.0f);
        acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(idot_q8_pair(xq, yq)), d0, acc0);
    }
    *s = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

/* Nibbles of two Q4_0 blocks, as unsigned 0..15 in block order: each 16-byte qs
 * is broadcast to two 128-bit lanes, shifted by 0 (low nibbles, values 0..15) or
 * 4 (high nibbles, values 16..31) and masked. */
static inline __m512i q4_0_pair(const uint8_t *qa, const uint8_t *qb) {
    const long long c4 = 0x0004000400040004LL; /* per-16-bit-word shift counts: 0 or 4 per 128-bit lane */
    const __m512i cnt = _mm512_set_epi64(c4, c4, 0, 0, c4, c4, 0, 0);
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(loadu128(qa))),
                                            _mm256_broadcastsi128_si256(loadu128(qb)), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(both, cnt), _mm512_set1_epi8(0x0F));
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    const int nb = n / FR_QK;
    const __m512i eight = _mm512_set1_epi8(8);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = acc0;
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        const __m512i yq = load2x32(y[b].qs, y[b + 1].qs);
        const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q4_0_pair(x[b].qs, x[b + 1].qs), yq);
        const __m512i o = _mm512_dpbusd_epi32(_mm512_setzero_si512(), eight, yq);
        const __m512 d = scale2(h2f(x[b].d) * h2f(y[b].d), h2f(x[b + 1].d) * h2f(y[b + 1].d));
        if (b & 2) acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p, o)), d, acc1);
        else acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(p, o)), d, acc0);
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    if (b < nb) { /* odd block count: one 256-bit block */
        const __m128i t = loadu128(x[b].qs);
        const __m256i q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
        const __m256i yq = loadu256(y[b].qs);
        const __m256i p = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, yq);
        const __m256i o = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(8), yq);
        sum += hsum256_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(p, o)),
                                        _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d))));
    }
    *s = sum;
}

/* ------------------------------------------------------------ K-quants */

/* As cpu_avx2.c: the 8 six-bit scales and mins of a Q4_K block. */
static inline void k4_scales(const uint8_t s12[12], uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[3];
    memcpy(u, s12, 12);
    const uint32_t a = u[0] & 0x3f3f3f3f, b = u[1] & 0x3f3f3f3f;
    const uint32_t c = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    const uint32_t d = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(mn, &b, 4);
    memcpy(mn + 4, &d, 4);
}

/* 512 -> 256 int32 lanes by adding the halves. */
static inline __m256i fold512(__m512i v) {
    return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
}

/* Q4_K: a 64-value chunk is 32 bytes of nibbles = sub-blocks 2j (low) and 2j+1
 * (high), exactly the order of the 64 Q8_K quants, so one register holds both.
 * vpmaddubsw pairs (<= 2*15*128) then vpdpwssd with the 16-bit sub-block scale. */
static void dot_q4_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int b = 0; b < n / FR_QK_K; b++) {
        uint8_t sc[8], mn[8];
        k4_scales(x[b].scales, sc, mn);
        __m512i isum = _mm512_setzero_si512();
        for (int j = 0; j < 4; j++) {
            const __m256i q = loadu256(x[b].qs + 32 * j);
            const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
            const __m512i p = _mm512_maddubs_epi16(_mm512_and_si512(z, m4), _mm512_loadu_si512(y[b].qs + 64 * j));
            const __m512i scv = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi16(sc[2 * j])),
                                                   _mm256_set1_epi16(sc[2 * j + 1]), 1);
            isum = _mm512_dpwssd_epi32(isum, p, scv);
        }
        const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
        const __m256i m2 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
        const __m256i pm = _mm256_madd_epi16(loadu256(y[b].bsums), m2);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(fold512(isum)), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].dmin) * y[b].d), _mm256_cvtepi32_ps(pm), accm);
    }
    *s = hsum256_ps(acc) - hsum256_ps(accm);
}

/* Q6_K: per 128-value half, ql[0..63] and qh[0..31] give values 0..63 (low nibbles
 * + bits 0-1 / 2-3 of qh) and 64..127 (high nibbles + bits 4-5 / 6-7), each in Q8_K
 * order. Quants are used unsigned (0..63); the -32 comes back through the bsums. */
static void dot_q6_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q6_k *x = vx;
    const fr_block_q8_k *y = vy;
    /* vpermw indices: lanes 8k..8k+7 of group g take scale 4g + k */
    static const int16_t k_idx[4][32] = {
        {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
        {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7},
        {8, 8, 8, 8, 8, 8, 8, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10, 10, 10, 11, 11, 11, 11, 11, 11, 11, 11},
        {12, 12, 12, 12, 12, 12, 12, 12, 13, 13, 13, 13, 13, 13, 13, 13,
         14, 14, 14, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 15, 15, 15},
    };
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x[b].scales));
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i isum = _mm512_setzero_si512();
        for (int half = 0; half < 2; half++) {
            const __m512i l = _mm512_loadu_si512(x[b].ql + 64 * half);
            const __m256i h = loadu256(x[b].qh + 32 * half);
            const __m512i ha = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_slli_epi16(h, 4)),
                                                  _mm256_slli_epi16(h, 2), 1);
            const __m512i hb = _mm512_inserti64x4(_mm512_castsi256_si512(h), _mm256_srli_epi16(h, 2), 1);
            const __m512i g01 = _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_and_si512(ha, m30));
            const __m512i g23 =
                _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4), _mm512_and_si512(hb, m30));
            const int8_t *q8 = y[b].qs + 128 * half;
            const __m512i p0 = _mm512_maddubs_epi16(g01, _mm512_loadu_si512(q8));
            const __m512i p1 = _mm512_maddubs_epi16(g23, _mm512_loadu_si512(q8 + 64));
            const __m512i s0 = _mm512_permutexvar_epi16(_mm512_loadu_si512(k_idx[2 * half]), sc512);
            const __m512i s1 = _mm512_permutexvar_epi16(_mm512_loadu_si512(k_idx[2 * half + 1]), sc512);
            isum = _mm512_dpwssd_epi32(isum, p0, s0);
            isum = _mm512_dpwssd_epi32(isum, p1, s1);
        }
        const __m256i off = _mm256_madd_epi16(sc16, loadu256(y[b].bsums));
        const __m256i i8 = _mm256_sub_epi32(fold512(isum), _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(i8), acc);
    }
    *s = hsum256_ps(acc);
}

/* ------------------------------------------------------------ blocked Q4_0/Q8_0 gemm
 * Why: one vec_dot call per (row, token) redoes the activation-side work (loads,
 * offset correction, scales) for every row and the weight-side work (nibble unpack,
 * scales) for every token, and reduces horizontally per call; that made decode
 * compute-bound at a third of the memory bandwidth and prefill slower than decode.
 * Here a tile of R weight rows x T tokens keeps R*T float accumulators in registers:
 * each unpacked weight group is reused T times, each packed activation group R times,
 * and each output is reduced once.
 *
 * Activations are packed once per matmul (pk_q8, 256 bytes per 4 blocks): quants
 * regrouped so that the unpacked Q4_0 nibbles of 4 blocks (low nibbles = values 0..15
 * of each block, high = 16..31) line up with y0/y1, scales broadcast to the 4 int32
 * lanes of their block, and per lane the -sum(y) of the 8 quants it multiplies for
 * the offset correction: weights enter vpdpbusd unsigned (Q4_0 nibble = q + 8, Q8_0
 * q ^ 0x80 = q + 128), so sum (q + c) y - c sum y = sum q y, exact in int32. The
 * correction seeds the integer accumulator, which costs nothing; done per lane (not
 * per block) every lane holds an unbiased partial dot, so the float sum of lanes
 * loses nothing to cancellation. Every output is the same sequence of operations
 * whatever tile it falls in, so thread splits and batch sizes do not change results. */
typedef struct {
    int8_t y0[64];  /* quants 0..15 of blocks k = 0..3 at 16k */
    int8_t y1[64];  /* quants 16..31 */
    float dy[16];   /* block k's scale in lanes 4k..4k+3 */
    int32_t sy[16]; /* per int32 lane: -sum of the 8 quants that lane multiplies */
} pk_q8;
_Static_assert(sizeof(pk_q8) == 256, "pk_q8 layout");

static void pack_q8_0(const void *vq, void *vp, int64_t n) {
    const fr_block_q8_0 *y = vq;
    pk_q8 *p = vp;
    const int nb = (int)(n / FR_QK);
    for (int g = 0; 4 * g < nb; g++) {
        pk_q8 *o = &p[g];
        memset(o, 0, sizeof *o); /* a short last group: absent blocks add zero */
        for (int k = 0; k < 4 && 4 * g + k < nb; k++) {
            const fr_block_q8_0 *b = &y[4 * g + k];
            memcpy(o->y0 + 16 * k, b->qs, 16);
            memcpy(o->y1 + 16 * k, b->qs + 16, 16);
            const float d = h2f(b->d);
            for (int l = 0; l < 4; l++) {
                /* int32 lane 4k+l of vpdpbusd sees quants 4l..4l+3 of y0 and of y1 */
                int sum = 0;
                for (int i = 0; i < 4; i++) sum += b->qs[4 * l + i] + b->qs[16 + 4 * l + i];
                o->dy[4 * k + l] = d;
                o->sy[4 * k + l] = -sum;
            }
        }
    }
}

/* The 4 block scales (F16, first in each block of `bs` bytes) of a group, each in
 * 4 float lanes: one load (two for Q8_0, whose group spans 136 bytes), one vpermw
 * that picks and repeats the words, one conversion. A short group loads under a mask
 * so nothing past the row is touched; its absent scales come out 0. */
static inline __m512 group_scales(const uint8_t *x, int bs, int nk) {
    const int w = bs / 2; /* block stride in 16-bit words */
    const __m256i idx = _mm256_setr_epi16(0, 0, 0, 0, w, w, w, w, 2 * w, 2 * w, 2 * w, 2 * w, 3 * w, 3 * w, 3 * w,
                                          3 * w);
    const int bytes = (nk - 1) * bs + 2;
    __m512i a, b = _mm512_setzero_si512();
    if (bytes >= 64) a = _mm512_loadu_si512(x);
    else a = _mm512_maskz_loadu_epi8((__mmask64)((1ull << bytes) - 1), x);
    if (bytes > 64) {
        const int rest = bytes - 64;
        b = rest >= 64 ? _mm512_loadu_si512(x + 64) : _mm512_maskz_loadu_epi8((__mmask64)((1ull << rest) - 1), x + 64);
    }
    __m256i h = _mm512_castsi512_si256(_mm512_permutex2var_epi16(a, _mm512_castsi256_si512(idx), b));
    if (nk < 4) h = _mm256_maskz_mov_epi16((__mmask16)((1u << (4 * nk)) - 1), h);
    return _mm512_cvtph_ps(h);
}

/* 16 bytes at x + k*bs + off for k < nk into 128-bit lane k (absent blocks: zero). */
static inline __m512i group_bytes(const uint8_t *x, int bs, int off, int nk) {
    __m512i v = _mm512_zextsi128_si512(loadu128(x + off));
    if (nk > 1) v = _mm512_inserti32x4(v, loadu128(x + bs + off), 1);
    if (nk > 2) v = _mm512_inserti32x4(v, loadu128(x + 2 * bs + off), 2);
    if (nk > 3) v = _mm512_inserti32x4(v, loadu128(x + 3 * bs + off), 3);
    return v;
}

/* A whole Q4_0 group (4 blocks, 72 bytes at x): its 64 quant bytes and 4 scales from
 * two loads and two word permutes. Each block's quants start at an even byte (18k + 2),
 * so one vpermt2w over bytes 0..63 and 64..71 lines them up, and the scales (words
 * 0, 9, 18, 27) all lie in the first load. Why: the per-block 16-byte loads and three
 * inserts (all on the shuffle port) made the one-token row-major Q4_0 kernel -
 * experts streamed from disk, models left in the file mapping - half as fast as the
 * IL16 one; the values are the same as group_bytes / group_scales give. */
static inline __m512i q4_0_group(const uint8_t *x, __m512 *dw) {
    const __m512i a = _mm512_loadu_si512(x), b = _mm512_castsi128_si512(_mm_loadl_epi64((const __m128i *)(x + 64)));
    const __m512i qi = _mm512_set_epi16(35, 34, 33, 32, 31, 30, 29, 28, 26, 25, 24, 23, 22, 21, 20, 19, 17, 16, 15, 14,
                                        13, 12, 11, 10, 8, 7, 6, 5, 4, 3, 2, 1);
    const __m512i di = _mm512_set_epi16(27, 27, 27, 27, 18, 18, 18, 18, 9, 9, 9, 9, 0, 0, 0, 0, 27, 27, 27, 27, 18, 18,
                                        18, 18, 9, 9, 9, 9, 0, 0, 0, 0);
    *dw = _mm512_cvtph_ps(_mm512_castsi512_si256(_mm512_permutexvar_epi16(di, a)));
    return _mm512_permutex2var_epi16(a, qi, b);
}

/* Unsigned weight bytes matching y0 (lo) and y1 (hi), and scales, of group g. */
static inline void load_w_group(int q8, const uint8_t *row, int g, int nk, __m512i *lo, __m512i *hi,
                                __m512 *dw) {
    if (!q8 && nk == 4) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        const __m512i v = q4_0_group(row + (size_t)g * 4 * sizeof(fr_block_q4_0), dw);
        *lo = _mm512_and_si512(v, m4);
        *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        return;
    }
    if (q8) {
        const uint8_t *x = row + (size_t)g * 4 * sizeof(fr_block_q8_0);
        const __m512i c = _mm512_set1_epi8((char)0x80);
        *lo = _mm512_xor_si512(group_bytes(x, sizeof(fr_block_q8_0), 2, nk), c);
        *hi = _mm512_xor_si512(group_bytes(x, sizeof(fr_block_q8_0), 18, nk), c);
        *dw = group_scales(x, sizeof(fr_block_q8_0), nk);
    } else {
        const uint8_t *x = row + (size_t)g * 4 * sizeof(fr_block_q4_0);
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        const __m512i v = group_bytes(x, sizeof(fr_block_q4_0), 2, nk);
        *lo = _mm512_and_si512(v, m4);
        *hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);
        *dw = group_scales(x, sizeof(fr_block_q4_0), nk);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))
#define PF_ROWS 8 /* prefetch distance in rows (about 9 KB for 2048-wide Q4_0) */

/* One R x T tile over the whole row (R, T compile-time after inlining). */
FR_INLINE void tile_q8(int q8, int R, int T, int nb, const uint8_t *w, size_t w_row, const uint8_t *yp,
                       size_t yp_row, float *out, size_t ld) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const int shift = q8 ? 7 : 3; /* c = 128 or 8 */
    for (int g = 0; 4 * g < nb; g++) {
        const int nk = nb - 4 * g < 4 ? nb - 4 * g : 4;
        __m512i lo[4], hi[4];
        __m512 dw[4];
        for (int r = 0; r < R; r++) {
            /* R rows read side by side are R interleaved streams, which the hardware
             * prefetcher follows poorly: ask for the same spot PF_ROWS rows on */
            const uint8_t *pf = w + (r + PF_ROWS) * w_row + (size_t)g * (q8 ? 136 : 72);
            _mm_prefetch((const char *)pf, _MM_HINT_T0);
            _mm_prefetch((const char *)pf + 64, _MM_HINT_T0);
            if (nk == 4) load_w_group(q8, w + r * w_row, g, 4, &lo[r], &hi[r], &dw[r]);
            else load_w_group(q8, w + r * w_row, g, nk, &lo[r], &hi[r], &dw[r]);
        }
        for (int t = 0; t < T; t++) {
            const pk_q8 *p = (const pk_q8 *)(yp + t * yp_row) + g;
            const __m512i y0 = _mm512_loadu_si512(p->y0), y1 = _mm512_loadu_si512(p->y1);
            const __m512i c = _mm512_slli_epi32(_mm512_loadu_si512(p->sy), shift);
            const __m512 dy = _mm512_loadu_ps(p->dy);
            for (int r = 0; r < R; r++) {
                const __m512i i = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(c, lo[r], y0), hi[r], y1);
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(dw[r], dy), acc[r][t]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[t * ld + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* Rows in tiles of 4 (then 1), tokens in tiles of up to 4; tokens also in chunks
 * whose packed activations stay in L2 while a chunk's rows stream past them. */
FR_INLINE void gemm_q8_drv(int q8, int n, const void *vw, size_t w_row, int n_rows, const void *vyp,
                           size_t yp_row, int n_tok, float *out, size_t ld) {
    const int nb = n / FR_QK;
    const uint8_t *w = vw, *yp = vyp;
    int chunk = (int)((1u << 20) / yp_row) & ~3;
    if (chunk < 4) chunk = 4;
    for (int t0 = 0; t0 < n_tok; t0 += chunk) {
        const int tn = n_tok - t0 < chunk ? n_tok - t0 : chunk;
        for (int r = 0; r < n_rows;) {
            /* decode (one token): single rows, so the weights are read as one
             * sequential stream; interleaving 4 rows measured 1.3-1.9x slower */
            const int R = n_rows - r >= 4 && n_tok > 1 ? 4 : 1;
            const uint8_t *wr = w + (size_t)r * w_row;
            for (int t = t0; t < t0 + tn; t += 4) {
                const int T = t0 + tn - t < 4 ? t0 + tn - t : 4;
                const uint8_t *yt = yp + (size_t)t * yp_row;
                float *o = out + (size_t)t * ld + r;
#define FR_TILE(RR, TT) tile_q8(q8, RR, TT, nb, wr, w_row, yt, yp_row, o, ld)
                if (R == 4) {
                    if (T == 4) FR_TILE(4, 4);
                    else if (T == 3) FR_TILE(4, 3);
                    else if (T == 2) FR_TILE(4, 2);
                    else FR_TILE(4, 1);
                } else {
                    if (T == 4) FR_TILE(1, 4);
                    else if (T == 3) FR_TILE(1, 3);
                    else if (T == 2) FR_TILE(1, 2);
                    else FR_TILE(1, 1);
                }
#undef FR_TILE
            }
            r += R;
        }
    }
}

static void gemm_q4_0(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok,
                      float *out, size_t ld) {
    gemm_q8_drv(0, n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld);
}

static void gemm_q8_0(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok,
                      float *out, size_t ld) {
    gemm_q8_drv(1, n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld);
}

/* ------------------------------------------------------------ blocked F16 gemm
 * Activations (F16, the vec_dot_type) are widened to F32 once per matmul, so the
 * inner loop converts only weights, once per tile row for T tokens. Each output has
 * two accumulators (even and odd 16-value chunks: two FMA chains hide the latency
 * when a tile is a single row and token), summed once at the end; the tail loads
 * under a mask. Same operations per output in every tile shape. */
static void pack_f16(const void *vq, void *vp, int64_t n) {
    const uint16_t *x = vq;
    float *y = vp;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, ld_f16(x + i));
    for (; i < n; i++) y[i] = h2f(x[i]);
}

FR_INLINE void tile_f16(int R, int T, int n, const uint8_t *w, size_t w_row, const uint8_t *yp, size_t yp_row,
                        float *out, size_t ld) {
    __m512 acc[4][2][2];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) acc[r][t][0] = acc[r][t][1] = _mm512_setzero_ps();
    int i = 0, c = 0;
    for (; i < n; i += 16, c ^= 1) {
        const int left = n - i;
        const __mmask16 m = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        __m512 wv[4];
        for (int r = 0; r < R; r++) {
            const uint16_t *wr = (const uint16_t *)(w + r * w_row) + i;
            wv[r] = left >= 16 ? ld_f16(wr) : _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, wr));
        }
        for (int t = 0; t < T; t++) {
            const float *yr = (const float *)(yp + t * yp_row) + i;
            const __m512 yv = left >= 16 ? _mm512_loadu_ps(yr) : _mm512_maskz_loadu_ps(m, yr);
            for (int r = 0; r < R; r++) {
                if (c) acc[r][t][1] = _mm512_fmadd_ps(wv[r], yv, acc[r][t][1]);
                else acc[r][t][0] = _mm512_fmadd_ps(wv[r], yv, acc[r][t][0]);
            }
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) out[t * ld + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][t][0], acc[r][t][1]));
}

static void gemm_f16(int n, const void *vw, size_t w_row, int n_rows, const void *vyp, size_t yp_row, int n_tok,
                     float *out, size_t ld) {
    const uint8_t *w = vw, *yp = vyp;
    int chunk = (int)((1u << 20) / yp_row) & ~1;
    if (chunk < 2) chunk = 2;
    for (int t0 = 0; t0 < n_tok; t0 += chunk) {
        const int tn = n_tok - t0 < chunk ? n_tok - t0 : chunk;
        for (int r = 0; r < n_rows;) {
            const int R = n_rows - r >= 4 && n_tok > 1 ? 4 : 1; /* decode: one stream, as above */
            const uint8_t *wr = w + (size_t)r * w_row;
            for (int t = t0; t < t0 + tn; t += 2) {
                const uint8_t *yt = yp + (size_t)t * yp_row;
                float *o = out + (size_t)t * ld + r;
                const int two = t0 + tn - t >= 2;
                if (R == 4) {
                    if (two) tile_f16(4, 2, n, wr, w_row, yt, yp_row, o, ld);
                    else tile_f16(4, 1, n, wr, w_row, yt, yp_row, o, ld);
                } else {
                    if (two) tile_f16(1, 2, n, wr, w_row, yt, yp_row, o, ld);
                    else tile_f16(1, 1, n, wr, w_row, yt, yp_row, o, ld);
                }
            }
            r += R;
        }
    }
}

int fr_kernels_install_avx512(fr_type_traits *t, int cpu_has_bf16) {
    t[FR_TYPE_F32].vec_dot = dot_f32;
    t[FR_TYPE_F16].vec_dot = dot_f16;
    t[FR_TYPE_F32].softmax = softmax_avx512;
    t[FR_TYPE_F32].swiglu = swiglu_avx512;
    t[FR_TYPE_F16].attn_kdot = attn_kdot_f16;
    t[FR_TYPE_F16].attn_vacc = attn_vacc_f16;
#if defined(__AVX512BF16__)
    if (cpu_has_bf16) t[FR_TYPE_BF16].vec_dot = dot_bf16_native;
#else
    (void)cpu_has_bf16;
#endif
    t[FR_TYPE_Q4_0].vec_dot = dot_q4_0;
    t[FR_TYPE_Q8_0].vec_dot = dot_q8_0;
    t[FR_TYPE_Q4_K].vec_dot = dot_q4_k;
    t[FR_TYPE_Q6_K].vec_dot = dot_q6_k;
    t[FR_TYPE_Q4_0].gemm_pack = pack_q8_0;
    t[FR_TYPE_Q4_0].gemm = gemm_q4_0;
    t[FR_TYPE_Q8_0].gemm_pack = pack_q8_0;
    t[FR_TYPE_Q8_0].gemm = gemm_q8_0;
    t[FR_TYPE_F16].gemm_pack = pack_f16;
    t[FR_TYPE_F16].gemm = gemm_f16;
    fr_kernels_install_il_avx512(t);
    return 1;
}

#else /* compiler without these ISA flags, or not x86-64 */

int fr_kernels_install_avx512(fr_type_traits *t, int cpu_has_bf16) {
    (void)t;
    (void)cpu_has_bf16;
    return 0;
}

#endif
