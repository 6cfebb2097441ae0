/* lowbit_avx512_iq.h - AVX-512 decoding of the IQ2 / IQ3 lattice types, two groups
 * of 32 values at a time, shared by the dots (lowbit_avx512.c) and the prefill
 * GEMMs (lowbit_gemm_avx512.c). Include only from files compiled with AVX-512
 * F/BW/VL/VNNI. Grid indices and sign bits are read as in core/quant_iq.c. */
#ifndef FRUGAL_LOWBIT_AVX512_IQ_H
#define FRUGAL_LOWBIT_AVX512_IQ_H

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"

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

/* 16-bit lanes 8k .. 8k+7 = 2 * (nibble k of the 16 bits s) + 1, k = 0..3: the four
 * 4-bit scales of two groups of 32 (low nibble first) as int16 multipliers. */
static inline __m512i iq_nibble_scales(unsigned s) {
    const __m512i sh = _mm512_set_epi64(0x000C000C000C000C, 0x000C000C000C000C, 0x0008000800080008, 0x0008000800080008,
                                        0x0004000400040004, 0x0004000400040004, 0, 0);
    const __m512i n = _mm512_and_si512(_mm512_srlv_epi16(_mm512_set1_epi16((short)s), sh), _mm512_set1_epi16(0xF));
    return _mm512_add_epi16(_mm512_add_epi16(n, n), _mm512_set1_epi16(1));
}

/* The 8-bit sign masks of eight 7-bit sign fields (16-bit lanes of v), packed into
 * 64 bits: the eighth bit of each is the parity of its seven (fr_iq_signs7). */
static inline uint64_t signs7_vec(__m128i v) {
    __m128i p = _mm_xor_si128(v, _mm_srli_epi16(v, 4));
    p = _mm_xor_si128(p, _mm_srli_epi16(p, 2));
    p = _mm_xor_si128(p, _mm_srli_epi16(p, 1));
    const __m128i b = _mm_or_si128(v, _mm_slli_epi16(_mm_and_si128(p, _mm_set1_epi16(1)), 7));
    return (uint64_t)_mm_cvtsi128_si64(_mm_packus_epi16(b, b));
}

/* The sign masks of two words of 4 x 7 sign bits (bits 0..27; the top nibble is a
 * scale): words i and j of q. */
static inline uint64_t signs7x8(__m128i q, int i, int j) {
    const __m256i w = _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(q), _mm256_setr_epi32(i, i, i, i, j, j, j, j));
    const __m256i f = _mm256_and_si256(_mm256_srlv_epi32(w, _mm256_setr_epi32(0, 7, 14, 21, 0, 7, 14, 21)),
                                       _mm256_set1_epi32(127));
    return signs7_vec(_mm256_cvtepi32_epi16(f));
}

/* 16-bit lanes 0..15 = a, 16..31 = b: the scales of two groups of 32 */
static inline __m512i iq_group_scales(int a, int b) {
    return _mm512_inserti64x4(_mm512_set1_epi16((short)a), _mm256_set1_epi16((short)b), 1);
}

/* Why gathers: the 8 (IQ2) or 16 (IQ3) grid words of a pair, read one by one and
 * inserted into a register, cost ~20 cycles per 64 values (scalar index arithmetic,
 * the loads, and inserts that all queue on one shuffle port); built in a vector, the
 * indices take one vpgatherqq / vpgatherdd from the (L1-resident) grid. */
static inline void dec_iq2_xxs(const fr_block_iq2_xxs *x, int ib, fr_iq_pair *p) {
    const __m128i q = _mm_loadu_si128((const __m128i *)(x->qs + 4 * ib));
    /* index bytes: words 0 and 2; sign and scale words: 1 and 3 */
    const __m128i i8 = _mm_shuffle_epi8(q, _mm_setr_epi8(0, 1, 2, 3, 8, 9, 10, 11, -1, -1, -1, -1, -1, -1, -1, -1));
    p->g = _mm512_i64gather_epi64(_mm512_cvtepu8_epi64(i8), (const void *)fr_iq2xxs_grid, 8);
    const uint32_t w1 = (uint32_t)_mm_extract_epi32(q, 1), w3 = (uint32_t)_mm_extract_epi32(q, 3);
    p->neg = signs7x8(q, 1, 3);
    p->sc = iq_group_scales(2 * (int)(w1 >> 28) + 1, 2 * (int)(w3 >> 28) + 1);
}

static inline void dec_iq2_xs(const fr_block_iq2_xs *x, int ib, fr_iq_pair *p) {
    const __m128i q = _mm_loadu_si128((const __m128i *)(x->qs + 4 * ib)); /* 8 x (9-bit index, 7 sign bits) */
    const __m512i idx = _mm512_and_si512(_mm512_cvtepu16_epi64(q), _mm512_set1_epi64(511));
    p->g = _mm512_i64gather_epi64(idx, (const void *)fr_iq2xs_grid, 8);
    p->neg = signs7_vec(_mm_srli_epi16(q, 9));
    uint16_t sc;
    memcpy(&sc, x->scales + ib, 2);
    p->sc = iq_nibble_scales(sc);
}

static inline void dec_iq2_s(const fr_block_iq2_s *x, int ib, fr_iq_pair *p) {
    uint16_t h;
    memcpy(&h, x->qh + ib, 2); /* 2 high index bits per grid word, groups ib and ib + 1 */
    const __m512i lo = _mm512_cvtepu8_epi64(_mm_loadl_epi64((const __m128i *)(x->qs + 4 * ib)));
    const __m512i hi = _mm512_and_si512(_mm512_srlv_epi64(_mm512_set1_epi64(h), _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0)),
                                        _mm512_set1_epi64(3));
    const __m512i idx = _mm512_or_si512(lo, _mm512_slli_epi64(hi, 8));
    p->g = _mm512_i64gather_epi64(idx, (const void *)fr_iq2s_grid, 8);
    uint64_t neg;
    memcpy(&neg, x->qs + FR_QK_K / 8 + 4 * ib, 8);
    p->neg = neg;
    uint16_t sc;
    memcpy(&sc, x->scales + ib, 2);
    p->sc = iq_nibble_scales(sc);
}

static inline void dec_iq3_xxs(const fr_block_iq3_xxs *x, int ib, fr_iq_pair *p) {
    uint32_t w[2];
    memcpy(w, x->qs + FR_QK_K / 4 + 4 * ib, 8);
    const __m128i sw = _mm_loadl_epi64((const __m128i *)(x->qs + FR_QK_K / 4 + 4 * ib));
    const __m512i idx = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x->qs + 8 * ib)));
    p->g = _mm512_i32gather_epi32(idx, (const void *)fr_iq3xxs_grid, 4);
    p->neg = signs7x8(sw, 0, 1);
    p->sc = iq_group_scales(2 * (int)(w[0] >> 28) + 1, 2 * (int)(w[1] >> 28) + 1);
}

/* As dec_iq2_s: 16 nine-bit indices built in a vector, one vpgatherdd. */
static inline void dec_iq3_s(const fr_block_iq3_s *x, int ib, fr_iq_pair *p) {
    uint16_t h;
    memcpy(&h, x->qh + ib, 2); /* the ninth index bit of each grid word, groups ib and ib + 1 */
    const __m512i lo = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(x->qs + 8 * ib)));
    const __m512i hi = _mm512_and_si512(
        _mm512_srlv_epi32(_mm512_set1_epi32(h), _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0)),
        _mm512_set1_epi32(1));
    const __m512i idx = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 8));
    p->g = _mm512_i32gather_epi32(idx, (const void *)fr_iq3s_grid, 4);
    uint64_t neg;
    memcpy(&neg, x->signs + 4 * ib, 8);
    p->neg = neg;
    p->sc = iq_group_scales(2 * (x->scales[ib / 2] & 0xF) + 1, 2 * (x->scales[ib / 2] >> 4) + 1); /* ib even */
}

#endif
