/* hparams.c - read a model's hyper-parameters: the keys every family shares, with
 * the defaults of the family's description (arch.h), then the family's own rules.
 * Every value is range-checked here, so the forward pass can trust them. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "model/model.h"

static const char *key(char *buf, size_t n, const char *arch, const char *suffix) {
    snprintf(buf, n, "%s.%s", arch, suffix);
    return buf;
}

static int u32_req(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out, fr_err *err) {
    char k[128];
    return gguf_get_u32(f, key(k, sizeof k, arch, suffix), out, err);
}

static int u32_opt(const gguf_file *f, const char *arch, const char *suffix, uint32_t def, uint32_t *out,
                   fr_err *err) {
    char k[128];
    return gguf_get_u32_opt(f, key(k, sizeof k, arch, suffix), def, out, err);
}

static int f32_opt(const gguf_file *f, const char *arch, const char *suffix, float def, float *out, fr_err *err) {
    char k[128];
    return gguf_get_f32_opt(f, key(k, sizeof k, arch, suffix), def, out, err);
}

/* The shape keys every family has. */
static int read_shape(fr_hparams *hp, const gguf_file *f, const char *a, fr_err *err) {
    uint32_t n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, key_len, val_len;
    int rc;
    if ((rc = u32_req(f, a, "context_length", &n_ctx, err)) ||
        (rc = u32_req(f, a, "embedding_length", &n_embd, err)) ||
        (rc = u32_req(f, a, "block_count", &n_layer, err)) ||
        (rc = u32_req(f, a, "feed_forward_length", &n_ff, err)) ||
        (rc = u32_req(f, a, "attention.head_count", &n_head, err)) ||
        (rc = u32_opt(f, a, "attention.head_count_kv", n_head, &n_head_kv, err)))
        return rc;
    if (n_embd == 0 || n_embd > (1u << 16) || n_layer == 0 || n_layer > 1024 || n_ff == 0 ||
        n_ff > (1u << 20) || n_head == 0 || n_head > 1024 || n_head_kv == 0 ||
        n_head % n_head_kv != 0 || n_ctx == 0)
        return fr_err_set(err, FRUGAL_E_FORMAT,
                          "implausible hyper-parameters: embd %u, layers %u, ffn %u, heads %u, kv heads %u, ctx %u",
                          n_embd, n_layer, n_ff, n_head, n_head_kv, n_ctx);
    if ((rc = u32_opt(f, a, "attention.key_length", n_embd / n_head, &key_len, err)) ||
        (rc = u32_opt(f, a, "attention.value_length", key_len, &val_len, err)))
        return rc;
    if (key_len == 0 || key_len > 1024 || key_len % 2)
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad head dimension %u", key_len);
    if (val_len != key_len)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "value_length %u differs from key_length %u", val_len, key_len);
    hp->n_ctx_train = (int)(n_ctx > (1u << 30) ? (1u << 30) : n_ctx);
    hp->n_embd = (int)n_embd;
    hp->n_layer = (int)n_layer;
    hp->n_ff = (int)n_ff;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->head_dim = (int)key_len;
    return FRUGAL_OK;
}

/* rope.*: base, dimensions, scaling (none / linear / YaRN; LongRoPE's attn_factor). */
static int read_rope(fr_hparams *hp, const gguf_file *f, const char *a, const fr_arch_desc *d, fr_err *err) {
    uint32_t n_rot, n_orig;
    float factor, attn_factor;
    int rc;
    if ((rc = u32_opt(f, a, "rope.dimension_count", d->no_rope ? 0 : (uint32_t)hp->head_dim, &n_rot, err)) ||
        (rc = f32_opt(f, a, "rope.freq_base", d->rope_base, &hp->rope.base, err)) ||
        (rc = f32_opt(f, a, "rope.scaling.factor", 0.0f, &factor, err)) ||
        (rc = f32_opt(f, a, "rope.scaling.attn_factor", 1.0f, &attn_factor, err)) ||
        (rc = u32_opt(f, a, "rope.scaling.original_context_length", (uint32_t)hp->n_ctx_train, &n_orig, err)))
        return rc;
    if (d->no_rope) n_rot = 0;
    if (n_rot > (uint32_t)hp->head_dim || n_rot % 2 || (!d->no_rope && n_rot == 0))
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad rope.dimension_count %u (head dim %d)", n_rot, hp->head_dim);
    if (!(hp->rope.base > 0.0f) || !(factor >= 0.0f) || !(attn_factor > 0.0f) || !isfinite(factor))
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad rope.freq_base or rope.scaling values");
    char k[128];
    gguf_str type = {"linear", 6};
    fr_err tmp = FRUGAL_ERROR_INIT;
    gguf_get_str(f, key(k, sizeof k, a, "rope.scaling.type"), &type, &tmp);
    hp->n_rot = (int)n_rot;
    fr_rope_cfg *r = &hp->rope;
    r->freq_scale = factor == 0.0f ? 1.0f : 1.0f / factor;
    r->ext_factor = 0.0f;
    r->attn_factor = attn_factor;
    r->beta_fast = 32.0f;
    r->beta_slow = 1.0f;
    r->n_ctx_orig = (int)(n_orig ? n_orig : (uint32_t)hp->n_ctx_train);
    if (gguf_str_eq(type, "none")) {
        r->freq_scale = 1.0f;
    } else if (gguf_str_eq(type, "yarn")) {
        /* ggml's rope multiplies by 1 + 0.1 ln(factor) itself; the reference engine
         * divides its attn_factor by the same, so only the file's factor remains */
        r->ext_factor = 1.0f;
        if ((rc = f32_opt(f, a, "rope.scaling.yarn_beta_fast", 32.0f, &r->beta_fast, err)) ||
            (rc = f32_opt(f, a, "rope.scaling.yarn_beta_slow", 1.0f, &r->beta_slow, err)))
            return rc;
        if (r->freq_scale < 1.0f) r->attn_factor /= 1.0f + 0.1f * logf(1.0f / r->freq_scale);
    } else if (!gguf_str_eq(type, "linear") && !gguf_str_eq(type, "longrope")) {
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "rope.scaling.type '%.*s' is not supported",
                          (int)(type.len < 32 ? type.len : 32), type.ptr);
    }
    hp->rope_swa = *r;
    return f32_opt(f, a, "rope.freq_base_swa", r->base, &hp->rope_swa.base, err);
}

/* Sliding window, soft-caps, epsilon. */
static int read_attn(fr_hparams *hp, const gguf_file *f, const char *a, const fr_arch_desc *d, fr_err *err) {
    uint32_t n_swa, period;
    int rc;
    if ((rc = u32_opt(f, a, "attention.sliding_window", (uint32_t)d->swa_default, &n_swa, err)) ||
        (rc = u32_opt(f, a, "attention.sliding_window_pattern", (uint32_t)d->swa_period, &period, err)) ||
        (rc = f32_opt(f, a, "attn_logit_softcapping", d->attn_softcap, &hp->attn_softcap, err)) ||
        (rc = f32_opt(f, a, "final_logit_softcapping", d->final_softcap, &hp->final_softcap, err)) ||
        (rc = f32_opt(f, a, d->layer_norm_eps ? "attention.layer_norm_epsilon" : "attention.layer_norm_rms_epsilon",
                      d->norm_eps, &hp->norm_eps, err)))
        return rc;
    hp->n_swa = d->swa_period ? (int)(n_swa > (1u << 30) ? (1u << 30) : n_swa) : 0;
    hp->swa_period = (int)(period > 1024 ? 1024 : period);
    if (!(hp->norm_eps >= 0.0f) || !(hp->attn_softcap >= 0.0f) || !(hp->final_softcap >= 0.0f))
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad epsilon or soft-cap value");
    return FRUGAL_OK;
}

/* expert_count / expert_used_count; the experts' size. */
static int read_experts(fr_hparams *hp, const gguf_file *f, const char *a, const fr_arch_desc *d, fr_err *err) {
    uint32_t n_expert, n_used, n_ff_exp;
    int rc;
    if ((rc = u32_opt(f, a, "expert_count", 0, &n_expert, err)) ||
        (rc = u32_opt(f, a, "expert_used_count", 0, &n_used, err)))
        return rc;
    if (d->moe && n_expert == 0) return fr_err_set(err, FRUGAL_E_FORMAT, "%s.expert_count is missing or 0", a);
    if (n_expert > 1024 || (n_expert && (n_used == 0 || n_used > n_expert)))
        return fr_err_set(err, FRUGAL_E_FORMAT, "expert_used_count %u out of range for expert_count %u", n_used,
                          n_expert);
    hp->n_expert = (int)n_expert;
    hp->n_expert_used = n_expert ? (int)n_used : 0;
    if (!d->expert_ff_key) return FRUGAL_OK;
    if ((rc = u32_req(f, a, "expert_feed_forward_length", &n_ff_exp, err))) return rc;
    if (n_ff_exp == 0 || n_ff_exp > (1u << 20))
        return fr_err_set(err, FRUGAL_E_FORMAT, "implausible expert_feed_forward_length %u", n_ff_exp);
    hp->n_ff = (int)n_ff_exp; /* the only FFN of these layers */
    return FRUGAL_OK;
}

int fr_hparams_read(fr_hparams *hp, const gguf_file *f, const fr_arch_desc *d, int n_vocab, fr_err *err) {
    const char *a = d->name;
    int rc;
    hp->arch = d;
    if ((rc = read_shape(hp, f, a, err)) || (rc = read_rope(hp, f, a, d, err)) || (rc = read_attn(hp, f, a, d, err)) ||
        (rc = read_experts(hp, f, a, d, err)))
        return rc;
    hp->n_vocab = n_vocab;
    hp->rope_neox = d->rope_neox;
    hp->emb_scale = d->emb_scale ? sqrtf((float)hp->n_embd) : 0.0f;
    hp->attn_scale = 1.0f / sqrtf((float)hp->head_dim);
    return d->fixup ? d->fixup(hp, f, a, err) : FRUGAL_OK;
}
