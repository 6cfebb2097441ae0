/* forward.c - the one forward pass: every family's layer is its description's recipe
 * (arch.h) run over shared ops, top to bottom:
 *
 *   x = embed(tokens) [* sqrt(n_embd)] [+ pos_embd(positions)]
 *   for each layer, for each op of the recipe:
 *       NORM       h = norm(x) * w [+ b]              RMSNorm or LayerNorm
 *       ATTN       q, k, v = h Wq, h Wk, h Wv          (or one fused Wqkv; + biases)
 *                  q, k = qk_norm(q, k), rope(q, k)    per-head norms, layer's RoPE
 *                  cache k, v; y = attention(q, K, V) Wo (+ bo)
 *       FFN        y = down(act(h Wgate) * (h Wup))    (or fused gate+up, or a plain
 *                                                        GELU MLP with biases, or a
 *                                                        mixture of experts)
 *       POST_NORM  y = norm(y) * w
 *       ADD        x += y
 *   logits = (norm(x) * output_norm) Wout [soft-capped]
 *
 * Buffers: x the residual stream, xb the normed input of a block and then its output
 * y (the output is only written once the input is consumed), q/k/v/att attention,
 * hg/hu the FFN's hidden rows, fused the output of a fused matrix. The residual add
 * is folded into the next norm (x += y; h = norm(x)), one pass instead of two. */
#include <math.h>
#include <string.h>

#include "model/forward.h"
#include "model/offload.h"

typedef enum { STEP_NORM, STEP_POST_NORM, STEP_QKV, STEP_ACT } step_kind;

typedef struct {
    frugal_context *ctx;
    const fr_batch *b;
    const fr_layer *L;
    int il;
    step_kind kind;
    const float *w, *bias; /* STEP_NORM / STEP_POST_NORM */
    const float *resid;    /* STEP_NORM: added into x first (NULL: none) */
} step_job;

static void norm_row(const fr_hparams *hp, float *out, const float *x, const float *w, const float *b) {
    if (hp->arch->norm == FR_NORM_LAYER) fr_layernorm(out, x, w, b, hp->n_embd, hp->norm_eps);
    else fr_rmsnorm(out, x, w, hp->n_embd, hp->norm_eps);
}

static void add_vec(float *x, const float *b, int n) {
    if (b)
        for (int i = 0; i < n; i++) x[i] += b[i];
}

/* Token i's queries and keys: split a fused row, biases, per-head norms, RoPE,
 * query pre-scaling. */
static void qkv_token(const step_job *j, long i) {
    frugal_context *ctx = j->ctx;
    const fr_hparams *hp = &ctx->model->hp;
    const fr_layer *L = j->L;
    const int hd = hp->head_dim, qd = hp->n_head * hd, kvd = hp->n_head_kv * hd;
    float *q = ctx->q + (size_t)i * qd, *k = ctx->k + (size_t)i * kvd, *v = ctx->v + (size_t)i * kvd;
    if (L->mat[FR_WQKV].data) { /* rows Q, K, V of the fused output */
        float *f = ctx->fused + (size_t)i * (qd + 2 * kvd);
        add_vec(f, L->vec[FR_BQKV], qd + 2 * kvd);
        memcpy(q, f, (size_t)qd * sizeof *q);
        memcpy(k, f + qd, (size_t)kvd * sizeof *k);
        memcpy(v, f + qd + kvd, (size_t)kvd * sizeof *v);
    }
    add_vec(q, L->vec[FR_BQ], qd);
    add_vec(k, L->vec[FR_BK], kvd);
    add_vec(v, L->vec[FR_BV], kvd);
    if (L->vec[FR_Q_NORM])
        for (int h = 0; h < hp->n_head; h++) fr_rmsnorm(q + h * hd, q + h * hd, L->vec[FR_Q_NORM], hd, hp->norm_eps);
    if (L->vec[FR_K_NORM])
        for (int h = 0; h < hp->n_head_kv; h++)
            fr_rmsnorm(k + h * hd, k + h * hd, L->vec[FR_K_NORM], hd, hp->norm_eps);
    if (hp->n_rot) {
        const fr_rope_cfg *r = fr_layer_window(hp, j->il) ? &hp->rope_swa : &hp->rope;
        fr_rope_ext(q, hp->n_head, hd, hp->n_rot, j->b->pos[i], r, ctx->rope_factors, hp->rope_neox);
        fr_rope_ext(k, hp->n_head_kv, hd, hp->n_rot, j->b->pos[i], r, ctx->rope_factors, hp->rope_neox);
    }
    if (hp->arch->q_prescale)
        for (int e = 0; e < qd; e++) q[e] *= hp->attn_scale;
}

/* Elements [e0, e1) of the FFN's activation over the batch: hg = act(gate) * up,
 * from hg/hu or from the fused [gate | up] rows; or hg = gelu(hg + b_up). */
static void act_range(const step_job *j, long e0, long e1) {
    frugal_context *ctx = j->ctx;
    const fr_hparams *hp = &ctx->model->hp;
    const fr_layer *L = j->L;
    const long ff = hp->n_ff;
    const bool fused = hp->arch->ffn != FR_FFN_GELU && !L->mat[FR_WGATE].data;
    const fr_type_traits *tf32 = fr_type_traits_get(FR_TYPE_F32);
    while (e0 < e1) { /* one token's stretch at a time */
        const long t = e0 / ff, c = e0 % ff, len = (e1 - e0 < ff - c) ? e1 - e0 : ff - c;
        float *out = ctx->hg + e0;
        const float *g = fused ? ctx->fused + t * 2 * ff + c : ctx->hg + e0;
        const float *u = fused ? g + ff : ctx->hu + e0;
        switch (hp->arch->ffn) {
        case FR_FFN_SILU_GLU: tf32->swiglu(out, g, u, (int)len); break;
        case FR_FFN_GELU_GLU: fr_geglu(out, g, u, (int)len); break;
        case FR_FFN_GELU:
            if (L->vec[FR_BUP]) add_vec(out, L->vec[FR_BUP] + c, (int)len);
            fr_gelu(out, out, (int)len);
            break;
        }
        e0 += len;
    }
}

static void step_worker(void *arg, int ith, int nth) {
    const step_job *j = arg;
    frugal_context *ctx = j->ctx;
    const fr_hparams *hp = &ctx->model->hp;
    const int d = hp->n_embd;
    long t0, t1;
    if (j->kind == STEP_ACT) { /* element-wise: split the elements, not the tokens */
        fr_split((long)j->b->n * hp->n_ff, ith, nth, &t0, &t1);
        act_range(j, t0, t1);
        return;
    }
    fr_split(j->b->n, ith, nth, &t0, &t1);
    for (long i = t0; i < t1; i++) {
        float *x = ctx->x + (size_t)i * d, *xb = ctx->xb + (size_t)i * d;
        switch (j->kind) {
        case STEP_NORM:
            if (j->resid)
                for (int e = 0; e < d; e++) x[e] += j->resid[(size_t)i * d + e];
            norm_row(hp, xb, x, j->w, j->bias);
            break;
        case STEP_POST_NORM: norm_row(hp, xb, xb, j->w, NULL); break;
        case STEP_QKV: qkv_token(j, i); break;
        default: break;
        }
    }
}

static void step(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il, step_kind kind,
                 const float *w, const float *bias, const float *resid) {
    step_job j = {ctx, b, L, il, kind, w, bias, resid};
    /* one token: inline, except the FFN activation's n_ff elements (worth all cores) */
    if (b->n > 1 || kind == STEP_ACT) fr_pool_run(ctx->pool, step_worker, &j);
    else step_worker(&j, 0, 1);
}

/* Hand a matmul's input to the calibration observer, if one is installed. */
static void observe(const frugal_context *ctx, const fr_weight *w, const float *x, int n) {
    if (ctx->act_hook) ctx->act_hook(ctx->act_user, w->src ? w->src : w->data, x, n, w->n_in);
}

static void matmul(frugal_context *ctx, const fr_weight *w, const float *x, int n, float *y) {
    observe(ctx, w, x, n);
    if (fr_offload_matmul(ctx->model->offload, w, x, n, y)) return; /* on the device (-ngl) */
    fr_matmul(ctx->pool, w, x, n, y, ctx->qbuf);
}

/* Two or three matrices over one input (Q/K/V, gate/up): converted once, one pass. */
static void matmul_multi(frugal_context *ctx, int n_w, const fr_weight *const *ws, float *const *ys, const float *x,
                         int n) {
    for (int k = 0; k < n_w; k++) observe(ctx, ws[k], x, n);
    if (fr_offload_matmul_multi(ctx->model->offload, n_w, ws, ys, x, n)) return; /* on the device (-ngl) */
    fr_matmul_multi(ctx->pool, n_w, ws, ys, x, n, ctx->qbuf);
}

static void add_bias_rows(float *y, const float *bias, int n_tok, int n) {
    for (int t = 0; bias && t < n_tok; t++) add_vec(y + (size_t)t * n, bias, n);
}

/* y (in xb) = attention block of h (in xb). */
static void attn_block(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il) {
    const fr_hparams *hp = &ctx->model->hp;
    const int n = b->n, kvd = hp->n_head_kv * hp->head_dim;
    fr_kv_layer_pin(&ctx->kv_pool, il, b->kv, n); /* with a disk tier: this layer's pages */
    if (L->mat[FR_WQKV].data) {
        matmul(ctx, &L->mat[FR_WQKV], ctx->xb, n, ctx->fused);
    } else {
        const fr_weight *w[3] = {&L->mat[FR_WQ], &L->mat[FR_WK], &L->mat[FR_WV]};
        float *y[3] = {ctx->q, ctx->k, ctx->v};
        matmul_multi(ctx, 3, w, y, ctx->xb, n);
    }
    step(ctx, b, L, il, STEP_QKV, NULL, NULL, NULL);
    for (int i = 0; i < n; i++) /* serial: may allocate KV pages */
        fr_kv_store(b->kv[i], il, b->pos[i], ctx->k + (size_t)i * kvd, ctx->v + (size_t)i * kvd);
    fr_attention(ctx, b, il);
    matmul(ctx, &L->mat[FR_WO], ctx->att, n, ctx->xb);
    add_bias_rows(ctx->xb, L->vec[FR_BO], n, hp->n_embd);
}

/* Expert e of a stacked expert tensor: a view of its rows. */
static fr_weight expert_view(const fr_weight *w, int e, int n_expert) {
    fr_weight v = *w;
    v.n_out = w->n_out / n_expert;
    const size_t bytes = fr_row_size(w->type, w->n_in) * (size_t)v.n_out;
    v.data = (const uint8_t *)w->data + (size_t)e * bytes;
    v.src = w->src ? (const uint8_t *)w->src + (size_t)e * bytes : NULL;
    return v;
}

/* sel[0..K) = the indices of the K largest of lg[0..E), largest first (ties: lowest index). */
static void top_k(const float *lg, int E, int K, int *sel) {
    for (int k = 0; k < K; k++) {
        int best = -1;
        for (int e = 0; e < E; e++) {
            bool taken = false;
            for (int j = 0; j < k; j++) taken |= sel[j] == e;
            if (!taken && (best < 0 || lg[e] > lg[best])) best = e;
        }
        sel[k] = best;
    }
}

/* Token t's experts: softmax over every router logit, the n_used most probable (in
 * order), their probabilities renormalised to sum 1 (Mixtral, Qwen3-MoE). */
static void route_token(const fr_hparams *hp, float *logits, int *sel, float *w) {
    const int E = hp->n_expert, K = hp->n_expert_used;
    fr_softmax(logits, E);
    top_k(logits, E, K, sel);
    float sum = 0.0f;
    for (int k = 0; k < K; k++) sum += w[k] = logits[sel[k]];
    for (int k = 0; k < K; k++) w[k] /= sum;
}

/* One expert over the batch's tokens that picked it: their rows of h are gathered,
 * run through the expert's SwiGLU, and scattered to their pick slots in moe_out, so
 * each expert's weights are read once per batch, not once per token. */
static void run_expert(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int e, const fr_weight *ws) {
    const fr_hparams *hp = &ctx->model->hp;
    const int d = hp->n_embd, K = hp->n_expert_used, E = hp->n_expert;
    int m = 0;
    for (int s = 0; s < b->n * K; s++)
        if (ctx->moe_sel[s] == e) {
            memcpy(ctx->moe_in + (size_t)m * d, ctx->xb + (size_t)(s / K) * d, (size_t)d * sizeof(float));
            ctx->moe_rows[m++] = s;
        }
    if (m == 0) return;
    /* ws: the expert's gate, up, down from a streaming source; else views of the stacks */
    const fr_weight gate = ws ? ws[0] : expert_view(&L->mat[FR_WGATE_EXPS], e, E);
    const fr_weight up = ws ? ws[1] : expert_view(&L->mat[FR_WUP_EXPS], e, E);
    const fr_weight down = ws ? ws[2] : expert_view(&L->mat[FR_WDOWN_EXPS], e, E);
    const fr_weight *w[2] = {&gate, &up};
    float *y[2] = {ctx->hg, ctx->hu};
    observe(ctx, &L->mat[FR_WGATE_EXPS], ctx->moe_in, m); /* calibration: per stacked tensor */
    observe(ctx, &L->mat[FR_WUP_EXPS], ctx->moe_in, m);
    fr_matmul_multi(ctx->pool, 2, w, y, ctx->moe_in, m, ctx->qbuf);
    fr_type_traits_get(FR_TYPE_F32)->swiglu(ctx->hg, ctx->hg, ctx->hu, m * hp->n_ff);
    observe(ctx, &L->mat[FR_WDOWN_EXPS], ctx->hg, m);
    fr_matmul(ctx->pool, &down, ctx->hg, m, ctx->moe_y, ctx->qbuf);
    for (int r = 0; r < m; r++)
        memcpy(ctx->moe_out + (size_t)ctx->moe_rows[r] * d, ctx->moe_y + (size_t)r * d, (size_t)d * sizeof(float));
}

/* conf[k] = how far pick sel[k] of logits lg stands above the best logit not picked,
 * in standard deviations of lg: a pick guessed from the attention's input stays a
 * pick after the attention's output is added when this margin is large. */
static void pick_margins(const float *lg, int E, int K, const int *sel, float *conf) {
    double sum = 0.0, sq = 0.0;
    float out = -INFINITY;
    for (int e = 0; e < E; e++) {
        sum += lg[e];
        sq += (double)lg[e] * lg[e];
        bool picked = false;
        for (int k = 0; k < K; k++) picked |= sel[k] == e;
        if (!picked && lg[e] > out) out = lg[e];
    }
    const double mean = sum / E, var = sq / E - mean * mean, sd = var > 0 ? sqrt(var) : 0.0;
    for (int k = 0; k < K; k++) conf[k] = sd > 0 ? (float)((lg[sel[k]] - out) / sd) : 0.0f;
}

/* Prediction of this layer's picks, so a streaming source can read them while the
 * attention computes: the layer's router applied to the attention's normalised input
 * (x + attention output, normalised by the FFN norm, is what it will see; the
 * attention output is small beside x in a trained model, so the top picks mostly
 * agree), each guess with its margin (pick_margins; moe_w is free until the router
 * runs). Only the top-K order matters, so no softmax. */
static void predict_picks(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il) {
    fr_layer_source *src = ctx->layer_src;
    const fr_hparams *hp = &ctx->model->hp;
    if (!src || !src->expert_prefetch || !L->mat[FR_WGATE_INP].data) return;
    const int E = hp->n_expert, K = hp->n_expert_used;
    fr_matmul(ctx->pool, &L->mat[FR_WGATE_INP], ctx->xb, b->n, ctx->moe_logits, ctx->qbuf);
    for (int t = 0; t < b->n; t++) {
        const float *lg = ctx->moe_logits + (size_t)t * E;
        int *sel = ctx->moe_pred + (size_t)t * K;
        top_k(lg, E, K, sel);
        pick_margins(lg, E, K, sel, ctx->moe_w + (size_t)t * K);
    }
    src->expert_prefetch(src->user, il, ctx->moe_pred, ctx->moe_w, b->n * K);
}

/* 1 when one of the n experts in `rest` of layer il is still being read. */
static bool reads_pending(fr_layer_source *src, int il, const int *rest, int n) {
    if (!src->expert_ready) return false;
    for (int i = 0; i < n; i++)
        if (!src->expert_ready(src->user, il, rest[i])) return true;
    return false;
}

/* --- expert streaming hook (budget/experts.c) --- The picked experts, in the order a
 * streaming source asks (cached first), each held in memory only while it runs. While
 * the layer's reads are pending, the experts run on one thread when ctx->expert_solo
 * (FRUGAL_EXPERT_SOLO): on the development VM (2 vCPUs, Firecracker's virtio disk)
 * O_DIRECT reads ran at 2.3-2.9 GB/s with both vCPUs busy, even with plain ALU loops,
 * and 3.6-4.4 GB/s with one idle, so the idle vCPU is worth more to the reads than to
 * the matmuls they would otherwise wait for. */
static void run_experts(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il) {
    fr_layer_source *src = ctx->layer_src;
    if (!src || !src->expert_route) {
        for (int e = 0; e < ctx->model->hp.n_expert; e++) run_expert(ctx, b, L, e, NULL);
        return;
    }
    const int *order = NULL;
    const int n = src->expert_route(src->user, il, ctx->moe_sel, b->n * ctx->model->hp.n_expert_used, &order);
    for (int i = 0; i < n; i++) {
        /* about to wait for the disk: the idle workers sleep instead of spinning */
        if (src->expert_ready && !src->expert_ready(src->user, il, order[i])) fr_pool_park(ctx->pool);
        const fr_weight *w = src->expert_get(src->user, il, order[i]);
        if (ctx->expert_solo) fr_pool_solo(ctx->pool, reads_pending(src, il, order + i + 1, n - i - 1));
        run_expert(ctx, b, L, order[i], w);
        src->expert_put(src->user, il, order[i]);
    }
    if (ctx->expert_solo) fr_pool_solo(ctx->pool, 0);
}
/* --- end of the expert streaming hook --- */

/* y (in xb) = mixture-of-experts block of h (in xb): router, picks, the picked
 * experts, their outputs weighted and summed in pick order (as the reference). */
static void moe_block(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il) {
    const fr_hparams *hp = &ctx->model->hp;
    const int n = b->n, d = hp->n_embd, E = hp->n_expert, K = hp->n_expert_used;
    matmul(ctx, &L->mat[FR_WGATE_INP], ctx->xb, n, ctx->moe_logits);
    for (int t = 0; t < n; t++)
        route_token(hp, ctx->moe_logits + (size_t)t * E, ctx->moe_sel + (size_t)t * K, ctx->moe_w + (size_t)t * K);
    run_experts(ctx, b, L, il);
    for (int t = 0; t < n; t++) {
        float *out = ctx->xb + (size_t)t * d;
        for (int k = 0; k < K; k++) {
            const float *y = ctx->moe_out + ((size_t)t * K + k) * d, w = ctx->moe_w[(size_t)t * K + k];
            for (int i = 0; i < d; i++) out[i] = k ? out[i] + y[i] * w : y[i] * w;
        }
    }
}

/* y (in xb) = feed-forward block of h (in xb). */
static void ffn_block(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il) {
    const fr_hparams *hp = &ctx->model->hp;
    const int n = b->n;
    if (L->mat[FR_WGATE_INP].data) {
        moe_block(ctx, b, L, il);
        return;
    }
    if (hp->arch->ffn == FR_FFN_GELU) {
        matmul(ctx, &L->mat[FR_WUP], ctx->xb, n, ctx->hg);
    } else if (!L->mat[FR_WGATE].data) {
        matmul(ctx, &L->mat[FR_WUP], ctx->xb, n, ctx->fused);
    } else {
        const fr_weight *w[2] = {&L->mat[FR_WGATE], &L->mat[FR_WUP]};
        float *y[2] = {ctx->hg, ctx->hu};
        matmul_multi(ctx, 2, w, y, ctx->xb, n);
    }
    step(ctx, b, L, il, STEP_ACT, NULL, NULL, NULL);
    matmul(ctx, &L->mat[FR_WDOWN], ctx->hg, n, ctx->xb);
    add_bias_rows(ctx->xb, L->vec[FR_BDOWN], n, hp->n_embd);
}

static void embed(frugal_context *ctx, const fr_batch *b) {
    const frugal_model *m = ctx->model;
    const int d = m->hp.n_embd;
    float *tmp = ctx->xb;
    for (int i = 0; i < b->n; i++) {
        float *x = ctx->x + (size_t)i * d;
        fr_weight_row(&m->tok_embd, b->tokens[i], x);
        if (m->hp.emb_scale != 0.0f)
            for (int e = 0; e < d; e++) x[e] *= m->hp.emb_scale;
        if (m->pos_embd.data) {
            fr_weight_row(&m->pos_embd, b->pos[i], tmp);
            add_vec(x, tmp, d);
        }
    }
}

/* One layer: its recipe, op by op. *pending: a block output not yet added to x. */
static void run_layer(frugal_context *ctx, const fr_batch *b, const fr_layer *L, int il, const float **pending) {
    for (const fr_op *op = ctx->model->hp.arch->recipe; op->kind != FR_OP_END; op++) {
        switch (op->kind) {
        case FR_OP_NORM:
            step(ctx, b, L, il, STEP_NORM, L->vec[op->w], op->b ? L->vec[op->b] : NULL, *pending);
            *pending = NULL;
            break;
        case FR_OP_ATTN:
            predict_picks(ctx, b, L, il); /* reads ahead overlap the attention */
            attn_block(ctx, b, L, il);
            break;
        case FR_OP_FFN: ffn_block(ctx, b, L, il); break;
        case FR_OP_POST_NORM: step(ctx, b, L, il, STEP_POST_NORM, L->vec[op->w], NULL, NULL); break;
        case FR_OP_ADD: *pending = ctx->xb; break;
        }
    }
}

void fr_forward(frugal_context *ctx, const fr_batch *b) {
    const frugal_model *m = ctx->model;
    const fr_hparams *hp = &m->hp;
    const int n = b->n, d = hp->n_embd;
    float *x = ctx->x, *xb = ctx->xb;

    embed(ctx, b);
    const float *pending = NULL;
    for (int il = 0; il < hp->n_layer; il++) {
        const int n_dev = fr_offload_run_layers(ctx, b, il, &pending); /* whole layers on the device */
        if (n_dev) {
            il += n_dev - 1;
            continue;
        }
        fr_layer_source *src = ctx->layer_src;
        const fr_layer *L = src ? src->acquire(src->user, il) : &m->layers[il];
        run_layer(ctx, b, L, il, &pending);
        if (src) src->release(src->user, il);
    }
    if (pending)
        for (size_t i = 0; i < (size_t)n * d; i++) x[i] += pending[i];
    fr_kv_unpin(&ctx->kv_pool);

    /* output head, only for the tokens that want logits (rows gathered in order) */
    if (b->n_out == 0) return;
    for (int i = 0; i < n; i++)
        if (b->out[i] >= 0) norm_row(hp, xb + (size_t)b->out[i] * d, x + (size_t)i * d, m->output_norm, m->output_norm_b);
    matmul(ctx, &m->output, xb, b->n_out, b->logits);
    if (hp->final_softcap > 0.0f) fr_softcap(b->logits, b->n_out * hp->n_vocab, hp->final_softcap);
}
