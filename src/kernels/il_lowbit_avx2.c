/* il_lowbit_avx2.c - AVX2 GEMMs over IL16 Q3_K and IQ4_XS weights (layouts in
 * kernels/interleave.h), for CPUs without AVX-512 VNNI. Compiled with the AVX2
 * level's flags and installed by il_avx2.c.
 *
 * Why: the row-major dots of these types (lowbit_avx2.c) reduce each row across
 * SIMD lanes and re-decode a block for every token; here, as in the Q4_K tile
 * (il_k_avx2.c), a ymm register holds 4 values of each of 8 rows (one 32-byte half
 * of a 64-byte IL16 lane), a broadcast activation dword advances 8 outputs, and a
 * decoded register serves up to IL2L_T tokens. The group is walked in two halves
 * of 8 rows.
 *
 * No VNNI, so the byte products go through vpmaddubsw (unsigned x signed bytes ->
 * int16 pair sums, saturating), with the values chosen so that nothing saturates or
 * overflows for any int8 activation, -128 included:
 *  - Q3_K, per 16-value sub-block j (4 registers): u = q + 4 * hbit in 0..7, a pair
 *    sum is at most 2 * 7 * 128 = 1792 in magnitude, so 4 registers add up in int16
 *    on top of the offset -4 S_j (packed with the activations in the low word of a
 *    dword, |4 S_j| <= 8192; each word stays within 15 360). One vpmaddwd against
 *    the sub-block's scale (sc - 32) in both words gives (sc - 32) * dot_j in int32.
 *  - IQ4_XS, per 32-value sub-block j (8 registers): a level plus 128 is u in 1..241,
 *    too big for int16 pair sums, so u = 16 uh + ul with both nibbles looked up by
 *    vpshufb: 8 registers of uh (or ul) pair sums stay within 16 * 15 * 128 = 30 720.
 *    Then isum += 16 (sc - 32) * sum_h + (sc - 32) * sum_l (two vpmaddwd), and once
 *    per super-block the offset: isum -= 128 * sum_j (sc_j - 32) S_j, from word pairs
 *    of scales against word pairs of S_j (|S_j| <= 4096) as Q4_K's mins.
 * Both give the same int32 isum as the AVX-512 tiles (il_lowbit_avx512.c), then,
 * per super-block in order, the same float steps:
 *   acc = fma(isum * d_w, d_y, acc)
 * so every output is the same sequence of operations whatever tile, token count or
 * thread share it falls in, and the same bits as the AVX-512 IL16 GEMMs. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "core/quant_lowbit.h"
#include "kernels/il_avx2.h"
#include "kernels/il_drive.h"
#include "kernels/interleave.h"

/* Tokens per tile: Q3_K's 4 decoded registers (half a sub-block pair), an int16 and an
 * int32 sum per token and the broadcast fit 16 ymm registers at 5; IQ4_XS, with two
 * int16 sums per token, spills a little there (the width was not tuned for it). */
#define IL2L_T 5

/* One activation super-block as both tiles read it (from a Q8_K block). */
typedef struct {
    int8_t qs[FR_QK_K];
    /* Q3_K: c[j] = -4 S_j (16 values) in the low word, 0 in the high one.
     * IQ4_XS: c[k] = the word pair (S_2k, S_2k+1) of 32-value sums (k < 4). */
    int32_t c[16];
    float d;
    uint8_t pad[28]; /* 352 bytes: every 4-byte broadcast stays 4-aligned */
} il_act_l2;
_Static_assert(sizeof(il_act_l2) == 352, "il_act_l2 layout");
_Static_assert(sizeof(il_act_l2) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

/* Q8_K row -> il_act_l2 blocks; S_j from the exact bsums (sums of 16 quants). */
static void pack_act(const void *vq, void *vp, int64_t n, int iq4) {
    const fr_block_q8_k *y = vq;
    il_act_l2 *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        memset(p[b].c, 0, sizeof p[b].c);
        for (int j = 0; j < 16; j++) {
            if (!iq4) p[b].c[j] = (int32_t)(uint16_t)(int16_t)(-4 * y[b].bsums[j]);
            if (iq4 && j < 4) {
                const int s0 = y[b].bsums[4 * j] + y[b].bsums[4 * j + 1];
                const int s1 = y[b].bsums[4 * j + 2] + y[b].bsums[4 * j + 3];
                p[b].c[j] = (int32_t)((uint32_t)(uint16_t)(int16_t)s0 | (uint32_t)(uint16_t)(int16_t)s1 << 16);
            }
        }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}
static void il_pack_q3_k(const void *vq, void *vp, int64_t n) { pack_act(vq, vp, n, 0); }
static void il_pack_iq4_xs(const void *vq, void *vp, int64_t n) { pack_act(vq, vp, n, 1); }

#define FR_INLINE static inline __attribute__((always_inline))
#define Q3_SB (16 * (int)sizeof(fr_block_q3_k))
#define X4_SB (16 * (int)sizeof(fr_block_iq4_xs))

/* The 4 bytes at p in every dword. */
static inline __m256i bc32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Compiler barriers, free at run time (see il_k_avx2.c): keep pins a value in a
 * register at that point of a chain; opaque hides that an activation pointer is the
 * same in both halves. */
static inline void keep(__m256i *v) { __asm__("" : "+x"(*v)); }
static inline const il_act_l2 *opaque(const il_act_l2 *p) {
    __asm__("" : "+r"(p));
    return p;
}

/* v (int32 per row, in int16 range) in both words of its dword. */
static inline __m256i both_words(__m256i v) {
    return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)), _mm256_slli_epi32(v, 16));
}

/* Q3_K, rows 8h..8h+7: the 16 sub-block scales minus 32, each in both words of
 * its row's dword, into sc[16]. Scale byte k of a row: low nibble of byte k % 8 of
 * the 12 (shifted by 4 for k >= 8), top bits 2 (k / 4) of byte 8 + k % 4: four
 * registers of bytes hold scales 4m..4m+3 in each dword, and one vpshufb per scale
 * spreads byte k % 4 into both words. */
static inline void q3_scales(const uint8_t *blk, int h, __m256i *sc) {
    const uint8_t *s = blk + FR_IL_Q3_SC + 32 * h;
    const __m256i l0 = _mm256_loadu_si256((const __m256i *)s);
    const __m256i l1 = _mm256_loadu_si256((const __m256i *)(s + 64));
    const __m256i l2 = _mm256_loadu_si256((const __m256i *)(s + 128));
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), k32 = _mm256_set1_epi16(32);
    const char z = (char)0x80;
    for (int m = 0; m < 4; m++) {
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi16(m & 1 ? l1 : l0, 4 * (m >> 1)), m0f);
        const __m256i hb = m < 3 ? _mm256_slli_epi16(l2, 4 - 2 * m) : _mm256_srli_epi16(l2, 2);
        const __m256i by = _mm256_or_si256(lo, _mm256_and_si256(hb, m30));
        for (int k = 0; k < 4; k++) {
            const char a = (char)k, b = (char)(k + 4), c = (char)(k + 8), d = (char)(k + 12);
            const __m256i ctl = _mm256_setr_epi8(a, z, a, z, b, z, b, z, c, z, c, z, d, z, d, z, a, z, a, z, b, z,
                                                 b, z, c, z, c, z, d, z, d, z);
            sc[4 * m + k] = _mm256_sub_epi16(_mm256_shuffle_epi8(by, ctl), k32);
        }
    }
}

/* Q3_K sub-block j = 2p + hi (registers w[0..3]) for T tokens: isum += sc_j * dot_j. */
FR_INLINE void q3_sub(int T, int j, const __m256i *w, __m256i scj, const il_act_l2 *const *a, __m256i *isum) {
    __m256i s[IL2L_T];
    for (int t = 0; t < T; t++) s[t] = _mm256_set1_epi32(a[t]->c[j]);
    for (int i = 0; i < 4; i++)
        for (int t = 0; t < T; t++) {
            s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(w[i], bc32(a[t]->qs + 16 * j + 4 * i)));
            keep(&s[t]);
        }
    for (int t = 0; t < T; t++) {
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s[t], scj));
        keep(&isum[t]);
    }
}

/* Q3_K, rows 8h..8h+7 of sub-block pair p: the 8 value registers from the lanes
 * A, B, C (interleave.h), decoded 4 at a time, 16-bit shifts with the bits that
 * cross from the neighbouring byte masked off. */
FR_INLINE void q3_pair(int T, int p, int h, const uint8_t *blk, const __m256i *sc, const il_act_l2 *const *a,
                       __m256i *isum) {
    const __m256i m7 = _mm256_set1_epi8(7), m3 = _mm256_set1_epi8(3), four = _mm256_set1_epi8(4);
    const uint8_t *r = blk + FR_IL_Q3_PAIRS + 192 * p + 32 * h;
    const __m256i ra = _mm256_loadu_si256((const __m256i *)r);
    const __m256i rb = _mm256_loadu_si256((const __m256i *)(r + 64));
    const __m256i rc = _mm256_loadu_si256((const __m256i *)(r + 128));
    __m256i w[4];
    w[0] = _mm256_and_si256(ra, m7);
    w[1] = _mm256_and_si256(_mm256_srli_epi16(ra, 3), m7);
    w[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ra, 6), m3),
                           _mm256_and_si256(_mm256_srli_epi16(rc, 4), four));
    w[3] = _mm256_and_si256(rb, m7);
    q3_sub(T, 2 * p, w, sc[2 * p], a, isum);
    w[0] = _mm256_and_si256(_mm256_srli_epi16(rb, 3), m7);
    w[1] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(rb, 6), m3),
                           _mm256_and_si256(_mm256_srli_epi16(rc, 5), four));
    w[2] = _mm256_and_si256(rc, m7);
    w[3] = _mm256_and_si256(_mm256_srli_epi16(rc, 3), m7);
    q3_sub(T, 2 * p + 1, w, sc[2 * p + 1], a, isum);
}

/* IQ4_XS, rows 8h..8h+7: the 8 sub-block scales minus 32, each in both words of
 * its row's dword, into sc[j], and 16 times them into sc16[j]; and the word pairs
 * (sc_2k - 32, sc_2k+1 - 32) into pr[k] for the offset. Low 4 bits at bit 4j of the
 * row's scales_l dword, top 2 at bit 2j of its scales_h. */
static inline void x4_scales(const uint8_t *blk, int h, __m256i *sc, __m256i *sc16, __m256i *pr) {
    const __m256i sh = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(blk + FR_IL_X4_SH + 16 * h)));
    const __m256i sl = _mm256_loadu_si256((const __m256i *)(blk + FR_IL_X4_SL + 32 * h));
    __m256i v[8];
    for (int j = 0; j < 8; j++) {
        const __m256i hi =
            _mm256_and_si256(_mm256_slli_epi32(_mm256_srli_epi32(sh, 2 * j), 4), _mm256_set1_epi32(0x30));
        const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(sl, 4 * j), _mm256_set1_epi32(15));
        v[j] = _mm256_sub_epi32(_mm256_or_si256(lo, hi), _mm256_set1_epi32(32));
        sc[j] = both_words(v[j]);
        sc16[j] = _mm256_slli_epi16(sc[j], 4);
    }
    for (int k = 0; k < 4; k++)
        pr[k] = _mm256_or_si256(_mm256_and_si256(v[2 * k], _mm256_set1_epi32(0xFFFF)),
                                _mm256_slli_epi32(v[2 * k + 1], 16));
}

/* IQ4_XS sub-block j, rows 8h..8h+7, for T tokens: isum += (sc_j - 32) * sum u y
 * (u = level + 128 = 16 uh + ul; the -128 S_j part comes with the block's offset). */
FR_INLINE void x4_sub(int T, int j, int h, const uint8_t *blk, __m256i scj, __m256i sc16j,
                      const il_act_l2 *const *a, __m256i *isum) {
    /* u's nibbles for each level index (u = level ^ 0x80 as a byte) */
    const __m128i u = _mm_xor_si128(_mm_loadu_si128((const __m128i *)fr_iq4nl_values), _mm_set1_epi8((char)0x80));
    const __m256i th = _mm256_broadcastsi128_si256(_mm_and_si128(_mm_srli_epi16(u, 4), _mm_set1_epi8(0x0F)));
    const __m256i tl = _mm256_broadcastsi128_si256(_mm_and_si128(u, _mm_set1_epi8(0x0F)));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m256i sh[IL2L_T], sl[IL2L_T];
    for (int t = 0; t < T; t++) sh[t] = sl[t] = _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) {
        /* register i: low nibbles of lane 4j + i (values 4i..), high of lane 4j + i - 4 */
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(blk + FR_IL_X4_QS + 64 * (4 * j + (i & 3)) + 32 * h));
        const __m256i idx = _mm256_and_si256(i < 4 ? raw : _mm256_srli_epi16(raw, 4), m4);
        const __m256i uh = _mm256_shuffle_epi8(th, idx), ul = _mm256_shuffle_epi8(tl, idx);
        const int q = 32 * j + 4 * (i & 3) + 16 * (i >> 2);
        for (int t = 0; t < T; t++) {
            const __m256i y = bc32(a[t]->qs + q);
            sh[t] = _mm256_add_epi16(sh[t], _mm256_maddubs_epi16(uh, y));
            keep(&sh[t]);
            sl[t] = _mm256_add_epi16(sl[t], _mm256_maddubs_epi16(ul, y));
            keep(&sl[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(sh[t], sc16j));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(sl[t], scj));
        keep(&isum[t]);
    }
}

/* 16 rows x T tokens over the whole row of a group; iq4: IQ4_XS, else Q3_K. */
FR_INLINE void il_tile_lb(int iq4, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                          size_t ld) {
    const size_t sb = iq4 ? X4_SB : Q3_SB;
    __m256 acc[2][IL2L_T];
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * sb;
        for (int h = 0; h < 2; h++) { /* rows 8h .. 8h + 7 */
            const il_act_l2 *a[IL2L_T];
            __m256i isum[IL2L_T];
            for (int t = 0; t < T; t++) {
                a[t] = opaque((const il_act_l2 *)(yp + (size_t)t * yp_row) + b);
                isum[t] = _mm256_setzero_si256();
            }
            __m256i sc[16] __attribute__((aligned(32))), sc16[8] __attribute__((aligned(32))), pr[4];
            if (iq4) x4_scales(blk, h, sc, sc16, pr);
            else q3_scales(blk, h, sc);
            /* a loop, not unrolled: unrolled, GCC interleaves the steps and spills */
#pragma GCC unroll 1
            for (int j = 0; j < 8; j++) {
                fr_il_prefetch_slice(blk, sb, 8 * h + j, 16);
                if (iq4) x4_sub(T, j, h, blk, sc[j], sc16[j], a, isum);
                else q3_pair(T, j, h, blk, sc, a, isum);
            }
            if (iq4) /* isum -= 128 * sum_j (sc_j - 32) S_j */
                for (int t = 0; t < T; t++) {
                    __m256i o = _mm256_madd_epi16(pr[0], bc32(&a[t]->c[0]));
                    for (int k = 1; k < 4; k++) o = _mm256_add_epi32(o, _mm256_madd_epi16(pr[k], bc32(&a[t]->c[k])));
                    isum[t] = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(o, 7));
                }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
            for (int t = 0; t < T; t++)
                acc[h][t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(isum[t]), dw), _mm256_set1_ps(a[t]->d),
                                            acc[h][t]);
        }
    }
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ld + 8 * h, acc[h][t]);
}

#define TILE_Q3(T, nb, g, yt, yp_row, o, ld) il_tile_lb(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_X4(T, nb, g, yt, yp_row, o, ld) il_tile_lb(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM_T(il_gemm_q3_k, TILE_Q3, IL2L_T, FR_QK_K, Q3_SB, sizeof(il_act_l2))
FR_IL_DEFINE_GEMM_T(il_gemm_iq4_xs, TILE_X4, IL2L_T, FR_QK_K, X4_SB, sizeof(il_act_l2))

void fr_kernels_install_il_lowbit_avx2(fr_type_traits *t) {
    t[FR_TYPE_Q3_K].il_pack = il_pack_q3_k;
    t[FR_TYPE_Q3_K].il_gemm = il_gemm_q3_k;
    t[FR_TYPE_IQ4_XS].il_pack = il_pack_iq4_xs;
    t[FR_TYPE_IQ4_XS].il_gemm = il_gemm_iq4_xs;
}

#else

#include "kernels/il_avx2.h"

void fr_kernels_install_il_lowbit_avx2(fr_type_traits *t) { (void)t; }

#endif
