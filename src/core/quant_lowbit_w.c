/* quant_lowbit_w.c - writers for Q2_K, Q3_K, IQ4_NL and IQ4_XS: what llama-quantize
 * writes for them without an importance matrix (ggml's quantize_row_q2_K_ref,
 * quantize_row_q3_K_ref, and quantize_iq4_nl / quantize_iq4_xs with no weights),
 * so files we write match the reference engine's and KL figures compare like for
 * like. Same rounding rules as core/quant_k.c (no FP contraction, round half even). */
#include "core/quant_lowbit.h"

#include <math.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define GROUP_MAX_EPS 1e-15f

static inline int nearest_int(float v) {
    if (!(v == v)) return 0;
    if (v > 4194303.0f) return 4194303;
    if (v < -4194303.0f) return -4194303;
    return (int)lrintf(v);
}
static inline int imin(int a, int b) { return a < b ? a : b; }
static inline int imax(int a, int b) { return a > b ? a : b; }

/* Fit x ~ scale * L - min (L in 0..nmax) minimising the weighted absolute (mad) or
 * squared error (ggml make_qkx2_quants / make_qkx3_quants; Q2_K uses mad without
 * importance weights, squared error with them): start from the min/max range, then
 * try nstep+1 inverse scales, each solved by least squares. */
static inline float err_of(float diff, int mad) { return mad ? fabsf(diff) : diff * diff; }

static float fit_min_scale(int n, int nmax, const float *x, const float *w, uint8_t *L, float *the_min,
                           float rmin, float rdelta, int nstep, int mad) {
    uint8_t Laux[32];
    float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min), scale = 1 / iscale, best_error = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
        best_error += w[i] * err_of(scale * L[i] + min - x[i], mad);
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(0, imin(nmax, nearest_int(iscale * (x[i] - min))));
            Laux[i] = (uint8_t)l;
            sum_l += w[i] * l;
            sum_l2 += w[i] * l * l;
            sum_xl += w[i] * l * x[i];
        }
        const float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D, this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
        if (this_min > 0) {
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float cur_error = 0;
        for (int i = 0; i < n; i++) cur_error += w[i] * err_of(this_scale * Laux[i] + this_min - x[i], mad);
        if (cur_error < best_error) {
            memcpy(L, Laux, (size_t)n);
            best_error = cur_error;
            scale = this_scale;
            min = this_min;
        }
    }
    *the_min = -min;
    return scale;
}

/* Pack 2-bit levels: byte l of each 32-byte run holds values l, l+32, l+64, l+96. */
static void pack_2bit(const uint8_t *L, uint8_t *qs) {
    for (int j = 0; j < FR_QK_K; j += 128)
        for (int l = 0; l < 32; l++)
            qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
}

/* Positive fit x ~ scale * L, L in 0..nmax, weighted (ggml make_qp_quants): the
 * 16 sub-block scales and mins of a weighted Q2_K block against 4-bit levels. */
static float fit_pos(int n, int nmax, const float *x, uint8_t *L, const float *w) {
    float max = 0;
    for (int i = 0; i < n; i++) max = x[i] > max ? x[i] : max;
    if (max < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float iscale = nmax / max, best_mse = 0;
    for (int i = 0; i < n; i++) {
        const float diff = x[i] - (1 / iscale) * nearest_int(iscale * x[i]);
        best_mse += w[i] * diff * diff;
    }
    for (int is = -4; is <= 4; is++) {
        if (is == 0) continue;
        const float iscale_is = (0.1f * is + nmax) / max, scale_is = 1 / iscale_is;
        float mse = 0;
        for (int i = 0; i < n; i++) {
            const float diff = x[i] - scale_is * imin(nmax, nearest_int(iscale_is * x[i]));
            mse += w[i] * diff * diff;
        }
        if (mse < best_mse) {
            best_mse = mse;
            iscale = iscale_is;
        }
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        L[i] = (uint8_t)imin(nmax, nearest_int(iscale * x[i]));
        sumlx += w[i] * x[i] * L[i];
        suml2 += w[i] * L[i] * L[i];
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            float slx = sumlx - w[i] * x[i] * L[i], sl2 = suml2 - w[i] * L[i] * L[i];
            if (slx <= 0 || sl2 <= 0) continue;
            const int new_l = imin(nmax, nearest_int(x[i] * sl2 / slx));
            if (new_l == L[i]) continue;
            slx += w[i] * x[i] * new_l;
            sl2 += w[i] * new_l * new_l;
            if (slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (uint8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Levels of a Q2_K block once scales and mins are set (shared tail of both paths). */
static void q2_levels(const float *x, fr_block_q2_k *y, uint8_t *L) {
    for (int j = 0; j < 16; j++) {
        const float d = fr_f16_to_f32(y->d) * (y->scales[j] & 0xF);
        if (!d) continue; /* keep the first fit's levels, as ggml */
        const float dm = fr_f16_to_f32(y->dmin) * (y->scales[j] >> 4);
        for (int i = 0; i < 16; i++) L[16 * j + i] = (uint8_t)imax(0, imin(3, nearest_int((x[16 * j + i] + dm) / d)));
    }
    pack_2bit(L, y->qs);
}

/* One Q2_K block; imp: per-value importance, or NULL (then the reference rule). */
static void q2_block(const float *x, fr_block_q2_k *y, const float *imp) {
    uint8_t L[FR_QK_K], Ls[16], Lm[16];
    float w[16], mins[16], scales[16], sw[16];
    float sigma2 = 0;
    for (int j = 0; j < FR_QK_K; j++) sigma2 += x[j] * x[j];
    sigma2 /= FR_QK_K;
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 16; j++) {
        sw[j] = 0;
        for (int l = 0; l < 16; l++) {
            const float v = x[16 * j + l];
            w[l] = imp ? imp[16 * j + l] * sqrtf(sigma2 + v * v) : fabsf(v);
            sw[j] += w[l];
        }
        scales[j] = imp ? fit_min_scale(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.9f, 0.05f, 36, 0)
                        : fit_min_scale(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, 1);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    memset(y->scales, 0, 16);
    if (imp) {
        /* 4-bit scales and mins fitted with the sub-blocks' total weights */
        y->d = fr_f32_to_f16(fit_pos(16, 15, scales, Ls, sw));
        y->dmin = fr_f32_to_f16(fit_pos(16, 15, mins, Lm, sw));
        for (int j = 0; j < 16; j++) y->scales[j] = (uint8_t)(Ls[j] | (Lm[j] << 4));
        q2_levels(x, y, L);
        return;
    }
    y->d = y->dmin = fr_f32_to_f16(0.f);
    if (max_scale > 0) {
        const float iscale = 15.f / max_scale;
        for (int j = 0; j < 16; j++) y->scales[j] = (uint8_t)nearest_int(iscale * scales[j]);
        y->d = fr_f32_to_f16(max_scale / 15.f);
    }
    if (max_min > 0) {
        const float iscale = 15.f / max_min;
        for (int j = 0; j < 16; j++) y->scales[j] |= (uint8_t)(nearest_int(iscale * mins[j]) << 4);
        y->dmin = fr_f32_to_f16(max_min / 15.f);
    }
    q2_levels(x, y, L);
}

void fr_from_float_q2_k(const float *x, void *vy, int64_t n) {
    fr_block_q2_k *y = vy;
    for (int64_t b = 0; b < n / FR_QK_K; b++) q2_block(x + b * FR_QK_K, &y[b], NULL);
}

/* Symmetric fit x ~ scale * L, L in -nmax..nmax-1, weighted by x^2, refined by
 * moving single levels while that improves the fit (ggml make_q3_quants, rmse).
 * Levels come back offset by nmax. */
static float fit_q3(int n, int nmax, const float *x, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    const float iscale = -nmax / max;
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; i++) {
        const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
        L[i] = (int8_t)l;
        const float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int itry = 0; itry < 5; itry++) {
        int n_changed = 0;
        for (int i = 0; i < n; i++) {
            const float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx <= 0) continue;
            float sl2 = suml2 - w * L[i] * L[i];
            const int new_l = imax(-nmax, imin(nmax - 1, nearest_int(x[i] * sl2 / slx)));
            if (new_l == L[i]) continue;
            slx += w * x[i] * new_l;
            sl2 += w * new_l * new_l;
            if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                L[i] = (int8_t)new_l;
                sumlx = slx;
                suml2 = sl2;
                n_changed++;
            }
        }
        if (!n_changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Weighted symmetric fit x ~ scale * L, L in -nmax..nmax-1 (ggml make_qx_quants
 * with quant weights): 19 trial inverse scales around -nmax/max, each scored by
 * the least-squares scale's weighted fit. Levels come back offset by nmax. */
static float fit_sym_w(int n, int nmax, const float *x, const float *w, int8_t *L) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); max = x[i]; }
    if (amax < GROUP_MAX_EPS) {
        memset(L, 0, (size_t)n);
        return 0.f;
    }
    float scale = 0, best = 0;
    memset(L, nmax, (size_t)n); /* level 0, should no trial have a positive fit */
    for (int is = -9; is <= 9; is++) {
        const float iscale = -(nmax + 0.1f * is) / max;
        float sumlx = 0, suml2 = 0;
        for (int i = 0; i < n; i++) {
            const int l = imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i])));
            sumlx += w[i] * x[i] * l;
            suml2 += w[i] * l * l;
        }
        if (suml2 > 0 && (is == -9 || sumlx * sumlx > best * suml2)) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + imax(-nmax, imin(nmax - 1, nearest_int(iscale * x[i]))));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Set the 6-bit scale of sub-block j (0..63, offset 32) in the 12 packed bytes. */
static void q3_set_scale(uint8_t *packed, int j, int l) {
    packed[j & 7] |= (uint8_t)((l & 0xF) << (4 * (j >> 3)));
    packed[8 + (j & 3)] |= (uint8_t)((l >> 4) << (2 * (j >> 2)));
}

/* Levels of a Q3_K block once its scales are set, then the bit packing. */
static void q3_levels(const float *x, fr_block_q3_k *y, int8_t *L) {
    int8_t sc[16];
    fr_q3k_scales(y->scales, sc);
    for (int j = 0; j < 16; j++) {
        const float d = fr_f16_to_f32(y->d) * sc[j];
        if (!d) continue;
        for (int i = 0; i < 16; i++) L[16 * j + i] = (int8_t)(imax(-4, imin(3, nearest_int(x[16 * j + i] / d))) + 4);
    }
    /* third bit of value j: hmask[j % 32] bit j / 32; the low 2 bits as Q2_K */
    uint8_t U[FR_QK_K];
    memset(y->hmask, 0, sizeof y->hmask);
    for (int j = 0; j < FR_QK_K; j++) {
        if (L[j] > 3) y->hmask[j % 32] |= (uint8_t)(1u << (j / 32));
        U[j] = (uint8_t)(L[j] & 3);
    }
    pack_2bit(U, y->qs);
}

/* One Q3_K block; imp: per-value importance, or NULL (the reference rule). With
 * importance each value weighs imp * sqrt(sigma2 + x^2) (as ggml's imatrix path), the
 * sub-block scales are fitted with those weights and then themselves quantized with
 * a weighted fit instead of by the largest one. */
static void q3_block(const float *x, fr_block_q3_k *y, const float *imp) {
    int8_t L[FR_QK_K], Ls[16];
    float scales[16], w[16], sw[16];
    float max_scale = 0, amax = 0, sigma2 = 0;
    for (int j = 0; j < FR_QK_K; j++) sigma2 += x[j] * x[j];
    sigma2 = 2 * sigma2 / FR_QK_K;
    for (int j = 0; j < 16; j++) {
        if (imp) {
            sw[j] = 0;
            for (int l = 0; l < 16; l++) {
                w[l] = imp[16 * j + l] * sqrtf(sigma2 + x[16 * j + l] * x[16 * j + l]);
                sw[j] += w[l];
            }
            scales[j] = fit_sym_w(16, 4, x + 16 * j, w, L + 16 * j);
        } else {
            scales[j] = fit_q3(16, 4, x + 16 * j, L + 16 * j);
        }
        if (fabsf(scales[j]) > amax) { amax = fabsf(scales[j]); max_scale = scales[j]; }
    }
    memset(y->scales, 0, 12);
    y->d = fr_f32_to_f16(0.f);
    if (imp) {
        const float d = fit_sym_w(16, 32, scales, sw, Ls);
        for (int j = 0; j < 16; j++) q3_set_scale(y->scales, j, Ls[j]);
        y->d = fr_f32_to_f16(d);
    } else if (max_scale) {
        const float iscale = -32.f / max_scale;
        /* ggml keeps the rounded value in an int8_t before clamping */
        for (int j = 0; j < 16; j++)
            q3_set_scale(y->scales, j, imax(-32, imin(31, (int8_t)nearest_int(iscale * scales[j]))) + 32);
        y->d = fr_f32_to_f16(1 / iscale);
    }
    q3_levels(x, y, L);
}

void fr_from_float_q3_k(const float *x, void *vy, int64_t n) {
    fr_block_q3_k *y = vy;
    for (int64_t b = 0; b < n / FR_QK_K; b++) q3_block(x + b * FR_QK_K, &y[b], NULL);
}

/* ------------------------------------------------------------------ IQ4 */

/* Index of the level nearest to v (ties to the lower one, as ggml's best_index_int8). */
static int nearest_level(float v) {
    const int8_t *val = fr_iq4nl_values;
    if (v <= val[0]) return 0;
    if (v >= val[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (v < val[mid]) hi = mid;
        else lo = mid;
    }
    return v - val[hi - 1] < val[hi] - v ? hi - 1 : hi;
}

/* Best scale for 32 values onto the levels, weighted by x^2 (or, with importance,
 * imp * sqrt(sigma2 + x^2)): least squares after assigning levels for 2 * 7 + 1
 * trial inverse scales (ggml's ntry = 7). */
static float iq4_fit32(const float *xb, uint8_t *Lb, const float *imp, float sigma2) {
    float amax = 0, max = 0, w[32];
    for (int j = 0; j < 32; j++) {
        w[j] = imp ? imp[j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
        if (fabsf(xb[j]) > amax) { amax = fabsf(xb[j]); max = xb[j]; }
    }
    if (amax < GROUP_MAX_EPS) return 0.f;
    const int8_t *val = fr_iq4nl_values;
    float id = 1 / (-max / val[0]), sumqx = 0, sumq2 = 0;
    for (int j = 0; j < 32; j++) {
        Lb[j] = (uint8_t)nearest_level(id * xb[j]);
        const float q = val[Lb[j]];
        sumqx += w[j] * q * xb[j];
        sumq2 += w[j] * q * q;
    }
    float d = sumq2 > 0 ? sumqx / sumq2 : 0.f, best = d * sumqx;
    for (int itry = -7; itry <= 7; itry++) {
        id = (itry + val[0]) / max;
        sumqx = sumq2 = 0;
        for (int j = 0; j < 32; j++) {
            const float q = val[nearest_level(id * xb[j])];
            sumqx += w[j] * q * xb[j];
            sumq2 += w[j] * q * q;
        }
        if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
            d = sumqx / sumq2;
            best = d * sumqx;
        }
    }
    return d;
}

static void pack_nibbles32(const uint8_t *L, uint8_t *q4) {
    for (int j = 0; j < 16; j++) q4[j] = (uint8_t)(L[j] | (L[16 + j] << 4));
}

static float sigma2_of(const float *x, int n) {
    float s = 0;
    for (int j = 0; j < n; j++) s += x[j] * x[j];
    return s * 2.f / n;
}

static void iq4_nl_rows(const float *x, void *vy, int64_t n, const float *imp) {
    fr_block_iq4_nl *y = vy;
    uint8_t L[32];
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        memset(L, 0, sizeof L);
        const float d = iq4_fit32(x, L, imp ? imp + b * FR_QK : NULL, sigma2_of(x, FR_QK));
        y[b].d = fr_f32_to_f16(d);
        if (d != 0) {
            /* ggml re-assigns the levels with the (unrounded) fitted scale */
            const float id = 1 / d;
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)nearest_level(id * x[j]);
        }
        pack_nibbles32(L, y[b].qs);
    }
}

static void iq4_xs_rows(const float *x, void *vy, int64_t n, const float *imp) {
    fr_block_iq4_xs *y = vy;
    uint8_t L[FR_QK_K];
    float scales[8];
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        float max_scale = 0, amax_scale = 0;
        memset(L, 0, sizeof L);
        for (int ib = 0; ib < 8; ib++) {
            scales[ib] = iq4_fit32(x + 32 * ib, L + 32 * ib, imp ? imp + b * FR_QK_K + 32 * ib : NULL,
                                   sigma2_of(x, FR_QK_K));
            if (fabsf(scales[ib]) > amax_scale) { amax_scale = fabsf(scales[ib]); max_scale = scales[ib]; }
        }
        const float d = -max_scale / 32;
        y[b].d = fr_f32_to_f16(d);
        y[b].scales_h = 0;
        const float id = d ? 1 / d : 0.f;
        for (int ib = 0; ib < 8; ib++) {
            const int l = imax(-32, imin(31, nearest_int(id * scales[ib])));
            const float dl = d * l, idl = dl ? 1 / dl : 0.f;
            for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)nearest_level(idl * x[32 * ib + j]);
            const int u = l + 32;
            if (ib % 2 == 0) y[b].scales_l[ib / 2] = (uint8_t)(u & 0xF);
            else y[b].scales_l[ib / 2] |= (uint8_t)((u & 0xF) << 4);
            y[b].scales_h |= (uint16_t)((u >> 4) << (2 * ib));
        }
        for (int i = 0; i < 8; i++) pack_nibbles32(L + 32 * i, y[b].qs + 16 * i);
    }
}

void fr_from_float_iq4_nl(const float *x, void *y, int64_t n) { iq4_nl_rows(x, y, n, NULL); }
void fr_from_float_iq4_xs(const float *x, void *y, int64_t n) { iq4_xs_rows(x, y, n, NULL); }

bool fr_quantize_weighted_ok(fr_type t) {
    return t == FR_TYPE_Q2_K || t == FR_TYPE_Q3_K || t == FR_TYPE_IQ4_NL || t == FR_TYPE_IQ4_XS ||
           t == FR_TYPE_IQ3_S || t == FR_TYPE_IQ2_XXS || t == FR_TYPE_IQ2_XS || t == FR_TYPE_IQ2_S || t == FR_TYPE_IQ3_XXS ||
           t == FR_TYPE_IQ1_S || t == FR_TYPE_IQ1_M;
}

int fr_quantize_weighted(fr_type t, const float *x, void *vy, int64_t n, const float *imp) {
    switch (t) {
    case FR_TYPE_Q2_K:
        for (int64_t b = 0; b < n / FR_QK_K; b++)
            q2_block(x + b * FR_QK_K, (fr_block_q2_k *)vy + b, imp ? imp + b * FR_QK_K : NULL);
        return 0;
    case FR_TYPE_Q3_K:
        for (int64_t b = 0; b < n / FR_QK_K; b++)
            q3_block(x + b * FR_QK_K, (fr_block_q3_k *)vy + b, imp ? imp + b * FR_QK_K : NULL);
        return 0;
    case FR_TYPE_IQ4_NL: iq4_nl_rows(x, vy, n, imp); return 0;
    case FR_TYPE_IQ4_XS: iq4_xs_rows(x, vy, n, imp); return 0;
    case FR_TYPE_IQ3_S: fr_quantize_iq3_s_rows(x, vy, n, imp); return 0;
    case FR_TYPE_IQ2_XXS:
    case FR_TYPE_IQ2_XS:
    case FR_TYPE_IQ2_S: return fr_quantize_iq2_rows(t, x, vy, n, imp);
    case FR_TYPE_IQ3_XXS: return fr_quantize_iq3_xxs_rows(x, vy, n, imp);
    case FR_TYPE_IQ1_S:
    case FR_TYPE_IQ1_M: return fr_quantize_iq1_rows(t, x, vy, n, imp);
    default: return -1;
    }
}

/* ------------------------------------------------------------ lattice writers' shared steps */

void fr_iq_block_weights(const float *x, const float *imp, float *w) {
    float sigma2 = 0;
    for (int i = 0; i < FR_QK_K; i++) sigma2 += x[i] * x[i];
    sigma2 *= 2.f / FR_QK_K;
    for (int i = 0; i < FR_QK_K; i++) {
        w[i] = imp ? imp[i] * sqrtf(sigma2 + x[i] * x[i]) : sigma2 + x[i] * x[i];
        if (!(w[i] > 0)) w[i] = 1e-12f;
    }
}

void fr_iq_block_signs(const float *x, const float *w, bool parity, float *a, uint8_t *signs) {
    for (int g = 0; g < FR_QK_K / 8; g++) {
        int neg = 0, cheap = 0;
        unsigned s = 0;
        for (int j = 0; j < 8; j++) {
            const int i = 8 * g + j;
            a[i] = fabsf(x[i]);
            neg += x[i] < 0;
            s |= (unsigned)(x[i] < 0) << j;
            if (w[i] * a[i] * a[i] < w[8 * g + cheap] * a[8 * g + cheap] * a[8 * g + cheap]) cheap = j;
        }
        if (parity && (neg & 1)) {
            s ^= 1u << cheap; /* stored sign now opposite to x's: fit -|x| there */
            a[8 * g + cheap] = -a[8 * g + cheap];
        }
        signs[g] = (uint8_t)s; /* with parity, bit 7 is now that of the other seven */
    }
}
