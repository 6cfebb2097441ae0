/* il_avx512.h - installer of the IL16 GEMM kernels (il_avx512.c); called by the
 * AVX-512 level only after dispatch checked the CPU. */
#ifndef FRUGAL_IL_AVX512_H
#define FRUGAL_IL_AVX512_H

#include <stddef.h>
#include <stdint.h>

#include "core/types.h"
#include "kernels/il_drive.h"

void fr_kernels_install_il_avx512(fr_type_traits *t);

/* The AVX-512 tiles' widest token count: 8 tokens x 16 rows of accumulators plus
 * one unpacked block fit the 32 zmm registers. The driver and the GEMM definition
 * are level-neutral (il_drive.h). */
#define FR_IL_T 8
#define FR_IL_DEFINE_GEMM(NAME, TILE, QK, GROUP_BLOCK, ACT_BLOCK) \
    FR_IL_DEFINE_GEMM_T(NAME, TILE, FR_IL_T, QK, GROUP_BLOCK, ACT_BLOCK)
/* The Q4_K and Q5_K IL16 GEMMs (il_k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_k_avx512(fr_type_traits *t);
/* The Q6_K IL16 GEMM (il_q6k_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_q6k_avx512(fr_type_traits *t);
/* The Q3_K and IQ4_XS IL16 GEMMs (il_lowbit_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_lowbit_avx512(fr_type_traits *t);
/* Their VBMI tiles (il_lowbit_vbmi.c) over t's Q3_K and IQ4_XS il_gemm, same results;
 * called by the above only where the CPU has AVX512_VBMI. */
void fr_kernels_install_il_lowbit_vbmi(fr_type_traits *t);
/* The F16 IL16 GEMM (il_f16_avx512.c); called by fr_kernels_install_il_avx512. */
void fr_kernels_install_il_f16_avx512(fr_type_traits *t);

#endif
