/* il_drive.h - the loop every IL16 GEMM shares, whatever its SIMD level
 * (il_drive.c is plain C, compiled without ISA flags; the per-level tiles are
 * in il_avx512.c, il_avx2.c, ...).
 *
 * Why one driver: the order in which groups, token tiles and token chunks are
 * visited decides cache behaviour, never results (each output is computed by one
 * tile call over the whole row), so every level can share it; only the tile and
 * its widest token count differ per level (32 zmm registers hold 8 tokens' worth of
 * 16-row accumulators, 16 ymm registers fewer). */
#ifndef FRUGAL_IL_DRIVE_H
#define FRUGAL_IL_DRIVE_H

#include <stddef.h>
#include <stdint.h>

/* One Q8_0 activation block as the Q4_0 and Q8_0 IL16 tiles read it (AVX-512 both,
 * AVX2 Q4_0): the quants, the scale widened, and the offset correction. */
typedef struct {
    int8_t qs[32];
    float d;      /* the block's scale */
    int32_t corr; /* -c * sum(qs): c = 8 (Q4_0 nibble offset) or 128 (Q8_0 bias) */
} fr_il_act;

/* Software prefetch for the weight stream. Decode reads every weight once, so its
 * speed is the rate at which one core keeps DRAM reads in flight, and the hardware
 * prefetchers alone do not keep enough of them going behind a compute-dense loop.
 * Past a group's end the addresses are the next group's or next matrix's (all
 * matrices share one buffer, in forward-pass order); a prefetch never faults, so
 * running off the end of the buffer is harmless. Prefill re-reads each block from
 * cache for many tokens, so the few extra instructions cost it nothing measurable.
 * Measured on the 2-vCPU development VM (AMD family 26), decode matmuls over one
 * buffer of 1.1B-shape matrices with and without, interleaved in one process: Q4_0
 * +6-10 %, Q4_K +17-20 %, Q6_K +4-7 %, F16 +12-28 %, but Q8_0 -2-3 % (its kernel
 * has half the instructions per byte, so the out-of-order window already reaches as
 * far): the Q8_0 tiles do without. Distances of 2, 4, 8 and 16 KiB and the L2 hint
 * differed by less than the run-to-run noise; 4 KiB is kept. The bandwidth probe
 * (api/bench_api.c) and bench/stream_ab.c prefetch the same distance. */
#define FR_IL_PREFETCH_AHEAD 4096

/* Prefetch the n bytes starting FR_IL_PREFETCH_AHEAD past p, one per cache line. */
static inline void fr_il_prefetch(const void *p, size_t n) {
    const uintptr_t a = (uintptr_t)p + FR_IL_PREFETCH_AHEAD; /* integer: may lie past the object */
    for (size_t o = 0; o < n; o += 64) __builtin_prefetch((const void *)(a + o), 0, 3);
}

/* Slice k (of n equal ones) of the sb-byte block at blk, prefetched as fr_il_prefetch
 * does. A tile that works through a block in n steps calls this once per step, so the
 * block's lines are asked for a few at a time. Why not the whole block at its start:
 * that burst (28-53 lines for the K-quant and Q3_K / IQ4_XS blocks) fills the line-fill
 * buffers, and the block's own loads queue behind it. On the 2-vCPU Xeon VM one-thread
 * decode of a Q4_K model went from ~80 to ~85 % of a plain sum's rate at AVX-512 and
 * from 50-63 to 75-78 % at AVX2; Q3_K_M and IQ4_XS ~78 -> ~81 %. */
static inline void fr_il_prefetch_slice(const void *blk, size_t sb, int k, int n) {
    fr_il_prefetch((const uint8_t *)blk + (size_t)k * (sb / (size_t)n), sb / (size_t)n);
}

/* Q8_0 activation row (n values, whole blocks) at vq -> fr_il_act blocks at vp,
 * with corr = -c * sum(qs). */
void fr_il_pack_act(const void *vq, void *vp, int64_t n, int c);

/* One tile of a format's IL16 GEMM: the 16 rows of the group at g times tokens
 * [0, T) (1 <= T <= the tile's maximum) of the packed activations at yt (rows
 * yp_row bytes apart), into out[t * ld + r]. nb: blocks per row. */
typedef void (*fr_il_tile_fn)(int T, int nb, const uint8_t *g, const uint8_t *yt, size_t yp_row, float *out,
                              size_t ld);

/* The loop: groups one by one (group_bytes each), tokens in tiles of tmax (a last
 * shorter one), and tokens in as few, even chunks as keep each chunk's packed
 * activations (act_bytes read per token) within ~768 KiB of L2 while the groups
 * stream past them (a short last chunk would re-read every weight for a handful of
 * tokens). nb is passed on to the tile. Writes out[t * ld + 16 * gi + r] for every
 * token t < n_tok, group gi < n_groups and row r < 16. */
void fr_il_drive(fr_il_tile_fn tile, int tmax, int nb, size_t group_bytes, size_t act_bytes, const void *w,
                 int n_groups, const void *yp, size_t yp_row, int n_tok, float *out, size_t ld);

/* Case k of the tile dispatcher below: TILE at the constant T = k when k < TMAX
 * (cases k >= TMAX are dead code and fall to the TMAX call; the clamp to 1 keeps
 * them from naming a T wider than the tile's arrays). */
#define FR_IL_TILE_CASE(K, TILE, TMAX)                                                                       \
    case K:                                                                                                  \
        if ((K) < (TMAX)) {                                                                                  \
            TILE(((K) < (TMAX) ? (K) : 1), nb, g, yt, yp_row, o, ld);                                        \
            return;                                                                                          \
        }                                                                                                    \
        break;

/* A format's fr_il_gemm_fn NAME over its always-inline tile TILE(T, nb, g, yt,
 * yp_row, out, ld): a dispatcher gives the tile T as a compile-time constant for
 * each shape 1..TMAX (TMAX <= 12; the accumulators stay in registers), and
 * fr_il_drive runs it. QK: values per block; GROUP_BLOCK: bytes of 16 rows' block;
 * ACT_BLOCK: packed activation bytes per block. */
#define FR_IL_DEFINE_GEMM_T(NAME, TILE, TMAX, QK, GROUP_BLOCK, ACT_BLOCK)                                   \
    _Static_assert((TMAX) >= 1 && (TMAX) <= 12, "tile width");                                               \
    static void NAME##_tile(int T, int nb, const uint8_t *g, const uint8_t *yt, size_t yp_row, float *o,      \
                            size_t ld) {                                                                     \
        switch (T) {                                                                                         \
            FR_IL_TILE_CASE(1, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(2, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(3, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(4, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(5, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(6, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(7, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(8, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(9, TILE, TMAX)                                                                   \
            FR_IL_TILE_CASE(10, TILE, TMAX)                                                                  \
            FR_IL_TILE_CASE(11, TILE, TMAX)                                                                  \
        default: break;                                                                                      \
        }                                                                                                    \
        TILE((TMAX), nb, g, yt, yp_row, o, ld);                                                              \
    }                                                                                                        \
    static void NAME(int n, const void *w, int n_groups, const void *yp, size_t yp_row, int n_tok, float *out, \
                     size_t ld) {                                                                            \
        const int nb = n / (QK);                                                                             \
        fr_il_drive(NAME##_tile, (TMAX), nb, (size_t)nb * (GROUP_BLOCK), (size_t)nb * (ACT_BLOCK), w,         \
                    n_groups, yp, yp_row, n_tok, out, ld);                                                   \
    }

#endif
