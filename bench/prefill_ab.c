/* prefill_ab.c - prompt processing of several models, alternating in one process.
 *
 *   bench_prefill_ab [-p PROMPT_TOKENS] [-r ROUNDS] [-g GEN_TOKENS] MODEL.gguf...
 *
 * On the shared 2-vCPU development VM, `frugal bench` runs one after another see
 * different loads from other sessions, so their tok/s cannot be compared. This
 * program loads every model (repacked as `frugal run` would, one thread), then each
 * round evaluates, model by model, one prompt of P tokens on an empty cache and G
 * single-token decode steps, and keeps the least process CPU time of each over the
 * rounds. With one thread, time spent preempted does not count, so the ratios
 * between the models compare the engine's work (the caches are still shared with
 * the other sessions: figures are lower than on an idle machine, not their ratios).
 * Prints tok/s per model and the ratio to the first. Not a test.
 *
 * Built beside the CLI (target bench_prefill_ab); public API only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frugal.h"

static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

enum { MAX_MODELS = 8 };

int main(int argc, char **argv) {
    int n_pp = 64, rounds = 5, n_tg = 8, n_m = 0;
    const char *paths[MAX_MODELS];
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "-p")) n_pp = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-r")) rounds = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "-g")) n_tg = atoi(argv[++i]);
        else if (argv[i][0] != '-' && n_m < MAX_MODELS) paths[n_m++] = argv[i];
        else {
            fprintf(stderr, "usage: bench_prefill_ab [-p N] [-r N] [-g N] MODEL.gguf... (at most %d)\n", MAX_MODELS);
            return 2;
        }
    }
    if (n_m < 1 || n_pp < 1 || rounds < 1 || n_tg < 0) {
        fprintf(stderr, "bench_prefill_ab: need a model; -p, -r positive, -g not negative\n");
        return 2;
    }
    frugal_model *m[MAX_MODELS];
    frugal_context *c[MAX_MODELS];
    double best_pp[MAX_MODELS], best_tg[MAX_MODELS];
    frugal_error err = {0};
    for (int k = 0; k < n_m; k++) {
        frugal_model_params mp;
        frugal_model_params_default(&mp);
        mp.n_threads = 1;
        frugal_context_params cp;
        frugal_context_params_default(&cp);
        cp.n_ctx = n_pp + n_tg + 1;
        cp.n_threads = 1;
        if (frugal_model_load(paths[k], &mp, &m[k], &err) || frugal_context_new(m[k], &cp, &c[k], &err)) {
            fprintf(stderr, "error: %s: %s\n", paths[k], err.message);
            return 1;
        }
        best_pp[k] = best_tg[k] = 1e30;
    }
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n_pp);
    if (!toks) return 1;
    for (int i = 0; i < n_pp; i++) toks[i] = 1 + (int32_t)((i * 7919u) % 1000u);
    for (int r = 0; r < rounds; r++)
        for (int k = 0; k < n_m; k++) {
            frugal_context_reset(c[k]);
            double t0 = cpu_now();
            if (frugal_eval(c[k], toks, n_pp, 0, &err)) {
                fprintf(stderr, "error: %s\n", err.message);
                return 1;
            }
            double t1 = cpu_now();
            if (t1 - t0 < best_pp[k]) best_pp[k] = t1 - t0;
            t0 = cpu_now();
            for (int g = 0; g < n_tg; g++) {
                const int32_t tok = 1 + g;
                if (frugal_eval(c[k], &tok, 1, 0, &err)) {
                    fprintf(stderr, "error: %s\n", err.message);
                    return 1;
                }
            }
            t1 = cpu_now();
            if (n_tg > 0 && (t1 - t0) / n_tg < best_tg[k]) best_tg[k] = (t1 - t0) / n_tg;
        }
    printf("%-40s %10s %8s %10s %8s\n", "model (1 thread, least CPU time)", "pp tok/s", "x first", "tg tok/s", "x first");
    for (int k = 0; k < n_m; k++)
        printf("%-40s %10.2f %8.3f %10.2f %8.3f\n", paths[k], n_pp / best_pp[k], best_pp[0] / best_pp[k],
               n_tg ? 1.0 / best_tg[k] : 0.0, n_tg ? best_tg[0] / best_tg[k] : 0.0);
    for (int k = 0; k < n_m; k++) frugal_context_free(c[k]), frugal_model_free(m[k]);
    free(toks);
    return 0;
}
