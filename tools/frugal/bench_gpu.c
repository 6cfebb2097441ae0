/* bench_gpu.c - see bench_gpu.h. */
#include <string.h>

#include "bench_gpu.h"

void bench_gpu_stream_start(const frugal_model *model, bench_gpu *g) {
    frugal_gpu_info i;
    if (frugal_model_gpu_info(model, &i)) g->h2d0 = i.h2d_bytes, g->h2d0_s = i.h2d_seconds;
}

void bench_gpu_stream_end(const frugal_model *model, bench_gpu *g, double tokens) {
    frugal_gpu_info i;
    if (!frugal_model_gpu_info(model, &i) || tokens <= 0) return;
    const double bytes = (double)(i.h2d_bytes - g->h2d0), sec = i.h2d_seconds - g->h2d0_s;
    g->h2d_per_token = bytes / tokens;
    g->h2d_gbs = sec > 0 ? bytes / sec / 1e9 : 0;
}

void bench_gpu_probe(frugal_model *model, int mib, bench_gpu *g) {
    const double per_token = g->h2d_per_token, gbs = g->h2d_gbs;
    memset(g, 0, sizeof *g);
    g->h2d_per_token = per_token, g->h2d_gbs = gbs;
    /* the memory figures before the probe: the model's, without the probe's buffer */
    if (!frugal_model_gpu_info(model, &g->gi)) return;
    g->on = 1;
    /* lavapipe sums on the CPU's cores: a smaller buffer keeps the test suite quick */
    const size_t bytes = (size_t)(mib > 0 ? mib : g->gi.software ? 32 : 256) << 20;
    frugal_error err = FRUGAL_ERROR_INIT;
    g->bw_gbs = frugal_model_gpu_read_bandwidth(model, bytes, &g->probed, &err);
    if (g->bw_gbs <= 0) fprintf(stderr, "frugal: warning: device bandwidth probe failed: %s\n", err.message);
}

/* The CPU's share of a token's bytes: the weights neither resident nor streamed, and the K/V. */
static double cpu_bytes(const bench_gpu *g, double bytes_per_token, double kv_read) {
    const double w = bytes_per_token - (double)g->gi.host_weight_bytes - g->h2d_per_token;
    return (w > 0 ? w : 0) + kv_read;
}

double bench_gpu_roofline(const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs) {
    if (!g->on || g->bw_gbs <= 0) return 0;
    const double cb = cpu_bytes(g, bytes_per_token, kv_read);
    if (cb > 0 && cpu_gbs <= 0) return 0;
    double t = (double)g->gi.device_weight_bytes / (g->bw_gbs * 1e9) + (cb > 0 ? cb / (cpu_gbs * 1e9) : 0);
    if (g->h2d_per_token > 0) { /* streamed: copied at the copy bandwidth, then read on the device */
        if (g->h2d_gbs <= 0) return 0;
        t += g->h2d_per_token / (g->h2d_gbs * 1e9) + g->h2d_per_token / (g->bw_gbs * 1e9);
    }
    return t > 0 ? 1.0 / t : 0;
}

void bench_gpu_print_text(FILE *out, const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs,
                          const char *test, double tps) {
    if (!g->on) return;
    const frugal_gpu_info *i = &g->gi;
    fprintf(out, "device: %s%s; %d layers", i->device, i->software ? " (software)" : "", i->n_gpu_layers);
    if (i->n_gpu_layers) fprintf(out, " (%d-%d)", i->first_layer, i->first_layer + i->n_gpu_layers - 1);
    fprintf(out, "; device memory %.2f MiB, peak %.2f MiB, budget %.2f MiB\n", i->mem_used / 1048576.0,
            i->mem_peak / 1048576.0, i->mem_budget / 1048576.0);
    fprintf(out, "device bytes per generated token: %.2f MiB; CPU bytes: %.2f MiB (weights on the CPU + K/V)\n",
            i->device_weight_bytes / 1048576.0, cpu_bytes(g, bytes_per_token, kv_read) / 1048576.0);
    if (i->n_stream_layers)
        fprintf(out, "streamed to the device: %d layers, %.2f MiB per generated token at %.2f GB/s (host to device)\n",
                i->n_stream_layers, g->h2d_per_token / 1048576.0, g->h2d_gbs);
    if (g->bw_gbs <= 0) {
        fprintf(out, "device read bandwidth: probe failed\n");
        return;
    }
    const double roof = bench_gpu_roofline(g, bytes_per_token, kv_read, cpu_gbs);
    fprintf(out, "device read bandwidth: %.2f GB/s (sum over a %.2f MiB device buffer, best of 4 passes)\n", g->bw_gbs,
            (double)g->probed / (1 << 20));
    fprintf(out, "device roofline: %.2f tok/s (device bytes / device bandwidth + CPU bytes / CPU bandwidth%s)", roof,
            i->n_stream_layers ? " + streamed bytes / copy bandwidth" : "");
    if (test && tps > 0 && roof > 0) fprintf(out, "; %s: %.2f tok/s = %.1f %%", test, tps, 100.0 * tps / roof);
    fprintf(out, "\n");
}

static void json_str(FILE *out, const char *s) {
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(out, "\\%c", *s);
        else if ((unsigned char)*s < 0x20) fprintf(out, "\\u%04x", (unsigned char)*s);
        else fputc(*s, out);
    }
    fputc('"', out);
}

void bench_gpu_print_json(FILE *out, const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs,
                          double tps) {
    if (!g->on) return;
    const frugal_gpu_info *i = &g->gi;
    fprintf(out, "\"device\": ");
    json_str(out, i->device);
    fprintf(out, ", \"device_layers\": %d, \"device_mem_bytes\": %llu, \"device_mem_peak_bytes\": %llu, "
                 "\"device_mem_budget_bytes\": %llu, ",
            i->n_gpu_layers, (unsigned long long)i->mem_used, (unsigned long long)i->mem_peak,
            (unsigned long long)i->mem_budget);
    fprintf(out, "\"device_bytes_per_token\": %llu, \"cpu_bytes_per_token\": %.9g, \"cpu_bw_gbs\": %.9g, ",
            (unsigned long long)i->device_weight_bytes, cpu_bytes(g, bytes_per_token, kv_read), cpu_gbs);
    if (i->n_stream_layers)
        fprintf(out, "\"stream_layers\": %d, \"h2d_bytes_per_token\": %.9g, \"h2d_gbs\": %.9g, ", i->n_stream_layers,
                g->h2d_per_token, g->h2d_gbs);
    const double roof = bench_gpu_roofline(g, bytes_per_token, kv_read, cpu_gbs);
    if (g->bw_gbs > 0 && roof > 0)
        fprintf(out, "\"device_bw_gbs\": %.9g, \"device_roofline_tokens_per_s\": %.9g, \"device_roofline_pct\": %.6g, ",
                g->bw_gbs, roof, 100.0 * tps / roof);
    else
        fprintf(out, "\"device_bw_gbs\": null, \"device_roofline_tokens_per_s\": null, \"device_roofline_pct\": null, ");
}
