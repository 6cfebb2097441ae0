/* quant_legacy.c - scalar reference kernels for F32, F16, BF16 and the legacy
 * 32-value block formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1).
 *
 * Quantizers reproduce ggml's quantize_row_*_ref bit for bit, and the dot products
 * follow ggml-cpu's generic (non-SIMD) vec_dot_*: integer dot per block, then one
 * float multiply-add per block in the same order, so our logits track llama.cpp's.
 * Where ggml would convert an out-of-range float to an integer (undefined behaviour
 * in C, reachable only with inf/NaN input) we clamp first: identical results for
 * every finite input, no UB for garbage. */
#include "core/quant.h"

#include <math.h>
#include <string.h>

/* The quantizers must round exactly like ggml's reference build (no fused
 * multiply-add), or files we write stop matching llama-quantize's bit for bit when
 * someone builds with -march=native. GCC in ISO C mode never contracts; clang does
 * by default, so turn it off there. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* float -> int truncating toward zero like a C cast, but defined for any input:
 * NaN -> 0, out-of-range values saturate to [lo, hi]. */
static inline int trunc_clamp(float v, int lo, int hi) {
    if (!(v == v)) return 0;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* roundf (half away from zero) with the same guarding as trunc_clamp. */
static inline int round_clamp(float v, int lo, int hi) {
    if (!(v == v)) return 0;
    if (v <= (float)lo) return lo;
    if (v >= (float)hi) return hi;
    return (int)roundf(v);
}

static inline float h2f(uint16_t h) { return fr_f16_to_f32(h); }

/* ------------------------------------------------------------------ F32 */

/* Plain copy. */
void fr_to_float_f32(const void *x, float *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

void fr_from_float_f32(const float *x, void *y, int64_t n) {
    memcpy(y, x, (size_t)n * sizeof(float));
}

/* ggml_vec_dot_f32 (scalar): each product rounded to float, summed in double. */
void fr_vec_dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

/* ------------------------------------------------------------------ F16 */

void fr_to_float_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = h2f(x[i]);
}

void fr_from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = fr_f32_to_f16(x[i]);
}

/* ggml_vec_dot_f16 (scalar): float product of the widened halves, double sum. */
void fr_vec_dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i]));
    *s = (float)sum;
}

/* ------------------------------------------------------------------ BF16 */

void fr_to_float_bf16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    for (int64_t i = 0; i < n; i++) y[i] = fr_bf16_to_f32(x[i]);
}

void fr_from_float_bf16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    for (int64_t i = 0; i < n; i++) y[i] = fr_f32_to_bf16(x[i]);
}

/* ggml_vec_dot_bf16 (scalar): same scheme as F16. */
void fr_vec_dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)(fr_bf16_to_f32(x[i]) * fr_bf16_to_f32(y[i]));
    *s = (float)sum;
}

/* ------------------------------------------------------------------ Q4_0
 * value = d * (q - 8), q in 0..15; low nibbles hold values 0..15, high 16..31. */

void fr_to_float_q4_0(const void *vx, float *y, int64_t n) {
    const fr_block_q4_0 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d);
        for (int j = 0; j < FR_QK / 2; j++) {
            y[j] = (float)((x[b].qs[j] & 0x0F) - 8) * d;
            y[j + FR_QK / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
        }
    }
}

/* ggml quantize_row_q4_0_ref: the scale is signed so that the value with the
 * largest magnitude maps exactly to -8 (the asymmetric end of the range). */
void fr_from_float_q4_0(const float *x, void *vy, int64_t n) {
    fr_block_q4_0 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < FR_QK; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        for (int j = 0; j < FR_QK / 2; j++) {
            int q0 = trunc_clamp(x[j] * id + 8.5f, -128, 127);
            int q1 = trunc_clamp(x[j + FR_QK / 2] * id + 8.5f, -128, 127);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        }
    }
}

/* ggml_vec_dot_q4_0_q8_0 generic. */
void fr_vec_dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            s0 += ((x[b].qs[j] & 0x0F) - 8) * y[b].qs[j];
            s1 += ((x[b].qs[j] >> 4) - 8) * y[b].qs[j + FR_QK / 2];
        }
        sum += (float)(s0 + s1) * h2f(x[b].d) * h2f(y[b].d);
    }
    *s = sum;
}

/* ------------------------------------------------------------------ Q4_1
 * value = d * q + m, q in 0..15. */

void fr_to_float_q4_1(const void *vx, float *y, int64_t n) {
    const fr_block_q4_1 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d), m = h2f(x[b].m);
        for (int j = 0; j < FR_QK / 2; j++) {
            y[j] = (float)(x[b].qs[j] & 0x0F) * d + m;
            y[j + FR_QK / 2] = (float)(x[b].qs[j] >> 4) * d + m;
        }
    }
}

/* ggml quantize_row_q4_1_ref: min/max affine mapping onto 0..15. */
void fr_from_float_q4_1(const float *x, void *vy, int64_t n) {
    fr_block_q4_1 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < FR_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        y[b].m = fr_f32_to_f16(min);
        for (int j = 0; j < FR_QK / 2; j++) {
            int q0 = trunc_clamp((x[j] - min) * id + 0.5f, -128, 127);
            int q1 = trunc_clamp((x[j + FR_QK / 2] - min) * id + 0.5f, -128, 127);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
        }
    }
}

/* ggml_vec_dot_q4_1_q8_1 generic: the min term uses y's precomputed s. */
void fr_vec_dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        int s0 = 0, s1 = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            s0 += (x[b].qs[j] & 0x0F) * y[b].qs[j];
            s1 += (x[b].qs[j] >> 4) * y[b].qs[j + FR_QK / 2];
        }
        sum += (h2f(x[b].d) * h2f(y[b].d)) * (float)(s0 + s1) + h2f(x[b].m) * h2f(y[b].s);
    }
    *s = sum;
}

/* ------------------------------------------------------------------ Q5_0
 * value = d * (q - 16), q in 0..31: low 4 bits in qs (as Q4_0), bit 4 of value j
 * in bit j of the little-endian 32-bit qh. */

static inline uint32_t load_qh(const uint8_t qh[4]) {
    return (uint32_t)qh[0] | ((uint32_t)qh[1] << 8) | ((uint32_t)qh[2] << 16) |
           ((uint32_t)qh[3] << 24);
}

static inline void store_qh(uint8_t qh[4], uint32_t v) {
    for (int i = 0; i < 4; i++) qh[i] = (uint8_t)(v >> (8 * i));
}

void fr_to_float_q5_0(const void *vx, float *y, int64_t n) {
    const fr_block_q5_0 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d);
        const uint32_t qh = load_qh(x[b].qh);
        for (int j = 0; j < FR_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (float)(((x[b].qs[j] & 0x0F) | h0) - 16) * d;
            y[j + FR_QK / 2] = (float)(((x[b].qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

/* ggml quantize_row_q5_0_ref: as Q4_0 with 32 levels (d = max / -16). */
void fr_from_float_q5_0(const float *x, void *vy, int64_t n) {
    fr_block_q5_0 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < FR_QK; j++) {
            if (amax < fabsf(x[j])) { amax = fabsf(x[j]); max = x[j]; }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        uint32_t qh = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            int q0 = trunc_clamp(x[j] * id + 16.5f, -128, 127);
            int q1 = trunc_clamp(x[j + FR_QK / 2] * id + 16.5f, -128, 127);
            if (q0 > 31) q0 = 31;
            if (q1 > 31) q1 = 31;
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + FR_QK / 2);
        }
        store_qh(y[b].qh, qh);
    }
}

/* ggml_vec_dot_q5_0_q8_0 generic. */
void fr_vec_dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const uint32_t qh = load_qh(x[b].qh);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            s0 += (((x[b].qs[j] & 0x0F) | h0) - 16) * y[b].qs[j];
            s1 += (((x[b].qs[j] >> 4) | h1) - 16) * y[b].qs[j + FR_QK / 2];
        }
        sum += (h2f(x[b].d) * h2f(y[b].d)) * (float)(s0 + s1);
    }
    *s = sum;
}

/* ------------------------------------------------------------------ Q5_1
 * value = d * q + m, q in 0..31, bit layout as Q5_0. */

void fr_to_float_q5_1(const void *vx, float *y, int64_t n) {
    const fr_block_q5_1 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d), m = h2f(x[b].m);
        const uint32_t qh = load_qh(x[b].qh);
        for (int j = 0; j < FR_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            y[j] = (float)((x[b].qs[j] & 0x0F) | h0) * d + m;
            y[j + FR_QK / 2] = (float)((x[b].qs[j] >> 4) | h1) * d + m;
        }
    }
}

/* ggml quantize_row_q5_1_ref: min/max onto 0..31 (no clamp in ggml: the rounding
 * of (max-min)*id + 0.5 cannot exceed 31.5). */
void fr_from_float_q5_1(const float *x, void *vy, int64_t n) {
    fr_block_q5_1 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float min = INFINITY, max = -INFINITY;
        for (int j = 0; j < FR_QK; j++) {
            if (x[j] < min) min = x[j];
            if (x[j] > max) max = x[j];
        }
        const float d = (max - min) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        y[b].m = fr_f32_to_f16(min);
        uint32_t qh = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            const int q0 = trunc_clamp((x[j] - min) * id + 0.5f, 0, 31);
            const int q1 = trunc_clamp((x[j + FR_QK / 2] - min) * id + 0.5f, 0, 31);
            y[b].qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 & 0x10) >> 4) << j;
            qh |= (uint32_t)((q1 & 0x10) >> 4) << (j + FR_QK / 2);
        }
        store_qh(y[b].qh, qh);
    }
}

/* ggml_vec_dot_q5_1_q8_1 generic. */
void fr_vec_dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const uint32_t qh = load_qh(x[b].qh);
        int s0 = 0, s1 = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            const int h0 = (int)((qh >> j) << 4) & 0x10;
            const int h1 = (int)(qh >> (j + 12)) & 0x10;
            s0 += ((x[b].qs[j] & 0x0F) | h0) * y[b].qs[j];
            s1 += ((x[b].qs[j] >> 4) | h1) * y[b].qs[j + FR_QK / 2];
        }
        sum += (h2f(x[b].d) * h2f(y[b].d)) * (float)(s0 + s1) + h2f(x[b].m) * h2f(y[b].s);
    }
    *s = sum;
}

/* ------------------------------------------------------------------ Q8_0
 * value = d * q, q in -127..127. */

void fr_to_float_q8_0(const void *vx, float *y, int64_t n) {
    const fr_block_q8_0 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d);
        for (int j = 0; j < FR_QK; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

/* ggml quantize_row_q8_0_ref: symmetric, d = amax/127, q = roundf(x/d) using the
 * unrounded float scale (the stored fp16 d is not used for the quants). */
void fr_from_float_q8_0(const float *x, void *vy, int64_t n) {
    fr_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float amax = 0.0f;
        for (int j = 0; j < FR_QK; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        for (int j = 0; j < FR_QK; j++) y[b].qs[j] = (int8_t)round_clamp(x[j] * id, -128, 127);
    }
}

/* ggml_vec_dot_q8_0_q8_0 generic. */
void fr_vec_dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        int si = 0;
        for (int j = 0; j < FR_QK; j++) si += x[b].qs[j] * y[b].qs[j];
        sum += (float)si * (h2f(x[b].d) * h2f(y[b].d));
    }
    *s = sum;
}

/* ------------------------------------------------------------------ Q8_1
 * Q8_0 plus s = d * sum(q); only used as the activation side of Q4_1/Q5_1. */

void fr_to_float_q8_1(const void *vx, float *y, int64_t n) {
    const fr_block_q8_1 *x = vx;
    for (int64_t b = 0; b < n / FR_QK; b++, y += FR_QK) {
        const float d = h2f(x[b].d);
        for (int j = 0; j < FR_QK; j++) y[j] = (float)x[b].qs[j] * d;
    }
}

/* ggml quantize_row_q8_1_ref: as Q8_0; s uses the float d (not the fp16 one). */
void fr_from_float_q8_1(const float *x, void *vy, int64_t n) {
    fr_block_q8_1 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        float amax = 0.0f;
        for (int j = 0; j < FR_QK; j++) {
            const float a = fabsf(x[j]);
            if (a > amax) amax = a;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        int sum = 0;
        for (int j = 0; j < FR_QK / 2; j++) {
            y[b].qs[j] = (int8_t)round_clamp(x[j] * id, -128, 127);
            y[b].qs[j + FR_QK / 2] = (int8_t)round_clamp(x[j + FR_QK / 2] * id, -128, 127);
            sum += y[b].qs[j] + y[b].qs[j + FR_QK / 2];
        }
        y[b].s = fr_f32_to_f16((float)sum * d);
    }
}

/* Q8_1 x Q8_1 (ggml has no such kernel; defined for table completeness). */
void fr_vec_dot_q8_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        int si = 0;
        for (int j = 0; j < FR_QK; j++) si += x[b].qs[j] * y[b].qs[j];
        sum += (float)si * (h2f(x[b].d) * h2f(y[b].d));
    }
    *s = sum;
}
