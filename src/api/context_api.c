/* context_api.c - public API: contexts (KV cache + scratch), evaluation, generation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frugal.h"
#include "mem/alloc.h"
#include "model/model.h"

#define FR_MAX_UBATCH 512

void frugal_context_params_default(frugal_context_params *p) {
    memset(p, 0, sizeof *p);
    p->kv_type = FRUGAL_KV_F16;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

/* Lay out every scratch buffer in one accounted block. */
static int alloc_scratch(frugal_context *c, fr_err *err) {
    const frugal_model *m = c->model;
    const fr_hparams *hp = &m->hp;
    size_t B = (size_t)c->n_ubatch;
    size_t d = (size_t)hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim,
           kvd = (size_t)hp->n_head_kv * hp->head_dim, ff = (size_t)hp->n_ff;
    size_t qbuf = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const fr_layer *L = &m->layers[il];
        const fr_weight *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < sizeof ws / sizeof *ws; i++) qbuf = max_sz(qbuf, fr_matmul_scratch(ws[i], (int)B));
    }
    qbuf = max_sz(qbuf, fr_matmul_scratch(&m->output, (int)B));
    size_t floats[] = {B * d, B * d, B * qd, B * kvd, B * kvd, B * qd, B * ff, B * ff,
                       (size_t)fr_pool_size(c->pool) * (size_t)c->n_ctx};
    float **ptrs[] = {&c->x, &c->xb, &c->q, &c->k, &c->v, &c->att, &c->hg, &c->hu, &c->att_scores};
    size_t total = 0;
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) total += (floats[i] * 4 + 63) & ~(size_t)63;
    total += qbuf + 64;
    c->scratch = fr_mem_alloc(FR_MEM_SCRATCH, total);
    if (!c->scratch) return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %zu MiB of scratch", total >> 20);
    c->scratch_bytes = total;
    uint8_t *p = c->scratch;
    for (size_t i = 0; i < sizeof floats / sizeof *floats; i++) {
        *ptrs[i] = (float *)p;
        p += (floats[i] * 4 + 63) & ~(size_t)63;
    }
    c->qbuf = p;
    return FRUGAL_OK;
}

int frugal_context_new(frugal_model *model, const frugal_context_params *params,
                       frugal_context **out, frugal_error *err) {
    if (out) *out = NULL;
    if (!model || !out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_context_new: NULL argument");
    frugal_context_params defaults;
    if (!params) { frugal_context_params_default(&defaults); params = &defaults; }
    if (model->vocab_only)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "%s: loaded vocabulary-only, cannot evaluate", model->path);
    if (params->n_ctx < 0 || params->n_ctx > (1 << 24))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "context length %d out of range", params->n_ctx);

    frugal_context *c = calloc(1, sizeof *c);
    if (!c) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    c->model = model;
    c->n_ctx = params->n_ctx > 0 ? params->n_ctx
                                 : (model->hp.n_ctx_train < 4096 ? model->hp.n_ctx_train : 4096);
    if (params->kv_window > 0) {
        if (params->kv_sinks < 0 || params->kv_window < 8 || params->kv_sinks > (1 << 20)) {
            free(c);
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "KV window must be >= 8 tokens and sinks >= 0");
        }
        c->kv_window = params->kv_window;
        c->kv_sinks = params->kv_sinks;
        c->n_ctx = params->kv_window + params->kv_sinks;
    } else if (params->kv_chunk > 0) {
        if (params->kv_chunk < 2 || params->kv_keep < 0 || c->n_ctx < params->kv_keep + 2 * params->kv_chunk) {
            free(c);
            return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                              "summary policy: need chunk >= 2 and a context of at least keep + 2*chunk tokens");
        }
        c->kv_chunk = params->kv_chunk;
        c->kv_keep = params->kv_keep;
    }
    c->n_ubatch = c->n_ctx < FR_MAX_UBATCH ? c->n_ctx : FR_MAX_UBATCH;
    int nt = params->n_threads > 0 ? params->n_threads : model->n_threads;
    c->pool = fr_pool_new(nt);
    int rc = c->pool ? FRUGAL_OK : fr_err_set(err, FRUGAL_E_NOMEM, "cannot create threads");
    if (!rc)
        rc = fr_kv_init(&c->kv, params->kv_type, model->hp.n_layer, c->n_ctx,
                        model->hp.n_head_kv * model->hp.head_dim, model->hp.head_dim, err);
    if (!rc) rc = alloc_scratch(c, err);
    if (rc) {
        frugal_context_free(c);
        return rc;
    }
    *out = c;
    return FRUGAL_OK;
}

void frugal_context_free(frugal_context *c) {
    if (!c) return;
    fr_kv_free(&c->kv);
    fr_mem_free(FR_MEM_SCRATCH, c->scratch, c->scratch_bytes);
    fr_mem_free(FR_MEM_SCRATCH, c->logits, c->logits_cap * sizeof(float));
    fr_pool_free(c->pool);
    free(c);
}

int frugal_context_n_ctx(const frugal_context *c) { return c->n_ctx; }
uint64_t frugal_context_kv_bytes(const frugal_context *c) { return c->kv.bytes; }
double frugal_context_kv_bytes_per_token(const frugal_context *c) {
    return c->n_ctx ? (double)c->kv.bytes / c->n_ctx : 0.0;
}
int frugal_context_pos(const frugal_context *c) { return c->kv.n; }
void frugal_context_reset(frugal_context *c) { c->kv.n = 0; c->n_logits = 0; c->n_summary = 0; }

int frugal_eval(frugal_context *c, const int32_t *tokens, int n, int logits_all, frugal_error *err) {
    if (!c || (!tokens && n > 0) || n < 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_eval: bad arguments");
    if (n == 0) return FRUGAL_OK;
    if (n > c->n_ctx - c->kv.n && !c->kv_window && !c->kv_chunk)
        return fr_err_set(err, FRUGAL_E_CONTEXT_FULL,
                          "context full: %d tokens cached, %d more do not fit in %d", c->kv.n, n, c->n_ctx);
    const int n_vocab = c->model->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "token id %d out of range [0, %d)", tokens[i], n_vocab);

    size_t need = (size_t)(logits_all ? n : 1) * (size_t)n_vocab;
    if (need > c->logits_cap) {
        float *l = fr_mem_alloc(FR_MEM_SCRATCH, need * sizeof(float));
        if (!l) return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate logits for %d tokens", n);
        fr_mem_free(FR_MEM_SCRATCH, c->logits, c->logits_cap * sizeof(float));
        c->logits = l;
        c->logits_cap = need;
    }
    for (int done = 0; done < n;) {
        int nb = n - done < c->n_ubatch ? n - done : c->n_ubatch;
        if (c->kv_window) {
            /* make room: evict the oldest eighth of the window (at least what this
             * micro-batch needs), keeping the sinks */
            if (nb > c->kv_window / 2) nb = c->kv_window / 2;
            int over = c->kv.n + nb - c->n_ctx;
            if (over > 0) {
                int evict = c->kv_window / 8 > over ? c->kv_window / 8 : over;
                if (evict > c->kv.n - c->kv_sinks) evict = c->kv.n - c->kv_sinks;
                fr_llama_kv_shift(c, c->kv_sinks, evict);
            }
        } else if (c->kv_chunk) {
            /* make room: summarise the oldest raw chunk beyond the kept tail, or drop
             * the oldest summary when the raw tokens are too few to make a chunk */
            if (nb > c->kv_chunk) nb = c->kv_chunk;
            while (c->kv.n + nb > c->n_ctx) {
                int raw = c->kv.n - c->n_summary;
                if (raw - c->kv_keep >= c->kv_chunk) {
                    fr_llama_kv_summarize(c, c->n_summary, c->kv_chunk);
                    c->n_summary++;
                } else if (c->n_summary > 0) {
                    fr_llama_kv_shift(c, 0, 1);
                    c->n_summary--;
                } else {
                    break; /* unreachable: n_ctx >= keep + 2*chunk was checked */
                }
            }
        }
        bool last = done + nb == n;
        /* without logits_all only the final micro-batch needs the output head */
        float *dst = logits_all ? c->logits + (size_t)done * n_vocab : (last ? c->logits : NULL);
        fr_llama_forward(c, tokens + done, nb, c->kv.n, dst, logits_all != 0);
        c->kv.n += nb;
        done += nb;
    }
    c->n_logits = logits_all ? n : 1;
    c->logits_all = logits_all != 0;
    return FRUGAL_OK;
}

const float *frugal_get_logits(const frugal_context *c, int i) {
    if (!c || c->n_logits == 0) return NULL;
    if (i < 0) i = c->n_logits - 1;
    if (i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->model->hp.n_vocab;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int frugal_generate(frugal_context *c, frugal_sampler *smpl, const int32_t *prompt, int n_prompt,
                    int n_predict, frugal_token_cb cb, void *user, frugal_timings *timings,
                    frugal_error *err) {
    frugal_timings tm;
    memset(&tm, 0, sizeof tm);
    if (!c || !smpl || n_prompt < 0 || (n_prompt > 0 && !prompt))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_generate: bad arguments");
    if (n_prompt == 0 && c->n_logits == 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_generate: empty prompt");
    const frugal_model *m = c->model;
    for (int i = 0; i < n_prompt; i++) frugal_sampler_accept(smpl, prompt[i]);

    double t0 = now_ms();
    int rc = frugal_eval(c, prompt, n_prompt, 0, err);
    if (rc) return rc;
    double t1 = now_ms();
    tm.n_prompt = n_prompt;
    tm.prompt_ms = t1 - t0;

    char piece[256];
    for (int k = 0; k < n_predict; k++) {
        int32_t tok = frugal_sampler_sample(smpl, frugal_get_logits(c, -1), m->hp.n_vocab);
        if (k == 0) tm.ttft_ms = now_ms() - t0;
        frugal_sampler_accept(smpl, tok);
        if (frugal_token_is_eog(m, tok)) break;
        tm.n_gen++;
        int len = frugal_token_to_piece(m, tok, piece, sizeof piece, 0);
        if (len < 0) len = 0;
        if (cb && cb(user, tok, piece, (size_t)len)) break;
        if (k + 1 == n_predict) break; /* no need to evaluate the last token */
        if (c->kv.n >= c->n_ctx && !c->kv_window && !c->kv_chunk) break;
        rc = frugal_eval(c, &tok, 1, 0, err);
        if (rc) return rc;
    }
    tm.gen_ms = now_ms() - t1;
    tm.peak_rss_bytes = frugal_peak_rss();
    if (timings) *timings = tm;
    return FRUGAL_OK;
}
