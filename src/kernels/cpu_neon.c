/* cpu_neon.c - AArch64 NEON kernels, compile-guarded: on x86 this file is only the
 * stub installer below. Covers the F32 dot and the two most used legacy dots (Q8_0,
 * Q4_0 x Q8_0); everything else stays scalar on ARM for now.
 *
 * Contract: as the scalar references, with |neon - scalar| <= 1e-5 * sum|x_i y_i|
 * + 1e-6. Integer products use widening multiplies (vmull_s8) and pairwise
 * accumulation into int32, exact for all int8 inputs; no dot-product extension is
 * assumed, so any ARMv8-A core runs it. */
#include "kernels/dispatch.h"

#if defined(__ARM_NEON) && defined(__aarch64__)

#include <arm_neon.h>

#include "core/quant.h"

static inline float h2f(uint16_t h) { return fr_f16_to_f32(h); }

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(y + i));
        a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(y + i + 4));
    }
    float sum = vaddvq_f32(vaddq_f32(a0, a1));
    for (; i < n; i++) sum += x[i] * y[i];
    *s = sum;
}

/* sum of x*y over 16 int8 pairs, into 4 int32 lanes added to acc */
static inline int32x4_t dot16(int32x4_t acc, int8x16_t x, int8x16_t y) {
    acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(x), vget_low_s8(y)));
    return vpadalq_s16(acc, vmull_high_s8(x, y));
}

static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int b = 0; b < n / FR_QK; b++) {
        int32x4_t i = vdupq_n_s32(0);
        i = dot16(i, vld1q_s8(x[b].qs), vld1q_s8(y[b].qs));
        i = dot16(i, vld1q_s8(x[b].qs + 16), vld1q_s8(y[b].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(i), h2f(x[b].d) * h2f(y[b].d));
    }
    *s = vaddvq_f32(acc);
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    const uint8x16_t m4 = vdupq_n_u8(0x0F);
    const int8x16_t eight = vdupq_n_s8(8);
    float32x4_t acc = vdupq_n_f32(0.0f);
    for (int b = 0; b < n / FR_QK; b++) {
        const uint8x16_t q = vld1q_u8(x[b].qs);
        const int8x16_t lo = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, m4)), eight);
        const int8x16_t hi = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), eight);
        int32x4_t i = vdupq_n_s32(0);
        i = dot16(i, lo, vld1q_s8(y[b].qs));
        i = dot16(i, hi, vld1q_s8(y[b].qs + 16));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(i), h2f(x[b].d) * h2f(y[b].d));
    }
    *s = vaddvq_f32(acc);
}

int fr_kernels_install_neon(fr_type_traits *t) {
    t[FR_TYPE_F32].vec_dot = dot_f32;
    t[FR_TYPE_Q8_0].vec_dot = dot_q8_0;
    t[FR_TYPE_Q4_0].vec_dot = dot_q4_0;
    return 1;
}

#else /* not AArch64 NEON */

int fr_kernels_install_neon(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
