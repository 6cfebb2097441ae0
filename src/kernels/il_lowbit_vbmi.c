/* il_lowbit_vbmi.c - the IL16 Q3_K and IQ4_XS tiles of il_lowbit_avx512.c with
 * fewer operations per weight byte, for CPUs with AVX512_VBMI (Ice Lake and later):
 * same layouts (interleave.h), same integer sums, same float order, so the outputs
 * are bit-identical to the plain tiles'.
 *
 * Why: on decode these tiles stream the weights once, and the fewer vector
 * operations a 64-byte line costs, the closer the stream gets to DRAM speed. zmm
 * work issues on two ports; shifts go to one of them only. vpermb (a 64-entry byte
 * table indexed by the low 6 bits of each byte, the top 2 ignored) replaces a
 * shift and a mask, or a mask and a vpshufb, with one operation:
 *   - IQ4_XS: a nibble straight to its level + 128 (the 16 levels repeated 4 times,
 *     so the bits above the nibble do not matter): 12 operations per 32-value
 *     sub-block of 16 rows instead of 20;
 *   - Q3_K: w1, w4, w7 (bits 3..5 of A, B, C) one table each; w2, w5 from one shared
 *     shift of C: 13 operations per pair of sub-blocks instead of 17;
 *   - the 6-bit scales: a table maps the gathered 6 bits (2 garbage bits above them)
 *     to sc - 32 as int8, and a per-block vpermb puts the bytes in the order one
 *     sign-extending load per sub-block (pair) wants: ~3 operations per pair
 *     instead of ~8 (Q3_K), ~2 per sub-block instead of 6 (IQ4_XS). */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__AVX512VBMI__) && defined(__F16C__)

#include <immintrin.h>
#include <pthread.h>

#include "kernels/il_avx512.h"
#include "kernels/il_lowbit_avx512.h"
#include "kernels/interleave.h"

/* The byte tables and permutations, built once (pthread_once) at the first install. */
static struct {
    uint8_t mid[64];  /* bits 3..5 of the index */
    uint8_t w5[64];   /* bits 0, 1 and 3 of the index as bits 0..2 */
    uint8_t sc[64];   /* (int8) index - 32 */
    uint8_t x4[64];   /* IQ4_XS level + 128 of the low nibble */
    uint8_t q3p[64];  /* Q3_K scale bytes: 4r + 2h + e -> 32h + 2r + e */
    uint8_t x4p[64];  /* IQ4_XS scales_l: 4r + jj -> 16jj + r */
    uint8_t x4h[64];  /* IQ4_XS scales_h bytes: 2r + (jj >> 1) -> 16jj + r */
    uint8_t x4e[64];  /* vpmultishiftqb: bits 4jj' .. of the row's scales_h to bits 4..5 */
    uint8_t x4o[64];  /* the same for the odd sub-blocks (2 bits further) */
} __attribute__((aligned(64))) k_tab;

static void build_tables(void) {
    for (int i = 0; i < 64; i++) {
        const int r = i & 15, jj = i >> 4, b = i & 7;
        k_tab.mid[i] = (uint8_t)((i >> 3) & 7);
        k_tab.w5[i] = (uint8_t)((i & 3) | ((i >> 3) & 1) << 2);
        k_tab.sc[i] = (uint8_t)(int8_t)(i - 32);
        k_tab.x4[i] = (uint8_t)(fr_iq4nl_values[i & 15] ^ 0x80);
        /* output byte i = 32h + 2r' + e takes input byte 4r' + 2h + e */
        k_tab.q3p[i] = (uint8_t)(4 * ((i & 31) >> 1) + 2 * (i >> 5) + (i & 1));
        k_tab.x4p[i] = (uint8_t)(4 * r + jj);
        k_tab.x4h[i] = (uint8_t)(2 * r + (jj >> 1));
        /* the window starts 4 bits below the wanted bits so they land at 4..5 */
        k_tab.x4e[i] = (uint8_t)((8 * b + 4 * (jj & 1) - 4) & 63);
        k_tab.x4o[i] = (uint8_t)((8 * b + 4 * (jj & 1) - 2) & 63);
    }
}

static inline __m512i tab(const uint8_t *t) { return _mm512_load_si512(t); }
/* 6-bit table lookup: t[x & 63] per byte */
static inline __m512i lut(__m512i x, __m512i t) { return _mm512_permutexvar_epi8(x, t); }
/* c ? a : b, bitwise */
static inline __m512i sel(__m512i a, __m512i b, __m512i c) { return _mm512_ternarylogic_epi32(a, b, c, 0xE4); }

/* Q3_K: the 16 scales minus 32 of the 16 rows as int8 into scb, in pair order (pair
 * p at scb + 32p: row r's two at 2r, 2r + 1). The lane bytes are permuted first
 * (bytewise operations commute with it), then fr_q3k_scales_w's four words are
 * formed with their 6 bits in the low bits of each byte and looked up in sc. */
static inline void q3_scales(const uint8_t *blk, int8_t *scb) {
    const __m512i perm = tab(k_tab.q3p), t = tab(k_tab.sc), m = _mm512_set1_epi8(0x0F);
    const __m512i l0 = _mm512_permutexvar_epi8(perm, _mm512_loadu_si512(blk + FR_IL_Q3_SC));
    const __m512i l1 = _mm512_permutexvar_epi8(perm, _mm512_loadu_si512(blk + FR_IL_Q3_SC + 64));
    const __m512i l2 = _mm512_permutexvar_epi8(perm, _mm512_loadu_si512(blk + FR_IL_Q3_SC + 128));
    _mm512_store_si512(scb, lut(sel(l0, _mm512_slli_epi16(l2, 4), m), t));
    _mm512_store_si512(scb + 64, lut(sel(l1, _mm512_slli_epi16(l2, 2), m), t));
    _mm512_store_si512(scb + 128, lut(sel(_mm512_srli_epi16(l0, 4), l2, m), t));
    _mm512_store_si512(scb + 192, lut(sel(_mm512_srli_epi16(l1, 4), _mm512_srli_epi16(l2, 2), m), t));
}

/* Q3_K sub-blocks 2p and 2p+1 for T tokens (the plain q3_pair's sums). */
FR_INLINE void q3_pair_v(int T, int p, const uint8_t *blk, const int8_t *scb, const il_act_lb *const *a,
                         __m512i *isum) {
    const __m512i m7 = _mm512_set1_epi8(7), m3 = _mm512_set1_epi8(3);
    const __m512i tmid = tab(k_tab.mid);
    const __m512i scp = _mm512_cvtepi8_epi16(_mm256_load_si256((const __m256i *)(scb + 32 * p)));
    const uint8_t *r = blk + FR_IL_Q3_PAIRS + 192 * p;
    const __m512i ra = _mm512_loadu_si512(r), rb = _mm512_loadu_si512(r + 64), rc = _mm512_loadu_si512(r + 128);
    /* e: C's bits 6, 7 (w2's and w5's third bits) at bits 2, 3 of each byte */
    const __m512i e = _mm512_srli_epi16(rc, 4);
    __m512i w[8];
    w[0] = _mm512_and_si512(ra, m7);
    w[1] = lut(ra, tmid);
    w[2] = _mm512_and_si512(sel(_mm512_srli_epi16(ra, 6), e, m3), m7);
    w[3] = _mm512_and_si512(rb, m7);
    w[4] = lut(rb, tmid);
    w[5] = lut(sel(_mm512_srli_epi16(rb, 6), e, m3), tab(k_tab.w5));
    w[6] = _mm512_and_si512(rc, m7);
    w[7] = lut(rc, tmid);
    const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
    for (int t = 0; t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * p;
        __m512i s0 = _mm512_set1_epi32(a[t]->c[2 * p]), s1 = _mm512_set1_epi32(a[t]->c[2 * p + 1]);
        dpb_sub(&s0, &s1, w, q);
        const __m512i pr = sel(s0, _mm512_slli_epi32(s1, 16), lo16);
        isum[t] = _mm512_dpwssd_epi32(isum[t], pr, scp);
    }
}

/* IQ4_XS: the 8 scales minus 32 of the 16 rows as int8 into scb, sub-block j's 16 at
 * scb + 64 (j & 1) + 16 (j >> 1). */
static inline void x4_scales(const uint8_t *blk, int8_t *scb) {
    const __m512i m = _mm512_set1_epi8(0x0F), t = tab(k_tab.sc);
    /* byte 16jj + r: scales_l[jj] of row r (low nibbles of sub-blocks 2jj, 2jj+1) */
    const __m512i l = _mm512_permutexvar_epi8(tab(k_tab.x4p), _mm512_loadu_si512(blk + FR_IL_X4_SL));
    const __m512i sh = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(blk + FR_IL_X4_SH)));
    const __m512i h = _mm512_permutexvar_epi8(tab(k_tab.x4h), sh);
    const __m512i he = _mm512_multishift_epi64_epi8(tab(k_tab.x4e), h);
    const __m512i ho = _mm512_multishift_epi64_epi8(tab(k_tab.x4o), h);
    _mm512_store_si512(scb, lut(sel(l, he, m), t));
    _mm512_store_si512(scb + 64, lut(sel(_mm512_srli_epi16(l, 4), ho, m), t));
}

/* IQ4_XS sub-block j for T tokens (the plain x4_sub's sums). */
FR_INLINE void x4_sub_v(int T, int j, const uint8_t *blk, const int8_t *scb, const il_act_lb *const *a,
                        __m512i *isum) {
    const __m512i table = tab(k_tab.x4);
    const __m512i sc = _mm512_cvtepi8_epi32(_mm_load_si128((const __m128i *)(scb + 64 * (j & 1) + 16 * (j >> 1))));
    __m512i w[8];
    for (int i = 0; i < 4; i++) {
        const __m512i raw = _mm512_loadu_si512(blk + FR_IL_X4_QS + 64 * (4 * j + i));
        w[i] = lut(raw, table);
        w[4 + i] = lut(_mm512_srli_epi16(raw, 4), table);
    }
    for (int t = 0; t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * j;
        __m512i s0 = _mm512_set1_epi32(a[t]->c[j]), s1 = _mm512_setzero_si512();
        dpb_sub(&s0, &s1, w, q);
        isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
    }
}

/* the block's scales, and sub-block (IQ4_XS) or pair (Q3_K) j of the tile */
FR_INLINE void v_scales(int iq4, const uint8_t *blk, int8_t *scb) {
    if (iq4) x4_scales(blk, scb);
    else q3_scales(blk, scb);
}
FR_INLINE void v_sub(int iq4, int T, int j, const uint8_t *blk, const int8_t *scb, const il_act_lb *const *a,
                     __m512i *isum) {
    if (iq4) x4_sub_v(T, j, blk, scb, a, isum);
    else q3_pair_v(T, j, blk, scb, a, isum);
}

FR_IL_LB_TILE(tile_v, int8_t, 256, v_scales, v_sub)

#define TILE_Q3V(T, nb, g, yt, yp_row, o, ld) tile_v(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_X4V(T, nb, g, yt, yp_row, o, ld) tile_v(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM(il_gemm_q3_k_v, TILE_Q3V, FR_QK_K, Q3_SB, sizeof(il_act_lb))
FR_IL_DEFINE_GEMM(il_gemm_iq4_xs_v, TILE_X4V, FR_QK_K, X4_SB, sizeof(il_act_lb))

void fr_kernels_install_il_lowbit_vbmi(fr_type_traits *t) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, build_tables);
    t[FR_TYPE_Q3_K].il_gemm = il_gemm_q3_k_v;
    t[FR_TYPE_IQ4_XS].il_gemm = il_gemm_iq4_xs_v;
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_lowbit_vbmi(fr_type_traits *t) { (void)t; }

#endif
