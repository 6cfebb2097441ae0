/* lowbit_avx2_iq.h - AVX2 helpers of the IQ lattice types shared by the dots
 * (lowbit_avx2.c) and the prefill GEMMs (lowbit_gemm_avx2.c): grid words into a
 * register, sign bits into +-1 bytes, and the small helpers both use. Include only
 * from files compiled with AVX2. */
#ifndef FRUGAL_LOWBIT_AVX2_IQ_H
#define FRUGAL_LOWBIT_AVX2_IQ_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/quant_lowbit.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
static inline __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* int16 multipliers: s0 for the pair sums of values 0..15 (low 128 bits), s1 for 16..31 */
static inline __m256i halves16(int s0, int s1) {
    return _mm256_set_m128i(_mm_set1_epi16((short)s1), _mm_set1_epi16((short)s0));
}

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 0xFF in the bytes whose bit in bits is set (bit i -> byte i): byte i picks the byte
 * holding bit i, then its own bit is tested. */
static inline __m256i neg_mask(uint32_t bits) {
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_cmpeq_epi8(_mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)bits), shuf), bit), bit);
}

/* 32 bytes of +1 / -1 from 32 sign bits (bit i -> byte i). */
static inline __m256i signs_pm1(uint32_t bits) { return _mm256_or_si256(neg_mask(bits), _mm256_set1_epi8(1)); }

static inline __m256i grid64x4(const uint64_t *grid, int i0, int i1, int i2, int i3) {
    return _mm256_set_epi64x((long long)grid[i3], (long long)grid[i2], (long long)grid[i1], (long long)grid[i0]);
}

/* Four 7-bit sign fields, one per byte of m, completed with their parity bits
 * (fr_iq_signs7) in all four bytes at once: bit 0 of each byte ends as the xor of
 * its bits. No pdep here: it is microcoded on the AMD cores this level runs on. */
static inline uint32_t signs_parity4(uint32_t m) {
    uint32_t x = m ^ (m >> 4);
    x ^= x >> 2;
    x ^= x >> 1;
    return m | (x & 0x01010101u) << 7;
}

/* The sign word of a group from 4 x 7 sign bits (bits 0..27 of w). */
static inline uint32_t signs7x4(uint32_t w) {
    return signs_parity4((w & 0x7Fu) | (w & 0x3F80u) << 1 | (w & 0x1FC000u) << 2 | (w & 0xFE00000u) << 3);
}

/* Grid words for the prefill GEMMs (lowbit_gemm_avx2.c): IQ3 (8 dwords) and IQ2_S /
 * IQ2_XXS (4 qwords) through one AVX2 gather, measured faster than loads and inserts on
 * the Intel Xeon development VM (at the AVX2 level: IQ3_S decode 2.5 -> 4.3 GB/s on one
 * core, IQ3_XXS 2.9 -> 3.2, IQ2_S 2.7 -> 3.0, prefill +8-12 %); IQ2_XS gained nothing and
 * keeps the inserts. The dots (lowbit_avx2.c) decode a block at a time with scalar
 * loads instead, faster on a Zen 3 core, whose gathers are slower than Intel's; both
 * give the same integers.
 * One group of 32 decoded: grid magnitudes (unsigned bytes), a sign word (bit i:
 * value i negative), the scales of values 0..15 and 16..31. */
typedef struct {
    __m256i g;
    uint32_t sb;
    int sc0, sc1;
} fr_iq_grp2;

static inline void g2_iq2_xxs(const fr_block_iq2_xxs *x, int ib, fr_iq_grp2 *p) {
    uint32_t w[2];
    memcpy(w, x->qs + 4 * ib, 8);
    p->g =
        _mm256_i32gather_epi64((const long long *)fr_iq2xxs_grid, _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)w[0])), 8);
    p->sb = signs7x4(w[1]);
    p->sc0 = p->sc1 = 2 * (int)(w[1] >> 28) + 1;
}

static inline void g2_iq2_xs(const fr_block_iq2_xs *x, int ib, fr_iq_grp2 *p) {
    const uint16_t *q = x->qs + 4 * ib;
    p->g = grid64x4(fr_iq2xs_grid, q[0] & 511, q[1] & 511, q[2] & 511, q[3] & 511); /* a gather: no faster here */
    uint64_t v; /* the 7 sign bits are the top ones of each 16-bit word */
    memcpy(&v, q, 8);
    const uint64_t t = (v >> 9) & 0x007F007F007F007FULL, u = t | t >> 8; /* bytes a b b c c d d 0 */
    p->sb = signs_parity4((uint32_t)((u & 0xFFFF) | ((u >> 16) & 0xFFFF0000u)));
    p->sc0 = 2 * (x->scales[ib] & 0xF) + 1;
    p->sc1 = 2 * (x->scales[ib] >> 4) + 1;
}

static inline void g2_iq2_s(const fr_block_iq2_s *x, int ib, fr_iq_grp2 *p) {
    uint32_t q4;
    memcpy(&q4, x->qs + 4 * ib, 4);
    const __m128i lo = _mm_cvtepu8_epi32(_mm_cvtsi32_si128((int)q4));
    const __m128i hi = _mm_and_si128(_mm_srlv_epi32(_mm_set1_epi32(x->qh[ib] << 8), _mm_setr_epi32(0, 2, 4, 6)),
                                     _mm_set1_epi32(0x300));
    p->g = _mm256_i32gather_epi64((const long long *)fr_iq2s_grid, _mm_or_si128(lo, hi), 8);
    memcpy(&p->sb, x->qs + FR_QK_K / 8 + 4 * ib, 4);
    p->sc0 = 2 * (x->scales[ib] & 0xF) + 1;
    p->sc1 = 2 * (x->scales[ib] >> 4) + 1;
}

static inline void g2_iq3_xxs(const fr_block_iq3_xxs *x, int ib, fr_iq_grp2 *p) {
    uint32_t w;
    memcpy(&w, x->qs + FR_QK_K / 4 + 4 * ib, 4);
    const __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * ib)));
    p->g = _mm256_i32gather_epi32((const int *)fr_iq3xxs_grid, idx, 4);
    p->sb = signs7x4(w);
    p->sc0 = p->sc1 = 2 * (int)(w >> 28) + 1;
}

static inline void g2_iq3_s(const fr_block_iq3_s *x, int ib, fr_iq_grp2 *p) {
    const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * ib)));
    const __m256i hi = _mm256_and_si256(
        _mm256_srlv_epi32(_mm256_set1_epi32(x->qh[ib] << 8), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
        _mm256_set1_epi32(0x100));
    p->g = _mm256_i32gather_epi32((const int *)fr_iq3s_grid, _mm256_or_si256(lo, hi), 4);
    memcpy(&p->sb, x->signs + 4 * ib, 4);
    p->sc0 = p->sc1 = 2 * ((x->scales[ib / 2] >> (4 * (ib & 1))) & 0xF) + 1;
}

#endif
