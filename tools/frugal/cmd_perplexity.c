/* cmd_perplexity.c - `frugal perplexity`: perplexity of a model on a text, computed
 * exactly as llama.cpp's perplexity tool does, plus KL-divergence against a saved
 * base run (llama.cpp's --kl-divergence).
 *
 * Method (llama.cpp tools/perplexity/perplexity.cpp, perplexity()): the whole text is
 * tokenized once with BOS as the model's metadata says (special-token text is not
 * parsed), cut into n_chunk = n_tokens / n_ctx windows of n_ctx tokens; each window
 * is evaluated from an empty KV cache with its first token replaced by BOS (when the
 * model adds BOS), and only the second half is scored: for j in [n_ctx/2, n_ctx-2],
 * -log softmax(logits_j)[token_{j+1}], i.e. n_ctx - 1 - n_ctx/2 positions per window.
 * The log-softmax is llama.cpp's: float max, double sum of expf(l - max).
 * PPL = exp(mean NLL); its +/- is PPL * the standard error of the mean NLL.
 *
 * Log-prob file (--save-logits / --kl-base), all little-endian:
 *   0  char[8]  magic "FRLGPROB"
 *   8  u32      version (1)
 *  12  u32      element type: 0 = F32, 1 = F16
 *  16  u32      n_vocab
 *  20  u32      n_ctx
 *  24  u32      n_chunks
 *  28  u32      scored positions per chunk (n_ctx - 1 - n_ctx/2)
 *  32  u64      n_positions (= n_chunks * scored per chunk)
 *  40  u64      FNV-1a 64 hash of the token array below
 *  48  i32      tokens[n_chunks * n_ctx] (as in the text, before the BOS replacement)
 *   .  rows, n_positions of them, chunk by chunk, each: i32 top-1 token id (argmax of
 *            the logits, kept exactly so F16 rounding cannot flip near-ties), then
 *            n_vocab log-softmax values
 * The file size must be exactly what the header implies. F16 (the default) halves the
 * size; its relative precision is 2^-11, so a log-prob of -2 is stored to within
 * ~1e-3. Both distributions are renormalised in double before the KL sum, which
 * cancels the first-order effect of that rounding: a run against its own F16 file
 * gives KL around 1e-7, against its own F32 file exactly 0. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "args.h"
#include "progress.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal perplexity -m MODEL -f TEXT [flags]\n\n"
            "Perplexity as llama.cpp's perplexity tool computes it: the text is cut into chunks\n"
            "of n_ctx tokens, each evaluated from an empty cache (first token -> BOS), and the\n"
            "second half of each chunk is scored. Prints the running PPL per chunk and a final\n"
            "\"PPL = x +/- y\".\n\n"
            "  -m, --model M          GGUF model\n"
            "  -f, --file F           text file\n"
            "  -c, --ctx-size N       chunk / context size (default 0: the model's, at most 4096)\n"
            "  -t, --threads N        threads (default 0: all cores)\n"
            "  --chunks N             score at most N chunks (default: all)\n"
            "  --kv-type T            KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  --kv-policy P          window:W[,sinks:S] or summary:CHUNK[,keep:N][,slots:S] (see frugal run)\n"
            "  -ngl, --gpu-layers N   the last N layers' matrices on the GPU (Vulkan; -1: all);\n"
            "                         N > layers also the output matrix; no device: an error\n"
            "  --vram SIZE            device memory the layers may use (K/M/G); alone: -ngl -1\n"
            "  --no-repack            keep the weights in the file mapping (zero-copy)\n"
            "  --save-logits FILE     save the scored positions' log-probs (and the tokens)\n"
            "  --logits-type T        element type of that file: f16 (default) or f32\n"
            "  --kl-base FILE         compare with a saved run: mean KL(base || this) per position,\n"
            "                         and how often both have the same top-1 token\n"
            "  --json                 print one JSON object: ppl, ppl_err, tokens (scored), chunks,\n"
            "                         and with --kl-base: kld, kld_err, top1, top1_err (percent)\n"
            "  --progress             a progress line per 10 %% on stderr (default: a bar when\n"
            "                         stderr is a terminal, nothing otherwise)\n");
}

/* ------------------------------------------------------------------ log-prob files */

#define LP_MAGIC "FRLGPROB"
#define LP_VERSION 1u
#define LP_HEADER 48

typedef struct lp_header {
    uint32_t version, elem, n_vocab, n_ctx, n_chunks, per_chunk;
    uint64_t n_positions, hash;
} lp_header;

static uint64_t fnv1a(const int32_t *t, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        for (int b = 0; b < 4; b++) {
            h ^= ((uint32_t)t[i] >> (8 * b)) & 0xFF;
            h *= 0x100000001b3ull;
        }
    return h;
}

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* Bytes the header implies, or 0 on overflow. */
static uint64_t lp_expected_size(const lp_header *h) {
    uint64_t es = h->elem == 0 ? 4 : 2;
    uint64_t ntok = (uint64_t)h->n_chunks * h->n_ctx;
    if (h->n_vocab && h->n_positions > UINT64_MAX / 4 / h->n_vocab) return 0;
    return LP_HEADER + ntok * 4 + h->n_positions * (4 + h->n_vocab * es);
}

/* A log-prob file being written: a temp file beside the target (frugal_outfile:
 * exclusive, synced, removed on errors and signals), renamed by lp_writer_finish. */
typedef struct lp_writer {
    frugal_outfile *f;
    int elem;
    void *row;  /* one row in the element type */
} lp_writer;

static int lp_put(lp_writer *w, const void *p, size_t n) {
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_outfile_write(w->f, p, n, &err) == FRUGAL_OK) return 0;
    cli_error("--save-logits: %s", err.message);
    return -1;
}

/* Create the temp file and write header + tokens. 0 or prints the error and returns -1. */
static int lp_writer_open(lp_writer *w, const char *path, const lp_header *h, const int32_t *tokens) {
    memset(w, 0, sizeof *w);
    w->elem = (int)h->elem;
    w->row = malloc((size_t)h->n_vocab * 4);
    if (!w->row) { cli_error("--save-logits: out of memory"); return -1; }
    frugal_error err = FRUGAL_ERROR_INIT;
    w->f = frugal_outfile_open(path, &err);
    if (!w->f) { cli_error("--save-logits: %s", err.message); return -1; }
    uint8_t hb[LP_HEADER];
    memcpy(hb, LP_MAGIC, 8);
    put_u32(hb + 8, h->version); put_u32(hb + 12, h->elem); put_u32(hb + 16, h->n_vocab);
    put_u32(hb + 20, h->n_ctx); put_u32(hb + 24, h->n_chunks); put_u32(hb + 28, h->per_chunk);
    put_u64(hb + 32, h->n_positions); put_u64(hb + 40, h->hash);
    size_t ntok = (size_t)h->n_chunks * h->n_ctx;
    return lp_put(w, hb, sizeof hb) || lp_put(w, tokens, ntok * 4) ? -1 : 0;
}

/* Append one row: the top-1 id and n log-probs. 0 or prints the error and returns -1. */
static int lp_writer_row(lp_writer *w, int32_t top1, const float *lp, int n) {
    if (w->elem == 1) frugal_f32_to_f16_row(lp, w->row, (size_t)n);
    else memcpy(w->row, lp, (size_t)n * 4);
    size_t es = w->elem == 1 ? 2 : 4;
    return lp_put(w, &top1, 4) || lp_put(w, w->row, es * (size_t)n) ? -1 : 0;
}

/* On success sync and rename over the final path, else remove the temp file. */
static int lp_writer_finish(lp_writer *w, int ok) {
    int rc = ok ? 0 : -1;
    if (w->f) {
        frugal_error err = FRUGAL_ERROR_INIT;
        if (!ok) frugal_outfile_abort(w->f);
        else if (frugal_outfile_commit(w->f, &err) != FRUGAL_OK) {
            cli_error("--save-logits: %s", err.message);
            rc = -1;
        }
        w->f = NULL;
    }
    free(w->row);
    w->row = NULL;
    return rc;
}

/* A base file opened for reading: header validated, tokens loaded, rows read in order. */
typedef struct lp_reader {
    FILE *f;
    const char *path;
    lp_header h;
    int32_t *tokens;
    void *row;
} lp_reader;

/* Open and validate a base file against this run's n_vocab and n_ctx. Prints a
 * one-line error naming the file and the problem and returns -1 on any mismatch. */
static int lp_reader_open(lp_reader *r, const char *path, int n_vocab, int n_ctx) {
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "rb");
    if (!r->f) { cli_error("%s: %s", path, strerror(errno)); return -1; }
    struct stat sb;
    uint8_t hb[LP_HEADER];
    if (fstat(fileno(r->f), &sb) != 0) { cli_error("%s: %s", path, strerror(errno)); return -1; }
    if (fread(hb, 1, sizeof hb, r->f) != sizeof hb) {
        cli_error("%s: truncated: shorter than the %d-byte header", path, LP_HEADER);
        return -1;
    }
    if (memcmp(hb, LP_MAGIC, 8) != 0) { cli_error("%s: not a frugal log-prob file (bad magic)", path); return -1; }
    lp_header *h = &r->h;
    h->version = get_u32(hb + 8); h->elem = get_u32(hb + 12); h->n_vocab = get_u32(hb + 16);
    h->n_ctx = get_u32(hb + 20); h->n_chunks = get_u32(hb + 24); h->per_chunk = get_u32(hb + 28);
    h->n_positions = get_u64(hb + 32); h->hash = get_u64(hb + 40);
    if (h->version != LP_VERSION) { cli_error("%s: unsupported version %u (want %u)", path, h->version, LP_VERSION); return -1; }
    if (h->elem > 1) { cli_error("%s: unknown element type %u", path, h->elem); return -1; }
    if ((int64_t)h->n_vocab != n_vocab) {
        cli_error("%s: made with a vocabulary of %u tokens, this model has %d", path, h->n_vocab, n_vocab);
        return -1;
    }
    if ((int64_t)h->n_ctx != n_ctx) {
        cli_error("%s: made with -c %u, this run uses -c %d (use the same context size)", path, h->n_ctx, n_ctx);
        return -1;
    }
    if (h->n_ctx < 2 || h->per_chunk != h->n_ctx - 1 - h->n_ctx / 2 || h->n_chunks == 0 ||
        h->n_positions != (uint64_t)h->n_chunks * h->per_chunk || h->n_chunks > INT_MAX / h->n_ctx) {
        cli_error("%s: inconsistent header (chunks %u, positions %llu)", path, h->n_chunks,
                  (unsigned long long)h->n_positions);
        return -1;
    }
    uint64_t want = lp_expected_size(h);
    if (want == 0 || (uint64_t)sb.st_size != want) {
        cli_error("%s: %s: %lld bytes, the header implies %llu", path,
                  (uint64_t)sb.st_size < want ? "truncated" : "wrong size", (long long)sb.st_size,
                  (unsigned long long)want);
        return -1;
    }
    size_t ntok = (size_t)h->n_chunks * h->n_ctx;
    r->tokens = malloc(ntok * 4);
    r->row = malloc((size_t)h->n_vocab * 4);
    if (!r->tokens || !r->row) { cli_error("%s: out of memory", path); return -1; }
    if (fread(r->tokens, 4, ntok, r->f) != ntok) { cli_error("%s: truncated token array", path); return -1; }
    if (fnv1a(r->tokens, ntok) != h->hash) { cli_error("%s: corrupted: the token hash does not match", path); return -1; }
    return 0;
}

/* Read the next row: *top1 and lp (n_vocab floats). 0, or prints the error and returns -1. */
static int lp_reader_row(lp_reader *r, int32_t *top1, float *lp) {
    size_t n = r->h.n_vocab, es = r->h.elem == 1 ? 2 : 4;
    if (fread(top1, 4, 1, r->f) != 1 || fread(r->row, es, n, r->f) != n) {
        cli_error("%s: truncated log-prob data", r->path);
        return -1;
    }
    if (es == 2) frugal_f16_to_f32_row(r->row, lp, n);
    else memcpy(lp, r->row, n * 4);
    return 0;
}

static void lp_reader_close(lp_reader *r) {
    if (r->f) fclose(r->f);
    free(r->tokens);
    free(r->row);
    memset(r, 0, sizeof *r);
}

/* ------------------------------------------------------------------ scoring */

typedef struct ppl_acc {
    double nll, nll2;       /* sums of NLL and NLL^2 over scored positions */
    double kld, kld2;       /* sums of per-position KL(base || this) and its square */
    long count, same_top1;
} ppl_acc;

/* llama.cpp's log_softmax: fills lp[i] = logits[i] - max - log(sum) and returns the
 * log-prob of tok; *argmax gets the first index of the largest logit. */
static double log_softmax(const float *logits, int n, int tok, float *lp, int *argmax) {
    float mx = logits[0];
    int am = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > mx) { mx = logits[i]; am = i; }
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += expf(logits[i] - mx);
    float lse = (float)log(sum);
    if (lp)
        for (int i = 0; i < n; i++) lp[i] = logits[i] - mx - lse;
    *argmax = am;
    return (double)(logits[tok] - mx) - log(sum);
}

/* log(sum(exp(x))) over n log-probs, in double. */
static double lse_d(const float *x, int n) {
    double mx = x[0], s = 0.0;
    for (int i = 1; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    for (int i = 0; i < n; i++) s += exp((double)x[i] - mx);
    return mx + log(s);
}

/* KL(base || cur) for one position. Both are renormalised in double (the base may
 * come from F16, and float log-softmax values sum to 1 only within rounding), so
 * identical inputs give exactly 0. */
static double kl_div(const float *base, const float *cur, int n) {
    double lb0 = lse_d(base, n), lc0 = lse_d(cur, n), kl = 0.0;
    for (int i = 0; i < n; i++) {
        double lb = (double)base[i] - lb0;
        kl += exp(lb) * (lb - ((double)cur[i] - lc0));
    }
    return kl > 0 ? kl : 0.0; /* rounding can leave -1e-17 for near-identical inputs */
}

/* ------------------------------------------------------------------ the command */

static void print_json_or_text(int json, const ppl_acc *a, int n_chunk, int have_base) {
    double n = (double)a->count;
    double mean = a->nll / n, ppl = exp(mean);
    double var = a->nll2 / n - mean * mean;
    double ppl_err = (var > 0 && a->count > 1) ? ppl * sqrt(var / (n - 1)) : 0.0;
    double kld = 0, kld_err = 0, top1 = 0, top1_err = 0;
    if (have_base) {
        kld = a->kld / n;
        double kv = a->kld2 / n - kld * kld;
        kld_err = (kv > 0 && a->count > 1) ? sqrt(kv / (n - 1)) : 0.0;
        double p = (double)a->same_top1 / n;
        top1 = 100.0 * p;
        top1_err = a->count > 1 ? 100.0 * sqrt(p * (1 - p) / (n - 1)) : 0.0;
    }
    if (json) {
        printf("{\"ppl\": %.6f, \"ppl_err\": %.6f, \"tokens\": %ld, \"chunks\": %d", ppl, ppl_err, a->count, n_chunk);
        if (have_base)
            printf(", \"kld\": %.9g, \"kld_err\": %.9g, \"top1\": %.4f, \"top1_err\": %.4f", kld, kld_err, top1, top1_err);
        printf("}\n");
    } else {
        printf("Final estimate: PPL = %.4f +/- %.5f\n", ppl, ppl_err);
        if (have_base)
            printf("KL divergence: mean %.6g +/- %.6g, same top-1: %.3f +/- %.3f %%\n", kld, kld_err, top1, top1_err);
    }
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_path = NULL, *file = NULL, *save_path = NULL, *base_path = NULL;
    const char *kv_str = "f16", *lt_str = "f16", *kv_policy = NULL;
    int n_ctx = 0, n_threads = 0, json = 0, max_chunks = 0, no_repack = 0, progress_lines = 0;
    int ngl = 0; /* GPU flags (args.h) */
    const char *vram_str = NULL;
    const opt opts[] = {
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {"-f", "--file", OPT_STR, &file, 0, 0},
        {"-c", "--ctx-size", OPT_INT, &n_ctx, 0, 1 << 20},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {NULL, "--chunks", OPT_INT, &max_chunks, 1, INT_MAX},
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {NULL, "--kv-policy", OPT_STR, &kv_policy, 0, 0},
        {NULL, "--no-repack", OPT_FLAG, &no_repack, 0, 0},
        CLI_GPU_OPTS(ngl, vram_str),
        {NULL, "--save-logits", OPT_STR, &save_path, 0, 0},
        {NULL, "--logits-type", OPT_STR, &lt_str, 0, 0},
        {NULL, "--kl-base", OPT_STR, &base_path, 0, 0},
        {NULL, "--json", OPT_FLAG, &json, 0, 0},
        {NULL, "--progress", OPT_FLAG, &progress_lines, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    frugal_model_params gpu;
    if (cli_gpu_options(ngl, vram_str, &gpu) != 0) return EXIT_USAGE;
    if (!model_path) { cli_error("perplexity: -m MODEL is required"); return EXIT_USAGE; }
    if (!file) { cli_error("perplexity: -f TEXT is required"); return EXIT_USAGE; }
    frugal_context_params policy;
    frugal_context_params_default(&policy);
    if (cli_kv_options(kv_str, kv_policy, &policy) != 0) return EXIT_USAGE;
    uint32_t lp_elem;
    if (strcmp(lt_str, "f16") == 0) lp_elem = 1;
    else if (strcmp(lt_str, "f32") == 0) lp_elem = 0;
    else { cli_error("--logits-type: '%s' is not f16 or f32", lt_str); return EXIT_USAGE; }
    if (n_ctx == 1) { cli_error("perplexity: -c must be at least 2"); return EXIT_USAGE; }

    int rc = 1, have_base = base_path != NULL;
    frugal_model *model = NULL;
    frugal_context *ctx = NULL;
    int32_t *ids = NULL, *batch = NULL;
    float *lp = NULL, *blp = NULL;
    lp_writer lw = {0};
    lp_reader lr = {0};
    int writing = 0;
    ppl_acc acc = {0};
    frugal_error err = FRUGAL_ERROR_INIT;

    size_t tlen;
    char *text = cli_read_file(file, &tlen);
    if (!text) return 1;
    if (tlen && text[tlen - 1] == '\n') text[--tlen] = '\0'; /* as llama.cpp's -f does */

    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads;
    mp.no_repack = no_repack;
    mp.n_gpu_layers = gpu.n_gpu_layers, mp.vram_budget = gpu.vram_budget, mp.gpu_stream = gpu.gpu_stream;
    progress_library(progress_lines);
    if (frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) { cli_error("%s", err.message); goto done; }
    frugal_context_params cp = policy; /* defaults + the KV flags */
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    if (frugal_context_new(model, &cp, &ctx, &err) != FRUGAL_OK) { cli_error("%s: %s", model_path, err.message); goto done; }
    /* a window or a summary with its own slot count makes the cache smaller than the
     * scoring window (-c): keep -c */
    if (!((policy.kv_window || policy.kv_slots) && n_ctx > 0)) n_ctx = frugal_context_n_ctx(ctx);
    frugal_model_info info;
    frugal_model_get_info(model, &info);
    int n_vocab = info.n_vocab;

    /* tokenize the whole text: BOS per metadata, special-token text not parsed */
    int cap = (int)(tlen < (size_t)INT_MAX / 2 ? tlen : (size_t)INT_MAX / 2) + 8;
    ids = malloc((size_t)cap * sizeof *ids);
    int n_tok = ids ? frugal_tokenize(model, text, tlen, 1, 0, ids, cap) : INT_MIN;
    if (ids && n_tok < 0 && n_tok != INT_MIN) {
        cap = -n_tok;
        int32_t *more = realloc(ids, (size_t)cap * sizeof *ids);
        if (more) ids = more;
        n_tok = more ? frugal_tokenize(model, text, tlen, 1, 0, ids, cap) : INT_MIN;
    }
    if (!ids || n_tok < 0) { cli_error("%s: tokenizing the text failed", file); goto done; }
    if (n_tok < 2 * n_ctx) {
        cli_error("perplexity: %s has %d tokens; at least 2*n_ctx = %d are needed (lower -c)", file, n_tok, 2 * n_ctx);
        goto done;
    }
    int n_chunk = n_tok / n_ctx;
    if (max_chunks > 0 && max_chunks < n_chunk) n_chunk = max_chunks;
    const int first = n_ctx / 2, per_chunk = n_ctx - 1 - first;

    if (have_base) {
        if (lp_reader_open(&lr, base_path, n_vocab, n_ctx) != 0) goto done;
        if ((int64_t)lr.h.n_chunks < n_chunk) {
            if (max_chunks > 0) {
                cli_error("%s: holds %u chunks, %d asked for", base_path, lr.h.n_chunks, n_chunk);
                goto done;
            }
            n_chunk = (int)lr.h.n_chunks; /* compare what the base has */
        }
        for (size_t i = 0; i < (size_t)n_chunk * n_ctx; i++)
            if (lr.tokens[i] != ids[i]) {
                cli_error("%s: token %zu differs (%d vs %d): made from another text or tokenizer", base_path, i,
                          lr.tokens[i], ids[i]);
                goto done;
            }
    }
    lp = malloc((size_t)n_vocab * sizeof *lp);
    blp = malloc((size_t)n_vocab * sizeof *blp);
    batch = malloc((size_t)n_ctx * sizeof *batch);
    if (!lp || !blp || !batch) { cli_error("perplexity: out of memory"); goto done; }
    if (save_path) {
        lp_header h = {LP_VERSION, lp_elem, (uint32_t)n_vocab, (uint32_t)n_ctx, (uint32_t)n_chunk,
                       (uint32_t)per_chunk, (uint64_t)n_chunk * (uint64_t)per_chunk,
                       fnv1a(ids, (size_t)n_chunk * n_ctx)};
        writing = 1;
        if (lp_writer_open(&lw, save_path, &h, ids) != 0) goto done;
    }
    if (!json)
        fprintf(stderr, "perplexity: %d tokens, %d chunks of %d, scoring %d positions each\n", n_tok, n_chunk,
                n_ctx, per_chunk);
    FILE *prog = json ? stderr : stdout;
    const int add_bos = frugal_add_bos(model);
    const int32_t bos = frugal_token_bos(model);
    /* evaluate in sub-batches so logits never need more than 512 x n_vocab floats */
    const int n_batch = n_ctx < 512 ? n_ctx : 512;

    cli_progress pb;
    progress_init(&pb, "perplexity", (uint64_t)n_chunk, progress_lines);
    /* on a terminal the bar replaces the running "[i]ppl," values (both would share
     * the screen line); redirected output keeps them */
    const int quiet_chunks = pb.mode == PROGRESS_BAR && isatty(fileno(prog));
    for (int c = 0; c < n_chunk; c++) {
        const int32_t *chunk = ids + (size_t)c * n_ctx;
        memcpy(batch, chunk, (size_t)n_ctx * sizeof *batch);
        if (add_bos && bos >= 0) batch[0] = bos;
        frugal_context_reset(ctx);
        for (int b = 0; b < n_ctx; b += n_batch) {
            int nb = n_ctx - b < n_batch ? n_ctx - b : n_batch;
            if (frugal_eval(ctx, batch + b, nb, 1, &err) != FRUGAL_OK) {
                cli_error("%s: %s", model_path, err.message);
                goto done;
            }
            /* score positions j in [first, n_ctx-2] that lie in this sub-batch */
            int lo = b > first ? b : first, hi = b + nb < n_ctx - 1 ? b + nb : n_ctx - 1;
            for (int j = lo; j < hi; j++) {
                const float *logits = frugal_get_logits(ctx, j - b);
                int am;
                int32_t bam;
                double lpt = log_softmax(logits, n_vocab, chunk[j + 1], (writing || have_base) ? lp : NULL, &am);
                acc.nll -= lpt;
                acc.nll2 += lpt * lpt;
                acc.count++;
                if (writing && lp_writer_row(&lw, am, lp, n_vocab) != 0) goto done;
                if (have_base) {
                    if (lp_reader_row(&lr, &bam, blp) != 0) goto done;
                    double kl = kl_div(blp, lp, n_vocab);
                    acc.kld += kl;
                    acc.kld2 += kl * kl;
                    acc.same_top1 += bam == am;
                }
            }
        }
        if (!quiet_chunks) {
            fprintf(prog, "[%d]%.4f,", c + 1, exp(acc.nll / (double)acc.count));
            fflush(prog);
        }
        progress_update(&pb, (uint64_t)c + 1, NULL);
    }
    progress_finish(&pb);
    if (!quiet_chunks) fputc('\n', prog);
    double secs = progress_elapsed(&pb);
    if (writing) {
        writing = 0;
        if (lp_writer_finish(&lw, 1) != 0) goto done;
    }
    print_json_or_text(json, &acc, n_chunk, have_base);
    if (fflush(stdout) != 0) { cli_error("stdout: write failed"); goto done; }
    fprintf(stderr, "perplexity: %d chunks of %d tokens (%ld scored) in %.2f s, %.1f tok/s\n", n_chunk, n_ctx,
            acc.count, secs, secs > 0 ? (double)n_chunk * n_ctx / secs : 0.0);
    rc = 0;

done:
    if (writing) lp_writer_finish(&lw, 0); /* removes the partial temp file */
    lp_reader_close(&lr);
    free(lp);
    free(blp);
    free(batch);
    free(ids);
    frugal_context_free(ctx);
    frugal_model_free(model);
    free(text);
    return rc;
}
