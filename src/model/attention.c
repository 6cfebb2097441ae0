/* attention.c - the attention op of the forward pass (causal, GQA/MQA, per-layer
 * sliding window, logit soft-cap) over the paged KV cache, and the cache edits that
 * need RoPE (context shift, chunk summaries).
 *
 * Numerics follow llama.cpp's CPU path (flash attention off) so logits match its
 * golden outputs closely: with an F16 cache the query and the attention weights are
 * rounded to F16 before their dot products, as ggml's mul_mat does. Quantized KV
 * caches (Q8_0, Q4_0, K8V4) follow llama.cpp's flash-attention CPU path instead:
 * the query is quantized to Q8_0 for the K dot products, V rows are dequantized. */
#include <math.h>
#include <string.h>

#include "model/forward.h"

typedef struct {
    frugal_context *ctx;
    const fr_batch *b;
    int il;
    int heads_per_item;   /* query heads of a group handled together (divides the group) */
} attn_job;

/* Attention, one work item per (token, KV head, slice of its query heads): the query
 * heads of a GQA group share every K and V row they read, so each cached row is
 * fetched once per group rather than once per head (and the cache keeps each KV
 * head's rows together: kv/kv_cache.h). Each thread has its own score rows (group x
 * n_ctx): K is read once in 64-row tiles into them, the softmax runs over the whole
 * row, then V is read once in 64-row tiles. Not an online (flash-style) softmax: that
 * reads K and V once too, and its only saving, the score rows (64 KiB per thread at
 * 2k tokens of an 8-head group), stays in L2; the exact softmax keeps the numerics
 * of llama.cpp with flash attention off (the setting of the golden outputs), which
 * rounds the normalised weights to F16.
 * K: the queries are converted to the K type's vec_dot_type (F16 for an F16 cache, as
 * ggml's mul_mat does; Q8_0 for quantized caches) and dotted with each cached row
 * (attn_kdot: 16 rows at a time, the same operations as vec_dot).
 * V: an F16 cache gets F16-rounded attention weights (ggml again); every V row slice
 * is converted to F32 once (SIMD to_float) and accumulated in F32 into all heads of
 * the slice (a loop the compiler vectorises; ggml's SIMD dot accumulates in F32 too,
 * and the golden tolerances hold unchanged). */
#define ATT_MAX_VALS 4096 /* heads-per-item x head_dim kept on the stack */

static void attention_worker(void *arg, int ith, int nth) {
    const attn_job *j = arg;
    frugal_context *ctx = j->ctx;
    const fr_hparams *hp = &ctx->model->hp;
    const fr_batch *b = j->b;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    /* scores = softcap(q.k) * scale, as the reference (whose Gemma/Phi-3 graphs
     * scale Q beforehand instead: then the scale here is 1) */
    const float scale = hp->arch->q_prescale ? 1.0f : hp->attn_scale, cap = hp->attn_softcap;
    const int window = fr_layer_window(hp, j->il);
    const fr_kv_pool *kvp = &ctx->kv_pool;
    const fr_type_traits *tk = fr_type_traits_get(kvp->k_type), *tv = fr_type_traits_get(kvp->v_type);
    const fr_type_traits *tq = fr_type_traits_get(tk->vec_dot_type);
    fr_from_float_fn q_conv = tq->act_from_float ? tq->act_from_float : tq->from_float;
    const size_t q_row = fr_row_size(tk->vec_dot_type, hd);
    const int per = j->heads_per_item, n_slices = group / per;
    float *scores = ctx->att_scores + (size_t)ith * (size_t)ctx->n_ctx * (size_t)group;
    uint8_t qconv[4 * ATT_MAX_VALS] __attribute__((aligned(64)));
    float vbuf[1024];
    uint16_t h16[512];
    const fr_type_traits *tf16 = fr_type_traits_get(FR_TYPE_F16), *tf32 = fr_type_traits_get(FR_TYPE_F32);
    float acc[ATT_MAX_VALS];
    float qf[ATT_MAX_VALS]; /* the converted queries as F32 (attn_kdot) */

    /* items dealt round-robin: a causal batch's later tokens attend to more keys, so
     * contiguous shares would leave the first thread idle for most of the op */
    const long n_items = (long)b->n * hp->n_head_kv * n_slices;
    for (long w = ith; w < n_items; w += nth) {
        int i = (int)(w / (hp->n_head_kv * n_slices));
        int g = (int)(w / n_slices % hp->n_head_kv), h0 = g * group + (int)(w % n_slices) * per;
        const fr_kv_cache *kv = b->kv[i];
        /* causal: positions lo..pos of this token's sequence (lo > 0: sliding window) */
        const int lo = window && b->pos[i] >= window ? b->pos[i] - window + 1 : 0, n_kv = b->pos[i] + 1 - lo;
        const float *q = ctx->q + (size_t)i * hp->n_head * hd + (size_t)h0 * hd;
        if (kv->k_type != FR_TYPE_F32)
            for (int hh = 0; hh < per; hh++) q_conv(q + (size_t)hh * hd, qconv + hh * q_row, hd);
        if (tk->attn_kdot) {
            /* the converted queries as F32, once; then every K row is read (and
             * widened) once for all heads of the item */
            for (int hh = 0; hh < per; hh++) tq->to_float(qconv + hh * q_row, qf + (size_t)hh * hd, hd);
            for (int t0 = 0; t0 < n_kv; t0 += 64) { /* 64 rows per call */
                const void *rows[64];
                const int nr = n_kv - t0 < 64 ? n_kv - t0 : 64;
                for (int t = 0; t < nr; t++) rows[t] = fr_kv_k(kv, j->il, lo + t0 + t, g);
                tk->attn_kdot(hd, rows, nr, qf, per, scores + t0, (size_t)n_kv);
            }
        } else {
            for (int t = 0; t < n_kv; t++) {
                const uint8_t *krow = fr_kv_k(kv, j->il, lo + t, g);
                for (int hh = 0; hh < per; hh++) {
                    const void *qv = kv->k_type == FR_TYPE_F32 ? (const void *)(q + (size_t)hh * hd)
                                                               : (const void *)(qconv + hh * q_row);
                    float s;
                    tk->vec_dot(hd, &s, krow, qv);
                    scores[(size_t)hh * n_kv + t] = s;
                }
            }
        }
        if (cap > 0.0f) fr_softcap(scores, per * n_kv, cap);
        if (scale != 1.0f)
            for (int k = 0; k < per * n_kv; k++) scores[k] *= scale;
        const bool f16 = kv->v_type == FR_TYPE_F16;
        for (int hh = 0; hh < per; hh++) {
            float *sr = scores + (size_t)hh * n_kv;
            tf32->softmax(sr, n_kv);
            /* F16 cache: the weights are rounded to F16 as ggml's mul_mat does; in
             * bulk with the F16 kernels (exact conversions, SIMD where available) */
            for (int t0 = 0; f16 && t0 < n_kv; t0 += (int)(sizeof h16 / sizeof *h16)) {
                const int len = n_kv - t0 < (int)(sizeof h16 / sizeof *h16) ? n_kv - t0 : (int)(sizeof h16 / sizeof *h16);
                tf16->from_float(sr + t0, h16, len);
                tf16->to_float(h16, sr + t0, len);
            }
        }
        for (int k = 0; k < per * hd; k++) acc[k] = 0.0f;
        for (int t0 = 0; tv->attn_vacc && t0 < n_kv; t0 += 64) { /* 64 rows per call */
            const void *rows[64];
            const int nr = n_kv - t0 < 64 ? n_kv - t0 : 64;
            for (int t = 0; t < nr; t++) rows[t] = fr_kv_v(kv, j->il, lo + t0 + t, g);
            tv->attn_vacc(hd, rows, nr, scores + t0, (size_t)n_kv, per, acc);
        }
        for (int t = 0; !tv->attn_vacc && t < n_kv; t++) {
            const uint8_t *vrow = fr_kv_v(kv, j->il, lo + t, g);
            const float *vf = (const float *)vrow;
            if (kv->v_type != FR_TYPE_F32) { /* exact for F16: same sums as element-wise */
                tv->to_float(vrow, vbuf, hd);
                vf = vbuf;
            }
            for (int hh = 0; hh < per; hh++) {
                const float p = scores[(size_t)hh * n_kv + t];
                float *a = acc + (size_t)hh * hd;
                for (int d = 0; d < hd; d++) a[d] += p * vf[d];
            }
        }
        float *out = ctx->att + (size_t)i * hp->n_head * hd + (size_t)h0 * hd;
        for (int k = 0; k < per * hd; k++) out[k] = acc[k];
    }
}

/* How many query heads of a group one attention item takes: the whole group (each
 * K/V row read once per group) unless that leaves too few items to keep the threads
 * busy (decoding one token of an MQA model) or overflows the stack buffers. */
static int heads_per_item(const frugal_context *ctx, int n_tok) {
    const fr_hparams *hp = &ctx->model->hp;
    int group = hp->n_head / hp->n_head_kv, per = group;
    int want_items = 2 * fr_pool_size(ctx->pool);
    while (per > 1 && (per * hp->head_dim > ATT_MAX_VALS ||
                       (long)n_tok * hp->n_head_kv * (group / per) < want_items)) {
        int next = per - 1;
        while (group % next) next--; /* a divisor of the group */
        per = next;
    }
    return per;
}

void fr_attention(frugal_context *ctx, const fr_batch *b, int il) {
    attn_job aj = {ctx, b, il, heads_per_item(ctx, b->n)};
    fr_pool_run(ctx->pool, attention_worker, &aj);
}

int fr_model_kv_swa(const frugal_model *m, long n_tokens, int n_seq, int n_ubatch, uint8_t *local,
                    fr_kv_swa_cfg *cfg) {
    const fr_hparams *hp = &m->hp;
    int window = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const int w = fr_layer_window(hp, il);
        local[il] = w > 0;
        if (w > window) window = w;
    }
    const long n_blocks = (n_tokens + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    if (!window || n_blocks > (1L << 30)) return 0;
    cfg->local = local;
    cfg->window = window;
    cfg->n_slots = fr_kv_swa_slots(window, n_seq, n_ubatch, (int)n_blocks);
    return cfg->n_slots < n_blocks;
}

/* Rotate the keys of positions [from, kv->n) by -delta positions. RoPE is a rotation
 * by an angle proportional to the position, so this moves a key from p to p - delta. */
static void rerotate_keys(frugal_context *ctx, fr_kv_cache *kv, int from, int delta) {
    const fr_hparams *hp = &ctx->model->hp;
    if (hp->n_rot == 0) return; /* learned positions: nothing to rotate */
    float *row = ctx->k; /* scratch: at least one K row */
    for (int il = 0; il < hp->n_layer; il++) {
        /* a pure rotation: the layer's angles without its magnitude scaling */
        fr_rope_cfg cfg = fr_layer_window(hp, il) ? hp->rope_swa : hp->rope;
        cfg.attn_factor = cfg.ext_factor != 0.0f ? 1.0f / (1.0f + 0.1f * logf(1.0f / cfg.freq_scale)) : 1.0f;
        for (int p = from; p < kv->n; p++) {
            fr_kv_k_get(kv, il, p, row);
            fr_rope_ext(row, hp->n_head_kv, hp->head_dim, hp->n_rot, -delta, &cfg, ctx->rope_factors, hp->rope_neox);
            fr_kv_k_put(kv, il, p, row);
        }
    }
}

void fr_model_kv_shift(frugal_context *ctx, fr_kv_cache *kv, int sinks, int n) {
    if (n <= 0 || sinks + n > kv->n) return;
    fr_kv_remove(kv, sinks, n);
    rerotate_keys(ctx, kv, sinks, n);
}

void fr_model_kv_summarize(frugal_context *ctx, fr_kv_cache *kv, int first, int n) {
    if (n < 2 || first < 0 || first + n > kv->n) return;
    float *row = ctx->k, *acc = ctx->v; /* scratch rows */
    for (int il = 0; il < kv->n_layer; il++) {
        for (int part = 0; part < 2; part++) {
            for (int d = 0; d < kv->row; d++) acc[d] = 0.0f;
            for (int p = first; p < first + n; p++) {
                if (part == 0) fr_kv_k_get(kv, il, p, row);
                else fr_kv_v_get(kv, il, p, row);
                for (int d = 0; d < kv->row; d++) acc[d] += row[d];
            }
            for (int d = 0; d < kv->row; d++) acc[d] /= (float)n;
            if (part == 0) fr_kv_k_put(kv, il, first, acc);
            else fr_kv_v_put(kv, il, first, acc);
        }
    }
    fr_kv_remove(kv, first + 1, n - 1);
    rerotate_keys(ctx, kv, first + 1, n - 1);
}
