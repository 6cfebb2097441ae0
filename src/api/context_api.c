/* context_api.c - public API: contexts (KV cache + scratch), evaluation, generation. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/fault.h"
#include "frugal.h"
#include "mem/alloc.h"
#include "mem/planner.h"
#include "api/safety_api.h"
#include "budget/stream.h"
#include "model/offload.h"
#include "model/model.h"


void frugal_context_params_default(frugal_context_params *p) {
    memset(p, 0, sizeof *p);
    p->kv_type = FRUGAL_KV_F16;
}

static size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }

#define N_SCRATCH 15

/* Sizes of the scratch buffers for micro-batches of B tokens, n_ctx cached tokens
 * and n_pool threads: floats[N_SCRATCH] (x, xb, q, k, v, att, hg, hu, att_scores,
 * fused, and the five mixture-of-experts buffers) and the activation-conversion buffer; returns the block's total bytes. The
 * one formula both the allocation and the memory planner use. */
static size_t scratch_layout(const frugal_model *m, size_t B, size_t n_ctx, size_t n_pool,
                             size_t floats[N_SCRATCH], size_t *qbuf_out) {
    const fr_hparams *hp = &m->hp;
    size_t d = (size_t)hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim,
           kvd = (size_t)hp->n_head_kv * hp->head_dim, ff = (size_t)hp->n_ff;
    size_t qbuf = 0, fused = 0; /* fused: rows of a fused QKV or gate+up output */
    for (int il = 0; il < hp->n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++) {
            const fr_weight *w = fr_layer_mat(&m->layers[il], j);
            if (!w) continue;
            qbuf = max_sz(qbuf, fr_matmul_scratch(w, (int)B));
            if (j == FR_WQKV || (j == FR_WUP && w->n_out == 2 * (int64_t)ff)) fused = max_sz(fused, (size_t)w->n_out);
        }
    qbuf = max_sz(qbuf, fr_matmul_scratch(&m->output, (int)B));
    const size_t group = (size_t)(hp->n_head / hp->n_head_kv); /* attention scores per thread */
    const size_t E = (size_t)hp->n_expert, K = (size_t)hp->n_expert_used;
    const size_t f[N_SCRATCH] = {B * d,  B * d,  B * qd, B * kvd, B * kvd, B * qd,
                                 B * ff, B * ff, n_pool * n_ctx * group, B * fused,
                                 B * E, B * K * d, B * K, E ? B * d : 0, E ? B * d : 0};
    size_t total = 0;
    for (size_t i = 0; i < N_SCRATCH; i++) {
        floats[i] = f[i];
        total += (f[i] * 4 + 63) & ~(size_t)63;
    }
    *qbuf_out = qbuf;
    return total + qbuf + 64;
}

size_t fr_context_scratch_bytes(const frugal_model *m, int n_ctx, int n_threads) {
    size_t floats[N_SCRATCH], qbuf;
    size_t B = n_ctx < FR_MAX_UBATCH ? (size_t)n_ctx : FR_MAX_UBATCH;
    return scratch_layout(m, B, (size_t)n_ctx, (size_t)(n_threads > 0 ? n_threads : 1), floats, &qbuf);
}

/* Lay out every scratch buffer in one accounted block. */
static int alloc_scratch(frugal_context *c, fr_err *err) {
    size_t floats[N_SCRATCH], qbuf;
    size_t total = scratch_layout(c->model, (size_t)c->n_ubatch, (size_t)c->n_ctx, (size_t)fr_pool_size(c->pool),
                                  floats, &qbuf);
    float **ptrs[N_SCRATCH] = {&c->x,  &c->xb, &c->q,          &c->k,          &c->v,
                               &c->att, &c->hg, &c->hu,        &c->att_scores, &c->fused,
                               &c->moe_logits, &c->moe_out, &c->moe_w, &c->moe_in, &c->moe_y};
    c->scratch = fr_mem_alloc(FR_MEM_SCRATCH, total);
    if (!c->scratch) return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %zu MiB of scratch", total >> 20);
    c->scratch_bytes = total;
    uint8_t *p = c->scratch;
    for (size_t i = 0; i < N_SCRATCH; i++) {
        *ptrs[i] = floats[i] ? (float *)p : NULL;
        p += (floats[i] * 4 + 63) & ~(size_t)63;
    }
    c->qbuf = p;
    const size_t K = (size_t)c->model->hp.n_expert_used, B = (size_t)c->n_ubatch;
    if (K) {
        c->moe_sel = fr_calloc(B * K, sizeof(int));
        c->moe_rows = fr_calloc(B, sizeof(int));
        c->moe_pred = fr_calloc(B * K, sizeof(int));
        if (!c->moe_sel || !c->moe_rows || !c->moe_pred) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory (expert routing)");
        const char *solo = getenv("FRUGAL_EXPERT_SOLO");
        c->expert_solo = !solo || *solo != '0';
    }
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

    frugal_context *c = fr_calloc(1, sizeof *c);
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
        if (params->kv_slots > 0) c->n_ctx = params->kv_slots;
        if (params->kv_chunk < 2 || params->kv_keep < 0 || c->n_ctx < params->kv_keep + 2 * params->kv_chunk) {
            free(c);
            return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                              "summary policy: need chunk >= 2 and a context of at least keep + 2*chunk tokens");
        }
        c->kv_chunk = params->kv_chunk;
        c->kv_keep = params->kv_keep;
    }
    if (model->pos_embd.data && c->n_ctx > model->hp.n_ctx_train) {
        int n = c->n_ctx;
        free(c);
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "context of %d tokens exceeds the %d learned positions of %s", n,
                          model->hp.n_ctx_train, model->path);
    }
    c->rope_factors = fr_model_rope_factors(model, c->n_ctx);
    c->n_seq_max = params->n_seq_max > 0 ? params->n_seq_max : 1;
    if (c->n_seq_max > 4096) {
        free(c);
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "n_seq_max %d out of range", params->n_seq_max);
    }
    c->n_ubatch = c->n_ctx < FR_MAX_UBATCH ? c->n_ctx : FR_MAX_UBATCH;
    if (c->kv_window && c->n_ubatch > c->kv_window / 2) c->n_ubatch = c->kv_window / 2;
    if (c->kv_chunk && c->n_ubatch > c->kv_chunk) c->n_ubatch = c->kv_chunk;
    /* pool size: without a policy the sequences share n_ctx tokens (or their own
     * n_ctx_pool); with one, every sequence gets its full per-sequence capacity */
    long pool_tokens = (c->kv_window || c->kv_chunk) ? (long)c->n_seq_max * (c->n_ctx + FR_KV_BLOCK)
                                                     : c->n_ctx;
    if (params->n_ctx_pool > 0) pool_tokens = params->n_ctx_pool;
    if (pool_tokens > (1L << 26)) pool_tokens = 1L << 26;
    int nt = params->n_threads > 0 ? params->n_threads : model->n_threads;
    if (nt > frugal_cpu_count()) nt = frugal_cpu_count();
    c->pool = fr_pool_new(nt);
    int rc = c->pool ? FRUGAL_OK : fr_err_set(err, FRUGAL_E_NOMEM, "cannot create threads");
    /* sliding-window layers keep only their window's pages, unless a disk tier or a
     * KV policy (which move rows across the whole cache) is in use */
    uint8_t *local = rc ? NULL : fr_malloc((size_t)model->hp.n_layer);
    fr_kv_swa_cfg swa;
    const bool use_swa = local && !params->kv_disk_dir && !c->kv_window && !c->kv_chunk &&
                         fr_model_kv_swa(model, pool_tokens, c->n_seq_max, c->n_ubatch, local, &swa);
    if (!rc && !local) rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    if (!rc)
        rc = fr_kv_pool_init(&c->kv_pool, params->kv_type, model->hp.n_layer, (int)pool_tokens,
                             model->hp.n_head_kv * model->hp.head_dim, model->hp.head_dim,
                             params->kv_disk_dir, params->kv_ram_bytes, use_swa ? &swa : NULL, err);
    free(local);
    if (!rc) {
        c->seqs = fr_calloc((size_t)c->n_seq_max, sizeof *c->seqs);
        c->b_kv = fr_calloc((size_t)c->n_ubatch, sizeof *c->b_kv);
        c->b_pos = fr_calloc((size_t)c->n_ubatch, sizeof *c->b_pos);
        c->b_out = fr_calloc((size_t)c->n_ubatch, sizeof *c->b_out);
        if (!c->seqs || !c->b_kv || !c->b_pos || !c->b_out) rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        for (int i = 0; !rc && i < c->n_seq_max; i++) fr_kv_seq_init(&c->seqs[i].kv, &c->kv_pool, c->n_ctx);
    }
    if (!rc) rc = alloc_scratch(c, err);
    if (!rc) rc = fr_context_apply_budget(c, params->mem_budget, params->kv_type, err); /* mem issue */
    if (rc) {
        frugal_context_free(c);
        return rc;
    }
    *out = c;
    return FRUGAL_OK;
}

void frugal_context_free(frugal_context *c) {
    if (!c) return;
    fr_offload_release(c->model ? c->model->offload : NULL, c); /* the device KV cache */
    for (int i = 0; c->seqs && i < c->n_seq_max; i++) {
        fr_kv_seq_clear(&c->seqs[i].kv);
        free(c->seqs[i].kv.blocks);
    }
    free(c->seqs);
    free(c->b_kv);
    free(c->b_pos);
    free(c->b_out);
    free(c->moe_sel);
    free(c->moe_rows);
    free(c->moe_pred);
    fr_kv_pool_free(&c->kv_pool);
    fr_mem_free(FR_MEM_SCRATCH, c->scratch, c->scratch_bytes);
    fr_mem_free(FR_MEM_SCRATCH, c->logits, c->logits_cap * sizeof(float));
    fr_pool_free(c->pool);
    fr_api_safety_free(c);
    if (c->layer_src && c->layer_src->destroy) c->layer_src->destroy(c->layer_src->user);
    free(c);
}

int frugal_context_n_ctx(const frugal_context *c) { return c->n_ctx; }
uint64_t frugal_context_kv_bytes(const frugal_context *c) { return c->kv_pool.bytes; }
double frugal_context_kv_bytes_per_token(const frugal_context *c) {
    int tokens = c->kv_pool.n_blocks * FR_KV_BLOCK;
    return tokens ? (double)c->kv_pool.bytes / tokens : 0.0;
}
int frugal_context_pos(const frugal_context *c) { return c->seqs[0].kv.n; }

void frugal_context_reset(frugal_context *c) {
    for (int i = 0; i < c->n_seq_max; i++) {
        fr_kv_seq_clear(&c->seqs[i].kv);
        c->seqs[i].n_summary = 0;
    }
    c->n_logits = 0;
}

int frugal_seq_len(const frugal_context *c, int seq) {
    return seq >= 0 && seq < c->n_seq_max ? c->seqs[seq].kv.n : -1;
}

void frugal_seq_clear(frugal_context *c, int seq) {
    if (seq < 0 || seq >= c->n_seq_max) return;
    fr_kv_seq_clear(&c->seqs[seq].kv);
    c->seqs[seq].n_summary = 0;
}

int frugal_seq_fork(frugal_context *c, int src, int dst, frugal_error *err) {
    if (src < 0 || src >= c->n_seq_max || dst < 0 || dst >= c->n_seq_max || src == dst)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_seq_fork: bad sequence ids %d -> %d", src, dst);
    c->seqs[dst].n_summary = c->seqs[src].n_summary;
    return fr_kv_seq_fork(&c->seqs[dst].kv, &c->seqs[src].kv, err);
}

void frugal_kv_disk_stats(const frugal_context *c, uint64_t *pages_read, uint64_t *pages_written) {
    fr_kv_disk_stats(&c->kv_pool, pages_read, pages_written);
}

void frugal_kv_usage(const frugal_context *c, uint64_t *used, uint64_t *allocated, uint64_t *capacity) {
    uint64_t u = 0;
    for (int i = 0; i < c->n_seq_max; i++) u += (uint64_t)c->seqs[i].kv.n;
    const fr_kv_pool *p = &c->kv_pool;
    if (used) *used = u;
    if (allocated) *allocated = (uint64_t)(p->n_blocks - p->n_free) * FR_KV_BLOCK;
    if (capacity) *capacity = (uint64_t)p->n_blocks * FR_KV_BLOCK;
}

/* Policies: make room in seq for `need` more tokens (need <= n_ubatch). */
static void make_room(frugal_context *c, fr_seq *sq, int need) {
    fr_kv_cache *kv = &sq->kv;
    if (c->kv_window) {
        /* evict the oldest eighth of the window (at least what is needed), keep the sinks */
        int over = kv->n + need - c->n_ctx;
        if (over > 0) {
            int evict = c->kv_window / 8 > over ? c->kv_window / 8 : over;
            if (evict > kv->n - c->kv_sinks) evict = kv->n - c->kv_sinks;
            fr_model_kv_shift(c, kv, c->kv_sinks, evict);
        }
    } else if (c->kv_chunk) {
        /* summarise the oldest raw chunk beyond the kept tail, or drop the oldest
         * summary when the raw tokens are too few to make a chunk */
        while (kv->n + need > c->n_ctx) {
            int raw = kv->n - sq->n_summary;
            if (raw - c->kv_keep >= c->kv_chunk) {
                fr_model_kv_summarize(c, kv, sq->n_summary, c->kv_chunk);
                sq->n_summary++;
            } else if (sq->n_summary > 0) {
                fr_model_kv_shift(c, kv, 0, 1);
                sq->n_summary--;
            } else {
                break; /* unreachable: n_ctx >= keep + 2*chunk was checked */
            }
        }
    }
}

static int ensure_logits(frugal_context *c, int rows, fr_err *err) {
    size_t need = (size_t)rows * (size_t)c->model->hp.n_vocab;
    if (need <= c->logits_cap) return FRUGAL_OK;
    float *l = fr_mem_alloc(FR_MEM_SCRATCH, need * sizeof(float));
    if (!l) return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate logits for %d tokens", rows);
    fr_mem_free(FR_MEM_SCRATCH, c->logits, c->logits_cap * sizeof(float));
    c->logits = l;
    c->logits_cap = need;
    return FRUGAL_OK;
}

static int model_file_intact(const frugal_model *m, fr_err *err) {
    fr_err e = FRUGAL_ERROR_INIT;
    int rc = gguf_check_intact(m->file, &e);
    if (rc) fr_err_set(err, rc, "%s: %s", m->path, e.message);
    return rc;
}

int frugal_eval_batch(frugal_context *c, const frugal_batch_item *items, int n, frugal_error *err) {
    if (!c || (!items && n > 0) || n < 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_eval_batch: bad arguments");
    const int n_vocab = c->model->hp.n_vocab;
    /* validate everything and check each sequence's room before touching any cache
     * (running out of pool blocks is found per micro-batch by fr_kv_reserve) */
    int *cnt = fr_calloc((size_t)c->n_seq_max * 2, sizeof(int)); /* per sequence: count, offset */
    if (!cnt) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int *off = cnt + c->n_seq_max;
    int rc = FRUGAL_OK, n_req = 0;
    for (int i = 0; i < n && !rc; i++) {
        if (items[i].token < 0 || items[i].token >= n_vocab)
            rc = fr_err_set(err, FRUGAL_E_INVALID_ARG, "token id %d out of range [0, %d)", items[i].token, n_vocab);
        else if (items[i].seq < 0 || items[i].seq >= c->n_seq_max)
            rc = fr_err_set(err, FRUGAL_E_INVALID_ARG, "sequence id %d out of range [0, %d)", items[i].seq, c->n_seq_max);
        else {
            cnt[items[i].seq]++;
            n_req += items[i].logits != 0;
        }
    }
    for (int s = 0; !rc && !c->kv_window && !c->kv_chunk && s < c->n_seq_max; s++)
        if (c->seqs[s].kv.n + cnt[s] > c->n_ctx)
            rc = fr_err_set(err, FRUGAL_E_CONTEXT_FULL, "context full: %d tokens cached, %d more do not fit in %d",
                            c->seqs[s].kv.n, cnt[s], c->n_ctx);
    if (!rc) rc = ensure_logits(c, n_req, err);

    int out_row = 0;
    for (int done = 0; done < n && !rc;) {
        int nb = n - done < c->n_ubatch ? n - done : c->n_ubatch;
        const frugal_batch_item *mb = items + done;
        /* room for each sequence's tokens of this micro-batch, then their positions */
        for (int i = 0; i < nb; i++) cnt[mb[i].seq] = 0;
        for (int i = 0; i < nb; i++) cnt[mb[i].seq]++;
        for (int i = 0; i < nb && !rc; i++) {
            fr_seq *sq = &c->seqs[mb[i].seq];
            if (cnt[mb[i].seq] < 0) continue; /* already reserved */
            make_room(c, sq, cnt[mb[i].seq]);
            rc = fr_kv_reserve(&sq->kv, cnt[mb[i].seq], err);
            off[mb[i].seq] = sq->kv.n;
            cnt[mb[i].seq] = -cnt[mb[i].seq];
        }
        if (rc) break;
        int n_out = 0;
        int32_t toks[FR_MAX_UBATCH];
        for (int i = 0; i < nb; i++) {
            toks[i] = mb[i].token;
            c->b_kv[i] = &c->seqs[mb[i].seq].kv;
            c->b_pos[i] = off[mb[i].seq]++;
            c->b_out[i] = mb[i].logits ? n_out++ : -1;
        }
        fr_batch b = {nb, toks, c->b_kv, c->b_pos, c->b_out, n_out, c->logits + (size_t)out_row * n_vocab};
        fr_forward(c, &b);
        /* weights read from a file that shrank (SIGBUS, zeros read instead) or was
         * rewritten under the mapping: the logits are garbage, say so */
        if ((rc = model_file_intact(c->model, err))) break;
        for (int i = 0; i < nb; i++) c->b_kv[i]->n = off[mb[i].seq];
        rc = fr_kv_io_error(&c->kv_pool, err);
        /* a streaming layer source reports I/O errors here (the pass itself ran on) */
        if (c->layer_src && c->layer_src->check && (rc = c->layer_src->check(c->layer_src->user, err))) break;
        out_row += n_out;
        done += nb;
    }
    free(cnt);
    if (rc) return rc;
    c->n_logits = n_req;
    return FRUGAL_OK;
}

int frugal_eval(frugal_context *c, const int32_t *tokens, int n, int logits_all, frugal_error *err) {
    if (!c || (!tokens && n > 0) || n < 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_eval: bad arguments");
    if (n == 0) return FRUGAL_OK;
    frugal_batch_item *items = fr_malloc(sizeof *items * (size_t)n);
    if (!items) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        items[i].token = tokens[i];
        items[i].seq = 0;
        items[i].logits = logits_all || i == n - 1;
    }
    int rc = frugal_eval_batch(c, items, n, err);
    free(items);
    return rc;
}

const float *frugal_get_logits(const frugal_context *c, int i) {
    if (!c || c->n_logits == 0) return NULL;
    if (i < 0) i = c->n_logits - 1;
    if (i >= c->n_logits) return NULL;
    return c->logits + (size_t)i * c->model->hp.n_vocab;
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

    frugal_safety_step(c, 0); /* degrade steps the policy already wants */
    double t0 = (fr_now_s() * 1e3);
    int rc = frugal_eval(c, prompt, n_prompt, 0, err);
    if (rc) return rc;
    double t1 = (fr_now_s() * 1e3);
    tm.n_prompt = n_prompt;
    tm.prompt_ms = t1 - t0;

    char piece[256];
    for (int k = 0; k < n_predict; k++) {
        int32_t tok = frugal_sampler_sample(smpl, frugal_get_logits(c, -1), m->hp.n_vocab);
        if (k == 0) tm.ttft_ms = (fr_now_s() * 1e3) - t0;
        frugal_sampler_accept(smpl, tok);
        if (frugal_token_is_eog(m, tok)) break;
        tm.n_gen++;
        int len = frugal_token_to_piece(m, tok, piece, sizeof piece, 0);
        if (len < 0) len = 0;
        if (cb && cb(user, tok, piece, (size_t)len)) break;
        if (k + 1 == n_predict) break; /* no need to evaluate the last token */
        if (c->seqs[0].kv.n >= c->n_ctx && !c->kv_window && !c->kv_chunk) break;
        double ts = (fr_now_s() * 1e3);
        rc = frugal_eval(c, &tok, 1, 0, err);
        if (rc) return rc;
        frugal_safety_step(c, ((fr_now_s() * 1e3) - ts) / 1000); /* throttle and degrade, between steps */
    }
    tm.gen_ms = (fr_now_s() * 1e3) - t1;
    tm.peak_rss_bytes = frugal_peak_rss();
    if (timings) *timings = tm;
    return FRUGAL_OK;
}
