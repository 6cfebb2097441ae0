/* quant.h - packed block formats and their scalar reference kernels.
 *
 * Each GGUF block format is a packed struct whose layout is byte-identical to the
 * reference (ggml) layout. For each type: to_float (dequantize), from_float
 * (quantize, where we can write it), and vec_dot against the type's vec_dot_type
 * (see core/types.h). These scalar versions are the reference that every SIMD
 * variant is tested against. */
#ifndef FRUGAL_QUANT_H
#define FRUGAL_QUANT_H

#include <stdint.h>

#include "core/types.h"

#define FR_QK 32    /* values per block, legacy formats */
#define FR_QK_K 256 /* values per super-block, K-quants */

/* Block structs, byte-identical to ggml's (ggml-common.h). fp16 fields are raw
 * IEEE half bits (convert with fr_f16_to_f32). All members are byte or 16-bit
 * arrays laid out without padding; the asserts pin the sizes GGUF files use.
 * Multi-byte fields are little-endian, as in the files (we only run on LE hosts). */
typedef struct { uint16_t d; uint8_t qs[FR_QK / 2]; } fr_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[FR_QK / 2]; } fr_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[FR_QK / 2]; } fr_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[FR_QK / 2]; } fr_block_q5_1;
typedef struct { uint16_t d; int8_t qs[FR_QK]; } fr_block_q8_0;
/* s = d * sum(qs), precomputed so Q4_1/Q5_1 dots can fold in their min term */
typedef struct { uint16_t d, s; int8_t qs[FR_QK]; } fr_block_q8_1;
/* K-quants: 8 sub-blocks of 32 with 6-bit scales/mins packed in 12 bytes */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qs[FR_QK_K / 2];
} fr_block_q4_k;
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[12];
    uint8_t qh[FR_QK_K / 8];
    uint8_t qs[FR_QK_K / 2];
} fr_block_q5_k;
/* 16 sub-blocks of 16, 8-bit signed scales, 6-bit quants (low 4 in ql, high 2 in qh) */
typedef struct {
    uint8_t ql[FR_QK_K / 2];
    uint8_t qh[FR_QK_K / 4];
    int8_t scales[FR_QK_K / 16];
    uint16_t d;
} fr_block_q6_k;
/* activation format for K-quant dots: float scale, bsums = sums of 16 qs each */
typedef struct {
    float d;
    int8_t qs[FR_QK_K];
    int16_t bsums[FR_QK_K / 16];
} fr_block_q8_k;

_Static_assert(sizeof(fr_block_q4_0) == 18, "q4_0 block size");
_Static_assert(sizeof(fr_block_q4_1) == 20, "q4_1 block size");
_Static_assert(sizeof(fr_block_q5_0) == 22, "q5_0 block size");
_Static_assert(sizeof(fr_block_q5_1) == 24, "q5_1 block size");
_Static_assert(sizeof(fr_block_q8_0) == 34, "q8_0 block size");
_Static_assert(sizeof(fr_block_q8_1) == 36, "q8_1 block size");
_Static_assert(sizeof(fr_block_q4_k) == 144, "q4_k block size");
_Static_assert(sizeof(fr_block_q5_k) == 176, "q5_k block size");
_Static_assert(sizeof(fr_block_q6_k) == 210, "q6_k block size");
_Static_assert(sizeof(fr_block_q8_k) == 292, "q8_k block size");

#define FR_DECL_TYPE(sfx) \
    void fr_to_float_##sfx(const void *x, float *y, int64_t n); \
    void fr_from_float_##sfx(const float *x, void *y, int64_t n); \
    void fr_vec_dot_##sfx(int n, float *s, const void *x, const void *y);

FR_DECL_TYPE(f32)
FR_DECL_TYPE(f16)
FR_DECL_TYPE(bf16)
FR_DECL_TYPE(q4_0)
FR_DECL_TYPE(q4_1)
FR_DECL_TYPE(q5_0)
FR_DECL_TYPE(q5_1)
FR_DECL_TYPE(q8_0)
FR_DECL_TYPE(q8_1)
FR_DECL_TYPE(q4_k)
FR_DECL_TYPE(q5_k)
FR_DECL_TYPE(q6_k)
FR_DECL_TYPE(q8_k)

#endif
