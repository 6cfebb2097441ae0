/* cmd_bench.c - `frugal bench`: prompt-processing and generation speed in the manner
 * of llama.cpp's llama-bench, next to the memory roofline of generation.
 *
 * ppN: N prompt tokens in one frugal_eval on an emptied context.
 * tgN: N single-token evals one after another on an emptied context (no prompt, as
 *      llama-bench does), each computing the logits of its token.
 * -d D (llama-bench's --n-depth): before every run the emptied context is first
 *      filled with D tokens, untimed, so the test measures attention over a long
 *      cache ("pp128 @ d2048"); generation's roofline then counts the K/V bytes each
 *      step reads besides the weights.
 * Each test runs once untimed (warm-up: pages the weights in, wakes the threads),
 * then -r timed repetitions; we report mean and sample standard deviation of the
 * per-repetition tokens/s, as llama-bench does. Token ids are random valid ids from
 * fixed seeds, one per repetition (BOS first when the model adds one), so runs are
 * repeatable.
 *
 * The roofline: decoding one token reads every weight once, so generation cannot
 * beat bandwidth / bytes_per_token. Bandwidth comes from a STREAM-like read probe
 * run in this invocation with the same thread count (frugal_measure_read_bandwidth):
 * once before the tests, and again just before every timed generation repetition,
 * whose tok/s is compared with that probe (the roofline % is the median of these
 * paired ratios: bandwidth on shared machines drifts by tens of % within minutes).
 *
 * A mixture of experts whose experts are streamed (--mem below its size) is bound by
 * the disk instead: the timed generation runs also count the expert cache's reads,
 * reported as bytes read per generated token and hit rate, against the disk roofline
 * (disk bandwidth, measured on the model file, / bytes read per token). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "args.h"
#include "bench_gpu.h"
#include "safety_cli.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal bench -m MODEL [flags]\n\n"
            "Measure prompt processing (ppN) and generation (tgN) speed, like llama-bench,\n"
            "and compare generation with the memory roofline: read bandwidth (measured here,\n"
            "same threads) / bytes of weights read per generated token.\n\n"
            "  -m, --model M        GGUF model\n"
            "  -p, --n-prompt N     prompt tokens of the pp test (default 128; 0: skip it)\n"
            "  -n, --n-gen N        generated tokens of the tg test (default 64; 0: skip it)\n"
            "  -d, --n-depth N      tokens already in the KV cache when each test starts\n"
            "                       (filled untimed; default 0)\n"
            "  -t, --threads N      threads (default 0: all cores)\n"
            "  -r, --repetitions N  timed repetitions per test, after one warm-up (default 5)\n"
            "  --bw-mib N           bandwidth probe buffer in MiB (default 0: min(1 GiB, RAM/4);\n"
            "                       64 with --mem, so the probe stays inside the budget)\n"
            "  --kv-type T          KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  --kv-policy P        window:W[,sinks:S] or summary:CHUNK[,keep:N][,slots:S]\n"
            "  --mem SIZE           memory budget (K/M/G): layers that do not fit are streamed\n"
            "                       from disk per token (see 'frugal plan')\n"
            "  -ngl, --gpu-layers N   the last N layers' matrices on the GPU (Vulkan; -1: all);\n"
            "                         N > layers also the output matrix; no device: an error\n"
            "  --vram SIZE            device memory the layers may use (K/M/G); alone: -ngl -1\n"
            "  --gpu-stream           layers past --vram are copied to the device before use,\n"
            "                         into two rotating buffers within the budget (JSON:\n"
            "                         stream_layers, h2d_bytes_per_token, h2d_gbs)\n"
            "  --device-bw-mib N      device bandwidth probe buffer in MiB (default 256; 32 on a\n"
            "                         software device); with -ngl bench prints the device, its\n"
            "                         bandwidth and the split roofline (JSON: device, device_bw_gbs,\n"
            "                         device_bytes_per_token, cpu_bytes_per_token,\n"
            "                         device_roofline_tokens_per_s, device_roofline_pct, device_mem_*)\n"
            "  --no-repack          keep the weights in the file mapping (zero-copy) instead of\n"
            "                       repacking them for the faster prefill kernels\n"
            "  --json               print a JSON array, one object per test: test, n_prompt,\n"
            "                       n_gen, n_depth, tokens_per_s, stddev, samples_ts, bytes_per_token,\n"
            "                       bandwidth_gbs, roofline_tokens_per_s, roofline_pct, model,\n"
            "                       model_desc, type, size_bytes, n_params, threads, repetitions\n"
            "                       (see bench/README.md); with streamed experts the generation\n"
            "                       test adds expert_bytes_read_per_token, expert_hit_rate,\n"
            "                       disk_bw_gbs, disk_roofline_tokens_per_s, disk_roofline_pct;\n"
            "                       with a policy, safety {...} readings\n"
            "  --monitor-ab         also time tg with the safety monitors off and on, in pairs\n"
            "                       (the policy's limits, else none: read-only monitors, polled at\n"
            "                       --monitor-interval, default 1 s), and print the overhead\n"
            SAFETY_HELP);
}

/* ------------------------------------------------------------------ helpers */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64: a small, fixed-seed generator so every run evaluates the same ids */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int32_t rand_token(uint64_t *s, int n_vocab) {
    return (int32_t)(next_rand(s) % (uint64_t)n_vocab);
}

/* "1.10 B" / "260.1 K" parameters, as llama-bench prints them */
static void fmt_params(char *buf, size_t n, uint64_t p) {
    if (p >= 1000000000ull) snprintf(buf, n, "%.2f B", (double)p / 1e9);
    else if (p >= 1000000ull) snprintf(buf, n, "%.2f M", (double)p / 1e6);
    else snprintf(buf, n, "%.2f K", (double)p / 1e3);
}

static void fmt_size(char *buf, size_t n, uint64_t b) {
    if (b >= (1ull << 30)) snprintf(buf, n, "%.2f GiB", (double)b / (1 << 30));
    else if (b >= (1ull << 20)) snprintf(buf, n, "%.2f MiB", (double)b / (1 << 20));
    else snprintf(buf, n, "%.2f KiB", (double)b / (1 << 10));
}

/* "llama 1.1B": the architecture and a rounded parameter count, as in llama-bench's
 * model column */
static void fmt_desc(char *buf, size_t n, const frugal_model_info *mi) {
    double p = (double)mi->n_params;
    if (p >= 1e9) snprintf(buf, n, "%s %.1fB", mi->arch, p / 1e9);
    else if (p >= 1e6) snprintf(buf, n, "%s %.0fM", mi->arch, p / 1e6);
    else snprintf(buf, n, "%s %.0fK", mi->arch, p / 1e3);
}

/* A JSON string literal: quotes, backslashes and control characters escaped. */
static void json_string(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

/* ------------------------------------------------------------------ the tests */

typedef struct bench_test {
    char name[48];      /* "pp128", "tg64", "tg64 @ d2048" */
    int is_gen;
    int n;
    double *samples;    /* tokens/s of each timed repetition */
    double *bw;         /* generation: GB/s probed just before each repetition (<= 0: failed) */
    double mean, sd, median;
    double bw_median, roof_pct; /* generation: medians over the repetitions (0: no probe) */
} bench_test;

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n) {
    double *c = malloc(sizeof(double) * (size_t)n);
    if (!c || n <= 0) { free(c); return 0.0; }
    memcpy(c, v, sizeof(double) * (size_t)n);
    qsort(c, (size_t)n, sizeof(double), cmp_double);
    double m = n % 2 ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return m;
}

/* Expert cache counters over the timed generation runs (streamed experts only). */
typedef struct expert_io {
    int on;                   /* the context streams experts */
    uint64_t hits, misses, bytes, tokens, prefetched, prefetch_used, guesses, guesses_right;
    double seconds;
    double busy_s, wait_s;    /* disk busy with expert reads / forward pass waiting for them */
    int io_threads;           /* reads in flight, in the cache and in the disk probe */
    double disk_sum;          /* disk probes taken before the repetitions, GB/s */
    int disk_n;
} expert_io;
static expert_io g_eio;

static void eio_add(const frugal_context *ctx, const frugal_expert_stats *before, int n_tok, double t) {
    frugal_expert_stats after;
    if (!frugal_context_expert_stats(ctx, &after)) return;
    g_eio.on = 1;
    g_eio.hits += after.hits - before->hits;
    g_eio.misses += after.misses - before->misses;
    g_eio.bytes += after.bytes_read - before->bytes_read;
    g_eio.prefetched += after.prefetched - before->prefetched;
    g_eio.prefetch_used += after.prefetch_used - before->prefetch_used;
    g_eio.guesses = after.guesses; /* recent figures, not differences */
    g_eio.guesses_right = after.guesses_right;
    g_eio.busy_s += after.io_busy_s - before->io_busy_s;
    g_eio.wait_s += after.wait_s - before->wait_s;
    g_eio.tokens += (uint64_t)n_tok;
    g_eio.seconds += t;
}

/* Streamed experts: the disk probed just before a repetition, as the cache reads it
 * (random, one expert matrix per request, as many in flight as the cache keeps; 128 MiB). A virtio or shared
 * disk varies by 2x from one second to the next, so the roofline uses the mean of
 * these probes rather than one taken before the model loaded. */
static void eio_probe_disk(const frugal_context *ctx, const char *path) {
    frugal_expert_stats es;
    if (!frugal_context_expert_stats(ctx, &es)) return;
    const double g = frugal_measure_random_read_bandwidth(path, es.expert_bytes / 3, es.io_threads, 128ull << 20);
    g_eio.io_threads = es.io_threads;
    if (g > 0) g_eio.disk_sum += g, g_eio.disk_n++;
}

/* One repetition: seconds taken, or < 0 after printing the error. */
static double run_once(frugal_context *ctx, const frugal_model *model, int n_vocab, int is_gen,
                       int n, int depth, int32_t *toks, const char *path, int rep) {
    /* each repetition its own ids: a mixture of experts routes by token, and repeating
     * the warm-up's ids would find exactly the experts it just cached */
    uint64_t seed = 0x5EED5EEDull + 0x9E3779B97F4A7C15ull * (uint64_t)(rep + 1);
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_context_reset(ctx);
    int rc = FRUGAL_OK;
    double t0 = 0.0;
    if (depth > 0) { /* the untimed prefix (toks holds max(depth, n_prompt) ids) */
        for (int i = 0; i < depth; i++) toks[i] = rand_token(&seed, n_vocab);
        if (frugal_add_bos(model) && frugal_token_bos(model) >= 0) toks[0] = frugal_token_bos(model);
        rc = frugal_eval(ctx, toks, depth, 0, &err);
    }
    if (rc != FRUGAL_OK) {
    } else if (!is_gen) {
        for (int i = 0; i < n; i++) toks[i] = rand_token(&seed, n_vocab);
        if (depth == 0 && frugal_add_bos(model) && frugal_token_bos(model) >= 0) toks[0] = frugal_token_bos(model);
        t0 = now_s();
        rc = frugal_eval(ctx, toks, n, 0, &err);
    } else {
        int32_t tok = depth == 0 && frugal_add_bos(model) && frugal_token_bos(model) >= 0
                          ? frugal_token_bos(model)
                          : rand_token(&seed, n_vocab);
        frugal_expert_stats before;
        frugal_context_expert_stats(ctx, &before);
        t0 = now_s();
        for (int i = 0; i < n && rc == FRUGAL_OK; i++) {
            double ts = now_s();
            rc = frugal_eval(ctx, &tok, 1, 0, &err);
            frugal_safety_step(ctx, now_s() - ts); /* as frugal_generate does; no policy: nothing */
            /* llama-bench feeds random ids rather than sampling: the sampler is not
             * what is being measured */
            tok = rand_token(&seed, n_vocab);
        }
        eio_add(ctx, &before, n, now_s() - t0);
    }
    double t = now_s() - t0;
    if (rc != FRUGAL_OK) {
        cli_error("%s: %s", path, err.message);
        return -1.0;
    }
    return t;
}

/* Generation is paired with the bandwidth probe: this machine's bandwidth drifts
 * (other tenants, frequency), so each repetition is compared with a probe taken just
 * before it, and the roofline % is the median of those per-repetition ratios. */
static int run_test(frugal_context *ctx, const frugal_model *model, int n_vocab, bench_test *bt,
                    int reps, int depth, int32_t *toks, const char *path, int threads, size_t bw_bytes,
                    double bytes_per_token) {
    if (run_once(ctx, model, n_vocab, bt->is_gen, bt->n, depth, toks, path, -1) < 0) return -1; /* warm-up */
    if (bt->is_gen) memset(&g_eio, 0, sizeof g_eio); /* count the timed runs only */
    double sum = 0.0;
    int n_roof = 0;
    double *ratios = calloc((size_t)reps, sizeof *ratios);
    if (!ratios) return -1;
    for (int r = 0; r < reps; r++) {
        if (bt->is_gen && bw_bytes) bt->bw[r] = frugal_measure_read_bandwidth(threads, bw_bytes);
        if (bt->is_gen) eio_probe_disk(ctx, path);
        double t = run_once(ctx, model, n_vocab, bt->is_gen, bt->n, depth, toks, path, r);
        if (t < 0) { free(ratios); return -1; }
        bt->samples[r] = t > 0 ? bt->n / t : 0.0;
        sum += bt->samples[r];
        if (bt->is_gen && bw_bytes && bt->bw[r] > 0 && bytes_per_token)
            ratios[n_roof++] = 100.0 * bt->samples[r] / (bt->bw[r] * 1e9 / bytes_per_token);
    }
    bt->median = median(bt->samples, reps);
    if (n_roof) {
        bt->roof_pct = median(ratios, n_roof);
        int nb = 0;
        for (int r = 0; r < reps; r++)
            if (bt->bw[r] > 0) ratios[nb++] = bt->bw[r];
        bt->bw_median = median(ratios, nb);
    }
    free(ratios);
    bt->mean = sum / reps;
    double ss = 0.0;
    for (int r = 0; r < reps; r++) ss += (bt->samples[r] - bt->mean) * (bt->samples[r] - bt->mean);
    bt->sd = reps > 1 ? sqrt(ss / (reps - 1)) : 0.0; /* sample stddev, as llama-bench */
    return 0;
}

/* ------------------------------------------------------------------ output */

typedef struct bench_env {
    const char *path;
    frugal_model_info mi;
    char desc[96], size[32], params[32];
    int threads, reps;
    uint64_t bytes_per_token;   /* weights */
    int depth;                  /* -d */
    double kv_read_per_token;   /* generation: K/V bytes one step reads, averaged over the test */
    const char *kv_type;
    double kv_bytes_per_token;  /* KV cache bytes per cached token (all layers, K+V) */
    uint64_t kv_bytes;          /* the whole KV cache of the benchmark context */
    double bw_gbs;        /* < 0: the probe failed */
    size_t bw_bytes;
    double disk_seq_gbs;  /* streamed experts: the model file's sequential read bandwidth (the
                             roofline's is probed before each repetition: eio_probe_disk) */
    bench_gpu gpu;        /* -ngl: the device's figures (bench_gpu.h) */
    uint64_t expert_bytes;    /* exact bytes of one expert */
} bench_env;

/* Streamed experts: bytes read per generated token, hit rate, disk roofline. */
static double eio_bytes_per_token(void) { return g_eio.tokens ? (double)g_eio.bytes / g_eio.tokens : 0.0; }
static double eio_hit_rate(void) {
    return g_eio.hits + g_eio.misses ? (double)g_eio.hits / (double)(g_eio.hits + g_eio.misses) : 0.0;
}
static double eio_disk_gbs(void) { return g_eio.disk_n ? g_eio.disk_sum / g_eio.disk_n : 0.0; }
static double eio_roofline(void) {
    const double gbs = eio_disk_gbs();
    return gbs > 0 && eio_bytes_per_token() > 0 ? gbs * 1e9 / eio_bytes_per_token() : 0.0;
}

static void print_experts(const bench_env *e) {
    if (!g_eio.on || !g_eio.tokens) return;
    const double tps = g_eio.seconds > 0 ? g_eio.tokens / g_eio.seconds : 0.0, roof = eio_roofline();
    const double need = (double)g_eio.misses * (double)e->expert_bytes / g_eio.tokens;
    printf("experts: %.2f MiB read from the file per generated token (%.2f MiB needed by the %.2f picked experts "
           "per token that were not cached; hit rate %.1f %%)\n",
           eio_bytes_per_token() / 1048576.0, need / 1048576.0, (double)g_eio.misses / g_eio.tokens,
           100.0 * eio_hit_rate());
    if (g_eio.guesses)
        printf("expert prediction: %.1f %% of recent guesses right; read ahead %.2f experts per token, "
               "%.1f %% of them picked\n", 100.0 * g_eio.guesses_right / g_eio.guesses,
               (double)g_eio.prefetched / g_eio.tokens,
               g_eio.prefetched ? 100.0 * g_eio.prefetch_used / g_eio.prefetched : 0.0);
    if (g_eio.seconds > 0)
        printf("expert reads: disk busy %.1f ms per token (%.1f %% of the generation time, %.3f GB/s while busy), "
               "forward pass waiting for them %.1f ms per token\n", 1e3 * g_eio.busy_s / g_eio.tokens,
               100.0 * g_eio.busy_s / g_eio.seconds, g_eio.busy_s > 0 ? g_eio.bytes / g_eio.busy_s / 1e9 : 0.0,
               1e3 * g_eio.wait_s / g_eio.tokens);
    if (roof > 0)
        printf("disk roofline: %.2f tok/s (disk %.3f GB/s in expert-sized random reads, %d in flight as the cache "
               "reads, mean of %d probes, one before each repetition; %.3f GB/s sequential / bytes read per token); "
               "generation %.2f tok/s = %.1f %%\n", roof, eio_disk_gbs(), g_eio.io_threads, g_eio.disk_n,
               e->disk_seq_gbs, tps, 100.0 * tps / roof);
}

/* Bytes one token of the test reads from memory in the roofline model: the weights,
 * and for generation the cached K/V rows its attention reads (depth + the tokens
 * generated so far, on average over the test); prompt tokens share their reads. */
static double test_bytes(const bench_env *e, int is_gen) {
    return e->bytes_per_token ? (double)e->bytes_per_token + (is_gen ? e->kv_read_per_token : 0.0) : 0.0;
}

static double roofline_tps(const bench_env *e, int is_gen) {
    return e->bw_gbs > 0 && test_bytes(e, is_gen) > 0 ? e->bw_gbs * 1e9 / test_bytes(e, is_gen) : 0.0;
}

static void print_header(void) {
    printf("| %-24s | %6s | %11s | %10s | %7s | %14s | %18s |\n", "model", "type", "size", "params",
           "threads", "test", "t/s");
    printf("| %.24s | %.5s: | %.10s: | %.9s: | %.6s: | %.13s: | %.17s: |\n",
           "----------------------------", "------", "-----------", "----------", "-------",
           "----------------", "------------------");
}

static void print_row(const bench_env *e, const bench_test *bt) {
    char ts[48];
    snprintf(ts, sizeof ts, "%.2f ± %.2f", bt->mean, bt->sd);
    /* "±" is two bytes but one column: pad by one more */
    printf("| %-24.24s | %6s | %11s | %10s | %7d | %14s | %19s |\n", e->desc, e->mi.type_name, e->size,
           e->params, e->threads, bt->name, ts);
    fflush(stdout);
}

static void print_summary(const bench_env *e, const bench_test *tests, int n_tests) {
    print_experts(e);
    printf("\nKV cache (%s): %.0f bytes per token, %.2f MiB in total\n", e->kv_type, e->kv_bytes_per_token,
           e->kv_bytes / 1048576.0);
    printf("weights read per generated token: %.2f MiB (%llu bytes)\n",
           (double)e->bytes_per_token / (1 << 20), (unsigned long long)e->bytes_per_token);
    printf("K/V read per generated token: %.2f MiB (the cached rows attention reads, mean over the test)\n",
           e->kv_read_per_token / (1 << 20));
    const bench_test *tg = n_tests && tests[n_tests - 1].is_gen ? &tests[n_tests - 1] : NULL;
    bench_gpu_print_text(stdout, &e->gpu, (double)e->bytes_per_token, e->kv_read_per_token, e->bw_gbs,
                         tg ? tg->name : NULL, tg ? tg->median : 0.0);
    if (e->bw_gbs <= 0) {
        printf("read bandwidth: probe failed (no memory for a %.0f MiB buffer)\n",
               (double)e->bw_bytes / (1 << 20));
        return;
    }
    double roof = roofline_tps(e, 1);
    printf("read bandwidth: %.2f GB/s (sum over a %.0f MiB buffer, %d threads, best pass)\n",
           e->bw_gbs, (double)e->bw_bytes / (1 << 20), e->threads);
    printf("roofline: %.2f tok/s (bandwidth / (weights + K/V) bytes per token)\n", roof);
    for (int i = 0; i < n_tests; i++)
        if (tests[i].is_gen && tests[i].bw_median > 0)
            printf("%s: median %.2f tok/s; %.1f %% of the roofline (median over %d repetitions of tok/s / "
                   "(bandwidth probed just before it / bytes per token); median probe %.2f GB/s)\n",
                   tests[i].name, tests[i].median, tests[i].roof_pct, e->reps, tests[i].bw_median);
}

static void print_json(const bench_env *e, const bench_test *tests, int n_tests, frugal_context *ctx) {
    frugal_readings rd;
    int have_rd = frugal_get_readings(ctx, &rd, NULL) == FRUGAL_OK;
    printf("[");
    for (int i = 0; i < n_tests; i++) {
        const bench_test *bt = &tests[i];
        const double roof = roofline_tps(e, bt->is_gen);
        printf("%s\n  {\"test\": \"%s\", \"n_prompt\": %d, \"n_gen\": %d, \"n_depth\": %d, "
               "\"tokens_per_s\": %.6g, \"stddev\": %.6g, \"samples_ts\": [",
               i ? "," : "", bt->name, bt->is_gen ? 0 : bt->n, bt->is_gen ? bt->n : 0, e->depth, bt->mean, bt->sd);
        for (int r = 0; r < e->reps; r++) printf(r ? ", %.9g" : "%.9g", bt->samples[r]);
        printf("], \"bytes_per_token\": %llu, \"kv_read_bytes_per_token\": %.6g, ",
               (unsigned long long)e->bytes_per_token, bt->is_gen ? e->kv_read_per_token : 0.0);
        printf("\"kv_type\": \"%s\", \"kv_bytes_per_token\": %.6g, \"kv_bytes\": %llu, ", e->kv_type,
               e->kv_bytes_per_token, (unsigned long long)e->kv_bytes);
        printf("\"median_tokens_per_s\": %.6g, ", bt->median);
        if (bt->is_gen && bt->bw_median > 0) {
            printf("\"samples_bandwidth_gbs\": [");
            for (int r = 0; r < e->reps; r++) printf(r ? ", %.9g" : "%.9g", bt->bw[r]);
            printf("], ");
        }
        if (bt->is_gen && bt->bw_median > 0) /* paired probes (run_test) */
            printf("\"bandwidth_gbs\": %.6g, \"roofline_tokens_per_s\": %.6g, \"roofline_pct\": %.6g, ",
                   bt->bw_median, bt->bw_median * 1e9 / test_bytes(e, 1), bt->roof_pct);
        else if (roof > 0)
            printf("\"bandwidth_gbs\": %.6g, \"roofline_tokens_per_s\": %.6g, \"roofline_pct\": %.6g, ",
                   e->bw_gbs, roof, 100.0 * bt->mean / roof);
        else
            printf("\"bandwidth_gbs\": null, \"roofline_tokens_per_s\": null, \"roofline_pct\": null, ");
        if (bt->is_gen && g_eio.on && g_eio.tokens) {
            const double roof = eio_roofline(), tps = g_eio.seconds > 0 ? g_eio.tokens / g_eio.seconds : 0.0;
            printf("\"expert_bytes_read_per_token\": %.6g, \"expert_hit_rate\": %.6g, \"disk_bw_gbs\": %.6g, "
                   "\"disk_seq_bw_gbs\": %.6g, ", eio_bytes_per_token(), eio_hit_rate(), eio_disk_gbs(), e->disk_seq_gbs);
            printf("\"disk_roofline_tokens_per_s\": %.6g, \"disk_roofline_pct\": %.6g, ", roof,
                   roof > 0 ? 100.0 * tps / roof : 0.0);
        }
        bench_gpu_print_json(stdout, &e->gpu, (double)e->bytes_per_token, bt->is_gen ? e->kv_read_per_token : 0.0,
                             e->bw_gbs, bt->mean);
        printf("\"model\": ");
        json_string(stdout, e->path);
        printf(", \"model_desc\": ");
        json_string(stdout, e->desc);
        printf(", \"type\": ");
        json_string(stdout, e->mi.type_name);
        printf(", \"size_bytes\": %llu, \"n_params\": %llu, \"threads\": %d, \"repetitions\": %d",
               (unsigned long long)e->mi.weight_bytes, (unsigned long long)e->mi.n_params, e->threads,
               e->reps);
        if (have_rd) {
            printf(", \"safety\": ");
            safety_print_json(stdout, &rd);
        }
        printf("}");
    }
}

/* ------------------------------------------------------------------ monitors A/B */

/* tg with the monitors off and on, in pairs whose order alternates so that drift
 * and warm caches favour neither; the overhead is 1 - the median of the pairs'
 * on/off speed ratios. */
static int monitor_ab(frugal_context *ctx, const frugal_model *model, const bench_env *e, int n_gen,
                      int32_t *toks, const frugal_safety_policy *pol, int json, int first) {
    double *off = calloc((size_t)e->reps, sizeof *off), *on = calloc((size_t)e->reps, sizeof *on);
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_readings rd;
    memset(&rd, 0, sizeof rd);
    int rc = off && on ? 0 : -1;
    for (int r = 0; r < e->reps && !rc; r++) {
        for (int half = 0; half < 2 && !rc; half++) {
            int monitors = (r + half) % 2; /* off first in even pairs, on first in odd ones */
            if (frugal_set_safety_policy(ctx, monitors ? pol : NULL, &err) != FRUGAL_OK) { rc = -1; break; }
            double t = run_once(ctx, model, e->mi.n_vocab, 1, n_gen, e->depth, toks, e->path, r); /* both halves of a pair: the same ids */
            if (t <= 0) { rc = -1; break; }
            (monitors ? on : off)[r] = n_gen / t;
            if (monitors) frugal_get_readings(ctx, &rd, NULL);
        }
    }
    frugal_set_safety_policy(ctx, NULL, NULL);
    if (!rc) {
        double m_off = median(off, e->reps), m_on = median(on, e->reps);
        /* per-pair ratios: both halves of a pair ran within milliseconds of each other */
        for (int r = 0; r < e->reps; r++) on[r] = off[r] > 0 ? on[r] / off[r] : 1;
        double pct = 100.0 * (1 - median(on, e->reps));
        if (json) {
            printf("%s\n  {\"test\": \"monitor_ab tg%d\", \"off_median_tokens_per_s\": %.6g, "
                   "\"on_median_tokens_per_s\": %.6g, \"overhead_pct\": %.4g, \"repetitions\": %d, \"safety\": ",
                   first ? "" : ",", n_gen, m_off, m_on, pct, e->reps);
            safety_print_json(stdout, &rd);
            printf("}");
        } else {
            printf("\nmonitors off/on (tg%d, %d pairs): %.2f / %.2f tok/s median, overhead %.2f %%; "
                   "monitor thread %.4f %% of a core\n", n_gen, e->reps, m_off, m_on, pct,
                   rd.poll_wall_s > 0 ? 100 * rd.poll_cpu_s / rd.poll_wall_s : 0.0);
        }
    } else if (err.message[0]) {
        cli_error("%s", err.message);
    }
    free(off);
    free(on);
    return rc;
}

/* ------------------------------------------------------------------ the command */

int cmd_bench(int argc, char **argv) {
    const char *model_path = NULL, *mem_str = NULL, *kv_str = "f16", *kv_policy = NULL;
    int n_prompt = 128, n_gen = 64, n_depth = 0, n_threads = 0, reps = 5, bw_mib = 0, dev_bw_mib = 0, json = 0, no_repack = 0;
    int mon_ab = 0;
    safety_flags sf = SAFETY_FLAGS_INIT;
    int ngl = 0; /* GPU flags (args.h) */
    const char *vram_str = NULL;
    const opt opts[] = {
        SAFETY_OPTS(sf),
        {NULL, "--monitor-ab", OPT_FLAG, &mon_ab, 0, 0},
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {"-p", "--n-prompt", OPT_INT, &n_prompt, 0, 1 << 20},
        {"-n", "--n-gen", OPT_INT, &n_gen, 0, 1 << 20},
        {"-d", "--n-depth", OPT_INT, &n_depth, 0, 1 << 20},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {"-r", "--repetitions", OPT_INT, &reps, 1, 10000},
        {NULL, "--bw-mib", OPT_INT, &bw_mib, 0, 1 << 20},
        {NULL, "--device-bw-mib", OPT_INT, &dev_bw_mib, 0, 1 << 16},
        {NULL, "--json", OPT_FLAG, &json, 0, 0},
        {NULL, "--mem", OPT_STR, &mem_str, 0, 0},
        {NULL, "--no-repack", OPT_FLAG, &no_repack, 0, 0},
        CLI_GPU_OPTS(ngl, vram_str),
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {NULL, "--kv-policy", OPT_STR, &kv_policy, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    frugal_model_params gpu;
    if (cli_gpu_options(ngl, vram_str, &gpu) != 0) return EXIT_USAGE;
    if (!model_path) { cli_error("bench: -m MODEL is required"); return EXIT_USAGE; }
    uint64_t mem_budget = 0;
    if (mem_str && frugal_parse_size(mem_str, &mem_budget) != 0) {
        cli_error("--mem: '%s' is not a size such as 512M or 2G", mem_str);
        return EXIT_USAGE;
    }
    if (mem_budget && bw_mib == 0) bw_mib = 64;
    frugal_context_params kvp;
    frugal_context_params_default(&kvp);
    if (cli_kv_options(kv_str, kv_policy, &kvp) != 0) return EXIT_USAGE;
    if (n_prompt == 0 && n_gen == 0) { cli_error("bench: -p 0 and -n 0 leave nothing to measure"); return EXIT_USAGE; }
    frugal_safety_policy pol;
    int use_safety = 0;
    int src = safety_flags_policy(&sf, &pol, &use_safety);
    if (src) return src;
    /* --monitor-ab times the monitors as a user runs them: the policy's interval (1 s
     * unless --monitor-interval says otherwise) */
    if (mon_ab && n_gen == 0) { cli_error("bench: --monitor-ab times tg: give -n > 0"); return EXIT_USAGE; }

    int rc = 1;
    frugal_model *model = NULL;
    frugal_context *ctx = NULL;
    int32_t *toks = NULL;
    bench_test tests[2];
    int n_tests = 0;
    memset(tests, 0, sizeof tests);
    frugal_error err = FRUGAL_ERROR_INIT;
    bench_env env;
    memset(&env, 0, sizeof env);
    env.path = model_path;
    env.reps = reps;

    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads;
    mp.mem_budget = mem_budget;
    mp.no_repack = no_repack;
    mp.n_gpu_layers = gpu.n_gpu_layers, mp.vram_budget = gpu.vram_budget, mp.gpu_stream = gpu.gpu_stream;
    if (frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    frugal_context_params cp = kvp; /* defaults + the KV flags */
    cp.n_ctx = n_depth + (n_prompt > n_gen ? n_prompt : n_gen); /* each test starts from an empty cache */
    cp.n_threads = n_threads;
    cp.mem_budget = mem_budget;
    if (frugal_context_new(model, &cp, &ctx, &err) != FRUGAL_OK) {
        cli_error("%s: %s", model_path, err.message);
        goto done;
    }
    if (use_safety && frugal_set_safety_policy(ctx, &pol, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        goto done;
    }
    frugal_model_get_info(model, &env.mi);
    env.threads = frugal_context_n_threads(ctx);
    env.bytes_per_token = frugal_model_decode_bytes(model);
    env.depth = n_depth;
    env.kv_type = kv_str;
    env.kv_bytes = frugal_context_kv_bytes(ctx);
    env.kv_bytes_per_token = frugal_context_kv_bytes_per_token(ctx);
    /* step i (0-based) attends over depth + i + 1 cached rows */
    env.kv_read_per_token = env.kv_bytes_per_token * (n_depth + (n_gen + 1) / 2.0);
    fmt_desc(env.desc, sizeof env.desc, &env.mi);
    fmt_size(env.size, sizeof env.size, env.mi.weight_bytes);
    fmt_params(env.params, sizeof env.params, env.mi.n_params);

    /* the probe first: it frees its buffer before the model's tests run */
    env.bw_bytes = bw_mib > 0 ? (size_t)bw_mib << 20 : frugal_bandwidth_probe_default_bytes();
    env.bw_gbs = frugal_measure_read_bandwidth(env.threads, env.bw_bytes);
    if (env.bw_gbs <= 0)
        fprintf(stderr, "frugal: warning: the bandwidth probe failed; no roofline figures\n");

    frugal_expert_stats es;
    if (frugal_context_expert_stats(ctx, &es)) { /* streamed experts: the disk is the bound */
        env.expert_bytes = es.expert_bytes;
        /* for reference: the roofline's random-read probes run before each repetition */
        env.disk_seq_gbs = frugal_measure_disk_bandwidth(model_path, 256ull << 20);
    }

    toks = malloc((size_t)(n_prompt > n_depth ? n_prompt : n_depth > 0 ? n_depth : 1) * sizeof *toks);
    if (!toks) { cli_error("bench: out of memory"); goto done; }
    if (n_prompt > 0) {
        snprintf(tests[n_tests].name, sizeof tests[n_tests].name, n_depth ? "pp%d @ d%d" : "pp%d", n_prompt, n_depth);
        tests[n_tests].n = n_prompt;
        n_tests++;
    }
    if (n_gen > 0) {
        snprintf(tests[n_tests].name, sizeof tests[n_tests].name, n_depth ? "tg%d @ d%d" : "tg%d", n_gen, n_depth);
        tests[n_tests].n = n_gen;
        tests[n_tests].is_gen = 1;
        n_tests++;
    }
    if (!json) print_header();
    for (int i = 0; i < n_tests; i++) {
        tests[i].samples = calloc((size_t)reps, sizeof *tests[i].samples);
        tests[i].bw = calloc((size_t)reps, sizeof *tests[i].bw);
        if (!tests[i].samples || !tests[i].bw) { cli_error("bench: out of memory"); goto done; }
        if (tests[i].is_gen) bench_gpu_stream_start(model, &env.gpu);
        if (run_test(ctx, model, env.mi.n_vocab, &tests[i], reps, n_depth, toks, model_path, env.threads,
                     env.bw_gbs > 0 ? env.bw_bytes : 0, test_bytes(&env, tests[i].is_gen)) != 0)
            goto done;
        if (tests[i].is_gen) bench_gpu_stream_end(model, &env.gpu, (double)(reps + 1) * tests[i].n);
        if (!json) print_row(&env, &tests[i]);
    }
    bench_gpu_probe(model, dev_bw_mib, &env.gpu); /* after the tests: their peak, not the probe's */
    if (json) print_json(&env, tests, n_tests, ctx);
    else print_summary(&env, tests, n_tests);
    if (!json && use_safety) {
        frugal_readings rd;
        if (frugal_get_readings(ctx, &rd, NULL) == FRUGAL_OK) safety_print_text(stdout, &rd);
    }
    if (mon_ab && monitor_ab(ctx, model, &env, n_gen, toks, &pol, json, n_tests == 0) != 0) goto done;
    if (json) printf("\n]\n");
    if (fflush(stdout) != 0) { cli_error("stdout: write failed"); goto done; }
    rc = 0;

done:
    for (int i = 0; i < 2; i++) free(tests[i].samples), free(tests[i].bw);
    free(toks);
    frugal_context_free(ctx);
    frugal_model_free(model);
    return rc;
}
