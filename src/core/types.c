/* types.c - the table of tensor types (ids, names, block layout, kernels).
 * Function pointers are the scalar references from core/quant.c; types we know
 * the layout of but cannot compute with have supported = false, so files using
 * them are rejected by name instead of by a vague "bad type". */
#include "core/types.h"
#include "core/quant.h"
#include "core/quant_act.h"
#include "core/quant_lowbit.h"
#include "core/quant_private.h"

#include <math.h>
#include <string.h>

#define LAYOUT(id, nm, bs, ts) [id] = {.name = nm, .blck_size = bs, .type_size = ts}
/* designated fields: the struct keeps growing (gemm, row_overhead) and clang flags
 * positional initializers that stop short of its end */
#define TYPE(nm, bs, ts, sup, tf, ff, vdt, vd, act)                                              \
    {.name = nm, .blck_size = bs, .type_size = ts, .supported = sup, .to_float = tf, .from_float = ff, \
     .vec_dot_type = vdt, .vec_dot = vd, .act_from_float = act}

static const fr_type_traits k_traits[FR_TYPE_COUNT] = {
    [FR_TYPE_F32] = TYPE("F32", 1, 4, true, fr_to_float_f32, fr_from_float_f32, FR_TYPE_F32, fr_vec_dot_f32, NULL),
    [FR_TYPE_F16] = TYPE("F16", 1, 2, true, fr_to_float_f16, fr_from_float_f16, FR_TYPE_F16, fr_vec_dot_f16, NULL),
    [FR_TYPE_BF16] = TYPE("BF16", 1, 2, true, fr_to_float_bf16, fr_from_float_bf16, FR_TYPE_BF16, fr_vec_dot_bf16, NULL),
    [FR_TYPE_Q4_0] = TYPE("Q4_0", 32, 18, true, fr_to_float_q4_0, fr_from_float_q4_0, FR_TYPE_Q8_0, fr_vec_dot_q4_0, NULL),
    [FR_TYPE_Q4_1] = TYPE("Q4_1", 32, 20, true, fr_to_float_q4_1, fr_from_float_q4_1, FR_TYPE_Q8_1, fr_vec_dot_q4_1, NULL),
    [FR_TYPE_Q5_0] = TYPE("Q5_0", 32, 22, true, fr_to_float_q5_0, fr_from_float_q5_0, FR_TYPE_Q8_0, fr_vec_dot_q5_0, NULL),
    [FR_TYPE_Q5_1] = TYPE("Q5_1", 32, 24, true, fr_to_float_q5_1, fr_from_float_q5_1, FR_TYPE_Q8_1, fr_vec_dot_q5_1, NULL),
    [FR_TYPE_Q8_0] = TYPE("Q8_0", 32, 34, true, fr_to_float_q8_0, fr_from_float_q8_0, FR_TYPE_Q8_0, fr_vec_dot_q8_0, fr_act_quantize_q8_0),
    [FR_TYPE_Q8_1] = TYPE("Q8_1", 32, 36, false, fr_to_float_q8_1, fr_from_float_q8_1, FR_TYPE_Q8_1, fr_vec_dot_q8_1, fr_act_quantize_q8_1),
    [FR_TYPE_Q4_K] = TYPE("Q4_K", 256, 144, true, fr_to_float_q4_k, fr_from_float_q4_k, FR_TYPE_Q8_K, fr_vec_dot_q4_k, NULL),
    [FR_TYPE_Q5_K] = TYPE("Q5_K", 256, 176, true, fr_to_float_q5_k, fr_from_float_q5_k, FR_TYPE_Q8_K, fr_vec_dot_q5_k, NULL),
    [FR_TYPE_Q6_K] = TYPE("Q6_K", 256, 210, true, fr_to_float_q6_k, fr_from_float_q6_k, FR_TYPE_Q8_K, fr_vec_dot_q6_k, NULL),
    [FR_TYPE_Q8_K] = TYPE("Q8_K", 256, 292, true, fr_to_float_q8_k, fr_from_float_q8_k, FR_TYPE_Q8_K, fr_vec_dot_q8_k, NULL),
    /* low-bit types (core/quant_lowbit.h); the i-quants below IQ4 are read-only */
    [FR_TYPE_Q2_K] = TYPE("Q2_K", 256, 84, true, fr_to_float_q2_k, fr_from_float_q2_k, FR_TYPE_Q8_K, fr_vec_dot_q2_k, NULL),
    [FR_TYPE_Q3_K] = TYPE("Q3_K", 256, 110, true, fr_to_float_q3_k, fr_from_float_q3_k, FR_TYPE_Q8_K, fr_vec_dot_q3_k, NULL),
    [FR_TYPE_IQ4_NL] = TYPE("IQ4_NL", 32, 18, true, fr_to_float_iq4_nl, fr_from_float_iq4_nl, FR_TYPE_Q8_0, fr_vec_dot_iq4_nl, NULL),
    [FR_TYPE_IQ4_XS] = TYPE("IQ4_XS", 256, 136, true, fr_to_float_iq4_xs, fr_from_float_iq4_xs, FR_TYPE_Q8_K, fr_vec_dot_iq4_xs, NULL),
    [FR_TYPE_IQ3_S] = TYPE("IQ3_S", 256, 110, true, fr_to_float_iq3_s, fr_from_float_iq3_s, FR_TYPE_Q8_K, fr_vec_dot_iq3_s, NULL),
    [FR_TYPE_IQ3_XXS] = TYPE("IQ3_XXS", 256, 98, true, fr_to_float_iq3_xxs, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq3_xxs, NULL),
    [FR_TYPE_IQ2_S] = TYPE("IQ2_S", 256, 82, true, fr_to_float_iq2_s, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq2_s, NULL),
    [FR_TYPE_IQ2_XS] = TYPE("IQ2_XS", 256, 74, true, fr_to_float_iq2_xs, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq2_xs, NULL),
    [FR_TYPE_IQ2_XXS] = TYPE("IQ2_XXS", 256, 66, true, fr_to_float_iq2_xxs, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq2_xxs, NULL),
    [FR_TYPE_IQ1_M] = TYPE("IQ1_M", 256, 56, true, fr_to_float_iq1_m, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq1_m, NULL),
    [FR_TYPE_IQ1_S] = TYPE("IQ1_S", 256, 50, true, fr_to_float_iq1_s, NULL, FR_TYPE_Q8_K, fr_vec_dot_iq1_s, NULL),
    /* layouts known, kernels not (yet): rejected by name at load */
    LAYOUT(24, "I8", 1, 1),
    LAYOUT(25, "I16", 1, 2),
    LAYOUT(26, "I32", 1, 4),
    LAYOUT(27, "I64", 1, 8),
    LAYOUT(28, "F64", 1, 8),
    LAYOUT(34, "TQ1_0", 256, 54),
    LAYOUT(35, "TQ2_0", 256, 66),
    LAYOUT(39, "MXFP4", 32, 17),
};

/* The reference table itself: tests compare every SIMD kernel against it. */
const fr_type_traits *fr_type_traits_scalar(uint32_t type) {
    if (type >= FR_TYPE_PRIVATE_BASE) return fr_private_traits_scalar(type);
    if (type >= FR_TYPE_COUNT || !k_traits[type].name) return NULL;
    return &k_traits[type];
}

const char *fr_type_name(uint32_t type) {
    static const char *removed[FR_TYPE_COUNT] = {
        [4] = "Q4_2 (removed)", [5] = "Q4_3 (removed)", [31] = "Q4_0_4_4 (removed)",
        [32] = "Q4_0_4_8 (removed)", [33] = "Q4_0_8_8 (removed)",
        [36] = "IQ4_NL_4_4 (removed)", [37] = "IQ4_NL_4_8 (removed)", [38] = "IQ4_NL_8_8 (removed)",
    };
    if (type >= FR_TYPE_PRIVATE_BASE) {
        const fr_type_traits *p = fr_private_traits_scalar(type);
        return p ? p->name : NULL;
    }
    if (type >= FR_TYPE_COUNT) return NULL;
    if (k_traits[type].name) return k_traits[type].name;
    return removed[type];
}

size_t fr_row_size(fr_type type, int64_t n) {
    const fr_type_traits *t = fr_type_traits_scalar(type); /* sizes do not depend on the kernels */
    if (!t || n < 0 || n % t->blck_size) return 0;
    return t->row_overhead + (size_t)(n / t->blck_size) * t->type_size;
}

/* ---- half / bfloat16 conversions, written out bit by bit so they do not depend on
 * compiler support for _Float16 and round exactly as the hardware (RNE) does. */

static inline uint32_t f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float fr_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000u | (man << 13)); /* inf/nan */
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t fr_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520: inf */
    if (ax < 0x38800000u) {
        /* result is subnormal (or zero): scale so the FPU does the RNE rounding */
        float v = bits_f32(ax) * 16777216.0f; /* * 2^24 -> units of 2^-24 */
        uint32_t m = (uint32_t)lrintf(v);
        return (uint16_t)(sign | m);
    }
    uint32_t e = (ax >> 23) - 112, m = ax & 0x7fffff;
    uint32_t h = (e << 10) | (m >> 13);
    uint32_t rest = m & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++; /* carries into exp correctly */
    return (uint16_t)(sign | h);
}

float fr_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

uint16_t fr_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}
