/* lowbit_avx2.c - AVX2 dots of the low-bit GGUF types against their activation
 * types (Q8_K; Q8_0 for IQ4_NL), compiled with -mavx2 -mfma -mf16c.
 *
 * Contract (as kernels/cpu_avx2.c): the integer part of each (sub-)block dot is
 * exact; only the float accumulation order differs from the scalar references in
 * core/quant_lowbit.c and core/quant_iq.c, so |simd - scalar| <= 1e-5 * sum_i
 * |x_i * y_i| + 1e-6. Activation quants must lie in [-127, 127] (vpsignb cannot
 * negate -128; all our quantizers guarantee it).
 *
 * Shared scheme: vpmaddubsw wants one unsigned operand. The K-quants are made
 * unsigned (Q3_K: q + 4, the offset returns through Q8_K's bsums); the i-quants'
 * grids hold magnitudes and their signs move onto the activations; IQ4's signed
 * levels go through |v| and sign(q8, v). */
#include "kernels/lowbit.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "kernels/il_drive.h"
#include "kernels/lowbit_avx2_iq.h"

/* int16 pairs -> int32, each lane of the low 128 bits times s0, of the high times s1 */
static inline __m256i madd_halves(__m256i p16, int s0, int s1) {
    return _mm256_madd_epi16(p16, halves16(s0, s1));
}

/* ------------------------------------------------------------ Q2_K */

static void dot_q2_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q2_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *sc = x[b].scales;
        const int8_t *q8 = y[b].qs;
        /* mins: sum_j bsums[j] * (sc[j] >> 4) */
        const __m128i sc8 = _mm_loadu_si128((const __m128i *)sc);
        const __m256i mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), _mm_set1_epi8(0xF)));
        const __m256i pm = _mm256_madd_epi16(ld256(y[b].bsums), mins);
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++) {
            const __m256i q = ld256(x[b].qs + 32 * half);
            for (int k = 0; k < 4; k++, q8 += 32, sc += 2) {
                const __m256i v = _mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3);
                const __m256i p16 = _mm256_maddubs_epi16(v, ld256(q8));
                isum = _mm256_add_epi32(isum, madd_halves(p16, sc[0] & 0xF, sc[1] & 0xF));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].dmin) * y[b].d), _mm256_cvtepi32_ps(pm), accm);
    }
    *s = hsum_ps(acc) - hsum_ps(accm);
}

/* ------------------------------------------------------------ Q3_K */

static void dot_q3_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q3_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        uint32_t o[4];
        fr_q3k_scales_w(x[b].scales, o);
        const __m128i s8 = _mm_sub_epi8(_mm_setr_epi32((int)o[0], (int)o[1], (int)o[2], (int)o[3]), _mm_set1_epi8(32));
        int8_t sc[16];
        _mm_storeu_si128((__m128i *)sc, s8);
        const int8_t *q8 = y[b].qs;
        const __m256i hm = ld256(x[b].hmask);
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0, c = 0; half < 2; half++) {
            const __m256i q = ld256(x[b].qs + 32 * half);
            for (int k = 0; k < 4; k++, c++, q8 += 32) {
                /* q + 4 = low 2 bits + 4 * (hmask bit c): 0..7 */
                const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, c), one);
                const __m256i v = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * k), m3),
                                                  _mm256_slli_epi16(hi, 2));
                const __m256i p16 = _mm256_maddubs_epi16(v, ld256(q8));
                isum = _mm256_add_epi32(isum, madd_halves(p16, sc[2 * c], sc[2 * c + 1]));
            }
        }
        /* the +4 offset: 4 * sum_j sc[j] * bsums[j] */
        const __m256i sc16 = _mm256_cvtepi8_epi16(s8);
        const __m256i off = _mm256_madd_epi16(sc16, ld256(y[b].bsums));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 2));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

/* ------------------------------------------------------------ IQ4_NL / IQ4_XS */

/* 32 levels (16 packed bytes: low nibbles values 0..15, high 16..31) dotted with 32
 * int8 activations: 8 int16 pair sums per 128-bit half, as int16 x 16. */
static inline __m256i iq4_p16(const uint8_t *qs, const int8_t *q8, __m256i table) {
    const __m128i t = _mm_loadu_si128((const __m128i *)qs);
    const __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0xF));
    const __m256i v = _mm256_shuffle_epi8(table, idx);
    return _mm256_maddubs_epi16(_mm256_sign_epi8(v, v), _mm256_sign_epi8(ld256(q8), v));
}

static inline __m256i iq4_table(void) {
    const __m128i t = _mm_loadu_si128((const __m128i *)fr_iq4nl_values);
    return _mm256_set_m128i(t, t);
}

static void dot_iq4_nl(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_nl *x = vx;
    const fr_block_q8_0 *y = vy;
    const __m256i table = iq4_table(), ones = _mm256_set1_epi16(1);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256i p32 = _mm256_madd_epi16(iq4_p16(x[b].qs, y[b].qs, table), ones);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d)), _mm256_cvtepi32_ps(p32), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_iq4_xs(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_xs *x = vx;
    const fr_block_q8_k *y = vy;
    const __m256i table = iq4_table();
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        __m256i isum = _mm256_setzero_si256();
        for (int j = 0; j < 8; j++) {
            const int ls = (((x[b].scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x[b].scales_h >> (2 * j)) & 3) << 4)) - 32;
            const __m256i p16 = iq4_p16(x[b].qs + 16 * j, y[b].qs + 32 * j, table);
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p16, _mm256_set1_epi16((short)ls)));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

/* ------------------------------------------------------------ lattice i-quants
 * A block at a time, per group of 32 values: the grid magnitudes g (unsigned bytes)
 * loaded word by word with indices built in general-purpose registers (the vector
 * ports are the busy ones, and on Zen 3 the AVX2 gathers ran slower than these loads),
 * the sign bits as a byte mask applied to the activations with xor and subtract, and
 * the group's scale (2 s + 1) as words against vpmaddubsw's pair sums; the 4-bit
 * scales of IQ2_S / IQ2_XS / IQ3_S widened once per block and spread to each group by
 * one vpshufb. Then, per block: acc = fma(d * d_y, isum, acc), the type's constant
 * factor at the end. The group sums are the prefill GEMMs' (lowbit_gemm_avx2.c, with
 * lowbit_avx2_iq.h's decoders), exactly, so a token gives the same bits alone and in
 * a batch. On one Zen 3 core, before -> after this form: IQ2_XXS 1.5 -> 2.2 GB/s,
 * IQ2_S 2.2 -> 4.1, IQ3_XXS 1.9 -> 2.8, IQ3_S 2.6 -> 3.5 (bench_matmul_ab -i). */

/* 32 activation bytes at q8, negated where neg is set (xor then subtract: the sign
 * trick in two operations; -128 stays -128, as vpsignb leaves it) */
static inline __m256i neg_apply(const int8_t *q8, __m256i neg) {
    return _mm256_sub_epi8(_mm256_xor_si256(ld256(q8), neg), neg);
}

/* 2 s + 1 of up to 16 packed 4-bit scales (s8: 8 bytes, low nibble first), as bytes
 * in both lanes: byte 2 k + h is byte k's nibble h. */
static inline __m256i scale_bytes(__m128i s8) {
    const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(s8, _mm_set1_epi8(0x0F)),
                                          _mm_and_si128(_mm_srli_epi16(s8, 4), _mm_set1_epi8(0x0F)));
    return _mm256_broadcastsi128_si256(_mm_add_epi8(_mm_add_epi8(nib, nib), _mm_set1_epi8(1)));
}

/* vpshufb controls over scale_bytes: IQ2_S / IQ2_XS (a scale per 16 values): group
 * ib's bytes 2 ib (values 0..15) and 2 ib + 1 (16..31) as words, in the low and the
 * high lane; IQ3_S (a scale per 32): byte ib as words in both lanes. */
#define W8(v) v, 0x80, v, 0x80, v, 0x80, v, 0x80, v, 0x80, v, 0x80, v, 0x80, v, 0x80
#define CTL16(ib) {W8(2 * (ib)), W8(2 * (ib) + 1)}
#define CTL32(ib) {W8(ib), W8(ib)}
static const uint8_t sc_ctl16[8][32] __attribute__((aligned(32))) = {CTL16(0), CTL16(1), CTL16(2), CTL16(3),
                                                                       CTL16(4), CTL16(5), CTL16(6), CTL16(7)};
static const uint8_t sc_ctl32[8][32] __attribute__((aligned(32))) = {CTL32(0), CTL32(1), CTL32(2), CTL32(3),
                                                                       CTL32(4), CTL32(5), CTL32(6), CTL32(7)};
#undef CTL32
#undef CTL16
#undef W8

/* One group per type: *g its grid magnitudes, *sb its sign word, *sc its scale words
 * (scb: the block's scale_bytes, where the type has them). */
#define FR_INLINE static inline __attribute__((always_inline))
FR_INLINE void grp_iq2_xxs(const fr_block_iq2_xxs *x, int ib, __m256i scb, __m256i *g, uint32_t *sb, __m256i *sc) {
    (void)scb;
    uint32_t w[2];
    memcpy(w, x->qs + 4 * ib, 8);
    *g = grid64x4(fr_iq2xxs_grid, (int)(w[0] & 255), (int)(w[0] >> 8 & 255), (int)(w[0] >> 16 & 255),
                  (int)(w[0] >> 24));
    *sb = signs7x4(w[1]);
    *sc = _mm256_set1_epi16((short)(2 * (int)(w[1] >> 28) + 1));
}

FR_INLINE void grp_iq3_xxs(const fr_block_iq3_xxs *x, int ib, __m256i scb, __m256i *g, uint32_t *sb, __m256i *sc) {
    (void)scb;
    const uint8_t *q = x->qs + 8 * ib;
    const uint32_t *gr = fr_iq3xxs_grid;
    uint32_t w;
    memcpy(&w, x->qs + FR_QK_K / 4 + 4 * ib, 4);
    *g = _mm256_setr_epi32((int)gr[q[0]], (int)gr[q[1]], (int)gr[q[2]], (int)gr[q[3]], (int)gr[q[4]], (int)gr[q[5]],
                           (int)gr[q[6]], (int)gr[q[7]]);
    *sb = signs7x4(w);
    *sc = _mm256_set1_epi16((short)(2 * (int)(w >> 28) + 1));
}

FR_INLINE void grp_iq2_s(const fr_block_iq2_s *x, int ib, __m256i scb, __m256i *g, uint32_t *sb, __m256i *sc) {
    const uint8_t *q = x->qs + 4 * ib;
    const unsigned h = x->qh[ib];
    *g = grid64x4(fr_iq2s_grid, q[0] | (h & 3) << 8, q[1] | (h & 0xC) << 6, q[2] | (h & 0x30) << 4,
                  q[3] | (h & 0xC0) << 2);
    memcpy(sb, x->qs + FR_QK_K / 8 + 4 * ib, 4);
    *sc = _mm256_shuffle_epi8(scb, ld256(sc_ctl16[ib]));
}

FR_INLINE void grp_iq2_xs(const fr_block_iq2_xs *x, int ib, __m256i scb, __m256i *g, uint32_t *sb, __m256i *sc) {
    fr_iq_grp2 p; /* its grid words by inserts, its sign word by parity */
    g2_iq2_xs(x, ib, &p);
    *g = p.g;
    *sb = p.sb;
    *sc = _mm256_shuffle_epi8(scb, ld256(sc_ctl16[ib]));
}

FR_INLINE void grp_iq3_s(const fr_block_iq3_s *x, int ib, __m256i scb, __m256i *g, uint32_t *sb, __m256i *sc) {
    const uint8_t *q = x->qs + 8 * ib;
    const unsigned h = x->qh[ib];
    const uint32_t *gr = fr_iq3s_grid;
    *g = _mm256_setr_epi32((int)gr[q[0] | (h << 8 & 256)], (int)gr[q[1] | (h << 7 & 256)],
                           (int)gr[q[2] | (h << 6 & 256)], (int)gr[q[3] | (h << 5 & 256)],
                           (int)gr[q[4] | (h << 4 & 256)], (int)gr[q[5] | (h << 3 & 256)],
                           (int)gr[q[6] | (h << 2 & 256)], (int)gr[q[7] | (h << 1 & 256)]);
    memcpy(sb, x->signs + 4 * ib, 4);
    *sc = _mm256_shuffle_epi8(scb, ld256(sc_ctl32[ib]));
}

/* The block's scale_bytes per type: 8 scale bytes (IQ2_S, IQ2_XS), 4 (IQ3_S), none (the
 * types with a scale per sign word). */
#define SCB8(xb) scale_bytes(_mm_loadl_epi64((const __m128i *)(xb)->scales))
static inline __m256i scb4(const uint8_t *scales) {
    int32_t s4;
    memcpy(&s4, scales, 4);
    return scale_bytes(_mm_cvtsi32_si128(s4));
}
#define SCB4(xb) scb4((xb)->scales)
#define SCB0(xb) ((void)(xb), _mm256_setzero_si256())

/* The dot of a lattice type: per block, the groups' int32 sums, then
 * acc = fma(d * d_y, isum, acc); FACTOR (the type's constant) at the end. */
#define LATTICE_DOT(name, blk, SCB, FACTOR)                                                               \
    static void dot_##name(int n, float *s, const void *vx, const void *vy) {                             \
        const blk *x = vx;                                                                                \
        const fr_block_q8_k *y = vy;                                                                      \
        __m256 acc = _mm256_setzero_ps();                                                                 \
        for (int b = 0; b < n / FR_QK_K; b++) {                                                           \
            const __m256i scb = SCB(&x[b]);                                                               \
            __m256i isum = _mm256_setzero_si256();                                                        \
            _Pragma("GCC unroll 8") for (int ib = 0; ib < 8; ib++) {                                      \
                __m256i g, sc;                                                                            \
                uint32_t sb;                                                                              \
                grp_##name(&x[b], ib, scb, &g, &sb, &sc);                                                 \
                const __m256i q8 = neg_apply(y[b].qs + 32 * ib, neg_mask(sb));                            \
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(g, q8), sc));       \
            }                                                                                             \
            acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);   \
        }                                                                                                 \
        *s = FACTOR * hsum_ps(acc);                                                                       \
    }

LATTICE_DOT(iq2_xxs, fr_block_iq2_xxs, SCB0, 0.125f)
LATTICE_DOT(iq2_xs, fr_block_iq2_xs, SCB8, 0.125f)
LATTICE_DOT(iq2_s, fr_block_iq2_s, SCB8, 0.125f)
LATTICE_DOT(iq3_xxs, fr_block_iq3_xxs, SCB0, 0.25f)
LATTICE_DOT(iq3_s, fr_block_iq3_s, SCB4, 1.0f)

/* IQ1_S / IQ1_M: grid values in {-1, 0, 1} (signed), so |g| and sign(q8, g). The
 * +-1/8 shift: the scalar sums of q8 per 8 (IQ1_M) or 32 (IQ1_S, via bsums). */
static inline __m256i i8_p16(__m256i g, const int8_t *q8) {
    return _mm256_maddubs_epi16(_mm256_sign_epi8(g, g), _mm256_sign_epi8(ld256(q8), g));
}

static void dot_iq1_s(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq1_s *x = vx;
    const fr_block_q8_k *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        fr_il_prefetch(x + b, sizeof *x); /* see kernels/il_drive.h */
        __m256i isum = _mm256_setzero_si256();
        int sumi1 = 0;
        for (int ib = 0; ib < 8; ib++) {
            const uint16_t h = x[b].qh[ib];
            const uint8_t *qs = x[b].qs + 4 * ib;
            const __m256i g = grid64x4(fr_iq1s_grid, qs[0] | (h & 7) << 8, qs[1] | ((h >> 3) & 7) << 8,
                                       qs[2] | ((h >> 6) & 7) << 8, qs[3] | ((h >> 9) & 7) << 8);
            const int ls = 2 * ((h >> 12) & 7) + 1;
            isum = _mm256_add_epi32(isum, madd_halves(i8_p16(g, y[b].qs + 32 * ib), ls, ls));
            sumi1 += ls * (h & 0x8000 ? -1 : 1) * (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);
        }
        __m128i t = _mm_add_epi32(_mm256_castsi256_si128(isum), _mm256_extracti128_si256(isum, 1));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
        t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
        sumf += h2f(x[b].d) * y[b].d * (_mm_cvtsi128_si32(t) + FR_IQ1_DELTA * sumi1);
    }
    *s = sumf;
}

static void dot_iq1_m(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq1_m *x = vx;
    const fr_block_q8_k *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        fr_il_prefetch(x + b, sizeof *x);
        uint16_t sc[4];
        memcpy(sc, x[b].scales, 8);
        const uint16_t d16 = (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        __m256i s1 = _mm256_setzero_si256(), s2 = s1;
        for (int ib = 0; ib < 8; ib++) {
            const uint8_t *qs = x[b].qs + 4 * ib, *qh = x[b].qh + 2 * ib;
            const __m256i g = grid64x4(fr_iq1s_grid, qs[0] | (qh[0] & 7) << 8, qs[1] | ((qh[0] >> 4) & 7) << 8,
                                       qs[2] | (qh[1] & 7) << 8, qs[3] | ((qh[1] >> 4) & 7) << 8);
            const int ls0 = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
            const int ls1 = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
            /* delta signs per 8 values: bits 3 / 7 of qh[0], qh[1] */
            const uint32_t neg = (qh[0] & 0x08 ? 0xFFu : 0) | (qh[0] & 0x80 ? 0xFF00u : 0) |
                                 (qh[1] & 0x08 ? 0xFF0000u : 0) | (qh[1] & 0x80 ? 0xFF000000u : 0);
            const __m256i q8 = ld256(y[b].qs + 32 * ib);
            s1 = _mm256_add_epi32(s1, madd_halves(i8_p16(g, y[b].qs + 32 * ib), ls0, ls1));
            const __m256i dq = _mm256_maddubs_epi16(_mm256_set1_epi8(1), _mm256_sign_epi8(q8, signs_pm1(neg)));
            s2 = _mm256_add_epi32(s2, madd_halves(dq, ls0, ls1));
        }
        const __m256 v = _mm256_add_ps(_mm256_cvtepi32_ps(s1), _mm256_mul_ps(_mm256_set1_ps(FR_IQ1_DELTA),
                                                                             _mm256_cvtepi32_ps(s2)));
        sumf += h2f(d16) * y[b].d * hsum_ps(v);
    }
    *s = sumf;
}

fr_vec_dot_fn fr_lowbit_avx2_decode_dot(fr_type type) {
    switch (type) {
    case FR_TYPE_IQ4_XS: return dot_iq4_xs;
    case FR_TYPE_IQ2_XXS: return dot_iq2_xxs;
    case FR_TYPE_IQ2_XS: return dot_iq2_xs;
    case FR_TYPE_IQ2_S: return dot_iq2_s;
    case FR_TYPE_IQ3_XXS: return dot_iq3_xxs;
    case FR_TYPE_IQ3_S: return dot_iq3_s;
    default: return NULL; /* Q2_K, Q3_K: the unpacked block decodes as fast or faster */
    }
}

int fr_kernels_install_lowbit_avx2(fr_type_traits *t) {
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

fr_vec_dot_fn fr_lowbit_avx2_decode_dot(fr_type type) {
    (void)type;
    return NULL;
}

int fr_kernels_install_lowbit_avx2(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
