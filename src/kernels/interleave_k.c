/* interleave_k.c - the IL16 layouts of Q4_K and Q5_K (see interleave.h): repack
 * and unpack, scalar (the quant transpose is interleave.c's). Called by
 * interleave.c. Q5_K is Q4_K's block with 32 bytes of fifth bits between the
 * scales and the nibbles, so its group is Q4_K's header, the qh lanes, then Q4_K's
 * nibble lanes: one kernel's header and nibble code serves both. */
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
    K5_QH = 256,    /* Q5_K: 8 lanes of qh */
    K5_QS = 768,    /* Q5_K: 32 lanes of nibbles */
    K5_GROUP_BLOCK = 16 * 176,
};
_Static_assert(K4_QS + 32 * 64 == K4_GROUP_BLOCK, "Q4_K IL16 super-block size");
_Static_assert(sizeof(fr_block_q4_k) == 144, "Q4_K block size");
_Static_assert(K5_QH == FR_IL_Q5_QH && K5_QS == FR_IL_Q5_QS, "Q5_K IL16 offsets");
_Static_assert(K5_QS + 32 * 64 == K5_GROUP_BLOCK && sizeof(fr_block_q5_k) == 176, "Q5_K IL16 super-block size");
_Static_assert(offsetof(fr_block_q5_k, scales) == offsetof(fr_block_q4_k, scales), "Q4_K / Q5_K headers");

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

/* Row r's header (d, dmin, 12 scale bytes at hdr) into the group's super-block at o. */
static void put_header(const uint8_t *hdr, int r, uint8_t *o) {
    memcpy(o + K4_D + 2 * r, hdr, 2);
    memcpy(o + K4_DMIN + 2 * r, hdr + 2, 2);
    uint8_t sc[8], mn[8];
    k4_decode(hdr + 4, sc, mn);
    for (int k = 0; k < 4; k++) {
        o[K4_X0 + 4 * r + k] = (uint8_t)(sc[k] | ((mn[k] >> 4) << 6));
        o[K4_X1 + 4 * r + k] = (uint8_t)(sc[k + 4] | ((mn[k + 4] >> 4) << 6));
        o[K4_ML + 4 * r + k] = (uint8_t)((mn[k] & 0xF) | ((mn[k + 4] & 0xF) << 4));
    }
}

/* The inverse: row r's d, dmin and 12 scale bytes from the super-block at in. */
static void get_header(const uint8_t *in, int r, uint8_t *hdr) {
    memcpy(hdr, in + K4_D + 2 * r, 2);
    memcpy(hdr + 2, in + K4_DMIN + 2 * r, 2);
    uint8_t sc[8], mn[8];
    for (int k = 0; k < 4; k++) {
        const uint8_t x0 = in[K4_X0 + 4 * r + k], x1 = in[K4_X1 + 4 * r + k], ml = in[K4_ML + 4 * r + k];
        sc[k] = x0 & 63;
        sc[k + 4] = x1 & 63;
        mn[k] = (uint8_t)((ml & 0xF) | ((x0 >> 6) << 4));
        mn[k + 4] = (uint8_t)((ml >> 4) | ((x1 >> 6) << 4));
    }
    k4_encode(sc, mn, hdr + 4);
}

/* 16 rows' n bytes at offset off of block b (rows row_bytes apart) as n / 4 lanes at o. */
static void put_lanes(const uint8_t *src, size_t row_bytes, size_t off, int n, uint8_t *o) {
    for (int r = 0; r < FR_IL_ROWS; r += 4)
        for (int k = 0; k < n / 16; k++)
            fr_il_put_quants(src + (size_t)r * row_bytes + off + 16 * (size_t)k, row_bytes, o + (4 * k) * 64 + 4 * r, 0);
}

/* Row r's n bytes of the lanes at in, back into out. */
static void get_lanes(const uint8_t *in, int r, int n, uint8_t *out) {
    for (int k = 0; k < n; k++) out[k] = in[(k / 4) * 64 + 4 * r + k % 4];
}

/* Both types: bs bytes per block, qh_off the offset of the qh bytes (0: none). */
static void pack_group_k(const uint8_t *src, int64_t n_in, size_t bs, size_t qh_off, uint8_t *o) {
    const int64_t nb = n_in / FR_QK_K;
    const size_t row_bytes = (size_t)nb * bs, qs_off = bs - FR_QK_K / 2;
    const int lanes_qs = qh_off ? K5_QS : K4_QS;
    for (int64_t b = 0; b < nb; b++, o += FR_IL_ROWS * bs) {
        const uint8_t *s = src + (size_t)b * bs;
        for (int r = 0; r < FR_IL_ROWS; r++) put_header(s + (size_t)r * row_bytes, r, o);
        if (qh_off) put_lanes(s, row_bytes, qh_off, FR_QK_K / 8, o + K5_QH);
        put_lanes(s, row_bytes, qs_off, FR_QK_K / 2, o + lanes_qs);
    }
}

static void unpack_row_k(const uint8_t *in, int64_t n_in, int r, size_t bs, size_t qh_off, uint8_t *out) {
    const int lanes_qs = qh_off ? K5_QS : K4_QS;
    for (int64_t b = 0; b < n_in / FR_QK_K; b++, in += FR_IL_ROWS * bs, out += bs) {
        get_header(in, r, out);
        if (qh_off) get_lanes(in + K5_QH, r, FR_QK_K / 8, out + qh_off);
        get_lanes(in + lanes_qs, r, FR_QK_K / 2, out + bs - FR_QK_K / 2);
    }
}

void fr_il_pack_group_q4_k(const void *src, int64_t n_in, void *dst) {
    pack_group_k(src, n_in, sizeof(fr_block_q4_k), 0, dst);
}

void fr_il_unpack_row_q4_k(const void *g, int64_t n_in, int r, void *out) {
    unpack_row_k(g, n_in, r, sizeof(fr_block_q4_k), 0, out);
}

void fr_il_pack_group_q5_k(const void *src, int64_t n_in, void *dst) {
    pack_group_k(src, n_in, sizeof(fr_block_q5_k), offsetof(fr_block_q5_k, qh), dst);
}

void fr_il_unpack_row_q5_k(const void *g, int64_t n_in, int r, void *out) {
    unpack_row_k(g, n_in, r, sizeof(fr_block_q5_k), offsetof(fr_block_q5_k, qh), out);
}
