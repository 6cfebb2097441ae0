/* quant_iq.c - scalar references for the lattice i-quants (readers): IQ2_XXS, IQ2_XS,
 * IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M.
 *
 * Every type stores, per 8 (IQ2/IQ1) or 4 (IQ3) values, an index into a grid of
 * magnitude patterns (core/iq_grid*.c) plus sign bits, and small odd sub-block
 * scales (2 * s + 1). Dequantizers repeat ggml's float operations; the dots keep
 * ggml-cpu's generic order: exact integer sums per super-block, one float multiply
 * at the end. The per-type notes say where each field lives. */
#include "core/quant_lowbit.h"

#include <string.h>

static inline float h2f(uint16_t h) { return fr_f16_to_f32(h); }

/* Signed magnitudes: dst[j] = grid byte j, negated where bit j of signs is set. */
static inline void apply_signs(const uint8_t *g, uint8_t signs, int cnt, int8_t *dst) {
    for (int j = 0; j < cnt; j++) dst[j] = (int8_t)((signs >> j) & 1 ? -g[j] : g[j]);
}

/* Integer dot of 8 int8 values with 8 activations. */
static inline int dot8(const int8_t *a, const int8_t *q8) {
    int s = 0;
    for (int j = 0; j < 8; j++) s += a[j] * q8[j];
    return s;
}

/* ---- Per-type decoders: the 32 signed grid values (before scaling) of group ib
 * and that group's scale(s). Shared by to_float and vec_dot so both read the bits
 * one way. sc[0] applies to values 0..15, sc[1] to 16..31. */

/* IQ2_XXS: qs[4 ib .. 4 ib + 3] as two words: 4 grid bytes, then 4 x 7 sign bits and
 * the 4-bit scale in bits 28..31. */
static void iq2xxs_group(const fr_block_iq2_xxs *x, int ib, int8_t v[32], int sc[2]) {
    uint32_t w[2];
    memcpy(w, x->qs + 4 * ib, 8);
    const uint8_t *idx = (const uint8_t *)&w[0];
    for (int l = 0; l < 4; l++)
        apply_signs((const uint8_t *)&fr_iq2xxs_grid[idx[l]], fr_iq_signs7((w[1] >> (7 * l)) & 127), 8, v + 8 * l);
    sc[0] = sc[1] = 2 * (int)(w[1] >> 28) + 1;
}

/* IQ2_XS: 4 words per group, each 9-bit index + 7 sign bits; nibble scales. */
static void iq2xs_group(const fr_block_iq2_xs *x, int ib, int8_t v[32], int sc[2]) {
    for (int l = 0; l < 4; l++) {
        const uint16_t q = x->qs[4 * ib + l];
        apply_signs((const uint8_t *)&fr_iq2xs_grid[q & 511], fr_iq_signs7(q >> 9), 8, v + 8 * l);
    }
    sc[0] = 2 * (x->scales[ib] & 0xF) + 1;
    sc[1] = 2 * (x->scales[ib] >> 4) + 1;
}

/* IQ2_S: index = qs[4 ib + l] | bits 2l..2l+1 of qh[ib] << 8; sign bytes in the
 * second half of qs. */
static void iq2s_group(const fr_block_iq2_s *x, int ib, int8_t v[32], int sc[2]) {
    const uint8_t *qs = x->qs + 4 * ib, *signs = x->qs + FR_QK_K / 8 + 4 * ib;
    for (int l = 0; l < 4; l++) {
        const int idx = qs[l] | (((x->qh[ib] >> (2 * l)) & 3) << 8);
        apply_signs((const uint8_t *)&fr_iq2s_grid[idx], signs[l], 8, v + 8 * l);
    }
    sc[0] = 2 * (x->scales[ib] & 0xF) + 1;
    sc[1] = 2 * (x->scales[ib] >> 4) + 1;
}

/* IQ3_XXS: 8 index bytes per group in qs[0..63], then per group a word of 4 x 7
 * sign bits + 4-bit scale at qs[64 + 4 ib]. */
static void iq3xxs_group(const fr_block_iq3_xxs *x, int ib, int8_t v[32], int sc[2]) {
    uint32_t w;
    memcpy(&w, x->qs + FR_QK_K / 4 + 4 * ib, 4);
    const uint8_t *q3 = x->qs + 8 * ib;
    for (int l = 0; l < 4; l++) {
        const uint8_t signs = fr_iq_signs7((w >> (7 * l)) & 127);
        apply_signs((const uint8_t *)&fr_iq3xxs_grid[q3[2 * l]], signs, 4, v + 8 * l);
        apply_signs((const uint8_t *)&fr_iq3xxs_grid[q3[2 * l + 1]], (uint8_t)(signs >> 4), 4, v + 8 * l + 4);
    }
    sc[0] = sc[1] = 2 * (int)(w >> 28) + 1;
}

/* IQ3_S: index = qs[8 ib + k] | bit k of qh[ib] << 8; sign bytes; nibble scales
 * per 64 values. */
static void iq3s_group(const fr_block_iq3_s *x, int ib, int8_t v[32], int sc[2]) {
    const uint8_t *qs = x->qs + 8 * ib, *signs = x->signs + 4 * ib;
    for (int k = 0; k < 8; k++) {
        const int idx = qs[k] | (((x->qh[ib] >> k) & 1) << 8);
        apply_signs((const uint8_t *)&fr_iq3s_grid[idx], (uint8_t)(signs[k / 2] >> (4 * (k & 1))), 4, v + 4 * k);
    }
    sc[0] = sc[1] = 2 * ((x->scales[ib / 2] >> (4 * (ib & 1))) & 0xF) + 1;
}

void fr_to_float_iq2_xxs(const void *vx, float *y, int64_t n) {
    const fr_block_iq2_xxs *x = vx;
    int8_t v[32];
    int sc[2];
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float d = h2f(x[b].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            iq2xxs_group(&x[b], ib, v, sc);
            const float db = d * (0.5f + (sc[0] >> 1)) * 0.25f;
            for (int j = 0; j < 32; j++) y[j] = db * v[j];
        }
    }
}

/* IQ2_XS / IQ2_S / IQ3_XXS / IQ3_S dequantize as d * scale * v with the scale of
 * each half; ggml writes the scale as d * (0.5 + s) * 0.25 (IQ2) or
 * d * (0.5 + s) * 0.5 (IQ3_XXS) or d * (1 + 2 s) (IQ3_S), rounding differently. */
#define IQ_TO_FLOAT(name, blk, group, SCALE)                                   \
    void fr_to_float_##name(const void *vx, float *y, int64_t n) {             \
        const blk *x = vx;                                                     \
        int8_t v[32];                                                          \
        int sc[2];                                                             \
        for (int64_t b = 0; b < n / FR_QK_K; b++) {                            \
            const float d = h2f(x[b].d);                                       \
            for (int ib = 0; ib < 8; ib++, y += 32) {                          \
                group(&x[b], ib, v, sc);                                       \
                for (int h = 0; h < 2; h++) {                                  \
                    const int s = sc[h] >> 1;                                  \
                    const float db = SCALE;                                    \
                    for (int j = 16 * h; j < 16 * h + 16; j++) y[j] = db * v[j]; \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }

IQ_TO_FLOAT(iq2_xs, fr_block_iq2_xs, iq2xs_group, d * (0.5f + s) * 0.25f)
IQ_TO_FLOAT(iq2_s, fr_block_iq2_s, iq2s_group, d * (0.5f + s) * 0.25f)
IQ_TO_FLOAT(iq3_xxs, fr_block_iq3_xxs, iq3xxs_group, d * (0.5f + s) * 0.5f)
IQ_TO_FLOAT(iq3_s, fr_block_iq3_s, iq3s_group, d * (1 + 2 * s))

/* The dots: sum over groups of scale * (integer dot), times d * y.d, times the
 * type's constant (1/8 for IQ2, 1/4 for IQ3_XXS, 1 for IQ3_S), as ggml. */
#define IQ_VEC_DOT(name, blk, group, FACTOR)                                   \
    void fr_vec_dot_##name(int n, float *s, const void *vx, const void *vy) {  \
        const blk *x = vx;                                                     \
        const fr_block_q8_k *y = vy;                                           \
        int8_t v[32];                                                          \
        int sc[2];                                                             \
        float sumf = 0;                                                        \
        for (int b = 0; b < n / FR_QK_K; b++) {                                \
            const int8_t *q8 = y[b].qs;                                        \
            int32_t bsum = 0;                                                  \
            for (int ib = 0; ib < 8; ib++, q8 += 32) {                         \
                group(&x[b], ib, v, sc);                                       \
                bsum += sc[0] * (dot8(v, q8) + dot8(v + 8, q8 + 8)) +          \
                        sc[1] * (dot8(v + 16, q8 + 16) + dot8(v + 24, q8 + 24)); \
            }                                                                  \
            sumf += h2f(x[b].d) * y[b].d * bsum;                               \
        }                                                                      \
        *s = FACTOR * sumf;                                                    \
    }

IQ_VEC_DOT(iq2_xxs, fr_block_iq2_xxs, iq2xxs_group, 0.125f)
IQ_VEC_DOT(iq2_xs, fr_block_iq2_xs, iq2xs_group, 0.125f)
IQ_VEC_DOT(iq2_s, fr_block_iq2_s, iq2s_group, 0.125f)
IQ_VEC_DOT(iq3_xxs, fr_block_iq3_xxs, iq3xxs_group, 0.25f)
IQ_VEC_DOT(iq3_s, fr_block_iq3_s, iq3s_group, 1.0f)

/* ------------------------------------------------------------------ IQ1_S / IQ1_M
 * value = dl * (grid + delta), grid in {-1, 0, 1}, delta = +-1/8 per group. */

/* IQ1_S group ib: index bits 3l..3l+2 of qh[ib] above qs[4 ib + l]; scale in bits
 * 12..14, delta sign in bit 15. Writes 32 grid values, returns the scale. */
static int iq1s_group(const fr_block_iq1_s *x, int ib, int8_t g[32], int *neg) {
    const uint16_t qh = x->qh[ib];
    for (int l = 0; l < 4; l++)
        memcpy(g + 8 * l, &fr_iq1s_grid[x->qs[4 * ib + l] | (((qh >> (3 * l)) & 7) << 8)], 8);
    *neg = qh >> 15;
    return 2 * ((qh >> 12) & 7) + 1;
}

void fr_to_float_iq1_s(const void *vx, float *y, int64_t n) {
    const fr_block_iq1_s *x = vx;
    int8_t g[32];
    int neg;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float d = h2f(x[b].d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            const float dl = d * iq1s_group(&x[b], ib, g, &neg);
            const float delta = neg ? -FR_IQ1_DELTA : FR_IQ1_DELTA;
            for (int j = 0; j < 32; j++) y[j] = dl * (g[j] + delta);
        }
    }
}

void fr_vec_dot_iq1_s(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq1_s *x = vx;
    const fr_block_q8_k *y = vy;
    int8_t g[32];
    int neg;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const int8_t *q8 = y[b].qs;
        int sumi = 0, sumi1 = 0;
        for (int ib = 0; ib < 8; ib++, q8 += 32) {
            const int ls = iq1s_group(&x[b], ib, g, &neg);
            sumi += ls * (dot8(g, q8) + dot8(g + 8, q8 + 8) + dot8(g + 16, q8 + 16) + dot8(g + 24, q8 + 24));
            sumi1 += ls * (neg ? -1 : 1) * (y[b].bsums[2 * ib] + y[b].bsums[2 * ib + 1]);
        }
        sumf += h2f(x[b].d) * y[b].d * (sumi + FR_IQ1_DELTA * sumi1);
    }
    *s = sumf;
}

/* IQ1_M: the F16 super-block scale is the top nibbles of the 4 scale words; group
 * ib's two 3-bit scales are bits 6(ib%2)..+5 of word ib/2; qh[2 ib + h] holds the
 * high index bits of groups of 8 2h (bits 0..2) and 2h+1 (bits 4..6) and their
 * delta signs (bits 3 and 7). */
static float iq1m_d(const fr_block_iq1_m *x) {
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    return h2f((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000)));
}

static void iq1m_group(const fr_block_iq1_m *x, int ib, int8_t g[32], int neg[4], int ls[2]) {
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    const uint8_t *qs = x->qs + 4 * ib, *qh = x->qh + 2 * ib;
    for (int l = 0; l < 4; l++) {
        const int h = qh[l / 2] >> (4 * (l % 2));
        memcpy(g + 8 * l, &fr_iq1s_grid[qs[l] | ((h & 7) << 8)], 8);
        neg[l] = (h >> 3) & 1;
    }
    ls[0] = 2 * ((sc[ib / 2] >> (6 * (ib % 2))) & 7) + 1;
    ls[1] = 2 * ((sc[ib / 2] >> (6 * (ib % 2) + 3)) & 7) + 1;
}

void fr_to_float_iq1_m(const void *vx, float *y, int64_t n) {
    const fr_block_iq1_m *x = vx;
    int8_t g[32];
    int neg[4], ls[2];
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float d = iq1m_d(&x[b]);
        for (int ib = 0; ib < 8; ib++) {
            iq1m_group(&x[b], ib, g, neg, ls);
            for (int l = 0; l < 4; l++, y += 8) {
                const float dl = d * ls[l / 2], delta = neg[l] ? -FR_IQ1_DELTA : FR_IQ1_DELTA;
                for (int j = 0; j < 8; j++) y[j] = dl * (g[8 * l + j] + delta);
            }
        }
    }
}

void fr_vec_dot_iq1_m(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq1_m *x = vx;
    const fr_block_q8_k *y = vy;
    int8_t g[32];
    int neg[4], ls[2];
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const int8_t *q8 = y[b].qs;
        int sumi1 = 0, sumi2 = 0;
        for (int ib = 0; ib < 8; ib++) {
            iq1m_group(&x[b], ib, g, neg, ls);
            int s1[2] = {0, 0}, s2[2] = {0, 0};
            for (int l = 0; l < 4; l++, q8 += 8) {
                int qsum = 0;
                for (int j = 0; j < 8; j++) qsum += q8[j];
                s1[l / 2] += dot8(g + 8 * l, q8);
                s2[l / 2] += neg[l] ? -qsum : qsum;
            }
            sumi1 += s1[0] * ls[0] + s1[1] * ls[1];
            sumi2 += s2[0] * ls[0] + s2[1] * ls[1];
        }
        sumf += iq1m_d(&x[b]) * y[b].d * (sumi1 + FR_IQ1_DELTA * sumi2);
    }
    *s = sumf;
}
