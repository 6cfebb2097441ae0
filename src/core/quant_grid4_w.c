/* quant_grid4_w.c - the grid search the IQ3 writers share (see quant_lowbit.h,
 * fr_grid4): a group of 4 magnitudes takes the grid point of its rounded level pattern
 * or, off the grid, the best of that pattern's nearest points at the current scale;
 * a 32-value group's scale is the best of a range of trial scales. */
#include "core/quant_lowbit.h"

#include <math.h>

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline float gmag(const fr_grid4 *g, int idx, int j) { return (float)((g->grid[idx] >> (8 * j)) & 0xFF); }
static inline int level_of(const fr_grid4 *g, float m) { return clampi((int)lrintf((m - g->lv_off) * g->lv_mul), 0, 7); }

void fr_grid4_build(fr_grid4 *g) {
    for (int p = 0; p < 4096; p++) g->map[p] = -1;
    for (int i = 0; i < g->n; i++) {
        int p = 0;
        for (int j = 0; j < 4; j++) p |= level_of(g, gmag(g, i, j)) << (3 * j);
        g->map[p] = (int16_t)i;
    }
    for (int p = 0; p < 4096; p++) {
        if (g->map[p] >= 0) continue;
        int dist[FR_GRID4_NEIGH], n = 0;
        for (int i = 0; i < g->n; i++) {
            int d = 0;
            for (int j = 0; j < 4; j++) {
                const int e = level_of(g, gmag(g, i, j)) - ((p >> (3 * j)) & 7);
                d += e * e;
            }
            fr_iq_neigh_offer(dist, g->neigh[p], &n, FR_GRID4_NEIGH, d, i);
        }
    }
}

/* Weighted error of magnitudes a[4] against grid point idx at scale s. */
static float point_err(const fr_grid4 *g, int idx, const float *a, const float *w, float s) {
    float e = 0;
    for (int j = 0; j < 4; j++) {
        const float d = s * gmag(g, idx, j) - a[j];
        e += w[j] * d * d;
    }
    return e;
}

/* Best grid point for magnitudes a[4] at scale s (> 0). */
static int best_point(const fr_grid4 *g, const float *a, const float *w, float s) {
    const float is = 1 / s;
    int p = 0;
    for (int j = 0; j < 4; j++) p |= level_of(g, is * a[j]) << (3 * j);
    if (g->map[p] >= 0) return g->map[p];
    int best = g->neigh[p][0];
    float best_e = point_err(g, best, a, w, s);
    for (int k = 1; k < FR_GRID4_NEIGH; k++) {
        const float e = point_err(g, g->neigh[p][k], a, w, s);
        if (e < best_e) { best_e = e; best = g->neigh[p][k]; }
    }
    return best;
}

void fr_grid4_fit(const fr_grid4 *g, const float *a, const float *w, float s, uint16_t *idx, float *sumqx,
                  float *sumq2) {
    float qx = 0, q2 = 0;
    for (int k = 0; k < 8; k++) {
        idx[k] = (uint16_t)best_point(g, a + 4 * k, w + 4 * k, s);
        for (int j = 0; j < 4; j++) {
            const float q = gmag(g, idx[k], j);
            qx += w[4 * k + j] * q * a[4 * k + j];
            q2 += w[4 * k + j] * q * q;
        }
    }
    *sumqx = qx;
    *sumq2 = q2;
}

float fr_grid4_group_scale(const fr_grid4 *g, const float *a, const float *w) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = a[j] > amax ? a[j] : amax;
    if (amax < 1e-15f) return 0.f;
    uint16_t idx[8];
    float best = -1, scale = amax / g->trial_base;
    for (int t = -g->trial_n; t <= g->trial_n; t++) {
        /* the trial divisors as each writer was tuned with: relative or linear steps */
        const float den = g->trial_rel != 0 ? g->trial_base * (1 + g->trial_rel * (float)t)
                                            : g->trial_base + g->trial_step * (float)t;
        float qx, q2;
        fr_grid4_fit(g, a, w, amax / den, idx, &qx, &q2);
        if (q2 > 0 && qx > 0 && qx * qx > best * q2) { best = qx * qx / q2; scale = qx / q2; }
    }
    float qx, q2;
    fr_grid4_fit(g, a, w, scale, idx, &qx, &q2);
    if (q2 > 0 && qx > 0 && qx * qx > best * q2) scale = qx / q2;
    return scale;
}
