/* test_offload.c - layers placed on a backend (model/offload.h) through the public API.
 *
 * 1. The CPU backend (FRUGAL_BACKEND=cpu) behind the offload path: the same logits as
 *    the plain CPU path within 1e-4 (the products go through the same kernels, one
 *    thread; only the split of the work differs) - checks the placement, the
 *    resident-weight lookup and the transfers on any machine, GPU or not.
 *    With --gpu-stream and a budget for one layer plus the two stream buffers, the
 *    three other layers are copied in before use: same tokens, logits within 1e-4,
 *    peak within the budget, every streamed byte counted.
 * 2. On a Vulkan device (skipped without one): a --vram budget that holds only some
 *    layers: the peak device memory stays within it (measured by the accounting) and
 *    the greedy tokens are the CPU's.
 * Skips (77) without ../shared. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "frugal.h"
#include "model/model.h"
#include "model/offload.h"
#include "testutil.h"

enum { N_GEN = 24 };
static int g_stream;          /* --gpu-stream for the next generate() */
static frugal_gpu_info g_info; /* its device figures after the run */
static uint64_t g_prefetched;  /* its layers copied ahead of use (--gpu-stream) */

/* Greedy tokens (and the last logits) of a prompt; 0 ok. */
static int generate(const char *path, int ngl, uint64_t vram, int32_t *out, float *last, int n_vocab_max,
                    uint64_t *peak, int *n_layers_dev, int *failed) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    mp.n_gpu_layers = ngl;
    mp.vram_budget = vram;
    mp.gpu_stream = g_stream;
    mp.no_repack = 1; /* row-major kernels on both paths: the same sums in the same order */
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(path, &mp, &m, &err) != FRUGAL_OK) {
        fprintf(stderr, "load: %s\n", err.message);
        return -1;
    }
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 128;
    frugal_context *ctx = NULL;
    int rc = frugal_context_new(m, &cp, &ctx, &err);
    int32_t ids[64];
    const char *p = "Once upon a time";
    int n = rc ? 0 : frugal_tokenize(m, p, strlen(p), 1, 1, ids, 64);
    if (!rc) rc = frugal_eval(ctx, ids, n, 0, &err);
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    for (int i = 0; !rc && i < N_GEN; i++) {
        const float *l = frugal_get_logits(ctx, -1);
        int best = 0;
        for (int v = 1; v < info.n_vocab; v++)
            if (l[v] > l[best]) best = v;
        out[i] = best;
        if (i == N_GEN - 1) memcpy(last, l, sizeof(float) * (size_t)(info.n_vocab < n_vocab_max ? info.n_vocab : n_vocab_max));
        rc = frugal_eval(ctx, &out[i], 1, 0, &err);
    }
    if (rc) fprintf(stderr, "eval: %s\n", err.message);
    frugal_model_gpu_info(m, &g_info);
    g_prefetched = fr_offload_stream_prefetched(m->offload);
    if (peak) *peak = fr_offload_mem_peak(m->offload);
    if (n_layers_dev) *n_layers_dev = fr_offload_n_layers(m->offload);
    if (failed) *failed = fr_offload_failed(m->offload);
    frugal_context_free(ctx);
    frugal_model_free(m);
    return rc;
}

int main(void) {
    const char *path = tu_need_shared("models/fortune-3m-q4_k_m.gguf");
    enum { NV = 1 << 16 };
    static float l_cpu[NV], l_dev[NV];
    int32_t t_cpu[N_GEN], t_dev[N_GEN];
    CHECK(generate(path, 0, 0, t_cpu, l_cpu, NV, NULL, NULL, NULL) == 0);

    /* 1: the CPU backend behind the offload path, every layer and the output */
    setenv("FRUGAL_BACKEND", "cpu", 1);
    int n_dev = 0, failed = 1;
    CHECK(generate(path, 99, 0, t_dev, l_dev, NV, NULL, &n_dev, &failed) == 0);
    CHECK(n_dev == 4 && !failed);
    CHECK(memcmp(t_cpu, t_dev, sizeof t_cpu) == 0);
    float worst = 0;
    for (int v = 0; v < 2048; v++) worst = fmaxf(worst, fabsf(l_cpu[v] - l_dev[v]));
    CHECKF(worst <= 1e-4f, "cpu backend: logits differ by %g", worst);

    /* --gpu-stream on the CPU backend: one resident layer, three streamed; first with
     * synchronous copies (exact byte counts), then copied one layer ahead */
    const uint64_t sbudget = 2350u << 10; /* + whole-layer activations and one KV cache */
    uint64_t speak = 0;
    g_stream = 1, failed = 1;
    setenv("FRUGAL_GPU_PREFETCH", "0", 1);
    CHECK(generate(path, -1, sbudget, t_dev, l_dev, NV, &speak, &n_dev, &failed) == 0);
    g_stream = 0;
    CHECKF(n_dev == 1 && g_info.n_stream_layers == 3, "stream: %d resident, %d streamed", n_dev,
           g_info.n_stream_layers);
    CHECK(!failed);
    printf("--gpu-stream: %llu bytes copied in %d steps, resident layer %llu bytes\n",
           (unsigned long long)g_info.h2d_bytes, N_GEN + 1, (unsigned long long)g_info.device_weight_bytes);
    CHECKF(speak <= sbudget, "stream: peak %llu over %llu", (unsigned long long)speak, (unsigned long long)sbudget);
    /* the prompt step and N_GEN steps each copy all three layers (two slots rotate) */
    CHECKF(g_info.h2d_bytes % (N_GEN + 1) == 0 && g_info.h2d_bytes > 2 * g_info.device_weight_bytes * (N_GEN + 1),
           "stream: %llu bytes copied", (unsigned long long)g_info.h2d_bytes);
    CHECK(memcmp(t_cpu, t_dev, sizeof t_cpu) == 0);
    worst = 0;
    for (int v = 0; v < 2048; v++) worst = fmaxf(worst, fabsf(l_cpu[v] - l_dev[v]));
    CHECKF(worst <= 1e-4f, "stream: logits differ by %g", worst);
    CHECK(g_prefetched == 0);
    unsetenv("FRUGAL_GPU_PREFETCH");
    g_stream = 1, failed = 1, speak = 0;
    CHECK(generate(path, -1, sbudget, t_dev, l_dev, NV, &speak, &n_dev, &failed) == 0);
    g_stream = 0;
    CHECKF(n_dev == 1 && g_info.n_stream_layers == 3 && !failed, "stream ahead: %d resident, %d streamed", n_dev,
           g_info.n_stream_layers);
    /* every step after the first finds its layers copied ahead (3 per step) */
    CHECKF(g_prefetched >= 3 * N_GEN, "stream ahead: %llu layers copied ahead", (unsigned long long)g_prefetched);
    CHECKF(speak <= sbudget, "stream ahead: peak %llu over %llu", (unsigned long long)speak,
           (unsigned long long)sbudget);
    CHECK(memcmp(t_cpu, t_dev, sizeof t_cpu) == 0);
    worst = 0;
    for (int v = 0; v < 2048; v++) worst = fmaxf(worst, fabsf(l_cpu[v] - l_dev[v]));
    CHECKF(worst <= 1e-4f, "stream ahead: logits differ by %g", worst);
    printf("--gpu-stream ahead: %llu of %d layer copies made ahead of use\n", (unsigned long long)g_prefetched,
           3 * (N_GEN + 1));
    unsetenv("FRUGAL_BACKEND");

    /* 2: Vulkan with a budget for about half the layers (matrices, KV caches, activations) */
    fr_backend *be = NULL;
    if (fr_backend_open("vulkan", -1, &be, NULL) != FRUGAL_OK) {
        printf("no Vulkan device: the --vram part is skipped\n");
        return tu_finish("test_offload");
    }
    fr_backend_close(be);
    const uint64_t budget = 2000u << 10;
    uint64_t peak = 0;
    failed = 1;
    CHECK(generate(path, -1, budget, t_dev, l_dev, NV, &peak, &n_dev, &failed) == 0);
    CHECK(!failed); /* the device ran its layers to the end */
    printf("--vram 2000K: %d of 4 layers on the device, peak device memory %.2f MiB\n", n_dev, peak / 1048576.0);
    CHECK(n_dev > 0 && n_dev < 4);
    CHECKF(peak <= budget, "peak device memory %llu over the budget %llu", (unsigned long long)peak,
           (unsigned long long)budget);
    CHECK(memcmp(t_cpu, t_dev, sizeof t_cpu) == 0);

    /* `frugal plan --vram` forecasts exactly this split and these bytes */
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.no_repack = 1;
    frugal_model *m = NULL;
    CHECK(frugal_model_load(path, &mp, &m, NULL) == FRUGAL_OK);
    frugal_gpu_plan g, g0;
    frugal_plan_gpu(m, -1, budget, &g);
    CHECKF(g.n_gpu_layers == n_dev, "plan: %d layers, placed %d", g.n_gpu_layers, n_dev);
    frugal_plan_gpu(m, 0, 0, &g0);
    CHECK(g0.n_gpu_layers == 0 && g0.weight_bytes == 0 && g0.cpu_weight_bytes > 0);
    frugal_model_free(m);
    /* what stays on the device after the load (the peak also saw the layer that did
     * not fit, uploaded in part and given back) */
    mp.n_gpu_layers = -1, mp.vram_budget = budget, m = NULL;
    CHECK(frugal_model_load(path, &mp, &m, NULL) == FRUGAL_OK);
    if (m) {
        const uint64_t held = fr_offload_mem_current(m->offload);
        CHECKF(g.weight_bytes + g.act_bytes + g.kv_bytes == held, "plan: %llu bytes, held %llu",
               (unsigned long long)(g.weight_bytes + g.act_bytes + g.kv_bytes), (unsigned long long)held);
        CHECKF(g.whole && g.kv_bytes > 0 && fr_offload_whole_layers(m->offload) == n_dev,
               "plan: whole %d, KV %llu bytes; %d whole layers placed", g.whole, (unsigned long long)g.kv_bytes,
               fr_offload_whole_layers(m->offload));
    }
    frugal_model_free(m);
    return tu_finish("test_offload");
}
