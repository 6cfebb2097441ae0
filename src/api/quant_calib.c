/* quant_calib.c - importance of each input channel of each weight matrix, from
 * running the model over calibration text (frugal quantize --policy auto --calib F).
 *
 * Why mean squared activation: a matmul's output error from a weight error e is
 * sum_j e_j x_j; over inputs with uncorrelated channels its expected square is
 * sum_j e_j^2 E[x_j^2]. So weighting each column's squared quantization error by
 * E[x_j^2] measures the error the layer's output actually sees. */
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "api/quant_policy.h"
#include "frugal.h"
#include "model/model.h"

/* llama-imatrix reads its whole text; 64 Ki tokens bounds the run on a big model */
#define CALIB_MAX_TOKENS 65536
#define CALIB_CHUNK 512

typedef struct {
    const void **ptrs;   /* model weight data pointer of each item (NULL: not in the model) */
    double **sums;       /* per item: ne0 sums of x^2 */
    uint64_t *rows;      /* per item: rows observed */
    size_t n;
} calib_acc;

static void on_matmul(void *user, const void *wdata, const float *x, int n_tok, int64_t n_in) {
    calib_acc *a = user;
    for (size_t k = 0; k < a->n; k++) {
        if (a->ptrs[k] != wdata) continue;
        for (int t = 0; t < n_tok; t++)
            for (int64_t j = 0; j < n_in; j++) {
                double v = x[(size_t)t * n_in + j];
                a->sums[k][j] += v * v;
            }
        a->rows[k] += (uint64_t)n_tok;
        return;
    }
}

int fr_calib_importance(const char *model_path, const char *text_path, fr_policy_item *items, size_t n,
                        FILE *log, fr_err *err) {
    frugal_model *m = NULL;
    frugal_context *c = NULL;
    int32_t *toks = NULL;
    char *text = NULL;
    calib_acc a = {0};
    int rc = FRUGAL_OK;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    rc = frugal_model_load(model_path, &mp, &m, err);
    if (rc) { fr_err_prefix(err, "--calib needs a model frugal can run"); return rc; }
    FILE *f = fopen(text_path, "rb");
    if (!f) { rc = fr_err_set(err, FRUGAL_E_IO, "%s: cannot open calibration text", text_path); goto done; }
    text = fr_malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); goto done; }
    text[len] = 0;
    /* a token covers at least one byte: len + a few (BOS, space prefix) always fits */
    toks = fr_malloc(sizeof(int32_t) * (len + 16));
    int nt = toks ? frugal_tokenize(m, text, len, 1, 0, toks, (int)len + 16) : INT32_MIN;
    if (nt == INT32_MIN) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "%s: tokenizing the calibration text: out of memory", text_path); goto done; }
    if (nt > CALIB_MAX_TOKENS) nt = CALIB_MAX_TOKENS;
    if (nt < 2) { rc = fr_err_set(err, FRUGAL_E_INVALID_ARG, "%s: calibration text is too short", text_path); goto done; }

    a.n = n;
    a.ptrs = fr_calloc(n, sizeof *a.ptrs);
    a.sums = fr_calloc(n, sizeof *a.sums);
    a.rows = fr_calloc(n, sizeof *a.rows);
    if (!a.ptrs || !a.sums || !a.rows) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); goto done; }
    /* the model maps the file itself: match its tensors to the items by name */
    for (size_t k = 0; k < n; k++) {
        const gguf_tensor *t = gguf_find_tensor(m->file, items[k].name);
        a.ptrs[k] = t ? t->data : NULL;
        a.sums[k] = fr_calloc((size_t)items[k].ne0, sizeof(double));
        if (!a.sums[k]) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); goto done; }
    }
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    /* chunks no longer than the trained context: positions past it give activations
     * the model never produces in use */
    const int chunk = m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < CALIB_CHUNK ? m->hp.n_ctx_train : CALIB_CHUNK;
    cp.n_ctx = chunk;
    if ((rc = frugal_context_new(m, &cp, &c, err))) goto done;
    c->act_hook = on_matmul;
    c->act_user = &a;
    for (int done = 0; done < nt && !rc; done += chunk) {
        frugal_context_reset(c);
        int k = nt - done < chunk ? nt - done : chunk;
        rc = frugal_eval(c, toks + done, k, 1, err); /* all logits: the output head sees every row */
    }
    if (rc) goto done;
    size_t matched = 0;
    for (size_t k = 0; k < n; k++) {
        if (!a.rows[k]) continue; /* never used as a matmul (e.g. untied token_embd): uniform */
        float *imp = fr_malloc(sizeof(float) * (size_t)items[k].ne0);
        if (!imp) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); goto done; }
        double mean = 0;
        for (int64_t j = 0; j < items[k].ne0; j++) mean += a.sums[k][j] / (double)a.rows[k];
        mean /= (double)items[k].ne0;
        /* normalised to mean 1, with a floor so a dead channel still counts a little */
        for (int64_t j = 0; j < items[k].ne0; j++) {
            double v = a.sums[k][j] / (double)a.rows[k] / (mean > 0 ? mean : 1.0);
            imp[j] = (float)(v > 1e-3 ? v : 1e-3);
        }
        items[k].imp = imp;
        matched++;
    }
    if (log) fprintf(log, "calibration: %d tokens of %s, importance for %zu of %zu matrices\n", nt, text_path,
                     matched, n);
done:
    for (size_t k = 0; a.sums && k < n; k++) free(a.sums[k]);
    free(a.sums);
    free(a.ptrs);
    free(a.rows);
    free(toks);
    free(text);
    frugal_context_free(c);
    frugal_model_free(m);
    return rc;
}
