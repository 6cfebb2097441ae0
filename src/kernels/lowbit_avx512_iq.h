/* lowbit_avx512_iq.h - AVX-512 decoding of the IQ2 / IQ3 lattice types, two groups
 * of 32 values at a time, shared by the dots (lowbit_avx512.c) and the prefill
 * GEMMs (lowbit_gemm_avx512.c), and the small helpers both use. Include only from files compiled with AVX-512
 * F/BW/VL/VNNI and BMI2. Grid indices and sign bits are read as in core/quant_iq.c. */
#ifndef FRUGAL_LOWBIT_AVX512_IQ_H
#define FRUGAL_LOWBIT_AVX512_IQ_H

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }
static inline __m256i ld256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m512i ld512(const void *p) { return _mm512_loadu_si512(p); }
static inline __m512i dup256(__m256i v) { return _mm512_inserti64x4(_mm512_castsi256_si512(v), v, 1); }

/* int16 lanes 8k .. 8k+7 all = s16[base + k] (k = 0..3): the scales of four 16-value
 * sub-blocks out of the 16 int16 scales in s16 */
static inline __m512i scales4(__m256i s16, int base) {
    const __m512i idx = _mm512_add_epi16(_mm512_srli_epi16(_mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21,
                                                                            20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10,
                                                                            9, 8, 7, 6, 5, 4, 3, 2, 1, 0), 3),
                                         _mm512_set1_epi16((short)base));
    return _mm512_permutexvar_epi16(idx, _mm512_castsi256_si512(s16));
}

/* Shift the low 256 bits of v right by a, the high ones by b (16-bit lanes). */
static inline __m512i srl2(__m512i v, int a, int b) {
    return _mm512_srlv_epi16(v, _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1));
}

/* Two groups of 32 decoded: grid magnitudes, which values are negative, and the
 * int16 scale of each 16 values (lanes 8k..8k+7 hold sc[k]). */
typedef struct {
    __m512i g, sc;
    __mmask64 neg;
} fr_iq_pair;

/* isum + sum_k sc[k] * dot(values 16k .. 16k+15, q8) as int32 lanes */
static inline __m512i iq_pair_dot(const fr_iq_pair *p, const int8_t *q8, __m512i isum) {
    const __m512i q = _mm512_loadu_si512(q8);
    const __m512i p16 = _mm512_maddubs_epi16(p->g, _mm512_mask_sub_epi8(q, p->neg, _mm512_setzero_si512(), q));
    return _mm512_dpwssd_epi32(isum, p16, p->sc);
}

/* The 64-bit sign mask of eight 7-bit sign fields (s56: field k in bits 7k .. 7k+6):
 * field k spread into byte k (BMI2 pdep, fast on every CPU with AVX-512), whose
 * eighth bit is the parity of its seven (fr_iq_signs7), folded in all 8 bytes at once.
 * In general-purpose registers: the vector ports are the busy ones here. */
static inline uint64_t iq_signs56(uint64_t s56) {
    const uint64_t m = _pdep_u64(s56, 0x7F7F7F7F7F7F7F7FULL);
    uint64_t x = m ^ (m >> 4); /* bit 0 of each byte ends as the xor of its 8 bits */
    x ^= x >> 2;
    x ^= x >> 1;
    return m | (x & 0x0101010101010101ULL) << 7;
}

/* The sign mask of two words of 4 x 7 sign bits (bits 0..27; the top nibble is a scale). */
static inline uint64_t signs7x8(uint32_t w0, uint32_t w1) {
    return iq_signs56((w0 & 0x0FFFFFFFu) | (uint64_t)(w1 & 0x0FFFFFFFu) << 28);
}

/* 16-bit lanes 0..15 = a, 16..31 = b: the scales of two groups of 32 */
static inline __m512i iq_group_scales(int a, int b) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
}

/* The 16 scales of a block's 16-value sub-blocks as int16 2n + 1, from the 8 bytes of
 * nibbles at s (sub-block 2m: low nibble of s[m], 2m + 1: its high nibble). */
static inline __m256i iq_nibble_scales16(const uint8_t *s) {
    const __m128i b = _mm_loadl_epi64((const __m128i *)s), m4 = _mm_set1_epi8(0xF);
    const __m256i n =
        _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(_mm_and_si128(b, m4), _mm_and_si128(_mm_srli_epi16(b, 4), m4)));
    return _mm256_add_epi16(_mm256_add_epi16(n, n), _mm256_set1_epi16(1));
}

/* Why gathers: the 8 (IQ2) or 16 (IQ3) grid words of a pair, read one by one and
 * inserted into a register, cost ~20 cycles per 64 values (scalar index arithmetic,
 * the loads, and inserts that all queue on one shuffle port); built in a 256-bit
 * vector (whose operations have three ports, not two), the indices take one
 * vpgatherdq / vpgatherdd from the (L1-resident) grid. The sub-block scales are
 * widened once per block and spread to each pair with one permute.
 * Each decoder fills p[0..3], the block's four pairs of groups of 32. */
static inline void dec_iq2_xxs(const fr_block_iq2_xxs *x, fr_iq_pair p[4]) {
    for (int c = 0; c < 4; c++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(x->qs + 8 * c));
        /* index bytes: words 0 and 2; sign and scale words: 1 and 3 */
        const __m128i i8 = _mm_shuffle_epi8(q, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1));
        p[c].g = _mm512_i32gather_epi64(_mm256_cvtepu8_epi32(i8), (const void *)fr_iq2xxs_grid, 8);
        uint32_t w[4];
        memcpy(w, x->qs + 8 * c, 16);
        p[c].neg = signs7x8(w[1], w[3]);
        const uint32_t w1 = w[1], w3 = w[3];
        p[c].sc = iq_group_scales(2 * (int)(w1 >> 28) + 1, 2 * (int)(w3 >> 28) + 1);
    }
}

static inline void dec_iq2_xs(const fr_block_iq2_xs *x, fr_iq_pair p[4]) {
    const __m256i s16 = iq_nibble_scales16(x->scales);
    for (int c = 0; c < 4; c++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(x->qs + 8 * c)); /* 8 x (9-bit index, 7 sign bits) */
        const __m256i idx = _mm256_and_si256(_mm256_cvtepu16_epi32(q), _mm256_set1_epi32(511));
        p[c].g = _mm512_i32gather_epi64(idx, (const void *)fr_iq2xs_grid, 8);
        uint64_t h[2]; /* the 7 sign bits are each word's top ones */
        memcpy(h, x->qs + 8 * c, 16);
        p[c].neg = iq_signs56(_pext_u64(h[0], 0xFE00FE00FE00FE00ULL) | _pext_u64(h[1], 0xFE00FE00FE00FE00ULL) << 28);
        p[c].sc = scales4(s16, 4 * c);
    }
}

static inline void dec_iq2_s(const fr_block_iq2_s *x, fr_iq_pair p[4]) {
    const __m256i s16 = iq_nibble_scales16(x->scales);
    uint64_t qh;
    memcpy(&qh, x->qh, 8); /* 2 high index bits per grid word */
    for (int c = 0; c < 4; c++) {
        const int h = (int)((qh >> (16 * c)) & 0xFFFF) << 8; /* groups 2c, 2c + 1, moved to index bits 8, 9 */
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * c)));
        const __m256i hi =
            _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(h), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14)),
                             _mm256_set1_epi32(0x300));
        p[c].g = _mm512_i32gather_epi64(_mm256_or_si256(lo, hi), (const void *)fr_iq2s_grid, 8);
        uint64_t neg;
        memcpy(&neg, x->qs + FR_QK_K / 8 + 8 * c, 8);
        p[c].neg = neg;
        p[c].sc = scales4(s16, 4 * c);
    }
}

static inline void dec_iq3_xxs(const fr_block_iq3_xxs *x, fr_iq_pair p[4]) {
    for (int c = 0; c < 4; c++) {
        const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x->qs + 16 * c)));
        p[c].g = _mm512_i32gather_epi32(idx, (const void *)fr_iq3xxs_grid, 4);
        uint32_t w[2];
        memcpy(w, x->qs + FR_QK_K / 4 + 8 * c, 8);
        p[c].neg = signs7x8(w[0], w[1]);
        const uint32_t w0 = w[0], w1 = w[1];
        p[c].sc = iq_group_scales(2 * (int)(w0 >> 28) + 1, 2 * (int)(w1 >> 28) + 1);
    }
}

/* As dec_iq2_s: 16 nine-bit indices per pair, one vpgatherdd; a 4-bit scale per 32. */
static inline void dec_iq3_s(const fr_block_iq3_s *x, fr_iq_pair p[4]) {
    uint64_t qh;
    memcpy(&qh, x->qh, 8); /* the ninth index bit of each grid word */
    for (int c = 0; c < 4; c++) {
        const int h = (int)((qh >> (16 * c)) & 0xFFFF) << 8;
        const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x->qs + 16 * c)));
        const __m512i hi =
            _mm512_and_si512(_mm512_srlv_epi32(_mm512_set1_epi32(h),
                                               _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)),
                             _mm512_set1_epi32(0x100));
        p[c].g = _mm512_i32gather_epi32(_mm512_or_si512(lo, hi), (const void *)fr_iq3s_grid, 4);
        uint64_t neg;
        memcpy(&neg, x->signs + 8 * c, 8);
        p[c].neg = neg;
        p[c].sc = iq_group_scales(2 * (x->scales[c] & 0xF) + 1, 2 * (x->scales[c] >> 4) + 1);
    }
}

/* IQ1_S / IQ1_M: grid values g in {-1, 0, 1}, shifted by +-1/8 per group of 32
 * (IQ1_S) or of 8 (IQ1_M). Eight times a value, 8g +- 1, is an integer in [-9, 9]:
 * its magnitude and sign take the same path as the other lattice types, exactly,
 * and the 1/8 goes into the block's factor. dneg: the bytes whose shift is -1/8. */
static inline void iq1_pair(__m512i g, uint64_t dneg, fr_iq_pair *p) {
    /* 8g per byte: a 16-bit shift, with the bits it moves across bytes cleared */
    const __m512i g8 = _mm512_and_si512(_mm512_slli_epi16(g, 3), _mm512_set1_epi8((char)0xF8));
    const __m512i v = _mm512_add_epi8(g8, _mm512_mask_blend_epi8(dneg, _mm512_set1_epi8(1), _mm512_set1_epi8(-1)));
    p->neg = _mm512_movepi8_mask(v);
    p->g = _mm512_abs_epi8(v);
}

static inline void dec_iq1_s(const fr_block_iq1_s *x, fr_iq_pair p[4]) {
    for (int c = 0; c < 4; c++) {
        const unsigned h0 = x->qh[2 * c], h1 = x->qh[2 * c + 1];
        const int hh = (int)((h0 & 0xFFF) | (h1 & 0xFFF) << 12); /* 3 high index bits per grid word */
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * c)));
        const __m256i hi = _mm256_slli_epi32(
            _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32(hh), _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21)),
                             _mm256_set1_epi32(7)),
            8);
        const __m512i g = _mm512_i32gather_epi64(_mm256_or_si256(lo, hi), (const void *)fr_iq1s_grid, 8);
        iq1_pair(g, (h0 >> 15 ? 0xFFFFFFFFULL : 0) | (h1 >> 15 ? 0xFFFFFFFF00000000ULL : 0), &p[c]);
        p[c].sc = iq_group_scales(2 * (int)((h0 >> 12) & 7) + 1, 2 * (int)((h1 >> 12) & 7) + 1);
    }
}

/* IQ1_M's F16 super-block scale: the top nibbles of its four scale words */
static inline uint16_t iq1m_d16(const fr_block_iq1_m *x) {
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    return (uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
}

static inline void dec_iq1_m(const fr_block_iq1_m *x, fr_iq_pair p[4]) {
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    for (int c = 0; c < 4; c++) {
        uint32_t hq; /* nibble j: 3 high index bits of grid word j, then its shift's sign */
        memcpy(&hq, x->qh + 4 * c, 4);
        const __m256i lo = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(x->qs + 8 * c)));
        const __m256i hi =
            _mm256_slli_epi32(_mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)hq),
                                                                 _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)),
                                               _mm256_set1_epi32(7)),
                              8);
        const __m512i g = _mm512_i32gather_epi64(_mm256_or_si256(lo, hi), (const void *)fr_iq1s_grid, 8);
        iq1_pair(g, _pdep_u64(_pext_u32(hq, 0x88888888u), 0x0101010101010101ULL) * 0xFF, &p[c]);
        /* four 3-bit scales, one per 16 values: bits 3k .. 3k+2 of word c */
        const __m512i sh = _mm512_set_epi64(0x0009000900090009, 0x0009000900090009, 0x0006000600060006,
                                            0x0006000600060006, 0x0003000300030003, 0x0003000300030003, 0, 0);
        const __m512i n =
            _mm512_and_si512(_mm512_srlv_epi16(_mm512_set1_epi16((short)sc[c]), sh), _mm512_set1_epi16(7));
        p[c].sc = _mm512_add_epi16(_mm512_add_epi16(n, n), _mm512_set1_epi16(1));
    }
}

#endif
