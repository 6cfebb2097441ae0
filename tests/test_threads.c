/* test_threads.c - the thread pool and the work split: logits are bit-identical for
 * 1, 2 and 3 threads (work is split by output rows and by (token, head) pairs, never
 * by reduction order), over batched prompt evaluation and single-token decoding, on
 * a quantized and a float model. Also hammers the pool with many tiny ops to catch
 * lost wake-ups (a hang here is a bug). Needs ../shared (skips without it). */
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "frugal.h"
#include "testutil.h"

static float *run(const char *path, int n_threads, int *n_vocab, int *n_rows) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads;
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(path, &mp, &m, &err)) { CHECKF(0, "%s", err.message); return NULL; }
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 64;
    frugal_context *c = NULL;
    float *out = NULL;
    if (!frugal_context_new(m, &cp, &c, &err)) {
        int32_t toks[9];
        for (int i = 0; i < 9; i++) toks[i] = (i * 37 + 5) % info.n_vocab;
        *n_vocab = info.n_vocab;
        *n_rows = 9 + 4;
        out = tu_malloc(sizeof(float) * (size_t)info.n_vocab * (size_t)*n_rows);
        CHECK(frugal_eval(c, toks, 9, 1, &err) == FRUGAL_OK);
        for (int i = 0; i < 9; i++)
            memcpy(out + (size_t)i * info.n_vocab, frugal_get_logits(c, i), sizeof(float) * info.n_vocab);
        for (int k = 0; k < 4; k++) {
            int32_t t = (k * 101 + 3) % info.n_vocab;
            CHECK(frugal_eval(c, &t, 1, 0, &err) == FRUGAL_OK);
            memcpy(out + (size_t)(9 + k) * info.n_vocab, frugal_get_logits(c, -1), sizeof(float) * info.n_vocab);
        }
        frugal_context_free(c);
    }
    frugal_model_free(m);
    return out;
}

static void count_job(void *arg, int ith, int nth) {
    (void)nth;
    __atomic_fetch_add((long *)arg, ith + 1, __ATOMIC_RELAXED);
}

/* adds nth once per call: 1 per op in solo mode, nth * nth with nth threads */
static void nth_job(void *arg, int ith, int nth) {
    (void)ith;
    __atomic_fetch_add((long *)arg, nth, __ATOMIC_RELAXED);
}

int main(void) {
    /* pool: 20000 tiny ops with 3 threads; every thread runs every op exactly once */
    fr_pool *p = fr_pool_new(3);
    long total = 0;
    for (int i = 0; i < 20000; i++) fr_pool_run(p, count_job, &total);
    CHECKF(total == 20000L * (1 + 2 + 3), "pool ran %ld units", total);
    /* solo mode: the caller alone (ith 0 of 1), then all three threads again */
    fr_pool_solo(p, 1);
    total = 0;
    for (int i = 0; i < 1000; i++) fr_pool_run(p, nth_job, &total);
    CHECKF(total == 1000, "solo pool: %ld (want 1000: one call of nth 1 per op)", total);
    fr_pool_solo(p, 0);
    total = 0;
    for (int i = 0; i < 1000; i++) fr_pool_run(p, nth_job, &total);
    CHECKF(total == 1000L * 3 * 3, "pool after solo: %ld (want 9000)", total);
    fr_pool_free(p);

    const char *models[] = {"models/synth-spm-q4_k_m.gguf", "models/fortune-3m-f32.gguf",
                            "models/synth-qwen2-q8_0.gguf"};
    int any = 0;
    for (size_t k = 0; k < sizeof models / sizeof *models; k++) {
        const char *path = tu_shared(models[k]);
        if (!path) continue;
        any = 1;
        int nv = 0, nr = 0;
        float *ref = run(path, 1, &nv, &nr);
        for (int t = 2; t <= 3 && ref; t++) {
            int nv2 = 0, nr2 = 0;
            float *l = run(path, t, &nv2, &nr2);
            CHECKF(l && nv2 == nv && memcmp(l, ref, sizeof(float) * (size_t)nv * nr) == 0,
                   "%s: logits with %d threads differ from 1 thread", models[k], t);
            free(l);
        }
        printf("%s: 1/2/3 threads compared\n", models[k]);
        free(ref);
    }
    if (!any) printf("SKIP (partial): ../shared models not found, only the pool was tested\n");
    return tu_finish("test_threads");
}
