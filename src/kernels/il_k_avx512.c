/* il_k_avx512.c - AVX-512 VNNI GEMMs over IL16 Q4_K and Q5_K weights (layouts in
 * kernels/interleave.h), compiled with the AVX-512 flags and installed by
 * il_avx512.c.
 *
 * Per super-block of a 16-row group and one token, all in exact integers:
 *   isum = sum_j sc[j] * dot_j        dot_j = sum over sub-block j of q * y
 *   msum = sum_j m[j] * S_j           S_j   = sum over sub-block j of y
 * A sub-block is 8 registers of nibbles (4 values of each of the 16 rows in each
 * dword lane), so vpdpbusd against broadcast activation bytes advances the 16 rows
 * at once. Each half of 16 values is its own chain (|half| <= 16*15*128 fits int16);
 * the halves go into one int16 pair per row and a single vpdpwssd against the
 * scale in both words adds sc[j] * dot_j to isum (|isum| <= 8*63*61440 fits int32).
 * The mins use vpdpbusd too: the 8 mins of a row are two dwords of bytes, and S_j
 * (-4096..4064, not an int8) is packed as S_j = 64 h + l with h in -64..63 and l
 * in 0..63, so msum = 64 * (m . h) + (m . l).
 * Then, per super-block, in float:
 *   acc = fma(isum * d - msum * dmin, y_d, acc)
 * in super-block order: every output is the same sequence of operations whatever
 * tile, token count or thread share it falls in. One decoded sub-block (8
 * registers + its scales) serves up to 8 tokens from registers.
 *
 * Why this shape: on Zen 4 vpdpbusd, vpdpwssd, vpmulld and FMA share the two
 * multiply pipes while logic, shifts and converts run beside them, so the cost per
 * token and 16x256 is the count of the former: 64 vpdpbusd for the quants, 8
 * vpdpwssd for the scales (a vpmulld + vpaddd per sub-block costs more), 4 vpdpbusd
 * for the mins and 3 float ops, about 80 cycles of which the kernel runs near 83.
 *
 * Q5_K (same header, same activations, same float steps): the weight is the nibble
 * plus 16 times its fifth bit, 0..31, set in the nibble register by a byte-masked
 * add under vptestmb of the qh lane (two logic ops per register, off the multiply
 * pipes). Half a sub-block could reach 16*31*128 = 63488, past int16, so the whole
 * sub-block's dot S goes to vpdpwssd split as (S & 255, S >> 8) against the scale
 * pair (sc, 256 sc): the same 9 multiply-pipe ops per token and sub-block as Q4_K
 * and 4 logic ones (|isum| <= 8*63*126976 fits int32). */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx512.h"
#include "kernels/interleave.h"

/* One activation super-block as the kernel reads it (from a Q8_K block). */
typedef struct {
    int8_t qs[FR_QK_K];
    int8_t sh[8]; /* S_j >> 6 (floor): -64..63 */
    int8_t sl[8]; /* S_j & 63: 0..63 */
    float d;
    uint8_t pad[12]; /* 288 bytes: broadcasts of 4 quants never straddle a line */
} il_act_k;
_Static_assert(sizeof(il_act_k) == 288, "il_act_k layout");
_Static_assert(sizeof(il_act_k) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

/* Q8_K row -> il_act_k blocks. S_j comes from the quantizer's bsums (two per
 * sub-block of 32), which are exact sums of the int8 quants. */
static void il_pack_q4_k(const void *vq, void *vp, int64_t n) {
    const fr_block_q8_k *y = vq;
    il_act_k *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        for (int j = 0; j < 8; j++) {
            const int s = y[b].bsums[2 * j] + y[b].bsums[2 * j + 1]; /* -4096..4064 */
            const int l = s & 63;                                   /* s = 64 * h + l */
            p[b].sl[j] = (int8_t)l;
            p[b].sh[j] = (int8_t)((s - l) / 64);
        }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))
#define K4_SB (16 * (int)sizeof(fr_block_q4_k)) /* bytes of one super-block of a group */

static inline int32_t ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline __m512i bc32(const int8_t *p) { return _mm512_set1_epi32(ld32(p)); }

/* acc + dot(w, 4 bytes at p broadcast): vpdpbusd with an embedded {1to16} memory
 * operand. GCC 12 does not fold the broadcast and issues a separate vpbroadcastd per
 * vpdpbusd, which doubles the instructions of the inner loop. */
static inline __m512i dpb(__m512i acc, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t(*)[1])p));
    return acc;
}

#define K5_SB (16 * (int)sizeof(fr_block_q5_k))

/* Sub-block j = 2c + hi of one super-block for T tokens: isum[t] += sc[j] * dot_j.
 * hi and q5 (Q5_K: fifth bits in the qh lanes) are constants after inlining; c
 * stays a loop variable. */
FR_INLINE void il_sub_k(int q5, int T, int c, int hi, const uint8_t *blk, const il_act_k *const *a,
                        __m512i *isum) {
    const __m512i m4 = _mm512_set1_epi8(0x0F), m63 = _mm512_set1_epi32(63);
    const int j = 2 * c + hi;
    /* scale of sub-block j for each row: byte j%4 of its dword in X0/X1 */
    const __m512i x = _mm512_loadu_si512(blk + 64 + 64 * (j >> 2));
    const __m512i sc = _mm512_and_si512(_mm512_srl_epi32(x, _mm_cvtsi32_si128(8 * (j & 3))), m63);
    const __m512i sc2 = _mm512_or_si512(sc, _mm512_slli_epi32(sc, 16)); /* in both words */
    const __m512i sc256 = _mm512_or_si512(sc, _mm512_slli_epi32(sc, 24)); /* Q5_K: (sc, 256 sc) */
    const __m512i lo8 = _mm512_set1_epi32(0xFF);
    const __m512i lo16 = _mm512_set1_epi32(0xFFFF);
    const uint8_t *lanes = blk + (q5 ? FR_IL_Q5_QS : 256) + 64 * 8 * c;
    const __m512i bit = _mm512_set1_epi8((char)(1 << j)), b16 = _mm512_set1_epi8(16);
    __m512i w[8];
    for (int i = 0; i < 8; i++) {
        const __m512i raw = _mm512_loadu_si512(lanes + 64 * i);
        w[i] = _mm512_and_si512(hi ? _mm512_srli_epi16(raw, 4) : raw, m4);
        if (q5) { /* + 16 where bit j of the value's qh byte is set */
            const __mmask64 k = _mm512_test_epi8_mask(_mm512_loadu_si512(blk + FR_IL_Q5_QH + 64 * i), bit);
            w[i] = _mm512_mask_add_epi8(w[i], k, w[i], b16);
        }
    }
    for (int t = 0; q5 && t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * j;
        /* the dot (|S| <= 32*31*128 = 126976, past int16) as the int16 pair
         * (S & 255, S >> 8) against (sc, 256 sc) (256 * 63 fits): one vpdpwssd adds
         * sc * S exactly, as Q4_K's one per sub-block */
        const __m512i s0 = dpb(dpb(dpb(dpb(_mm512_setzero_si512(), w[0], q), w[1], q + 4), w[2], q + 8), w[3], q + 12);
        const __m512i s1 = dpb(dpb(dpb(dpb(_mm512_setzero_si512(), w[4], q + 16), w[5], q + 20), w[6], q + 24), w[7],
                               q + 28);
        const __m512i sum = _mm512_add_epi32(s0, s1);
        const __m512i pr =
            _mm512_ternarylogic_epi32(_mm512_and_si512(sum, lo8), _mm512_slli_epi32(sum, 8), lo16, 0xE4);
        isum[t] = _mm512_dpwssd_epi32(isum[t], pr, sc256);
    }
    for (int t = 0; !q5 && t < T; t++) {
        const int8_t *q = a[t]->qs + 32 * j;
        /* the two halves of 16 values (|dot| <= 16*15*128 fits int16) as one int16
         * pair per row, then one vpdpwssd applies the scale to both and accumulates:
         * cheaper than vpmulld + vpaddd on the multiply pipes */
        __m512i s0 = dpb(_mm512_setzero_si512(), w[0], q);
        __m512i s1 = dpb(_mm512_setzero_si512(), w[4], q + 16);
        s0 = dpb(s0, w[1], q + 4);
        s1 = dpb(s1, w[5], q + 20);
        s0 = dpb(s0, w[2], q + 8);
        s1 = dpb(s1, w[6], q + 24);
        s0 = dpb(s0, w[3], q + 12);
        s1 = dpb(s1, w[7], q + 28);
        /* low word from s0, high word from s1 << 16 (ternlog 0xE4: c ? a : b) */
        const __m512i pr = _mm512_ternarylogic_epi32(s0, _mm512_slli_epi32(s1, 16), lo16, 0xE4);
        isum[t] = _mm512_dpwssd_epi32(isum[t], pr, sc2);
    }
}

/* 16 rows x T tokens over the whole row of a group; q5: Q5_K, else Q4_K. */
FR_INLINE void il_tile_k(int q5, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                         size_t ld) {
    const int sb = q5 ? K5_SB : K4_SB;
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    __m512 acc[FR_IL_T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * (size_t)sb;
        /* touch the header lines first: the super-block is then read front to back,
         * which keeps the hardware stream prefetch going on decode (T = 1) */
        _mm_prefetch((const char *)blk, _MM_HINT_T0);
        _mm_prefetch((const char *)blk + 192, _MM_HINT_T0);
        const il_act_k *a[FR_IL_T];
        __m512i isum[FR_IL_T];
        for (int t = 0; t < T; t++) {
            a[t] = (const il_act_k *)(yp + (size_t)t * yp_row) + b;
            isum[t] = _mm512_setzero_si512();
        }
        /* a loop, not unrolled: unrolled, GCC interleaves the sub-blocks and spills */
#pragma GCC unroll 1
        for (int c = 0; c < 4; c++) {
            fr_il_prefetch_slice(blk, (size_t)sb, 2 * c, 8); /* a slice per step (il_drive.h) */
            il_sub_k(q5, T, c, 0, blk, a, isum);
            fr_il_prefetch_slice(blk, (size_t)sb, 2 * c + 1, 8);
            il_sub_k(q5, T, c, 1, blk, a, isum);
        }
        /* the mins as bytes, 4 per dword lane: low nibbles from ML, top 2 bits from
         * bits 6-7 of the X bytes */
        const __m512i ml = _mm512_loadu_si512(blk + 192);
        const __m512i mn0 = _mm512_or_si512(_mm512_and_si512(ml, m0f),
                                            _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(blk + 64), 2), m30));
        const __m512i mn1 =
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(ml, 4), m0f),
                            _mm512_and_si512(_mm512_srli_epi32(_mm512_loadu_si512(blk + 128), 2), m30));
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        const __m512 dm = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(blk + 32)));
        for (int t = 0; t < T; t++) {
            __m512i mh = _mm512_dpbusd_epi32(_mm512_setzero_si512(), mn0, bc32(a[t]->sh));
            mh = _mm512_dpbusd_epi32(mh, mn1, bc32(a[t]->sh + 4));
            __m512i ms = _mm512_dpbusd_epi32(_mm512_slli_epi32(mh, 6), mn0, bc32(a[t]->sl));
            ms = _mm512_dpbusd_epi32(ms, mn1, bc32(a[t]->sl + 4));
            /* (isum * d - msum * dmin) * y_d: three multiply-pipe ops, not four */
            const __m512 f = _mm512_fmsub_ps(_mm512_cvtepi32_ps(isum[t]), dw, _mm512_mul_ps(_mm512_cvtepi32_ps(ms), dm));
            acc[t] = _mm512_fmadd_ps(f, _mm512_set1_ps(a[t]->d), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ld, acc[t]);
}

#define TILE_Q4_K(T, nb, g, yt, yp_row, o, ld) il_tile_k(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_Q5_K(T, nb, g, yt, yp_row, o, ld) il_tile_k(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM(il_gemm_q4_k, TILE_Q4_K, FR_QK_K, K4_SB, sizeof(il_act_k))
FR_IL_DEFINE_GEMM(il_gemm_q5_k, TILE_Q5_K, FR_QK_K, K5_SB, sizeof(il_act_k))

void fr_kernels_install_il_k_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q4_K].il_pack = il_pack_q4_k;
    t[FR_TYPE_Q4_K].il_gemm = il_gemm_q4_k;
    /* the same activations: Q5_K's mins and sums are Q4_K's */
    t[FR_TYPE_Q5_K].il_pack = il_pack_q4_k;
    t[FR_TYPE_Q5_K].il_gemm = il_gemm_q5_k;
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_k_avx512(fr_type_traits *t) { (void)t; }

#endif
