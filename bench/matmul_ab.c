/* matmul_ab.c - prefill and decode speed of one weight matrix per type, the types
 * alternating in one process.
 *
 *   bench_matmul_ab [-t THREADS] [-r ROUNDS] [-p PROMPT_TOKENS] [-o ROWS] [-i]
 *
 * On a shared machine (the 2-vCPU development VM with other sessions' builds
 * running) whole-model runs of `frugal bench` one after another see different
 * loads. Here every round times each variant once, in turn, on a TinyLlama-shape
 * ffn_up matrix (5632 x 2048, the engine's fr_matmul: its quantizer, pool, IL16 or
 * row-major kernels), and the minimum over the rounds of the process's CPU time is
 * kept (not wall time: with -t 1 the work runs on one thread and time spent
 * preempted by other processes does not count), so their ratios compare the
 * kernels, not the load. With -t > 1 the figures include the pool's waiting. Variants: each
 * type repacked (IL16, as the engine runs it when the active level has an IL16 GEMM)
 * and, for the low-bit types and Q5_K, row-major (what they ran before they had one).
 * Weights: 256 distinct rows quantized from normal data by the type's writer, tiled
 * to the full height (speed does not depend on the values). -i compares the low-bit
 * types row-major (Q2_K, Q3_K, IQ4_XS, IQ2_XXS .. IQ1_M; Q5_K repacked and row-major)
 * instead; those without a writer of their own in the traits get random blocks with a
 * fixed F16 scale. Not a test.
 *
 * Built beside the CLI (target bench_matmul_ab); uses the library's internals. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "core/types.h"
#include "kernels/interleave.h"
#include "kernels/ops.h"

enum { N_IN = 2048, N_DISTINCT = 256 };
static int n_out = 5632; /* -o ROWS: a matrix small enough for L2 times the kernel, not the cache below */

typedef struct {
    fr_type type;
    int il; /* repacked */
    fr_weight w;
    void *mem;
    double best_pp, best_tg;
} variant;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float rnd_normal(uint64_t *s) {
    double u = 0;
    for (int k = 0; k < 12; k++) {
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        u += (double)(*s >> 11) / 9007199254740992.0;
    }
    return (float)(u - 6.0);
}

static int make(variant *v, uint64_t *rng) {
    const fr_type_traits *tr = fr_type_traits_get(v->type);
    const size_t rs = fr_row_size(v->type, N_IN);
    uint8_t *rows = malloc(rs * n_out), *il = v->il ? malloc(rs * n_out) : NULL;
    float *x = malloc(sizeof(float) * N_IN);
    if (!rows || (v->il && !il) || !x) {
        free(rows);
        free(il);
        free(x);
        return -1;
    }
    for (int r = 0; r < N_DISTINCT; r++) {
        uint8_t *row = rows + (size_t)r * rs;
        if (!tr->from_float) { /* random blocks, each starting with its F16 scale (1/16) */
            for (size_t i = 0; i < rs; i++) row[i] = (uint8_t)(rnd_normal(rng) * 1e3f);
            for (size_t b = 0; b < rs; b += tr->type_size) row[b] = 0x00, row[b + 1] = 0x2C;
            continue;
        }
        for (int i = 0; i < N_IN; i++) x[i] = rnd_normal(rng);
        tr->from_float(x, row, N_IN);
    }
    for (int r = N_DISTINCT; r < n_out; r++) memcpy(rows + (size_t)r * rs, rows + (size_t)(r % N_DISTINCT) * rs, rs);
    free(x);
    v->w = (fr_weight){.data = rows, .type = v->type, .n_in = N_IN, .n_out = n_out, .layout = FR_LAYOUT_ROWS,
                       .src = rows};
    v->mem = rows;
    if (v->il) {
        if (!fr_il_worth_it(&v->w)) {
            fprintf(stderr, "%s: no IL16 GEMM at this kernel level, left out\n", tr->name);
            free(il);
            free(rows);
            return 1;
        }
        fr_il_repack(&v->w, il);
        v->mem = il;
        free(rows);
    }
    v->best_pp = v->best_tg = 1e30;
    return 0;
}

int main(int argc, char **argv) {
    int threads = 2, rounds = 15, n_pp = 64, lattice = 0;
    for (int i = 1; i < argc; i += 2) {
        if (!strcmp(argv[i], "-i")) lattice = 1, i--;
        else if (i + 1 >= argc) i = argc; /* a flag without its value: usage below */
        else if (!strcmp(argv[i], "-t")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-r")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-p")) n_pp = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-o")) n_out = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_matmul_ab [-t THREADS] [-r ROUNDS] [-p PROMPT_TOKENS] [-o ROWS] [-i]\n");
            return 2;
        }
    }
    if (threads < 1 || rounds < 1 || n_pp < 1 || n_out < N_DISTINCT || n_out % 16) {
        fprintf(stderr, "bench_matmul_ab: -t, -r and -p must be positive, -o a multiple of 16 >= 256\n");
        return 2;
    }
    static const fr_type types[] = {FR_TYPE_Q4_K,   FR_TYPE_Q5_K,   FR_TYPE_Q5_K,   FR_TYPE_Q6_K,
                                    FR_TYPE_Q4_0,   FR_TYPE_Q4_0,   FR_TYPE_Q3_K,   FR_TYPE_Q3_K,
                                    FR_TYPE_IQ4_XS, FR_TYPE_IQ4_XS, FR_TYPE_IQ4_NL, FR_TYPE_IQ4_NL};
    static const int ils[] = {1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0};
    static const fr_type lat_types[] = {FR_TYPE_Q4_K,    FR_TYPE_Q5_K,   FR_TYPE_Q5_K,  FR_TYPE_Q2_K,
                                        FR_TYPE_Q3_K,    FR_TYPE_IQ4_XS, FR_TYPE_IQ2_XXS, FR_TYPE_IQ2_XS,
                                        FR_TYPE_IQ2_S,   FR_TYPE_IQ3_XXS, FR_TYPE_IQ3_S,  FR_TYPE_IQ1_S,
                                        FR_TYPE_IQ1_M};
    static const int lat_ils[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    enum { NV = (int)(sizeof types / sizeof types[0]), NL = (int)(sizeof lat_types / sizeof lat_types[0]) };
    variant vs[NV > NL ? NV : NL];
    int nv = lattice ? NL : NV;
    memset(vs, 0, sizeof vs);
    for (int k = 0; k < nv; k++)
        vs[k].type = lattice ? lat_types[k] : types[k], vs[k].il = lattice ? lat_ils[k] : ils[k];
    uint64_t rng = 42;
    int kept = 0; /* the variants that run here (an IL16 one needs the level's GEMM) */
    for (int k = 0; k < nv; k++) {
        const int rc = make(&vs[k], &rng);
        if (rc < 0) return 1;
        if (rc == 0) vs[kept++] = vs[k];
    }
    nv = kept;
    fr_pool *pool = fr_pool_new(threads);
    float *x = malloc(sizeof(float) * N_IN * (size_t)n_pp), *y = malloc(sizeof(float) * n_out * (size_t)n_pp);
    size_t scratch = 0;
    for (int k = 0; k < nv; k++) {
        const size_t s = fr_matmul_scratch(&vs[k].w, n_pp);
        if (s > scratch) scratch = s;
    }
    void *qb = malloc(scratch + 64);
    if (!pool || !x || !y || !qb) return 1;
    for (size_t i = 0; i < (size_t)N_IN * (size_t)n_pp; i++) x[i] = rnd_normal(&rng);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < nv; k++) {
            double t0 = now();
            fr_matmul(pool, &vs[k].w, x, n_pp, y, qb);
            double t1 = now();
            if (t1 - t0 < vs[k].best_pp) vs[k].best_pp = t1 - t0;
            t0 = now();
            for (int rep = 0; rep < 4; rep++) fr_matmul(pool, &vs[k].w, x, 1, y, qb);
            t1 = now();
            if ((t1 - t0) / 4 < vs[k].best_tg) vs[k].best_tg = (t1 - t0) / 4;
        }
    printf("%-8s %-5s %12s %9s %12s %9s %8s\n", "type", "store", "pp tok/s", "x Q4_K", "tg GB/s", "x Q4_K", "bpw");
    for (int k = 0; k < nv; k++) {
        const double bytes = (double)fr_row_size(vs[k].type, N_IN) * n_out;
        printf("%-8s %-5s %12.1f %9.3f %12.2f %9.3f %8.4f\n", fr_type_traits_get(vs[k].type)->name,
               vs[k].il ? "IL16" : "rows", n_pp / vs[k].best_pp, vs[0].best_pp / vs[k].best_pp,
               bytes / vs[k].best_tg / 1e9, (bytes / vs[k].best_tg) / (fr_row_size(vs[0].type, N_IN) * (double)n_out /
                                                                       vs[0].best_tg),
               8.0 * bytes / ((double)N_IN * n_out));
    }
    fr_pool_free(pool);
    for (int k = 0; k < nv; k++) free(vs[k].mem);
    free(x), free(y), free(qb);
    return 0;
}
