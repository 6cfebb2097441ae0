/* il_q6k_avx2.c - AVX2 GEMM over IL16 Q6_K weights (layout in
 * kernels/interleave.h), for CPUs without AVX-512 VNNI. Compiled with the AVX2
 * level's flags and installed by il_avx2.c.
 *
 * Per super-block of a 16-row group and one token, in exact integers, the same
 * isum as the AVX-512 kernel (il_q6k_avx512.c):
 *   isum = sum_j sc[j] * x_j,   x_j = sum over sub-block j (16 values) of (q - 32) * y
 * computed as sum_j sc[j] * dot_j + sum_j (32 sc[j]) * (-S_j), where dot_j = sum of
 * q * y (q in 0..63) and S_j = sum of the sub-block's y.
 * The group is walked in halves of 8 rows (one ymm register per 64-byte lane half,
 * 4 values of each of the 8 rows per dword). vpmaddubsw (unsigned q x signed y)
 * gives int16 pair sums of at most 2 * 63 * 128 = 16128 in magnitude, so two of
 * them add up in int16 (<= 32256, no saturation); a sub-block's 4 registers make
 * two such sums, and vpmaddwd against the scale in both words of each dword turns
 * each into sc[j] * (its part of dot_j) in int32. The offset goes in once per pair
 * of sub-blocks (j, j + 4): one vpmaddwd of the words (32 sc[j], 32 sc[j+4])
 * (|32 sc| <= 4096) against (-S_j, -S_{j+4}) (|S_j| <= 2048), packed with the
 * activations. |isum| <= 16 * 128 * 65536 = 2^27 fits int32.
 * Then, per super-block, in float exactly as the AVX-512 kernel:
 *   acc = fma((float) isum, d_w * d_y, acc)
 * in super-block order: every output is the same sequence of operations whatever
 * tile, token count or thread share it falls in, and the same bits as the AVX-512
 * IL16 GEMM. Each 6-bit decode (4 registers of a sub-block) and its scales serve
 * IL2Q6_T tokens from registers. The layout is read front to back, part by part. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx2.h"
#include "kernels/il_drive.h"
#include "kernels/interleave.h"

/* Tokens per tile: per token an int32 super-block sum, plus a decoded sub-block (4
 * registers), its scales and a few temporaries. At 8 some of these spill to L1,
 * yet 8 ran 8 % faster than 6 on Zen 4 (4 to 8 tried): the 6-bit decode, paid
 * once per tile, weighs more than the spills. */
#define IL2Q6_T 8

/* One activation super-block as the kernel reads it (from a Q8_K block). */
typedef struct {
    int8_t qs[FR_QK_K];
    int16_t ns[16]; /* unit u = 2m + p (below): (-S_j, -S_{j+4}), j = 8 (m >> 1) + 2p + (m & 1) */
    float d;
    uint8_t pad[12]; /* 304 bytes: blocks stay 16-aligned */
} il_act_q6;
_Static_assert(sizeof(il_act_q6) == 304, "il_act_q6 layout");
_Static_assert(sizeof(il_act_q6) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

/* Sub-block j of unit (m, p): part m = 2H + s holds sub-blocks 8H + s + 2e. */
static int q6_unit_sub(int m, int p) { return 8 * (m >> 1) + 2 * p + (m & 1); }

/* Q8_K row -> il_act_q6 blocks. S_j is summed from the quants themselves, so the
 * result does not depend on the block's bsums. */
static void il_pack_q6_k(const void *vq, void *vp, int64_t n) {
    const fr_block_q8_k *y = vq;
    il_act_q6 *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        int S[16];
        for (int j = 0; j < 16; j++) {
            S[j] = 0;
            for (int i = 0; i < 16; i++) S[j] += y[b].qs[16 * j + i];
        }
        for (int m = 0; m < 4; m++)
            for (int q = 0; q < 2; q++) {
                const int j = q6_unit_sub(m, q);
                p[b].ns[2 * (2 * m + q)] = (int16_t)-S[j];
                p[b].ns[2 * (2 * m + q) + 1] = (int16_t)-S[j + 4];
            }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))
/* offsets inside one super-block of a group, as interleave_q6k.c */
#define Q6_SB (16 * (int)sizeof(fr_block_q6_k))

/* The 4 bytes at p in every dword. */
static inline __m256i bc32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Compiler barriers, free at run time: keep stops GCC from reassociating an
 * integer chain into trees of products (live registers, spills); opaque hides that
 * an activation pointer is the same in both halves. */
static inline void keep(__m256i *v) { __asm__("" : "+x"(*v)); }
static inline const il_act_q6 *opaque(const il_act_q6 *p) {
    __asm__("" : "+r"(p));
    return p;
}

/* The 8 rows' int8 scales at p (one byte per row), sign-extended to dwords. */
static inline __m256i scales8(const uint8_t *p) {
    return _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}

/* isum[t] += sc * (dot of the sub-block whose 4 decoded registers are w, with the
 * 16 activation bytes at q[t]) for T tokens; sc2: the scale in both words. */
FR_INLINE void sub_q6(int T, const __m256i *w, __m256i sc2, const int8_t *const *q, __m256i *isum) {
    for (int t = 0; t < T; t++) {
        const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(w[0], bc32(q[t])),
                                           _mm256_maddubs_epi16(w[1], bc32(q[t] + 4)));
        const __m256i b = _mm256_add_epi16(_mm256_maddubs_epi16(w[2], bc32(q[t] + 8)),
                                           _mm256_maddubs_epi16(w[3], bc32(q[t] + 12)));
        isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(a, sc2), _mm256_madd_epi16(b, sc2)));
        keep(&isum[t]);
    }
}

/* Unit (m, p) - sub-blocks j = 8H + 2p + s and j + 4 of part m = 2H + s - for rows
 * 8h..8h+7 of the super-block at blk and T tokens. p and h are constants after
 * inlining (which qh bit pairs: the shifts), m a loop variable. */
FR_INLINE void il_unit_q6(int T, int m, int p, int h, const uint8_t *blk, const il_act_q6 *const *a,
                          __m256i *isum) {
    const __m256i m0f = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    const int j = q6_unit_sub(m, p);
    const uint8_t *part = blk + FR_IL_Q6_PART0 + FR_IL_Q6_PART * m;
    const uint8_t *qh = part + FR_IL_Q6_P_QH + 32 * h, *ql = part + FR_IL_Q6_P_QL + 256 * p + 32 * h;
    /* scale slots p and p + 2 of the part: sub-blocks j and j + 4 */
    const __m256i s0 = scales8(part + 16 * p + 8 * h), s1 = scales8(part + 16 * (p + 2) + 8 * h);
    const __m256i sc0 = _mm256_blend_epi16(s0, _mm256_slli_epi32(s0, 16), 0xAA); /* (sc, sc) */
    const __m256i sc1 = _mm256_blend_epi16(s1, _mm256_slli_epi32(s1, 16), 0xAA);
    const __m256i sc01 = _mm256_slli_epi16(_mm256_blend_epi16(s0, _mm256_slli_epi32(s1, 16), 0xAA), 5);
    const int8_t *q0[IL2Q6_T], *q1[IL2Q6_T];
    for (int t = 0; t < T; t++) {
        q0[t] = a[t]->qs + 16 * j;
        q1[t] = q0[t] + 64;
    }
    /* values 4k..4k+3 of sub-block j: low nibbles with qh bit pair p; of sub-block
     * j + 4: high nibbles with bit pair p + 2. A word shift brings the pair to bits
     * 4-5; the mask drops what else it moved. */
    __m256i w[4];
    for (int k = 0; k < 4; k++) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)(ql + 64 * k));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 64 * k));
        const __m256i h0 = p ? _mm256_slli_epi16(hb, 2) : _mm256_slli_epi16(hb, 4);
        w[k] = _mm256_or_si256(_mm256_and_si256(l, m0f), _mm256_and_si256(h0, m30));
    }
    sub_q6(T, w, sc0, q0, isum);
    for (int k = 0; k < 4; k++) {
        const __m256i l = _mm256_loadu_si256((const __m256i *)(ql + 64 * k));
        const __m256i hb = _mm256_loadu_si256((const __m256i *)(qh + 64 * k));
        const __m256i h1 = p ? _mm256_srli_epi16(hb, 2) : hb;
        w[k] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l, 4), m0f), _mm256_and_si256(h1, m30));
    }
    sub_q6(T, w, sc1, q1, isum);
    /* the offset: 32 sc[j] (-S_j) + 32 sc[j+4] (-S_{j+4}) */
    for (int t = 0; t < T; t++) {
        isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(sc01, bc32(a[t]->ns + 2 * (2 * m + p))));
        keep(&isum[t]);
    }
}

/* 16 rows x T tokens over the whole row of a group. */
FR_INLINE void il_tile_q6(int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                          size_t ld) {
    __m256 acc[2][IL2Q6_T];
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * Q6_SB;
        for (int h = 0; h < 2; h++) { /* rows 8h .. 8h + 7 */
            const il_act_q6 *a[IL2Q6_T];
            __m256i isum[IL2Q6_T];
            for (int t = 0; t < T; t++) {
                a[t] = opaque((const il_act_q6 *)(yp + (size_t)t * yp_row) + b);
                isum[t] = _mm256_setzero_si256();
            }
            /* a loop, not unrolled: unrolled, GCC interleaves the units and spills */
#pragma GCC unroll 1
            for (int m = 0; m < 4; m++) {
                fr_il_prefetch_slice(blk, Q6_SB, 8 * h + 2 * m, 16);
                il_unit_q6(T, m, 0, h, blk, a, isum);
                fr_il_prefetch_slice(blk, Q6_SB, 8 * h + 2 * m + 1, 16);
                il_unit_q6(T, m, 1, h, blk, a, isum);
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
            for (int t = 0; t < T; t++)
                acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[t]), _mm256_mul_ps(dw, _mm256_set1_ps(a[t]->d)),
                                            acc[h][t]);
        }
    }
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ld + 8 * h, acc[h][t]);
}

FR_IL_DEFINE_GEMM_T(il_gemm_q6_k, il_tile_q6, IL2Q6_T, FR_QK_K, Q6_SB, sizeof(il_act_q6))

void fr_kernels_install_il_q6k_avx2(fr_type_traits *t) {
    t[FR_TYPE_Q6_K].il_pack = il_pack_q6_k;
    t[FR_TYPE_Q6_K].il_gemm = il_gemm_q6_k;
}

#else

#include "kernels/il_avx2.h"

void fr_kernels_install_il_q6k_avx2(fr_type_traits *t) { (void)t; }

#endif
