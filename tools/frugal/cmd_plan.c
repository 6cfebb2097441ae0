/* cmd_plan.c - `frugal plan`: how a model would run inside a memory budget (which
 * layers stay resident, which are streamed, forecast peak RSS, speed bound). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal plan -m MODEL [--mem SIZE] [flags]\n\n"
            "Print the memory plan for running MODEL inside SIZE bytes (K/M/G suffixes):\n"
            "layers read into RAM, layers streamed from disk per token, KV cache, scratch,\n"
            "I/O buffers, forecast peak RSS, and the tokens/s bound from the measured memory\n"
            "and disk read bandwidths. Fails (exit 1) when even streaming every layer does not\n"
            "fit, naming the minimum and what would fit.\n\n"
            "  -m, --model M      GGUF model\n"
            "  --mem SIZE         memory budget (default: none)\n"
            "  -c, --ctx-size N   context size (default 0: the model's, at most 4096)\n"
            "  --kv-type T        KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  -t, --threads N    threads (default 0: all cores)\n"
            "  --no-measure       skip the bandwidth measurements (no speed forecast)\n"
            "  -ngl N, --vram S   also the GPU split those flags give at load (layers and\n"
            "                     device memory; JSON: the gpu_* keys)\n"
            "  --json             one JSON object: budget_bytes, forecast_peak_bytes, min_bytes,\n"
            "                     resident_layers, streamed_layers, io_buffers, kv_bytes,\n"
            "                     scratch_bytes, io_bytes, always_bytes, overhead_bytes,\n"
            "                     resident_bytes, streamed_bytes, mem_bw_gbs, disk_bw_gbs,\n"
            "                     tok_s_bound, tok_s_overlap; mixtures of experts also\n"
            "                     expert_streaming, experts, expert_slots, dense_bytes,\n"
            "                     expert_cache_bytes, expert_slot_bytes, expert_hit_uniform,\n"
            "                     expert_read_per_token\n\n"
            "Mixtures of experts: the layers' dense parts (attention, router, norms) stay\n"
            "resident (those that do not fit beside one expert slot are streamed from the file\n"
            "every token, like whole layers) and the rest of the budget becomes an expert cache;\n"
            "experts not cached are read from the file when the router picks them. The forecast\n"
            "assumes uniform routing (the worst case for the cache).\n");
}

static double mib(uint64_t b) { return (double)b / 1048576.0; }

static void print_json(const frugal_plan *p) { /* without the closing brace: the GPU keys may follow */
    printf("{\"budget_bytes\": %llu, \"n_layer\": %d, \"n_ctx\": %d, \"streaming\": %s, "
           "\"resident_layers\": %d, \"streamed_layers\": %d, \"io_buffers\": %d, "
           "\"forecast_peak_bytes\": %llu, \"min_bytes\": %llu, \"kv_bytes\": %llu, "
           "\"scratch_bytes\": %llu, \"io_bytes\": %llu, \"always_bytes\": %llu, "
           "\"overhead_bytes\": %llu, \"resident_bytes\": %llu, \"streamed_bytes\": %llu, "
           "\"mem_bw_gbs\": %.3f, \"disk_bw_gbs\": %.3f, \"tok_s_bound\": %.4f, \"tok_s_overlap\": %.4f",
           (unsigned long long)p->budget_bytes, p->n_layer, p->n_ctx, p->streaming ? "true" : "false",
           p->resident_layers, p->streamed_layers, p->io_buffers,
           (unsigned long long)p->forecast_peak_bytes, (unsigned long long)p->min_bytes,
           (unsigned long long)p->kv_bytes, (unsigned long long)p->scratch_bytes,
           (unsigned long long)p->io_bytes, (unsigned long long)p->always_bytes,
           (unsigned long long)p->overhead_bytes, (unsigned long long)p->resident_bytes,
           (unsigned long long)p->streamed_bytes, p->mem_bw_gbs, p->disk_bw_gbs, p->tok_s_bound,
           p->tok_s_overlap);
    if (p->experts)
        printf(", \"expert_streaming\": %s, \"experts\": %d, \"expert_slots\": %d, \"dense_bytes\": %llu, "
               "\"expert_cache_bytes\": %llu, \"expert_slot_bytes\": %llu, \"expert_hit_uniform\": %.4f, \"expert_read_per_token\": %.0f",
               p->expert_streaming ? "true" : "false", p->experts, p->expert_slots,
               (unsigned long long)p->dense_bytes, (unsigned long long)p->expert_cache_bytes, (unsigned long long)p->expert_slot_bytes, p->expert_hit_uniform,
               p->expert_read_per_token); /* the caller closes the object, after the GPU keys */
}

/* The -ngl / --vram split (model/offload.h's rule), after the memory plan. */
static void print_gpu(const frugal_gpu_plan *g, int json) {
    if (json) {
        printf(", \"gpu_layers\": %d, \"gpu_first_layer\": %d, \"gpu_output\": %s, \"gpu_weight_bytes\": %llu, "
               "\"gpu_act_bytes\": %llu, \"gpu_kv_bytes\": %llu, \"gpu_whole_layers\": %s, \"cpu_weight_bytes\": %llu",
               g->n_gpu_layers, g->first_layer, g->output_on_gpu ? "true" : "false",
               (unsigned long long)g->weight_bytes, (unsigned long long)g->act_bytes,
               (unsigned long long)g->kv_bytes, g->whole ? "true" : "false", (unsigned long long)g->cpu_weight_bytes);
        return;
    }
    if (g->n_gpu_layers) printf("GPU layers        %d of %d (%d-%d)%s\n", g->n_gpu_layers, g->n_layer, g->first_layer,
                                g->first_layer + g->n_gpu_layers - 1, g->output_on_gpu ? " + output matrix" : "");
    else printf("GPU layers        0 of %d%s\n", g->n_layer, g->output_on_gpu ? " + output matrix" : "");
    printf("  device memory   %10.1f MiB (matrices %.1f, activations %.1f, KV cache and vectors %.1f)%s\n",
           mib(g->weight_bytes + g->act_bytes + g->kv_bytes), mib(g->weight_bytes), mib(g->act_bytes),
           mib(g->kv_bytes), g->whole ? ", whole layers" : "");
    printf("  CPU matrices    %10.1f MiB\n", mib(g->cpu_weight_bytes));
}

static void print_text(const frugal_plan *p) {
    if (p->budget_bytes) printf("budget            %10.1f MiB\n", mib(p->budget_bytes));
    else printf("budget                  none\n");
    printf("context           %10d tokens\n", p->n_ctx);
    printf("layers            %d resident, %d streamed (of %d)%s\n", p->resident_layers,
           p->streamed_layers, p->n_layer, p->streaming ? "" : ": runs from the mapping, no streaming");
    printf("  resident        %10.1f MiB\n", mib(p->resident_bytes));
    printf("  streamed        %10.1f MiB read from disk per token\n", mib(p->streamed_bytes));
    if (p->expert_streaming) {
        printf("experts           %d resident in a cache of %d slots, %d streamed (of %d)\n", p->expert_slots,
               p->expert_slots, p->experts - p->expert_slots, p->experts);
        if (p->streamed_layers)
            printf("  dense weights   %10.1f MiB (attention, router, norms): %d layers' resident, %d streamed "
                   "through %d buffers of %.1f MiB in all\n", mib(p->dense_bytes), p->resident_layers,
                   p->streamed_layers, p->io_buffers, mib(p->io_bytes - p->expert_cache_bytes));
        else
            printf("  dense weights   %10.1f MiB (every layer's attention, router, norms)\n", mib(p->dense_bytes));
        printf("  expert cache    %10.1f MiB (frequency-aware LRU)\n", mib(p->expert_cache_bytes));
        printf("  forecast reads  %10.2f MiB per token (uniform routing: hit rate %.1f %%)\n",
               p->expert_read_per_token / 1048576.0, 100.0 * p->expert_hit_uniform);
    } else {
        printf("I/O buffers       %10.1f MiB (%d)\n", mib(p->io_bytes), p->io_buffers);
    }
    printf("KV cache          %10.1f MiB\n", mib(p->kv_bytes));
    printf("scratch           %10.1f MiB\n", mib(p->scratch_bytes));
    printf("output head/norms %10.1f MiB\n", mib(p->always_bytes));
    printf("overhead          %10.1f MiB\n", mib(p->overhead_bytes));
    printf("forecast peak RSS %10.1f MiB (minimum working set %.1f MiB)\n", mib(p->forecast_peak_bytes),
           mib(p->min_bytes));
    if (p->mem_bw_gbs > 0)
        printf("bandwidth         memory %.2f GB/s, disk %.2f GB/s\n", p->mem_bw_gbs, p->disk_bw_gbs);
    if (p->tok_s_bound > 0)
        printf("speed bound       %.2f tok/s (reads not overlapped), %.2f tok/s (fully overlapped)\n",
               p->tok_s_bound, p->tok_s_overlap);
}

int cmd_plan(int argc, char **argv) {
    const char *model_path = NULL, *mem_str = NULL, *kv_str = "f16";
    int n_ctx = 0, n_threads = 0, json = 0, no_measure = 0;
    int ngl = 0; /* GPU flags (args.h) */
    const char *vram_str = NULL;
    const opt opts[] = {
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {NULL, "--mem", OPT_STR, &mem_str, 0, 0},
        {"-c", "--ctx-size", OPT_INT, &n_ctx, 0, 1 << 24},
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {NULL, "--no-measure", OPT_FLAG, &no_measure, 0, 0},
        {NULL, "--json", OPT_FLAG, &json, 0, 0},
        CLI_GPU_OPTS(ngl, vram_str),
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (!model_path) { cli_error("plan: -m MODEL is required"); return EXIT_USAGE; }
    frugal_model_params gpu; /* planned only: nothing is uploaded */
    if (cli_gpu_options(ngl, vram_str, &gpu) != 0) return EXIT_USAGE;
    uint64_t budget = 0;
    if (mem_str && frugal_parse_size(mem_str, &budget) != 0) {
        cli_error("--mem: '%s' is not a size such as 512M or 2G", mem_str);
        return EXIT_USAGE;
    }
    int kv_type = frugal_kv_type_parse(kv_str);
    if (kv_type < 0) {
        cli_error("--kv-type: '%s' is not one of f16, f32, q8_0, q4_0, k8v4", kv_str);
        return EXIT_USAGE;
    }
    frugal_model *model = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.no_repack = 1; /* planning reads shapes and sizes: no need to copy weights */
    mp.n_threads = n_threads;
    if (frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        return 1;
    }
    double mem_bw = 0, disk_bw = 0;
    if (!no_measure) {
        /* modest probes: enough to leave the caches, quick enough for a CLI */
        mem_bw = frugal_measure_read_bandwidth(n_threads, 256u << 20);
        disk_bw = frugal_measure_disk_bandwidth(model_path, 512ull << 20);
        if (mem_bw < 0) mem_bw = 0;
        if (disk_bw < 0) disk_bw = 0;
    }
    frugal_plan plan;
    int rc = frugal_plan_memory(model, budget, n_ctx, kv_type, n_threads, mem_bw, disk_bw, &plan, &err);
    frugal_gpu_plan gplan;
    frugal_plan_gpu(model, gpu.n_gpu_layers, gpu.vram_budget, &gplan);
    frugal_model_free(model);
    if (rc != FRUGAL_OK) {
        cli_error("%s: %s", model_path, err.message);
        return 1;
    }
    if (json) print_json(&plan);
    else print_text(&plan);
    if (gpu.n_gpu_layers) print_gpu(&gplan, json);
    if (json) printf("}\n");
    return fflush(stdout) == 0 ? 0 : 1;
}
