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

/* The tile both files build: 16 rows x T tokens over the whole row of a group, iq4
 * selecting the format. Per block: the scales decoded once into sc[SC_N] of SC_T by
 * SCALES(iq4, blk, sc), then the 8 sub-blocks (IQ4_XS) or pairs (Q3_K) by
 * SUB(iq4, T, j, blk, sc, a, isum), then acc += isum * d_w * d_y in float, in block
 * order. The block's lines are prefetched an eighth per sub-block (fr_il_prefetch_slice,
 * il_drive.h, which the includer brings in). */
#define FR_IL_LB_TILE(name, SC_T, SC_N, SCALES, SUB)                                                          \
    FR_INLINE void name(int iq4, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out, \
                        size_t ld) {                                                                            \
        const size_t sb = iq4 ? X4_SB : Q3_SB;                                                                  \
        __m512 acc[FR_IL_T];                                                                                    \
        for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();                                               \
        for (int b = 0; b < nb; b++) {                                                                          \
            const uint8_t *blk = g + (size_t)b * sb;                                                            \
            const il_act_lb *a[FR_IL_T];                                                                        \
            __m512i isum[FR_IL_T];                                                                              \
            for (int t = 0; t < T; t++) {                                                                       \
                a[t] = (const il_act_lb *)(yp + (size_t)t * yp_row) + b;                                        \
                isum[t] = _mm512_setzero_si512();                                                               \
            }                                                                                                   \
            SC_T sc[SC_N] __attribute__((aligned(64)));                                                         \
            SCALES(iq4, blk, sc);                                                                               \
            /* a loop, not unrolled: unrolled, GCC interleaves the sub-blocks and spills */                     \
            _Pragma("GCC unroll 1") for (int j = 0; j < 8; j++) {                                               \
                fr_il_prefetch_slice(blk, sb, j, 8);                                                            \
                SUB(iq4, T, j, blk, sc, a, isum);                                                               \
            }                                                                                                   \
            const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));                        \
            for (int t = 0; t < T; t++)                                                                         \
                acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(isum[t]), dw), _mm512_set1_ps(a[t]->d), \
                                         acc[t]);                                                               \
        }                                                                                                       \
        for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ld, acc[t]);                             \
    }

#endif
