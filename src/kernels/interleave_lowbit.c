/* interleave_lowbit.c - the IL16 layouts of Q3_K and IQ4_XS (see interleave.h):
 * repack and unpack, scalar. IQ4_XS keeps every byte of the row-major blocks and
 * only moves it (the 4-byte transpose of fr_il_put_quants); Q3_K re-encodes its 3-bit
 * values losslessly in the same 96 bytes per row, so a group takes the bytes its
 * rows took and unpack is the exact inverse. Called by interleave.c. */
#include "kernels/interleave.h"

#include <stddef.h>
#include <string.h>

#include "core/quant_lowbit.h"

/* Q3_K super-block of a group: 16 x 110 = 1760 bytes. */
enum {
    Q3_D = 0,                       /* 16 x F16 d */
    Q3_SC = 32,                     /* 3 lanes: scale bytes 0..3, 4..7, 8..11 */
    Q3_PAIRS = Q3_SC + 3 * 64,      /* 8 pairs of sub-blocks x 3 registers */
    Q3_GROUP_BLOCK = Q3_PAIRS + 8 * 3 * 64,
};
_Static_assert(Q3_GROUP_BLOCK == 16 * sizeof(fr_block_q3_k), "Q3_K IL16 super-block size");
_Static_assert(Q3_SC == FR_IL_Q3_SC && Q3_PAIRS == FR_IL_Q3_PAIRS, "Q3_K IL16 offsets");

/* IQ4_XS super-block of a group: 16 x 136 = 2176 bytes. */
enum {
    X4_D = 0,                       /* 16 x F16 d */
    X4_SH = 32,                     /* 16 x scales_h (u16) */
    X4_SL = 64,                     /* 1 lane: scales_l[0..3] */
    X4_QS = 128,                    /* 32 lanes of qs */
    X4_GROUP_BLOCK = X4_QS + 32 * 64,
};
_Static_assert(X4_GROUP_BLOCK == 16 * sizeof(fr_block_iq4_xs), "IQ4_XS IL16 super-block size");
_Static_assert(X4_SH == FR_IL_X4_SH && X4_SL == FR_IL_X4_SL && X4_QS == FR_IL_X4_QS, "IQ4_XS IL16 offsets");

/* n bytes (a multiple of 4) at offset off of each of the 16 blocks (rows row_bytes
 * apart) -> n / 4 lanes at o: lane l holds bytes 4l..4l+3 of row r at 4r. Whole
 * 16-byte pieces go through fr_il_put_quants' 4x4 word transpose (repacking runs
 * at memory speed, as the layers of a streamed model arrive), the rest bytewise. */
static void put_lanes(const uint8_t *src, size_t row_bytes, size_t off, size_t n, uint8_t *o) {
    const size_t n16 = n / 16 * 16;
    for (int r = 0; r < FR_IL_ROWS; r += 4)
        for (size_t k = 0; k < n16; k += 16)
            fr_il_put_quants(src + (size_t)r * row_bytes + off + k, row_bytes, o + (k / 4) * 64 + 4 * (size_t)r, 0);
    for (int r = 0; r < FR_IL_ROWS; r++)
        for (size_t k = n16; k < n; k++) o[(k / 4) * 64 + 4 * (size_t)r + k % 4] = src[(size_t)r * row_bytes + off + k];
}

/* The inverse of put_lanes for row r. */
static void get_lanes(const uint8_t *o, int r, size_t n, uint8_t *dst) {
    for (size_t k = 0; k < n; k++) dst[k] = o[(k / 4) * 64 + 4 * (size_t)r + k % 4];
}

/* The 256 values of a Q3_K block as u = q + 4 * hbit (0..7; the value is u - 4):
 * value 128h + 32s + l has its 2 bits at 2s in qs[32h + l] and its third at bit
 * 4h + s of hmask[l]. The inner loop runs over l, 32 bytes the compiler vectorises:
 * the loader repacks every Q3_K matrix this way (a value-by-value loop made a 1.1B
 * Q3_K_M model load in 2.8 s instead of 0.35). */
static void q3_get_u(const fr_block_q3_k *x, uint8_t u[FR_QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int s = 0; s < 4; s++)
            for (int l = 0; l < 32; l++)
                u[128 * h + 32 * s + l] =
                    (uint8_t)(((x->qs[32 * h + l] >> (2 * s)) & 3) | (((x->hmask[l] >> (4 * h + s)) & 1) << 2));
}

static void q3_put_u(const uint8_t u[FR_QK_K], fr_block_q3_k *x) {
    memset(x->qs, 0, sizeof x->qs);
    memset(x->hmask, 0, sizeof x->hmask);
    for (int v = 0; v < FR_QK_K; v++) {
        const int h = v >> 7, s = (v >> 5) & 3, l = v & 31;
        x->qs[32 * h + l] |= (uint8_t)((u[v] & 3) << (2 * s));
        x->hmask[l] |= (uint8_t)((u[v] >> 2) << (4 * h + s));
    }
}

/* Value of register i (0..7) of pair p at byte 4r + k: sub-block 2p + (i >> 2),
 * values 4 (i & 3) + k of it. */
static inline int q3_value(int p, int i, int k) { return 32 * p + 16 * (i >> 2) + 4 * (i & 3) + k; }

void fr_il_pack_group_q3_k(const void *src, int64_t n_in, void *dst) {
    const int64_t nb = n_in / FR_QK_K;
    const size_t bs = sizeof(fr_block_q3_k), row_bytes = (size_t)nb * bs;
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++, o += Q3_GROUP_BLOCK) {
        const uint8_t *s = (const uint8_t *)src + (size_t)b * bs;
        put_lanes(s, row_bytes, offsetof(fr_block_q3_k, scales), 12, o + Q3_SC);
        for (int r = 0; r < FR_IL_ROWS; r++) {
            const fr_block_q3_k *x = (const fr_block_q3_k *)(s + (size_t)r * row_bytes);
            memcpy(o + Q3_D + 2 * r, &x->d, 2);
            uint8_t u[FR_QK_K];
            q3_get_u(x, u);
            for (int p = 0; p < 8; p++) {
                uint8_t *ra = o + Q3_PAIRS + 192 * p + 4 * r, *rb = ra + 64, *rc = ra + 128;
                const uint8_t *v = u + 32 * p; /* register i, byte k: v[4 i + k] (q3_value) */
                for (int k = 0; k < 4; k++) {
                    ra[k] = (uint8_t)(v[k] | v[4 + k] << 3 | (v[8 + k] & 3) << 6);
                    rb[k] = (uint8_t)(v[12 + k] | v[16 + k] << 3 | (v[20 + k] & 3) << 6);
                    rc[k] = (uint8_t)(v[24 + k] | v[28 + k] << 3 | (v[8 + k] >> 2) << 6 | (v[20 + k] >> 2) << 7);
                }
            }
        }
    }
}

void fr_il_unpack_row_q3_k(const void *g, int64_t n_in, int r, void *out) {
    const uint8_t *in = g;
    fr_block_q3_k *x = out;
    for (int64_t b = 0; b < n_in / FR_QK_K; b++, in += Q3_GROUP_BLOCK) {
        memcpy(&x[b].d, in + Q3_D + 2 * r, 2);
        get_lanes(in + Q3_SC, r, 12, x[b].scales);
        uint8_t u[FR_QK_K];
        for (int p = 0; p < 8; p++) {
            const uint8_t *ra = in + Q3_PAIRS + 192 * p, *rb = ra + 64, *rc = ra + 128;
            for (int k = 0; k < 4; k++) {
                const int a = ra[4 * r + k], bb = rb[4 * r + k], c = rc[4 * r + k];
                const uint8_t w[8] = {(uint8_t)(a & 7), (uint8_t)((a >> 3) & 7), (uint8_t)((a >> 6) | ((c >> 4) & 4)),
                                      (uint8_t)(bb & 7), (uint8_t)((bb >> 3) & 7),
                                      (uint8_t)((bb >> 6) | ((c >> 5) & 4)), (uint8_t)(c & 7),
                                      (uint8_t)((c >> 3) & 7)};
                for (int i = 0; i < 8; i++) u[q3_value(p, i, k)] = w[i];
            }
        }
        q3_put_u(u, &x[b]);
    }
}

void fr_il_pack_group_iq4_xs(const void *src, int64_t n_in, void *dst) {
    const int64_t nb = n_in / FR_QK_K;
    const size_t bs = sizeof(fr_block_iq4_xs), row_bytes = (size_t)nb * bs;
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++, o += X4_GROUP_BLOCK) {
        const uint8_t *s = (const uint8_t *)src + (size_t)b * bs;
        for (int r = 0; r < FR_IL_ROWS; r++) {
            memcpy(o + X4_D + 2 * r, s + (size_t)r * row_bytes + offsetof(fr_block_iq4_xs, d), 2);
            memcpy(o + X4_SH + 2 * r, s + (size_t)r * row_bytes + offsetof(fr_block_iq4_xs, scales_h), 2);
        }
        put_lanes(s, row_bytes, offsetof(fr_block_iq4_xs, scales_l), FR_QK_K / 64, o + X4_SL);
        put_lanes(s, row_bytes, offsetof(fr_block_iq4_xs, qs), FR_QK_K / 2, o + X4_QS);
    }
}

void fr_il_unpack_row_iq4_xs(const void *g, int64_t n_in, int r, void *out) {
    const uint8_t *in = g;
    fr_block_iq4_xs *x = out;
    for (int64_t b = 0; b < n_in / FR_QK_K; b++, in += X4_GROUP_BLOCK) {
        memcpy(&x[b].d, in + X4_D + 2 * r, 2);
        memcpy(&x[b].scales_h, in + X4_SH + 2 * r, 2);
        get_lanes(in + X4_SL, r, FR_QK_K / 64, x[b].scales_l);
        get_lanes(in + X4_QS, r, FR_QK_K / 2, x[b].qs);
    }
}
