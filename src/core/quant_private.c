/* quant_private.c - scalar reference of frugal's own types (layouts and rationale in
 * core/quant_private.h) and their traits table. The SIMD kernels in
 * kernels/private_avx512.c are tested against these functions. */
#include "core/quant_private.h"

#include <math.h>
#include <string.h>

#include "core/quant.h"

/* bitsandbytes' NF4 code book: quantiles of N(0,1), normalised to [-1, 1], with an
 * exact zero (8 positive, 7 negative levels). */
const float fr_nf4_levels[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044006f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

static inline uint16_t rd16(const void *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void wr16(void *p, uint16_t v) { memcpy(p, &v, 2); }

/* ------------------------------------------------------------------ FP8 E4M3 */

/* E4M3 shifted left by 7 is an IEEE half with the same sign/exponent/mantissa
 * fields, worth 2^-8 times the E4M3 value (the biases differ by 8), subnormals
 * included. The SIMD kernels use the same identity with vcvtph2ps. */
float fr_fp8_e4m3_to_f32(uint8_t c) {
    uint16_t h = (uint16_t)(((c & 0x7fu) << 7) | ((c & 0x80u) << 8));
    return fr_f16_to_f32(h) * 256.0f;
}

/* Round to nearest even, saturating at +-448 (code 0x7e); NaN maps to 0 (we never
 * want NaN codes in weights). */
uint8_t fr_fp8_e4m3_from_f32(float v) {
    uint8_t sign = signbit(v) ? 0x80 : 0;
    float a = fabsf(v);
    if (isnan(a)) return 0;
    if (a >= 448.0f) return (uint8_t)(sign | 0x7e);
    if (a < 0.015625f) /* below 2^-6: subnormal steps of 2^-9; 8 steps = min normal */
        return (uint8_t)(sign | (uint8_t)rintf(a * 512.0f));
    int e;
    float fr = frexpf(a, &e);                      /* a = fr * 2^e, fr in [0.5, 1) */
    int m = (int)rintf((2.0f * fr - 1.0f) * 8.0f); /* exact product, RNE rounding */
    int E = e - 1 + 7;
    if (m == 8) { m = 0; E++; }
    if (E > 15 || (E == 15 && m > 6)) return (uint8_t)(sign | 0x7e);
    return (uint8_t)(sign | (E << 3) | m);
}

/* ------------------------------------------------------------------ I8C */

void fr_to_float_i8c(const void *x, float *y, int64_t n) {
    const uint8_t *row = x;
    const float d = fr_f16_to_f32(rd16(row));
    const int8_t *q = (const int8_t *)(row + 2);
    for (int64_t i = 0; i < n; i++) y[i] = d * (float)q[i];
}

/* One row: d = amax/127 rounded to F16, then q = round(x / d) against the stored
 * (rounded) d so the rounding of the scale does not bias the values. */
void fr_from_float_i8c(const float *x, void *y, int64_t n) {
    uint8_t *row = y;
    float amax = 0.0f;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(x[i]));
    uint16_t dh = fr_f32_to_f16(amax / 127.0f);
    float d = fr_f16_to_f32(dh);
    wr16(row, dh);
    int8_t *q = (int8_t *)(row + 2);
    const float id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float v = roundf(x[i] * id);
        q[i] = (int8_t)(v > 127.0f ? 127 : v < -127.0f ? -127 : v);
    }
}

/* y: n/32 Q8_0 blocks. Integer sums per 32-value block, scaled by the activation
 * block's d, summed in float; the row scale multiplies once at the end. */
void fr_vec_dot_i8c(int n, float *s, const void *x, const void *y) {
    const uint8_t *row = x;
    const int8_t *q = (const int8_t *)(row + 2);
    const fr_block_q8_0 *yb = y;
    float sum = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        int isum = 0;
        for (int i = 0; i < FR_QK; i++) isum += q[b * FR_QK + i] * yb[b].qs[i];
        sum += fr_f16_to_f32(yb[b].d) * (float)isum;
    }
    *s = sum * fr_f16_to_f32(rd16(row));
}

/* ------------------------------------------------------------------ NF4 */

/* Index of the level nearest to v (v in units of the block scale). */
static inline int nf4_code(float v) {
    static const float mid[15] = {
        -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.3396794348955154f,
        -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
        0.1202552504837513f, 0.2035212516784668f, 0.2920137718319893f, 0.3893125355243683f,
        0.5016634166240692f, 0.6427869200706482f, 0.8614784181118011f,
    };
    int c = 0;
    for (int i = 0; i < 15; i++) c += v > mid[i];
    return c;
}

/* Squared error of coding x[0..63] with block scale a (a > 0). */
static float nf4_block_err(const float *x, float a) {
    const float ia = 1.0f / a;
    float e = 0.0f;
    for (int i = 0; i < FR_NF4_BLOCK; i++) {
        float r = x[i] - fr_nf4_levels[nf4_code(x[i] * ia)] * a;
        e += r * r;
    }
    return e;
}

static void nf4_quant_super(const float *x, fr_block_nf4 *b) {
    enum { NB = FR_NF4_SUPER / FR_NF4_BLOCK };
    float amax[NB], top = 0.0f;
    for (int j = 0; j < NB; j++) {
        amax[j] = 0.0f;
        for (int i = 0; i < FR_NF4_BLOCK; i++) amax[j] = fmaxf(amax[j], fabsf(x[j * FR_NF4_BLOCK + i]));
        top = fmaxf(top, amax[j]);
    }
    const uint16_t dh = fr_f32_to_f16(top / 255.0f);
    const float D = fr_f16_to_f32(dh);
    wr16(&b->d, dh);
    for (int j = 0; j < NB; j++) {
        const float *xb = x + j * FR_NF4_BLOCK;
        uint8_t *qs = b->qs + j * (FR_NF4_BLOCK / 2);
        int best = 0;
        if (D > 0.0f && amax[j] > 0.0f) {
            /* the 8-bit scale is coarse for small blocks: of the three codes around
             * amax/D keep the one with the least squared error of the whole block */
            int s0 = (int)lrintf(amax[j] / D);
            float best_e = INFINITY;
            for (int s = s0 - 1; s <= s0 + 1; s++) {
                if (s < 1 || s > 255) continue;
                float e = nf4_block_err(xb, D * (float)s);
                if (e < best_e) { best_e = e; best = s; }
            }
        }
        b->scales[j] = (uint8_t)best;
        const float ia = best ? 1.0f / (D * (float)best) : 0.0f;
        for (int k = 0; k < FR_NF4_BLOCK / 2; k++) {
            int lo = best ? nf4_code(xb[k] * ia) : 7, hi = best ? nf4_code(xb[k + 32] * ia) : 7;
            qs[k] = (uint8_t)(lo | (hi << 4));
        }
    }
}

void fr_from_float_nf4(const float *x, void *y, int64_t n) {
    fr_block_nf4 *b = y;
    for (int64_t i = 0; i < n / FR_NF4_SUPER; i++) nf4_quant_super(x + i * FR_NF4_SUPER, &b[i]);
}

void fr_to_float_nf4(const void *x, float *y, int64_t n) {
    const fr_block_nf4 *b = x;
    for (int64_t i = 0; i < n / FR_NF4_SUPER; i++) {
        const float D = fr_f16_to_f32(rd16(&b[i].d));
        for (int j = 0; j < FR_NF4_SUPER / FR_NF4_BLOCK; j++) {
            const float a = D * (float)b[i].scales[j];
            const uint8_t *qs = b[i].qs + j * (FR_NF4_BLOCK / 2);
            float *yb = y + i * FR_NF4_SUPER + j * FR_NF4_BLOCK;
            for (int k = 0; k < FR_NF4_BLOCK / 2; k++) {
                yb[k] = fr_nf4_levels[qs[k] & 15] * a;
                yb[k + 32] = fr_nf4_levels[qs[k] >> 4] * a;
            }
        }
    }
}

/* y: n floats. Per 64-value block: sum(level * y), then times the block scale. */
void fr_vec_dot_nf4(int n, float *s, const void *x, const void *y) {
    const fr_block_nf4 *b = x;
    const float *yf = y;
    float sum = 0.0f;
    for (int i = 0; i < n / FR_NF4_SUPER; i++) {
        const float D = fr_f16_to_f32(rd16(&b[i].d));
        for (int j = 0; j < FR_NF4_SUPER / FR_NF4_BLOCK; j++) {
            const uint8_t *qs = b[i].qs + j * (FR_NF4_BLOCK / 2);
            const float *yb = yf + i * FR_NF4_SUPER + j * FR_NF4_BLOCK;
            float bs = 0.0f;
            for (int k = 0; k < FR_NF4_BLOCK / 2; k++)
                bs += fr_nf4_levels[qs[k] & 15] * yb[k] + fr_nf4_levels[qs[k] >> 4] * yb[k + 32];
            sum += bs * (D * (float)b[i].scales[j]);
        }
    }
    *s = sum;
}

/* ------------------------------------------------------------------ FP8O */

static void fp8o_quant_block(const float *x, fr_block_fp8o *b) {
    enum { N = FR_FP8O_BLOCK };
    double mean = 0.0, var = 0.0;
    for (int i = 0; i < N; i++) mean += x[i];
    mean /= N;
    for (int i = 0; i < N; i++) var += (x[i] - mean) * (x[i] - mean);
    const double lim = 3.0 * sqrt(var / N);
    uint8_t is_out[N] = {0};
    memset(b->idx, FR_FP8O_NO_OUT, sizeof b->idx);
    memset(b->out, 0, sizeof b->out);
    for (int k = 0; k < FR_FP8O_MAX_OUT; k++) { /* the largest |z| > 3 first */
        int arg = -1;
        double best = lim;
        for (int i = 0; i < N; i++) {
            double z = fabs(x[i] - mean);
            if (!is_out[i] && z > best) { best = z; arg = i; }
        }
        if (arg < 0) break;
        is_out[arg] = 1;
        b->idx[k] = (uint8_t)arg;
        float v = x[arg] > 65504.0f ? 65504.0f : x[arg] < -65504.0f ? -65504.0f : x[arg];
        wr16(&b->out[k], fr_f32_to_f16(v));
    }
    float amax = 0.0f;
    for (int i = 0; i < N; i++) if (!is_out[i]) amax = fmaxf(amax, fabsf(x[i]));
    const uint16_t dh = fr_f32_to_f16(amax / 448.0f);
    const float d = fr_f16_to_f32(dh);
    wr16(&b->d, dh);
    for (int i = 0; i < N; i++) b->qs[i] = (is_out[i] || d == 0.0f) ? 0 : fr_fp8_e4m3_from_f32(x[i] / d);
}

void fr_from_float_fp8o(const float *x, void *y, int64_t n) {
    fr_block_fp8o *b = y;
    for (int64_t i = 0; i < n / FR_FP8O_BLOCK; i++) fp8o_quant_block(x + i * FR_FP8O_BLOCK, &b[i]);
}

void fr_to_float_fp8o(const void *x, float *y, int64_t n) {
    const fr_block_fp8o *b = x;
    for (int64_t i = 0; i < n / FR_FP8O_BLOCK; i++) {
        const float d = fr_f16_to_f32(rd16(&b[i].d));
        float *yb = y + i * FR_FP8O_BLOCK;
        for (int k = 0; k < FR_FP8O_BLOCK; k++) yb[k] = fr_fp8_e4m3_to_f32(b[i].qs[k]) * d;
        for (int k = 0; k < FR_FP8O_MAX_OUT; k++) /* indices >= 128 (file damage) are ignored */
            if (b[i].idx[k] < FR_FP8O_BLOCK) yb[b[i].idx[k]] = fr_f16_to_f32(rd16(&b[i].out[k]));
    }
}

/* y: n floats. d * sum(fp8 * y) per block, then each outlier replaces its slot's
 * fp8 contribution (so the dot equals the dequantized row even if a file stored a
 * non-zero code under an outlier). */
void fr_vec_dot_fp8o(int n, float *s, const void *x, const void *y) {
    const fr_block_fp8o *b = x;
    const float *yf = y;
    float sum = 0.0f;
    for (int i = 0; i < n / FR_FP8O_BLOCK; i++) {
        const float d = fr_f16_to_f32(rd16(&b[i].d));
        const float *yb = yf + i * FR_FP8O_BLOCK;
        float bs = 0.0f;
        for (int k = 0; k < FR_FP8O_BLOCK; k++) bs += fr_fp8_e4m3_to_f32(b[i].qs[k]) * yb[k];
        sum += bs * d;
        for (int k = 0; k < FR_FP8O_MAX_OUT; k++) {
            int j = b[i].idx[k];
            if (j < FR_FP8O_BLOCK)
                sum += (fr_f16_to_f32(rd16(&b[i].out[k])) - fr_fp8_e4m3_to_f32(b[i].qs[j]) * d) * yb[j];
        }
    }
    *s = sum;
}

/* ------------------------------------------------------------------ traits */

enum { N_PRIVATE = FR_TYPE_PRIVATE_END - FR_TYPE_PRIVATE_BASE };

/* designated fields only: the struct grows (gemm, row_overhead) and clang flags
 * positional initializers that stop short of its end */
#define PRIV(id, nm, bs, ts, sfx, vdt, oh)                                                         \
    [id - FR_TYPE_PRIVATE_BASE] = {.name = nm, .blck_size = bs, .type_size = ts, .supported = true, \
                                   .to_float = fr_to_float_##sfx, .from_float = fr_from_float_##sfx, \
                                   .vec_dot_type = vdt, .vec_dot = fr_vec_dot_##sfx, .row_overhead = oh}

static const fr_type_traits k_private[N_PRIVATE] = {
    PRIV(FR_TYPE_I8C, "I8C", FR_QK, FR_QK, i8c, FR_TYPE_Q8_0, 2),
    PRIV(FR_TYPE_NF4, "NF4", FR_NF4_SUPER, sizeof(fr_block_nf4), nf4, FR_TYPE_F32, 0),
    PRIV(FR_TYPE_FP8O, "FP8O", FR_FP8O_BLOCK, sizeof(fr_block_fp8o), fp8o, FR_TYPE_F32, 0),
};

const fr_type_traits *fr_private_traits_scalar(uint32_t type) {
    if (type < FR_TYPE_PRIVATE_BASE || type >= FR_TYPE_PRIVATE_END) return NULL;
    return &k_private[type - FR_TYPE_PRIVATE_BASE];
}
