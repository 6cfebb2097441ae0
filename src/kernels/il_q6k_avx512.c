/* il_q6k_avx512.c - AVX-512 VNNI GEMM over IL16 Q6_K weights (layout in
 * kernels/interleave.h), compiled with the AVX-512 flags and installed by
 * il_avx512.c.
 *
 * Per super-block of a 16-row group and one token, all in exact integers:
 *   x_j  = sum over sub-block j (16 values) of (q - 32) * y,   q in 0..63
 *   isum = sum_j sc[j] * x_j                                  sc: int8
 * A sub-block is 4 registers of 6-bit quants (4 values of each of the 16 rows in
 * each dword lane), so vpdpbusd (unsigned q x signed y) against broadcast
 * activation bytes advances the 16 rows at once; the chain starts at -32 * S_j
 * (S_j = sum of the sub-block's y, packed with the activations), which removes
 * the offset for free. |x_j| <= 16 * 32 * 128 = 65536 does not fit int16, so the
 * scale cannot go in by one vpdpwssd on x_j as a word. Instead one vpshufb splits
 * x_j = lo + 256 hi (lo = its low byte, 0..255; hi = bytes 1-2, -254..256) into the
 * word pair (lo, hi), and vpdpwssd against the pair (sc, 256 sc) - both in int16 -
 * adds sc * x_j to isum exactly (|isum| <= 16 * 128 * 65536 = 2^27).
 * Then, per super-block, in float:
 *   acc = fma((float) isum, d_w * d_y, acc)
 * in super-block order: every output is the same sequence of operations whatever
 * tile, token count or thread share it falls in.
 *
 * Why this shape: on Zen 4 vpdpbusd, vpdpwssd and FMA share the two multiply pipes
 * while logic, shifts and shuffles run beside them, so the cost per token and
 * 16x256 is the count of the former: 64 vpdpbusd for the quants, 16 vpdpwssd for
 * the scales and 2 float ops; at 8 tokens a tile runs at the speed of the Q4_K one
 * (3x the row-major dot). The 6-bit decode (about 3 logic ops per register) and
 * the scale words are made once per super-block and serve up to 8 tokens from
 * registers. The layout is read strictly front to back: with the parts visited
 * out of order, decode (T = 1) streamed at 10 GB/s instead of 28. */
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
    int32_t corr[16]; /* -32 * S_j: the start of sub-block j's chain */
    float d;
    uint8_t pad[12]; /* 336 bytes: blocks stay 16-aligned, so no 4-byte read straddles a line */
} il_act_q6;
_Static_assert(sizeof(il_act_q6) == 336, "il_act_q6 layout");
_Static_assert(sizeof(il_act_q6) <= 2 * sizeof(fr_block_q8_k), "il_pack bound");

/* Q8_K row -> il_act_q6 blocks. S_j is summed from the quants themselves, so the
 * result does not depend on the block's bsums. */
static void il_pack_q6_k(const void *vq, void *vp, int64_t n) {
    const fr_block_q8_k *y = vq;
    il_act_q6 *p = vp;
    for (int64_t b = 0; b < n / FR_QK_K; b++) {
        memcpy(p[b].qs, y[b].qs, FR_QK_K);
        for (int j = 0; j < 16; j++) {
            int s = 0;
            for (int i = 0; i < 16; i++) s += y[b].qs[16 * j + i];
            p[b].corr[j] = -32 * s;
        }
        p[b].d = y[b].d;
        memset(p[b].pad, 0, sizeof p[b].pad);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))
/* offsets inside one super-block of a group, as interleave_q6k.c */
#define Q6_SB (16 * (int)sizeof(fr_block_q6_k))

/* acc + dot(w, 4 bytes at p broadcast): vpdpbusd with an embedded {1to16} memory
 * operand (GCC 12 would issue a separate vpbroadcastd per vpdpbusd). */
static inline __m512i dpb(__m512i acc, __m512i w, const int8_t *p) {
    __asm__("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(w), "m"(*(const int32_t(*)[1])p));
    return acc;
}

/* The 16 rows' int8 scales at p as the int16 pair (sc, 256 sc) per dword. */
static inline __m512i scale_pair(const uint8_t *p) {
    const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
    /* low word: sc sign-extended; high word: sc << 24 of the dword = 256 sc
     * (ternlog 0xE4: c ? a : b) */
    return _mm512_ternarylogic_epi32(sc, _mm512_slli_epi32(sc, 24), _mm512_set1_epi32(0xFFFF), 0xE4);
}

/* Sub-blocks j = 8H + 2p + s and j + 4 of one super-block (part m = 2H + s) for T
 * tokens: isum[t] += sc[j] x_j + sc[j+4] x_{j+4}. p is a constant after inlining
 * (which qh bit pairs: the shifts), m a loop variable. */
FR_INLINE void il_unit_q6(int T, int m, int p, const uint8_t *blk, const il_act_q6 *const *a, __m512i *isum) {
    const __m512i m0f = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    const int j = 8 * (m >> 1) + 2 * p + (m & 1);
    const uint8_t *part = blk + FR_IL_Q6_PART0 + FR_IL_Q6_PART * m;
    const uint8_t *qh = part + FR_IL_Q6_P_QH, *ql = part + FR_IL_Q6_P_QL + 256 * p;
    /* w[k]: values 4k..4k+3 of sub-block j (low nibbles, qh bit pair p); w[4+k]:
     * of sub-block j+4 (high nibbles, bit pair p+2). A word shift brings the pair
     * to bits 4-5; the ternlog (0xF8: a | (b & c)) masks off what else it moved. */
    __m512i w[8];
    for (int k = 0; k < 4; k++) {
        const __m512i l = _mm512_loadu_si512(ql + 64 * k), hb = _mm512_loadu_si512(qh + 64 * k);
        const __m512i h0 = p ? _mm512_slli_epi16(hb, 2) : _mm512_slli_epi16(hb, 4);
        const __m512i h1 = p ? _mm512_srli_epi16(hb, 2) : hb;
        w[k] = _mm512_ternarylogic_epi32(_mm512_and_si512(l, m0f), h0, m30, 0xF8);
        w[4 + k] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(l, 4), m0f), h1, m30, 0xF8);
    }
    /* scale slots p and p + 2 of the part: sub-blocks j and j + 4 */
    const __m512i sc0 = scale_pair(part + 16 * p), sc1 = scale_pair(part + 16 * (p + 2));
    /* per dword: bytes (0, zero, 1, 2) -> words (low byte of x, x >> 8) */
    const __m512i split =
        _mm512_broadcast_i32x4(_mm_setr_epi32(0x02018000, 0x06058004, 0x0A098008, 0x0E0D800C));
    for (int t = 0; t < T; t++) {
        const int8_t *q0 = a[t]->qs + 16 * j, *q1 = q0 + 64;
        __m512i s0 = _mm512_set1_epi32(a[t]->corr[j]);
        __m512i s1 = _mm512_set1_epi32(a[t]->corr[j + 4]);
        s0 = dpb(s0, w[0], q0);
        s1 = dpb(s1, w[4], q1);
        s0 = dpb(s0, w[1], q0 + 4);
        s1 = dpb(s1, w[5], q1 + 4);
        s0 = dpb(s0, w[2], q0 + 8);
        s1 = dpb(s1, w[6], q1 + 8);
        s0 = dpb(s0, w[3], q0 + 12);
        s1 = dpb(s1, w[7], q1 + 12);
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_shuffle_epi8(s0, split), sc0);
        isum[t] = _mm512_dpwssd_epi32(isum[t], _mm512_shuffle_epi8(s1, split), sc1);
    }
}

/* 16 rows x T tokens over the whole row of a group. */
FR_INLINE void il_tile_q6(int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                          size_t ld) {
    __m512 acc[FR_IL_T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * Q6_SB;
        const il_act_q6 *a[FR_IL_T];
        __m512i isum[FR_IL_T];
        for (int t = 0; t < T; t++) {
            a[t] = (const il_act_q6 *)(yp + (size_t)t * yp_row) + b;
            isum[t] = _mm512_setzero_si512();
        }
        /* a loop, not unrolled: unrolled, GCC interleaves the units and spills */
#pragma GCC unroll 1
        for (int m = 0; m < 4; m++) {
            fr_il_prefetch_slice(blk, Q6_SB, 2 * m, 8);
            il_unit_q6(T, m, 0, blk, a, isum);
            fr_il_prefetch_slice(blk, Q6_SB, 2 * m + 1, 8);
            il_unit_q6(T, m, 1, blk, a, isum);
        }
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
        for (int t = 0; t < T; t++)
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[t]), _mm512_mul_ps(dw, _mm512_set1_ps(a[t]->d)), acc[t]);
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ld, acc[t]);
}

FR_IL_DEFINE_GEMM(il_gemm_q6_k, il_tile_q6, FR_QK_K, Q6_SB, sizeof(il_act_q6))

void fr_kernels_install_il_q6k_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q6_K].il_pack = il_pack_q6_k;
    t[FR_TYPE_Q6_K].il_gemm = il_gemm_q6_k;
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_q6k_avx512(fr_type_traits *t) { (void)t; }

#endif
