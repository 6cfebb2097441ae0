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
 * scale, and the block scale finally solved by least squares for the chosen points. */
#include "core/quant_lowbit.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define N_NEIGH 16 /* candidates kept per off-grid pattern */

/* g_map[p]: grid index of level pattern p (l0 | l1 << 3 | l2 << 6 | l3 << 9, level l =
 * magnitude (2 l + 1)), or -1 when p is off the grid; g_neigh[p]: its nearest grid
 * points by squared level distance (off-grid patterns only). */
static int16_t g_map[4096];
static uint16_t g_neigh[4096][N_NEIGH];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int grid_level(int idx, int j) { return (int)(((fr_iq3s_grid[idx] >> (8 * j)) & 0xFF) - 1) / 2; }

static void build_tables(void) {
    for (int p = 0; p < 4096; p++) g_map[p] = -1;
    for (int i = 0; i < 512; i++) {
        int p = 0;
        for (int j = 0; j < 4; j++) p |= grid_level(i, j) << (3 * j);
        g_map[p] = (int16_t)i;
    }
    for (int p = 0; p < 4096; p++) {
        if (g_map[p] >= 0) continue;
        int dist[N_NEIGH], n = 0;
        for (int i = 0; i < 512; i++) {
            int d = 0;
            for (int j = 0; j < 4; j++) {
                const int e = grid_level(i, j) - ((p >> (3 * j)) & 7);
                d += e * e;
            }
            fr_iq_neigh_offer(dist, g_neigh[p], &n, N_NEIGH, d, i);
        }
    }
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* Weighted error of magnitudes a[4] against grid point idx at scale s. */
static float point_err(int idx, const float *a, const float *w, float s) {
    float e = 0;
    for (int j = 0; j < 4; j++) {
        const float d = s * (float)((fr_iq3s_grid[idx] >> (8 * j)) & 0xFF) - a[j];
        e += w[j] * d * d;
    }
    return e;
}

/* Best grid point for magnitudes a[4] at scale s (> 0). */
static int best_point(const float *a, const float *w, float s) {
    const float is = 1 / s;
    int p = 0;
    for (int j = 0; j < 4; j++) p |= clampi((int)lrintf(0.5f * (is * a[j] - 1)), 0, 7) << (3 * j);
    if (g_map[p] >= 0) return g_map[p];
    int best = g_neigh[p][0];
    float best_e = point_err(best, a, w, s);
    for (int k = 1; k < N_NEIGH; k++) {
        const float e = point_err(g_neigh[p][k], a, w, s);
        if (e < best_e) { best_e = e; best = g_neigh[p][k]; }
    }
    return best;
}

/* Points of the 8 groups of a[32] at scale s; returns the least-squares scale for
 * them through *sumqx / *sumq2 (sum w q a, sum w q^2). */
static void fit_points(const float *a, const float *w, float s, uint16_t *idx, float *sumqx, float *sumq2) {
    float qx = 0, q2 = 0;
    for (int k = 0; k < 8; k++) {
        idx[k] = (uint16_t)best_point(a + 4 * k, w + 4 * k, s);
        for (int j = 0; j < 4; j++) {
            const float q = (float)((fr_iq3s_grid[idx[k]] >> (8 * j)) & 0xFF);
            qx += w[4 * k + j] * q * a[4 * k + j];
            q2 += w[4 * k + j] * q * q;
        }
    }
    *sumqx = qx;
    *sumq2 = q2;
}

/* Scale of one 32-value group: the trial with the best weighted fit (largest
 * sumqx^2 / sumq2), then one re-fit at that least-squares scale. */
static float group_scale(const float *a, const float *w) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = a[j] > amax ? a[j] : amax;
    if (amax < 1e-15f) return 0.f;
    uint16_t idx[8];
    float best = -1, scale = amax / 15;
    for (int t = -24; t <= 24; t++) {
        float qx, q2;
        fit_points(a, w, amax / (15 + 0.25f * (float)t), idx, &qx, &q2);
        if (q2 > 0 && qx > 0 && qx * qx > best * q2) { best = qx * qx / q2; scale = qx / q2; }
    }
    float qx, q2;
    fit_points(a, w, scale, idx, &qx, &q2);
    if (q2 > 0 && qx > 0 && qx * qx > best * q2) scale = qx / q2;
    return scale;
}

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
        sc[ib] = group_scale(a + 32 * ib, w + 32 * ib);
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
        fit_points(a + 32 * ib, w + 32 * ib, d * m, idx + 8 * ib, &gx, &g2);
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
