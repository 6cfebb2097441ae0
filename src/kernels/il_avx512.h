/* il_avx512.h - installer of the IL16 GEMM kernels (il_avx512.c); called by the
 * AVX-512 level only after dispatch checked the CPU. */
#ifndef FRUGAL_IL_AVX512_H
#define FRUGAL_IL_AVX512_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"

void fr_kernels_install_il_avx512(fr_type_traits *t);

/* One tile of a format's IL16 GEMM: the 16 rows of the group at g times tokens
 * [0, T) (T <= FR_IL_T) of the packed activations at yt, into out[t * ld + r]. */
#define FR_IL_T 8
typedef void (*fr_il_tile_fn)(int T, int nb, const uint8_t *g, const uint8_t *yt, size_t yp_row, float *out,
                              size_t ld);

/* The loop every IL16 GEMM shares: groups one by one (group_bytes each), tokens in
 * tiles of FR_IL_T, and tokens in as few, even chunks as keep each chunk's packed
 * activations (act_bytes read per token) within ~768 KiB of L2 while the groups
 * stream past them (a short last chunk would re-read every weight for a handful of
 * tokens). nb: blocks per row, passed on to the tile. */
void fr_il_drive(fr_il_tile_fn tile, int nb, size_t group_bytes, size_t act_bytes, const void *w, int n_groups,
                 const void *yp, size_t yp_row, int n_tok, float *out, size_t ld);

/* A format's fr_il_gemm_fn NAME over its always-inline tile TILE(T, nb, g, yt, yp_row,
 * out, ld): a dispatcher gives the tile T as a compile-time constant for each shape
 * (the accumulators stay in registers), and fr_il_drive runs it. QK: values per
 * block; GROUP_BLOCK: bytes of 16 rows' block; ACT_BLOCK: packed activation bytes per
 * block. */
#define FR_IL_DEFINE_GEMM(NAME, TILE, QK, GROUP_BLOCK, ACT_BLOCK)                                             \
    static void NAME##_tile(int T, int nb, const uint8_t *g, const uint8_t *yt, size_t yp_row, float *o,      \
                            size_t ld) {                                                                     \
        switch (T) {                                                                                         \
        case 1: TILE(1, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 2: TILE(2, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 3: TILE(3, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 4: TILE(4, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 5: TILE(5, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 6: TILE(6, nb, g, yt, yp_row, o, ld); break;                                                    \
        case 7: TILE(7, nb, g, yt, yp_row, o, ld); break;                                                    \
        default: TILE(FR_IL_T, nb, g, yt, yp_row, o, ld); break;                                             \
        }                                                                                                    \
    }                                                                                                        \
    static void NAME(int n, const void *w, int n_groups, const void *yp, size_t yp_row, int n_tok, float *out, \
                     size_t ld) {                                                                            \
        const int nb = n / (QK);                                                                             \
        fr_il_drive(NAME##_tile, nb, (size_t)nb * (GROUP_BLOCK), (size_t)nb * (ACT_BLOCK), w, n_groups, yp,   \
                    yp_row, n_tok, out, ld);                                                                 \
    }
/* The Q4_K IL16 GEMM (il_k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_k_avx512(fr_type_traits *t);
/* The Q6_K IL16 GEMM (il_q6k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_q6k_avx512(fr_type_traits *t);

#endif
