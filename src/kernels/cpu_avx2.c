/* cpu_avx2.c - AVX2 + FMA + F16C kernels (compiled with -mavx2 -mfma -mf16c; entered
 * only after kernels/dispatch.c checked the CPU and OS).
 *
 * Contracts, shared by every kernel here (the scalar references are in
 * core/quant_legacy.c, core/quant_k.c, core/quant_act.c):
 *  - vec_dot: same inputs and meaning as the scalar one. Integer parts are exact
 *    (int32 per block, as the reference); only the float accumulation order differs,
 *    so |simd - scalar| <= 1e-5 * sum_i |x_i * y_i| + 1e-6 (x, y dequantized).
 *    Activation quants must lie in [-127, 127] (all our quantizers guarantee it): the
 *    sign trick (vpsignb) below cannot negate -128.
 *  - activation quantizers (Q8_0/Q8_1 act, Q8_K) and F16<->F32 row conversions are
 *    bit-identical to the scalar versions for every input (NaN included: chunks with
 *    NaN fall back to the scalar code where the hardware would round differently).
 * Rounding: _mm256_cvtps_epi32 uses MXCSR (round-half-even by default), the same mode
 * nearbyintf/lrintf use in the references. */
#include "kernels/dispatch.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/quant.h"
#include "kernels/il_avx2.h"

static inline float h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline int hsum_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(s);
}

/* F16/BF16 dots reproduce ggml's AVX-512 order (the build llama.cpp's reference logits
 * - our golden data - come from): 4 accumulators of 16 lanes, 64 values per step,
 * reduced as (a0+a2) + (a1+a3), then the 16 lanes as _mm512_reduce_add_ps does, then
 * the leftovers added one by one in float. A 16-lane accumulator is a pair of ymm
 * registers here; tiny order changes otherwise get amplified through the layers. */
static inline float reduce16x4(const __m256 a[8]) {
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(a[0], a[4]), _mm256_add_ps(a[2], a[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(a[1], a[5]), _mm256_add_ps(a[3], a[7]));
    return hsum_ps(_mm256_add_ps(hi, lo));
}

#define FLOAT_DOT_BODY(LOAD, SCALAR)                                                   \
    __m256 acc[8];                                                                     \
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();                          \
    int i = 0;                                                                         \
    for (; i + 64 <= n; i += 64)                                                       \
        for (int k = 0; k < 8; k++)                                                    \
            acc[k] = _mm256_fmadd_ps(LOAD(x + i + 8 * k), LOAD(y + i + 8 * k), acc[k]); \
    float sum = reduce16x4(acc);                                                       \
    for (; i < n; i++) sum += SCALAR;                                                  \
    *s = sum;

static inline __m256i loadu256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
static inline __m128i loadu128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

/* sum over pairs of x*y as 8 floats (one per 4 bytes); x any int8, y in [-127, 127].
 * vpmaddubsw wants an unsigned operand: use |x| and move x's sign onto y. */
static inline __m256 dot_i8_ps(__m256i x, __m256i y) {
    const __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i sy = _mm256_sign_epi8(y, x);
    const __m256i p16 = _mm256_maddubs_epi16(ax, sy);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* Same for x unsigned (0..31 here: pair sums stay far below int16 overflow). */
static inline __m256 dot_u8_ps(__m256i x, __m256i y) {
    const __m256i p16 = _mm256_maddubs_epi16(x, y);
    return _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, _mm256_set1_epi16(1)));
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles (values 0..15) then high. */
static inline __m256i unpack_nibbles16(const uint8_t *qs) {
    /* a broadcast load, the high half shifted by 4 (a per-quadword shift), masked: two
     * operations where an insert of the shifted copy took three */
    const __m256i b = _mm256_broadcastsi128_si256(loadu128(qs));
    return _mm256_and_si256(_mm256_srlv_epi64(b, _mm256_setr_epi64x(0, 0, 4, 4)), _mm256_set1_epi8(0x0F));
}

/* 32 bits (little-endian) -> 32 bytes, 0xFF where the bit is set: byte i picks the
 * byte holding bit i, then every other bit of it is forced to 1. */
static inline __m256i bytes_from_bits32(const uint8_t *p) {
    uint32_t v;
    memcpy(&v, p, 4);
    const __m256i shuf = _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                           0x0101010101010101, 0x0000000000000000);
    __m256i b = _mm256_shuffle_epi8(_mm256_set1_epi32((int)v), shuf);
    b = _mm256_or_si256(b, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    return _mm256_cmpeq_epi8(b, _mm256_set1_epi64x(-1));
}

/* ------------------------------------------------------------ float rows */

static void dot_f32(int n, float *s, const void *vx, const void *vy) {
    const float *x = vx, *y = vy;
    /* the order of cpu_avx512.c's dot_f32 (a 16-lane register = ymm pair acc[2k],
     * acc[2k+1]): 64 per step, then 16 per step into acc 0, then the zero-padded tail
     * into acc 1, reduced as (a0+a1)+(a2+a3); both levels give identical results */
    __m256 acc[8];
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 2; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    if (i < n) {
        float tx[16] = {0}, ty[16] = {0};
        memcpy(tx, x + i, sizeof(float) * (size_t)(n - i));
        memcpy(ty, y + i, sizeof(float) * (size_t)(n - i));
        for (int k = 0; k < 2; k++)
            acc[2 + k] = _mm256_fmadd_ps(_mm256_loadu_ps(tx + 8 * k), _mm256_loadu_ps(ty + 8 * k), acc[2 + k]);
    }
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[4], acc[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[3]), _mm256_add_ps(acc[5], acc[7]));
    *s = hsum_ps(_mm256_add_ps(hi, lo));
}

static inline __m256 ld_f16(const uint16_t *p) { return _mm256_cvtph_ps(loadu128(p)); }

static void dot_f16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    FLOAT_DOT_BODY(ld_f16, h2f(x[i]) * h2f(y[i]))
}

/* bf16 -> f32 is a 16-bit shift of the bits. */
static inline __m256 ld_bf16(const uint16_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

static void dot_bf16(int n, float *s, const void *vx, const void *vy) {
    const uint16_t *x = vx, *y = vy;
    FLOAT_DOT_BODY(ld_bf16, fr_bf16_to_f32(x[i]) * fr_bf16_to_f32(y[i]))
}

/* F16 -> F32, bit-identical to fr_to_float_f16: vcvtph2ps is exact for every
 * non-NaN half; NaN chunks go through the scalar code (which keeps signalling
 * NaNs signalling, where the hardware would quiet them). */
static void to_float_f16(const void *vx, float *y, int64_t n) {
    const uint16_t *x = vx;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m128i h = loadu128(x + i);
        const __m128i nan = _mm_cmpgt_epi16(_mm_and_si128(h, _mm_set1_epi16(0x7fff)), _mm_set1_epi16(0x7c00));
        if (_mm_movemask_epi8(nan)) {
            for (int k = 0; k < 8; k++) y[i + k] = fr_f16_to_f32(x[i + k]);
        } else {
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
        }
    }
    for (; i < n; i++) y[i] = fr_f16_to_f32(x[i]);
}

/* F32 -> F16 with round-to-nearest-even (vcvtps2ph imm 0), bit-identical to
 * fr_from_float_f16; NaN chunks use the scalar code (different NaN payloads). */
static void from_float_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int k = 0; k < 8; k++) y[i + k] = fr_f32_to_f16(x[i + k]);
        } else {
            _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
    }
    for (; i < n; i++) y[i] = fr_f32_to_f16(x[i]);
}

/* ------------------------------------------------------------ attention over an F16 KV cache */

/* dot_f16 of an F16 row with F32 values (the query's F16 values, exact in F32): the
 * same operations in the same order, for attn_kdot's row-by-row fallback. */
static float dot_f16_f32(int n, const uint16_t *x, const float *y) {
    __m256 acc[8];
    for (int k = 0; k < 8; k++) acc[k] = _mm256_setzero_ps();
    int i = 0;
    for (; i + 64 <= n; i += 64)
        for (int k = 0; k < 8; k++)
            acc[k] = _mm256_fmadd_ps(ld_f16(x + i + 8 * k), _mm256_loadu_ps(y + i + 8 * k), acc[k]);
    float sum = reduce16x4(acc);
    for (; i < n; i++) sum += h2f(x[i]) * y[i];
    return sum;
}

/* Slot s of an 8-row group holds row KDOT_ROW[s]: the hsum_* tree below leaves slot
 * s's sum in lane 0, 4, 1, 5, 2, 6, 3, 7 (s = 0..7), so row r's lands in lane r. */
static const int KDOT_ROW[8] = {0, 4, 1, 5, 2, 6, 3, 7};

/* hsum_ps of 8 vectors at once: hsum_ps adds lane i + i+4, then i + i+2, then i +
 * i+1; the same pairs are added here, with the low lane first as there, two or four
 * vectors' pairs per instruction (7 adds and 14 shuffles instead of 8 reductions of 3
 * dependent steps). Split by level so the caller can feed it as rows complete, with
 * few registers live: pair(slots 2k, 2k+1), quad(pairs 2m, 2m+1), oct(quads 0, 1). */
static inline __m256 hsum_pair(__m256 w0, __m256 w1) { /* i + i+4: slot 2k low, 2k+1 high */
    return _mm256_add_ps(_mm256_permute2f128_ps(w0, w1, 0x20), _mm256_permute2f128_ps(w0, w1, 0x31));
}
static inline __m256 hsum_quad(__m256 c0, __m256 c1) { /* i + i+2 */
    return _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(c0), _mm256_castps_pd(c1))),
                         _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(c0), _mm256_castps_pd(c1))));
}
static inline __m256 hsum_oct(__m256 e0, __m256 e1) { /* i + i+1 */
    return _mm256_add_ps(_mm256_shuffle_ps(e0, e1, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm256_shuffle_ps(e0, e1, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* 8 K values at index i: F32 from the tile, or F16 straight from the row (f16). */
static inline __attribute__((always_inline)) __m256 kdot_ld(const void *k, int f16, int i) {
    return f16 ? ld_f16((const uint16_t *)k + i) : _mm256_load_ps((const float *)k + i);
}

/* One ymm of dot_f16's accumulators (values 8j..8j+7 of every 64-step) for a row k
 * of n64 values, q of the first step in a register, later steps' q from L1. The
 * first step is a mul where dot_f16 does fmadd onto +0: the same value except that
 * an exact zero product keeps its sign, so only an all -0 sum can differ (-0 here,
 * +0 there); kdot_rows adds +0 to the reduced sums to undo that, which leaves the
 * register a zero would take to the query. */
static inline __attribute__((always_inline)) __m256 kdot_chain(int n64, const void *k, int f16, const float *qh,
                                                                __m256 q, int j) {
    __m256 a = _mm256_mul_ps(kdot_ld(k, f16, 8 * j), q);
    for (int i = 64; i < n64; i += 64)
        a = _mm256_fmadd_ps(kdot_ld(k, f16, i + 8 * j), _mm256_loadu_ps(qh + i + 8 * j), a);
    return a;
}

/* reduce16x4 of one row before the horizontal sum: (a0+a2)+(a1+a3) as ymm pairs,
 * then lane i + i+8 (hi + lo); each chain is made where it is added, so only a few
 * registers are live besides the query's 8. */
static inline __attribute__((always_inline)) __m256 kdot_row(int n64, const void *k, int f16, const float *qh,
                                                              const __m256 q[8]) {
#define KC(j) kdot_chain(n64, k, f16, qh, q[j], j)
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(KC(0), KC(4)), _mm256_add_ps(KC(2), KC(6)));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(KC(1), KC(5)), _mm256_add_ps(KC(3), KC(7)));
#undef KC
    return _mm256_add_ps(hi, lo);
}

/* From the tile with n64 == 128, the query is 16 ymm, too many to keep with the
 * row's temporaries, and reading half of it from L1 makes the loads the limit. But
 * reduce16x4's lo half needs only the even ymm (j = 0, 4, 2, 6 of both steps) and hi
 * only the odd ones: 8 registers each. So the 8 rows' lo halves are made first (kept
 * in a small buffer), then the hi halves, each added to its lo as it comes. */
static const int KDOT_HALF_J[2][4] = {{0, 4, 2, 6}, {1, 5, 3, 7}};

static inline __attribute__((always_inline)) void kdot_q128(const float *qh, int half, __m256 q[8]) {
    for (int m = 0; m < 4; m++) {
        q[2 * m] = _mm256_loadu_ps(qh + 8 * KDOT_HALF_J[half][m]);
        q[2 * m + 1] = _mm256_loadu_ps(qh + 64 + 8 * KDOT_HALF_J[half][m]);
    }
}

static inline __attribute__((always_inline)) __m256 kdot_half128(const float *k, const __m256 q[8], int half) {
    __m256 c[4];
    for (int m = 0; m < 4; m++) {
        const int j = KDOT_HALF_J[half][m];
        const __m256 first = _mm256_mul_ps(_mm256_load_ps(k + 8 * j), q[2 * m]);
        c[m] = _mm256_fmadd_ps(_mm256_load_ps(k + 64 + 8 * j), q[2 * m + 1], first);
    }
    return _mm256_add_ps(_mm256_add_ps(c[0], c[1]), _mm256_add_ps(c[2], c[3]));
}

/* Slot sl's vector before the horizontal sum: from the F16 row (kslot non-NULL), or
 * from the tile (lo: the lo halves for n64 == 128). */
static inline __attribute__((always_inline)) __m256 kdot_slot(int n64, const float *tile, const void *const *kslot,
                                                               int sl, const float *qh, const __m256 q[8],
                                                               const float *lo) {
    if (kslot) return kdot_row(n64, kslot[sl], 1, qh, q);
    if (n64 == 128) return _mm256_add_ps(kdot_half128(tile + sl * 128, q, 1), _mm256_load_ps(lo + 8 * sl));
    return kdot_row(n64, tile + sl * n64, 0, qh, q);
}

/* attn_kdot (core/types.h): s[h * s_stride + t] = dot_f16(krows[t], q_h), bit for bit,
 * q_h being the query's F16 values as F32. 8 rows at a time, the query in 8
 * registers (the first 64-step's; n64 == 128: see kdot_half128), the 8 rows'
 * vectors reduced together by the hsum_* tree, fed as rows complete so nothing
 * spills; values past the last 64-step are added after, in order, as dot_f16 does.
 * The rows' first n64 = n & ~63 values are widened once into an F32 tile (L1) that
 * every head reads, unless there are few heads (direct): then each head widens the
 * F16 rows itself, which measured faster on Zen 4 than the tile's store and reloads
 * up to 4 heads of 64 values, 6 of 128. Instantiated for n64 = 64 and 128 (head
 * sizes 64..191) so every loop is unrolled; other sizes take the generic instance,
 * heads of more than 256 values go row by row. */
#define KDOT_MAX_N 256
static const uint16_t kdot_zero_row[KDOT_MAX_N]; /* the missing rows of a ragged group */

static inline __attribute__((always_inline)) void kdot_rows(int n, int n64, int direct, const void *const *krows,
                                                            int n_rows, const float *q, int nh, float *s,
                                                            size_t s_stride) {
    float tile[8 * KDOT_MAX_N] __attribute__((aligned(32)));
    const void *kslot[8];
    for (int t0 = 0; t0 < n_rows; t0 += 8) {
        const int nr = n_rows - t0 < 8 ? n_rows - t0 : 8;
        /* the next group's rows: a KV page holds 16 positions of a head, so a long
         * cache is short runs one page apart, which the hardware prefetchers pick up late */
        for (int r = t0 + 8; r < n_rows && r < t0 + 16; r++) {
            const char *kr = krows[r];
            for (int b = 0; b < n * 2; b += 64) _mm_prefetch(kr + b, _MM_HINT_T0);
            _mm_prefetch(kr + n * 2 - 1, _MM_HINT_T0);
        }
        for (int sl = 0; sl < 8; sl++) {
            const int r = KDOT_ROW[sl];
            kslot[sl] = r < nr ? krows[t0 + r] : (const void *)kdot_zero_row;
            for (int i = 0; i < n64 && !direct; i += 8)
                _mm256_store_ps(tile + sl * n64 + i, ld_f16((const uint16_t *)kslot[sl] + i));
        }
        const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int h = 0; h < nh; h++) {
            const float *qh = q + (size_t)h * n;
            float *sh = s + (size_t)h * s_stride + t0;
            __m256 sum = _mm256_setzero_ps(); /* n < 64: dot_f16's reduction of zero accumulators */
            if (n64) {
                const void *const *ks = direct ? kslot : NULL;
                __m256 qv[8];
                float lo[8 * 8] __attribute__((aligned(32)));
                if (n64 == 128 && !direct) {
                    kdot_q128(qh, 0, qv);
                    for (int sl = 0; sl < 8; sl++) _mm256_store_ps(lo + 8 * sl, kdot_half128(tile + sl * 128, qv, 0));
                    kdot_q128(qh, 1, qv);
                } else {
                    for (int j = 0; j < 8; j++) qv[j] = _mm256_loadu_ps(qh + 8 * j);
                }
#define KS(sl) kdot_slot(n64, tile, ks, sl, qh, qv, lo)
                __m256 c0 = hsum_pair(KS(0), KS(1)), c1 = hsum_pair(KS(2), KS(3));
                const __m256 e0 = hsum_quad(c0, c1);
                c0 = hsum_pair(KS(4), KS(5)), c1 = hsum_pair(KS(6), KS(7));
#undef KS
                sum = hsum_oct(e0, hsum_quad(c0, c1));
                sum = _mm256_add_ps(sum, _mm256_setzero_ps()); /* -0 -> +0, see kdot_chain */
            }
            if (n64 == n) {
                if (nr == 8) _mm256_storeu_ps(sh, sum);
                else _mm256_maskstore_ps(sh, live, sum);
                continue;
            }
            float sums[8];
            _mm256_storeu_ps(sums, sum);
            for (int t = 0; t < nr; t++) {
                const uint16_t *k = krows[t0 + t];
                float x = sums[t];
                for (int i = n64; i < n; i++) x += h2f(k[i]) * qh[i];
                sh[t] = x;
            }
        }
    }
}

static void attn_kdot_f16(int n, const void *const *krows, int n_rows, const float *q, int nh, float *s,
                          size_t s_stride) {
    if (n > KDOT_MAX_N) {
        for (int t = 0; t < n_rows; t++)
            for (int h = 0; h < nh; h++) s[(size_t)h * s_stride + t] = dot_f16_f32(n, krows[t], q + (size_t)h * n);
    } else if ((n & ~63) == 64) {
        if (nh <= 4) kdot_rows(n, 64, 1, krows, n_rows, q, nh, s, s_stride);
        else kdot_rows(n, 64, 0, krows, n_rows, q, nh, s, s_stride);
    } else if ((n & ~63) == 128) {
        if (nh <= 6) kdot_rows(n, 128, 1, krows, n_rows, q, nh, s, s_stride);
        else kdot_rows(n, 128, 0, krows, n_rows, q, nh, s, s_stride);
    } else {
        kdot_rows(n, n & ~63, 0, krows, n_rows, q, nh, s, s_stride);
    }
}

/* nv vectors (8 values each, from d0) of H heads (from h0) over all rows: the nv * H
 * accumulators stay in registers, each row's values are widened once for the H
 * heads, and every value gets its weight times the value, then the add (no fmadd),
 * rows in order: the plain loop's rounding exactly. nv and H are constants after
 * inlining. */
static inline __attribute__((always_inline)) void vacc_blk(int nv, int H, int n, int d0, const void *const *vrows,
                                                           int n_rows, const float *p, size_t p_stride, int h0,
                                                           float *acc) {
    __m256 a[4][8];
#pragma GCC unroll 8
    for (int h = 0; h < H; h++)
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) a[h][j] = _mm256_loadu_ps(acc + (size_t)(h0 + h) * n + d0 + 8 * j);
    for (int t = 0; t < n_rows; t++) {
        const uint16_t *v = (const uint16_t *)vrows[t] + d0;
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) {
            const __m256 x = ld_f16(v + 8 * j);
#pragma GCC unroll 4
            for (int h = 0; h < H; h++) {
                const __m256 w = _mm256_broadcast_ss(p + (size_t)(h0 + h) * p_stride + t);
                a[h][j] = _mm256_add_ps(a[h][j], _mm256_mul_ps(w, x));
            }
        }
    }
#pragma GCC unroll 8
    for (int h = 0; h < H; h++)
#pragma GCC unroll 8
        for (int j = 0; j < nv; j++) _mm256_storeu_ps(acc + (size_t)(h0 + h) * n + d0 + 8 * j, a[h][j]);
}

/* attn_vacc (core/types.h): acc[h * n + d] += p[h * p_stride + t] * v_t[d], rows in
 * order, a multiply then an add, as the plain loop. Blocks of up to 4 heads and as
 * many values as keep 6 to 8 accumulator chains going (an add's latency times the
 * add ports: with fewer, the adds wait on each other) while fitting the 16 ymm
 * registers with the weights, a row vector and a product: 64 values for 1 head, 32
 * for 2, 16 for 3 or 4. Measured on Zen 4 with 8 heads: two blocks of 16 x 4 beat
 * 8 x 8 (each row widened once) and 16 x 6 + 32 x 2 (spills). Leftover values in
 * halved blocks, the last n % 8 in plain C. */
static inline void vacc_sel(int nv, int H, int n, int d0, const void *const *vrows, int n_rows, const float *p,
                            size_t p_stride, int h0, float *acc) {
#define VACC(NV, HH) vacc_blk(NV, HH, n, d0, vrows, n_rows, p, p_stride, h0, acc)
    switch (nv * 16 + H) {
    case 8 * 16 + 1: VACC(8, 1); break;
    case 4 * 16 + 1: VACC(4, 1); break;
    case 2 * 16 + 1: VACC(2, 1); break;
    case 1 * 16 + 1: VACC(1, 1); break;
    case 4 * 16 + 2: VACC(4, 2); break;
    case 2 * 16 + 2: VACC(2, 2); break;
    case 1 * 16 + 2: VACC(1, 2); break;
    case 2 * 16 + 3: VACC(2, 3); break;
    case 1 * 16 + 3: VACC(1, 3); break;
    case 2 * 16 + 4: VACC(2, 4); break;
    default: VACC(1, 4); break;
    }
#undef VACC
}

static void attn_vacc_f16(int n, const void *const *vrows, int n_rows, const float *p, size_t p_stride, int nh,
                          float *acc) {
    for (int h0 = 0; h0 < nh; h0 += 4) {
        const int H = nh - h0 < 4 ? nh - h0 : 4;
        int d0 = 0;
        for (int nv = H == 1 ? 8 : H == 2 ? 4 : 2; nv >= 1; nv /= 2)
            for (; d0 + 8 * nv <= n; d0 += 8 * nv) vacc_sel(nv, H, n, d0, vrows, n_rows, p, p_stride, h0, acc);
        for (; d0 < n; d0++)
            for (int t = 0; t < n_rows; t++) {
                const float v = h2f(((const uint16_t *)vrows[t])[d0]);
                for (int h = h0; h < h0 + H; h++) acc[(size_t)h * n + d0] += p[(size_t)h * p_stride + t] * v;
            }
    }
}

/* ------------------------------------------------------------ legacy blocks */

/* Legacy dots keep ggml's AVX2 order: one accumulator, blocks in order, lane-wise
 * fmadd(d_x*d_y, block sums), hsum at the end. */
static void dot_q8_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q8_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, dot_i8_ps(loadu256(x[b].qs), loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q4_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    const __m256i off = _mm256_set1_epi8(8);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i q = _mm256_sub_epi8(unpack_nibbles16(x[b].qs), off);
        acc = _mm256_fmadd_ps(d, dot_i8_ps(q, loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

/* Row-major GEMMs of Q4_0 and Q8_0 (kernels/ops.c calls them for weights that are not
 * repacked: the experts of a mixture, whose cache slots hold file rows). Why: one row
 * at a time, the dot above spends ~17 operations on an 18-byte Q4_0 block in one chain
 * of dependent fmadds, and a mixture's decode spent half its time there. Here 4 rows
 * share each activation block: 4 independent chains, the activation's work done once,
 * the 4 rows' scales widened in one vcvtph2ps, and for Q4_0 the nibble offset taken out
 * of the activation side (each lane's integer is sum nib * y - 8 sum y over its 4 bytes,
 * the same int32 the dot's sign trick gives, exactly). Every row's float chain is the
 * dot's, operation for operation, so each output is bit-identical to vec_dot's
 * whatever n_rows and n_tok are (a tail of fewer than 4 rows goes to the dot itself). */

/* The 4 blocks' F16 scales at stride w_row, widened and times dy: lane k = h2f(d_k) * dy
 * as the dot's scalar product (the same IEEE multiply). */
static inline __m128 scales4(const uint8_t *d0, size_t w_row, float dy) {
    uint16_t h[4];
    for (int k = 0; k < 4; k++) memcpy(&h[k], d0 + (size_t)k * w_row, 2);
    return _mm_mul_ps(_mm_cvtph_ps(_mm_loadl_epi64((const __m128i *)h)), _mm_set1_ps(dy));
}

/* rows ahead the prefetch runs: 16 (7-18 KiB at the experts' row sizes) read a little
 * faster from DRAM than 8 in bench_matmul_ab, 32 no faster */
#define PF_ROWS 16
#define ROWS4_GEMM(NAME, BLOCK, DOT, PREP, LANE)                                                                \
    static void NAME(int n, const void *w, size_t w_row, int n_rows, const void *yp, size_t yp_row, int n_tok, \
                     float *out, size_t ld) {                                                                  \
        int r = 0;                                                                                              \
        for (; r + 4 <= n_rows; r += 4) {                                                                       \
            const uint8_t *x0 = (const uint8_t *)w + (size_t)r * w_row;                                         \
            for (int t = 0; t < n_tok; t++) {                                                                   \
                const fr_block_q8_0 *y = (const fr_block_q8_0 *)((const uint8_t *)yp + (size_t)t * yp_row);     \
                __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),                  \
                                 _mm256_setzero_ps()};                                                          \
                for (int b = 0; b < n / FR_QK; b++) {                                                           \
                    /* PF_ROWS rows ahead, a block's share of a tile per block (cache slots of \
                     * experts were just written by the disk: nothing of them is cached) */  \
                    __builtin_prefetch(x0 + PF_ROWS * w_row + (size_t)b * 4 * sizeof(BLOCK), 0, 3);                   \
                    const __m256i yq = loadu256(y[b].qs);                                                       \
                    PREP;                                                                                       \
                    const __m128 d4 = scales4(x0 + (size_t)b * sizeof(BLOCK), w_row, h2f(y[b].d));              \
                    for (int k = 0; k < 4; k++) {                                                               \
                        const BLOCK *xb = (const BLOCK *)(x0 + (size_t)k * w_row) + b;                          \
                        const __m256 d = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d4), _mm256_set1_epi32(k)); \
                        acc[k] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(LANE), acc[k]);                          \
                    }                                                                                           \
                }                                                                                               \
                for (int k = 0; k < 4; k++) out[(size_t)t * ld + (size_t)(r + k)] = hsum_ps(acc[k]);            \
            }                                                                                                   \
        }                                                                                                       \
        for (; r < n_rows; r++)                                                                                 \
            for (int t = 0; t < n_tok; t++)                                                                     \
                DOT(n, &out[(size_t)t * ld + (size_t)r], (const uint8_t *)w + (size_t)r * w_row,                \
                    (const uint8_t *)yp + (size_t)t * yp_row);                                                  \
    }
/* Q4_0: 8 * (sum of y over each lane's 4 bytes), once per block for the 4 rows */
#define Q4_0_PREP                                                                                             \
    const __m256i y8 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(8), yq), _mm256_set1_epi16(1))
#define Q4_0_LANE                                                                                             \
    _mm256_sub_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(unpack_nibbles16(xb->qs), yq), _mm256_set1_epi16(1)), y8)
#define Q8_0_LANE                                                                                             \
    _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(loadu256(xb->qs), loadu256(xb->qs)),             \
                                           _mm256_sign_epi8(yq, loadu256(xb->qs))),                          \
                      _mm256_set1_epi16(1))
ROWS4_GEMM(gemm_q4_0, fr_block_q4_0, dot_q4_0, Q4_0_PREP, Q4_0_LANE)
ROWS4_GEMM(gemm_q8_0, fr_block_q8_0, dot_q8_0, (void)0, Q8_0_LANE)
#undef Q4_0_PREP
#undef Q4_0_LANE
#undef Q8_0_LANE
#undef ROWS4_GEMM

/* Q4_1 x Q8_1: unsigned quants, the min enters as m * (d_y * sum(q_y)) = m * s_y. */
static void dot_q4_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q4_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        acc = _mm256_fmadd_ps(d, dot_u8_ps(unpack_nibbles16(x[b].qs), loadu256(y[b].qs)), acc);
        summ += h2f(x[b].m) * h2f(y[b].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* Q5_0: value - 16 as int8 is (low nibble) | 0xF0 when the fifth bit is clear, and
 * the plain nibble when it is set. */
static void dot_q5_0(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_0 *x = vx;
    const fr_block_q8_0 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i hb = _mm256_andnot_si256(bytes_from_bits32(x[b].qh), _mm256_set1_epi8((char)0xF0));
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[b].qs), hb);
        acc = _mm256_fmadd_ps(d, dot_i8_ps(q, loadu256(y[b].qs)), acc);
    }
    *s = hsum_ps(acc);
}

static void dot_q5_1(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q5_1 *x = vx;
    const fr_block_q8_1 *y = vy;
    __m256 acc = _mm256_setzero_ps();
    float summ = 0.0f;
    for (int b = 0; b < n / FR_QK; b++) {
        const __m256 d = _mm256_set1_ps(h2f(x[b].d) * h2f(y[b].d));
        const __m256i hb = _mm256_and_si256(bytes_from_bits32(x[b].qh), _mm256_set1_epi8(0x10));
        const __m256i q = _mm256_or_si256(unpack_nibbles16(x[b].qs), hb);
        acc = _mm256_fmadd_ps(d, dot_u8_ps(q, loadu256(y[b].qs)), acc);
        summ += h2f(x[b].m) * h2f(y[b].s);
    }
    *s = hsum_ps(acc) + summ;
}

/* ------------------------------------------------------------ K-quants */

/* The 8 six-bit scales and mins of a Q4_K/Q5_K block (get_scale_min_k4 for all j
 * at once, on 32-bit words). */
static inline void k4_scales(const uint8_t s12[12], uint8_t sc[8], uint8_t mn[8]) {
    uint32_t u[3];
    memcpy(u, s12, 12);
    const uint32_t a = u[0] & 0x3f3f3f3f, b = u[1] & 0x3f3f3f3f;
    const uint32_t c = (u[2] & 0x0f0f0f0f) | (((u[0] >> 6) & 0x03030303) << 4);
    const uint32_t d = ((u[2] >> 4) & 0x0f0f0f0f) | (((u[1] >> 6) & 0x03030303) << 4);
    memcpy(sc, &a, 4);
    memcpy(sc + 4, &c, 4);
    memcpy(mn, &b, 4);
    memcpy(mn + 4, &d, 4);
}

/* sum_j bsums[j] * mins[j/2] as 8 int32 lanes (bsums: 16 sums of 16 quants). */
static inline __m256i k4_mins_dot(const int16_t *bsums, const uint8_t mn[8]) {
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)mn));
    const __m256i m2 = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    return _mm256_madd_epi16(loadu256(bsums), m2);
}

/* Q4_K/Q5_K share everything but the fifth bit: with_hi selects Q5_K (qh non-NULL). */
static inline void dot_k4_common(int n, float *s, const void *vx, const void *vy, int q5) {
    const fr_block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    __m256 acc = _mm256_setzero_ps(), accm = acc;
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *qs, *s12;
        uint16_t xd, xdmin;
        __m256i hb = _mm256_setzero_si256();
        if (q5) {
            const fr_block_q5_k *x = (const fr_block_q5_k *)vx + b;
            qs = x->qs, s12 = x->scales, xd = x->d, xdmin = x->dmin;
            hb = loadu256(x->qh);
        } else {
            const fr_block_q4_k *x = (const fr_block_q4_k *)vx + b;
            qs = x->qs, s12 = x->scales, xd = x->d, xdmin = x->dmin;
        }
        uint8_t sc[8], mn[8];
        k4_scales(s12, sc, mn);
        const int8_t *q8 = y[b].qs;
        __m256i isum = _mm256_setzero_si256();
        for (int j = 0; j < 4; j++) {
            const __m256i q = loadu256(qs + 32 * j);
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (q5) {
                /* bit 2j / 2j+1 of qh[l] is the fifth bit of value l / l+32; hb is
                 * shifted 2 per chunk, so bits 0 and 1 are the current ones */
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 1), one), 4));
                hb = _mm256_srli_epi16(hb, 2);
            }
            const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, loadu256(q8 + 64 * j)),
                                                 _mm256_set1_epi16(sc[2 * j]));
            const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, loadu256(q8 + 64 * j + 32)),
                                                 _mm256_set1_epi16(sc[2 * j + 1]));
            isum = _mm256_add_epi32(isum, _mm256_add_epi32(p0, p1));
        }
        const __m256i pm = k4_mins_dot(y[b].bsums, mn);
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(xd) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(h2f(xdmin) * y[b].d), _mm256_cvtepi32_ps(pm), accm);
    }
    *s = hsum_ps(acc) - hsum_ps(accm);
}

static void dot_q4_k(int n, float *s, const void *vx, const void *vy) { dot_k4_common(n, s, vx, vy, 0); }
static void dot_q5_k(int n, float *s, const void *vx, const void *vy) { dot_k4_common(n, s, vx, vy, 1); }

/* Q6_K: quants are used unsigned (0..63); the -32 offset comes back as
 * 32 * sum_j scale_j * bsums_j. */
static void dot_q6_k(int n, float *s, const void *vx, const void *vy) {
    const fr_block_q6_k *x = vx;
    const fr_block_q8_k *y = vy;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256 acc = _mm256_setzero_ps();
    for (int b = 0; b < n / FR_QK_K; b++) {
        const uint8_t *ql = x[b].ql, *qh = x[b].qh;
        const int8_t *q8 = y[b].qs, *sc = x[b].scales;
        __m256i isum = _mm256_setzero_si256();
        for (int half = 0; half < 2; half++, ql += 64, qh += 32, q8 += 128, sc += 8) {
            const __m256i l0 = loadu256(ql), l1 = loadu256(ql + 32), h = loadu256(qh);
            __m256i g[4];
            g[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_and_si256(_mm256_slli_epi16(h, 4), m30));
            g[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_and_si256(_mm256_slli_epi16(h, 2), m30));
            g[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(h, m30));
            g[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                                   _mm256_and_si256(_mm256_srli_epi16(h, 2), m30));
            for (int k = 0; k < 4; k++) {
                const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * k + 1]), _mm_set1_epi16(sc[2 * k]));
                const __m256i p = _mm256_maddubs_epi16(g[k], loadu256(q8 + 32 * k));
                isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, scv));
            }
        }
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(x[b].scales));
        const __m256i off = _mm256_madd_epi16(sc16, loadu256(y[b].bsums));
        isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(off, 5));
        acc = _mm256_fmadd_ps(_mm256_set1_ps(h2f(x[b].d) * y[b].d), _mm256_cvtepi32_ps(isum), acc);
    }
    *s = hsum_ps(acc);
}

/* ------------------------------------------------------------ activation quantizers */

/* 4 x 8 int32 -> 32 int8 in order, saturating (packs interleave 128-bit lanes). */
static inline __m256i pack_i32x32(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i r = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* max |x| over 32 floats; NaN ignored as fmaxf does (vmaxps returns its second
 * operand when either is NaN, so the running max goes second). */
static inline float amax32(const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 4; k++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * k)), m);
    __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    t = _mm_max_ps(t, _mm_movehl_ps(t, t));
    t = _mm_max_ss(t, _mm_movehdup_ps(t));
    return _mm_cvtss_f32(t);
}

/* 32 floats * id, rounded half-even, as int8 (|x * id| <= 127 by construction). */
static inline __m256i quant32(const float *x, __m256 id) {
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8 * k), id));
    return pack_i32x32(q[0], q[1], q[2], q[3]);
}

/* Bit-identical to fr_act_quantize_q8_0 for finite input. */
static void act_q8_0(const float *x, void *vy, int64_t n) {
    fr_block_q8_0 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        const float amax = amax32(x);
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[b].d = fr_f32_to_f16(d);
        _mm256_storeu_si256((__m256i *)y[b].qs, quant32(x, _mm256_set1_ps(id)));
    }
}

/* Bit-identical to fr_act_quantize_q8_1 for finite input. */
static void act_q8_1(const float *x, void *vy, int64_t n) {
    fr_block_q8_1 *y = vy;
    for (int64_t b = 0; b < n / FR_QK; b++, x += FR_QK) {
        const float amax = amax32(x);
        const float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        const __m256i q = quant32(x, _mm256_set1_ps(id));
        _mm256_storeu_si256((__m256i *)y[b].qs, q);
        const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q), _mm256_set1_epi16(1));
        y[b].d = fr_f32_to_f16(d);
        y[b].s = fr_f32_to_f16((float)hsum_epi32(s32) * d);
    }
}

/* Bit-identical to fr_from_float_q8_k for every input: the signed max is the first
 * value of largest magnitude (as the scalar strict '>' scan); NaN products are
 * zeroed first, matching nearest_int's NaN -> 0; packs saturate like the clamp. */
static void quant_q8_k(const float *x, void *vy, int64_t n) {
    fr_block_q8_k *y = vy;
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t b = 0; b < n / FR_QK_K; b++, x += FR_QK_K) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < FR_QK_K; k += 8) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + k)), m);
        __m128 t = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        t = _mm_max_ps(t, _mm_movehl_ps(t, t));
        t = _mm_max_ss(t, _mm_movehdup_ps(t));
        const float amax = _mm_cvtss_f32(t);
        if (!amax) {
            memset(&y[b], 0, sizeof(y[b]));
            continue;
        }
        float max = 0.0f;
        for (int j = 0; j < FR_QK_K; j++)
            if (fabsf(x[j]) == amax) { max = x[j]; break; }
        const float iscale = -127.f / max;
        const __m256 vs = _mm256_set1_ps(iscale);
        for (int c = 0; c < FR_QK_K / 32; c++) {
            __m256i q[4];
            for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + 32 * c + 8 * k), vs);
                v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
                q[k] = _mm256_cvtps_epi32(v);
            }
            const __m256i q8 = pack_i32x32(q[0], q[1], q[2], q[3]);
            _mm256_storeu_si256((__m256i *)(y[b].qs + 32 * c), q8);
            /* two 16-value sums: bytes -> pairs -> quads -> halves of each 128-bit lane */
            const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), q8), _mm256_set1_epi16(1));
            __m128i h = _mm_hadd_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
            h = _mm_hadd_epi32(h, h);
            y[b].bsums[2 * c] = (int16_t)_mm_cvtsi128_si32(h);
            y[b].bsums[2 * c + 1] = (int16_t)_mm_extract_epi32(h, 1);
        }
        y[b].d = 1 / iscale;
    }
}

int fr_kernels_install_avx2(fr_type_traits *t) {
    t[FR_TYPE_F32].vec_dot = dot_f32;
    t[FR_TYPE_F16].vec_dot = dot_f16;
    t[FR_TYPE_F16].to_float = to_float_f16;
    t[FR_TYPE_F16].from_float = from_float_f16;
    t[FR_TYPE_F16].attn_kdot = attn_kdot_f16;
    t[FR_TYPE_F16].attn_vacc = attn_vacc_f16;
    t[FR_TYPE_BF16].vec_dot = dot_bf16;
    t[FR_TYPE_Q4_0].vec_dot = dot_q4_0;
    t[FR_TYPE_Q4_1].vec_dot = dot_q4_1;
    t[FR_TYPE_Q5_0].vec_dot = dot_q5_0;
    t[FR_TYPE_Q5_1].vec_dot = dot_q5_1;
    t[FR_TYPE_Q8_0].vec_dot = dot_q8_0;
    t[FR_TYPE_Q4_0].gemm = gemm_q4_0;
    t[FR_TYPE_Q8_0].gemm = gemm_q8_0;
    t[FR_TYPE_Q8_0].act_from_float = act_q8_0;
    t[FR_TYPE_Q8_1].act_from_float = act_q8_1;
    t[FR_TYPE_Q4_K].vec_dot = dot_q4_k;
    t[FR_TYPE_Q5_K].vec_dot = dot_q5_k;
    t[FR_TYPE_Q6_K].vec_dot = dot_q6_k;
    t[FR_TYPE_Q8_K].from_float = quant_q8_k;
    fr_kernels_install_il_avx2(t); /* the IL16 GEMMs (il_avx2.c) */
    fr_kernels_install_elem_avx2(t); /* softmax, SwiGLU (elem_avx2.c) */
    return 1;
}

#else /* built without AVX2 (other architecture or compiler): nothing to install */

int fr_kernels_install_avx2(fr_type_traits *t) {
    (void)t;
    return 0;
}

#endif
