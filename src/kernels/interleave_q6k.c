/* interleave_q6k.c - the IL16 layout of Q6_K (see interleave.h): repack and unpack,
 * scalar apart from the quant transpose, which is interleave.c's. Called by
 * interleave.c.
 *
 * Why the quant bytes keep their contents (only their places change): the stored
 * pairing of values (v and v+64 in a ql byte, v, v+32, v+64, v+96 in a qh byte)
 * already lets the GEMM build two 16-value sub-blocks from 4 ql lanes and 4 qh
 * lanes, so the repack is a 4x4 word transpose at memory speed, as for Q4_K -
 * streamed layers are repacked as they arrive. */
#include "kernels/interleave.h"

#include <string.h>

#include "core/quant.h"

/* Byte offsets inside one super-block of a group (16 * 210 = 3360 bytes) and
 * inside each of its 4 parts. */
enum {
    Q6_D = 0,       /* 16 x F16 d */
    Q6_PART0 = FR_IL_Q6_PART0, /* part m at Q6_PART0 + m * Q6_PART */
    Q6_PART = FR_IL_Q6_PART,
    Q6_P_SC = 0,               /* 4 sub-blocks x 16 rows of int8 scales */
    Q6_P_QH = FR_IL_Q6_P_QH,   /* 4 lanes of qh */
    Q6_P_QL = FR_IL_Q6_P_QL,   /* 2 x 4 lanes of ql (p = 0, 1) */
    Q6_GROUP_BLOCK = 16 * 210,
};
_Static_assert(sizeof(fr_block_q6_k) == 210, "Q6_K block size");
_Static_assert(Q6_P_QL + 2 * 256 == Q6_PART && Q6_PART0 + 4 * Q6_PART == Q6_GROUP_BLOCK, "Q6_K IL16 super-block size");

/* Part m = 2H + s: scale slot e is sub-block 8H + s + 2e; its qh piece (16 bytes
 * per row) is m, its ql pieces 4H + s (p = 0) and 4H + 2 + s (p = 1). */
static int q6_sub(int m, int e) { return 8 * (m >> 1) + (m & 1) + 2 * e; }
static int q6_ql_piece(int m, int p) { return 4 * (m >> 1) + (m & 1) + 2 * p; }

void fr_il_pack_group_q6_k(const void *src, int64_t n_in, void *dst) {
    const int64_t nb = n_in / FR_QK_K;
    const size_t row_bytes = (size_t)nb * sizeof(fr_block_q6_k);
    const size_t ql_off = offsetof(fr_block_q6_k, ql), qh_off = offsetof(fr_block_q6_k, qh);
    const uint8_t *s = src;
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++, o += Q6_GROUP_BLOCK) {
        const uint8_t *blk = s + (size_t)b * sizeof(fr_block_q6_k); /* row 0's block b */
        for (int r = 0; r < FR_IL_ROWS; r++) {
            const fr_block_q6_k *x = (const fr_block_q6_k *)(blk + (size_t)r * row_bytes);
            memcpy(o + Q6_D + 2 * r, &x->d, 2);
            for (int m = 0; m < 4; m++)
                for (int e = 0; e < 4; e++)
                    o[Q6_PART0 + Q6_PART * m + Q6_P_SC + 16 * e + r] = (uint8_t)x->scales[q6_sub(m, e)];
        }
        /* 16-byte pieces of 4 rows at a time -> 4 lanes each */
        for (int m = 0; m < 4; m++) {
            uint8_t *part = o + Q6_PART0 + Q6_PART * m;
            for (int r = 0; r < FR_IL_ROWS; r += 4) {
                const uint8_t *p = blk + (size_t)r * row_bytes;
                fr_il_put_quants(p + qh_off + 16 * m, row_bytes, part + Q6_P_QH + 4 * r, 0);
                for (int h = 0; h < 2; h++)
                    fr_il_put_quants(p + ql_off + 16 * q6_ql_piece(m, h), row_bytes, part + Q6_P_QL + 256 * h + 4 * r,
                                     0);
            }
        }
    }
}

void fr_il_unpack_row_q6_k(const void *g, int64_t n_in, int r, void *out) {
    const int64_t nb = n_in / FR_QK_K;
    const uint8_t *in = g;
    fr_block_q6_k *x = out;
    for (int64_t b = 0; b < nb; b++, in += Q6_GROUP_BLOCK) {
        memcpy(&x[b].d, in + Q6_D + 2 * r, 2);
        for (int m = 0; m < 4; m++) {
            const uint8_t *part = in + Q6_PART0 + Q6_PART * m;
            for (int e = 0; e < 4; e++) x[b].scales[q6_sub(m, e)] = (int8_t)part[Q6_P_SC + 16 * e + r];
            /* byte i of a 16-byte piece: lane i / 4, byte 4r + i % 4 */
            for (int i = 0; i < 16; i++) {
                const int at = (i / 4) * 64 + 4 * r + i % 4;
                x[b].qh[16 * m + i] = part[Q6_P_QH + at];
                for (int h = 0; h < 2; h++) x[b].ql[16 * q6_ql_piece(m, h) + i] = part[Q6_P_QL + 256 * h + at];
            }
        }
    }
}
