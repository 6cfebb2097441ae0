/* dispatch.h - run-time choice of SIMD kernels.
 *
 * core/types.c keeps the scalar kernels as an immutable reference table. The table
 * fr_type_traits_get() returns is a copy of it, made once (pthread_once) and then
 * overridden with the kernels of the best level this CPU and OS support. The
 * environment variable FRUGAL_KERNELS=scalar|avx2|avx512|neon forces a level; an
 * unknown or unsupported value prints one warning to stderr and falls back to the
 * best supported level.
 *
 * Levels and what they require (checked with CPUID and XGETBV, so a CPU whose OS
 * does not save the AVX/AVX-512 register state is treated as lacking them):
 *   AVX2:   AVX2 + FMA + F16C, OS saves YMM state.
 *   AVX512: AVX2 level + AVX-512 F/BW/VL/VNNI, OS saves ZMM and opmask state
 *           (AVX512_BF16, when present and compiled in, adds a BF16 dot).
 *   NEON:   any AArch64 build. */
#ifndef FRUGAL_DISPATCH_H
#define FRUGAL_DISPATCH_H

#include <stdint.h>

#include "core/types.h"

typedef enum fr_kernels_level {
    FR_KERNELS_SCALAR = 0,
    FR_KERNELS_AVX2 = 1,
    FR_KERNELS_AVX512 = 2,
    FR_KERNELS_NEON = 3,
    FR_KERNELS_LEVEL_COUNT = 4,
} fr_kernels_level;

/* Name of the active level ("scalar", "avx2", "avx512", "neon"). */
const char *fr_kernels_level_name(void);
/* The active level. */
int fr_kernels_get_level(void);
/* Name of any level id, or NULL for an unknown id. */
const char *fr_kernels_level_str(int level);
/* 1 if this build and this CPU can run the level, else 0. */
int fr_kernels_supported(int level);
/* Switch the active table to a level (for tests and benchmarks; not thread-safe
 * against concurrent kernel calls). Returns 0 on success, non-zero (and changes
 * nothing) when the level is unknown or unsupported. */
int fr_kernels_set_level(int level);
/* Traits of a type id with the kernels of the active dispatch level, or NULL if the
 * id is not a type we know the layout of (the reference: fr_type_traits_scalar). */
const fr_type_traits *fr_type_traits_get(uint32_t type);
/* The active table of frugal's own types (dispatch_private.c): it follows the kernel
 * level (including changes by fr_kernels_set_level): AVX-512 kernels at the AVX512
 * level, and at the AVX2 level when the CPU has AVX-512 F/BW/VL (these kernels need
 * no VNNI); otherwise scalar. */
const fr_type_traits *fr_private_traits_get(uint32_t type);

/* ---- internal: used by core/types.c and the per-ISA kernel files ---- */

/* The active table (FR_TYPE_COUNT entries), initialised on first use. */
const fr_type_traits *fr_kernels_table(void);
/* Each installer overrides the entries of `t` (a full copy of the scalar table)
 * it has kernels for and returns 1, or returns 0 and leaves `t` alone when the file
 * was compiled without the ISA (other architecture, old compiler). The caller must
 * have checked that the CPU supports the level: these files are compiled with
 * -mavx2 / -mavx512* and any instruction in them may fault otherwise. */
int fr_kernels_install_avx2(fr_type_traits *t);
/* The AVX2 level's softmax and SwiGLU (elem_avx2.c), called by the AVX2 installer;
 * does nothing when compiled without AVX2. */
void fr_kernels_install_elem_avx2(fr_type_traits *t);
int fr_kernels_install_avx512(fr_type_traits *t, int cpu_has_bf16);
int fr_kernels_install_neon(fr_type_traits *t);
/* AVX-512 installer of frugal's own types (private_avx512.c): overrides vec_dot in t
 * (indexed by id - FR_TYPE_PRIVATE_BASE). Returns 0 and changes nothing when
 * compiled without AVX-512. Call only when the CPU has AVX-512 F/BW/VL. */
int fr_private_install_avx512(fr_type_traits *t);

#endif
