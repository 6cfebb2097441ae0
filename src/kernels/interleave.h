/* interleave.h - weights repacked in groups of 16 rows for the prefill GEMM.
 *
 * Why: a row-major quantized matrix makes a GEMM kernel reduce each output across
 * SIMD lanes and unpack every weight block once per few tokens. With 16 rows
 * interleaved, one 64-byte register holds 4 consecutive quants of each of 16 rows,
 * so one VNNI vpdpbusd against 4 broadcast activation bytes advances 16 outputs at
 * once, with no horizontal sums; the unpacked block is reused for many tokens.
 *
 * Layout ("IL16"), for Q4_0, IQ4_NL (as Q4_0: its nibbles index the levels) and
 * Q8_0: a group of 16 consecutive rows takes exactly
 * the bytes those rows took row-major (same size at rest, so the group can be
 * repacked in place). Per block b along the row the group holds
 *   - the 16 rows' F16 scales (32 bytes), then
 *   - the quants as 64-byte lanes: lane j has, for r = 0..15 at 4r, bytes 4j..4j+3 of
 *     row r's quant bytes of block b. Q4_0: the 16 packed bytes as in the file (lanes
 *     0..3; low nibbles are values 4j.., high nibbles values 16+4j..). Q8_0: the 32
 *     quants plus 128 as unsigned bytes (lanes 0..7), vpdpbusd's unsigned operand.
 * Q4_K, per super-block b of 256 values (16 x 144 = 2304 bytes):
 *   - bytes 0..31: the 16 rows' F16 d; 32..63: their F16 dmin;
 *   - 64..255: the 16 rows' 8 six-bit scales sc[j] and mins m[j], re-encoded
 *     losslessly from the 12-byte packing so the GEMM decodes a register of 16 rows
 *     with a shift and a mask (row r in bytes 4r..4r+3 of each 64-byte part):
 *       X0 (64..127):   byte 4r+k = sc[k]   | (m[k]   >> 4) << 6,  k = 0..3
 *       X1 (128..191):  byte 4r+k = sc[4+k] | (m[4+k] >> 4) << 6
 *       ML (192..255):  byte 4r+k = (m[k] & 15) | (m[4+k] & 15) << 4
 *   - 256..2303: the 128 quant bytes of each row as 32 lanes of 64 bytes, lane l
 *     holding bytes 4l..4l+3 of each row at 4r, as stored (no bias). Lanes 8c..8c+7
 *     are 64-value chunk c: low nibbles = sub-block 2c, high = sub-block 2c+1, lane
 *     8c+i giving values 4i..4i+3 of each.
 * Q5_K, per super-block b (16 x 176 = 2816 bytes): bytes 0..255 as Q4_K's; then
 *   - 256..767: the 32 qh bytes of each row as 8 lanes (lane l: bytes 4l..4l+3 of
 *     each row at 4r, as stored); bit j of qh byte v is the fifth bit of value v of
 *     sub-block j, so qh lane i pairs with nibble lane 8c+i of every chunk c;
 *   - 768..2815: the 128 nibble bytes as Q4_K's 32 lanes.
 * Q6_K, per super-block b of 256 values (16 x 210 = 3360 bytes), in the order the
 * GEMM reads it (front to back keeps the hardware prefetch streaming on decode):
 *   - bytes 0..31: the 16 rows' F16 d;
 *   - then 4 parts of 832 bytes, part m = 2H + s (H: 128-value half, s = 0..1):
 *       +0..63:    int8 scales of sub-blocks 8H+s+2e (e = 0..3) at +16e + r (row r),
 *                  so one sign-extending load gives a register of 16 rows' scales;
 *       +64..319:  4 lanes of qh bytes 16m..16m+15;
 *       +320..575: 4 lanes of ql bytes 64H+16s..64H+16s+15 (p = 0);
 *       +576..831: 4 lanes of ql bytes 64H+32+16s.. (p = 1);
 *     lane k holding bytes 4k..4k+3 of each row's 16 at 4r, as stored (the Q4_K
 *     transpose: every byte keeps its row-major contents). A ql byte holds values v
 *     (low nibble) and v+64 (high) of a half and a qh byte the top bits of v, v+32,
 *     v+64, v+96, so ql lane k of half p with qh lane k gives values 4k..4k+3 of
 *     sub-block 8H+2p+s (low nibbles, qh bit pair p) and of sub-block 8H+2p+s+4
 *     (high nibbles, bit pair p+2).
 * Q3_K, per super-block (16 x 110 = 1760 bytes), re-encoded losslessly:
 *   - bytes 0..31: the 16 rows' F16 d;
 *   - 32..223: 3 lanes of the 12 packed scale bytes (lane k: bytes 4k..4k+3 of each
 *     row at 4r), so the kernel rebuilds 16 rows' scales with the 32-bit operations
 *     of fr_q3k_scales_w;
 *   - 224..1759: per pair p of 16-value sub-blocks (2p, 2p+1), 3 registers A, B, C
 *     of 64 bytes holding the 8 registers w0..w7 the GEMM dots (w_i at byte 4r + k:
 *     u = q + 4 * hbit (0..7) of value 4 (i & 3) + k of sub-block 2p + (i >> 2) of
 *     row r): A = w0 | w1 << 3 | (w2 & 3) << 6, B = w3 | w4 << 3 | (w5 & 3) << 6,
 *     C = w6 | w7 << 3 | (w2 >> 2) << 6 | (w5 >> 2) << 7: 3 loads and 17 logic
 *     operations give the 8 registers (from the file's qs + hmask it took 16 and 32).
 * IQ4_XS, per super-block (16 x 136 = 2176 bytes): bytes 0..31 the F16 d, 32..63
 * the 16-bit scales_h, 64..127 one lane of scales_l, 128..2175 32 lanes of qs
 * (lanes 4j..4j+3: sub-block j, low nibbles values 0..15, high 16..31).
 * F16: column j of a group is the 16 rows' values at j, consecutive (element (r, j)
 * at 16j + r): a 32-byte load widens to one register of 16 rows' weights for an
 * outer-product GEMM (il_f16_avx512.c).
 * A matrix is repacked only when its row count is a multiple of 16. */
#ifndef FRUGAL_INTERLEAVE_H
#define FRUGAL_INTERLEAVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

#define FR_IL_ROWS 16

/* Q6_K group layout (above), byte offsets inside one super-block: the first part,
 * a part's size, and the qh and ql lanes inside a part. */
#define FR_IL_Q6_PART0 32
#define FR_IL_Q6_PART 832
#define FR_IL_Q6_P_QH 64
#define FR_IL_Q6_P_QL 320

/* True if `type` has an IL16 layout. */
bool fr_il_layout_known(fr_type type);

/* 16 row-major rows (stride row_bytes = fr_row_size(type, n_in)) -> one group at dst.
 * dst must not overlap src. */
void fr_il_pack_group(fr_type type, const void *src, int64_t n_in, void *dst);

/* For the per-format repackers: 4 rows x 16 quant bytes at p (rows row_bytes apart)
 * into the 4 lanes at q, q + 64, q + 128, q + 192 (4 bytes per row, rows side by
 * side), each byte XORed with bias. */
void fr_il_put_quants(const uint8_t *p, size_t row_bytes, uint8_t *q, uint8_t bias);

/* Row r (0..15) of the group at g, back in the row-major format, into out. */
void fr_il_unpack_row(fr_type type, const void *g, int64_t n_in, int r, void *out);

/* The Q4_K halves of the two above (interleave_k.c): row-major rows <-> a group. */
void fr_il_pack_group_q4_k(const void *src, int64_t n_in, void *dst);
void fr_il_unpack_row_q4_k(const void *g, int64_t n_in, int r, void *out);

/* The Q5_K halves (interleave_k.c) and its qh and nibble lanes' offsets inside one
 * super-block of a group. */
#define FR_IL_Q5_QH 256
#define FR_IL_Q5_QS 768
void fr_il_pack_group_q5_k(const void *src, int64_t n_in, void *dst);
void fr_il_unpack_row_q5_k(const void *g, int64_t n_in, int r, void *out);

/* The Q6_K halves (interleave_q6k.c). */
void fr_il_pack_group_q6_k(const void *src, int64_t n_in, void *dst);
void fr_il_unpack_row_q6_k(const void *g, int64_t n_in, int r, void *out);

/* The Q3_K and IQ4_XS halves (interleave_lowbit.c) and their offsets inside one
 * super-block of a group (layout above). */
#define FR_IL_Q3_SC 32
#define FR_IL_Q3_PAIRS 224
#define FR_IL_X4_SH 32
#define FR_IL_X4_SL 64
#define FR_IL_X4_QS 128
void fr_il_pack_group_q3_k(const void *src, int64_t n_in, void *dst);
void fr_il_unpack_row_q3_k(const void *g, int64_t n_in, int r, void *out);
void fr_il_pack_group_iq4_xs(const void *src, int64_t n_in, void *dst);
void fr_il_unpack_row_iq4_xs(const void *g, int64_t n_in, int r, void *out);

/* Forward declaration: kernels/ops.h defines the weight view. */
struct fr_weight;

/* True if w is row-major, its type has an IL16 layout, its row count is a multiple of
 * 16 and the active kernel level has an IL16 GEMM: repacking it pays. */
bool fr_il_worth_it(const struct fr_weight *w);

/* 16 rows of w (scratch for fr_il_repack_in_place) if w's shape and type would be
 * repacked at the active level whatever its current layout, else 0. */
size_t fr_il_scratch_bytes(const struct fr_weight *w);

/* Repack w's rows into dst (fr_row_size * n_out bytes, not overlapping w->data) and
 * point w at it (layout FR_LAYOUT_IL16). */
void fr_il_repack(struct fr_weight *w, void *dst);

/* Repack w in place; tmp: 16 rows of scratch. */
void fr_il_repack_in_place(struct fr_weight *w, void *tmp);

#endif
