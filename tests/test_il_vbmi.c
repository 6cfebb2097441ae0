/* test_il_vbmi.c - the VBMI IL16 tiles of Q3_K and IQ4_XS (kernels/il_lowbit_vbmi.c)
 * give bit-identical outputs to the plain AVX-512 tiles (il_lowbit_avx512.c).
 *
 * Both compute the same integer sums and the same float sequence, so every output
 * must match to the bit (a tolerance would hide a wrong scale or 3-bit field that
 * happens to be small). Weights: 2 groups of 16 rows x 3 super-blocks of random
 * bytes (every pattern is a valid block) with finite F16 scales, plus rows of all
 * 0x00 / 0xFF blocks (the extremes of quants and scales); activations: Q8_K rows
 * from random bytes incl. -128 and +127, for 1..13 tokens (every tile width and a
 * remainder). The plain tiles run with FRUGAL_IL_VBMI=0. Skips (77) where the CPU
 * lacks AVX-512 VNNI or VBMI: there the two are the same code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/quant_lowbit.h"
#include "kernels/dispatch.h"
#include "kernels/interleave.h"
#include "testutil.h"

enum { NB = 3, N = NB * FR_QK_K, GROUPS = 2, ROWS = 16 * GROUPS, NT = 13 };

static uint8_t w[ROWS * NB * sizeof(fr_block_iq4_xs)], g[sizeof w];
static fr_block_q8_k y[NT][NB];
static uint8_t yp[NT][2 * sizeof(y[0]) + 256] __attribute__((aligned(64)));
static float out[2][NT][ROWS];
typedef __typeof__(((fr_type_traits *)0)->il_gemm) gemm_fn;

static void fill(size_t bs, size_t d_off, uint64_t *rng) {
    for (size_t i = 0; i < ROWS * NB * bs; i++) w[i] = (uint8_t)tu_rand_u64(rng);
    for (int r = 0; r < ROWS; r++)
        for (int b = 0; b < NB; b++) {
            uint8_t *blk = w + ((size_t)r * NB + (size_t)b) * bs;
            if (r % 8 == 5) memset(blk, 0x00, bs);
            if (r % 8 == 6) memset(blk, 0xFF, bs);
            const uint16_t d = (uint16_t)(0x2000 + tu_rand_u64(rng) % 0x1000); /* finite, ~0.01 */
            memcpy(blk + d_off, &d, 2);
        }
    for (int k = 0; k < NT; k++)
        for (int b = 0; b < NB; b++) {
            y[k][b].d = 0.25f + (float)k;
            for (int i = 0; i < FR_QK_K; i++) y[k][b].qs[i] = (int8_t)(k == 0 ? -128 : (int)(tu_rand_u64(rng) & 255) - 128);
            for (int j = 0; j < FR_QK_K / 16; j++) {
                int s = 0;
                for (int i = 0; i < 16; i++) s += y[k][b].qs[16 * j + i];
                y[k][b].bsums[j] = (int16_t)s;
            }
        }
}

/* The group GEMM of the active tiles for n_tok tokens into o. */
static void run(fr_type t, size_t bs, int n_tok, float o[NT][ROWS], gemm_fn *gemm) {
    const fr_type_traits *ac = fr_type_traits_get(t);
    *gemm = ac->il_gemm;
    CHECKF(ac->il_pack && ac->il_gemm, "%s: no IL16 GEMM at avx512", fr_type_name(t));
    if (!ac->il_pack || !ac->il_gemm) return;
    for (int k = 0; k < n_tok; k++) ac->il_pack(y[k], yp[k], N);
    for (int q = 0; q < GROUPS; q++) fr_il_pack_group(t, w + (size_t)q * 16 * NB * bs, N, g + (size_t)q * 16 * NB * bs);
    for (int q = 0; q < GROUPS; q++)
        ac->il_gemm(N, g + (size_t)q * 16 * NB * bs, 1, yp, sizeof(yp[0]), n_tok, &o[0][16 * q], ROWS);
}

static void check(fr_type t, size_t bs, size_t d_off, uint64_t *rng) {
    fill(bs, d_off, rng);
    for (int n_tok = 1; n_tok <= NT; n_tok++) {
        memset(out, 0, sizeof out);
        setenv("FRUGAL_IL_VBMI", "1", 1);
        CHECK(fr_kernels_set_level(FR_KERNELS_AVX512) == 0);
        gemm_fn gv = NULL, gp = NULL;
        run(t, bs, n_tok, out[0], &gv);
        setenv("FRUGAL_IL_VBMI", "0", 1);
        CHECK(fr_kernels_set_level(FR_KERNELS_AVX512) == 0);
        run(t, bs, n_tok, out[1], &gp);
        CHECKF(gv != gp, "%s: FRUGAL_IL_VBMI=0 did not switch the tiles", fr_type_name(t));
        int diff = 0;
        for (int k = 0; k < n_tok; k++) diff += memcmp(out[0][k], out[1][k], sizeof out[0][k]) != 0;
        CHECKF(diff == 0, "%s, %d tokens: %d token rows differ between the VBMI and plain tiles", fr_type_name(t),
               n_tok, diff);
    }
}

int main(void) {
    if (!fr_kernels_supported(FR_KERNELS_AVX512) || !__builtin_cpu_supports("avx512vbmi")) {
        printf("test_il_vbmi: no AVX-512 VNNI + VBMI on this CPU, skipped\n");
        return 77;
    }
    const int initial = fr_kernels_get_level();
    uint64_t rng = 0x7b31u;
    check(FR_TYPE_Q3_K, sizeof(fr_block_q3_k), offsetof(fr_block_q3_k, d), &rng);
    check(FR_TYPE_IQ4_XS, sizeof(fr_block_iq4_xs), offsetof(fr_block_iq4_xs, d), &rng);
    unsetenv("FRUGAL_IL_VBMI");
    CHECK(fr_kernels_set_level(initial) == 0);
    return tu_finish("test_il_vbmi");
}
