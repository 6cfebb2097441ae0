/* quant_iq3xxs_w.c - the IQ3_XXS writer: per group of 4 values a point of the
 * format's 256-point grid (core/iq_grid13.c, magnitudes 4, 12, .., 52, 62), 7 stored
 * sign bits per 8 values (the eighth is their parity), a 4-bit scale (d (2 s + 1) / 4)
 * per 32 values and an F16 scale per 256. Importance-weighted only, as llama.cpp.
 *
 * The search is IQ3_S's (fr_grid4, core/quant_grid4_w.c: nearest level pattern, else
 * the best of its 16 nearest grid points; trial scales per 32 values), then 4-bit
 * scales against the block's largest and the groups re-fitted, with the IQ2 writers'
 * parity rule (an odd count of
 * negatives flips the cheapest value, fitted to -|x|) and gain-keeping block scale. */
#include "core/quant_lowbit.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* magnitudes 4 + 8 l (the top one 62): level round((m - 4) / 8); trial scales amax /
 * (62 (1 + 0.025 t)), |t| <= 20 */
static fr_grid4 g_grid = {.grid = fr_iq3xxs_grid, .n = 256, .lv_off = 4, .lv_mul = 0.125f,
                          .trial_base = 62, .trial_rel = 0.025f, .trial_n = 20};
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void build_tables(void) { fr_grid4_build(&g_grid); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

static void iq3xxs_block(const float *x, fr_block_iq3_xxs *y, const float *imp) {
    float a[FR_QK_K], w[FR_QK_K], sc[8], max_sc = 0;
    uint8_t signs[FR_QK_K / 8];
    uint16_t idx[FR_QK_K / 4];
    fr_iq_block_weights(x, imp, w);
    fr_iq_block_signs(x, w, true, a, signs); /* 7 bits stored: the eighth is the parity */
    for (int ib = 0; ib < 8; ib++) {
        sc[ib] = fr_grid4_group_scale(&g_grid, a + 32 * ib, w + 32 * ib);
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
        fr_grid4_fit(&g_grid, a + 32 * ib, w + 32 * ib, d * m, idx + 8 * ib, &gx, &g2);
        qx += m * gx;
        q2 += m * m * g2;
    }
    for (int i = 0; i < FR_QK_K; i++) xx += w[i] * a[i] * a[i];
    /* gain-keeping block scale (core/quant_iq2_w.c says why) */
    y->d = fr_f32_to_f16(q2 > 0 && qx > 0 ? xx / qx : d);
    for (int k = 0; k < FR_QK_K / 4; k++) y->qs[k] = (uint8_t)idx[k]; /* 256 points: one byte each */
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
