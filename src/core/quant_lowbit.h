/* quant_lowbit.h - the low-bit GGUF block formats hub files use: Q2_K, Q3_K (K-quants
 * with 16-value sub-blocks), IQ4_NL / IQ4_XS (4-bit non-linear), and the lattice
 * i-quants IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M.
 *
 * Packed structs byte-identical to ggml's (ggml-common.h), scalar references
 * (dequantize, vec_dot against the activation type llama.cpp's CPU backend uses:
 * Q8_0 for IQ4_NL, Q8_K for all others) and, where we can write a type, its
 * quantizer. The SIMD kernels (kernels/lowbit_*.c) are tested against these. The
 * i-quant grids (core/iq_grid*.c) are part of the format: a block stores indices
 * into them. */
#ifndef FRUGAL_QUANT_LOWBIT_H
#define FRUGAL_QUANT_LOWBIT_H

#include <stdint.h>

#include "core/quant.h"

/* 16 sub-blocks of 16: 4-bit scale (low nibble) and min (high), 2-bit quants;
 * value = d * sc * q - dmin * m. */
typedef struct {
    uint8_t scales[FR_QK_K / 16];
    uint8_t qs[FR_QK_K / 4];
    uint16_t d, dmin;
} fr_block_q2_k;
/* 16 sub-blocks of 16: 6-bit scales (offset 32) packed in 12 bytes, 2 low bits in
 * qs, the third in hmask (bit clear: subtract 4); value = d * (sc - 32) * q. */
typedef struct {
    uint8_t hmask[FR_QK_K / 8];
    uint8_t qs[FR_QK_K / 4];
    uint8_t scales[12];
    uint16_t d;
} fr_block_q3_k;
/* 32 values, one F16 scale, 4-bit indices into the 16 non-linear levels. */
typedef struct { uint16_t d; uint8_t qs[FR_QK / 2]; } fr_block_iq4_nl;
/* IQ4_NL's levels in 256-value blocks with 6-bit sub-block scales (offset 32):
 * low 4 bits in scales_l, high 2 in scales_h. */
typedef struct {
    uint16_t d;
    uint16_t scales_h;
    uint8_t scales_l[FR_QK_K / 64];
    uint8_t qs[FR_QK_K / 2];
} fr_block_iq4_xs;
/* 8 groups of 32: per group 4 grid indices (bytes) then 4 x 7 sign bits and a
 * 4-bit scale in one 32-bit word. */
typedef struct { uint16_t d; uint16_t qs[FR_QK_K / 8]; } fr_block_iq2_xxs;
/* per 8 values a 16-bit word: 9-bit grid index and 7 sign bits; 4-bit scales per 16 */
typedef struct { uint16_t d; uint16_t qs[FR_QK_K / 8]; uint8_t scales[FR_QK_K / 32]; } fr_block_iq2_xs;
/* 10-bit grid indices (low 8 in qs, high 2 in qh), explicit sign bytes (second
 * half of qs), 4-bit scales per 16 values */
typedef struct {
    uint16_t d;
    uint8_t qs[FR_QK_K / 4];
    uint8_t qh[FR_QK_K / 32];
    uint8_t scales[FR_QK_K / 32];
} fr_block_iq2_s;
/* 8-bit indices into a 4-value grid; per group of 32 a word of 4 x 7 sign bits and a 4-bit scale */
typedef struct { uint16_t d; uint8_t qs[3 * FR_QK_K / 8]; } fr_block_iq3_xxs;
/* 9-bit indices into a 4-value grid, explicit signs, 4-bit scales per 32 */
typedef struct {
    uint16_t d;
    uint8_t qs[FR_QK_K / 4];
    uint8_t qh[FR_QK_K / 32];
    uint8_t signs[FR_QK_K / 8];
    uint8_t scales[FR_QK_K / 64];
} fr_block_iq3_s;
/* 11-bit indices into the {-1,0,1}^8 grid; per 32 values qh holds 4 x 3 index bits,
 * a 3-bit scale and the sign of a +-1/8 shift */
typedef struct { uint16_t d; uint8_t qs[FR_QK_K / 8]; uint16_t qh[FR_QK_K / 32]; } fr_block_iq1_s;
/* IQ1_S's grid with 3-bit scales per 16 values and a shift sign per 8; the F16
 * super-block scale is spread over the top nibbles of the four scale words */
typedef struct {
    uint8_t qs[FR_QK_K / 8];
    uint8_t qh[FR_QK_K / 16];
    uint8_t scales[FR_QK_K / 32];
} fr_block_iq1_m;

_Static_assert(sizeof(fr_block_q2_k) == 84, "q2_k block size");
_Static_assert(sizeof(fr_block_q3_k) == 110, "q3_k block size");
_Static_assert(sizeof(fr_block_iq4_nl) == 18, "iq4_nl block size");
_Static_assert(sizeof(fr_block_iq4_xs) == 136, "iq4_xs block size");
_Static_assert(sizeof(fr_block_iq2_xxs) == 66, "iq2_xxs block size");
_Static_assert(sizeof(fr_block_iq2_xs) == 74, "iq2_xs block size");
_Static_assert(sizeof(fr_block_iq2_s) == 82, "iq2_s block size");
_Static_assert(sizeof(fr_block_iq3_xxs) == 98, "iq3_xxs block size");
_Static_assert(sizeof(fr_block_iq3_s) == 110, "iq3_s block size");
_Static_assert(sizeof(fr_block_iq1_s) == 50, "iq1_s block size");
_Static_assert(sizeof(fr_block_iq1_m) == 56, "iq1_m block size");

/* The 16 IQ4_NL / IQ4_XS levels (ascending, int8). */
extern const int8_t fr_iq4nl_values[16];
/* Grids (core/iq_grid2.c, core/iq_grid13.c), coordinates as bytes, lowest first. */
extern const uint64_t fr_iq2xxs_grid[256];
extern const uint64_t fr_iq2xs_grid[512];
extern const uint64_t fr_iq2s_grid[1024];
extern const uint32_t fr_iq3xxs_grid[256];
extern const uint32_t fr_iq3s_grid[512];
extern const uint64_t fr_iq1s_grid[2048];
/* IQ1_S / IQ1_M shift: a group's values are grid + or - this. */
#define FR_IQ1_DELTA 0.125f

/* The 8-bit sign mask of 7 stored sign bits: the eighth is their parity (the
 * formats keep an even number of negative values per 8). */
static inline uint8_t fr_iq_signs7(unsigned s7) {
    return (uint8_t)(s7 | ((unsigned)__builtin_parity(s7) << 7));
}

/* Readers: to_float (n a multiple of the block size) and vec_dot as in core/types.h. */
#define FR_DECL_READ(sfx) \
    void fr_to_float_##sfx(const void *x, float *y, int64_t n); \
    void fr_vec_dot_##sfx(int n, float *s, const void *x, const void *y);

FR_DECL_READ(q2_k)
FR_DECL_READ(q3_k)
FR_DECL_READ(iq4_nl)
FR_DECL_READ(iq4_xs)
FR_DECL_READ(iq2_xxs)
FR_DECL_READ(iq2_xs)
FR_DECL_READ(iq2_s)
FR_DECL_READ(iq3_xxs)
FR_DECL_READ(iq3_s)
FR_DECL_READ(iq1_s)
FR_DECL_READ(iq1_m)

/* The 16 Q3_K sub-block scales (already minus 32) from their 12 packed bytes. */
void fr_q3k_scales(const uint8_t packed[12], int8_t sc[16]);
/* The same scales plus 32 (0..63) as four 32-bit words (bytes in sub-block order),
 * computed four at a time, for the SIMD kernels: they build their vectors from the
 * words in registers (storing them and reloading 16 bytes would stall on store
 * forwarding). Low nibbles sit in bytes 0..7, the top two bits in bytes 8..11. */
static inline void fr_q3k_scales_w(const uint8_t packed[12], uint32_t o[4]) {
    uint32_t a[3];
    __builtin_memcpy(a, packed, 12);
    o[0] = (a[0] & 0x0f0f0f0f) | ((a[2] & 0x03030303) << 4);
    o[1] = (a[1] & 0x0f0f0f0f) | (((a[2] >> 2) & 0x03030303) << 4);
    o[2] = ((a[0] >> 4) & 0x0f0f0f0f) | (((a[2] >> 4) & 0x03030303) << 4);
    o[3] = ((a[1] >> 4) & 0x0f0f0f0f) | (((a[2] >> 6) & 0x03030303) << 4);
}

/* Writers (quantizers without importance weights, as llama-quantize without an
 * imatrix): n floats -> n / block_size blocks. */
void fr_from_float_q2_k(const float *x, void *y, int64_t n);
void fr_from_float_q3_k(const float *x, void *y, int64_t n);
void fr_from_float_iq4_nl(const float *x, void *y, int64_t n);
void fr_from_float_iq4_xs(const float *x, void *y, int64_t n);
void fr_from_float_iq3_s(const float *x, void *y, int64_t n);
/* IQ3_S rows (core/quant_iq3s_w.c): n floats (a multiple of 256) -> n / 256 blocks,
 * weighted by imp (one per value, as fr_quantize_weighted) or, imp NULL, by x^2. */
void fr_quantize_iq3_s_rows(const float *x, void *y, int64_t n, const float *imp);
/* IQ2_XXS / IQ2_XS / IQ2_S rows (core/quant_iq2_w.c), importance-weighted only:
 * returns -1 (nothing written) when imp is NULL or type is none of them, else 0. */
int fr_quantize_iq2_rows(fr_type type, const float *x, void *y, int64_t n, const float *imp);
/* IQ3_XXS rows (core/quant_iq3xxs_w.c), importance-weighted only: -1 (nothing
 * written) when imp is NULL, else 0. */
int fr_quantize_iq3_xxs_rows(const float *x, void *y, int64_t n, const float *imp);
/* IQ1_S / IQ1_M rows (core/quant_iq1_w.c), importance-weighted only: -1 (nothing
 * written) when imp is NULL or type is neither, else 0. */
int fr_quantize_iq1_rows(fr_type type, const float *x, void *y, int64_t n, const float *imp);
/* Importance-weighted writers (quantize --calib): imp holds one weight per value of
 * the row (its input channel's mean squared activation, mean ~1); the fits minimise
 * the error weighted by imp * sqrt(sigma2 + x^2) instead of the plain one. imp NULL
 * gives exactly from_float (IQ2_XXS / IQ2_XS have no from_float: -1 then). Returns 0,
 * or -1 (nothing written) for a type without a weighted writer;
 * fr_quantize_weighted_ok says which have one. */
bool fr_quantize_weighted_ok(fr_type t);
int fr_quantize_weighted(fr_type t, const float *x, void *y, int64_t n, const float *imp);

/* For the lattice writers' neighbour tables: keep list[0..*n) the (at most cap) grid
 * points nearest a pattern, sorted by squared distance dist[] (ties: the point offered
 * first stays first), offering point i at distance d. */
static inline void fr_iq_neigh_offer(int *dist, uint16_t *list, int *n, int cap, int d, int i) {
    int k = *n < cap ? (*n)++ : cap;
    if (k == cap && d >= dist[cap - 1]) return;
    if (k == cap) k = cap - 1;
    while (k > 0 && dist[k - 1] > d) {
        dist[k] = dist[k - 1];
        list[k] = list[k - 1];
        k--;
    }
    dist[k] = d;
    list[k] = (uint16_t)i;
}

/* A grid of 4-magnitude points (the IQ3 formats; core/quant_grid4_w.c) and its search
 * tables. The writer fills the first fields, then fr_grid4_build fills map (level
 * pattern l0 | l1 << 3 | l2 << 6 | l3 << 9 -> point, or -1 off the grid) and neigh
 * (an off-grid pattern's nearest points by squared level distance). */
#define FR_GRID4_NEIGH 16
typedef struct fr_grid4 {
    const uint32_t *grid;                    /* n points, magnitude j in byte j */
    int n;
    float lv_off, lv_mul;                    /* level of magnitude m: round((m - off) * mul), 0..7 */
    float trial_base, trial_rel, trial_step; /* trial scales amax / (base (1 + rel t)), or, */
    int trial_n;                             /* rel 0: amax / (base + step t); |t| <= trial_n */
    int16_t map[4096];
    uint16_t neigh[4096][FR_GRID4_NEIGH];
} fr_grid4;
void fr_grid4_build(fr_grid4 *g);
/* Points idx[0..8) of the 8 groups of a[32] (magnitudes, weights w) at scale s, with
 * *sumqx = sum w q a and *sumq2 = sum w q^2 (the least-squares scale is their ratio). */
void fr_grid4_fit(const fr_grid4 *g, const float *a, const float *w, float s, uint16_t *idx, float *sumqx,
                  float *sumq2);
/* Scale of one 32-value group: the trial with the best weighted fit (largest sumqx^2 /
 * sumq2), then one re-fit at that least-squares scale; 0 for an all-zero group. */
float fr_grid4_group_scale(const fr_grid4 *g, const float *a, const float *w);

/* The lattice writers' fit weights for one 256-value block: w[i] = imp[i] *
 * sqrt(sigma2 + x[i]^2), sigma2 twice the block's mean square (as llama.cpp); without
 * imp (IQ3_S's from_float) sigma2 + x[i]^2. A weight that is not positive becomes
 * 1e-12, so every value stays in the fits. */
void fr_iq_block_weights(const float *x, const float *imp, float *w);

/* Magnitudes and sign bytes of a block for a grid of magnitudes: a[i] = |x[i]|;
 * signs[g] holds bit j set where x[8g + j] < 0. With parity (formats that store 7
 * sign bits and take the eighth as their parity) a group with an odd count of
 * negatives flips the sign of its cheapest value (least w a^2): that bit is toggled
 * and a[] there made -|x|, the value the fit then has to reach. */
void fr_iq_block_signs(const float *x, const float *w, bool parity, float *a, uint8_t *signs);

#endif
