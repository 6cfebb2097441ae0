/* il_avx2.c - AVX2 GEMM over IL16 weights (Q4_0, Q8_0; layout in
 * kernels/interleave.h), for CPUs with AVX2 + FMA but no AVX-512 VNNI. Compiled
 * with the AVX2 level's flags (-mavx2 -mfma -mf16c) and installed by cpu_avx2.c.
 *
 * A 64-byte lane of a group holds 4 consecutive quants of each of its 16 rows; its
 * two 32-byte halves are one ymm register each, rows 0..7 and rows 8..15 (4 bytes
 * per row in each dword). The tile walks the halves one after the other: for one
 * half, 8 registers (Q4_0: 4 lanes split into nibbles; Q8_0: the 8 lanes) against
 * the broadcast activation bytes 4k..4k+3 give the block's 8 integer dots, with no
 * horizontal sums, and the unpacked registers serve up to IL2_T tokens.
 *
 * Without VNNI the byte products need other instructions, chosen so that no sum
 * can saturate:
 *  - Q4_0: vpmaddubsw (unsigned x signed bytes -> saturating int16 sums of pairs).
 *    Nibbles 0..15 x int8 make a pair of at most 2 * 15 * 128 = 3840 in magnitude,
 *    so the block's 8 products add up in int16 (<= 30720) before one vpmaddwd
 *    widens them; the nibble offset comes back as corr = -8 * sum y, packed with
 *    the activations.
 *  - Q8_0: vpmaddubsw on the stored q + 128 (0..255) would saturate (2 * 255 *
 *    127 > 32767), and its sign trick (|q| times y with q's sign) costs a vpsignb
 *    and a vpmaddwd per product on the same two pipes. Instead the activations are
 *    packed as int16, and each weight dword (4 values of a row) is split by shifts
 *    into its even and its odd bytes, sign-extended to words after flipping the
 *    bias back (q = stored ^ 0x80): two vpmaddwd against the word pairs (y0, y2)
 *    and (y1, y3) add the four exact products in int32. Every int8 y, -128
 *    included, is fine.
 * The block's int32 dot is then exact and, per block in block order, as the
 * AVX-512 kernel and llama.cpp:
 *   acc = fma((float) isum, d_w * d_y, acc)
 * so every output is the same sequence of operations whatever tile, token count or
 * thread share it falls in - and the same bits as the AVX-512 IL16 GEMM. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx2.h"
#include "kernels/il_drive.h"

/* Tokens per tile: 8 per-token sums and the block's two unpacked registers (plus
 * the broadcast and constants) fit the 16 ymm registers; the float accumulators of
 * the two halves stay in L1 (the compiler keeps them there, loaded and stored once
 * per block). 4 to 10 ran within noise of each other on Zen 4: the kernels are
 * bound by instruction throughput, not by re-reading the weights per tile. */
#define IL2_T 8

typedef fr_il_act il_act; /* the Q4_0 GEMM's activation block */

/* One Q8_0 activation block: the quants widened to int16, each group of 4 values
 * y0..y3 stored as the word pairs (y0, y2), (y1, y3) - the order in which the
 * kernel splits a weight dword into its even and odd bytes. */
typedef struct {
    int16_t qs[32];
    float d;
} il_act8;
_Static_assert(sizeof(il_act8) == 68, "il_act8 layout");
_Static_assert(sizeof(il_act8) <= 2 * sizeof(fr_block_q8_0), "il_pack bound");

static void il_pack_q4_0(const void *vq, void *vp, int64_t n) { fr_il_pack_act(vq, vp, n, 8); }

/* Q8_0 activation row (n values) -> il_act8 blocks (the Q8_0 GEMM's). */
static void il_pack_q8_0(const void *vq, void *vp, int64_t n) {
    const fr_block_q8_0 *y = vq;
    il_act8 *p = vp;
    for (int64_t b = 0; b < n / FR_QK; b++) {
        for (int i = 0; i < 32; i += 4) {
            p[b].qs[i] = y[b].qs[i];
            p[b].qs[i + 1] = y[b].qs[i + 2];
            p[b].qs[i + 2] = y[b].qs[i + 1];
            p[b].qs[i + 3] = y[b].qs[i + 3];
        }
        p[b].d = _cvtsh_ss(y[b].d);
    }
}

#define FR_INLINE static inline __attribute__((always_inline))

/* Compiler barriers, free at run time. GCC otherwise reassociates the integer
 * chains below into trees of products (dozens of live registers, spilled) and
 * hoists the activation broadcasts out of the half loop (64 of them, spilled):
 * keep pins an accumulator's value in a register at that point of the chain;
 * opaque hides that a pointer is the same in both halves. */
static inline void keep(__m256i *v) { __asm__("" : "+x"(*v)); }
static inline const uint8_t *opaque(const uint8_t *p) {
    __asm__("" : "+r"(p));
    return p;
}

/* The 4 bytes at p (2 int16 at p for Q8_0) in every dword. */
static inline __m256i bc32(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

/* Rows 8h..8h+7 of Q4_0 block blk for T tokens (quants q[t], offsets corr[t]): s[t]
 * = the 8 exact int32 dots. */
FR_INLINE void half_q4_0(int T, const uint8_t *blk, int h, const int8_t *const *q, const il_act *const *a,
                         __m256i *s) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
    for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(blk + 32 + 64 * k + 32 * h));
        const __m256i lo = _mm256_and_si256(raw, m4);                        /* values 4k.. */
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4); /* values 16 + 4k.. */
        for (int t = 0; t < T; t++) {
            s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(lo, bc32(q[t] + 4 * k)));
            s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(hi, bc32(q[t] + 16 + 4 * k)));
            keep(&s[t]);
        }
    }
    for (int t = 0; t < T; t++) s[t] = _mm256_add_epi32(_mm256_madd_epi16(s[t], ones), _mm256_set1_epi32(a[t]->corr));
}

/* Rows 8h..8h+7 of Q8_0 block blk for T tokens (widened quants q[t]): s[t] = the
 * 8 exact int32 dots. Each weight dword (4 values of one row, q + 128) becomes the
 * words of its even bytes and of its odd bytes, sign-extended in place by shifts,
 * and vpmaddwd against the activation pairs (y0, y2) and (y1, y3) adds all four
 * products in int32: no saturation anywhere (|pair| <= 2 * 128 * 128). */
FR_INLINE void half_q8_0(int T, const uint8_t *blk, int h, const int16_t *const *q, __m256i *s) {
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
        const __m256i w = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 32 + 64 * k + 32 * h)), x80);
        const __m256i ev = _mm256_srai_epi16(_mm256_slli_epi16(w, 8), 8); /* values 4k, 4k + 2 */
        const __m256i od = _mm256_srai_epi16(w, 8);                        /* values 4k + 1, 4k + 3 */
        for (int t = 0; t < T; t++) {
            s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(ev, bc32(q[t] + 4 * k)));
            s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(od, bc32(q[t] + 4 * k + 2)));
            keep(&s[t]);
        }
    }
}

/* 16 rows x T tokens over the whole row of a group; q8 selects the format (a
 * constant after inlining). */
FR_INLINE void il_tile2(int q8, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                        size_t ld) {
    const size_t bs = q8 ? sizeof(fr_block_q8_0) : sizeof(fr_block_q4_0);
    const size_t as = q8 ? sizeof(il_act8) : sizeof(il_act);
    __m256 acc[2][IL2_T];
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) acc[h][t] = _mm256_setzero_ps();
    for (int b = 0; b < nb; b++) {
        const uint8_t *blk = g + (size_t)b * 16 * bs;
        if (!q8) fr_il_prefetch(blk, 16 * bs); /* Q8_0 streams ~3 % faster without (il_drive.h) */
        const uint8_t *a[IL2_T];
        float dy[IL2_T];
        for (int t = 0; t < T; t++) {
            a[t] = yp + (size_t)t * yp_row + (size_t)b * as;
            dy[t] = q8 ? ((const il_act8 *)a[t])->d : ((const il_act *)a[t])->d;
        }
        for (int h = 0; h < 2; h++) { /* rows 8h .. 8h + 7 */
            __m256i s[IL2_T];
            if (q8) {
                const int16_t *q[IL2_T];
                for (int t = 0; t < T; t++) q[t] = (const int16_t *)opaque(a[t]);
                half_q8_0(T, blk, h, q, s);
            } else {
                const int8_t *q[IL2_T];
                const il_act *aa[IL2_T];
                for (int t = 0; t < T; t++) {
                    q[t] = (const int8_t *)opaque(a[t]);
                    aa[t] = (const il_act *)a[t];
                }
                half_q4_0(T, blk, h, q, aa, s);
            }
            const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(blk + 16 * h)));
            for (int t = 0; t < T; t++)
                acc[h][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[t]), _mm256_mul_ps(dw, _mm256_set1_ps(dy[t])),
                                            acc[h][t]);
        }
    }
    for (int h = 0; h < 2; h++)
        for (int t = 0; t < T; t++) _mm256_storeu_ps(out + (size_t)t * ld + 8 * h, acc[h][t]);
}

#define TILE_Q4_0(T, nb, g, yt, yp_row, o, ld) il_tile2(0, T, nb, g, yt, yp_row, o, ld)
#define TILE_Q8_0(T, nb, g, yt, yp_row, o, ld) il_tile2(1, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM_T(il_gemm_q4_0, TILE_Q4_0, IL2_T, FR_QK, 16 * sizeof(fr_block_q4_0), sizeof(il_act))
FR_IL_DEFINE_GEMM_T(il_gemm_q8_0, TILE_Q8_0, IL2_T, FR_QK, 16 * sizeof(fr_block_q8_0), sizeof(il_act8))

void fr_kernels_install_il_avx2(fr_type_traits *t) {
    t[FR_TYPE_Q4_0].il_pack = il_pack_q4_0;
    t[FR_TYPE_Q4_0].il_gemm = il_gemm_q4_0;
    t[FR_TYPE_Q8_0].il_pack = il_pack_q8_0;
    t[FR_TYPE_Q8_0].il_gemm = il_gemm_q8_0;
    fr_kernels_install_il_k_avx2(t);
    fr_kernels_install_il_q6k_avx2(t);
    fr_kernels_install_il_f16_avx2(t);
    fr_kernels_install_il_lowbit_avx2(t);
}

#else

#include "kernels/il_avx2.h"

void fr_kernels_install_il_avx2(fr_type_traits *t) { (void)t; }

#endif
