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

/* (block structs: added by core/quant.c's author below) */

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
