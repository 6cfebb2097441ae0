/* quant_sens.c - how much each weight matrix's quantization error costs in output
 * KL-divergence (frugal quantize --policy auto).
 *
 * Why: the chooser minimises a sum of per-tensor errors, and a plain relative weight
 * error says nothing about where the tensor sits: the same relative noise moves the
 * logits far more in the output head or a value projection than in a key projection
 * whose error is damped by the softmax. For small perturbations the KL-divergence of
 * the output is quadratic in them, so to first order it is a sum over tensors of
 * (sensitivity x relative squared error). The sensitivity of each tensor is measured
 * once: quantize only that tensor (to Q4_0, a mid-size type whose block fits almost
 * every row), run the model over the calibration text, and divide the mean KL against
 * the unperturbed run by the tensor's relative error at Q4_0. Cost: one forward pass
 * of up to SENS_TOKENS tokens per matrix.
 *
 * Without a calibration text the model's own samples (temperature 1 from BOS, fixed
 * seed) serve: they are text the model finds likely, which is what its KL is about. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "api/quant_policy.h"
#include "frugal.h"
#include "gguf/gguf.h"
#include "model/model.h"

#define SENS_TOKENS 256
#define SENS_CHUNK 256
#define SENS_MAX_FLOATS (1u << 25) /* stored base log-probabilities: 128 MiB at most */
#define SENS_REF_TYPE FR_TYPE_Q4_0

typedef struct {
    frugal_model *m;
    frugal_context *c;
    int32_t *toks;
    int nt, chunk, V;
    float *base; /* nt x V log-probabilities of the unperturbed model */
} sens_run;

/* Read and tokenize the calibration text (its first nt_max tokens). */
static int text_tokens(sens_run *s, const char *path, int nt_max, fr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fr_err_set(err, FRUGAL_E_IO, "%s: cannot open calibration text", path);
    char *text = fr_malloc(1 << 20);
    size_t len = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!text) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    text[len] = 0;
    s->toks = fr_malloc(sizeof(int32_t) * (len + 16));
    int nt = s->toks ? frugal_tokenize(s->m, text, len, 1, 0, s->toks, (int)len + 16) : INT32_MIN;
    free(text);
    if (nt == INT32_MIN) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory tokenizing %s", path);
    s->nt = nt < nt_max ? nt : nt_max;
    return FRUGAL_OK;
}

/* Sample nt_max tokens from the model itself, in chunks that each start at BOS. */
static int sample_tokens(sens_run *s, int nt_max, fr_err *err) {
    frugal_sampler_params sp;
    frugal_sampler_params_default(&sp);
    sp.temp = 1.0f;
    sp.top_k = 0;
    sp.top_p = 1.0f;
    sp.min_p = 0.0f;
    sp.repeat_penalty = 1.0f;
    sp.seed = 20261206;
    frugal_sampler *smp = frugal_sampler_new(&sp);
    s->toks = fr_malloc(sizeof(int32_t) * (size_t)nt_max);
    if (!smp || !s->toks) { frugal_sampler_free(smp); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
    int rc = FRUGAL_OK, bos = frugal_token_bos(s->m);
    for (int i = 0; i < nt_max && !rc; i++) {
        if (i % s->chunk == 0) {
            frugal_context_reset(s->c);
            s->toks[i] = bos >= 0 ? bos : 0;
        } else {
            s->toks[i] = frugal_sampler_sample(smp, frugal_get_logits(s->c, -1), s->V);
        }
        rc = frugal_eval(s->c, &s->toks[i], 1, 0, err);
    }
    frugal_sampler_free(smp);
    s->nt = nt_max;
    return rc;
}

/* Run the tokens through the model in chunks. base: store the log-probabilities;
 * else return the mean KL(base || this run) through *kl. */
static int run_tokens(sens_run *s, bool base, double *kl, fr_err *err) {
    double sum = 0.0;
    for (int off = 0; off < s->nt; off += s->chunk) {
        int k = s->nt - off < s->chunk ? s->nt - off : s->chunk;
        frugal_context_reset(s->c);
        int rc = frugal_eval(s->c, s->toks + off, k, 1, err);
        if (rc) return rc;
        for (int i = 0; i < k; i++) {
            const float *l = frugal_get_logits(s->c, i);
            float *b = s->base + (size_t)(off + i) * (size_t)s->V;
            double mx = -HUGE_VAL, z = 0.0;
            for (int v = 0; v < s->V; v++) mx = l[v] > mx ? l[v] : mx;
            for (int v = 0; v < s->V; v++) z += exp((double)l[v] - mx);
            double lse = mx + log(z);
            if (base) {
                for (int v = 0; v < s->V; v++) b[v] = (float)((double)l[v] - lse);
            } else {
                double d = 0.0;
                for (int v = 0; v < s->V; v++) d += exp((double)b[v]) * ((double)b[v] - ((double)l[v] - lse));
                sum += d;
            }
        }
    }
    if (kl) *kl = sum / (double)s->nt;
    return FRUGAL_OK;
}

/* The tensor quantized to the reference type and back into its own type, and its
 * relative (importance-weighted) squared error. NULL when that cannot be done. */
static void *perturbed_copy(const fr_policy_item *it, double *rel) {
    const fr_type_traits *in = fr_type_traits_get(it->in_type), *rt = fr_type_traits_get(SENS_REF_TYPE);
    if (!in || !in->to_float || !in->from_float || it->ne0 % rt->blck_size || it->ne0 % in->blck_size) return NULL;
    const size_t row = fr_row_size(it->in_type, it->ne0);
    uint8_t *out = fr_malloc(row * (size_t)it->nrows);
    float *w = fr_malloc(sizeof(float) * 2 * (size_t)it->ne0);
    uint8_t *q = fr_malloc(fr_row_size(SENS_REF_TYPE, it->ne0));
    double num = 0.0, den = 0.0;
    for (int64_t r = 0; out && w && q && r < it->nrows; r++) {
        float *d = w + it->ne0;
        in->to_float((const uint8_t *)it->data + (size_t)r * row, w, it->ne0);
        rt->from_float(w, q, it->ne0);
        rt->to_float(q, d, it->ne0);
        fr_policy_err_add(w, d, it->imp, it->ne0, &num, &den);
        in->from_float(d, out + (size_t)r * row, it->ne0);
    }
    free(w);
    free(q);
    if (!out || !(den > 0.0) || !(num > 0.0)) { free(out); return NULL; }
    *rel = num / den;
    return out;
}

/* The model's weight views of a tensor (two when the output head is tied). */
static int find_views(frugal_model *m, const void *data, fr_weight **views) {
    int n = 0;
    if (m->tok_embd.data == data) views[n++] = &m->tok_embd;
    if (m->output.data == data) views[n++] = &m->output;
    for (int il = 0; il < m->hp.n_layer && n < 2; il++)
        for (int j = 0; j < FR_N_LMAT && n < 2; j++)
            if (m->layers[il].mat[j].data == data) views[n++] = &m->layers[il].mat[j];
    return n;
}

/* Sensitivity of one item (0: not measured). */
static int item_sens(sens_run *s, fr_policy_item *it, fr_err *err) {
    it->sens = 0.0;
    const gguf_tensor *t = gguf_find_tensor(s->m->file, it->name);
    fr_weight *views[2];
    int nv = t ? find_views(s->m, t->data, views) : 0;
    if (!nv) return FRUGAL_OK;
    for (int v = 0; v < nv; v++)
        if (views[v]->layout != FR_LAYOUT_ROWS || views[v]->type != it->in_type) return FRUGAL_OK;
    double rel = 0.0, kl = 0.0;
    void *pert = perturbed_copy(it, &rel);
    if (!pert) return FRUGAL_OK;
    for (int v = 0; v < nv; v++) views[v]->data = pert;
    int rc = run_tokens(s, false, &kl, err);
    for (int v = 0; v < nv; v++) views[v]->data = t->data;
    free(pert);
    if (!rc && isfinite(kl)) it->sens = (kl > 0.0 ? kl : 0.0) / rel;
    return rc;
}

/* Items not measured get the median of the measured ones (1 when none was). */
static void fill_unmeasured(fr_policy_item *items, size_t n) {
    double *v = fr_malloc(sizeof(double) * (n ? n : 1));
    size_t k = 0;
    for (size_t i = 0; v && i < n; i++) if (items[i].sens > 0.0) v[k++] = items[i].sens;
    for (size_t a = 1; a < k; a++) /* insertion sort: n is the number of matrices */
        for (size_t b = a; b > 0 && v[b - 1] > v[b]; b--) { double x = v[b]; v[b] = v[b - 1]; v[b - 1] = x; }
    double med = k ? v[k / 2] : 1.0;
    for (size_t i = 0; i < n; i++) if (!(items[i].sens > 0.0)) items[i].sens = med;
    free(v);
}

int fr_policy_sensitivity(const char *model_path, const char *text_path, fr_policy_item *items, size_t n,
                          FILE *log, fr_err *err) {
    for (size_t i = 0; i < n; i++) items[i].sens = 1.0;
    const char *off = getenv("FRUGAL_POLICY_SENS");
    if (off && strcmp(off, "0") == 0) return FRUGAL_OK; /* ablation: the plain sum of relative errors */
    sens_run s = {0};
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.no_repack = 1; /* the views must be the file's rows, so a copy can stand in for them */
    int rc = frugal_model_load(model_path, &mp, &s.m, err);
    if (rc) {
        if (text_path) { fr_err_prefix(err, "--calib needs a model frugal can run"); return rc; }
        if (log) fprintf(log, "note: policy auto: cannot run the model (%s): tensors weighted equally\n", err->message);
        return FRUGAL_OK;
    }
    s.V = s.m->hp.n_vocab;
    int ctx = s.m->hp.n_ctx_train > 0 ? s.m->hp.n_ctx_train : SENS_CHUNK;
    s.chunk = ctx < SENS_CHUNK ? ctx : SENS_CHUNK;
    int nt_max = SENS_TOKENS;
    if ((size_t)nt_max * (size_t)s.V > SENS_MAX_FLOATS) nt_max = (int)(SENS_MAX_FLOATS / (size_t)s.V);
    if (nt_max < 16) nt_max = 16;
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = s.chunk;
    if ((rc = frugal_context_new(s.m, &cp, &s.c, err))) goto done;
    rc = text_path ? text_tokens(&s, text_path, nt_max, err) : sample_tokens(&s, nt_max, err);
    if (rc) goto done;
    if (s.nt < 2) { rc = fr_err_set(err, FRUGAL_E_INVALID_ARG, "%s: calibration text is too short", text_path); goto done; }
    s.base = fr_malloc(sizeof(float) * (size_t)s.nt * (size_t)s.V);
    if (!s.base) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for the sensitivity run"); goto done; }
    if ((rc = run_tokens(&s, true, NULL, err))) goto done;
    size_t measured = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        rc = item_sens(&s, &items[i], err);
        measured += items[i].sens > 0.0;
    }
    if (rc) goto done;
    fill_unmeasured(items, n);
    if (log) fprintf(log, "sensitivity: %d tokens of %s, KL per unit of relative error measured for %zu of %zu matrices\n",
                     s.nt, text_path ? text_path : "the model's own samples", measured, n);
done:
    free(s.base);
    free(s.toks);
    frugal_context_free(s.c);
    frugal_model_free(s.m);
    return rc;
}
