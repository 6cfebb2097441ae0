/* il_drive.c - the loop shared by the IL16 GEMMs of every SIMD level (see
 * il_drive.h). Plain C: compiled without ISA flags, it only calls the tile it is
 * given, which the level installed after dispatch checked the CPU. */
#include "kernels/il_drive.h"

#include <string.h>

#include "core/quant.h"
#include "core/types.h"

_Static_assert(sizeof(fr_il_act) == 40, "fr_il_act layout");
_Static_assert(sizeof(fr_il_act) <= 2 * sizeof(fr_block_q8_0), "il_pack bound (types.h)");

void fr_il_pack_act(const void *vq, void *vp, int64_t n, int c) {
    const fr_block_q8_0 *y = vq;
    fr_il_act *p = vp;
    for (int64_t b = 0; b < n / FR_QK; b++) {
        memcpy(p[b].qs, y[b].qs, 32);
        int sum = 0;
        for (int i = 0; i < 32; i++) sum += y[b].qs[i];
        p[b].d = fr_f16_to_f32(y[b].d);
        p[b].corr = -c * sum;
    }
}

void fr_il_drive(fr_il_tile_fn tile, int tmax, int nb, size_t group_bytes, size_t act_bytes, const void *vw,
                 int n_groups, const void *vyp, size_t yp_row, int n_tok, float *out, size_t ld) {
    const uint8_t *w = vw, *yp = vyp;
    const int fit = (int)((768u << 10) / act_bytes);
    const int per = fit > tmax ? fit : tmax;
    const int n_chunks = (n_tok + per - 1) / per;
    int chunk = (n_tok + n_chunks - 1) / n_chunks;
    chunk = (chunk + tmax - 1) / tmax * tmax; /* whole tiles, so only the last tile of all is short */
    for (int t0 = 0; t0 < n_tok; t0 += chunk) {
        const int tn = n_tok - t0 < chunk ? n_tok - t0 : chunk;
        for (int gi = 0; gi < n_groups; gi++)
            for (int t = t0; t < t0 + tn; t += tmax) {
                const int T = t0 + tn - t < tmax ? t0 + tn - t : tmax;
                tile(T, nb, w + (size_t)gi * group_bytes, yp + (size_t)t * yp_row, yp_row,
                     out + (size_t)t * ld + (size_t)gi * 16, ld);
            }
    }
}
