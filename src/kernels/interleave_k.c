/* interleave_k.c - the IL16 layout of Q4_K (see interleave.h): repack and unpack,
 * scalar (the quant transpose is interleave.c's). Called by interleave.c. */
#include "kernels/interleave.h"

#include <string.h>

#include "core/quant.h"

/* Byte offsets inside one super-block of a group (16 * 144 = 2304 bytes). */
enum {
    K4_D = 0,       /* 16 x F16 d */
    K4_DMIN = 32,   /* 16 x F16 dmin */
    K4_X0 = 64,     /* scales of sub-blocks 0..3 (+ top bits of their mins) */
    K4_X1 = 128,    /* scales of sub-blocks 4..7 (+ top bits of their mins) */
    K4_ML = 192,    /* low nibbles of the mins */
    K4_QS = 256,    /* 32 lanes of 64 bytes */
    K4_GROUP_BLOCK = 16 * 144,
};
_Static_assert(K4_QS + 32 * 64 == K4_GROUP_BLOCK, "Q4_K IL16 super-block size");
_Static_assert(sizeof(fr_block_q4_k) == 144, "Q4_K block size");

/* The 12 packed bytes of a Q4_K block <-> its 8 six-bit scales and mins (the
 * packing of quant_k.c's get_scale_min_k4: every one of the 96 bits is used, so
 * the two directions are exact inverses). */
static void k4_decode(const uint8_t q[12], uint8_t sc[8], uint8_t mn[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = q[j] & 63;
        mn[j] = q[j + 4] & 63;
        sc[j + 4] = (uint8_t)((q[j + 8] & 0xF) | ((q[j] >> 6) << 4));
        mn[j + 4] = (uint8_t)((q[j + 8] >> 4) | ((q[j + 4] >> 6) << 4));
    }
}

static void k4_encode(const uint8_t sc[8], const uint8_t mn[8], uint8_t q[12]) {
    for (int j = 0; j < 4; j++) {
        q[j] = (uint8_t)(sc[j] | ((sc[j + 4] >> 4) << 6));
        q[j + 4] = (uint8_t)(mn[j] | ((mn[j + 4] >> 4) << 6));
        q[j + 8] = (uint8_t)((sc[j + 4] & 0xF) | ((mn[j + 4] & 0xF) << 4));
    }
}

void fr_il_pack_group_q4_k(const void *src, int64_t n_in, void *dst) {
    const int64_t nb = n_in / FR_QK_K;
    const size_t row_bytes = (size_t)nb * sizeof(fr_block_q4_k);
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++, o += K4_GROUP_BLOCK) {
        for (int r = 0; r < FR_IL_ROWS; r++) {
            const fr_block_q4_k *x = (const fr_block_q4_k *)((const uint8_t *)src + (size_t)r * row_bytes) + b;
            memcpy(o + K4_D + 2 * r, &x->d, 2);
            memcpy(o + K4_DMIN + 2 * r, &x->dmin, 2);
            uint8_t sc[8], mn[8];
            k4_decode(x->scales, sc, mn);
            for (int k = 0; k < 4; k++) {
                o[K4_X0 + 4 * r + k] = (uint8_t)(sc[k] | ((mn[k] >> 4) << 6));
                o[K4_X1 + 4 * r + k] = (uint8_t)(sc[k + 4] | ((mn[k + 4] >> 4) << 6));
                o[K4_ML + 4 * r + k] = (uint8_t)((mn[k] & 0xF) | ((mn[k + 4] & 0xF) << 4));
            }
        }
        const size_t qs_off = offsetof(fr_block_q4_k, qs);
        for (int r = 0; r < FR_IL_ROWS; r += 4)
            for (int k = 0; k < FR_QK_K / 2 / 16; k++)
                fr_il_put_quants((const uint8_t *)src + (size_t)r * row_bytes + (size_t)b * sizeof(fr_block_q4_k) +
                                     qs_off + 16 * k,
                                 row_bytes, o + K4_QS + (4 * k) * 64 + 4 * r, 0);
    }
}

void fr_il_unpack_row_q4_k(const void *g, int64_t n_in, int r, void *out) {
    const int64_t nb = n_in / FR_QK_K;
    const uint8_t *in = g;
    fr_block_q4_k *x = out;
    for (int64_t b = 0; b < nb; b++, in += K4_GROUP_BLOCK) {
        memcpy(&x[b].d, in + K4_D + 2 * r, 2);
        memcpy(&x[b].dmin, in + K4_DMIN + 2 * r, 2);
        uint8_t sc[8], mn[8];
        for (int k = 0; k < 4; k++) {
            const uint8_t x0 = in[K4_X0 + 4 * r + k], x1 = in[K4_X1 + 4 * r + k], ml = in[K4_ML + 4 * r + k];
            sc[k] = x0 & 63;
            sc[k + 4] = x1 & 63;
            mn[k] = (uint8_t)((ml & 0xF) | ((x0 >> 6) << 4));
            mn[k + 4] = (uint8_t)((ml >> 4) | ((x1 >> 6) << 4));
        }
        k4_encode(sc, mn, x[b].scales);
        for (int k = 0; k < FR_QK_K / 2; k++) x[b].qs[k] = in[K4_QS + (k / 4) * 64 + 4 * r + k % 4];
    }
}
