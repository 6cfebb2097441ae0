/* quant_lowbit.c - scalar references for Q2_K, Q3_K, IQ4_NL and IQ4_XS (readers).
 *
 * Dequantizers compute each value with the same float operations as ggml's
 * dequantize_row_*; the dots follow ggml-cpu's generic vec_dot_*: exact integer
 * sums per sub-block, then one float scale per super-block (Q2_K, IQ4_XS), or the
 * 8-lane scheme of the other K-quants (Q3_K). */
#include "core/quant_lowbit.h"

#include <string.h>

static inline float h2f(uint16_t h) { return fr_f16_to_f32(h); }

const int8_t fr_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

/* ------------------------------------------------------------------ Q2_K
 * Per 128-value half: byte l of qs[32] holds 2-bit quants of values l, l+32, l+64,
 * l+96 (bits 0-1, 2-3, 4-5, 6-7); sub-block j (16 values) has scales[j]. */

void fr_to_float_q2_k(const void *vx, float *y, int64_t n) {
    const fr_block_q2_k *x = vx;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float d = h2f(x[b].d), min = h2f(x[b].dmin);
        const uint8_t *q = x[b].qs, *sc = x[b].scales;
        for (int half = 0; half < 2; half++, q += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int k = 0; k < 2; k++, sc++) {
                    const float dl = d * (*sc & 0xF), ml = min * (*sc >> 4);
                    for (int l = 0; l < 16; l++) *y++ = dl * ((q[16 * k + l] >> shift) & 3) - ml;
                }
    }
}

void fr_vec_dot_q2_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q2_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *q2 = x[b].qs, *sc = x[b].scales;
        const int8_t *q8 = y[b].qs;
        int summs = 0, isum = 0;
        for (int j = 0; j < 16; j++) summs += y[b].bsums[j] * (sc[j] >> 4);
        for (int half = 0; half < 2; half++, q2 += 32)
            for (int shift = 0; shift < 8; shift += 2)
                for (int k = 0; k < 2; k++, sc++, q8 += 16) {
                    int acc = 0;
                    for (int l = 0; l < 16; l++) acc += q8[l] * ((q2[16 * k + l] >> shift) & 3);
                    isum += (*sc & 0xF) * acc;
                }
        const float dall = y[b].d * h2f(x[b].d), dmin = y[b].d * h2f(x[b].dmin);
        sumf += dall * isum - dmin * summs;
    }
    *s = sumf;
}

/* ------------------------------------------------------------------ Q3_K
 * The 16 six-bit scales: low nibbles in bytes 0..7 (sub-blocks 0..7 low nibble,
 * 8..15 high nibble), top 2 bits in bytes 8..11 (2 bits per sub-block, in 4 rounds). */

void fr_q3k_scales(const uint8_t packed[12], int8_t sc[16]) {
    for (int j = 0; j < 16; j++) {
        const int lo = (packed[j & 7] >> (4 * (j >> 3))) & 0xF;
        const int hi = (packed[8 + (j & 3)] >> (2 * (j >> 2))) & 3;
        sc[j] = (int8_t)((lo | (hi << 4)) - 32);
    }
}

/* The 256 quants of a block as int8 in -4..3, in value order. */
static void q3_expand(const fr_block_q3_k *x, int8_t out[FR_QK_K]) {
    const uint8_t *q = x->qs;
    unsigned m = 1;
    for (int half = 0; half < 2; half++, q += 32)
        for (int shift = 0; shift < 8; shift += 2, m <<= 1)
            for (int l = 0; l < 32; l++, out++)
                *out = (int8_t)(((q[l] >> shift) & 3) - (x->hmask[l] & m ? 0 : 4));
}

void fr_to_float_q3_k(const void *vx, float *y, int64_t n) {
    const fr_block_q3_k *x = vx;
    int8_t q[FR_QK_K], sc[16];
    for (int64_t b = 0; b < n / FR_QK_K; b++, y += FR_QK_K) {
        const float d = h2f(x[b].d);
        fr_q3k_scales(x[b].scales, sc);
        q3_expand(&x[b], q);
        for (int j = 0; j < 16; j++) {
            const float dl = d * sc[j];
            for (int l = 0; l < 16; l++) y[16 * j + l] = dl * q[16 * j + l];
        }
    }
}

void fr_vec_dot_q3_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q3_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sums[8] = {0};
    int8_t a[FR_QK_K], sc[16];
    for (int b = 0; b < n / FR_QK_K; b++) {
        int32_t aux32[8] = {0};
        q3_expand(&x[b], a);
        fr_q3k_scales(x[b].scales, sc);
        const int8_t *q8 = y[b].qs, *pa = a;
        for (int j = 0; j < 16; j++)
            for (int k = 0; k < 2; k++, q8 += 8, pa += 8)
                for (int l = 0; l < 8; l++) aux32[l] += sc[j] * (int16_t)(q8[l] * pa[l]);
        const float d = h2f(x[b].d) * y[b].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    float sumf = 0;
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------------ IQ4_NL / IQ4_XS
 * Per 32 values: byte j holds the level indices of values j (low nibble) and j+16. */

void fr_to_float_iq4_nl(const void *vx, float *y, int64_t n) {
    const fr_block_iq4_nl *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d);
        for (int j = 0; j < FR_QK / 2; j++) {
            y[j] = d * fr_iq4nl_values[x[b].qs[j] & 0xF];
            y[j + 16] = d * fr_iq4nl_values[x[b].qs[j] >> 4];
        }
    }
}

/* Integer dot of 32 levels (16 packed bytes) with 32 int8 activations. */
static inline int iq4_dot32(const uint8_t *qs, const int8_t *q8) {
    int s = 0;
    for (int j = 0; j < 16; j++)
        s += q8[j] * fr_iq4nl_values[qs[j] & 0xF] + q8[j + 16] * fr_iq4nl_values[qs[j] >> 4];
    return s;
}

void fr_vec_dot_iq4_nl(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_nl *x = vx;
    const fr_block_q8_0 *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK; b++)
        sumf += h2f(y[b].d) * h2f(x[b].d) * (float)iq4_dot32(x[b].qs, y[b].qs);
    *s = sumf;
}

/* 6-bit scale of sub-block j (0..7), minus its offset 32. */
static inline int iq4xs_scale(const fr_block_iq4_xs *x, int j) {
    return (((x->scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((x->scales_h >> (2 * j)) & 3) << 4)) - 32;
}

void fr_to_float_iq4_xs(const void *vx, float *y, int64_t n) {
    const fr_block_iq4_xs *x = vx;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float d = h2f(x[b].d);
        for (int j = 0; j < 8; j++, y += 32) {
            const float dl = d * iq4xs_scale(&x[b], j);
            const uint8_t *qs = x[b].qs + 16 * j;
            for (int l = 0; l < 16; l++) {
                y[l] = dl * fr_iq4nl_values[qs[l] & 0xF];
                y[l + 16] = dl * fr_iq4nl_values[qs[l] >> 4];
            }
        }
    }
}

void fr_vec_dot_iq4_xs(int n, float *s, const void *vx, const void *vy) {
    const fr_block_iq4_xs *x = vx;
    const fr_block_q8_k *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const float d4d8 = h2f(x[b].d) * y[b].d;
        for (int j = 0; j < 8; j++)
            sumf += d4d8 * iq4xs_scale(&x[b], j) * (float)iq4_dot32(x[b].qs + 16 * j, y[b].qs + 32 * j);
    }
    *s = sumf;
}
