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
/* T as a compile-time constant for each tile shape (the accumulators stay in
 * registers); one dispatching function per format. */
#define FR_IL_TILE_SWITCH(CALL)                                                                                 \
    switch (T) {                                                                                             \
    case 1: CALL(1); break;                                                                                  \
    case 2: CALL(2); break;                                                                                  \
    case 3: CALL(3); break;                                                                                  \
    case 4: CALL(4); break;                                                                                  \
    case 5: CALL(5); break;                                                                                  \
    case 6: CALL(6); break;                                                                                  \
    case 7: CALL(7); break;                                                                                  \
    default: CALL(FR_IL_T); break;                                                                           \
    }

void fr_il_drive(fr_il_tile_fn tile, int nb, size_t group_bytes, size_t act_bytes, const void *w, int n_groups,
                 const void *yp, size_t yp_row, int n_tok, float *out, size_t ld);
/* The Q4_K IL16 GEMM (il_k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_k_avx512(fr_type_traits *t);

#endif
