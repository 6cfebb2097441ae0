/* il_lowbit_avx512.h - what the two AVX-512 IL16 Q3_K / IQ4_XS GEMM files share:
 * the packed activation block and the VNNI dot helpers. il_lowbit_avx512.c holds
 * the tiles for every AVX-512 VNNI CPU and the activation packing; il_lowbit_vbmi.c
 * the same tiles decoding with vpermb / vpmultishiftqb (AVX512_VBMI), installed
 * over them where the CPU has it. Include only from files built with the AVX-512
 * flags. */
#ifndef FRUGAL_IL_LOWBIT_AVX512_H
#define FRUGAL_IL_LOWBIT_AVX512_H

#include <immintrin.h>
#include <stdint.h>

#include "core/quant.h"
#include "core/quant_lowbit.h"
#include "core/types.h"

/* One activation super-block as both tiles read it (from a Q8_K block). */
typedef struct {
    int8_t qs[FR_QK_K];
    int32_t c[16]; /* Q3_K: -4 S_j per 16 values; IQ4_XS: -128 S_j per 32 (j < 8) */
    float d;
    uint8_t pad[60]; /* 384 bytes: 4-byte broadcasts never straddle a line */
} il_act_lb;
_Static_assert(sizeof(il_act_lb) == 384, "il_act_lb layout");
_Static_assert(sizeof(il_act_lb) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

#define FR_INLINE static inline __attribute__((always_inline))
#define Q3_SB (16 * (int)sizeof(fr_block_q3_k))
#define X4_SB (16 * (int)sizeof(fr_block_iq4_xs))

/* acc + dot(w, 4 bytes at p broadcast), the broadcast embedded (see il_k_avx512.c:
 * GCC 12 would issue a separate vpbroadcastd per vpdpbusd). */
static inline __m512i dpb(__m512i acc, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t(*)[1])p));
    return acc;
}

/* One 32-value sub-block of 16 rows against one token's activations q: the first 16
 * values (w[0..3]) accumulate into *s0, the last 16 (w[4..7]) into *s1, two chains
 * interleaved so the dot-product units overlap. */
static inline void dpb_sub(__m512i *s0, __m512i *s1, const __m512i *w, const int8_t *q) {
    __m512i a = *s0, b = *s1;
    for (int i = 0; i < 4; i++) {
        a = dpb(a, w[i], q + 4 * i);
        b = dpb(b, w[4 + i], q + 16 + 4 * i);
    }
    *s0 = a;
    *s1 = b;
}

#endif
