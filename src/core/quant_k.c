/* quant_k.c - scalar reference kernels for the K-quant super-block formats
 * (Q4_K, Q5_K, Q6_K, and the Q8_K activation format).
 *
 * Quantizers follow ggml's quantize_row_*_ref without importance matrix
 * (make_qkx2_quants for Q4_K/Q5_K, make_qx_quants for Q6_K), so files we write
 * match what llama-quantize writes without imatrix. The dot products follow
 * ggml-cpu's generic vec_dot_*_q8_K: the integer products go into 8 int32 lanes,
 * each lane is scaled into its own float accumulator, and the 8 lanes are summed
 * at the end; reproducing that order keeps our results bit-comparable. */
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

#define GROUP_MAX_EPS 1e-15f

static inline float h2f(uint16_t h) { return fr_f16_to_f32(h); }

/* Round to nearest, ties to even, as ggml's nearest_int (the 1.5*2^23 trick) does
 * for |v| <= 2^22; beyond that (and for NaN, only reachable with garbage input)
 * ggml's trick is meaningless, so we saturate instead of invoking UB. */
static inline int nearest_int(float v) {
    if (!(v == v)) return 0;
    if (v > 4194303.0f) return 4194303;
    if (v < -4194303.0f) return -4194303;
    return (int)lrintf(v); /* default FP environment: round-half-even, same as the trick */
}

static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Scale and min (6 bits each) of sub-block j (0..7) from the 12 packed bytes:
 * sub-blocks 0..3 keep theirs in the low 6 bits of bytes 0..3 / 4..7; 4..7 use
 * the nibbles of bytes 8..11 plus the top 2 bits of bytes 0..7. */
static inline void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* Inverse of get_scale_min_k4 for one sub-block; scales must start zeroed. */
static inline void set_scale_min_k4(int j, uint8_t *q, int ls, int lm) {
    if (j < 4) {
        q[j] = (uint8_t)ls;
        q[j + 4] = (uint8_t)lm;
    } else {
        q[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        q[j - 4] |= (uint8_t)((ls >> 4) << 6);
        q[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

/* ggml make_qkx2_quants: fit x ~ scale * L - min (L in 0..nmax) minimising the
 * weighted squared error, trying nstep+1 candidate inverse scales around nmax/range.
 * Returns scale, stores the (positive) min in *the_min and the levels in L. */
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights,
                              uint8_t *L, float *the_min, uint8_t *Laux,
                              float rmin, float rdelta, int nstep) {
    float min = x[0], max = x[0];
    float sum_w = weights[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        const float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; i++) L[i] = 0;
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; i++) {
        const int l = nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)imax(0, imin(nmax, l));
        const float diff = scale * L[i] + min - x[i];
        best_error += weights[i] * (diff * diff);
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * (x[i] - min));
            l = imax(0, imin(nmax, l));
            Laux[i] = (uint8_t)l;
            const float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; i++) {
                const float diff = this_scale * Laux[i] + this_min - x[i];
                cur_error += weights[i] * (diff * diff);
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; i++) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* ggml make_qx_quants with rmse_type 1 and no quant weights: symmetric fit
 * x ~ scale * (L - nmax), L in 0..2*nmax-1, weighting each value by x^2, trying
 * 18 inverse scales around -nmax/max. Returns scale. */
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++) {
        const float ax = fabsf(x[i]);
        if (ax > amax) { amax = ax; max = x[i]; }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; i++) L[i] = 0;
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        int l = nearest_int(iscale * x[i]);
        l = imax(-nmax, imin(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; i++) {
            int l = nearest_int(iscale * x[i]);
            l = imax(-nmax, imin(nmax - 1, l));
            const float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) {
                const int l = nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Shared front half of the Q4_K/Q5_K quantizers: per-sub-block (scale, min) fits,
 * then 6-bit quantization of those against the super-block's d and dmin, then
 * re-quantization of the values with the rounded scales. Fills scales/d/dmin of
 * the block (passed as raw fields) and L (levels 0..nmax). */
static void quantize_k_superblock(const float *x, int nmax, float rmin, int nstep,
                                  uint16_t *d_out, uint16_t *dmin_out, uint8_t scales12[12],
                                  uint8_t L[FR_QK_K]) {
    float weights[32], mins[FR_QK_K / 32], scales[FR_QK_K / 32];
    uint8_t Laux[32];
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < FR_QK_K / 32; j++) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        const float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux,
                                     rmin, 0.1f, nstep);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    memset(scales12, 0, 12);
    for (int j = 0; j < FR_QK_K / 32; j++) {
        /* ggml stores the rounded value in a uint8_t before clamping; keep that
         * wrap-around so pathological (negative) fits encode identically */
        const int ls = imin(63, (uint8_t)nearest_int(inv_scale * scales[j]));
        const int lm = imin(63, (uint8_t)nearest_int(inv_min * mins[j]));
        set_scale_min_k4(j, scales12, ls, lm);
    }
    *d_out = fr_f32_to_f16(max_scale / 63.f);
    *dmin_out = fr_f32_to_f16(max_min / 63.f);
    for (int j = 0; j < FR_QK_K / 32; j++) {
        uint8_t sc, m;
        get_scale_min_k4(j, scales12, &sc, &m);
        const float d = h2f(*d_out) * sc;
        if (!d) continue; /* keep the levels of the first fit, as ggml does */
        const float dm = h2f(*dmin_out) * m;
        for (int ii = 0; ii < 32; ii++) {
            const int l = nearest_int((x[32 * j + ii] + dm) / d);
            L[32 * j + ii] = (uint8_t)imax(0, imin(nmax, l));
        }
    }
}

/* ------------------------------------------------------------------ Q4_K
 * value = d*sc[j]*q - dmin*m[j] for sub-block j; nibbles: byte l of each 32-byte
 * group holds value l (low) and l+32 (high) of a 64-value chunk. */

void fr_to_float_q4_k(const void *vx, float *y, int64_t n) {
    const fr_block_q4_k *x = vx;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *q = x[b].qs;
        const float d = h2f(x[b].d), min = h2f(x[b].dmin);
        for (int j = 0, is = 0; j < FR_QK_K; j += 64, is += 2, q += 32) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
        }
    }
}

/* ggml quantize_row_q4_K_ref (no imatrix). */
void fr_from_float_q4_k(const float *x, void *vy, int64_t n) {
    fr_block_q4_k *y = vy;
    uint8_t L[FR_QK_K];
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        quantize_k_superblock(x, 15, -1.0f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        uint8_t *q = y[b].qs;
        for (int j = 0; j < FR_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

/* The generic K-quant dot tail: int8 levels a[256] (already expanded) against the
 * Q8_K quants, 32-value sub-blocks with 6-bit scales; accumulates into 8 lanes. */
static void dot_lanes_32(const int8_t *a, const int8_t *q8, const uint8_t *scales,
                         int32_t aux32[8]) {
    memset(aux32, 0, 8 * sizeof(int32_t));
    for (int j = 0; j < FR_QK_K / 32; j++) {
        const int scale = scales[j];
        for (int k = 0; k < 4; k++, q8 += 8, a += 8)
            for (int l = 0; l < 8; l++) aux32[l] += scale * (int16_t)(q8[l] * a[l]);
    }
}

/* ggml_vec_dot_q4_K_q8_K generic: mins enter through the Q8_K bsums. */
/* The part of a Q4_K / Q5_K block dot shared by both (their quants already unpacked
 * into aux8 as 0..15 / 0..31): 6-bit scales and mins, the mins correction through
 * Q8_K's bsums, the scaled 8-lane sums added into sums[]. Returns the mins term the
 * caller subtracts from its total (same operation order as ggml's generic code). */
static float k4_block(uint16_t d16, uint16_t dmin16, const uint8_t *sc12, const fr_block_q8_k *yb,
                      const int8_t *aux8, int32_t *aux32, float sums[8]) {
    uint8_t scales[8], mins[8];
    for (int j = 0; j < 8; j++) get_scale_min_k4(j, sc12, &scales[j], &mins[j]);
    int sumi = 0;
    for (int j = 0; j < FR_QK_K / 16; j++) sumi += yb->bsums[j] * mins[j / 2];
    dot_lanes_32(aux8, yb->qs, scales, aux32);
    const float d = h2f(d16) * yb->d;
    for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    const float dmin = h2f(dmin16) * yb->d;
    return dmin * sumi;
}

void fr_vec_dot_q4_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sums[8] = {0};
    float sumf = 0;
    int8_t aux8[FR_QK_K];
    int32_t aux32[8];
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *q4 = x[b].qs;
        int8_t *a = aux8;
        for (int j = 0; j < FR_QK_K / 64; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) *a++ = (int8_t)(q4[l] & 0xF);
            for (int l = 0; l < 32; l++) *a++ = (int8_t)(q4[l] >> 4);
        }
        sumf -= k4_block(x[b].d, x[b].dmin, x[b].scales, &y[b], aux8, aux32, sums);
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------------ Q5_K
 * Q4_K plus a fifth bit: bit (2*c) / (2*c+1) of qh[l] is the high bit of value l /
 * l+32 of 64-value chunk c. */

void fr_to_float_q5_k(const void *vx, float *y, int64_t n) {
    const fr_block_q5_k *x = vx;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *ql = x[b].qs, *qh = x[b].qh;
        const float d = h2f(x[b].d), min = h2f(x[b].dmin);
        unsigned u1 = 1, u2 = 2;
        for (int j = 0, is = 0; j < FR_QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
            uint8_t sc, m;
            get_scale_min_k4(is, x[b].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            get_scale_min_k4(is + 1, x[b].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; l++) *y++ = d1 * ((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *y++ = d2 * ((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

/* ggml quantize_row_q5_K_ref (no imatrix). */
void fr_from_float_q5_k(const float *x, void *vy, int64_t n) {
    fr_block_q5_k *y = vy;
    uint8_t L[FR_QK_K];
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        quantize_k_superblock(x, 31, -0.5f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        uint8_t *qh = y[b].qh, *ql = y[b].qs;
        memset(qh, 0, FR_QK_K / 8);
        unsigned m1 = 1, m2 = 2;
        for (int c = 0; c < FR_QK_K; c += 64, m1 <<= 2, m2 <<= 2, ql += 32) {
            for (int j = 0; j < 32; j++) {
                int l1 = L[c + j], l2 = L[c + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= (uint8_t)m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= (uint8_t)m2; }
                ql[j] = (uint8_t)(l1 | (l2 << 4));
            }
        }
    }
}

/* ggml_vec_dot_q5_K_q8_K generic. */
void fr_vec_dot_q5_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sums[8] = {0};
    float sumf = 0;
    int8_t aux8[FR_QK_K];
    int32_t aux32[8];
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *q4 = x[b].qs, *hm = x[b].qh;
        int8_t *a = aux8;
        unsigned m = 1;
        for (int j = 0; j < FR_QK_K / 64; j++, q4 += 32) {
            for (int l = 0; l < 32; l++) *a++ = (int8_t)((q4[l] & 0xF) + (hm[l] & m ? 16 : 0));
            m <<= 1;
            for (int l = 0; l < 32; l++) *a++ = (int8_t)((q4[l] >> 4) + (hm[l] & m ? 16 : 0));
            m <<= 1;
        }
        sumf -= k4_block(x[b].d, x[b].dmin, x[b].scales, &y[b], aux8, aux32, sums);
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------------ Q6_K
 * value = d * scales[16-value sub-block] * (q - 32), q in 0..63. Per 128-value
 * half: ql byte l holds values l (low nibble) and l+64 (high), byte l+32 values
 * l+32 and l+96; qh byte l holds the top 2 bits of l, l+32, l+64, l+96. */

static inline void q6_expand(const fr_block_q6_k *x, int8_t out[FR_QK_K]) {
    const uint8_t *ql = x->ql, *qh = x->qh;
    for (int c = 0; c < FR_QK_K; c += 128, ql += 64, qh += 32, out += 128) {
        for (int l = 0; l < 32; l++) {
            out[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            out[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            out[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            out[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
    }
}

void fr_to_float_q6_k(const void *vx, float *y, int64_t n) {
    const fr_block_q6_k *x = vx;
    int8_t q[FR_QK_K];
    for (int64_t b = 0; b < n / FR_QK_K; b++, y += FR_QK_K) {
        const float d = h2f(x[b].d);
        q6_expand(&x[b], q);
        /* ggml computes d * sc * q left to right: (d*sc) then *q */
        for (int i = 0; i < FR_QK_K; i++) y[i] = d * x[b].scales[i / 16] * q[i];
    }
}

/* ggml quantize_row_q6_K_ref (no imatrix). */
void fr_from_float_q6_k(const float *x, void *vy, int64_t n) {
    fr_block_q6_k *y = vy;
    int8_t L[FR_QK_K];
    float scales[FR_QK_K / 16];
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < FR_QK_K / 16; ib++) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
            scales[ib] = scale;
            if (fabsf(scale) > max_abs_scale) { max_abs_scale = fabsf(scale); max_scale = scale; }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[b], 0, sizeof(y[b]));
            y[b].d = fr_f32_to_f16(0.f);
            continue;
        }
        const float iscale = -128.f / max_scale;
        y[b].d = fr_f32_to_f16(1 / iscale);
        for (int ib = 0; ib < FR_QK_K / 16; ib++)
            y[b].scales[ib] = (int8_t)imin(127, nearest_int(iscale * scales[ib]));
        for (int j = 0; j < FR_QK_K / 16; j++) {
            const float d = h2f(y[b].d) * y[b].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ii++) {
                const int l = nearest_int(x[16 * j + ii] / d);
                L[16 * j + ii] = (int8_t)(imax(-32, imin(31, l)) + 32);
            }
        }
        uint8_t *ql = y[b].ql, *qh = y[b].qh;
        for (int j = 0; j < FR_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF;
                const int q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[l] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                  ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }
}

/* ggml_vec_dot_q6_K_q8_K generic: 16-value sub-blocks with signed 8-bit scales. */
void fr_vec_dot_q6_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q6_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sums[8] = {0};
    float sumf = 0;
    int8_t aux8[FR_QK_K];
    int32_t aux32[8];
    for (int b = 0; b < n / FR_QK_K; b++) {
        q6_expand(&x[b], aux8);
        memset(aux32, 0, sizeof(aux32));
        const int8_t *a = aux8, *q8 = y[b].qs;
        for (int j = 0; j < FR_QK_K / 16; j++) {
            const int scale = x[b].scales[j];
            for (int k = 0; k < 2; k++, q8 += 8, a += 8)
                for (int l = 0; l < 8; l++) aux32[l] += scale * (int16_t)(q8[l] * a[l]);
        }
        const float d = h2f(x[b].d) * y[b].d;
        for (int l = 0; l < 8; l++) sums[l] += d * aux32[l];
    }
    for (int l = 0; l < 8; l++) sumf += sums[l];
    *s = sumf;
}

/* ------------------------------------------------------------------ Q8_K
 * value = d * q (float d); bsums[k] = sum of qs[16k .. 16k+15]. */

void fr_to_float_q8_k(const void *vx, float *y, int64_t n) {
    const fr_block_q8_k *x = vx;
    for (int64_t b = 0; b < n / FR_QK_K; b++, y += FR_QK_K)
        for (int j = 0; j < FR_QK_K; j++) y[j] = x[b].d * x[b].qs[j];
}

/* ggml quantize_row_q8_K_ref: the value with the largest magnitude maps to -127
 * (scale -127/max, so d may be negative), quants clamped to 127. */
void fr_from_float_q8_k(const float *x, void *vy, int64_t n) {
    fr_block_q8_k *y = vy;
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        float max = 0, amax = 0;
        for (int j = 0; j < FR_QK_K; j++) {
            const float ax = fabsf(x[j]);
            if (ax > amax) { amax = ax; max = x[j]; }
        }
        if (!amax) {
            /* ggml leaves bsums untouched here; zero them so the block is defined */
            memset(&y[b], 0, sizeof(y[b]));
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < FR_QK_K; j++) y[b].qs[j] = (int8_t)imax(-128, imin(127, nearest_int(iscale * x[j])));
        for (int j = 0; j < FR_QK_K / 16; j++) {
            int sum = 0;
            for (int ii = 0; ii < 16; ii++) sum += y[b].qs[j * 16 + ii];
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1 / iscale;
    }
}

/* Q8_K x Q8_K (ggml has none; defined for the table): per-block integer dot. */
void fr_vec_dot_q8_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_k *x = vx;
    const fr_block_q8_k *y = vy;
    float sumf = 0;
    for (int b = 0; b < n / FR_QK_K; b++) {
        int sumi = 0;
        for (int j = 0; j < FR_QK_K; j++) sumi += x[b].qs[j] * y[b].qs[j];
        sumf += x[b].d * y[b].d * (float)sumi;
    }
    *s = sumf;
}
