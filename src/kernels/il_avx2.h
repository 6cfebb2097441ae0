/* il_avx2.h - installers of the AVX2 IL16 GEMM kernels (il_avx2.c, il_k_avx2.c,
 * il_q6k_avx2.c, il_f16_avx2.c, il_lowbit_avx2.c; compiled with the AVX2 level's -mavx2 -mfma
 * -mf16c). Called by the AVX2 installer (cpu_avx2.c) only after dispatch checked
 * the CPU. The AVX-512 level runs the AVX2 installer first, then overrides these
 * with its own. */
#ifndef FRUGAL_IL_AVX2_H
#define FRUGAL_IL_AVX2_H

#include "core/types.h"

/* Q4_0 and Q8_0, then the two below. */
void fr_kernels_install_il_avx2(fr_type_traits *t);
/* Q4_K and Q5_K (il_k_avx2.c). */
void fr_kernels_install_il_k_avx2(fr_type_traits *t);
/* Q6_K (il_q6k_avx2.c). */
void fr_kernels_install_il_q6k_avx2(fr_type_traits *t);
/* F16 (il_f16_avx2.c). */
void fr_kernels_install_il_f16_avx2(fr_type_traits *t);
/* Q3_K and IQ4_XS (il_lowbit_avx2.c). */
void fr_kernels_install_il_lowbit_avx2(fr_type_traits *t);

#endif
