/* test_expert_cache.c - the expert cache of budget/experts.c on small mixtures of
 * experts written by frugal_mkmodel (Mixtral's layout and qwen3moe's, one with
 * skewed routing), with the scalar kernels so every layout computes the same sums:
 *  - logits over a prompt and 24 greedy single-token steps are bit-identical to the
 *    model run from its mapping, with 1 slot, one slot per layer, half the experts,
 *    and every expert cached;
 *  - accounting: each single-token step makes exactly n_layer x n_used requests;
 *    with one slot they never hit (consecutive requests are other layers' experts); a cache of
 *    every expert never misses after its warm fill; the bytes read are those of the
 *    misses (the exact expert bytes up to page alignment) plus the reads ahead that
 *    were not picked;
 *  - all of the above again with reads ahead on every guess of the layer's picks
 *    (FRUGAL_EXPERT_PREDICT_MIN=0, FRUGAL_EXPERT_WASTE large): same logits, reads ahead
 *    counted; and with every guess trusted but the default cap on waste: the reads
 *    ahead that were not picked stay within 10 % of the misses (+ the 4-expert burst);
 *  - the planner sizes the cache from a budget through frugal_context_new (all accounted
 *    memory then within the budget), refuses a budget below dense weights + one
 *    slot naming the minimum;
 *  - a file truncated under a running cache gives FRUGAL_E_IO, not a hang or crash. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "budget/experts.h"
#include "frugal.h"
#include "model/model.h"
#include "testutil.h"

#define N_CTX 64
#define N_STEPS 24

static const int32_t k_prompt[] = {1, 15043, 29892, 920, 526, 366, 29973};

/* Logits after the prompt and each of N_STEPS greedy steps; *st: the cache's counters
 * over the single-token steps (zeroed without a cache), *step_req their requests. */
static int run(frugal_model *m, int n_slots, uint64_t budget, float *out, frugal_expert_stats *st,
               uint64_t *step_req, frugal_error *err) {
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = 2;
    cp.mem_budget = budget;
    frugal_context *c = NULL;
    int rc = frugal_context_new(m, &cp, &c, err);
    if (rc) return rc;
    if (n_slots > 0 && (rc = fr_experts_new(m, n_slots, m->hp.n_layer, 1, &c->layer_src, err))) {
        frugal_context_free(c);
        return rc;
    }
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    const int n_vocab = info.n_vocab, n_prompt = (int)(sizeof k_prompt / sizeof *k_prompt);
    int32_t toks[sizeof k_prompt / sizeof *k_prompt];
    for (int i = 0; i < n_prompt; i++) toks[i] = k_prompt[i] % n_vocab;
    rc = frugal_eval(c, toks, n_prompt, 0, err);
    frugal_expert_stats s0;
    frugal_context_expert_stats(c, &s0);
    for (int s = 0; !rc && s <= N_STEPS; s++) {
        const float *l = frugal_get_logits(c, -1);
        memcpy(out + (size_t)s * n_vocab, l, sizeof(float) * (size_t)n_vocab);
        if (s == N_STEPS) break;
        int32_t best = 0;
        for (int v = 1; v < n_vocab; v++) if (l[v] > l[best]) best = v;
        rc = frugal_eval(c, &best, 1, 0, err);
    }
    if (budget) { /* every buffer accounted, and all of them within the budget */
        frugal_mem_stats ms;
        frugal_get_mem_stats(&ms);
        CHECKF(ms.current[ms.n - 1] <= budget, "accounted %llu bytes > budget %llu",
               (unsigned long long)ms.current[ms.n - 1], (unsigned long long)budget);
    }
    frugal_context_expert_stats(c, st); /* the steps' counters */
    st->hits -= s0.hits;
    st->misses -= s0.misses;
    st->bytes_read -= s0.bytes_read;
    st->prefetched -= s0.prefetched;
    st->prefetch_used -= s0.prefetch_used;
    *step_req = st->hits + st->misses;
    frugal_context_free(c);
    return rc;
}

static frugal_model *load(const char *path, uint64_t budget) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    mp.no_repack = 1;
    mp.mem_budget = budget;
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    CHECKF(frugal_model_load(path, &mp, &m, &err) == FRUGAL_OK, "%s: %s", path, err.message);
    return m;
}

static int g_read_ahead; /* FRUGAL_EXPERT_PREDICT_MIN=0: every guess trusted (2: waste capped at 10 %) */

/* One model: identical logits and exact accounting at several cache sizes. */
static void check_model(const char *path, int n_layer, int n_expert, int n_used) {
    frugal_model *m = load(path, 0);
    if (!m) return;
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    const int n_vocab = info.n_vocab, n_all = n_layer * n_expert;
    const size_t n_out = (size_t)(N_STEPS + 1) * (size_t)n_vocab;
    float *ref = tu_malloc(n_out * sizeof *ref), *got = tu_malloc(n_out * sizeof *got);
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_expert_stats st;
    uint64_t req = 0;
    CHECKF(run(m, 0, 0, ref, &st, &req, &err) == FRUGAL_OK, "%s", err.message);
    CHECK(st.slots == 0 && st.hits == 0); /* no cache: no counters */
    const int slots[] = {1, n_layer, n_all / 2, n_all};
    for (size_t k = 0; k < sizeof slots / sizeof *slots; k++) {
        memset(got, 0, n_out * sizeof *got);
        int rc = run(m, slots[k], 0, got, &st, &req, &err);
        CHECKF(rc == FRUGAL_OK, "%d slots: %s", slots[k], err.message);
        if (rc) continue;
        CHECKF(memcmp(ref, got, n_out * sizeof *ref) == 0, "%s: logits differ with %d expert slots", path, slots[k]);
        CHECKF(st.slots == slots[k] && st.experts == n_all, "slots %d of %d", st.slots, st.experts);
        CHECKF(req == (uint64_t)N_STEPS * n_layer * n_used, "%llu requests over %d steps, want %d per step",
               (unsigned long long)req, N_STEPS, n_layer * n_used);
        if (slots[k] == 1) CHECKF(st.hits == 0, "one slot: %llu hits", (unsigned long long)st.hits);
        if (slots[k] == n_all) CHECKF(st.misses == 0, "all cached: %llu misses", (unsigned long long)st.misses);
        if (slots[k] < n_all) CHECKF(st.misses > 0, "%d slots: no misses", slots[k]);
        /* experts read: the misses the router waited for, plus reads ahead not picked */
        const uint64_t loads = st.misses + st.prefetched - st.prefetch_used;
        CHECKF(st.prefetch_used <= st.prefetched && st.prefetch_used <= st.misses, "%llu reads ahead, %llu picked",
               (unsigned long long)st.prefetched, (unsigned long long)st.prefetch_used);
        CHECKF(st.bytes_read >= loads * st.expert_bytes && st.bytes_read <= loads * (st.expert_bytes + 6 * 4096),
               "%llu bytes read for %llu loads of %llu bytes", (unsigned long long)st.bytes_read,
               (unsigned long long)loads, (unsigned long long)st.expert_bytes);
        if (g_read_ahead == 1 && slots[k] < n_all)
            CHECKF(st.prefetched > 0, "%d slots, reading ahead on every guess: no read ahead", slots[k]);
        if (g_read_ahead == 2)
            CHECKF((double)(st.prefetched - st.prefetch_used) <= 0.1 * (double)st.misses + 4.0,
                   "%d slots: %llu reads ahead not picked for %llu misses (cap: 10 %% + 4)", slots[k],
                   (unsigned long long)(st.prefetched - st.prefetch_used), (unsigned long long)st.misses);
    }
    /* through the planner: a budget of every dense part + one slot per layer */
    frugal_plan plan;
    CHECK(frugal_plan_memory(m, 1ull << 40, N_CTX, FRUGAL_KV_F16, 2, 0, 0, &plan, &err) == FRUGAL_OK);
    const uint64_t slot = fr_experts_slot_bytes(m);
    const uint64_t dense_min = plan.always_bytes + plan.kv_bytes + plan.scratch_bytes + plan.overhead_bytes +
                               plan.dense_bytes + slot, budget = dense_min + (uint64_t)(n_layer - 1) * slot;
    frugal_model_free(m);
    m = load(path, budget);
    if (m) {
        CHECK(frugal_plan_memory(m, budget, N_CTX, FRUGAL_KV_F16, 2, 0, 0, &plan, &err) == FRUGAL_OK);
        CHECKF(plan.expert_streaming && plan.expert_slots == n_layer, "plan: %d slots, want %d", plan.expert_slots,
               n_layer);
        int rc = run(m, 0, budget, got, &st, &req, &err);
        CHECKF(rc == FRUGAL_OK, "budget %llu: %s", (unsigned long long)budget, err.message);
        CHECKF(!rc && st.slots == n_layer && memcmp(ref, got, n_out * sizeof *ref) == 0,
               "budgeted run: %d slots, logits %s", st.slots,
               memcmp(ref, got, n_out * sizeof *ref) ? "differ" : "equal");
        /* below the minimum: a clear error naming it */
        frugal_context_params cp;
        frugal_context_params_default(&cp);
        cp.n_ctx = N_CTX;
        cp.n_threads = 2;
        cp.mem_budget = plan.min_bytes - 4096;
        frugal_context *c = NULL;
        rc = frugal_context_new(m, &cp, &c, &err);
        CHECKF(rc == FRUGAL_E_NOMEM && strstr(err.message, "minimum working set") &&
                   strstr(err.message, "one expert cache slot"),
               "below the minimum: rc %d: %s", rc, err.message);
        frugal_context_free(c);
        frugal_model_free(m);
    }
    free(ref);
    free(got);
}

static void on_alarm(int sig) {
    (void)sig;
    static const char msg[] = "test_expert_cache: hung on a truncated file\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(1);
}

/* Truncate a copy under a running cache of one slot: the next reads fail cleanly. */
static void check_truncated(const char *src_path) {
    char path[512];
    snprintf(path, sizeof path, "%s/trunc.gguf", tu_tmpdir());
    size_t len = 0;
    char *data = tu_read_file(src_path, &len);
    FILE *f = fopen(path, "wb");
    CHECK(data && f && fwrite(data, 1, len, f) == len);
    if (f) fclose(f);
    free(data);
    frugal_model *m = load(path, 0);
    if (!m) return;
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = 2;
    frugal_context *c = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    CHECK(frugal_context_new(m, &cp, &c, &err) == FRUGAL_OK);
    CHECK(c && fr_experts_new(m, 1, m->hp.n_layer, 1, &c->layer_src, &err) == FRUGAL_OK);
    /* the globals lie at the front, the last layer's experts at the end: cut those */
    CHECK(truncate(path, (off_t)(len - (200u << 10))) == 0);
    signal(SIGALRM, on_alarm);
    alarm(60);
    int32_t tok = 1;
    int rc = FRUGAL_OK;
    for (int i = 0; i < 8 && rc == FRUGAL_OK; i++) rc = frugal_eval(c, &tok, 1, 0, &err); /* until a cut pick */
    CHECKF(rc == FRUGAL_E_IO && strstr(err.message, "truncated"), "rc %d: %s", rc, err.message);
    rc = frugal_eval(c, &tok, 1, 0, &err);
    CHECKF(rc == FRUGAL_E_IO, "second eval: rc %d", rc);
    alarm(0);
    frugal_context_free(c);
    frugal_model_free(m);
    unlink(path);
}

int main(void) {
    const char *vocab = tu_need_shared("models/fortune-3m-f32.gguf");
    setenv("FRUGAL_KERNELS", "scalar", 1); /* every layout sums in the same order */
    static const struct { const char *arch; int n_expert; float skew; } k[] = {
        {"llama", 4, 0.0f},    /* Mixtral's layout */
        {"qwen3moe", 8, 2.0f}, /* skewed routing */
    };
    char path[2][512];
    for (int i = 0; i < 2; i++) {
        frugal_mkmodel_params p;
        frugal_mkmodel_params_default(&p);
        p.arch = k[i].arch;
        p.dim = 128;
        p.n_layers = 3;
        p.n_heads = 2;
        p.n_kv_heads = 1;
        p.ffn = 128;
        p.n_expert = k[i].n_expert;
        p.n_expert_used = 2;
        p.expert_skew = k[i].skew;
        p.vocab_path = vocab;
        p.type = "q8_0";
        p.seed = 11;
        snprintf(path[i], sizeof path[i], "%s/%s.gguf", tu_tmpdir(), k[i].arch);
        frugal_error err = FRUGAL_ERROR_INIT;
        CHECKF(frugal_mkmodel(&p, path[i], &err) == FRUGAL_OK, "%s", err.message);
        check_model(path[i], 3, k[i].n_expert, 2);
        /* again, reading ahead on every guess of the next picks: same logits, exact counts */
        setenv("FRUGAL_EXPERT_PREDICT_MIN", "0", 1);
        setenv("FRUGAL_EXPERT_WASTE", "1000", 1);
        g_read_ahead = 1;
        check_model(path[i], 3, k[i].n_expert, 2);
        /* every guess trusted, the default cap on the bytes of wrong ones */
        unsetenv("FRUGAL_EXPERT_WASTE");
        g_read_ahead = 2;
        check_model(path[i], 3, k[i].n_expert, 2);
        unsetenv("FRUGAL_EXPERT_PREDICT_MIN");
        g_read_ahead = 0;
    }
    check_truncated(path[1]);
    for (int i = 0; i < 2; i++) unlink(path[i]);
    rmdir(tu_tmpdir());
    return tu_finish("test_expert_cache");
}
