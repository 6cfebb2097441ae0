/* quant_iq1_w.c - the IQ1_S and IQ1_M writers: per group of 8 values a point of the
 * format's 2048-point grid of {-1, 0, 1}^8 (core/iq_grid13.c) shifted by +-1/8, a
 * 3-bit scale (2 l + 1) per 32 (S) or 16 (M) values, the shift's sign per 32 (S) or
 * per 8 (M) values, an F16 scale per 256. Importance-weighted only, as llama.cpp.
 *
 * Search (frugal's own): at a trial scale s and shift sign, each value's target level
 * is round(x / s -+ 1/8) in {-1, 0, 1}; the pattern's grid point if it is on the grid,
 * else the best of its 16 nearest grid points under the weighted error. Per scale
 * unit (32 / 16 values) the trial with the best weighted least-squares fit wins (both
 * shift signs tried, per 32 values for S, per group of 8 for M); the 3-bit scales are
 * rounded against the block's largest, the groups re-fitted there, and the block
 * scale keeps the weights' gain (core/quant_iq2_w.c says why). */
#include "core/quant_lowbit.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define N_NEIGH 16
#define N_PAT 6561

static int16_t g_map[N_PAT];
static uint16_t g_neigh[N_PAT][N_NEIGH];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static inline int gval(int idx, int j) { return (int)(int8_t)((fr_iq1s_grid[idx] >> (8 * j)) & 0xFF); }

static void build_tables(void) {
    static int8_t lv[2048][8];
    for (int p = 0; p < N_PAT; p++) g_map[p] = -1;
    for (int i = 0; i < 2048; i++) {
        int p = 0;
        for (int j = 7; j >= 0; j--) p = 3 * p + (lv[i][j] = (int8_t)(gval(i, j) + 1));
        g_map[p] = (int16_t)i;
    }
    for (int p = 0; p < N_PAT; p++) {
        if (g_map[p] >= 0) continue;
        int pl[8], q = p, dist[N_NEIGH], n = 0;
        for (int j = 0; j < 8; j++, q /= 3) pl[j] = q % 3;
        for (int i = 0; i < 2048; i++) {
            int d = 0;
            for (int j = 0; j < 8; j++) d += (lv[i][j] - pl[j]) * (lv[i][j] - pl[j]);
            fr_iq_neigh_offer(dist, g_neigh[p], &n, N_NEIGH, d, i);
        }
    }
}

/* Weighted error of group point idx with shift dl (+-1/8) at scale s. */
static float group_err(int idx, const float *x, const float *w, float s, float dl) {
    float e = 0;
    for (int j = 0; j < 8; j++) {
        const float d = s * ((float)gval(idx, j) + dl) - x[j];
        e += w[j] * d * d;
    }
    return e;
}

/* Best grid point for 8 values at scale s (> 0) and shift dl; *err its error. */
static int best_point(const float *x, const float *w, float s, float dl, float *err) {
    const float is = 1 / s;
    int p = 0;
    for (int j = 7; j >= 0; j--) {
        const float t = is * x[j] - dl;
        p = 3 * p + (t < -0.5f ? 0 : t > 0.5f ? 2 : 1);
    }
    int best = g_map[p];
    if (best >= 0) {
        *err = group_err(best, x, w, s, dl);
        return best;
    }
    float be = 0;
    for (int k = 0; k < N_NEIGH; k++) {
        const float e = group_err(g_neigh[p][k], x, w, s, dl);
        if (k == 0 || e < be) { be = e; best = g_neigh[p][k]; }
    }
    *err = be;
    return best;
}

/* Fit ng groups of 8 at scale s. per_group: each group picks its shift sign, else
 * all take the sign that fits them best together. Sums for the least-squares scale
 * (q = grid + shift): sum w q x, sum w q^2. */
static void fit_unit(const float *x, const float *w, int ng, float s, bool per_group, uint16_t *idx, uint8_t *neg,
                     float *sumqx, float *sumq2) {
    uint16_t ti[2][4];
    float te[2][4], tot[2] = {0, 0};
    for (int sg = 0; sg < 2; sg++)
        for (int k = 0; k < ng; k++) {
            ti[sg][k] = (uint16_t)best_point(x + 8 * k, w + 8 * k, s, sg ? -FR_IQ1_DELTA : FR_IQ1_DELTA, &te[sg][k]);
            tot[sg] += te[sg][k];
        }
    float qx = 0, q2 = 0;
    for (int k = 0; k < ng; k++) {
        const int sg = per_group ? te[1][k] < te[0][k] : tot[1] < tot[0];
        idx[k] = ti[sg][k];
        neg[k] = (uint8_t)sg;
        const float dl = sg ? -FR_IQ1_DELTA : FR_IQ1_DELTA;
        for (int j = 0; j < 8; j++) {
            const float q = (float)gval(idx[k], j) + dl;
            qx += w[8 * k + j] * q * x[8 * k + j];
            q2 += w[8 * k + j] * q * q;
        }
    }
    *sumqx = qx;
    *sumq2 = q2;
}

static float unit_scale(const float *x, const float *w, int ng, bool per_group) {
    float amax = 0;
    for (int j = 0; j < 8 * ng; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
    if (amax < 1e-15f) return 0.f;
    uint16_t idx[4];
    uint8_t neg[4];
    float best = -1, scale = 0;
    for (int t = 0; t <= 24; t++) { /* s from amax / 1.125 down to a third of it */
        float qx, q2;
        fit_unit(x, w, ng, amax / (1.125f * (1 + 0.085f * (float)t)), per_group, idx, neg, &qx, &q2);
        if (q2 > 0 && qx > 0 && qx * qx > best * q2) { best = qx * qx / q2; scale = qx / q2; }
    }
    return scale;
}

/* One block: idx (32 points), neg (32 shift signs), ls (256 / unit 3-bit scales);
 * returns d. unit = 32 (S) or 16 (M). */
static float iq1_block(const float *x, const float *imp, int unit, uint16_t *idx, uint8_t *neg, int *ls) {
    float w[FR_QK_K], sc[16], max_sc = 0, xx = 0;
    fr_iq_block_weights(x, imp, w);
    for (int i = 0; i < FR_QK_K; i++) xx += w[i] * x[i] * x[i];
    const int nu = FR_QK_K / unit, ng = unit / 8;
    const bool per_group = unit == 16;
    for (int u = 0; u < nu; u++) {
        sc[u] = unit_scale(x + unit * u, w + unit * u, ng, per_group);
        if (sc[u] > max_sc) max_sc = sc[u];
    }
    memset(idx, 0, sizeof(uint16_t) * FR_QK_K / 8);
    memset(neg, 0, FR_QK_K / 8);
    if (max_sc <= 0) {
        for (int u = 0; u < nu; u++) ls[u] = 0;
        return 0.f;
    }
    const float d = max_sc / 15;
    float qx = 0;
    for (int u = 0; u < nu; u++) {
        int l = (int)lrintf(0.5f * (sc[u] / d - 1));
        ls[u] = l < 0 ? 0 : l > 7 ? 7 : l;
        const float m = (float)(2 * ls[u] + 1);
        float gx, g2;
        fit_unit(x + unit * u, w + unit * u, ng, d * m, per_group, idx + ng * u, neg + ng * u, &gx, &g2);
        qx += m * gx;
    }
    return qx > 0 ? xx / qx : d;
}

static void write_s(fr_block_iq1_s *y, const uint16_t *idx, const uint8_t *neg, const int *ls, float d) {
    y->d = fr_f32_to_f16(d);
    for (int ib = 0; ib < 8; ib++) {
        uint16_t h = (uint16_t)((ls[ib] << 12) | (neg[4 * ib] << 15));
        for (int l = 0; l < 4; l++) {
            y->qs[4 * ib + l] = (uint8_t)idx[4 * ib + l];
            h |= (uint16_t)((idx[4 * ib + l] >> 8) << (3 * l));
        }
        y->qh[ib] = h;
    }
}

static void write_m(fr_block_iq1_m *y, const uint16_t *idx, const uint8_t *neg, const int *ls, float d) {
    const uint16_t dh = fr_f32_to_f16(d);
    uint16_t sc[4] = {0, 0, 0, 0};
    for (int ib = 0; ib < 8; ib++) {
        sc[ib / 2] |= (uint16_t)((ls[2 * ib] | (ls[2 * ib + 1] << 3)) << (6 * (ib % 2)));
        for (int l = 0; l < 4; l++) {
            const int g = 4 * ib + l;
            y->qs[g] = (uint8_t)idx[g];
            if (l % 2 == 0) y->qh[g / 2] = 0;
            y->qh[g / 2] |= (uint8_t)((((idx[g] >> 8) & 7) | (neg[g] << 3)) << (4 * (l % 2)));
        }
    }
    for (int k = 0; k < 4; k++) sc[k] |= (uint16_t)(((dh >> (4 * k)) & 0xF) << 12);
    memcpy(y->scales, sc, sizeof sc);
}

int fr_quantize_iq1_rows(fr_type type, const float *x, void *vy, int64_t n, const float *imp) {
    if (!imp || (type != FR_TYPE_IQ1_S && type != FR_TYPE_IQ1_M)) return -1;
    pthread_once(&g_once, build_tables);
    uint16_t idx[FR_QK_K / 8];
    uint8_t neg[FR_QK_K / 8];
    int ls[16];
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float *xb = x + b * FR_QK_K, *ib = imp + b * FR_QK_K;
        if (type == FR_TYPE_IQ1_S) {
            const float d = iq1_block(xb, ib, 32, idx, neg, ls);
            write_s((fr_block_iq1_s *)vy + b, idx, neg, ls, d);
        } else {
            const float d = iq1_block(xb, ib, 16, idx, neg, ls);
            write_m((fr_block_iq1_m *)vy + b, idx, neg, ls, d);
        }
    }
    return 0;
}
