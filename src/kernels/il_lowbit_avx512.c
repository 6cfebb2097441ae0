/* il_lowbit_avx512.c - AVX-512 VNNI GEMMs over IL16 Q3_K and IQ4_XS weights
 * (layouts in kernels/interleave.h), compiled with the AVX-512 flags and installed
 * by il_avx512.c.
 *
 * Why: the row-major prefill GEMM of these types (lowbit_gemm_avx512.c) reduces one
 * row at a time across SIMD lanes; here a register holds 4 values of each of 16
 * rows, so one vpdpbusd against 4 broadcast activation bytes advances 16 outputs,
 * as the Q4_K tile (il_k_avx512.c) does. A decoded sub-block serves up to 8 tokens.
 *
 * Q3_K, per 16-value sub-block j: weights u = q + 4 * hbit (0..7, unsigned) and
 *   dot_j = sum (u - 4) y = sum u y - 4 S_j        (S_j: the activations' sum)
 * where the accumulator starts at -4 S_j (packed with the activations), so dot_j
 * is exact and |dot_j| <= 16 * 4 * 128 fits int16. Sub-blocks 2p and 2p+1 go in one
 * int16 pair per row and a vpdpwssd against their two scales (sc - 32) adds both to
 * isum (|isum| <= 16 * 8192 * 32 fits int32).
 * IQ4_XS, per 32-value sub-block j: weights are the levels + 128 (1..241, looked
 * up with vpshufb), the accumulator starts at -128 S_j, so dot_j = sum v y exactly
 * (|dot_j| <= 32 * 127 * 128: not an int16, so isum += (sc - 32) * dot_j with
 * vpmulld; |isum| <= 8 * 32 * 520192 fits int32).
 * Then, per super-block and token, in float, in super-block order:
 *   acc = fma(isum * d, y_d, acc)
 * Every output is the same sequence of operations whatever tile, token count or
 * thread share it falls in; against the scalar dot only the float order differs.
 * Where the CPU has AVX512_VBMI, il_lowbit_vbmi.c's tiles replace these (the same
 * sums in the same order, with fewer operations per weight byte); these stay for
 * AVX-512 VNNI CPUs without it (Cascade Lake) and under FRUGAL_IL_VBMI=0. */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__F16C__)

#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant.h"
#include "core/quant_lowbit.h"
#include "kernels/il_avx512.h"
#include "kernels/il_lowbit_avx512.h"
#include "kernels/interleave.h"

/* Q8_K row -> il_act_lb blocks; S_j from the exact bsums (sums of 16 quants). */
static void pack_act(const void *vq, void *vp, int64_t n, int iq4) {
    const fr_block_q8_k *y = vq;
    il_act_lb *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        memset(p[b].c, 0, sizeof p[b].c);
        for (int j = 0; j < 16; j++) {
            if (iq4 && j < 8) p[b].c[j] = -128 * (y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
            if (!iq4) p[b].c[j] = -4 * y[b].bsums[j];
        }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}
static void il_pack_q3_k(const void *vq, void *vp, int64_t n) { pack_act(vq, vp, n, 0); }
static void il_pack_iq4_xs(const void *vq, void *vp, int64_t n) { pack_act(vq, vp, n, 1); }

static inline __m512i srl32(__m512i v, int n) { return _mm512_srl_epi32(v, _mm_cvtsi32_si128(n)); }
static inline __m512i sll32(__m512i v, int n) { return _mm512_sll_epi32(v, _mm_cvtsi32_si128(n)); }

/* Q3_K: the scales of sub-blocks 2p, 2p+1 minus 32 as an int16 pair per row. The
 * four words of fr_q3k_scales_w, 16 rows at once: word k (sub-blocks 4k..4k+3)
 * takes the low nibbles of scale word k & 1 (shifted by 4 for k >= 2) and bits
 * 2k..2k+1 of each byte of word 2 as bits 4..5. */
static inline __m512i q3_scale_pair(const uint8_t *blk, int p) {
    const int k = p >> 1;
    const __m512i a = _mm512_loadu_si512(blk + FR_IL_Q3_SC + 64 * (k & 1));
    const __m512i a2 = _mm512_loadu_si512(blk + FR_IL_Q3_SC + 128);
    const __m512i hi = _mm512_and_si512(k < 3 ? sll32(a2, 4 - 2 * k) : srl32(a2, 2), _mm512_set1_epi8(0x30));
    const __m512i s4 = _mm512_ternarylogic_epi32(srl32(a, 4 * (k >> 1)), _mm512_set1_epi8(0x0F), hi, 0xEA);
    /* bytes 2(p&1), 2(p&1)+1 of each dword into its two words; the control is a
     * constant (a vector built from a variable byte would go through the stack and
     * stall on store forwarding, once per pair) */
    const char z = (char)0x80;
    const __m512i ctl = _mm512_broadcast_i32x4(_mm_setr_epi8(0, z, 1, z, 4, z, 5, z, 8, z, 9, z, 12, z, 13, z));
    const __m512i s = (p & 1) ? _mm512_srli_epi32(s4, 16) : s4;
    return _mm512_sub_epi16(_mm512_shuffle_epi8(s, ctl), _mm512_set1_epi16(32));
}

/* Q3_K sub-blocks 2p and 2p+1 for T tokens. */
FR_INLINE void q3_pair(int T, int p, const uint8_t *blk, const int32_t *scs, const il_act_lb *const *a,
                       __m512i *isum) {
    const __m512i m7 = _mm512_set1_epi8(7), m3 = _mm512_set1_epi8(3), four = _mm512_set1_epi8(4);
    const __m512i scp = _mm512_load_si512(scs + 16 * p);
    const uint8_t *r = blk + FR_IL_Q3_PAIRS + 192 * p;
    const __m512i ra = _mm512_loadu_si512(r), rb = _mm512_loadu_si512(r + 64), rc = _mm512_loadu_si512(r + 128);
    /* the 8 registers of 3-bit values from A, B, C (layout in interleave.h); 16-bit
     * shifts, the bits that cross from the neighbouring byte masked off */
    __m512i w[8];
    w[0] = _mm512_and_si512(ra, m7);
    w[1] = _mm512_and_si512(_mm512_srli_epi16(ra, 3), m7);
    w[2] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(ra, 6), m3,
                                     _mm512_and_si512(_mm512_srli_epi16(rc, 4), four), 0xEA);
    w[3] = _mm512_and_si512(rb, m7);
    w[4] = _mm512_and_si512(_mm512_srli_epi16(rb, 3), m7);
    w[5] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(rb, 6), m3,
                                     _mm512_and_si512(_mm512_srli_epi16(rc, 5), four), 0xEA);
    w[6] = _mm512_and_si512(rc, m7);
    w[7] = _mm512_and_si512(_mm512_srli_epi16(rc, 3), m7);
    const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
    for (int t = 0; t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * p;
        __m512i s0 = _mm512_set1_epi32(a[t]->c[2 * p]), s1 = _mm512_set1_epi32(a[t]->c[2 * p + 1]);
        dpb_sub(&s0, &s1, w, q);
        /* low word from s0, high word from s1 (ternlog 0xE4: c ? a : b) */
        const __m512i pr = _mm512_ternarylogic_epi32(s0, _mm512_slli_epi32(s1, 16), lo16, 0xE4);
        isum[t] = _mm512_dpwssd_epi32(isum[t], pr, scp);
    }
}

/* IQ4_XS sub-block j for T tokens. */
FR_INLINE void x4_sub(int T, int j, const uint8_t *blk, const int32_t *scs, const il_act_lb *const *a,
                      __m512i *isum) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i table =
        _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)fr_iq4nl_values), _mm_set1_epi8((char)0x80)));
    const __m512i sc = _mm512_load_si512(scs + 16 * j);
    __m512i w[8];
    for (int i = 0; i < 4; i++) {
        const __m512i raw = _mm512_loadu_si512(blk + FR_IL_X4_QS + 64 * (4 * j + i));
        w[i] = _mm512_shuffle_epi8(table, _mm512_and_si512(raw, m4));
        w[4 + i] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4));
    }
    for (int t = 0; t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * j;
        __m512i s0 = _mm512_set1_epi32(a[t]->c[j]), s1 = _mm512_setzero_si512();
        dpb_sub(&s0, &s1, w, q);
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
    }
}

/* The 8 scale vectors of a block (IQ4_XS: per sub-block, sc - 32 as int32; Q3_K:
 * per pair of sub-blocks, q3_scale_pair) of the 16 rows into scs, decoded once per
 * block into memory (whole-vector stores and loads: no store-forwarding stall)
 * rather than inside the token loop, where they cost registers and operations per
 * sub-block. */
static inline void block_scales(int iq4, const uint8_t *blk, int32_t *scs) {
    if (!iq4) {
        for (int p = 0; p < 8; p++) _mm512_store_si512(scs + 16 * p, q3_scale_pair(blk, p));
        return;
    }
    /* low 4 bits at bit 4j of the row's scales_l dword, top 2 at bit 2j of scales_h */
    const __m512i sh = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(blk + FR_IL_X4_SH)));
    const __m512i sl = _mm512_loadu_si512(blk + FR_IL_X4_SL);
    for (int j = 0; j < 8; j++) {
        const __m512i hi = _mm512_and_si512(sll32(srl32(sh, 2 * j), 4), _mm512_set1_epi32(0x30));
        const __m512i lo = _mm512_ternarylogic_epi32(srl32(sl, 4 * j), _mm512_set1_epi32(15), hi, 0xEA);
        _mm512_store_si512(scs + 16 * j, _mm512_sub_epi32(lo, _mm512_set1_epi32(32)));
    }
}

/* sub-block (IQ4_XS) or pair (Q3_K) j of the tile */
FR_INLINE void lb_sub(int iq4, int T, int j, const uint8_t *blk, const int32_t *scs, const il_act_lb *const *a,
                      __m512i *isum) {
    if (iq4) x4_sub(T, j, blk, scs, a, isum);
    else q3_pair(T, j, blk, scs, a, isum);
}

FR_IL_LB_TILE(tile_lb, int32_t, 8 * 16, block_scales, lb_sub)

#define TILE_Q3(T, nb, g, yt, yp_row, o, ld) tile_lb(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_X4(T, nb, g, yt, yp_row, o, ld) tile_lb(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM(il_gemm_q3_k, TILE_Q3, FR_QK_K, Q3_SB, sizeof(il_act_lb))
FR_IL_DEFINE_GEMM(il_gemm_iq4_xs, TILE_X4, FR_QK_K, X4_SB, sizeof(il_act_lb))

void fr_kernels_install_il_lowbit_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q3_K].il_pack = il_pack_q3_k;
    t[FR_TYPE_Q3_K].il_gemm = il_gemm_q3_k;
    t[FR_TYPE_IQ4_XS].il_pack = il_pack_iq4_xs;
    t[FR_TYPE_IQ4_XS].il_gemm = il_gemm_iq4_xs;
    /* FRUGAL_IL_VBMI=0 keeps the tiles above on a VBMI CPU (the tests run both) */
    const char *env = getenv("FRUGAL_IL_VBMI");
    if (__builtin_cpu_supports("avx512vbmi") && !(env && env[0] == '0')) fr_kernels_install_il_lowbit_vbmi(t);
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_lowbit_avx512(fr_type_traits *t) { (void)t; }

#endif
