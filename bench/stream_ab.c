/* stream_ab.c - how close the decode matmuls come to streaming their weights.
 *
 *   bench_stream_ab MODEL.gguf [-t THREADS] [-r ROUNDS]
 *
 * `frugal bench` puts generation next to a roofline from a bandwidth probe run
 * before each repetition. On a shared machine whose bandwidth drifts (the 2-vCPU
 * development VM: the probe's passes spread ~10 % around their median within a
 * second) that ratio mixes the engine's efficiency with the machine's noise. This
 * program separates them: it alternates, many times, (a) one decode step's matmuls
 * over every matrix of the model (one token, the engine's kernels, pool and row
 * sharing; nothing else of the forward pass) and (b) a plain sum over exactly the
 * same bytes, each thread a contiguous share, software prefetch ahead as in the
 * probe, and (c) one whole decode step (frugal_eval of one token on a short cache:
 * the matmuls plus norms, RoPE, attention, SwiGLU and the hand-offs between them).
 * All three see the same drift, so time(b) / time(a) is the fraction of the
 * streaming rate the matmuls reach and time(b) / time(c) that of the whole step.
 * Not a test (timings are not asserted).
 *
 * Built beside the CLI (target bench_stream_ab); uses the library's internals. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/bench_sum.h"
#include "frugal.h"
#include "model/model.h"


typedef struct {
    const fr_weight **ws;
    int n;
    uint64_t partial[64 * 8]; /* one line per thread */
} sum_job;

/* The weights are summed with the bandwidth probe's own prefetching loop
 * (api/bench_sum.h), so the sum reads memory exactly as the roofline's probe does. */
static fr_sum_fn sum_words;

static size_t weight_bytes(const fr_weight *w) { return fr_row_size(w->type, w->n_in) * (size_t)w->n_out; }

static void sum_task(void *arg, int ith, int nth) {
    sum_job *j = arg;
    uint64_t s = 0;
    for (int k = 0; k < j->n; k++) {
        long a, b;
        fr_split((long)weight_bytes(j->ws[k]) / 64, ith, nth, &a, &b);
        s += sum_words((const uint64_t *)((const uint8_t *)j->ws[k]->data + a * 64), (size_t)(b - a) * 8);
    }
    if (ith < 64) j->partial[ith * 8] = s;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    const char *path = NULL;
    int threads = 0, rounds = 20;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) rounds = atoi(argv[++i]);
        else if (argv[i][0] != '-' && !path) path = argv[i];
        else {
            fprintf(stderr, "usage: %s MODEL.gguf [-t THREADS] [-r ROUNDS]\n", argv[0]);
            return 2;
        }
    }
    if (!path || rounds < 1) {
        fprintf(stderr, "usage: %s MODEL.gguf [-t THREADS] [-r ROUNDS]\n", argv[0]);
        return 2;
    }
    sum_words = fr_bench_sum(1);
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = threads;
    frugal_model *m = NULL;
    frugal_error err = {0};
    if (frugal_model_load(path, &mp, &m, &err)) {
        fprintf(stderr, "error: %s\n", err.message);
        return 1;
    }
    const fr_hparams *hp = &m->hp;
    const int n_max = hp->n_layer * FR_LAYER_MATRICES + 1;
    const fr_weight **ws = malloc(sizeof *ws * (size_t)n_max);
    if (!ws) {
        fprintf(stderr, "error: out of memory\n");
        frugal_model_free(m);
        return 1;
    }
    int k = 0;
    size_t total = 0, max_in = 0, max_out = 0, qbytes = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const fr_layer *L = &m->layers[il];
        for (int i = 0; i < FR_LAYER_MATRICES; i++)
            if (fr_layer_mat(L, i)) ws[k++] = &L->mat[i];
    }
    ws[k++] = &m->output;
    const int n_w = k;
    for (int i = 0; i < n_w; i++) {
        total += weight_bytes(ws[i]);
        if ((size_t)ws[i]->n_in > max_in) max_in = (size_t)ws[i]->n_in;
        if ((size_t)ws[i]->n_out > max_out) max_out = (size_t)ws[i]->n_out;
        size_t q = fr_matmul_scratch(ws[i], 1);
        if (q > qbytes) qbytes = q;
    }
    float *x = malloc(max_in * sizeof *x), *y = malloc(max_out * sizeof *y);
    void *qbuf = malloc(qbytes);
    if (!ws || !x || !y || !qbuf) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < max_in; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;

    /* one context, whose thread pool runs all three (a second pool's idle workers
     * would spin beside the first on a small machine) */
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 64;
    cp.n_threads = threads;
    frugal_context *ctx = NULL;
    if (frugal_context_new(m, &cp, &ctx, &err)) {
        fprintf(stderr, "error: %s\n", err.message);
        return 1;
    }
    fr_pool *pool = ctx->pool;

    sum_job sj = {.ws = ws, .n = n_w};
    double t[3] = {0.0, 0.0, 0.0}; /* matmuls, sum, decode step */
    for (int r = -1; r < rounds; r++) { /* round -1: warm-up, untimed */
        for (int k3 = 0; k3 < 3; k3++) {
            const int what = (k3 + r + 3) % 3; /* rotate which goes first */
            const double t0 = now_s();
            if (what == 0) {
                for (int i = 0; i < n_w; i++) fr_matmul(pool, ws[i], x, 1, y, qbuf);
            } else if (what == 1) {
                fr_pool_run(pool, sum_task, &sj);
            } else {
                if (frugal_context_pos(ctx) >= frugal_context_n_ctx(ctx)) frugal_context_reset(ctx);
                const int32_t tok = 1 + frugal_context_pos(ctx);
                if (frugal_eval(ctx, &tok, 1, 0, &err)) {
                    fprintf(stderr, "error: %s\n", err.message);
                    return 1;
                }
            }
            const double dt = now_s() - t0;
            if (r >= 0) t[what] += dt;
        }
    }
    printf("%s: %d matrices, %.1f MiB, %d threads, %d rounds\n", path, n_w, (double)total / 1048576.0,
           fr_pool_size(pool), rounds);
    printf("plain sum over the weights: %.2f GB/s\n", (double)total * rounds / t[1] / 1e9);
    printf("decode matmuls:             %.2f GB/s   %.1f %% of the sum's rate\n", (double)total * rounds / t[0] / 1e9,
           100.0 * t[1] / t[0]);
    printf("whole decode step:          %.2f tok/s  %.1f %% of the sum's rate\n", rounds / t[2], 100.0 * t[1] / t[2]);
    frugal_context_free(ctx);
    free(qbuf), free(y), free(x), free(ws);
    frugal_model_free(m);
    return 0;
}
