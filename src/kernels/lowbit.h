/* lowbit.h - SIMD kernels of the low-bit GGUF types (core/quant_lowbit.h):
 * lowbit_avx2.c and lowbit_avx512.c install theirs into a level's table. Same
 * contract as dispatch.h's installers: call only after the CPU check; return 1 when
 * installed, 0 (table untouched) when the file was compiled without the ISA. */
#ifndef FRUGAL_LOWBIT_H
#define FRUGAL_LOWBIT_H

#include "core/types.h"

int fr_kernels_install_lowbit_avx2(fr_type_traits *t);
int fr_kernels_install_lowbit_avx512(fr_type_traits *t);
/* the prefill GEMMs of lowbit_gemm_avx512.c (same contract) */
int fr_kernels_install_lowbit_gemm_avx512(fr_type_traits *t);

#endif
