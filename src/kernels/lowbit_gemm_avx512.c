/* lowbit_gemm_avx512.c - prefill GEMMs (AVX-512 F/BW/VL/VNNI) for Q2_K, Q3_K, IQ4_XS
 * Q5_K and the IQ3 / IQ2 / IQ1 lattice types against Q8_K activations (the traits' `gemm`, see
 * core/types.h).
 *
 * Why: with one vec_dot per row and token, a prompt of T tokens unpacks every
 * weight block T times; here each super-block is unpacked once into registers
 * (64 unsigned levels + their 16-bit scales per chunk) and then dotted with up to
 * TT (8) tokens' activations. Per (row, token) the operations are the same whatever the
 * tile (a token is never combined with another), so outputs do not depend on how
 * rows and tokens are split. The integer parts are exact; against vec_dot only the
 * float order of the final lanes' sum may differ (same bound as the dots:
 * 2e-5 * sum |x y| + 1e-6). Activations are the Q8_K rows as converted (no pack). */
#include "kernels/lowbit.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512VNNI__)

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "kernels/il_drive.h"
#include "kernels/lowbit_avx512_iq.h"

enum { TT = 8 }; /* tokens per tile */

/* One super-block unpacked: 4 chunks of 64 unsigned levels with their scales, the
 * 16 int16 sub-block scales (for the bsums terms), and a per-chunk sign mask (IQ4). */
typedef struct {
    __m512i v[4], sc[4];
    __m256i sc16, mins16;
    __mmask64 neg[4];
    float d, dmin;
} unpacked;

static inline void unpack_q3_k(const fr_block_q3_k *x, unpacked *u) {
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    uint32_t o[4];
    fr_q3k_scales_w(x->scales, o);
    const __m128i s8 = _mm_sub_epi8(_mm_setr_epi32((int)o[0], (int)o[1], (int)o[2], (int)o[3]), _mm_set1_epi8(32));
    u->sc16 = _mm256_cvtepi8_epi16(s8);
    const __m512i hm = dup256(ld256(x->hmask));
    for (int c = 0; c < 4; c++) {
        const __m512i q = dup256(ld256(x->qs + 32 * (c / 2)));
        const int k = 4 * (c % 2);
        const __m512i hb = _mm512_slli_epi16(_mm512_and_si512(srl2(hm, 2 * c, 2 * c + 1), one), 2);
        u->v[c] = _mm512_or_si512(_mm512_and_si512(srl2(q, k, k + 2), m3), hb);
        u->sc[c] = scales4(u->sc16, 4 * c);
    }
    u->d = h2f(x->d);
}

static inline void unpack_q2_k(const fr_block_q2_k *x, unpacked *u) {
    const __m512i m3 = _mm512_set1_epi8(3);
    const __m128i m4 = _mm_set1_epi8(0xF), sc8 = _mm_loadu_si128((const __m128i *)x->scales);
    u->sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sc8, m4));
    u->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    for (int c = 0; c < 4; c++) {
        const __m512i q = dup256(ld256(x->qs + 32 * (c / 2)));
        const int k = 4 * (c % 2);
        u->v[c] = _mm512_and_si512(srl2(q, k, k + 2), m3);
        u->sc[c] = scales4(u->sc16, 4 * c);
    }
    u->d = h2f(x->d);
    u->dmin = h2f(x->dmin);
}

static inline void unpack_iq4_xs(const fr_block_iq4_xs *x, unpacked *u) {
    const __m512i table = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)fr_iq4nl_values));
    for (int c = 0; c < 4; c++) {
        const int j = 2 * c;
        const __m128i a = _mm_loadu_si128((const __m128i *)(x->qs + 16 * j));
        const __m128i b = _mm_loadu_si128((const __m128i *)(x->qs + 16 * j + 16));
        const __m256i lo = _mm256_set_m128i(_mm_srli_epi16(a, 4), a), hi = _mm256_set_m128i(_mm_srli_epi16(b, 4), b);
        const __m512i idx = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), _mm512_set1_epi8(0xF));
        const __m512i v = _mm512_shuffle_epi8(table, idx);
        u->neg[c] = _mm512_movepi8_mask(v);
        u->v[c] = _mm512_abs_epi8(v);
        const int l0 = ((x->scales_l[c] & 0xF) | (((x->scales_h >> (2 * j)) & 3) << 4)) - 32;
        const int l1 = ((x->scales_l[c] >> 4) | (((x->scales_h >> (2 * j + 2)) & 3) << 4)) - 32;
        u->sc[c] = _mm512_inserti64x4(_mm512_set1_epi16((short)l0), _mm256_set1_epi16((short)l1), 1);
    }
    u->d = h2f(x->d);
}

/* The lattice types: 4 decoded pairs of groups; d carries the type's constant
 * factor (1/8 IQ2, 1/4 IQ3_XXS, 1 IQ3_S: powers of two, so exact). */
#define UNPACK_IQ(name, blk, D, FACTOR)                               \
    static inline void unpack_##name(const blk *x, unpacked *u) {     \
        fr_iq_pair p[4];                                              \
        dec_##name(x, p);                                             \
        for (int c = 0; c < 4; c++)                                   \
            u->v[c] = p[c].g, u->sc[c] = p[c].sc, u->neg[c] = p[c].neg; \
        u->d = h2f(D(*x)) * FACTOR;                                   \
    }
#define D_FIELD(xb) ((xb).d)
#define D_IQ1M(xb) iq1m_d16(&(xb))
UNPACK_IQ(iq2_xxs, fr_block_iq2_xxs, D_FIELD, 0.125f)
UNPACK_IQ(iq2_xs, fr_block_iq2_xs, D_FIELD, 0.125f)
UNPACK_IQ(iq2_s, fr_block_iq2_s, D_FIELD, 0.125f)
UNPACK_IQ(iq3_xxs, fr_block_iq3_xxs, D_FIELD, 0.25f)
UNPACK_IQ(iq3_s, fr_block_iq3_s, D_FIELD, 1.0f)
UNPACK_IQ(iq1_s, fr_block_iq1_s, D_FIELD, 0.125f) /* 8 x value: see iq1_pair */
UNPACK_IQ(iq1_m, fr_block_iq1_m, D_IQ1M, 0.125f)

/* Q5_K row-major (matrices whose row count is not a multiple of 16, or kept in
 * the file mapping; the others run the IL16 GEMM of il_k_avx512.c): 8 sub-blocks of 32, 6-bit scales and mins packed as in Q4_K,
 * value = d * sc * q - dmin * m with q = 4 low bits (qs) + a fifth (qh). */
static inline void unpack_q5_k(const fr_block_q5_k *x, unpacked *u) {
    uint32_t a[3];
    memcpy(a, x->scales, 12);
    const uint32_t w[4] = {a[0] & 0x3f3f3f3f, (a[2] & 0x0f0f0f0f) | (((a[0] >> 6) & 0x03030303) << 4),
                           a[1] & 0x3f3f3f3f, ((a[2] >> 4) & 0x0f0f0f0f) | (((a[1] >> 6) & 0x03030303) << 4)};
    /* scales 0..7 then mins 0..7, built in registers (see fr_q3k_scales_w); sc16 /
     * mins16 per 16 values: each 32-value sub-block's byte twice */
    const __m128i dup = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    const __m128i v = _mm_setr_epi32((int)w[0], (int)w[1], (int)w[2], (int)w[3]);
    u->sc16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(v, dup));
    u->mins16 = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_srli_si128(v, 8), dup));
    const __m256i m4 = _mm256_set1_epi8(0xF), one = _mm256_set1_epi8(1), h = ld256(x->qh);
    for (int c = 0; c < 4; c++) {
        const __m256i q = ld256(x->qs + 32 * c);
        const __m256i lo = _mm256_or_si256(_mm256_and_si256(q, m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c), one), 4));
        const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                           _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2 * c + 1), one), 4));
        u->v[c] = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        u->sc[c] = scales4(u->sc16, 4 * c);
    }
    u->d = h2f(x->d);
    u->dmin = h2f(x->dmin);
}

/* kinds at or after K_IQ4XS hold magnitudes and a sign mask; K_Q2 and K_Q5 have mins */
enum { K_Q2, K_Q5, K_Q3, K_IQ4XS, K_IQ2XXS, K_IQ2XS, K_IQ2S, K_IQ3XXS, K_IQ3S, K_IQ1S, K_IQ1M };

/* One unpacked block against one token's Q8_K block: adds into acc (d * y.d * int
 * sums) and, for Q2_K, accm (the mins term). */
static inline __attribute__((always_inline)) void block_token(const unpacked *u, const fr_block_q8_k *y, int kind,
                                                             __m512 *acc, __m256 *accm) {
    __m512i isum = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
        __m512i q = _mm512_loadu_si512(y->qs + 64 * c);
        if (kind >= K_IQ4XS) q = _mm512_mask_sub_epi8(q, u->neg[c], _mm512_setzero_si512(), q);
        isum = _mm512_dpwssd_epi32(isum, _mm512_maddubs_epi16(u->v[c], q), u->sc[c]);
    }
    if (kind == K_Q3) {
        const __m256i off = _mm256_slli_epi32(_mm256_madd_epi16(u->sc16, ld256(y->bsums)), 2);
        isum = _mm512_sub_epi32(isum, _mm512_castsi256_si512(off));
    }
    if (kind == K_Q2 || kind == K_Q5) {
        const __m256i pm = _mm256_madd_epi16(ld256(y->bsums), u->mins16);
        *accm = _mm256_fmadd_ps(_mm256_set1_ps(u->dmin * y->d), _mm256_cvtepi32_ps(pm), *accm);
    }
    *acc = _mm512_fmadd_ps(_mm512_set1_ps(u->d * y->d), _mm512_cvtepi32_ps(isum), *acc);
}

static inline __attribute__((always_inline)) void gemm_kind(int n, const void *w, size_t w_row, int n_rows,
                                                           const void *yp, size_t yp_row, int n_tok, float *out,
                                                           size_t ld, int kind) {
    const int nb = n / FR_QK_K;
    const size_t bsz = w_row / (size_t)nb;
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *row = (const uint8_t *)w + (size_t)r * w_row;
        for (int t0 = 0; t0 < n_tok; t0 += TT) {
            const int nt = n_tok - t0 < TT ? n_tok - t0 : TT;
            __m512 acc[TT];
            __m256 accm[TT];
            for (int t = 0; t < TT; t++) acc[t] = _mm512_setzero_ps(), accm[t] = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                unpacked u;
                /* decode reads each block once: keep DRAM reads in flight ahead of
                 * the kernel, as the IL16 kernels do (kernels/il_drive.h) */
                fr_il_prefetch(row + b * bsz, bsz);
                switch (kind) {
                case K_Q3: unpack_q3_k((const fr_block_q3_k *)row + b, &u); break;
                case K_Q2: unpack_q2_k((const fr_block_q2_k *)row + b, &u); break;
                case K_Q5: unpack_q5_k((const fr_block_q5_k *)row + b, &u); break;
                case K_IQ4XS: unpack_iq4_xs((const fr_block_iq4_xs *)row + b, &u); break;
                case K_IQ2XXS: unpack_iq2_xxs((const fr_block_iq2_xxs *)row + b, &u); break;
                case K_IQ2XS: unpack_iq2_xs((const fr_block_iq2_xs *)row + b, &u); break;
                case K_IQ2S: unpack_iq2_s((const fr_block_iq2_s *)row + b, &u); break;
                case K_IQ3XXS: unpack_iq3_xxs((const fr_block_iq3_xxs *)row + b, &u); break;
                case K_IQ1S: unpack_iq1_s((const fr_block_iq1_s *)row + b, &u); break;
                case K_IQ1M: unpack_iq1_m((const fr_block_iq1_m *)row + b, &u); break;
                default: unpack_iq3_s((const fr_block_iq3_s *)row + b, &u); break;
                }
                for (int t = 0; t < nt; t++) {
                    const fr_block_q8_k *y = (const fr_block_q8_k *)((const uint8_t *)yp + (size_t)(t0 + t) * yp_row);
                    block_token(&u, y + b, kind, &acc[t], &accm[t]);
                }
            }
            for (int t = 0; t < nt; t++) {
                float s = _mm512_reduce_add_ps(acc[t]);
                if (kind == K_Q2 || kind == K_Q5) {
                    const __m256 m = accm[t];
                    __m128 h = _mm_add_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
                    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
                    h = _mm_add_ss(h, _mm_movehdup_ps(h));
                    s -= _mm_cvtss_f32(h);
                }
                out[(size_t)(t0 + t) * ld + r] = s;
            }
        }
    }
}

#define GEMM(name, KIND)                                                                                        \
    static void gemm_##name(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row,      \
                            int n_tok, float *out, size_t ld) {                                                   \
        gemm_kind(n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld, KIND);                                      \
    }
GEMM(q5_k, K_Q5)
GEMM(iq2_xxs, K_IQ2XXS)
GEMM(iq2_xs, K_IQ2XS)
GEMM(iq2_s, K_IQ2S)
GEMM(iq3_xxs, K_IQ3XXS)
GEMM(iq3_s, K_IQ3S)
GEMM(iq1_s, K_IQ1S)
GEMM(iq1_m, K_IQ1M)

static void gemm_q3_k(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok,
                      float *out, size_t ld) {
    gemm_kind(n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld, K_Q3);
}
static void gemm_q2_k(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok,
                      float *out, size_t ld) {
    gemm_kind(n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld, K_Q2);
}
static void gemm_iq4_xs(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok,
                        float *out, size_t ld) {
    gemm_kind(n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld, K_IQ4XS);
}

int fr_kernels_install_lowbit_gemm_avx512(fr_type_traits *t) {
    t[FR_TYPE_Q2_K].gemm = gemm_q2_k;
    t[FR_TYPE_Q3_K].gemm = gemm_q3_k;
    t[FR_TYPE_IQ4_XS].gemm = gemm_iq4_xs;
    t[FR_TYPE_Q5_K].gemm = gemm_q5_k;
    t[FR_TYPE_IQ2_XXS].gemm = gemm_iq2_xxs;
    t[FR_TYPE_IQ2_XS].gemm = gemm_iq2_xs;
    t[FR_TYPE_IQ2_S].gemm = gemm_iq2_s;
    t[FR_TYPE_IQ3_XXS].gemm = gemm_iq3_xxs;
    t[FR_TYPE_IQ3_S].gemm = gemm_iq3_s;
    t[FR_TYPE_IQ1_S].gemm = gemm_iq1_s;
    t[FR_TYPE_IQ1_M].gemm = gemm_iq1_m;
    return 1;
}

#else

int fr_kernels_install_lowbit_gemm_avx512(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
