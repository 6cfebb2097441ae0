/* quant_private.h - frugal's own tensor types (ids >= FR_TYPE_PRIVATE_BASE).
 *
 * These are not GGUF types: llama.cpp and other engines refuse files that use them
 * (unknown type id). They exist to try formats the GGUF set lacks. Every layout is
 * self-contained per row, so any row dequantizes on its own (token_embd lookups,
 * row-parallel matmul) and fr_row_size() stays a closed formula.
 *
 * I8C  - int8 per output channel. A row is [f16 d][n x int8 q], value = d * q,
 *        d = amax(row)/127. Row overhead 2 bytes, blocks of 32 int8 (type_size 32)
 *        so n must be a multiple of 32: 8 + 16/n bits per weight (8.06 at n = 256).
 *        vec_dot_type Q8_0: the activation's 32-value blocks line up with the
 *        weight's, so a dot is integer sums per block times the activation block
 *        scale, times d once per row (exactly what Q8_0 x Q8_0 does, minus the
 *        per-block weight scale).
 * NF4  - 4-bit NormalFloat (the 16 quantiles of N(0,1) scaled to [-1, 1], as in
 *        QLoRA/bitsandbytes). Super-block of 256 values = 4 blocks of 64; each block
 *        has an absmax scale, double-quantized: 8-bit unsigned per block times one
 *        F16 per super-block. 134 bytes per 256 values = 4.1875 bits per weight.
 *        Codes of block j: qs[32j + k] low nibble = value 64j + k, high nibble =
 *        value 64j + 32 + k (k < 32), the Q4_0 arrangement, cheap to unpack in SIMD.
 *        vec_dot_type F32: the levels are irrational, so an exact dot uses float
 *        activations (the weight bandwidth, not the activation, bounds decoding).
 * FP8O - FP8 E4M3 (OCP "FN": bias 7, no infinities, max 448) in blocks of 128 with
 *        an F16 scale (value = fp8 * d, d = amax(inliers)/448) and up to 4 outliers
 *        per block kept as F16: values with |x - mean| > 3 std of the block (largest
 *        first), stored as (uint8 index, f16 value); unused slots have index 0xFF.
 *        Dequantization writes fp8 * d, then the outliers overwrite their slots.
 *        142 bytes per 128 values = 8.875 bits per weight. vec_dot_type F32. */
#ifndef FRUGAL_QUANT_PRIVATE_H
#define FRUGAL_QUANT_PRIVATE_H

#include <stdint.h>

#include "core/types.h"

#define FR_NF4_SUPER 256   /* values per NF4 super-block */
#define FR_NF4_BLOCK 64    /* values per NF4 absmax block */
#define FR_FP8O_BLOCK 128  /* values per FP8O block */
#define FR_FP8O_MAX_OUT 4  /* outlier slots per FP8O block */
#define FR_FP8O_NO_OUT 0xFF

typedef struct {
    uint16_t d;                               /* F16 second-level scale */
    uint8_t scales[FR_NF4_SUPER / FR_NF4_BLOCK]; /* block absmax = d * scales[j] */
    uint8_t qs[FR_NF4_SUPER / 2];
} fr_block_nf4;

typedef struct {
    uint16_t d;                       /* F16 scale of the fp8 values */
    uint8_t idx[FR_FP8O_MAX_OUT];     /* outlier positions, FR_FP8O_NO_OUT = unused */
    uint16_t out[FR_FP8O_MAX_OUT];    /* outlier values, F16 */
    uint8_t qs[FR_FP8O_BLOCK];        /* E4M3 codes (0 at outlier slots) */
} fr_block_fp8o;

_Static_assert(sizeof(fr_block_nf4) == 134, "nf4 block size");
_Static_assert(sizeof(fr_block_fp8o) == 142, "fp8o block size");

/* The 16 NF4 levels, ascending, level 7 = 0. */
extern const float fr_nf4_levels[16];

/* Traits of a private type id: the scalar reference. NULL for ids outside
 * [FR_TYPE_PRIVATE_BASE, FR_TYPE_PRIVATE_END). (The active table of these types:
 * fr_private_traits_get, kernels/dispatch.h.) */
const fr_type_traits *fr_private_traits_scalar(uint32_t type);
/* True for a private type id (whether or not it exists). */
static inline int fr_type_is_private(uint32_t type) { return type >= FR_TYPE_PRIVATE_BASE; }

/* E4M3 code <-> float (codes never NaN when produced by fr_fp8_e4m3_from_f32, which
 * rounds to nearest even and saturates at +-448). */
float fr_fp8_e4m3_to_f32(uint8_t c);
uint8_t fr_fp8_e4m3_from_f32(float v);

/* Scalar reference kernels (contracts as in core/types.h; I8C takes one row). */
void fr_to_float_i8c(const void *x, float *y, int64_t n);
void fr_from_float_i8c(const float *x, void *y, int64_t n);
void fr_vec_dot_i8c(int n, float *s, const void *x, const void *y);
void fr_to_float_nf4(const void *x, float *y, int64_t n);
void fr_from_float_nf4(const float *x, void *y, int64_t n);
void fr_vec_dot_nf4(int n, float *s, const void *x, const void *y);
void fr_to_float_fp8o(const void *x, float *y, int64_t n);
void fr_from_float_fp8o(const float *x, void *y, int64_t n);
void fr_vec_dot_fp8o(int n, float *s, const void *x, const void *y);

#endif
