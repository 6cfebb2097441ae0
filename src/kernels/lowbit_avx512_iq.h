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

static inline void iq_pair_set(fr_iq_pair *p, __m512i g, uint64_t neg, const int sc[4]) {
    p->g = g;
    p->neg = neg;
    p->sc = _mm512_permutexvar_epi32(
        _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0),
        _mm512_castsi128_si512(_mm_setr_epi32(sc[0] * 0x10001, sc[1] * 0x10001, sc[2] * 0x10001, sc[3] * 0x10001)));
}

/* isum + sum_k sc[k] * dot(values 16k .. 16k+15, q8) as int32 lanes */
static inline __m512i iq_pair_dot(const fr_iq_pair *p, const int8_t *q8, __m512i isum) {
    const __m512i q = _mm512_loadu_si512(q8);
    const __m512i p16 = _mm512_maddubs_epi16(p->g, _mm512_mask_sub_epi8(q, p->neg, _mm512_setzero_si512(), q));
    return _mm512_dpwssd_epi32(isum, p16, p->sc);
}

static inline __m512i grid64x8(const uint64_t *grid, const int i[8]) {
    return _mm512_set_epi64((long long)grid[i[7]], (long long)grid[i[6]], (long long)grid[i[5]], (long long)grid[i[4]],
                            (long long)grid[i[3]], (long long)grid[i[2]], (long long)grid[i[1]], (long long)grid[i[0]]);
}

static inline __m512i grid32x16(const uint32_t *grid, const uint8_t *lo, const int *hi) {
    int i[16];
    for (int k = 0; k < 16; k++) i[k] = lo[k] | hi[k] << 8;
    return _mm512_set_epi32((int)grid[i[15]], (int)grid[i[14]], (int)grid[i[13]], (int)grid[i[12]], (int)grid[i[11]],
                            (int)grid[i[10]], (int)grid[i[9]], (int)grid[i[8]], (int)grid[i[7]], (int)grid[i[6]],
                            (int)grid[i[5]], (int)grid[i[4]], (int)grid[i[3]], (int)grid[i[2]], (int)grid[i[1]],
                            (int)grid[i[0]]);
}

/* 8 sign bytes of 4 x 7 stored bits per 32-bit word, for two words */
static inline uint64_t signs7x8(uint32_t w0, uint32_t w1) {
    uint64_t m = 0;
    for (int l = 0; l < 4; l++) {
        m |= (uint64_t)fr_iq_signs7((w0 >> (7 * l)) & 127) << (8 * l);
        m |= (uint64_t)fr_iq_signs7((w1 >> (7 * l)) & 127) << (8 * l + 32);
    }
    return m;
}

static inline void dec_iq2_xxs(const fr_block_iq2_xxs *x, int ib, fr_iq_pair *p) {
    uint32_t w[4];
    memcpy(w, x->qs + 4 * ib, 16);
    const uint8_t *a = (const uint8_t *)&w[0], *b = (const uint8_t *)&w[2];
    const int i[8] = {a[0], a[1], a[2], a[3], b[0], b[1], b[2], b[3]};
    const int l0 = 2 * (int)(w[1] >> 28) + 1, l1 = 2 * (int)(w[3] >> 28) + 1;
    const int sc[4] = {l0, l0, l1, l1};
    iq_pair_set(p, grid64x8(fr_iq2xxs_grid, i), signs7x8(w[1], w[3]), sc);
}

static inline void dec_iq2_xs(const fr_block_iq2_xs *x, int ib, fr_iq_pair *p) {
    const uint16_t *q = x->qs + 4 * ib;
    int i[8];
    uint64_t neg = 0;
    for (int k = 0; k < 8; k++) {
        i[k] = q[k] & 511;
        neg |= (uint64_t)fr_iq_signs7(q[k] >> 9) << (8 * k);
    }
    const int sc[4] = {2 * (x->scales[ib] & 0xF) + 1, 2 * (x->scales[ib] >> 4) + 1, 2 * (x->scales[ib + 1] & 0xF) + 1,
                       2 * (x->scales[ib + 1] >> 4) + 1};
    iq_pair_set(p, grid64x8(fr_iq2xs_grid, i), neg, sc);
}

static inline void dec_iq2_s(const fr_block_iq2_s *x, int ib, fr_iq_pair *p) {
    const uint8_t *qs = x->qs + 4 * ib;
    int i[8];
    for (int k = 0; k < 8; k++) i[k] = qs[k] | ((x->qh[ib + k / 4] >> (2 * (k % 4))) & 3) << 8;
    uint64_t neg;
    memcpy(&neg, x->qs + FR_QK_K / 8 + 4 * ib, 8);
    const int sc[4] = {2 * (x->scales[ib] & 0xF) + 1, 2 * (x->scales[ib] >> 4) + 1, 2 * (x->scales[ib + 1] & 0xF) + 1,
                       2 * (x->scales[ib + 1] >> 4) + 1};
    iq_pair_set(p, grid64x8(fr_iq2s_grid, i), neg, sc);
}

static inline void dec_iq3_xxs(const fr_block_iq3_xxs *x, int ib, fr_iq_pair *p) {
    uint32_t w[2];
    memcpy(w, x->qs + FR_QK_K / 4 + 4 * ib, 8);
    static const int zero[16] = {0};
    const int l0 = 2 * (int)(w[0] >> 28) + 1, l1 = 2 * (int)(w[1] >> 28) + 1;
    const int sc[4] = {l0, l0, l1, l1};
    iq_pair_set(p, grid32x16(fr_iq3xxs_grid, x->qs + 8 * ib, zero), signs7x8(w[0], w[1]), sc);
}

static inline void dec_iq3_s(const fr_block_iq3_s *x, int ib, fr_iq_pair *p) {
    int hi[16];
    for (int k = 0; k < 16; k++) hi[k] = (x->qh[ib + k / 8] >> (k % 8)) & 1;
    uint64_t neg;
    memcpy(&neg, x->signs + 4 * ib, 8);
    const int l0 = 2 * (x->scales[ib / 2] & 0xF) + 1, l1 = 2 * (x->scales[ib / 2] >> 4) + 1; /* ib even */
    const int sc[4] = {l0, l0, l1, l1};
    iq_pair_set(p, grid32x16(fr_iq3s_grid, x->qs + 8 * ib, hi), neg, sc);
}

#endif
