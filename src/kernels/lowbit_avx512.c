/* lowbit_avx512.c - AVX-512 (F/BW/VL/VNNI) dots of the low-bit GGUF types: Q2_K, Q3_K,
 * IQ4_NL, IQ4_XS and the IQ3/IQ2/IQ1 lattice types, 64 values per step.
 *
 * Contract as lowbit_avx2.c: exact integer (sub-)block sums, float order differs
 * from the scalar references, |simd - scalar| <= 1e-5 * sum_i |x_i y_i| + 1e-6;
 * activation quants in [-127, 127]. Products go through vpmaddubsw (unsigned x
 * signed, pairs stay within int16 for every type here) and VNNI's vpdpwssd, which
 * applies the 16-bit sub-block scales and accumulates in one step. AVX-512 has no
 * vpsignb: a sign is moved onto the activations with a masked subtraction. */
#include "kernels/lowbit.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "kernels/il_drive.h"
#include "kernels/lowbit_avx512_iq.h"

/* ------------------------------------------------------------ Q2_K / Q3_K
 * A 64-value chunk c (0..3) is half c/2 of the block, 2-bit fields 2(c%2) and
 * 2(c%2)+1 of its 32 qs bytes: the two 256-bit halves of one zmm. */

static void dot_q2_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q2_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)x[b].scales);
        const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
        const __m256i pm = _mm256_madd_epi16(ld256(y[b].bsums), mins);
        __m512i isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m512i q = dup256(ld256(x[b].qs + 32 * (c / 2)));
            const int k = 4 * (c % 2);
            const __m512i v = _mm512_and_si512(srl2(q, k, k + 2), m3);
            const __m512i p16 = _mm512_maddubs_epi16(v, ld512(y[b].qs + 64 * c));
            isum = _mm512_dpwssd_epi32(isum, p16, scales4(sc16, 4 * c));
        }
        const __m256i i8 = _mm256_add_epi32(_mm512_castsi512_si256(isum), _mm512_extracti64x4_epi64(isum, 1));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(i8), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].dmin) * y[b].d), _mm256_cvtepi32_ps(pm), accm);
    }
    __m256 r = _mm256_sub_ps(acc, accm);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(r), _mm256_extractf128_ps(r, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    *s = _mm_cvtss_f32(t);
}

static void dot_q3_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q3_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        uint32_t o[4];
        fr_q3k_scales_w(x[b].scales, o);
        const __m128i s8 = _mm_sub_epi8(_mm_setr_epi32((int)o[0], (int)o[1], (int)o[2], (int)o[3]), _mm_set1_epi8(32));
        const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
        const __m512i hm = dup256(ld256(x[b].hmask));
        __m512i isum = _mm512_setzero_si512();
        for (int c = 0; c < 4; c++) {
            const __m512i q = dup256(ld256(x[b].qs + 32 * (c / 2)));
            const int k = 4 * (c % 2);
            /* q + 4 = 2 low bits + 4 * (hmask bit 2c / 2c+1): 0..7 */
            const __m512i hb = _mm512_slli_epi16(_mm512_and_si512(srl2(hm, 2 * c, 2 * c + 1), one), 2);
            const __m512i v = _mm512_or_si512(_mm512_and_si512(srl2(q, k, k + 2), m3), hb);
            const __m512i p16 = _mm512_maddubs_epi16(v, ld512(y[b].qs + 64 * c));
            isum = _mm512_dpwssd_epi32(isum, p16, scales4(sc16, 4 * c));
        }
        /* the +4 offset: 4 * sum_j sc[j] * bsums[j] */
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(sc16, ld256(y[b].bsums)), 2);
        isum = _mm512_sub_epi32(isum, _mm512_castsi256_si512(off) /* upper lanes zero */);
        acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(x[b].d) * y[b].d), _mm512_cvtepi32_ps(isum), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ------------------------------------------------------------ IQ4_NL / IQ4_XS */

/* 64 levels from 32 packed bytes (two 32-value groups: bytes 0..15 and 16..31, low
 * nibbles first) against 64 activations: 32 int16 pair sums, values of group g in
 * lanes 16g .. 16g+15. */
static inline __m512i iq4_p16x2(const uint8_t *qs0, const uint8_t *qs1, const int8_t *q8) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fr_iq4nl_values));
    const __m128i a = _mm_loadu_si128((const __m128i *)qs0), b = _mm_loadu_si128((const __m128i *)qs1);
    const __m256i lo = _mm256_set_m128i(_mm_srli_epi16(a, 4), a), hi = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
    const __m512i idx = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8(0xF));
    const __m512i v = _mm512_shuffle_epi8(table, idx);
    const __mmask64 neg = _mm512_movepi8_mask(v);
    const __m512i q = ld512(q8);
    return _mm512_maddubs_epi16(_mm512_abs_epi8(v), _mm512_mask_sub_epi8(q, neg, _mm512_setzero_si512(), q));
}

static void dot_iq4_nl(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_nl *x = vx;
    const fr_block_q8_0 *y = vy;
    const int nb = n / FR_QK;
    __m512 acc = _mm512_setzero_ps();
    int b = 0;
    for (; b + 2 <= nb; b += 2) {
        fr_il_prefetch(x + b, 2 * sizeof *x); /* see kernels/il_drive.h */
        /* Q8_0 blocks are 34 bytes: the two 32-byte quant runs are not contiguous */
        int8_t q8[64];
        memcpy(q8, y[b].qs, 32);
        memcpy(q8 + 32, y[b + 1].qs, 32);
        const __m512i p32 = _mm512_madd_epi16(iq4_p16x2(x[b].qs, x[b + 1].qs, q8), _mm512_set1_epi16(1));
        const __m256 d0 = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256 d1 = _mm256_set1_ps(h2f(x[b + 1].d) * h2f(y[b + 1].d));
        const __m512 d = _mm512_castsi512_ps(
            _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_castps_si256(d0)), _mm256_castps_si256(d1), 1));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(p32), acc);
    }
    float sum = _mm512_reduce_add_ps(acc);
    if (b < nb) {
        float t;
        fr_vec_dot_iq4_nl(FR_QK, &t, x + b, y + b);
        sum += t;
    }
    *s = sum;
}

static void dot_iq4_xs(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_xs *x = vx;
    const fr_block_q8_k *y = vy;
    __m512 acc = _mm512_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        __m512i isum = _mm512_setzero_si512();
        for (int j = 0; j < 8; j += 2) {
            const int l0 = ((x[b].scales_l[j / 2] & 0xF) | (((x[b].scales_h >> (2 * j)) & 3) << 4)) - 32;
            const int l1 = ((x[b].scales_l[j / 2] >> 4) | (((x[b].scales_h >> (2 * j + 2)) & 3) << 4)) - 32;
            const __m512i p16 = iq4_p16x2(x[b].qs + 16 * j, x[b].qs + 16 * j + 16, y[b].qs + 32 * j);
            const __m512i scv = _mm512_inserti64x4(_mm512_set1_epi16((short)l0), _mm256_set1_epi16((short)l1), 1);
            isum = _mm512_dpwssd_epi32(isum, p16, scv);
        }
        acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(x[b].d) * y[b].d), _mm512_cvtepi32_ps(isum), acc);
    }
    *s = _mm512_reduce_add_ps(acc);
}

/* ------------------------------------------------------------ IQ3 / IQ2
 * Two groups of 32 per zmm: grid magnitudes (unsigned), a 64-bit sign mask applied
 * to the activations, one int16 scale per 16 values. */

#define IQ_DOT_AVX512(name, blk, dec, D, FACTOR)                                           \
    static void dot_##name(int n, float *s, const void *vx, const void *vy) {            \
        const blk *x = vx;                                                               \
        const fr_block_q8_k *y = vy;                                                     \
        __m512 acc = _mm512_setzero_ps();                                                \
        for (int b = 0; b < n / FR_QK_K; b++) {                                          \
            __m512i isum = _mm512_setzero_si512();                                       \
            fr_iq_pair p[4];                                                             \
            dec(&x[b], p);                                                               \
            for (int c = 0; c < 4; c++) isum = iq_pair_dot(&p[c], y[b].qs + 64 * c, isum); \
            acc = _mm512_fmadd_ps(_mm512_set1_ps(h2f(D(x[b])) * y[b].d), _mm512_cvtepi32_ps(isum), acc); \
        }                                                                                \
        *s = FACTOR * _mm512_reduce_add_ps(acc);                                         \
    }

#define D_FIELD(xb) ((xb).d)
#define D_IQ1M(xb) iq1m_d16(&(xb))
IQ_DOT_AVX512(iq2_xxs, fr_block_iq2_xxs, dec_iq2_xxs, D_FIELD, 0.125f)
IQ_DOT_AVX512(iq2_xs, fr_block_iq2_xs, dec_iq2_xs, D_FIELD, 0.125f)
IQ_DOT_AVX512(iq2_s, fr_block_iq2_s, dec_iq2_s, D_FIELD, 0.125f)
IQ_DOT_AVX512(iq3_xxs, fr_block_iq3_xxs, dec_iq3_xxs, D_FIELD, 0.25f)
IQ_DOT_AVX512(iq3_s, fr_block_iq3_s, dec_iq3_s, D_FIELD, 1.0f)
IQ_DOT_AVX512(iq1_s, fr_block_iq1_s, dec_iq1_s, D_FIELD, 0.125f) /* 8 x value: see iq1_pair */
IQ_DOT_AVX512(iq1_m, fr_block_iq1_m, dec_iq1_m, D_IQ1M, 0.125f)

int fr_kernels_install_lowbit_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q2_K].vec_dot = dot_q2_k;
    t[FR_TYPE_Q3_K].vec_dot = dot_q3_k;
    t[FR_TYPE_IQ4_NL].vec_dot = dot_iq4_nl;
    t[FR_TYPE_IQ4_XS].vec_dot = dot_iq4_xs;
    t[FR_TYPE_IQ2_XXS].vec_dot = dot_iq2_xxs;
    t[FR_TYPE_IQ2_XS].vec_dot = dot_iq2_xs;
    t[FR_TYPE_IQ2_S].vec_dot = dot_iq2_s;
    t[FR_TYPE_IQ3_XXS].vec_dot = dot_iq3_xxs;
    t[FR_TYPE_IQ3_S].vec_dot = dot_iq3_s;
    t[FR_TYPE_IQ1_S].vec_dot = dot_iq1_s;
    t[FR_TYPE_IQ1_M].vec_dot = dot_iq1_m;
    return 1;
}

#else

int fr_kernels_install_lowbit_avx512(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
