/* dispatch.c - CPU feature detection and the active kernel table (see dispatch.h). */
#include "kernels/dispatch.h"

#include "kernels/lowbit.h"
#include "kernels/ops.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FR_X86 1
#endif

static fr_type_traits g_active[FR_TYPE_COUNT];
static int g_level = FR_KERNELS_SCALAR;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *const k_names[FR_KERNELS_LEVEL_COUNT] = {"scalar", "avx2", "avx512", "neon"};

typedef struct {
    int avx2, avx512, avx512bf16;
} cpu_caps;

#ifdef FR_X86
/* XCR0 via xgetbv; only valid once CPUID says the OS enabled XSAVE (OSXSAVE). Written
 * as raw asm so this file needs no -mxsave. */
static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}
#endif

/* What the CPU and OS support, computed once per call (cheap; called at init). */
static cpu_caps detect(void) {
    cpu_caps c = {0, 0, 0};
#ifdef FR_X86
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return c;
    const int fma = (cx >> 12) & 1, osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1,
              f16c = (cx >> 29) & 1;
    if (!osxsave || !avx) return c;
    const uint64_t xcr0 = read_xcr0();
    const int os_ymm = (xcr0 & 0x6) == 0x6;    /* SSE + AVX state */
    const int os_zmm = (xcr0 & 0xe6) == 0xe6;  /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (__get_cpuid_max(0, NULL) < 7) return c;
    __cpuid_count(7, 0, a, b, cx, d);
    const int avx2 = (b >> 5) & 1, f = (b >> 16) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    const int vnni = (cx >> 11) & 1, bmi2 = (b >> 8) & 1; /* pdep/pext: the lattice types' sign masks */
    const unsigned max_sub = a;
    int bf16 = 0;
    if (max_sub >= 1) {
        __cpuid_count(7, 1, a, b, cx, d);
        bf16 = (a >> 5) & 1;
    }
    c.avx2 = os_ymm && avx2 && fma && f16c;
    c.avx512 = c.avx2 && os_zmm && f && bw && vl && vnni && bmi2;
    c.avx512bf16 = c.avx512 && bf16;
#endif
    return c;
}

/* Fill `t` with the scalar table plus the kernels of `level`. Returns 0 when the
 * level cannot run here (t then holds garbage the caller must not publish). */
static int build_table(fr_type_traits *t, int level) {
    for (uint32_t i = 0; i < FR_TYPE_COUNT; i++) {
        const fr_type_traits *s = fr_type_traits_scalar(i);
        if (s) t[i] = *s;
        else memset(&t[i], 0, sizeof(t[i]));
    }
    /* the element-wise ops are always set, so callers need no fallback */
    t[FR_TYPE_F32].softmax = fr_softmax;
    t[FR_TYPE_F32].swiglu = fr_swiglu;
    const cpu_caps c = detect();
    switch (level) {
    case FR_KERNELS_SCALAR: return 1;
    case FR_KERNELS_AVX2:
        if (!c.avx2 || !fr_kernels_install_avx2(t)) return 0;
        fr_kernels_install_lowbit_avx2(t); /* low-bit GGUF types (kernels/lowbit.h) */
        fr_kernels_install_lowbit_gemm_avx2(t);
        return 1;
    case FR_KERNELS_AVX512:
        /* AVX-512 only overrides the hot kernels; the rest stay AVX2 */
        if (!c.avx512 || !fr_kernels_install_avx2(t) || !fr_kernels_install_avx512(t, c.avx512bf16)) return 0;
        fr_kernels_install_lowbit_avx2(t);
        fr_kernels_install_lowbit_avx512(t);
        fr_kernels_install_lowbit_gemm_avx512(t);
        return 1;
    case FR_KERNELS_NEON: return fr_kernels_install_neon(t);
    default: return 0;
    }
}

int fr_kernels_supported(int level) {
    static fr_type_traits tmp[FR_TYPE_COUNT]; /* build_table is the single source of truth */
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    if (level < 0 || level >= FR_KERNELS_LEVEL_COUNT) return 0;
    pthread_mutex_lock(&mu);
    const int ok = build_table(tmp, level);
    pthread_mutex_unlock(&mu);
    return ok;
}

static int best_level(void) {
    for (int l = FR_KERNELS_LEVEL_COUNT - 1; l > 0; l--)
        if (fr_kernels_supported(l)) return l;
    return FR_KERNELS_SCALAR;
}

static void init_once(void) {
    const char *env = getenv("FRUGAL_KERNELS");
    int level = -1;
    if (env && *env) {
        for (int l = 0; l < FR_KERNELS_LEVEL_COUNT; l++)
            if (!strcmp(env, k_names[l])) level = l;
        if (level < 0 || !fr_kernels_supported(level)) {
            fprintf(stderr, "frugal: FRUGAL_KERNELS=%s is %s here; using %s\n", env,
                    level < 0 ? "not a known level (scalar|avx2|avx512|neon)" : "not supported",
                    k_names[best_level()]);
            level = -1;
        }
    }
    if (level < 0) level = best_level();
    if (!build_table(g_active, level)) { /* cannot happen: level was checked */
        build_table(g_active, FR_KERNELS_SCALAR);
        level = FR_KERNELS_SCALAR;
    }
    g_level = level;
}

const fr_type_traits *fr_kernels_table(void) {
    pthread_once(&g_once, init_once);
    return g_active;
}

int fr_kernels_get_level(void) {
    pthread_once(&g_once, init_once);
    return g_level;
}

const char *fr_kernels_level_name(void) { return k_names[fr_kernels_get_level()]; }

const char *fr_kernels_level_str(int level) {
    return level >= 0 && level < FR_KERNELS_LEVEL_COUNT ? k_names[level] : NULL;
}

int fr_kernels_set_level(int level) {
    pthread_once(&g_once, init_once);
    fr_type_traits t[FR_TYPE_COUNT];
    if (level < 0 || level >= FR_KERNELS_LEVEL_COUNT || !build_table(t, level)) return 1;
    memcpy(g_active, t, sizeof(t));
    g_level = level;
    return 0;
}

/* The active table: same content except the kernel pointers of the dispatch level
 * (kernels/dispatch.c). */
const fr_type_traits *fr_type_traits_get(uint32_t type) {
    if (type >= FR_TYPE_PRIVATE_BASE) return fr_private_traits_get(type);
    if (type >= FR_TYPE_COUNT) return NULL;
    if (!fr_type_traits_scalar(type)) return NULL;
    return &fr_kernels_table()[type];
}
