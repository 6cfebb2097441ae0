/* lowbit.h - SIMD kernels of the low-bit GGUF types (core/quant_lowbit.h):
 * lowbit_avx2.c and lowbit_avx512.c install theirs into a level's table. Same
 * contract as dispatch.h's installers: call only after the CPU check; return 1 when
 * installed, 0 (table untouched) when the file was compiled without the ISA. */
#ifndef FRUGAL_LOWBIT_H
#define FRUGAL_LOWBIT_H

#include "core/types.h"

int fr_kernels_install_lowbit_avx2(fr_type_traits *t);
int fr_kernels_install_lowbit_avx512(fr_type_traits *t);
/* the prefill GEMMs of lowbit_gemm_avx2.c (installed at the AVX2 level only; the
 * AVX-512 level has its own) and lowbit_gemm_avx512.c (same contract) */
int fr_kernels_install_lowbit_gemm_avx2(fr_type_traits *t);
/* The AVX2 dot of `type` whose result is bit-identical to lowbit_gemm_avx2.c's for one
 * token (same integer lanes, same float operations up to a power-of-two factor), so
 * the GEMM can hand decode to it; NULL for the types without one. */
fr_vec_dot_fn fr_lowbit_avx2_decode_dot(fr_type type);
int fr_kernels_install_lowbit_gemm_avx512(fr_type_traits *t);

#endif
