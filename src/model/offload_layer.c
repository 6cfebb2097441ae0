/* offload_layer.c - whole layers on the device: for the placed layers the forward pass
 * hands over the residual stream once (up before the first device layer, down after
 * the last) and every op of the layers' recipe runs on the backend: norms, the Q/K/V
 * products with biases and per-head norms, RoPE, the F16 KV cache in device memory,
 * causal attention over it (decode and prefill alike), the output product, the FFN
 * (gated, fused or plain GELU) and the residual adds.
 *
 * A batch goes through in chunks of CHUNK tokens, each through all device layers in one
 * submission; a chunk's tokens attend to the cache rows earlier chunks stored, so the
 * order of chunks is the causal order. Numerics follow the CPU path: every product's
 * input is first rounded on the device as the CPU kernels round it (Q8_0 / Q8_K blocks
 * or F16), and attention follows the CPU's F16-cache path (attn_kv16). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "model/offload_impl.h"

/* The rounding a product over weights of type t applies to its input: FR_ROUND_*,
 * -1 for none (F32), -2 when the device cannot reproduce it. */
static int round_mode(fr_type t) {
    switch (fr_type_traits_get(t)->vec_dot_type) {
    case FR_TYPE_F32: return -1;
    case FR_TYPE_F16: return FR_ROUND_F16;
    case FR_TYPE_Q8_0: return FR_ROUND_Q8_0;
    case FR_TYPE_Q8_K: return FR_ROUND_Q8_K;
    default: return -2;
    }
}

/* The weight types the device has kernels for: the backend's, or (planning without a
 * device) the Vulkan kernels' list. */
static bool type_on_device(const fr_offload *o, fr_type t) {
    if (o) return o->be->ops->type_ok(t);
    return t == FR_TYPE_F32 || t == FR_TYPE_F16 || t == FR_TYPE_Q8_0 || t == FR_TYPE_Q4_0 || t == FR_TYPE_Q4_K ||
           t == FR_TYPE_Q6_K;
}

static bool layer_ok(const fr_offload *o, const fr_layer *L) {
    for (int j = 0; j < FR_LAYER_MATRICES; j++) {
        const fr_weight *w = &L->mat[j];
        if (!w->data) continue;
        if (!fr_layer_mat_repackable(j)) return false; /* experts: not on the device */
        if (w->layout != FR_LAYOUT_ROWS && !w->src) return false;
        if (!type_on_device(o, w->type) || round_mode(w->type) == -2) return false;
    }
    /* per-head Q/K norms need Q and K rows of their own (not a fused QKV output) */
    return !(L->mat[FR_WQKV].data && (L->vec[FR_Q_NORM] || L->vec[FR_K_NORM]));
}

bool fr_whole_supported(const fr_offload *o, const frugal_model *m) {
    const char *env = getenv("FRUGAL_GPU_WHOLE");
    if (env && strcmp(env, "0") == 0) return false;
    if (o && (!o->be->ops->act_round || !o->be->ops->kv_store || !o->be->ops->attn_kv16)) return false;
    const fr_hparams *hp = &m->hp;
    if (!m->layers || hp->n_expert > 0 || hp->head_dim % 2 || hp->head_dim > 256 || hp->n_head % hp->n_head_kv)
        return false;
    for (int il = 0; il < hp->n_layer; il++)
        if (!layer_ok(o, &m->layers[il])) return false;
    return true;
}

/* Floats of vector slot s (norm weights, biases). */
static int64_t vec_len(const fr_hparams *hp, int s) {
    switch (s) {
    case FR_Q_NORM: case FR_K_NORM: return hp->head_dim;
    case FR_BQ: return (int64_t)hp->n_head * hp->head_dim;
    case FR_BK: case FR_BV: return (int64_t)hp->n_head_kv * hp->head_dim;
    case FR_BQKV: return (int64_t)(hp->n_head + 2 * hp->n_head_kv) * hp->head_dim;
    case FR_BUP: return hp->n_ff;
    default: return hp->n_embd;
    }
}

/* Positions of the device caches: the default context (context_api.c's rule). */
static int kv_positions(const frugal_model *m) {
    return m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
}

typedef struct {
    size_t x, q, k, att, g, u, r; /* floats per token of each activation buffer */
} act_widths;

static act_widths widths(const frugal_model *m) {
    const fr_hparams *hp = &m->hp;
    const size_t d = (size_t)hp->n_embd, qd = (size_t)hp->n_head * hp->head_dim;
    const size_t kvd = (size_t)hp->n_head_kv * hp->head_dim, ff = (size_t)hp->n_ff;
    act_widths w = {d, qd + 2 * kvd, kvd, qd, 2 * ff, ff, d};
    if (qd > w.r) w.r = qd;
    if (ff > w.r) w.r = ff;
    return w;
}

uint64_t fr_whole_act_bytes(const frugal_model *m) {
    const act_widths w = widths(m);
    const uint64_t per = 2 * w.x + w.q + 2 * w.k + w.att + w.g + w.u + w.r;
    return fr_dev_bytes(sizeof(float) * per * CHUNK) + fr_dev_bytes(sizeof(int32_t) * CHUNK) +
           fr_dev_bytes(sizeof(float) * (size_t)(m->hp.n_rot > 2 ? m->hp.n_rot / 2 : 1));
}

uint64_t fr_whole_layer_bytes(const frugal_model *m, int il) {
    const fr_hparams *hp = &m->hp;
    uint64_t n = 2 * fr_dev_bytes((uint64_t)kv_positions(m) * hp->n_head_kv * hp->head_dim * 2);
    for (int s = FR_N_LMAT; s < FR_N_LSLOT; s++)
        if (m->layers[il].vec[s]) n += fr_dev_bytes(sizeof(float) * (uint64_t)vec_len(hp, s));
    return n;
}

static void free_acts(fr_offload *o) {
    fr_offload_whole *W = &o->whole;
    fr_bbuf **all[] = {&W->x, &W->h, &W->q, &W->k, &W->v, &W->att, &W->g, &W->u, &W->r, &W->pos, &W->fac};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        if (*all[i]) o->be->ops->buf_free(o->be, *all[i]), *all[i] = NULL;
}

int fr_whole_open(fr_offload *o, const frugal_model *m, fr_err *err) {
    fr_offload_whole *W = &o->whole;
    const act_widths w = widths(m);
    W->layers = fr_calloc((size_t)m->hp.n_layer, sizeof *W->layers);
    if (!W->layers) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    W->n_layer = m->hp.n_layer;
    struct {
        fr_bbuf **b;
        size_t n;
    } want[] = {{&W->x, w.x}, {&W->h, w.x}, {&W->q, w.q}, {&W->k, w.k}, {&W->v, w.k}, {&W->att, w.att},
                {&W->g, w.g}, {&W->u, w.u}, {&W->r, w.r}, {&W->pos, 1}};
    int rc = FRUGAL_OK;
    for (size_t i = 0; i < sizeof want / sizeof *want && !rc; i++)
        rc = o->be->ops->buf_new(o->be, sizeof(float) * want[i].n * CHUNK, want[i].b, err);
    if (!rc) rc = o->be->ops->buf_new(o->be, sizeof(float) * (size_t)(m->hp.n_rot > 2 ? m->hp.n_rot / 2 : 1), &W->fac, err);
    if (rc == FRUGAL_E_NOMEM) { /* the matrix products alone, as before */
        free_acts(o);
        fprintf(stderr, "frugal: %s: %s: only the matrix products run on the device\n", o->be->name, err->message);
        fr_err_clear(err);
        return FRUGAL_OK;
    }
    if (rc) return rc;
    W->kv_ctx = kv_positions(m);
    W->act_bytes = fr_whole_act_bytes(m);
    W->on = true;
    return FRUGAL_OK;
}

void fr_whole_drop_layer(fr_offload *o, int il) {
    fr_offload_whole *W = &o->whole;
    if (!W->layers) return;
    fr_dev_layer *D = &W->layers[il];
    for (int s = 0; s < FR_N_LSLOT; s++)
        if (D->vec[s]) o->be->ops->buf_free(o->be, D->vec[s]), D->vec[s] = NULL;
    if (D->kc) o->be->ops->buf_free(o->be, D->kc), D->kc = NULL;
    if (D->vc) o->be->ops->buf_free(o->be, D->vc), D->vc = NULL;
}

int fr_whole_place_layer(fr_offload *o, const frugal_model *m, int il, fr_err *err) {
    fr_offload_whole *W = &o->whole;
    if (!W->on) return FRUGAL_OK;
    const fr_hparams *hp = &m->hp;
    fr_dev_layer *D = &W->layers[il];
    const fr_layer *L = &m->layers[il];
    const size_t kv = (size_t)W->kv_ctx * hp->n_head_kv * hp->head_dim * 2;
    int rc = o->be->ops->buf_new(o->be, kv, &D->kc, err);
    if (!rc) rc = o->be->ops->buf_new(o->be, kv, &D->vc, err);
    for (int s = FR_N_LMAT; s < FR_N_LSLOT && !rc; s++) {
        if (!L->vec[s]) continue;
        const int64_t n = vec_len(hp, s);
        rc = o->be->ops->buf_new(o->be, sizeof(float) * (size_t)n, &D->vec[s], err);
        if (!rc) rc = o->be->ops->upload(o->be, D->vec[s], 0, L->vec[s], sizeof(float) * (size_t)n, err);
    }
    if (rc) fr_whole_drop_layer(o, il);
    return rc;
}

void fr_whole_free(fr_offload *o) {
    fr_offload_whole *W = &o->whole;
    for (int il = 0; W->layers && il < W->n_layer; il++) fr_whole_drop_layer(o, il);
    free(W->layers);
    W->layers = NULL;
    free_acts(o);
    W->on = false;
}

/* ---- one chunk through the device layers */

typedef struct {
    fr_offload *o;
    const fr_backend_ops *op;
    const frugal_context *ctx;
    const fr_hparams *hp;
    int nt;         /* tokens of the chunk */
    int r_mode;     /* what W->r holds: the rounding of r_src (-3: nothing) */
    fr_bbuf *r_src; /* the buffer W->r was rounded from */
    fr_err *err;
} run;

static const resident *res_of(const fr_offload *o, const fr_weight *w) {
    for (int i = 0; i < o->n_res; i++)
        if (o->res[i].key == w->data) return &o->res[i];
    return NULL;
}

/* y (n_out per token, at y_off floats) = x (n_in per token) * W^T, x rounded first. */
static int product(run *R, const fr_weight *w, fr_bbuf *x, fr_bbuf *y, size_t y_off) {
    fr_offload_whole *W = &R->o->whole;
    const resident *r = res_of(R->o, w);
    if (!r) return fr_err_set(R->err, FRUGAL_E_INTERNAL, "a device layer's matrix is not resident");
    const int mode = round_mode(r->type);
    fr_bbuf *in = x;
    int rc = FRUGAL_OK;
    if (mode >= 0) {
        if (R->r_mode != mode || R->r_src != x)
            rc = R->op->act_round(R->o->be, mode, x, 0, W->r, 0, r->n_in, R->nt, R->err);
        R->r_mode = mode, R->r_src = x, in = W->r;
    }
    if (!rc) rc = R->op->matmul(R->o->be, r->type, r->buf, r->off, r->n_in, r->n_out, in, 0, R->nt, y, y_off, R->err);
    return rc;
}

/* buf[t][0..n) += bias over the chunk's rows (dense rows of n floats). */
static int bias(run *R, fr_bbuf *buf, fr_bbuf *b, int n) {
    if (!b) return FRUGAL_OK;
    return R->op->add(R->o->be, buf, 0, b, 0, n, buf, 0, (int64_t)n * R->nt, R->err);
}

static int norm(run *R, fr_bbuf *x, fr_bbuf *o, fr_bbuf *w, fr_bbuf *b) {
    const int layer = R->hp->arch->norm == FR_NORM_LAYER;
    return R->op->norm(R->o->be, layer, R->hp->n_embd, R->nt, x, 0, o, 0, w, 0, b, 0, R->hp->norm_eps, R->err);
}

/* h = attention block of h (layer il). */
static int attn(run *R, const fr_layer *L, const fr_dev_layer *D, int il) {
    fr_offload_whole *W = &R->o->whole;
    const fr_hparams *hp = R->hp;
    const int hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd, nt = R->nt;
    fr_bbuf *qb = W->q, *kb = W->k, *vb = W->v;
    size_t ko = 0, vo = 0;
    int qs = qd, ks = kvd, rc;
    if (L->mat[FR_WQKV].data) { /* rows [Q | K | V] of one product */
        rc = product(R, &L->mat[FR_WQKV], W->h, W->q, 0);
        if (!rc) rc = bias(R, W->q, D->vec[FR_BQKV], qd + 2 * kvd);
        kb = vb = W->q, ko = (size_t)qd, vo = (size_t)(qd + kvd), qs = ks = qd + 2 * kvd;
    } else {
        rc = product(R, &L->mat[FR_WQ], W->h, W->q, 0);
        if (!rc) rc = product(R, &L->mat[FR_WK], W->h, W->k, 0);
        if (!rc) rc = product(R, &L->mat[FR_WV], W->h, W->v, 0);
        if (!rc) rc = bias(R, W->q, D->vec[FR_BQ], qd);
        if (!rc) rc = bias(R, W->k, D->vec[FR_BK], kvd);
        if (!rc) rc = bias(R, W->v, D->vec[FR_BV], kvd);
        if (!rc && D->vec[FR_Q_NORM])
            rc = R->op->norm(R->o->be, 0, hd, nt * hp->n_head, W->q, 0, W->q, 0, D->vec[FR_Q_NORM], 0, NULL, 0,
                             hp->norm_eps, R->err);
        if (!rc && D->vec[FR_K_NORM])
            rc = R->op->norm(R->o->be, 0, hd, nt * hp->n_head_kv, W->k, 0, W->k, 0, D->vec[FR_K_NORM], 0, NULL, 0,
                             hp->norm_eps, R->err);
    }
    const int window = fr_layer_window(hp, il);
    if (!rc && hp->n_rot) {
        const fr_rope_cfg *cfg = window ? &hp->rope_swa : &hp->rope;
        fr_bbuf *fac = R->ctx->rope_factors ? W->fac : NULL;
        rc = R->op->rope(R->o->be, qb, 0, qs, nt, hp->n_head, hd, hp->n_rot, hp->rope_neox, W->pos, cfg, fac, R->err);
        if (!rc)
            rc = R->op->rope(R->o->be, kb, ko, ks, nt, hp->n_head_kv, hd, hp->n_rot, hp->rope_neox, W->pos, cfg, fac,
                             R->err);
    }
    if (!rc) rc = R->op->kv_store(R->o->be, kb, ko, vb, vo, ks, nt, kvd, W->pos, D->kc, D->vc, R->err);
    const bool pre = hp->arch->q_prescale;
    if (!rc)
        rc = R->op->attn_kv16(R->o->be, qb, 0, qs, nt, D->kc, D->vc, W->pos, hp->n_head, hp->n_head_kv, hd, window,
                              pre ? hp->attn_scale : 1.0f, pre ? 1.0f : hp->attn_scale, hp->attn_softcap, W->att, 0,
                              qd, R->err);
    if (!rc) rc = product(R, &L->mat[FR_WO], W->att, W->h, 0);
    if (!rc) rc = bias(R, W->h, D->vec[FR_BO], hp->n_embd);
    return rc;
}

/* h = feed-forward block of h. */
static int ffn(run *R, const fr_layer *L, const fr_dev_layer *D) {
    fr_offload_whole *W = &R->o->whole;
    const fr_hparams *hp = R->hp;
    const int ff = hp->n_ff, nt = R->nt;
    fr_bbuf *act_out = W->g;
    int rc;
    if (hp->arch->ffn == FR_FFN_GELU) {
        rc = product(R, &L->mat[FR_WUP], W->h, W->g, 0);
        if (!rc) rc = bias(R, W->g, D->vec[FR_BUP], ff);
        if (!rc) rc = R->op->act(R->o->be, FR_ACT_GELU, W->g, 0, NULL, 0, W->g, 0, (int64_t)ff * nt, R->err);
    } else {
        const int mode = hp->arch->ffn == FR_FFN_GELU_GLU ? FR_ACT_GEGLU : FR_ACT_SWIGLU;
        if (!L->mat[FR_WGATE].data) { /* fused [gate | up] rows: one activation per token */
            rc = product(R, &L->mat[FR_WUP], W->h, W->g, 0);
            for (int t = 0; t < nt && !rc; t++)
                rc = R->op->act(R->o->be, mode, W->g, (size_t)t * 2 * ff, W->g, (size_t)t * 2 * ff + ff, W->u,
                                (size_t)t * ff, ff, R->err);
            act_out = W->u;
        } else {
            rc = product(R, &L->mat[FR_WGATE], W->h, W->g, 0);
            if (!rc) rc = product(R, &L->mat[FR_WUP], W->h, W->u, 0);
            if (!rc) rc = R->op->act(R->o->be, mode, W->g, 0, W->u, 0, W->g, 0, (int64_t)ff * nt, R->err);
        }
    }
    if (!rc) rc = product(R, &L->mat[FR_WDOWN], act_out, W->h, 0);
    if (!rc) rc = bias(R, W->h, D->vec[FR_BDOWN], hp->n_embd);
    return rc;
}

/* Layer il's recipe on the chunk in W->x (x updated in place). */
static int layer(run *R, const fr_layer *L, int il) {
    fr_offload_whole *W = &R->o->whole;
    const fr_dev_layer *D = &W->layers[il];
    const int64_t n = (int64_t)R->hp->n_embd * R->nt;
    bool pending = false; /* a block output in h not yet added to x */
    int rc = FRUGAL_OK;
    for (const fr_op *op = R->hp->arch->recipe; op->kind != FR_OP_END && !rc; op++) {
        R->r_mode = -3; /* h and the activations change between the blocks */
        switch (op->kind) {
        case FR_OP_NORM:
            if (pending) rc = R->op->add(R->o->be, W->x, 0, W->h, 0, 0, W->x, 0, n, R->err);
            pending = false;
            if (!rc) rc = norm(R, W->x, W->h, D->vec[op->w], op->b ? D->vec[op->b] : NULL);
            break;
        case FR_OP_ATTN: rc = attn(R, L, D, il); break;
        case FR_OP_FFN: rc = ffn(R, L, D); break;
        case FR_OP_POST_NORM: rc = norm(R, W->h, W->h, D->vec[op->w], NULL); break;
        case FR_OP_ADD: pending = true; break;
        }
    }
    if (!rc && pending) rc = R->op->add(R->o->be, W->x, 0, W->h, 0, 0, W->x, 0, n, R->err);
    return rc;
}

/* Why ctx cannot use the device caches (NULL: it can). */
static const char *ctx_refusal(const fr_offload *o, const frugal_context *ctx) {
    const fr_offload_whole *W = &o->whole;
    if (W->owner && W->owner != ctx) return "another context holds the device KV cache";
    if (ctx->n_seq_max != 1) return "more than one sequence per context";
    if (ctx->kv_window || ctx->kv_chunk) return "a KV eviction policy (its edits stay on the host)";
    if (ctx->kv_pool.k_type != FR_TYPE_F16 || ctx->kv_pool.v_type != FR_TYPE_F16) return "a KV type other than F16";
    if (ctx->n_ctx > W->kv_ctx) return "a context longer than the device KV cache";
    if (ctx->layer_src || ctx->act_hook) return "a streaming weight source or an activation observer";
    return NULL;
}

/* The batch's rows [t0, t0 + nt) through the device layers; x rows from `x`, results
 * to `out`. */
static int run_chunk(run *R, const fr_batch *b, int t0, const float *x, float *out) {
    fr_offload *o = R->o;
    fr_offload_whole *W = &o->whole;
    const size_t d = (size_t)R->hp->n_embd;
    int rc = R->op->upload(o->be, W->x, 0, x + (size_t)t0 * d, sizeof(float) * d * R->nt, R->err);
    if (!rc) rc = R->op->upload(o->be, W->pos, 0, b->pos + t0, sizeof(int32_t) * (size_t)R->nt, R->err);
    for (int il = o->first_layer; il < o->first_layer + o->n_layers && !rc; il++)
        rc = layer(R, &R->ctx->model->layers[il], il);
    if (!rc) rc = R->op->download(o->be, W->x, 0, out + (size_t)t0 * d, sizeof(float) * d * R->nt, R->err);
    return rc;
}

int fr_offload_run_layers(frugal_context *ctx, const fr_batch *b, int il, const float **pending) {
    fr_offload *o = ctx->model->offload;
    if (!o || !o->whole.on || o->failed || o->n_layers == 0 || il != o->first_layer) return 0;
    const char *why = ctx_refusal(o, ctx);
    if (why) {
        if (!o->whole.noted)
            fprintf(stderr, "frugal: %s: %s: only the matrix products of the device layers run there\n", o->be->name,
                    why);
        o->whole.noted = true;
        return 0;
    }
    const fr_hparams *hp = &ctx->model->hp;
    const size_t n = (size_t)b->n * hp->n_embd;
    if (*pending) /* the CPU layers' last block output joins x before it goes up */
        for (size_t i = 0; i < n; i++) ctx->x[i] += (*pending)[i];
    *pending = NULL;
    pthread_mutex_lock(&o->mu);
    o->whole.owner = ctx;
    fr_err err = FRUGAL_ERROR_INIT;
    run R = {o, o->be->ops, ctx, hp, 0, -3, NULL, &err};
    int rc = FRUGAL_OK;
    if (ctx->rope_factors && ctx->rope_factors != o->whole.fac_src) {
        rc = R.op->upload(o->be, o->whole.fac, 0, ctx->rope_factors, sizeof(float) * (size_t)(hp->n_rot / 2), &err);
        o->whole.fac_src = rc ? NULL : ctx->rope_factors;
    }
    /* results go to xb (free until the next layer's norm) so a failure leaves x intact */
    for (int t0 = 0; t0 < b->n && !rc; t0 += CHUNK) {
        R.nt = b->n - t0 < CHUNK ? b->n - t0 : CHUNK;
        R.r_mode = -3;
        rc = run_chunk(&R, b, t0, ctx->x, ctx->xb);
    }
    if (rc) {
        fprintf(stderr, "frugal: %s: %s: continuing on the CPU (the device layers' cache is lost)\n", o->be->name,
                err.message);
        o->failed = true;
    }
    pthread_mutex_unlock(&o->mu);
    if (rc) return 0;
    memcpy(ctx->x, ctx->xb, sizeof(float) * n);
    return o->n_layers;
}

void fr_offload_release(fr_offload *o, const void *ctx) {
    if (o && o->whole.owner == ctx) o->whole.owner = NULL;
}

int fr_offload_whole_layers(const fr_offload *o) { return o && o->whole.on && !o->failed ? o->n_layers : 0; }
