/* quant_iq3xxs_w.c - the IQ3_XXS writer: per group of 4 values a point of the
 * format's 256-point grid (core/iq_grid13.c, magnitudes 4, 12, .., 52, 62), 7 stored
 * sign bits per 8 values (the eighth is their parity), a 4-bit scale (d (2 s + 1) / 4)
 * per 32 values and an F16 scale per 256. Importance-weighted only, as llama.cpp.
 *
 * The search is core/quant_iq3s_w.c's (nearest level pattern, else the best of its 16
 * nearest grid points; trial scales per 32 values; 4-bit scales against the block's
 * largest; groups re-fitted) with core/quant_iq2_w.c's parity rule (an odd count of
 * negatives flips the cheapest value, fitted to -|x|) and gain-keeping block scale. */
#include "core/quant_lowbit.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define N_NEIGH 16

/* level pattern l0 | l1 << 3 | l2 << 6 | l3 << 9 -> grid index or -1; neighbours */
static int16_t g_map[4096];
static uint16_t g_neigh[4096][N_NEIGH];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }
static inline float gmag(int idx, int j) { return (float)((fr_iq3xxs_grid[idx] >> (8 * j)) & 0xFF); }
/* magnitude m (in grid units) -> level 0..7 of 4 + 8 l (the top one is 62) */
static inline int level_of(float m) { return clampi((int)lrintf((m - 4) * 0.125f), 0, 7); }

static void build_tables(void) {
    int lv[256][4];
    for (int p = 0; p < 4096; p++) g_map[p] = -1;
    for (int i = 0; i < 256; i++) {
        int p = 0;
        for (int j = 0; j < 4; j++) p |= (lv[i][j] = level_of(gmag(i, j))) << (3 * j);
        g_map[p] = (int16_t)i;
    }
    for (int p = 0; p < 4096; p++) {
        if (g_map[p] >= 0) continue;
        int dist[N_NEIGH], n = 0;
        for (int i = 0; i < 256; i++) {
            int d = 0;
            for (int j = 0; j < 4; j++) d += (lv[i][j] - ((p >> (3 * j)) & 7)) * (lv[i][j] - ((p >> (3 * j)) & 7));
            fr_iq_neigh_offer(dist, g_neigh[p], &n, N_NEIGH, d, i);
        }
    }
}

static float point_err(int idx, const float *a, const float *w, float s) {
    float e = 0;
    for (int j = 0; j < 4; j++) {
        const float d = s * gmag(idx, j) - a[j];
        e += w[j] * d * d;
    }
    return e;
}

static int best_point(const float *a, const float *w, float s) {
    const float is = 1 / s;
    int p = 0;
    for (int j = 0; j < 4; j++) p |= level_of(is * a[j]) << (3 * j);
    if (g_map[p] >= 0) return g_map[p];
    int best = g_neigh[p][0];
    float best_e = point_err(best, a, w, s);
    for (int k = 1; k < N_NEIGH; k++) {
        const float e = point_err(g_neigh[p][k], a, w, s);
        if (e < best_e) { best_e = e; best = g_neigh[p][k]; }
    }
    return best;
}

/* Points of the 8 groups of a[32] at scale s, with sum w q a and sum w q^2. */
static void fit_points(const float *a, const float *w, float s, uint8_t *idx, float *sumqx, float *sumq2) {
    float qx = 0, q2 = 0;
    for (int k = 0; k < 8; k++) {
        idx[k] = (uint8_t)best_point(a + 4 * k, w + 4 * k, s);
        for (int j = 0; j < 4; j++) {
            const float q = gmag(idx[k], j);
            qx += w[4 * k + j] * q * a[4 * k + j];
            q2 += w[4 * k + j] * q * q;
        }
    }
    *sumqx = qx;
    *sumq2 = q2;
}

static float group_scale(const float *a, const float *w) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = a[j] > amax ? a[j] : amax;
    if (amax < 1e-15f) return 0.f;
    uint8_t idx[8];
    float best = -1, scale = amax / 62;
    for (int t = -20; t <= 20; t++) {
        float qx, q2;
        fit_points(a, w, amax / (62 * (1 + 0.025f * (float)t)), idx, &qx, &q2);
        if (q2 > 0 && qx > 0 && qx * qx > best * q2) { best = qx * qx / q2; scale = qx / q2; }
    }
    float qx, q2;
    fit_points(a, w, scale, idx, &qx, &q2);
    if (q2 > 0 && qx > 0 && qx * qx > best * q2) scale = qx / q2;
    return scale;
}

static void iq3xxs_block(const float *x, fr_block_iq3_xxs *y, const float *imp) {
    float a[FR_QK_K], w[FR_QK_K], sc[8], max_sc = 0;
    uint8_t signs[FR_QK_K / 8], idx[FR_QK_K / 4];
    fr_iq_block_weights(x, imp, w);
    fr_iq_block_signs(x, w, true, a, signs); /* 7 bits stored: the eighth is the parity */
    for (int ib = 0; ib < 8; ib++) {
        sc[ib] = group_scale(a + 32 * ib, w + 32 * ib);
        if (sc[ib] > max_sc) max_sc = sc[ib];
    }
    memset(y, 0, sizeof *y);
    if (max_sc <= 0) return;
    const float d = 4 * max_sc / 31;
    int ls[8];
    float qx = 0, q2 = 0, xx = 0;
    for (int ib = 0; ib < 8; ib++) {
        ls[ib] = clampi((int)lrintf(0.5f * (4 * sc[ib] / d - 1)), 0, 15);
        const float m = (float)(2 * ls[ib] + 1) / 4;
        float gx, g2;
        fit_points(a + 32 * ib, w + 32 * ib, d * m, idx + 8 * ib, &gx, &g2);
        qx += m * gx;
        q2 += m * m * g2;
    }
    for (int i = 0; i < FR_QK_K; i++) xx += w[i] * a[i] * a[i];
    /* gain-keeping block scale (core/quant_iq2_w.c says why) */
    y->d = fr_f32_to_f16(q2 > 0 && qx > 0 ? xx / qx : d);
    memcpy(y->qs, idx, FR_QK_K / 4);
    for (int ib = 0; ib < 8; ib++) {
        uint32_t sw = (uint32_t)ls[ib] << 28;
        for (int l = 0; l < 4; l++) sw |= (uint32_t)(signs[4 * ib + l] & 127) << (7 * l);
        memcpy(y->qs + FR_QK_K / 4 + 4 * ib, &sw, 4);
    }
}

int fr_quantize_iq3_xxs_rows(const float *x, void *vy, int64_t n, const float *imp) {
    if (!imp) return -1;
    pthread_once(&g_once, build_tables);
    fr_block_iq3_xxs *y = vy;
    for (int64_t b = 0; b < n / FR_QK_K; b++) iq3xxs_block(x + b * FR_QK_K, y + b, imp + b * FR_QK_K);
    return 0;
}
