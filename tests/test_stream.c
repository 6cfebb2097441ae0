/* test_stream.c - out-of-core streaming through the public API:
 *  - logits with every layer streamed (budget = the plan's minimum) are bit-identical
 *    to the fully resident run, over a prompt and single-token steps (the ring wraps
 *    many times), on several shared models;
 *  - a budget below the minimum fails cleanly, naming the minimum;
 *  - a model file truncated after the stream started gives FRUGAL_E_IO from
 *    frugal_eval (no hang: an alarm fails the test instead), again on the next eval. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frugal.h"
#include "testutil.h"

#define N_CTX 64
#define N_THREADS 2

static const int32_t k_prompt[] = {1, 15043, 29892, 920, 526, 366, 29973};

/* Logits after the prompt and after each of n_steps greedy single-token evals. */
static int run(frugal_model *m, uint64_t budget, float *out, int n_vocab, int n_steps, frugal_error *err) {
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = N_THREADS;
    cp.mem_budget = budget;
    frugal_context *c = NULL;
    int rc = frugal_context_new(m, &cp, &c, err);
    if (rc) return rc;
    if (budget) {
        frugal_mem_stats ms;
        frugal_get_mem_stats(&ms);
        CHECKF(ms.current[3] > 0, "no I/O buffers accounted while streaming (%s)", ms.names[3]);
    }
    int n_prompt = (int)(sizeof k_prompt / sizeof *k_prompt);
    int32_t toks[sizeof k_prompt / sizeof *k_prompt];
    for (int i = 0; i < n_prompt; i++) toks[i] = k_prompt[i] % n_vocab;
    rc = frugal_eval(c, toks, n_prompt, 0, err);
    for (int s = 0; !rc && s <= n_steps; s++) {
        const float *l = frugal_get_logits(c, -1);
        memcpy(out + (size_t)s * n_vocab, l, sizeof(float) * (size_t)n_vocab);
        if (s == n_steps) break;
        int32_t best = 0;
        for (int v = 1; v < n_vocab; v++) if (l[v] > l[best]) best = v;
        rc = frugal_eval(c, &best, 1, 0, err);
    }
    frugal_context_free(c);
    return rc;
}

/* The model at path with N_THREADS threads, or NULL (a failed check). */
static frugal_model *load_model(const char *path) {
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = N_THREADS;
    CHECKF(frugal_model_load(path, &mp, &m, &err) == FRUGAL_OK, "%s", err.message);
    return m;
}

static void test_identical(const char *rel) {
    const char *path = tu_shared(rel);
    if (!path) { fprintf(stderr, "note: %s absent, skipped\n", rel); return; }
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model *m = load_model(path);
    if (!m) return;
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    frugal_plan plan;
    CHECKF(frugal_plan_memory(m, 0, N_CTX, FRUGAL_KV_F16, N_THREADS, 0, 0, &plan, &err) == FRUGAL_OK, "%s",
           err.message);
    /* the minimum streams every layer; a little slack (far less than a layer) too */
    uint64_t budget = plan.min_bytes + (16u << 10);
    frugal_plan sp;
    CHECKF(frugal_plan_memory(m, budget, N_CTX, FRUGAL_KV_F16, N_THREADS, 0, 0, &sp, &err) == FRUGAL_OK, "%s",
           err.message);
    CHECKF(sp.streaming && sp.streamed_layers == info.n_layer && sp.resident_layers == 0,
           "%s: plan streams %d of %d", rel, sp.streamed_layers, info.n_layer);
    CHECK(sp.forecast_peak_bytes <= budget);

    const int steps = 6;
    int nv = info.n_vocab;
    float *a = tu_malloc(sizeof(float) * (size_t)nv * (steps + 1));
    float *b = tu_malloc(sizeof(float) * (size_t)nv * (steps + 1));
    CHECK(a && b);
    if (a && b) {
        frugal_error e1 = FRUGAL_ERROR_INIT, e2 = FRUGAL_ERROR_INIT;
        int r1 = run(m, 0, a, nv, steps, &e1);
        int r2 = run(m, budget, b, nv, steps, &e2);
        CHECKF(r1 == FRUGAL_OK, "%s resident: %s", rel, e1.message);
        CHECKF(r2 == FRUGAL_OK, "%s streamed: %s", rel, e2.message);
        if (!r1 && !r2)
            CHECKF(memcmp(a, b, sizeof(float) * (size_t)nv * (steps + 1)) == 0,
                   "%s: streamed logits differ from resident ones", rel);
        /* a budget with room for some layers: mixed resident + streamed, same logits */
        uint64_t mid = budget + (plan.resident_bytes / info.n_layer) * 2;
        frugal_plan mp2;
        if (frugal_plan_memory(m, mid, N_CTX, FRUGAL_KV_F16, N_THREADS, 0, 0, &mp2, &err) == FRUGAL_OK &&
            mp2.streaming && mp2.resident_layers > 0) {
            frugal_error e3 = FRUGAL_ERROR_INIT;
            CHECKF(run(m, mid, b, nv, steps, &e3) == FRUGAL_OK, "%s mixed: %s", rel, e3.message);
            CHECKF(memcmp(a, b, sizeof(float) * (size_t)nv * (steps + 1)) == 0, "%s: mixed logits differ", rel);
        }
    }
    free(a);
    free(b);

    /* below the minimum: clean error naming it */
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = N_THREADS;
    cp.mem_budget = plan.min_bytes / 2;
    frugal_context *c = NULL;
    frugal_error e4 = FRUGAL_ERROR_INIT;
    CHECK(frugal_context_new(m, &cp, &c, &e4) == FRUGAL_E_NOMEM);
    CHECK(c == NULL);
    CHECKF(strstr(e4.message, "minimum working set") != NULL, "%s", e4.message);
    frugal_model_free(m);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_stream: eval on a truncated file hung\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

static void test_truncated(void) {
    const char *src = tu_shared("models/synth-spm-q8_0.gguf");
    if (!src) { fprintf(stderr, "note: synth-spm-q8_0 absent, truncation test skipped\n"); return; }
    char path[1024];
    snprintf(path, sizeof path, "%s/trunc.gguf", tu_tmpdir());
    size_t len = 0;
    char *data = tu_read_file(src, &len);
    CHECK(data != NULL);
    if (!data) return;
    FILE *f = fopen(path, "wb");
    CHECK(f && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
    free(data);

    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model *m = load_model(path);
    if (!m) { unlink(path); return; }
    frugal_plan plan;
    CHECK(frugal_plan_memory(m, 0, N_CTX, FRUGAL_KV_F16, N_THREADS, 0, 0, &plan, &err) == FRUGAL_OK);
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = N_THREADS;
    cp.mem_budget = plan.min_bytes + (16u << 10);
    frugal_context *c = NULL;
    CHECKF(frugal_context_new(m, &cp, &c, &err) == FRUGAL_OK, "%s", err.message);
    if (c) {
        int32_t t = 1;
        CHECK(frugal_eval(c, &t, 1, 0, &err) == FRUGAL_OK);
        /* cut the last layers off (the output head and embeddings lie at the front) */
        CHECK(truncate(path, (off_t)(len - (1u << 20))) == 0);
        signal(SIGALRM, on_alarm);
        alarm(60);
        frugal_error e1 = FRUGAL_ERROR_INIT, e2 = FRUGAL_ERROR_INIT;
        int rc = FRUGAL_OK;
        /* prefetched layers may still be whole: a few tokens reach the cut */
        for (int i = 0; i < 4 && rc == FRUGAL_OK; i++) rc = frugal_eval(c, &t, 1, 0, &e1);
        CHECKF(rc == FRUGAL_E_IO, "eval after truncation returned %d: %s", rc, e1.message);
        CHECKF(strstr(e1.message, "truncated") != NULL, "%s", e1.message);
        CHECK(frugal_eval(c, &t, 1, 0, &e2) == FRUGAL_E_IO); /* stays failed */
        alarm(0);
        frugal_context_free(c);
    }
    frugal_model_free(m);
    unlink(path);
}

int main(void) {
    if (!tu_shared("models")) tu_skip("shared models absent");
    test_identical("models/synth-spm-q8_0.gguf");
    test_identical("models/synth-qwen2-q8_0.gguf");
    test_identical("models/synth-gpt2-tied-q8_0.gguf");
    test_identical("models/fortune-3m-q4_k_m.gguf");
    test_identical("models/stories260K.gguf");
    test_truncated();
    return tu_finish("test_stream");
}
