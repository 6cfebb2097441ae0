/* il_avx512.c - AVX-512 VNNI GEMM over IL16 weights (Q4_0, Q8_0, IQ4_NL; layout in
 * kernels/interleave.h), compiled with the AVX-512 flags of cpu_avx512.c and
 * installed by it.
 *
 * A 16-row group's block b is 8 registers of unsigned weight bytes (Q4_0: the 4
 * stored lanes split into low and high nibbles; Q8_0: the 8 stored lanes, q + 128),
 * register k holding values 4k..4k+3 of each row; IQ4_NL: Q4_0's nibbles looked up
 * (vpshufb) in its 16 levels + 128, so c = 128 as for Q8_0. For one token, 8 vpdpbusd against
 * the broadcast activation bytes 4k..4k+3 give the block's 16 integer dots at once:
 *   sum (q + c) y = sum q y + c sum y,
 * and the accumulator starts at -c sum y (packed with the activations), so the int32
 * result is the exact dot. Then, per block, as llama.cpp:
 *   acc = fma((float) isum, d_w * d_y, acc)
 * in block order: every output is the same sequence of operations whatever tile,
 * token count or thread share it falls in. One unpacked block serves up to 8 tokens
 * from registers. */
#include "kernels/dispatch.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__) && \
    defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant.h"
#include "core/quant_lowbit.h"
#include "kernels/il_avx512.h"

typedef fr_il_act il_act;

static void il_pack_q4_0(const void *vq, void *vp, int64_t n) { fr_il_pack_act(vq, vp, n, 8); }
static void il_pack_q8_0(const void *vq, void *vp, int64_t n) { fr_il_pack_act(vq, vp, n, 128); }

enum { K_Q4_0, K_Q8_0, K_IQ4_NL };

#define FR_INLINE static inline __attribute__((always_inline))

static inline int32_t ld32(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* 16 rows x T tokens over the whole row of a group. */
FR_INLINE void il_tile(int kind, int T, int nb, const uint8_t *g, const uint8_t *yp, size_t yp_row, float *out,
                       size_t ld) {
    const int q8 = kind == K_Q8_0;
    const size_t bs = q8 ? sizeof(fr_block_q8_0) : sizeof(fr_block_q4_0);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i table =
        _mm512_broadcast_i32x4(_mm_xor_si128(_mm_loadu_si128((const __m128i *)fr_iq4nl_values), _mm_set1_epi8((char)0x80)));
    __m512 acc[FR_IL_T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int b = 0; b < nb; b++) {
        __m512 dw;
        __m512i w[8];
        {
            const uint8_t *blk = g + (size_t)b * 16 * bs;
            if (!q8) fr_il_prefetch(blk, 16 * bs); /* Q8_0 streams ~3 % faster without (il_drive.h) */
            dw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)blk));
            if (q8) {
                for (int k = 0; k < 8; k++) w[k] = _mm512_loadu_si512(blk + 32 + 64 * k);
            } else {
                for (int k = 0; k < 4; k++) {
                    const __m512i raw = _mm512_loadu_si512(blk + 32 + 64 * k);
                    w[k] = _mm512_and_si512(raw, m4);
                    w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);
                    if (kind == K_IQ4_NL) {
                        w[k] = _mm512_shuffle_epi8(table, w[k]);
                        w[k + 4] = _mm512_shuffle_epi8(table, w[k + 4]);
                    }
                }
            }
        }
        for (int t = 0; t < T; t++) {
            const il_act *a = (const il_act *)(yp + (size_t)t * yp_row) + b;
            __m512i s = _mm512_set1_epi32(a->corr);
            for (int k = 0; k < 8; k++) s = _mm512_dpbusd_epi32(s, w[k], _mm512_set1_epi32(ld32(a->qs + 4 * k)));
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(dw, _mm512_set1_ps(a->d)), acc[t]);
        }
    }
    for (int t = 0; t < T; t++) _mm512_storeu_ps(out + (size_t)t * ld, acc[t]);
}

#define TILE_Q4_0(T, nb, g, yt, yp_row, o, ld) il_tile(K_Q4_0, T, nb, g, yt, yp_row, o, ld)
#define TILE_Q8_0(T, nb, g, yt, yp_row, o, ld) il_tile(K_Q8_0, T, nb, g, yt, yp_row, o, ld)
#define TILE_IQ4_NL(T, nb, g, yt, yp_row, o, ld) il_tile(K_IQ4_NL, T, nb, g, yt, yp_row, o, ld)
FR_IL_DEFINE_GEMM(il_gemm_q4_0, TILE_Q4_0, FR_QK, 16 * sizeof(fr_block_q4_0), sizeof(il_act))
FR_IL_DEFINE_GEMM(il_gemm_q8_0, TILE_Q8_0, FR_QK, 16 * sizeof(fr_block_q8_0), sizeof(il_act))
FR_IL_DEFINE_GEMM(il_gemm_iq4_nl, TILE_IQ4_NL, FR_QK, 16 * sizeof(fr_block_iq4_nl), sizeof(il_act))

void fr_kernels_install_il_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q4_0].il_pack = il_pack_q4_0;
    t[FR_TYPE_Q4_0].il_gemm = il_gemm_q4_0;
    t[FR_TYPE_Q8_0].il_pack = il_pack_q8_0;
    t[FR_TYPE_Q8_0].il_gemm = il_gemm_q8_0;
    t[FR_TYPE_IQ4_NL].il_pack = il_pack_q8_0; /* levels + 128: the Q8_0 bias */
    t[FR_TYPE_IQ4_NL].il_gemm = il_gemm_iq4_nl;
    fr_kernels_install_il_k_avx512(t);
    fr_kernels_install_il_q6k_avx512(t);
    fr_kernels_install_il_f16_avx512(t);
    fr_kernels_install_il_lowbit_avx512(t);
}

#else

#include "kernels/il_avx512.h"

void fr_kernels_install_il_avx512(fr_type_traits *t) { (void)t; }

#endif
