/* dispatch_private.c - the active kernels of frugal's own types (core/quant_private.h):
 * the scalar reference table, or its AVX-512 copy where the CPU has AVX-512 F/BW/VL
 * (kernels/private_avx512.c), which they need even when the main dispatch stops at
 * the AVX2 level for want of VNNI. */
#include <pthread.h>
#include <string.h>

#include "core/quant_private.h"
#include "kernels/dispatch.h"

enum { N_PRIVATE = FR_TYPE_PRIVATE_END - FR_TYPE_PRIVATE_BASE };

static fr_type_traits g_avx512[N_PRIVATE];
static int g_avx512_ok;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

/* These kernels need AVX-512 F/BW/VL (+AVX2/FMA/F16C), not VNNI: on a CPU with
 * those but without VNNI, dispatch stops at the AVX2 level, and without this check
 * our types would fall back to scalar there. (__builtin_cpu_supports also checks
 * that the OS saves the ZMM state.) */
static int cpu_has_avx512_fbw(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return 0;
#endif
}

static void init_avx512(void) {
    memcpy(g_avx512, fr_private_traits_scalar(FR_TYPE_PRIVATE_BASE), sizeof g_avx512);
    g_avx512_ok = fr_private_install_avx512(g_avx512);
}

const fr_type_traits *fr_private_traits_get(uint32_t type) {
    if (type < FR_TYPE_PRIVATE_BASE || type >= FR_TYPE_PRIVATE_END) return NULL;
    const int level = fr_kernels_get_level();
    if (level == FR_KERNELS_AVX512 || (level == FR_KERNELS_AVX2 && cpu_has_avx512_fbw())) {
        pthread_once(&g_once, init_avx512);
        if (g_avx512_ok) return &g_avx512[type - FR_TYPE_PRIVATE_BASE];
    }
    return fr_private_traits_scalar(type);
}
