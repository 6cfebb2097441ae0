/* quant_iq2_w.c - the IQ2_XXS, IQ2_XS and IQ2_S writers: per group of 8 values a point of
 * the format's grid (core/iq_grid2.c: 256 / 512 / 1024 points, magnitudes 8, 25, 43)
 * with 7 stored sign bits (XXS, XS: the eighth is their parity, so a group holds an
 * even number of negatives) or 8 (S), a 4-bit scale (d * (2 s + 1) / 8) per 32 (XXS)
 * or 16 (XS, S) values, an F16 scale per 256. Only importance-weighted: at 2 bits the
 * fit needs to know which values matter (llama.cpp refuses these types without an
 * importance matrix too).
 *
 * Same search as core/quant_iq3s_w.c: round each value to the nearest magnitude, take
 * the pattern's grid point or the best of its 16 nearest; trial scales per sub-block,
 * 4-bit scales rounded against the block's largest, groups re-fitted, block scale
 * that keeps the weights' gain (see iq2_block). With the parity rule a group with an
 * odd number of negatives keeps the sign of all but its cheapest value (smallest
 * weight * x^2), whose target becomes -|x|: the fit then gives it the smallest magnitude, the least harm a wrong sign can do. */
#include "core/quant_lowbit.h"

#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <string.h>

#define N_NEIGH 16
#define N_PAT 6561 /* 3^8 level patterns */

typedef struct {
    const uint64_t *grid;
    int n;
    int16_t map[N_PAT];
    uint16_t neigh[N_PAT][N_NEIGH];
} iq2_tab;

static iq2_tab g_xxs, g_xs, g_s;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static int mag_level(unsigned m) { return m < 16 ? 0 : m < 34 ? 1 : 2; }

static void build_one(iq2_tab *t, const uint64_t *grid, int n) {
    t->grid = grid;
    t->n = n;
    for (int p = 0; p < N_PAT; p++) t->map[p] = -1;
    static int lv[1024][8];
    for (int i = 0; i < n; i++) {
        int p = 0;
        for (int j = 7; j >= 0; j--) {
            lv[i][j] = mag_level((unsigned)((grid[i] >> (8 * j)) & 0xFF));
            p = 3 * p + lv[i][j];
        }
        t->map[p] = (int16_t)i;
    }
    for (int p = 0; p < N_PAT; p++) {
        if (t->map[p] >= 0) continue;
        int pl[8], q = p, dist[N_NEIGH], cnt = 0;
        for (int j = 0; j < 8; j++, q /= 3) pl[j] = q % 3;
        for (int i = 0; i < n; i++) {
            int d = 0;
            for (int j = 0; j < 8; j++) d += (lv[i][j] - pl[j]) * (lv[i][j] - pl[j]);
            fr_iq_neigh_offer(dist, t->neigh[p], &cnt, N_NEIGH, d, i);
        }
    }
}

static void build_tables(void) {
    build_one(&g_xxs, fr_iq2xxs_grid, 256);
    build_one(&g_xs, fr_iq2xs_grid, 512);
    build_one(&g_s, fr_iq2s_grid, 1024);
}

static inline float gval(const iq2_tab *t, int idx, int j) { return (float)((t->grid[idx] >> (8 * j)) & 0xFF); }

/* Best grid point for the 8 signed magnitude targets a at scale s (> 0). */
static int best_point(const iq2_tab *t, const float *a, const float *w, float s) {
    const float is = 1 / s;
    int p = 0;
    for (int j = 7; j >= 0; j--) {
        const float m = is * a[j];
        p = 3 * p + (m < 16.5f ? 0 : m < 34 ? 1 : 2);
    }
    if (t->map[p] >= 0) return t->map[p];
    int best = -1;
    float best_e = 0;
    for (int k = 0; k < N_NEIGH; k++) {
        const int idx = t->neigh[p][k];
        float e = 0;
        for (int j = 0; j < 8; j++) {
            const float d = s * gval(t, idx, j) - a[j];
            e += w[j] * d * d;
        }
        if (best < 0 || e < best_e) { best_e = e; best = idx; }
    }
    return best;
}

/* Points for ng groups of 8 at scale s; sums for the least-squares scale. */
static void fit_points(const iq2_tab *t, const float *a, const float *w, int ng, float s, uint16_t *idx,
                       float *sumqx, float *sumq2) {
    float qx = 0, q2 = 0;
    for (int k = 0; k < ng; k++) {
        idx[k] = (uint16_t)best_point(t, a + 8 * k, w + 8 * k, s);
        for (int j = 0; j < 8; j++) {
            const float q = gval(t, idx[k], j);
            qx += w[8 * k + j] * q * a[8 * k + j];
            q2 += w[8 * k + j] * q * q;
        }
    }
    *sumqx = qx;
    *sumq2 = q2;
}

static float sub_scale(const iq2_tab *t, const float *a, const float *w, int ng) {
    float amax = 0;
    for (int j = 0; j < 8 * ng; j++) amax = a[j] > amax ? a[j] : amax;
    if (amax < 1e-15f) return 0.f;
    uint16_t idx[4];
    float best = -1, scale = amax / 43;
    for (int tr = -16; tr <= 16; tr++) {
        float qx, q2;
        fit_points(t, a, w, ng, amax / (43 * (1 + 0.03f * (float)tr)), idx, &qx, &q2);
        if (q2 > 0 && qx > 0 && qx * qx > best * q2) { best = qx * qx / q2; scale = qx / q2; }
    }
    float qx, q2;
    fit_points(t, a, w, ng, scale, idx, &qx, &q2);
    if (q2 > 0 && qx > 0 && qx * qx > best * q2) scale = qx / q2;
    return scale;
}

/* One block: idx (32 points), signs (32 x 8 bits; with parity the eighth is the
 * parity of the other seven), ls (4-bit scales, 256 / sub of them); returns the
 * block scale d. sub = 32 (XXS) or 16 (XS, S); parity: XXS and XS. */
static float iq2_block(const iq2_tab *t, const float *x, const float *imp, int sub, bool parity, uint16_t *idx,
                       uint8_t *signs, int *ls) {
    float a[FR_QK_K], w[FR_QK_K], sc[16], max_sc = 0;
    fr_iq_block_weights(x, imp, w);
    fr_iq_block_signs(x, w, parity, a, signs);
    const int nsub = FR_QK_K / sub, ng = sub / 8;
    for (int b = 0; b < nsub; b++) {
        sc[b] = sub_scale(t, a + sub * b, w + sub * b, ng);
        if (sc[b] > max_sc) max_sc = sc[b];
    }
    if (max_sc <= 0) {
        memset(idx, 0, sizeof(uint16_t) * FR_QK_K / 8);
        for (int b = 0; b < nsub; b++) ls[b] = 0;
        return 0.f;
    }
    const float d = 8 * max_sc / 31;
    float qx = 0, q2 = 0;
    for (int b = 0; b < nsub; b++) {
        int l = (int)lrintf(0.5f * (8 * sc[b] / d - 1));
        ls[b] = l < 0 ? 0 : l > 15 ? 15 : l;
        const float m = (float)(2 * ls[b] + 1) / 8;
        float gx, g2;
        fit_points(t, a + sub * b, w + sub * b, ng, d * m, idx + ng * b, &gx, &g2);
        qx += m * gx;
        q2 += m * m * g2;
    }
    if (!(q2 > 0 && qx > 0)) return d;
    /* Not the least-squares d = qx / q2: that makes the error orthogonal to the
     * quantized weights, which shrinks them by the relative error (~10 % at 2 bits),
     * and each layer's output shrinks with them; the shrink compounds over layers
     * (measured: outputs at 0.91 of the F32 ones, KL +36 % over the reference's).
     * d = xx / qx makes the (weighted) error orthogonal to the weights themselves, so
     * the matmul keeps its gain: KL 1.35e-01 -> 1.03e-01 on IQ2_XXS. */
    float xx = 0;
    for (int i = 0; i < FR_QK_K; i++) xx += w[i] * a[i] * a[i];
    return xx / qx;
}

static void write_xxs(fr_block_iq2_xxs *y, const uint16_t *idx, const uint8_t *signs, const int *ls) {
    for (int g = 0; g < 8; g++) {
        uint8_t q[4];
        uint32_t sw = (uint32_t)ls[g] << 28;
        for (int k = 0; k < 4; k++) {
            q[k] = (uint8_t)idx[4 * g + k];
            sw |= (uint32_t)(signs[4 * g + k] & 127) << (7 * k);
        }
        memcpy(&y->qs[4 * g], q, 4);
        memcpy(&y->qs[4 * g + 2], &sw, 4);
    }
}

/* IQ2_S: low index bytes then the 32 sign bytes in qs, index bits 8-9 in qh. */
static void write_s(fr_block_iq2_s *y, const uint16_t *idx, const uint8_t *signs, const int *ls) {
    for (int g = 0; g < 32; g++) {
        y->qs[g] = (uint8_t)idx[g];
        y->qs[FR_QK_K / 8 + g] = signs[g];
    }
    for (int ib = 0; ib < 8; ib++) {
        y->qh[ib] = 0;
        for (int l = 0; l < 4; l++) y->qh[ib] |= (uint8_t)((idx[4 * ib + l] >> 8) << (2 * l));
        y->scales[ib] = (uint8_t)(ls[2 * ib] | (ls[2 * ib + 1] << 4));
    }
}

int fr_quantize_iq2_rows(fr_type type, const float *x, void *vy, int64_t n, const float *imp) {
    if (!imp || (type != FR_TYPE_IQ2_XXS && type != FR_TYPE_IQ2_XS && type != FR_TYPE_IQ2_S)) return -1;
    pthread_once(&g_once, build_tables);
    uint16_t idx[FR_QK_K / 8];
    uint8_t signs[FR_QK_K / 8];
    int ls[16];
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        const float *xb = x + b * FR_QK_K, *ib = imp + b * FR_QK_K;
        if (type == FR_TYPE_IQ2_XXS) {
            fr_block_iq2_xxs *y = (fr_block_iq2_xxs *)vy + b;
            y->d = fr_f32_to_f16(iq2_block(&g_xxs, xb, ib, 32, true, idx, signs, ls));
            write_xxs(y, idx, signs, ls);
        } else if (type == FR_TYPE_IQ2_XS) {
            fr_block_iq2_xs *y = (fr_block_iq2_xs *)vy + b;
            y->d = fr_f32_to_f16(iq2_block(&g_xs, xb, ib, 16, true, idx, signs, ls));
            for (int g = 0; g < 32; g++) y->qs[g] = (uint16_t)(idx[g] | ((signs[g] & 127) << 9));
            for (int s = 0; s < 8; s++) y->scales[s] = (uint8_t)(ls[2 * s] | (ls[2 * s + 1] << 4));
        } else {
            fr_block_iq2_s *y = (fr_block_iq2_s *)vy + b;
            y->d = fr_f32_to_f16(iq2_block(&g_s, xb, ib, 16, false, idx, signs, ls));
            write_s(y, idx, signs, ls);
        }
    }
    return 0;
}
