/* lowbit_gemm_avx2.c - prefill GEMMs (AVX2 + FMA + F16C) for the low-bit types that
 * have no interleaved layout at this level: Q2_K, Q3_K, IQ4_XS and the IQ3 / IQ2 /
 * IQ1 lattice types, against Q8_K activations (the traits' `gemm`, see
 * core/types.h).
 *
 * Why: with one vec_dot per row and token, a prompt of T tokens decodes every weight
 * block T times, and decoding (grid lookups, sign expansion, bit fields) is most of a
 * low-bit dot's work: these types prefilled at 0.05-0.25x of Q4_K's interleaved tile
 * at this level. Here each super-block is decoded once into 8 groups of 32 unsigned
 * levels (+ their sign sources and int16 scales) and dotted with up to TT tokens.
 *
 * Contract (as lowbit_gemm_avx512.c): the integer parts are exact; per (row, token)
 * the operations are the same whatever the tile, so outputs do not depend on how rows
 * and tokens are split; against the scalar vec_dot only the float order differs
 * (2e-5 * sum |x y| + 1e-6). Activation quants in [-127, 127] (vpsignb cannot negate
 * -128). A token gives the same bits alone as in a batch: one token goes to the
 * type's AVX2 dot where that dot's integer lanes and float operations are these
 * (fr_lowbit_avx2_decode_dot; it decodes group by group in registers, ~15 % faster
 * than through the unpacked block), and through the unpacked block otherwise. */
#include "kernels/lowbit.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "kernels/il_drive.h"
#include "kernels/lowbit_avx2_iq.h"

enum { TT = 8 }; /* tokens per tile */

/* One super-block decoded: per group of 32 the unsigned levels, the sign sources
 * (kinds >= K_IQ4XS: each activation takes the sign of its byte here) and the
 * scales; per 16 values the terms that go through Q8_K's bsums (Q3_K's offset,
 * Q2_K's mins). Kept in memory: it is reused by every token of the tile. */
typedef struct {
    __m256i v[8], s[8], sc[8];
    __m256i sc16, mins16;
    float d, dmin;
} unpacked;

/* kinds at or after K_IQ4XS are signed; K_Q2 has mins */
enum { K_Q2, K_Q3, K_IQ4XS, K_IQ2XXS, K_IQ2XS, K_IQ2S, K_IQ3XXS, K_IQ3S, K_IQ1S, K_IQ1M };

static inline void unpack_q2_k(const fr_block_q2_k *x, unpacked *u) {
    const __m128i sc8 = _mm_loadu_si128((const __m128i *)x->scales), m4 = _mm_set1_epi8(0xF);
    u->mins16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sc8, 4), m4));
    for (int g = 0; g < 8; g++) {
        const __m256i q = ld256(x->qs + 32 * (g / 4));
        u->v[g] = _mm256_and_si256(_mm256_srli_epi16(q, 2 * (g % 4)), _mm256_set1_epi8(3));
        u->sc[g] = halves16(x->scales[2 * g] & 0xF, x->scales[2 * g + 1] & 0xF);
    }
    u->d = h2f(x->d);
    u->dmin = h2f(x->dmin);
}

/* Q3_K: q + 4 (0..7, unsigned); the -4 returns as 4 * sum_j sc[j] * bsums[j] */
static inline void unpack_q3_k(const fr_block_q3_k *x, unpacked *u) {
    uint32_t o[4];
    fr_q3k_scales_w(x->scales, o);
    int8_t sc[16];
    const __m128i s8 = _mm_sub_epi8(_mm_setr_epi32((int)o[0], (int)o[1], (int)o[2], (int)o[3]), _mm_set1_epi8(32));
    _mm_storeu_si128((__m128i *)sc, s8);
    u->sc16 = _mm256_cvtepi8_epi16(s8);
    const __m256i hm = ld256(x->hmask), one = _mm256_set1_epi8(1);
    for (int g = 0; g < 8; g++) {
        const __m256i q = ld256(x->qs + 32 * (g / 4));
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(hm, g), one);
        u->v[g] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 2 * (g % 4)), _mm256_set1_epi8(3)),
                                  _mm256_slli_epi16(hi, 2));
        u->sc[g] = halves16(sc[2 * g], sc[2 * g + 1]);
    }
    u->d = h2f(x->d);
}

/* IQ4_XS: signed levels; |v| with the sign moved onto the activation */
static inline void unpack_iq4_xs(const fr_block_iq4_xs *x, unpacked *u) {
    const __m128i t = _mm_loadu_si128((const __m128i *)fr_iq4nl_values);
    const __m256i table = _mm256_set_m128i(t, t);
    for (int g = 0; g < 8; g++) {
        const __m128i q = _mm_loadu_si128((const __m128i *)(x->qs + 16 * g));
        const __m256i idx = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0xF));
        const __m256i v = _mm256_shuffle_epi8(table, idx);
        u->v[g] = _mm256_sign_epi8(v, v);
        u->s[g] = v;
        const int ls = (((x->scales_l[g / 2] >> (4 * (g % 2))) & 0xF) | (((x->scales_h >> (2 * g)) & 3) << 4)) - 32;
        u->sc[g] = halves16(ls, ls);
    }
    u->d = h2f(x->d);
}

/* The lattice types: group decoders shared with the dots; d carries the type's
 * constant factor (1/8 IQ2, 1/4 IQ3_XXS, 1 IQ3_S: powers of two, so exact). */
#define UNPACK_IQ(name, blk, FACTOR)                                 \
    static inline void unpack_##name(const blk *x, unpacked *u) {    \
        for (int g = 0; g < 8; g++) {                                \
            fr_iq_grp2 p;                                            \
            g2_##name(x, g, &p);                                     \
            u->v[g] = p.g;                                           \
            u->s[g] = signs_pm1(p.sb);                               \
            u->sc[g] = halves16(p.sc0, p.sc1);                       \
        }                                                            \
        u->d = h2f(x->d) * FACTOR;                                   \
    }
UNPACK_IQ(iq2_xxs, fr_block_iq2_xxs, 0.125f)
UNPACK_IQ(iq2_xs, fr_block_iq2_xs, 0.125f)
UNPACK_IQ(iq2_s, fr_block_iq2_s, 0.125f)
UNPACK_IQ(iq3_xxs, fr_block_iq3_xxs, 0.25f)
UNPACK_IQ(iq3_s, fr_block_iq3_s, 1.0f)

/* IQ1: grid g in {-1, 0, 1} shifted by +-1/8 (dneg: +-1 bytes, -1 where the shift is
 * negative); 8 x value = 8g +- 1 is an integer in [-9, 9], the 1/8 goes into d. */
static inline void iq1_group(__m256i g, __m256i dpm, int ls0, int ls1, unpacked *u, int k) {
    const __m256i g8 = _mm256_and_si256(_mm256_slli_epi16(g, 3), _mm256_set1_epi8((char)0xF8));
    const __m256i v = _mm256_add_epi8(g8, dpm);
    u->v[k] = _mm256_sign_epi8(v, v);
    u->s[k] = v;
    u->sc[k] = halves16(ls0, ls1);
}

static inline void unpack_iq1_s(const fr_block_iq1_s *x, unpacked *u) {
    for (int g = 0; g < 8; g++) {
        const unsigned h = x->qh[g];
        const uint8_t *qs = x->qs + 4 * g;
        const __m256i grid = grid64x4(fr_iq1s_grid, qs[0] | (h & 7) << 8, qs[1] | ((h >> 3) & 7) << 8,
                                      qs[2] | ((h >> 6) & 7) << 8, qs[3] | ((h >> 9) & 7) << 8);
        const int ls = 2 * (int)((h >> 12) & 7) + 1;
        iq1_group(grid, _mm256_set1_epi8(h & 0x8000 ? -1 : 1), ls, ls, u, g);
    }
    u->d = h2f(x->d) * 0.125f;
}

static inline void unpack_iq1_m(const fr_block_iq1_m *x, unpacked *u) {
    uint16_t sc[4];
    memcpy(sc, x->scales, 8);
    for (int g = 0; g < 8; g++) {
        const uint8_t *qs = x->qs + 4 * g, *qh = x->qh + 2 * g;
        const __m256i grid = grid64x4(fr_iq1s_grid, qs[0] | (qh[0] & 7) << 8, qs[1] | ((qh[0] >> 4) & 7) << 8,
                                      qs[2] | (qh[1] & 7) << 8, qs[3] | ((qh[1] >> 4) & 7) << 8);
        /* shift signs per 8 values: bits 3 and 7 of qh[0], qh[1] */
        const uint32_t neg = (qh[0] & 0x08 ? 0xFFu : 0) | (qh[0] & 0x80 ? 0xFF00u : 0) |
                             (qh[1] & 0x08 ? 0xFF0000u : 0) | (qh[1] & 0x80 ? 0xFF000000u : 0);
        iq1_group(grid, signs_pm1(neg), 2 * ((sc[g / 2] >> (6 * (g % 2))) & 7) + 1,
                  2 * ((sc[g / 2] >> (6 * (g % 2) + 3)) & 7) + 1, u, g);
    }
    u->d = h2f((uint16_t)((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000))) *
           0.125f;
}

/* One unpacked block against one token's Q8_K block: adds into acc (d * y.d * int
 * sums) and, for Q2_K, accm (the mins term, subtracted at the end). */
static inline __attribute__((always_inline)) void block_token(const unpacked *u, const fr_block_q8_k *y, int kind,
                                                             __m256 *acc, __m256 *accm) {
    __m256i isum = _mm256_setzero_si256();
    for (int g = 0; g < 8; g++) {
        __m256i q = ld256(y->qs + 32 * g);
        if (kind >= K_IQ4XS) q = _mm256_sign_epi8(q, u->s[g]);
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(_mm256_maddubs_epi16(u->v[g], q), u->sc[g]));
    }
    if (kind == K_Q3)
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(_mm256_madd_epi16(u->sc16, ld256(y->bsums)), 2));
    if (kind == K_Q2) {
        const __m256i pm = _mm256_madd_epi16(ld256(y->bsums), u->mins16);
        *accm = _mm256_fmadd_ps(_mm256_set1_ps(u->dmin * y->d), _mm256_cvtepi32_ps(pm), *accm);
    }
    *acc = _mm256_fmadd_ps(_mm256_set1_ps(u->d * y->d), _mm256_cvtepi32_ps(isum), *acc);
}

static inline __attribute__((always_inline)) void unpack(const uint8_t *blk, int kind, unpacked *u) {
    switch (kind) {
    case K_Q2: unpack_q2_k((const fr_block_q2_k *)blk, u); break;
    case K_Q3: unpack_q3_k((const fr_block_q3_k *)blk, u); break;
    case K_IQ4XS: unpack_iq4_xs((const fr_block_iq4_xs *)blk, u); break;
    case K_IQ2XXS: unpack_iq2_xxs((const fr_block_iq2_xxs *)blk, u); break;
    case K_IQ2XS: unpack_iq2_xs((const fr_block_iq2_xs *)blk, u); break;
    case K_IQ2S: unpack_iq2_s((const fr_block_iq2_s *)blk, u); break;
    case K_IQ3XXS: unpack_iq3_xxs((const fr_block_iq3_xxs *)blk, u); break;
    case K_IQ3S: unpack_iq3_s((const fr_block_iq3_s *)blk, u); break;
    case K_IQ1S: unpack_iq1_s((const fr_block_iq1_s *)blk, u); break;
    default: unpack_iq1_m((const fr_block_iq1_m *)blk, u); break;
    }
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
            __m256 acc[TT], accm[TT];
            for (int t = 0; t < TT; t++) acc[t] = accm[t] = _mm256_setzero_ps();
            for (int b = 0; b < nb; b++) {
                unpacked u;
                fr_il_prefetch(row + b * bsz, bsz); /* decode reads each block once (il_drive.h) */
                unpack(row + b * bsz, kind, &u);
                for (int t = 0; t < nt; t++) {
                    const fr_block_q8_k *y = (const fr_block_q8_k *)((const uint8_t *)yp + (size_t)(t0 + t) * yp_row);
                    block_token(&u, y + b, kind, &acc[t], &accm[t]);
                }
            }
            for (int t = 0; t < nt; t++) {
                float s = hsum_ps(acc[t]);
                if (kind == K_Q2) s -= hsum_ps(accm[t]);
                out[(size_t)(t0 + t) * ld + r] = s;
            }
        }
    }
}

/* One token through the bit-identical dot, if the type has one (see the top). */
static int decode_by_dot(fr_type type, int n, const void *w, size_t w_row, int n_rows, const void *yp, int n_tok,
                         float *out) {
    const fr_vec_dot_fn dot = n_tok == 1 ? fr_lowbit_avx2_decode_dot(type) : NULL;
    if (!dot) return 0;
    for (int r = 0; r < n_rows; r++) dot(n, &out[r], (const uint8_t *)w + (size_t)r * w_row, yp);
    return 1;
}

#define GEMM(name, KIND, TYPE)                                                                             \
    static void gemm_##name(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, \
                            int n_tok, float *out, size_t ld) {                                              \
        if (!decode_by_dot(TYPE, n, w, w_row, n_rows, yp, n_tok, out))                                      \
            gemm_kind(n, w, w_row, n_rows, yp, yp_row, n_tok, out, ld, KIND);                             \
    }
GEMM(q2_k, K_Q2, FR_TYPE_Q2_K)
GEMM(q3_k, K_Q3, FR_TYPE_Q3_K)
GEMM(iq4_xs, K_IQ4XS, FR_TYPE_IQ4_XS)
GEMM(iq2_xxs, K_IQ2XXS, FR_TYPE_IQ2_XXS)
GEMM(iq2_xs, K_IQ2XS, FR_TYPE_IQ2_XS)
GEMM(iq2_s, K_IQ2S, FR_TYPE_IQ2_S)
GEMM(iq3_xxs, K_IQ3XXS, FR_TYPE_IQ3_XXS)
GEMM(iq3_s, K_IQ3S, FR_TYPE_IQ3_S)
GEMM(iq1_s, K_IQ1S, FR_TYPE_IQ1_S)
GEMM(iq1_m, K_IQ1M, FR_TYPE_IQ1_M)

int fr_kernels_install_lowbit_gemm_avx2(fr_type_traits *t) {
    t[FR_TYPE_Q2_K].gemm = gemm_q2_k;
    t[FR_TYPE_Q3_K].gemm = gemm_q3_k;
    t[FR_TYPE_IQ4_XS].gemm = gemm_iq4_xs;
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

int fr_kernels_install_lowbit_gemm_avx2(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
