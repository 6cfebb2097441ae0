/* il_k_avx2.c - AVX2 GEMMs over IL16 Q4_K and Q5_K weights (layouts in
 * kernels/interleave.h), for CPUs without AVX-512 VNNI. Compiled with the AVX2 level's flags and
 * installed by il_avx2.c.
 *
 * Per super-block of a 16-row group and one token, all in exact integers, as the
 * AVX-512 kernel (il_k_avx512.c):
 *   isum = sum_j sc[j] * dot_j        dot_j = sum over sub-block j of q * y
 *   msum = sum_j m[j] * S_j           S_j   = sum over sub-block j of y
 * The group is walked in halves of 8 rows, one ymm register per 64-byte lane
 * half (4 values of each of the 8 rows in a dword). A sub-block is 8 registers of
 * nibbles; vpmaddubsw (unsigned nibble x signed y) gives int16 pair sums of at most
 * 2 * 15 * 128 = 3840 in magnitude, so all 8 products of a sub-block add up in
 * int16 (<= 30720, no saturation), and one vpmaddwd against the scale in both words
 * of each dword turns the two partial sums of a row into sc[j] * dot_j in int32
 * (|isum| <= 8 * 63 * 61440 fits). The mins go through vpmaddwd too: each row's 8
 * six-bit mins as word pairs (m0, m2), (m1, m3), (m4, m6), (m5, m7) against the
 * S_j pairs packed the same way with the activations (|S_j| <= 4096).
 * Then, per super-block, in float exactly as the AVX-512 kernel:
 *   acc = fma(isum * d - msum * dmin, y_d, acc)        (the first product fused)
 * in super-block order: every output is the same sequence of operations whatever
 * tile, token count or thread share it falls in, and the same bits as the AVX-512
 * IL16 GEMM. Each decoded register of a sub-block, and its scales, serve the
 * tile's IL2K_T tokens from registers.
 *
 * Q5_K, as the AVX-512 kernel: the weight is the nibble plus 16 times its fifth bit
 * (0..31; the qh lane shifted so bit j lands on bit 4, masked, ored in). 8 products
 * may reach 8 * 31 * 128 = 31744, 16 would not fit int16, so the int16 sum is taken
 * through vpmaddwd after 4 registers and again after 8; isum, the mins and the float
 * steps are Q4_K's, and the bits the AVX-512 Q5_K GEMM's. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx2.h"
#include "kernels/il_drive.h"
#include "kernels/interleave.h"

/* Tokens per tile: per token an int16 sub-block sum and an int32 super-block sum,
 * plus a weight register, a broadcast and the scales, in 16 ymm registers (a
 * constant or two spill to L1). 6 ran 5 % faster than 4, 5 or 7 on Zen 4. */
#define IL2K_T 6

/* One activation super-block as the kernel reads it (from a Q8_K block). */
typedef struct {
    int8_t qs[FR_QK_K];
    int16_t s[8]; /* S_j in the order (S0, S2), (S1, S3), (S4, S6), (S5, S7) */
    float d;
    uint8_t pad[12]; /* 288 bytes: every 4-byte broadcast stays 4-aligned */
} il_act_k;
_Static_assert(sizeof(il_act_k) == 288, "il_act_k layout");
_Static_assert(sizeof(il_act_k) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

/* Q8_K row -> il_act_k blocks. S_j comes from the quantizer's bsums (two per
 * sub-block of 32), exact sums of the int8 quants, as the AVX-512 kernel's. */
static void il_pack_q4_k(const void *vq, void *vp, int64_t n) {
    static const int order[8] = {0, 2, 1, 3, 4, 6, 5, 7};
    const fr_block_q8_k *y = vq;
    il_act_k *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        for (int i = 0; i < 8; i++) {
            const int j = order[i];
            p[b].s[i] = (int16_t)(y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]);
        }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))
#define K4_SB (16 * (int)sizeof(fr_block_q4_k)) /* bytes of one super-block of a group */
#define K5_SB (16 * (int)sizeof(fr_block_q5_k))

/* The 4 bytes at p in every dword. */
static inline __m256i bc32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Compiler barriers, free at run time: keep stops GCC from reassociating an
 * integer chain into trees of products (live registers, spills); opaque hides that
 * an activation pointer is the same in both halves (GCC would hoist and spill the
 * broadcasts). */
static inline void keep(__m256i *v) { __asm__("" : "+x"(*v)); }
static inline const il_act_k *opaque(const il_act_k *p) {
    __asm__("" : "+r"(p));
    return p;
}

/* Sub-block j = 2c + hi, rows 8h..8h+7, of the super-block at blk, for T tokens:
 * isum[t] += sc[j] * dot_j. q5 (Q5_K), hi and h are constants after inlining; c a
 * loop variable. */
FR_INLINE void il_sub_k(int q5, int T, int c, int hi, int h, const uint8_t *blk, const il_act_k *const *a,
                        __m256i *isum) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const int j = 2 * c + hi;
    /* scale of sub-block j for each row: byte j % 4 of its dword in X0 / X1, put in
     * both words for vpmaddwd */
    const __m256i x = _mm256_loadu_si256((const __m256i *)(blk + 64 + 64 * (j >> 2) + 32 * h));
    const __m256i sc = _mm256_and_si256(_mm256_srl_epi32(x, _mm_cvtsi32_si128(8 * (j & 3))), _mm256_set1_epi32(63));
    const __m256i sc2 = _mm256_or_si256(sc, _mm256_slli_epi32(sc, 16));
    const uint8_t *lanes = blk + (q5 ? FR_IL_Q5_QS : 256) + 64 * 8 * c + 32 * h;
    /* Q5_K: bit j of a qh byte to bit 4, by a 16-bit shift left 4 - j or right
     * j - 4 (the bits crossing between bytes never land on bit 4) */
    const __m128i shl = _mm_cvtsi32_si128(j <= 4 ? 4 - j : 0), shr = _mm_cvtsi32_si128(j > 4 ? j - 4 : 0);
    const __m256i b16 = _mm256_set1_epi8(16);
    __m256i s[IL2K_T];
    for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
    for (int i = 0; i < 8; i++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(lanes + 64 * i));
        __m256i w = _mm256_and_si256(hi ? _mm256_srli_epi16(raw, 4) : raw, m4);
        if (q5) {
            const __m256i qh = _mm256_loadu_si256((const __m256i *)(blk + FR_IL_Q5_QH + 64 * i + 32 * h));
            const __m256i hb = j <= 4 ? _mm256_sll_epi16(qh, shl) : _mm256_srl_epi16(qh, shr);
            w = _mm256_or_si256(w, _mm256_and_si256(hb, b16));
        }
        for (int t = 0; t < T; t++) {
            s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(w, bc32(a[t]->qs + 32 * j + 4 * i)));
            keep(&s[t]);
        }
        if (q5 && i == 3) /* 8 products so far: fold before int16 could overflow */
            for (int t = 0; t < T; t++) {
                isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s[t], sc2));
                keep(&isum[t]);
                s[t] = _mm256_setzero_si256();
            }
    }
    for (int t = 0; t < T; t++) {
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(s[t], sc2));
        keep(&isum[t]);
    }
}

/* 16 rows x T tokens over the whole row of a group; q5: Q5_K, else Q4_K. */
FR_INLINE void il_tile_k(int q5, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                         size_t ld) {
    const int sb = q5 ? K5_SB : K4_SB;
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), lo8 = _mm256_set1_epi16(0x00FF);
    __m256 acc[2][IL2K_T];
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * (size_t)sb;
        for (int h = 0; h < 2; h++) { /* rows 8h .. 8h + 7 */
            const il_act_k *a[IL2K_T];
            __m256i isum[IL2K_T];
            for (int t = 0; t < T; t++) {
                a[t] = opaque((const il_act_k *)(yp + (size_t)t * yp_row) + b);
                isum[t] = _mm256_setzero_si256();
            }
            /* a loop, not unrolled: unrolled, GCC interleaves the sub-blocks and spills */
#pragma GCC unroll 1
            for (int c = 0; c < 4; c++) {
                fr_il_prefetch_slice(blk, (size_t)sb, 8 * h + 2 * c, 16);
                il_sub_k(q5, T, c, 0, h, blk, a, isum);
                fr_il_prefetch_slice(blk, (size_t)sb, 8 * h + 2 * c + 1, 16);
                il_sub_k(q5, T, c, 1, h, blk, a, isum);
            }
            /* the mins as bytes, 4 per dword: low nibbles from ML, top 2 bits from
             * bits 6-7 of the X bytes; then as word pairs (even bytes, odd bytes) */
            const __m256i ml = _mm256_loadu_si256((const __m256i *)(blk + 192 + 32 * h));
            const __m256i x0 = _mm256_loadu_si256((const __m256i *)(blk + 64 + 32 * h));
            const __m256i x1 = _mm256_loadu_si256((const __m256i *)(blk + 128 + 32 * h));
            const __m256i mn0 =
                _mm256_or_si256(_mm256_and_si256(ml, m0f), _mm256_and_si256(_mm256_srli_epi32(x0, 2), m30));
            const __m256i mn1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(ml, 4), m0f),
                                                _mm256_and_si256(_mm256_srli_epi32(x1, 2), m30));
            const __m256i m02 = _mm256_and_si256(mn0, lo8), m13 = _mm256_srli_epi16(mn0, 8);
            const __m256i m46 = _mm256_and_si256(mn1, lo8), m57 = _mm256_srli_epi16(mn1, 8);
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
            const __m256 dm = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 32 + 16 * h)));
            for (int t = 0; t < T; t++) {
                __m256i ms = _mm256_madd_epi16(m02, bc32(a[t]->s));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(m13, bc32(a[t]->s + 2)));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(m46, bc32(a[t]->s + 4)));
                ms = _mm256_add_epi32(ms, _mm256_madd_epi16(m57, bc32(a[t]->s + 6)));
                const __m256 f =
                    _mm256_fmsub_ps(_mm256_cvtepi32_ps(isum[t]), dw, _mm256_mul_ps(_mm256_cvtepi32_ps(ms), dm));
                acc[h][t] = _mm256_fmadd_ps(f, _mm256_set1_ps(a[t]->d), acc[h][t]);
            }
        }
    }
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ld + 8 * h, acc[h][t]);
}

#define TILE_Q4_K(T, nb, g, yt, yp_row, o, ld) il_tile_k(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_Q5_K(T, nb, g, yt, yp_row, o, ld) il_tile_k(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM_T(il_gemm_q4_k, TILE_Q4_K, IL2K_T, FR_QK_K, K4_SB, sizeof(il_act_k))
FR_IL_DEFINE_GEMM_T(il_gemm_q5_k, TILE_Q5_K, IL2K_T, FR_QK_K, K5_SB, sizeof(il_act_k))

void fr_kernels_install_il_k_avx2(fr_type_traits *t) {
    t[FR_TYPE_Q4_K].il_pack = il_pack_q4_k;
    t[FR_TYPE_Q4_K].il_gemm = il_gemm_q4_k;
    /* the same activations: Q5_K's mins and sums are Q4_K's */
    t[FR_TYPE_Q5_K].il_pack = il_pack_q4_k;
    t[FR_TYPE_Q5_K].il_gemm = il_gemm_q5_k;
}

#else

#include "kernels/il_avx2.h"

void fr_kernels_install_il_k_avx2(fr_type_traits *t) { (void)t; }

#endif
