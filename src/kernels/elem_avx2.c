/* elem_avx2.c - the element-wise F32 ops of the AVX2 level (softmax, SwiGLU),
 * compiled with the AVX2 level's flags and installed by cpu_avx2.c.
 *
 * Why: at AVX2 they ran the scalar references with libm's expf, one call per value:
 * on a Zen 3 VM the FFN activation of a 1.1B model's decode step took ~3 % of it.
 * As the AVX-512 ones (cpu_avx512.c), e^x is computed in double and rounded once to
 * float, so a value is the float nearest e^x, as expf's is: the softmax weights then
 * match the scalar path's (which matters where they are rounded to F16 next), and
 * SwiGLU's within rounding. Contract: within 1e-6 relative of fr_softmax / fr_swiglu
 * (test_kernels). */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>
#include <math.h>

#include "kernels/exp_poly.h"

/* e^x for 4 doubles (exp_poly.h), 2^n built in the exponent field. For the clamped
 * float inputs of exp256 (n in [-151, 129]) every result is a normal double, so the
 * product is exact, the same as the AVX-512 level's vscalefpd. */
static inline __m256d exp256_pd(__m256d x) {
    const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(FR_EXP_LOG2E)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(FR_EXP_LN2_HI), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(FR_EXP_LN2_LO), r);
    __m256d p = _mm256_set1_pd(fr_exp_taylor[0]);
    for (int k = 1; k < 13; k++) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(fr_exp_taylor[k]));
    const __m256i e = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)),
                                                         _mm256_set1_epi64x(1023)), 52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(e));
}

/* e^x for 8 floats, computed in double and rounded once. */
static inline __m256 exp256(__m256 x) {
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.8f)), _mm256_set1_ps(-104.0f));
    const __m128 lo = _mm256_cvtpd_ps(exp256_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    const __m128 hi = _mm256_cvtpd_ps(exp256_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    return _mm256_set_m128(hi, lo);
}

/* Lanes [0, left) of 8 (left may exceed 8): all-ones where a value is. */
static inline __m256i tail_mask(int left) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* As fr_softmax: max, exponentials summed in double, one multiply by the inverse. */
static void softmax_avx2(float *x, int n) {
    __m256 vm = _mm256_set1_ps(-INFINITY);
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        const __m256 v = _mm256_blendv_ps(vm, _mm256_maskload_ps(x + i, m), _mm256_castsi256_ps(m));
        vm = _mm256_max_ps(vm, v);
    }
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const __m256 mx = _mm256_set1_ps(_mm_cvtss_f32(m4));
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        const __m256 e = _mm256_and_ps(exp256(_mm256_sub_ps(_mm256_maskload_ps(x + i, m), mx)), _mm256_castsi256_ps(m));
        _mm256_maskstore_ps(x + i, m, e);
        s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    const __m256d s = _mm256_add_pd(s0, s1);
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    s2 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
    const __m256 inv = _mm256_set1_ps((float)(1.0 / _mm_cvtsd_f64(s2)));
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        _mm256_maskstore_ps(x + i, m, _mm256_mul_ps(_mm256_maskload_ps(x + i, m), inv));
    }
}

/* As fr_swiglu: g / (1 + e^-g) * u. */
static void swiglu_avx2(float *out, const float *g, const float *u, int n) {
    for (int i = 0; i < n; i += 8) {
        const __m256i m = tail_mask(n - i);
        const __m256 gv = _mm256_maskload_ps(g + i, m);
        const __m256 d = _mm256_add_ps(_mm256_set1_ps(1.0f), exp256(_mm256_sub_ps(_mm256_setzero_ps(), gv)));
        _mm256_maskstore_ps(out + i, m, _mm256_mul_ps(_mm256_div_ps(gv, d), _mm256_maskload_ps(u + i, m)));
    }
}

void fr_kernels_install_elem_avx2(fr_type_traits *t) {
    t[FR_TYPE_F32].softmax = softmax_avx2;
    t[FR_TYPE_F32].swiglu = swiglu_avx2;
}

#else

void fr_kernels_install_elem_avx2(fr_type_traits *t) { (void)t; }

#endif
