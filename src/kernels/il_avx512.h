/* il_avx512.h - installer of the IL16 GEMM kernels (il_avx512.c); called by the
 * AVX-512 level only after dispatch checked the CPU. */
#ifndef FRUGAL_IL_AVX512_H
#define FRUGAL_IL_AVX512_H

#include "core/types.h"

void fr_kernels_install_il_avx512(fr_type_traits *t);
/* The Q4_K IL16 GEMM (il_k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_k_avx512(fr_type_traits *t);

#endif
