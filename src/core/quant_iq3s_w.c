/* quant_iq3s_w.c - the IQ3_S writer: per group of 4 values a point of the format's
 * 512-point grid (core/iq_grid13.c, magnitudes 1..15 odd) plus 4 explicit sign bits,
 * a 4-bit scale (1 + 2 s) per 32 values and an F16 scale per 256.
 *
 * Only 512 of the 8^4 magnitude patterns are on the grid, so a group whose rounded
 * levels are off it takes the best of its nearest grid points. Those candidates are
 * precomputed once (pthread_once) per pattern; the choice among them uses the weighted
 * error at the current scale. Each 32-value scale is searched over a range of trial
 * inverse scales (least-squares scale per trial, best weighted fit kept), the 4-bit
 * scales are rounded against the block's largest, the groups re-fitted at the rounded
 * scale, and the block scale chosen to keep the weights' gain (see iq3s_block). */
#include "core/quant_lowbit.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* magnitudes 2 l + 1: level round((m - 1) / 2); trial scales amax / (15 + t / 4),
 * |t| <= 24 (the search itself: fr_grid4, core/quant_grid4_w.c) */
static fr_grid4 g_grid = {.grid = fr_iq3s_grid, .n = 512, .lv_off = 1, .lv_mul = 0.5f,
                          .trial_base = 15, .trial_step = 0.25f, .trial_n = 24};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build_tables(void) { fr_grid4_build(&g_grid); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* One 256-value block; imp (or NULL) the importance of each value, weighted by
 * sqrt(sigma2 + x^2) with sigma2 twice the block's mean square (as llama.cpp).
 * Without imp the weight is sigma2 + x^2, not ggml's x^2: on fortune-3m the x^2
 * weighting leaves the small values so poorly fitted that the plain squared error
 * is ~1.6x larger (relative MSE summed over tensors 0.78 vs 0.44), and KL follows. */
static void iq3s_block(const float *x, fr_block_iq3_s *y, const float *imp) {
    float a[FR_QK_K], w[FR_QK_K], sc[8], max_sc = 0;
    fr_iq_block_weights(x, imp, w);
    for (int i = 0; i < FR_QK_K; i++) a[i] = fabsf(x[i]);
    for (int ib = 0; ib < 8; ib++) {
        sc[ib] = fr_grid4_group_scale(&g_grid, a + 32 * ib, w + 32 * ib);
        if (sc[ib] > max_sc) max_sc = sc[ib];
    }
    memset(y, 0, sizeof *y);
    if (max_sc <= 0) { y->d = fr_f32_to_f16(0.f); return; }
    const float d = max_sc / 31;
    uint16_t idx[FR_QK_K / 4];
    int ls[8];
    float qx = 0, q2 = 0;
    for (int ib = 0; ib < 8; ib++) {
        ls[ib] = clampi((int)lrintf(0.5f * (sc[ib] / d - 1)), 0, 15);
        const float m = (float)(2 * ls[ib] + 1);
        float gx, g2;
        fr_grid4_fit(&g_grid, a + 32 * ib, w + 32 * ib, d * m, idx + 8 * ib, &gx, &g2);
        qx += m * gx;
        q2 += m * m * g2;
    }
    /* the block scale that keeps the weights' gain (see core/quant_iq2_w.c), not the
     * least-squares one, which shrinks them by the relative error */
    float xx = 0;
    for (int i = 0; i < FR_QK_K; i++) xx += w[i] * a[i] * a[i];
    y->d = fr_f32_to_f16(q2 > 0 && qx > 0 ? xx / qx : d);
    for (int ib = 0; ib < 8; ib++) {
        y->scales[ib / 2] |= (uint8_t)(ls[ib] << (4 * (ib & 1)));
        for (int k = 0; k < 8; k++) {
            const int g = idx[8 * ib + k];
            y->qs[8 * ib + k] = (uint8_t)(g & 0xFF);
            y->qh[ib] |= (uint8_t)((g >> 8) << k);
            for (int j = 0; j < 4; j++)
                if (x[32 * ib + 4 * k + j] < 0) y->signs[4 * ib + k / 2] |= (uint8_t)(1u << (4 * (k & 1) + j));
        }
    }
}

void fr_quantize_iq3_s_rows(const float *x, void *vy, int64_t n, const float *imp) {
    pthread_once(&g_once, build_tables);
    fr_block_iq3_s *y = vy;
    for (int64_t b = 0; b < n / FR_QK_K; b++) iq3s_block(x + b * FR_QK_K, y + b, imp ? imp + b * FR_QK_K : NULL);
}

void fr_from_float_iq3_s(const float *x, void *y, int64_t n) { fr_quantize_iq3_s_rows(x, y, n, NULL); }
