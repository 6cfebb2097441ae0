/* cpu_avx2.c - AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; entered
 * only after kernels/dispatch.c checked the CPU and OS).
 *
 * Contracts, shared by every kernel here (the scalar references are in
 * core/quant_legacy.c, core/quant_k.c, core/quant_act.c):
 *  - vec_dot: same inputs and meaning as the scalar one. Integer parts are exact
 *    (int32 per block, as the reference); only the float accumulation order differs,
 *    so |simd - scalar| <= 1e-5 * sum_i |x_i * y_i| + 1e-6 (x, y dequantized).
 *    Activation quants must lie in [-127, 127] (all our quantizers guarantee it): the
 *    sign trick (vpsignb) below cannot negate -128.
 *  - activation quantizers (Q8_0/Q8_1 act, Q8_K) and F16<->F32 row conversions are
 *    bit-identical to the scalar versions for every input (NaN included: chunks with
 *    NaN fall back to the scalar code where the hardware would round differently).
 * Rounding: _mm256_cvtps_epi32 uses MXCSR (round-half-even by default), the same mode
 * nearbyintf/lrintf use in the references. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx2.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* F16/BF16 dots reproduce ggml's AVX-512 order (the build llama.cpp's reference logits
 * - our golden data - come from): 4 accumulators of 16 lanes, 64 values per step,
 * reduced as (a0+a2) + (a1+a3), then the 16 lanes as _mm512_reduce_add_ps does, then
 * the leftovers added one by one in float. A 16-lane accumulator is a pair of ymm
 * registers here; tiny order changes otherwise get amplified through the layers. */
static inline float reduce16x4(const __m256 a[8]) {
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7]));
    return hsum_ps(_mm256_add_ps(hi, lo));
}

#define FLOAT_DOT_BODY(LOAD, SCALAR)                                                   \
    __m256 acc[8];                                                                     \
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();                          \
    int i = 0;                                                                         \
    for (; i + 64 <= n; i += 64)                                                       \
        for (int k = 0; k < 8; k++)                                                    \
            acc[k] = _mm256_fmadd_ps(LOAD(x + i + 8 * k), LOAD(y + i + 8 * k), acc[k]); \
    float sum = reduce16x4(acc);                                                       \
    for (; i < n; i++) sum += SCALAR;                                                  \
    *s = sum;

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* sum over pairs of x*y as 8 floats (one per 4 bytes); x any int8, y in [-127, 127].
 * vpmaddubsw wants an unsigned operand: use |x| and move x's sign onto y. */
static inline __m256 dot_i8_ps(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Same for x unsigned (0..31 here: pair sums stay far below int16 overflow). */
static inline __m256 dot_u8_ps(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(x, y);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles (values 0..15) then high. */
static inline __m256i unpack_nibbles16(const uint8_t *qs) {
    const __m128i t = loadu128(qs);
    const __m256i b = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(b, _mm256_set1_epi8(0x0F));
}

/* 32 bits (little-endian) -> 32 bytes, 0xFF where the bit is set: byte i picks the
 * byte holding bit i, then every other bit of it is forced to 1. */
static inline __m256i bytes_from_bits32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* ------------------------------------------------------------ float rows */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    /* the order of cpu_avx512.c's dot_f32 (a 16-lane register = ymm pair acc[2k],
     * acc[2k+1]): 64 per step, then 16 per step into acc 0, then the zero-padded tail
     * into acc 1, reduced as (a0+a1)+(a2+a3); both levels give identical results */
    __m256 acc[8];
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 2; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    if (i < n) {
        float tx[16] = {0}, ty[16] = {0};
        memcpy(tx, x + i, sizeof(float) * (size_t)(n - i));
        memcpy(ty, y + i, sizeof(float) * (size_t)(n - i));
        for (int k = 0; k < 2; k++)
            acc[2 + k] = _mm256_fmadd_ps(_mm256_loadu_ps(tx + 8 * k), _mm256_loadu_ps(ty + 8 * k), acc[2 + k]);
    }
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[4], acc[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[3]), _mm256_add_ps(acc[5], acc[7]));
    *s = hsum_ps(_mm256_add_ps(hi, lo));
}

static inline __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(loadu128(p)); }

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    FLOAT_DOT_BODY(ld_f16, h2f(x[i]) * h2f(y[i]))
}

/* bf16 -> f32 is a 16-bit shift of the bits. */
static inline __m256 ld_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    FLOAT_DOT_BODY(ld_bf16, fr_bf16_to_f32(x[i]) * fr_bf16_to_f32(y[i]))
}

/* F16 -> F32, bit-identical to fr_to_float_f16: vcvtph2ps is exact for every
 * non-NaN half; NaN chunks go through the scalar code (which keeps signalling
 * NaNs signalling, where the hardware would quiet them). */
static void to_float_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = loadu128(x + i);
        const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
        if (_mm_movemask_epi8(nan)) {
            for (int k = 0; k < 8; k++) y[i + k] = fr_f16_to_f32(x[i + k]);
        } else {
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
        }
    }
    for (; i < n; i++) y[i] = fr_f16_to_f32(x[i]);
}

/* F32 -> F16 with round-to-nearest-even (vcvtps2ph imm 0), bit-identical to
 * fr_from_float_f16; NaN chunks use the scalar code (different NaN payloads). */
static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int k = 0; k < 8; k++) y[i + k] = fr_f32_to_f16(x[i + k]);
        } else {
            _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
    }
    for (; i < n; i++) y[i] = fr_f32_to_f16(x[i]);
}

/* ------------------------------------------------------------ legacy blocks */

/* Legacy dots keep ggml's AVX2 order: one accumulator, blocks in order, lane-wise
 * fmadd(d_x*d_y, block sums), hsum at the end. */
static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, dot_i8_ps(loadu256(x[b].qs), loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i q = _mm256_sub_epi8(unpack_nibbles16(x[b].qs), off);
        acc = _mm256_fmadd_ps(d, dot_i8_ps(q, loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

/* Q4_1 x Q8_1: unsigned quants, the min enters as m * (d_y * sum(q_y)) = m * s_y. */
static void dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, dot_u8_ps(unpack_nibbles16(x[b].qs), loadu256(y[b].qs)), acc);
        summ += h2f(x[b].m) * h2f(y[b].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* Q5_0: value - 16 as int8 is (low nibble) | 0xF0 when the fifth bit is clear, and
 * the plain nibble when it is set. */
static void dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i hb = _mm256_andnot_si256(bytes_from_bits32(x[b].qh), _mm256_set1_epi8((char)0xF0));
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[b].qs), hb);
        acc = _mm256_fmadd_ps(d, dot_i8_ps(q, loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i hb = _mm256_and_si256(bytes_from_bits32(x[b].qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[b].qs), hb);
        acc = _mm256_fmadd_ps(d, dot_u8_ps(q, loadu256(y[b].qs)), acc);
        summ += h2f(x[b].m) * h2f(y[b].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* ------------------------------------------------------------ K-quants */

/* The 8 six-bit scales and mins of a Q4_K/Q5_K block (get_scale_min_k4 for all j
 * at once, on 32-bit words). */
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

/* sum_j bsums[j] * mins[j/2] as 8 int32 lanes (bsums: 16 sums of 16 quants). */
static inline __m256i k4_mins_dot(const int16_t *bsums, const uint8_t mn[8]) {
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    const __m256i m2 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    return _mm256_madd_epi16(loadu256(bsums), m2);
}

/* Q4_K/Q5_K share everything but the fifth bit: with_hi selects Q5_K (qh non-NULL). */
static inline void dot_k4_common(int n, float *s, const void *vx, const void *vy, int q5) {
    const fr_block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *qs, *s12;
        uint16_t xd, xdmin;
        __m256i hb = _mm256_setzero_si256();
        if (q5) {
            const fr_block_q5_k *x = (const fr_block_q5_k *)vx + b;
            qs = x->qs, s12 = x->scales, xd = x->d, xdmin = x->dmin;
            hb = loadu256(x->qh);
        } else {
            const fr_block_q4_k *x = (const fr_block_q4_k *)vx + b;
            qs = x->qs, s12 = x->scales, xd = x->d, xdmin = x->dmin;
        }
        uint8_t sc[8], mn[8];
        k4_scales(s12, sc, mn);
        const int8_t *q8 = y[b].qs;
        __m256i isum = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q = loadu256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (q5) {
                /* bit 2j / 2j+1 of qh[l] is the fifth bit of value l / l+32; hb is
                 * shifted 2 per chunk, so bits 0 and 1 are the current ones */
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(q8 + 64 * j)),
                                                 _mm256_set1_epi16(sc[2 * j]));
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu256(q8 + 64 * j + 32)),
                                                 _mm256_set1_epi16(sc[2 * j + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
        }
        const __m256i pm = k4_mins_dot(y[b].bsums, mn);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(xd) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(xdmin) * y[b].d), _mm256_cvtepi32_ps(pm), accm);
    }
    *s = hsum_ps(acc) - hsum_ps(accm);
}

static void dot_q4_k(int n, float *s, const void *vx, const void *vy) { dot_k4_common(n, s, vx, vy, 0); }
static void dot_q5_k(int n, float *s, const void *vx, const void *vy) { dot_k4_common(n, s, vx, vy, 1); }

/* Q6_K: quants are used unsigned (0..63); the -32 offset comes back as
 * 32 * sum_j scale_j * bsums_j. */
static void dot_q6_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q6_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs, *sc = x[b].scales;
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            const __m256i l0 = loadu256(ql), l1 = loadu256(ql + 32), h = loadu256(qh);
            __m256i g[4];
            g[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            g[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            g[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            g[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            for (int k = 0; k < 4; k++) {
                const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                const __m256i p = _mm256_maddubs_epi16(g[k], loadu256(q8 + 32 * k));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scv));
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x[b].scales));
        const __m256i off = _mm256_madd_epi16(sc16, loadu256(y[b].bsums));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

/* ------------------------------------------------------------ activation quantizers */

/* 4 x 8 int32 -> 32 int8 in order, saturating (packs interleave 128-bit lanes). */
static inline __m256i pack_i32x32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over 32 floats; NaN ignored as fmaxf does (vmaxps returns its second
 * operand when either is NaN, so the running max goes second). */
static inline float amax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/* 32 floats * id, rounded half-even, as int8 (|x * id| <= 127 by construction). */
static inline __m256i quant32(const float *x, __m256 id) {
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id));
    return pack_i32x32(q[0], q[1], q[2], q[3]);
}

/* Bit-identical to fr_act_quantize_q8_0 for finite input. */
static void act_q8_0(const float *x, void *vy, int64_t n) {
    fr_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        const float amax = amax32(x);
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        _mm256_storeu_si256((__m256i *)y[b].qs, quant32(x, _mm256_set1_ps(id)));
    }
}

/* Bit-identical to fr_act_quantize_q8_1 for finite input. */
static void act_q8_1(const float *x, void *vy, int64_t n) {
    fr_block_q8_1 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        const float amax = amax32(x);
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m256i q = quant32(x, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
        y[b].d = fr_f32_to_f16(d);
        y[b].s = fr_f32_to_f16((float)hsum_epi32(s32) * d);
    }
}

/* Bit-identical to fr_from_float_q8_k for every input: the signed max is the first
 * value of largest magnitude (as the scalar strict '>' scan); NaN products are
 * zeroed first, matching nearest_int's NaN -> 0; packs saturate like the clamp. */
static void quant_q8_k(const float *x, void *vy, int64_t n) {
    fr_block_q8_k *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < FR_QK_K; k += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), m);
        __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        t = _mm_max_ps(t, _mm_movehl_ps(t, t));
        t = _mm_max_ss(t, _mm_movehdup_ps(t));
        const float amax = _mm_cvtss_f32(t);
        if (!amax) {
            memset(&y[b], 0, sizeof(y[b]));
            continue;
        }
        float max = 0.0f;
        for (int j = 0; j < FR_QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int c = 0; c < FR_QK_K / 32; c++) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * c + 8 * k), vs);
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
                q[k] = _mm256_cvtps_epi32(v);
            }
            const __m256i q8 = pack_i32x32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * c), q8);
            /* two 16-value sums: bytes -> pairs -> quads -> halves of each 128-bit lane */
            const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1));
            __m128i h = _mm_hadd_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            h = _mm_hadd_epi32(h, h);
            y[b].bsums[2 * c] = (int16_t)_mm_cvtsi128_si32(h);
            y[b].bsums[2 * c + 1] = (int16_t)_mm_extract_epi32(h, 1);
        }
        y[b].d = 1 / iscale;
    }
}

int fr_kernels_install_avx2(fr_type_traits *t) {
    t[FR_TYPE_F32].vec_dot = dot_f32;
    t[FR_TYPE_F16].vec_dot = dot_f16;
    t[FR_TYPE_F16].to_float = to_float_f16;
    t[FR_TYPE_F16].from_float = from_float_f16;
    t[FR_TYPE_BF16].vec_dot = dot_bf16;
    t[FR_TYPE_Q4_0].vec_dot = dot_q4_0;
    t[FR_TYPE_Q4_1].vec_dot = dot_q4_1;
    t[FR_TYPE_Q5_0].vec_dot = dot_q5_0;
    t[FR_TYPE_Q5_1].vec_dot = dot_q5_1;
    t[FR_TYPE_Q8_0].vec_dot = dot_q8_0;
    t[FR_TYPE_Q8_0].act_from_float = act_q8_0;
    t[FR_TYPE_Q8_1].act_from_float = act_q8_1;
    t[FR_TYPE_Q4_K].vec_dot = dot_q4_k;
    t[FR_TYPE_Q5_K].vec_dot = dot_q5_k;
    t[FR_TYPE_Q6_K].vec_dot = dot_q6_k;
    t[FR_TYPE_Q8_K].from_float = quant_q8_k;
    fr_kernels_install_il_avx2(t); /* the IL16 GEMMs (il_avx2.c) */
    return 1;
}

#else /* built without AVX2 (other architecture or compiler): nothing to install */

int fr_kernels_install_avx2(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
