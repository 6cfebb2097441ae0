/* test_golden_vulkan.c - the golden-logit tests of test_golden.c (same files, same
 * tolerances) with the layers on the Vulkan device: all of them and the output matrix,
 * then the last half. Skips (77) without a Vulkan device or without ../shared.
 * lavapipe runs shaders on the CPU, slowly: by default one prompt of one model per
 * weight type and per normalisation/FFN kind (the list below; four of them with half
 * the layers on the device, the split's hand-over at the middle); FRUGAL_GOLDEN_ALL=1
 * (or a name filter as argument) runs every golden file.
 *
 * The placed layers run whole on the device (checked after each file): norms, RoPE,
 * the F16 KV cache in device memory and attention over it, FFN, residual adds. Each
 * product's input is rounded on the device as the CPU rounds it (8-bit blocks, F16),
 * so device and CPU differ only in summation order. FRUGAL_GPU_WHOLE=0 runs the older
 * path (only the matrix products on the device). */
#define GOLDEN_MAIN_ELSEWHERE 1
#include "test_golden.c"

#ifdef FRUGAL_HAVE_CJSON
#include "backend/backend.h"
#include "model/model.h"
#include "model/offload.h"

/* Every placed layer ran whole on the device (its norms, attention over the device KV
 * cache, FFN), not only its matrix products; FRUGAL_GPU_WHOLE=0 tests the latter. */
static void check_whole(frugal_model *m, frugal_context *ctx, const char *json_path) {
    (void)ctx;
    const char *env = getenv("FRUGAL_GPU_WHOLE");
    const int want = env && strcmp(env, "0") == 0 ? 0 : fr_offload_n_layers(m->offload);
    CHECKF(fr_offload_n_layers(m->offload) > 0 && fr_offload_whole_layers(m->offload) == want,
           "%s: %d of %d device layers ran whole", json_path, fr_offload_whole_layers(m->offload),
           fr_offload_n_layers(m->offload));
}

int main(int argc, char **argv) {
    if (!tu_shared("golden") && !tu_shared("arch/golden")) tu_skip("../shared/golden and ../shared/arch not found");
    fr_backend *be = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (fr_backend_open("vulkan", -1, &be, &err) != FRUGAL_OK) {
        char why[600];
        snprintf(why, sizeof why, "no Vulkan device (%s)", err.message);
        tu_skip(why);
    }
    printf("device: %s\n", be->name);
    fr_backend_close(be);
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *all = getenv("FRUGAL_GOLDEN_ALL");
    /* F32, F16, Q8_0, Q4_0, Q4_K+Q6_K; LayerNorm+GELU (GPT-2), GeGLU+soft-caps (Gemma 2),
     * fused QKV/gate-up (Phi-3), Q/K norms (Qwen3), GQA + rope_freqs (Llama 3) */
    static const char *const subset[][2] = {
        {"golden", "fortune-3m-f32.p1."},        {"golden", "synth-spm-f16.p1."},
        {"golden", "fortune-3m-q8_0.p1."},       {"golden", "fortune-3m-q4_0.p1."},
        {"golden", "fortune-3m-q4_k_m.p1."},     {"arch/golden", "synth-gpt2-q8_0.p1."},
        {"arch/golden", "synth-gemma2-q8_0.p1."}, {"arch/golden", "synth-phi3-q8_0.p1."},
        {"arch/golden", "synth-qwen3-q8_0.p1."},  {"arch/golden", "synth-llama3-q8_0.p1."},
    };
    g_after_run = check_whole;
    const int modes[2] = {-1, GOLDEN_NGL_HALF};
    int n = 0;
    for (int i = 0; i < 2; i++) {
        g_ngl = modes[i];
        printf("-- %s\n", i == 0 ? "all layers and the output on the device" : "the last half of the layers on the device");
        if (filter || (all && strcmp(all, "1") == 0)) {
            n += run_dir("golden", "models", 0, filter);
            n += run_dir("arch/golden", "arch/models", 512, filter);
            continue;
        }
        for (size_t k = 0; k < sizeof subset / sizeof subset[0]; k++)
            /* half (and every mode of a sanitizer build, where lavapipe costs the same and the
             * host code is what is checked): Q8_0, K-quants, Gemma 2, Llama 3 */
            if ((i == 0 && !TU_SANITIZED) || k == 2 || k == 4 || k == 6 || k == 9)
                n += run_dir(subset[k][0], subset[k][0][0] == 'a' ? "arch/models" : "models",
                         subset[k][0][0] == 'a' ? 512 : 0, subset[k][1]);
    }
    CHECKF(n > 0 || filter, "no golden files");
    return tu_finish("test_golden_vulkan");
}
#endif
