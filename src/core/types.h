/* types.h - tensor element types and their traits.
 *
 * Type ids are GGUF's (ggml_type), so a tensor's type in a file maps to a row of
 * the traits table directly. Quantized types store blocks of `blck_size` values in
 * `type_size` bytes; the packed block structs live in core/quant.h.
 *
 * Matrix-vector products follow ggml's scheme so our numerics match llama.cpp:
 * the activation vector is first converted to the weight type's `vec_dot_type`
 * (F32 weights: F32; F16: F16; BF16: BF16; Q4_0/Q5_0/Q8_0: Q8_0; Q4_1/Q5_1: Q8_1;
 * K-quants and i-quants: Q8_K; IQ4_NL: Q8_0), then `vec_dot` takes one weight row and the converted vector.
 * The table in types.c holds the scalar reference implementations; SIMD variants
 * (kernels/cpu_*.c) provide the same signatures and are chosen once at run time
 * (kernels/dispatch.h: fr_type_traits_get returns the active table; core itself only
 * knows the reference table, so it never depends on the kernels). */
#ifndef FRUGAL_TYPES_H
#define FRUGAL_TYPES_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum fr_type {
    FR_TYPE_F32 = 0,
    FR_TYPE_F16 = 1,
    FR_TYPE_Q4_0 = 2,
    FR_TYPE_Q4_1 = 3,
    FR_TYPE_Q5_0 = 6,
    FR_TYPE_Q5_1 = 7,
    FR_TYPE_Q8_0 = 8,
    FR_TYPE_Q8_1 = 9,
    FR_TYPE_Q2_K = 10,
    FR_TYPE_Q3_K = 11,
    FR_TYPE_Q4_K = 12,
    FR_TYPE_Q5_K = 13,
    FR_TYPE_Q6_K = 14,
    FR_TYPE_Q8_K = 15,
    FR_TYPE_IQ2_XXS = 16,
    FR_TYPE_IQ2_XS = 17,
    FR_TYPE_IQ3_XXS = 18,
    FR_TYPE_IQ1_S = 19,
    FR_TYPE_IQ4_NL = 20,
    FR_TYPE_IQ3_S = 21,
    FR_TYPE_IQ2_S = 22,
    FR_TYPE_IQ4_XS = 23,
    FR_TYPE_IQ1_M = 29,
    FR_TYPE_BF16 = 30,
    FR_TYPE_COUNT = 40, /* size of the id space we index (GGUF ids < 40) */
    /* frugal's own types (core/quant_private.h): ids far above GGUF's so they never
     * collide with a type llama.cpp adds; other engines refuse files using them. */
    FR_TYPE_PRIVATE_BASE = 1024,
    FR_TYPE_I8C = 1024,  /* int8 per output channel, one F16 scale per row */
    FR_TYPE_NF4 = 1025,  /* 4-bit NormalFloat, 64-value blocks, double-quantized scales */
    FR_TYPE_FP8O = 1026, /* FP8 E4M3 blocks of 128 with up to 4 F16 outliers */
    FR_TYPE_PRIVATE_END = 1027,
} fr_type;

/* x: n values (n a multiple of blck_size) of this type -> y: n floats */
typedef void (*fr_to_float_fn)(const void *x, float *y, int64_t n);
/* x: n floats -> y: n values of this type (n a multiple of blck_size) */
typedef void (*fr_from_float_fn)(const float *x, void *y, int64_t n);
/* *s = dot(x, y) over n values; x: a row of this type, y: n values of vec_dot_type */
typedef void (*fr_vec_dot_fn)(int n, float *s, const void *x, const void *y);
/* Optional blocked matrix kernels (SIMD levels only; see kernels/ops.c). gemm_pack
 * rewrites one activation row, already converted to vec_dot_type, into the layout the
 * gemm kernel reads (at most 2 * fr_row_size(vec_dot_type, n) + 256 bytes). gemm
 * computes out[t * ld + r] = dot(W row r, activation t) for rows [0, n_rows) of the
 * weight rows at w (stride w_row bytes) and tokens [0, n_tok) of the packed rows at yp
 * (stride yp_row bytes). Each output must come out bit-identical whatever n_rows and
 * n_tok are (tiles are formed inside), so the thread split never changes results. */
typedef void (*fr_gemm_pack_fn)(const void *yq, void *yp, int64_t n);
typedef void (*fr_gemm_fn)(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row,
                           int n_tok, float *out, size_t ld);
/* GEMM over weights repacked in groups of 16 rows (kernels/interleave.h): out[t * ld
 * + r] = dot(row r, activation t) for rows [0, 16 * n_groups) of the groups at w
 * (each 16 * row bytes), activations packed by il_pack (same size bound as
 * gemm_pack). Bit-identical outputs whatever n_groups and n_tok are. */
typedef void (*fr_il_gemm_fn)(int n, const void *w, int n_groups, const void *yp, size_t yp_row, int n_tok,
                              float *out, size_t ld);

typedef struct fr_type_traits {
    const char *name;          /* "F32", "Q4_K", ... as GGUF tools print them */
    int blck_size;             /* values per block (1 for F32/F16/BF16) */
    size_t type_size;          /* bytes per block */
    bool supported;            /* we can read (dequantize + dot) this type */
    fr_to_float_fn to_float;
    fr_from_float_fn from_float; /* NULL when we cannot write this type */
    fr_type vec_dot_type;
    fr_vec_dot_fn vec_dot;
    /* Quantizer for activations when this type is a vec_dot_type, if it differs from
     * from_float: llama.cpp's x86 CPU path quantizes activations to Q8_0/Q8_1 with
     * id = 127/amax and round-half-even, while files use the reference quantizer
     * (1/d, round-half-away). Matching the former keeps our logits bit-close to
     * llama.cpp's. NULL: use from_float. */
    fr_from_float_fn act_from_float;
    /* gemm NULL: the driver calls vec_dot per row and token. gemm_pack NULL: gemm
     * reads the converted rows as they are. */
    fr_gemm_pack_fn gemm_pack;
    fr_gemm_fn gemm;
    /* Kernels for the interleaved layout; il_gemm NULL: weights of this type are not
     * repacked at load, and repacked ones (from another level) are read row by row. */
    fr_gemm_pack_fn il_pack;
    fr_il_gemm_fn il_gemm;
    /* Attention over a KV cache of this type (optional; NULL: vec_dot / to_float per
     * row and head). attn_kdot: s[h * s_stride + t] = dot(krows[t], q + h * n) for
     * t < n_rows, h < nh, where q holds the F32 values of the query already converted
     * to vec_dot_type, with exactly the operations of vec_dot. attn_vacc: for each row t < n_rows in order, acc[h * n + d]
     * += p[h * p_stride + t] * v_t[d] for h < nh, d < n (v_t: vrows[t] as F32), a
     * multiply then an add, exactly as that plain C loop. */
    /* Element-wise F32 ops, set on the FR_TYPE_F32 entry only (of the active table:
     * the scalar fr_softmax / fr_swiglu of kernels/ops.h unless a level overrides
     * them; NULL in fr_type_traits_scalar's table). Within 2e-6 relative of them (a
     * vector exp of ~1 ulp instead of libm's expf; ggml uses one too). */
    void (*softmax)(float *x, int n);
    void (*swiglu)(float *out, const float *g, const float *u, int n);
    void (*attn_kdot)(int n, const void *const *krows, int n_rows, const float *q, int nh, float *s,
                      size_t s_stride);
    void (*attn_vacc)(int n, const void *const *vrows, int n_rows, const float *p, size_t p_stride, int nh,
                      float *acc);
    /* Bytes every row carries besides its blocks (a per-row header, e.g. I8C's F16
     * scale; core/quant_private.h); 0 for all GGUF types. A row is row_overhead +
     * n/blck_size*type_size bytes, and to_float/from_float/vec_dot of a type with a
     * row header take exactly one row. */
    size_t row_overhead;
} fr_type_traits;

/* The scalar reference traits of a type id (never overridden; layouts and sizes are
 * the same at every kernel level), or NULL if the id is not a type we know the
 * layout of. The active kernels: fr_type_traits_get (kernels/dispatch.h). */
const fr_type_traits *fr_type_traits_scalar(uint32_t type);
/* Name of any id ever used by GGUF (also for types we do not support, e.g. "IQ2_XXS"),
 * or NULL for ids that were never assigned. */
const char *fr_type_name(uint32_t type);
/* Bytes for a row of n values; n must be a multiple of the block size. */
size_t fr_row_size(fr_type type, int64_t n);

/* Scalar conversions used everywhere (IEEE half and bfloat16, round-to-nearest-even). */
float fr_f16_to_f32(uint16_t h);
uint16_t fr_f32_to_f16(float f);
float fr_bf16_to_f32(uint16_t h);
uint16_t fr_f32_to_bf16(float f);

#endif
