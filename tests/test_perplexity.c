/* test_perplexity.c - an independent reference for `frugal perplexity`.
 *
 * It recomputes llama.cpp's perplexity with the public C API in the plainest way:
 * every chunk is fed ONE token at a time (no batching), and each NLL comes from a
 * double-precision log-sum-exp, so neither the tool's sub-batching nor its float
 * log-softmax is shared. Two uses:
 *   test_perplexity                       self-test (ctest): reference vs a batched
 *                                         evaluation of the same chunks, within 1e-5
 *   test_perplexity --ppl M TEXT CTX N    print the reference PPL of the first N chunks
 *                                         (test_perplexity_cli.sh compares the CLI with it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal.h"
#include "testutil.h"

typedef struct ref_state {
    frugal_model *model;
    frugal_context *ctx;
    int32_t *ids;
    int n_tok, n_vocab;
} ref_state;

/* -log p(tok) from logits, in double. */
static double nll_of(const float *l, int n, int tok) {
    double mx = l[0];
    for (int i = 1; i < n; i++) mx = l[i] > mx ? l[i] : mx;
    double s = 0;
    for (int i = 0; i < n; i++) s += exp((double)l[i] - mx);
    return mx + log(s) - (double)l[tok];
}

/* Load model + text (trailing newline dropped, BOS per metadata) with context n_ctx. */
static int ref_open(ref_state *r, const char *model, const char *text_path, int n_ctx) {
    memset(r, 0, sizeof *r);
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    if (frugal_model_load(model, &mp, &r->model, &err) != FRUGAL_OK) { fprintf(stderr, "%s\n", err.message); return -1; }
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = n_ctx;
    if (frugal_context_new(r->model, &cp, &r->ctx, &err) != FRUGAL_OK) { fprintf(stderr, "%s\n", err.message); return -1; }
    frugal_model_info info;
    frugal_model_get_info(r->model, &info);
    r->n_vocab = info.n_vocab;
    size_t len;
    char *text = tu_read_file(text_path, &len);
    if (!text) return -1;
    if (len && text[len - 1] == '\n') len--;
    r->ids = tu_malloc((len + 8) * sizeof *r->ids);
    r->n_tok = r->ids ? frugal_tokenize(r->model, text, len, 1, 0, r->ids, (int)len + 8) : -1;
    free(text);
    return r->n_tok > 0 ? 0 : -1;
}

static void ref_close(ref_state *r) {
    free(r->ids);
    frugal_context_free(r->ctx);
    frugal_model_free(r->model);
}

/* Mean NLL over the scored positions of chunks [0, n_chunks), evaluating token by
 * token (batched = 0) or the whole chunk at once (batched = 1). NAN on failure. */
static double ref_mean_nll(ref_state *r, int n_ctx, int n_chunks, int batched, long *count) {
    int32_t *chunk = tu_malloc((size_t)n_ctx * sizeof *chunk);
    if (!chunk) return NAN;
    double sum = 0;
    long n = 0;
    frugal_error err = FRUGAL_ERROR_INIT;
    for (int c = 0; c < n_chunks && (c + 1) * n_ctx <= r->n_tok; c++) {
        memcpy(chunk, r->ids + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (frugal_add_bos(r->model)) chunk[0] = frugal_token_bos(r->model);
        frugal_context_reset(r->ctx);
        if (batched && frugal_eval(r->ctx, chunk, n_ctx, 1, &err) != FRUGAL_OK) { n = 0; break; }
        for (int j = 0; j < n_ctx - 1; j++) {
            if (!batched && frugal_eval(r->ctx, chunk + j, 1, 0, &err) != FRUGAL_OK) { n = 0; break; }
            if (j < n_ctx / 2) continue;
            const float *l = frugal_get_logits(r->ctx, batched ? j : -1);
            sum += nll_of(l, r->n_vocab, r->ids[(size_t)c * n_ctx + j + 1]);
            n++;
        }
    }
    free(chunk);
    if (count) *count = n;
    return n ? sum / (double)n : NAN;
}

int main(int argc, char **argv) {
    if (argc == 6 && strcmp(argv[1], "--ppl") == 0) {
        ref_state r;
        int n_ctx = atoi(argv[4]), n_chunks = atoi(argv[5]);
        if (n_ctx < 2 || n_chunks < 1 || ref_open(&r, argv[2], argv[3], n_ctx) != 0) return 1;
        long n = 0;
        double m = ref_mean_nll(&r, n_ctx, n_chunks, 0, &n);
        ref_close(&r);
        if (!(m == m)) return 1;
        printf("%.9f %ld\n", exp(m), n);
        return 0;
    }
    const char *model = tu_shared("models/fortune-3m-f32.gguf");
    if (!model) tu_skip("shared models absent");
    char model_buf[4096];
    snprintf(model_buf, sizeof model_buf, "%s", model);
    const char *text = tu_shared("text/fortunes-val.txt");
    if (!text) tu_skip("shared text absent");
    ref_state r;
    CHECK(ref_open(&r, model_buf, text, 64) == 0);
    if (r.n_tok > 0) {
        long n1 = 0, n2 = 0;
        double a = ref_mean_nll(&r, 64, 3, 0, &n1), b = ref_mean_nll(&r, 64, 3, 1, &n2);
        CHECKF(n1 == 3 * 31 && n2 == n1, "scored %ld / %ld positions, want 93", n1, n2);
        CHECKF(fabs(a - b) < 1e-5 * fabs(a), "token-by-token %.8f vs batched %.8f", a, b);
        double ppl = exp(a);
        CHECKF(ppl > 1.0 && ppl < 512.0, "ppl %f out of range", ppl);
        printf("reference PPL (c 64, 3 chunks) = %.6f\n", ppl);
    }
    ref_close(&r);
    return tu_finish("test_perplexity");
}
