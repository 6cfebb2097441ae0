/* cmd_run.c - `frugal run`: tokenize a prompt, stream the generated text to stdout,
 * then print speed figures to stderr (or everything as one JSON object). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "safety_cli.h"
#include "progress.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal run -m MODEL (-p PROMPT | -f FILE) [flags]\n\n"
            "Generate text. The prompt gets BOS as the model's metadata says and special-token\n"
            "text in it is recognised. Generated text streams to stdout; prompt and generation\n"
            "speed, time to first token and peak RSS go to stderr.\n\n"
            "  -m, --model M          GGUF model\n"
            "  -p, --prompt P         prompt text\n"
            "  -f, --file F           read the prompt from F (one trailing newline dropped)\n"
            "  -n, --n-predict N      tokens to generate (default 128; -1: until the context is full)\n"
            "  -c, --ctx-size N       context size (default 0: the model's, at most 4096)\n"
            "  -t, --threads N        threads (default 0: all cores)\n"
            "  -s, --seed S           sampling seed (default -1: random, from the clock)\n"
            "  --temp T               temperature (default 0.8; <= 0: greedy)\n"
            "  --top-k K              top-k (default 40; 0: off)\n"
            "  --top-p P              top-p (default 0.95; 1: off)\n"
            "  --min-p P              min-p (default 0.05; 0: off)\n"
            "  --repeat-penalty R     repetition penalty (default 1.0: off)\n"
            "  --repeat-last-n N      penalty window in tokens (default 64)\n"
            "  --frequency-penalty F  OpenAI-style frequency penalty (default 0)\n"
            "  --presence-penalty F   OpenAI-style presence penalty (default 0)\n"
            "  --kv-type T            KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  --stats                also print memory by category (peak) and KV bytes\n"
            "  --mem SIZE             memory budget (K/M/G suffixes): layers that do not fit are\n"
            "                         streamed from disk per token (see 'frugal plan')\n"
            "  -ngl, --gpu-layers N   the last N layers' matrices on the GPU (Vulkan; -1: all);\n"
            "                         N > layers also the output matrix; no device: an error\n"
            "  --vram SIZE            device memory the layers may use (K/M/G); alone: -ngl -1\n"
            "  --no-repack            keep the weights in the file mapping (zero-copy) instead of\n"
            "                         repacking them for the faster prefill kernels\n"
            "  --kv-disk DIR          spill KV pages to a file in DIR (removed on exit), keeping\n"
            "  --kv-ram SIZE          ... only SIZE of them in RAM (K/M/G suffixes)\n"
            "  --kv-policy P          window:W[,sinks:S]: keep the first S (default 4) and the\n"
            "                         last W tokens; generation continues past the context\n"
            "                         summary:CHUNK[,keep:N][,slots:S]: beyond the last N\n"
            "                         (default 64) tokens, each old chunk becomes one\n"
            "                         mean-pooled slot; S: cache slots (default -c)\n"
            "  --progress             loading progress as a line per 10 %% on stderr (default: a\n"
            "                         bar when stderr is a terminal, nothing otherwise)\n"
            "  --json                 print one JSON object instead: prompt_tokens, tokens,\n"
            "                         text, timings {prompt_tok_s, gen_tok_s, ttft_ms,\n"
            "                         peak_rss_bytes}, safety {...} with a policy\n"
            SAFETY_HELP);
}

/* ------------------------------------------------------------------ JSON output */

/* Write s[0..n) as a JSON string literal: quotes and backslashes escaped, control
 * characters as \uXXXX, each byte that is not part of valid UTF-8 as U+FFFD. */
static void json_string(FILE *out, const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', out);
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') { fputc('\\', out); fputc((int)c, out); i++; continue; }
        if (c == '\n') { fputs("\\n", out); i++; continue; }
        if (c == '\t') { fputs("\\t", out); i++; continue; }
        if (c == '\r') { fputs("\\r", out); i++; continue; }
        if (c < 0x20) { fprintf(out, "\\u%04x", c); i++; continue; }
        size_t l = cli_utf8_valid_len(s + i, n - i);
        if (l == 0) { fputs("\\ufffd", out); i++; continue; }
        fwrite(s + i, 1, l, out);
        i += l;
    }
    fputc('"', out);
}

/* A finite double for JSON (which has no NaN/Infinity). */
static double finite_or_zero(double x) { return isfinite(x) ? x : 0.0; }

/* ------------------------------------------------------------------ generation */

typedef struct run_state {
    int json;
    int write_failed;
    int32_t *tokens;      /* generated ids (json mode) */
    int n_tokens, cap_tokens;
    char *text;           /* generated text (json mode) */
    size_t n_text, cap_text;
    int oom;
} run_state;

/* Token callback: stream the piece (text mode) or collect it (json mode). A non-zero
 * return stops the generation: stdout is gone or memory ran out. */
static int on_token(void *user, int32_t token, const char *piece, size_t len) {
    run_state *st = user;
    if (!st->json) {
        if ((len && fwrite(piece, 1, len, stdout) != len) || fflush(stdout) != 0) {
            st->write_failed = 1;
            return 1;
        }
        return 0;
    }
    if (st->n_tokens == st->cap_tokens) {
        int nc = st->cap_tokens ? st->cap_tokens * 2 : 256;
        int32_t *t = realloc(st->tokens, (size_t)nc * sizeof *t);
        if (!t) { st->oom = 1; return 1; }
        st->tokens = t;
        st->cap_tokens = nc;
    }
    st->tokens[st->n_tokens++] = token;
    if (st->n_text + len + 1 > st->cap_text) {
        size_t nc = st->cap_text ? st->cap_text : 1024;
        while (nc < st->n_text + len + 1) nc *= 2;
        char *t = realloc(st->text, nc);
        if (!t) { st->oom = 1; return 1; }
        st->text = t;
        st->cap_text = nc;
    }
    if (len) memcpy(st->text + st->n_text, piece, len);
    st->n_text += len;
    return 0;
}

/* Strict seed: -1 (random) or a decimal uint64. 0 on success. */
static int parse_seed(const char *s, uint64_t *seed, int *random_seed) {
    if (strcmp(s, "-1") == 0) { *random_seed = 1; return 0; }
    if (*s < '0' || *s > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *seed = (uint64_t)v;
    *random_seed = 0;
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *model_path = NULL, *prompt = NULL, *file = NULL, *seed_str = NULL;
    const char *kv_str = "f16";
    const char *kv_policy = NULL;
    const char *kv_disk = NULL, *kv_ram_str = NULL;
    const char *mem_str = NULL;
    int stats = 0, no_repack = 0, progress_lines = 0;
    int ngl = 0; /* GPU flags (args.h) */
    const char *vram_str = NULL;
    int n_predict = 128, n_ctx = 0, n_threads = 0, json = 0;
    frugal_sampler_params sp;
    frugal_sampler_params_default(&sp);
    safety_flags sf = SAFETY_FLAGS_INIT;
    const opt opts[] = {
        SAFETY_OPTS(sf),
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {"-p", "--prompt", OPT_STR, &prompt, 0, 0},
        {"-f", "--file", OPT_STR, &file, 0, 0},
        {"-n", "--n-predict", OPT_INT, &n_predict, -1, 1 << 30},
        {"-c", "--ctx-size", OPT_INT, &n_ctx, 0, 1 << 24},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {"-s", "--seed", OPT_STR, &seed_str, 0, 0},
        {NULL, "--temp", OPT_FLOAT, &sp.temp, -1e9, 1e9},
        {NULL, "--top-k", OPT_INT, &sp.top_k, 0, 1 << 30},
        {NULL, "--top-p", OPT_FLOAT, &sp.top_p, 0, 1},
        {NULL, "--min-p", OPT_FLOAT, &sp.min_p, 0, 1},
        {NULL, "--repeat-penalty", OPT_FLOAT, &sp.repeat_penalty, 0, 1e9},
        {NULL, "--repeat-last-n", OPT_INT, &sp.repeat_last_n, 0, 1 << 20},
        {NULL, "--frequency-penalty", OPT_FLOAT, &sp.freq_penalty, -1e9, 1e9},
        {NULL, "--presence-penalty", OPT_FLOAT, &sp.presence_penalty, -1e9, 1e9},
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {NULL, "--kv-policy", OPT_STR, &kv_policy, 0, 0},
        {NULL, "--kv-disk", OPT_STR, &kv_disk, 0, 0},
        {NULL, "--kv-ram", OPT_STR, &kv_ram_str, 0, 0},
        {NULL, "--stats", OPT_FLAG, &stats, 0, 0},
        {NULL, "--mem", OPT_STR, &mem_str, 0, 0},
        {NULL, "--no-repack", OPT_FLAG, &no_repack, 0, 0},
        CLI_GPU_OPTS(ngl, vram_str),
        {NULL, "--json", OPT_FLAG, &json, 0, 0},
        {NULL, "--progress", OPT_FLAG, &progress_lines, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    frugal_model_params gpu;
    if (cli_gpu_options(ngl, vram_str, &gpu) != 0) return EXIT_USAGE;
    if (!model_path) { cli_error("run: -m MODEL is required"); return EXIT_USAGE; }
    if (!prompt == !file) { cli_error("run: give exactly one of -p PROMPT or -f FILE"); return EXIT_USAGE; }
    frugal_context_params policy;
    frugal_context_params_default(&policy);
    if (cli_kv_options(kv_str, kv_policy, &policy) != 0) return EXIT_USAGE;
    uint64_t kv_ram = 0;
    if (kv_ram_str && frugal_parse_size(kv_ram_str, &kv_ram) != 0) {
        cli_error("--kv-ram: '%s' is not a size such as 512M or 2G", kv_ram_str);
        return EXIT_USAGE;
    }
    if (!kv_disk != !kv_ram_str) {
        cli_error("--kv-disk and --kv-ram go together");
        return EXIT_USAGE;
    }
    uint64_t mem_budget = 0;
    if (mem_str && frugal_parse_size(mem_str, &mem_budget) != 0) {
        cli_error("--mem: '%s' is not a size such as 512M or 2G", mem_str);
        return EXIT_USAGE;
    }
    frugal_safety_policy safety;
    int use_safety = 0;
    int src = safety_flags_policy(&sf, &safety, &use_safety);
    if (src) return src;
    int random_seed = 1;
    if (seed_str && parse_seed(seed_str, &sp.seed, &random_seed) != 0) {
        cli_error("-s: '%s' is not -1 or an unsigned 64-bit integer", seed_str);
        return EXIT_USAGE;
    }
    if (random_seed) /* like llama.cpp's -1: a fresh seed per run */
        sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)clock();

    char *owned = NULL;
    size_t plen;
    if (file) {
        owned = cli_read_file(file, &plen);
        if (!owned) return 1;
        if (plen && owned[plen - 1] == '\n') owned[--plen] = '\0';
        prompt = owned;
    } else {
        plen = strlen(prompt);
    }

    int rc = 1;
    frugal_model *model = NULL;
    frugal_context *ctx = NULL;
    frugal_sampler *smpl = NULL;
    int32_t *ids = NULL;
    run_state st = {.json = json};
    frugal_error err = FRUGAL_ERROR_INIT;

    progress_library(progress_lines);
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads;
    mp.mem_budget = mem_budget;
    mp.no_repack = no_repack;
    mp.n_gpu_layers = gpu.n_gpu_layers, mp.vram_budget = gpu.vram_budget, mp.gpu_stream = gpu.gpu_stream;
    if (frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) {
        cli_error("%s", err.message); /* already names the file */
        goto done;
    }
    frugal_context_params cp = policy; /* defaults + the KV flags */
    cp.n_ctx = n_ctx;
    cp.kv_disk_dir = kv_disk;
    cp.kv_ram_bytes = kv_ram;
    cp.n_threads = n_threads;
    cp.mem_budget = mem_budget;
    if (frugal_context_new(model, &cp, &ctx, &err) != FRUGAL_OK) {
        cli_error("%s: %s", model_path, err.message);
        goto done;
    }
    if (use_safety && frugal_set_safety_policy(ctx, &safety, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        goto done;
    }

    int cap = (int)(plen < 1u << 26 ? plen : 1u << 26) + 8;
    ids = malloc((size_t)cap * sizeof *ids);
    int n_prompt = ids ? frugal_tokenize(model, prompt, plen, 1, 1, ids, cap) : 0;
    if (ids && n_prompt < 0 && n_prompt != INT_MIN) { /* INT_MIN: failure, not a size */
        cap = -n_prompt;
        int32_t *more = realloc(ids, (size_t)cap * sizeof *ids);
        if (more) ids = more;
        n_prompt = more ? frugal_tokenize(model, prompt, plen, 1, 1, ids, cap) : -1;
    }
    if (!ids || n_prompt < 0) { cli_error("%s: tokenizing the prompt failed", model_path); goto done; }
    if (n_prompt == 0) { cli_error("run: the prompt is empty (no tokens)"); goto done; }
    int n_ctx_real = frugal_context_n_ctx(ctx);
    if (n_prompt >= n_ctx_real) {
        cli_error("run: the prompt is %d tokens but the context holds %d (raise -c)",
                  n_prompt, n_ctx_real);
        goto done;
    }
    /* never ask for more than fits: the context cannot grow */
    int room = n_ctx_real - n_prompt;
    if (!kv_policy && (n_predict < 0 || n_predict > room)) n_predict = room;
    if (kv_policy && n_predict < 0) n_predict = 1 << 30; /* a window never fills */

    smpl = frugal_sampler_new(&sp);
    if (!smpl) { cli_error("run: out of memory"); goto done; }

    frugal_timings tm;
    memset(&tm, 0, sizeof tm);
    if (frugal_generate(ctx, smpl, ids, n_prompt, n_predict, on_token, &st, &tm, &err) != FRUGAL_OK) {
        if (!json) putchar('\n');
        /* errors about the file itself (truncated, read errors) already name it */
        if (strncmp(err.message, model_path, strlen(model_path)) == 0) cli_error("%s", err.message);
        else cli_error("%s: %s", model_path, err.message);
        goto done;
    }
    if (st.write_failed) { cli_error("stdout: write failed"); goto done; }
    if (st.oom) { cli_error("run: out of memory"); goto done; }

    double prompt_tps = tm.prompt_ms > 0 ? tm.n_prompt / (tm.prompt_ms / 1000.0) : 0.0;
    double gen_tps = tm.gen_ms > 0 ? tm.n_gen / (tm.gen_ms / 1000.0) : 0.0;
    uint64_t rss = tm.peak_rss_bytes ? tm.peak_rss_bytes : frugal_peak_rss();
    if (json) {
        printf("{\"prompt_tokens\": %d, \"tokens\": [", n_prompt);
        for (int i = 0; i < st.n_tokens; i++) printf(i ? ", %d" : "%d", st.tokens[i]);
        printf("], \"text\": ");
        json_string(stdout, st.text ? st.text : "", st.n_text);
        printf(", \"timings\": {\"prompt_tok_s\": %.3f, \"gen_tok_s\": %.3f, "
               "\"ttft_ms\": %.3f, \"peak_rss_bytes\": %llu}",
               finite_or_zero(prompt_tps), finite_or_zero(gen_tps),
               finite_or_zero(tm.ttft_ms), (unsigned long long)rss);
        frugal_readings rd;
        if (use_safety && frugal_get_readings(ctx, &rd, NULL) == FRUGAL_OK) {
            printf(", \"safety\": ");
            safety_print_json(stdout, &rd);
        }
        printf("}\n");
    } else {
        putchar('\n');
        fflush(stdout); /* the newline must land before the stats on stderr */
        fprintf(stderr,
                "prompt: %d tokens, %.2f tok/s | generation: %d tokens, %.2f tok/s | "
                "TTFT %.2f ms | peak RSS %.1f MiB\n",
                tm.n_prompt, prompt_tps, tm.n_gen, gen_tps, tm.ttft_ms,
                (double)rss / (1024.0 * 1024.0));
    }
    if (stats) {
        frugal_mem_stats ms;
        frugal_get_mem_stats(&ms);
        fprintf(stderr, "memory (accounted)    current       peak\n");
        for (int i = 0; i < ms.n; i++)
            fprintf(stderr, "  %-12s %10.2f MiB %10.2f MiB\n", ms.names[i], ms.current[i] / 1048576.0,
                    ms.peak[i] / 1048576.0);
        fprintf(stderr, "  peak RSS (incl. mapped weights) %.2f MiB\n", ms.peak_rss / 1048576.0);
        uint64_t used = 0, alloc = 0, cap = 0;
        frugal_kv_usage(ctx, &used, &alloc, &cap);
        fprintf(stderr, "KV cache: %s, %.2f MiB for %d tokens = %.0f bytes/token; pool: %llu tokens used, "
                "%llu allocated in blocks (waste %llu), capacity %llu\n", kv_str,
                frugal_context_kv_bytes(ctx) / 1048576.0, frugal_context_n_ctx(ctx),
                frugal_context_kv_bytes_per_token(ctx), (unsigned long long)used, (unsigned long long)alloc,
                (unsigned long long)(alloc - used), (unsigned long long)cap);
        frugal_expert_stats es;
        if (frugal_context_expert_stats(ctx, &es))
            fprintf(stderr, "experts: %d cache slots of %d experts; %llu hits, %llu misses; %llu bytes read; "
                    "%llu read ahead on a prediction, %llu of them picked; %s, %d in flight\n",
                    es.slots, es.experts, (unsigned long long)es.hits, (unsigned long long)es.misses,
                    (unsigned long long)es.bytes_read, (unsigned long long)es.prefetched,
                    (unsigned long long)es.prefetch_used, es.io_async ? "AIO" : "blocking reads", es.io_threads);
        frugal_readings rd;
        if (use_safety && frugal_get_readings(ctx, &rd, NULL) == FRUGAL_OK) safety_print_text(stderr, &rd);
    }
    if (fflush(stdout) != 0) { cli_error("stdout: write failed"); goto done; }
    rc = 0;

done:
    free(st.tokens);
    free(st.text);
    free(ids);
    frugal_sampler_free(smpl);
    frugal_context_free(ctx);
    frugal_model_free(model);
    free(owned);
    return rc;
}
