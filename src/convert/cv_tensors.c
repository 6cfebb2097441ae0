/* cv_tensors.c - the output tensors of a conversion: HF names to GGUF names, the
 * layout changes the GGUF conventions need, and producing each tensor's bytes.
 *
 * What llama.cpp's converter does, reproduced here (tensor_mapping.py and the
 * families' modify_tensors):
 *  - names: model.layers.N / transformer.h.N -> blk.N, then the per-layer table below;
 *  - llama (and Mixtral): q_proj/k_proj rows go from HF's rotate-half order to the
 *    interleaved order, per head: out row h*d + 2j + k = in row h*d + k*d/2 + j;
 *  - GPT-2's Conv1D weights are stored [in, out]: transposed to [out, in];
 *  - Gemma's RMSNorm computes x * (1 + w): the stored weight becomes w + 1 (computed
 *    in the source precision, as torch adds in the tensor's dtype);
 *  - per-expert tensors (Mixtral's block_sparse_moe.experts.E.w1/w2/w3, Qwen3-MoE's
 *    mlp.experts.E.{gate,up,down}_proj) are stacked into one [E, out, in] tensor;
 *  - types: 1-D tensors, *_norm.weight, the MoE router, position embeddings and
 *    anything not ending in .weight are F32; the rest take the file's float type.
 * Data is produced one tensor at a time from the mapping (rows converted through a
 * float buffer only when a change is needed), and the source pages are released
 * right after, so memory stays at about one tensor. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "convert/cv_internal.h"
#include "convert/hfjson.h"

typedef struct rename_rule { const char *hf, *gguf; unsigned xform; } rename_rule;

/* Per-layer names (after "model.layers.N." or "transformer.h.N."); .weight/.bias kept. */
static const rename_rule k_layer[] = {
    {"input_layernorm", "attn_norm", 0},
    {"self_attn.q_proj", "attn_q", 0}, {"self_attn.k_proj", "attn_k", 0},
    {"self_attn.v_proj", "attn_v", 0}, {"self_attn.o_proj", "attn_output", 0},
    {"self_attn.qkv_proj", "attn_qkv", 0},
    {"self_attn.q_norm", "attn_q_norm", 0}, {"self_attn.k_norm", "attn_k_norm", 0},
    {"mlp.gate_proj", "ffn_gate", 0}, {"mlp.up_proj", "ffn_up", 0}, {"mlp.down_proj", "ffn_down", 0},
    {"mlp.gate_up_proj", "ffn_up", 0},
    {"mlp.gate", "ffn_gate_inp", 0}, {"block_sparse_moe.gate", "ffn_gate_inp", 0},
    {"pre_feedforward_layernorm", "ffn_norm", 0}, {"post_feedforward_layernorm", "post_ffw_norm", 0},
    {"ln_1", "attn_norm", 0}, {"ln_2", "ffn_norm", 0},
    {"attn.c_attn", "attn_qkv", CV_X_TRANSPOSE}, {"attn.c_proj", "attn_output", CV_X_TRANSPOSE},
    {"mlp.c_fc", "ffn_up", CV_X_TRANSPOSE}, {"mlp.c_proj", "ffn_down", CV_X_TRANSPOSE},
};

static const rename_rule k_global[] = {
    {"model.embed_tokens", "token_embd", 0}, {"model.norm", "output_norm", 0}, {"lm_head", "output", 0},
    {"transformer.wte", "token_embd", 0}, {"transformer.wpe", "position_embd", 0},
    {"transformer.ln_f", "output_norm", 0}, {"wte", "token_embd", 0}, {"wpe", "position_embd", 0},
    {"ln_f", "output_norm", 0},
};

/* Tensors the converter drops. */
static bool skipped(const cv_ctx *c, const char *n) {
    size_t l = strlen(n);
    static const char *const tails[] = {".attn.bias", ".attn.masked_bias", ".rotary_emb.inv_freq"};
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(tails[i]);
        if (l >= k && !strcmp(n + l - k, tails[i])) return true;
    }
    return (c->fam->flags & CV_F_SKIP_LM_HEAD) && !strcmp(n, "lm_head.weight");
}

/* Split "prefix.N.rest": the layer number and rest, or -1. */
static int layer_of(const char *n, const char **rest) {
    static const char *const pre[] = {"model.layers.", "transformer.h.", "h."};
    for (size_t i = 0; i < 3; i++) {
        size_t k = strlen(pre[i]);
        if (strncmp(n, pre[i], k)) continue;
        char *end;
        long v = strtol(n + k, &end, 10);
        if (end == n + k || *end != '.' || v < 0 || v > 100000) return -1;
        *rest = end + 1;
        return (int)v;
    }
    return -1;
}

/* "base.suffix" where base matches; suffix is .weight or .bias. */
static const char *match_base(const char *n, const char *base) {
    size_t k = strlen(base);
    if (strncmp(n, base, k) || (strcmp(n + k, ".weight") && strcmp(n + k, ".bias"))) return NULL;
    return n + k;
}

/* GGUF name of HF tensor n into out; false when there is none. */
static bool rename_tensor(const cv_ctx *c, const char *n, char *out, size_t cap, unsigned *xform) {
    const char *rest, *sfx;
    int L = layer_of(n, &rest);
    *xform = 0;
    if (L >= 0) {
        bool gn = c->fam->flags & CV_F_GEMMA_NORMS;
        if ((sfx = match_base(rest, "post_attention_layernorm"))) {
            snprintf(out, cap, "blk.%d.%s%s", L, gn ? "post_attention_norm" : "ffn_norm", sfx);
            return true;
        }
        for (size_t i = 0; i < sizeof k_layer / sizeof k_layer[0]; i++)
            if ((sfx = match_base(rest, k_layer[i].hf))) {
                snprintf(out, cap, "blk.%d.%s%s", L, k_layer[i].gguf, sfx);
                *xform = !strcmp(sfx, ".weight") ? k_layer[i].xform : 0;
                return true;
            }
        return false;
    }
    for (size_t i = 0; i < sizeof k_global / sizeof k_global[0]; i++)
        if ((sfx = match_base(n, k_global[i].hf))) {
            snprintf(out, cap, "%s%s", k_global[i].gguf, sfx);
            return true;
        }
    return false;
}

static bool ends_with(const char *s, const char *t) {
    size_t a = strlen(s), b = strlen(t);
    return a >= b && !strcmp(s + a - b, t);
}

static fr_type out_type(const cv_ctx *c, const char *name, int n_dims) {
    if (n_dims <= 1 || ends_with(name, "_norm.weight") || strstr(name, "ffn_gate_inp") ||
        !strcmp(name, "position_embd.weight") || !ends_with(name, ".weight"))
        return FR_TYPE_F32;
    return c->float_type;
}

static cv_tensor *new_tensor(cv_ctx *c, fr_err *err) {
    if (c->n_t == c->cap_t) {
        int cap = c->cap_t ? 2 * c->cap_t : 64;
        cv_tensor *t = fr_realloc(c->t, (size_t)cap * sizeof *t);
        if (!t) { fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
        c->t = t;
        c->cap_t = cap;
    }
    cv_tensor *t = &c->t[c->n_t++];
    memset(t, 0, sizeof *t);
    return t;
}

static void set_shape(cv_tensor *t, const st_tensor *s, bool transpose) {
    t->n_dims = s->n_dims ? s->n_dims : 1;
    for (int i = 0; i < 4; i++) t->ne[i] = 1;
    for (int i = 0; i < s->n_dims; i++) t->ne[i] = s->shape[s->n_dims - 1 - i];
    if (transpose && s->n_dims == 2) {
        int64_t x = t->ne[0];
        t->ne[0] = t->ne[1];
        t->ne[1] = x;
    }
}

/* Mixtral / Qwen3-MoE expert tensor: true and *kind (0 gate, 1 up, 2 down), *e set. */
static bool expert_of(const char *rest, int *e, int *kind) {
    static const char *const pre[] = {"block_sparse_moe.experts.", "mlp.experts."};
    static const char *const kinds[2][3] = {{"w1.weight", "w3.weight", "w2.weight"},
                                            {"gate_proj.weight", "up_proj.weight", "down_proj.weight"}};
    for (int p = 0; p < 2; p++) {
        size_t k = strlen(pre[p]);
        if (strncmp(rest, pre[p], k)) continue;
        char *end;
        long v = strtol(rest + k, &end, 10);
        if (end == rest + k || *end != '.' || v < 0 || v >= CV_MAX_SRC) return false;
        for (int j = 0; j < 3; j++)
            if (!strcmp(end + 1, kinds[p][j])) { *e = (int)v; *kind = j; return true; }
    }
    return false;
}

/* One stacked ffn_*_exps tensor per layer and kind from its n_exp experts. */
static int plan_experts(cv_ctx *c, int64_t n_exp, fr_err *err) {
    static const char *const names[3] = {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
    int n_layers = 0;
    for (size_t i = 0; i < c->st->n_tensors; i++) {
        const char *rest;
        int L = layer_of(c->st->tensors[i].name, &rest), e, k;
        if (L >= 0 && expert_of(rest, &e, &k) && L + 1 > n_layers) n_layers = L + 1;
    }
    if (n_layers && (n_exp <= 0 || n_exp > CV_MAX_SRC))
        return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: expert tensors but no usable num_local_experts/num_experts");
    for (int L = 0; L < n_layers; L++)
        for (int k = 0; k < 3; k++) {
            cv_tensor *t = new_tensor(c, err);
            if (!t) return FRUGAL_E_NOMEM;
            snprintf(t->name, sizeof t->name, "blk.%d.%s.weight", L, names[k]);
            for (size_t i = 0; i < c->st->n_tensors; i++) {
                const st_tensor *s = &c->st->tensors[i];
                const char *rest;
                int e, kk;
                if (layer_of(s->name, &rest) == L && expert_of(rest, &e, &kk) && kk == k && e < n_exp) t->src[e] = s;
            }
            for (int e = 0; e < n_exp; e++) {
                const st_tensor *s = t->src[e];
                if (!s) return fr_err_set(err, FRUGAL_E_FORMAT, "layer %d: expert %d of %s is missing", L, e, names[k]);
                if (s->n_dims != 2 || s->dtype != t->src[0]->dtype || s->shape[0] != t->src[0]->shape[0] ||
                    s->shape[1] != t->src[0]->shape[1])
                    return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': shape or dtype differs from expert 0's", s->name);
            }
            t->n_src = (int)n_exp;
            set_shape(t, t->src[0], false);
            t->n_dims = 3;
            t->ne[2] = n_exp;
            t->rows = t->ne[1];
            t->xform = 0;
            t->type = out_type(c, t->name, 3);
        }
    return FRUGAL_OK;
}

/* llama3 rope_scaling: llama.cpp's rope_freqs factors (LlamaModel.generate_extra_tensors),
 * computed in float32 as torch does. */
static int plan_rope_freqs(cv_ctx *c, fr_err *err) {
    const cJSON *r = hj_obj(c->config, "rope_scaling");
    const char *type = r ? hj_str(r, "rope_type") : NULL;
    if (!type && r) type = hj_str(r, "type");
    if (!type || strcmp(c->fam->gguf_arch, "llama") || strcasecmp(type, "llama3")) return FRUGAL_OK;
    double base = 10000.0, factor = 8.0, lo = 1.0, hi = 4.0, old = 8192.0;
    int64_t heads = 1, hidden = 0, dim;
    cv_cfg_num(c, "rope_theta", &base);
    hj_num(r, "factor", &factor);
    hj_num(r, "low_freq_factor", &lo);
    hj_num(r, "high_freq_factor", &hi);
    hj_num(r, "original_max_position_embeddings", &old);
    cv_cfg_int(c, "num_attention_heads", &heads);
    cv_cfg_int(c, "hidden_size", &hidden);
    dim = heads > 0 ? hidden / heads : 0;
    cv_cfg_int(c, "head_dim", &dim);
    if (dim < 2 || dim > 65536) return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: bad head dimension for rope_freqs");
    cv_tensor *t = new_tensor(c, err);
    if (!t) return FRUGAL_E_NOMEM;
    snprintf(t->name, sizeof t->name, "rope_freqs.weight");
    t->type = FR_TYPE_F32;
    t->n_dims = 1;
    t->ne[0] = dim / 2;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    if (!(t->gen = fr_malloc((size_t)(dim / 2) * sizeof(float)))) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    float lo_wl = (float)(old / lo), hi_wl = (float)(old / hi);
    for (int64_t i = 0; i < dim / 2; i++) {
        float freq = 1.0f / powf((float)base, (float)(2 * i) / (float)dim);
        float wl = (float)(2.0 * M_PI) / freq;
        float f;
        if (wl < hi_wl) f = 1.0f;
        else if (wl > lo_wl) f = (float)factor;
        else {
            float smooth = ((float)old / wl - (float)lo) / (float)(hi - lo);
            f = 1.0f / ((1.0f - smooth) / (float)factor + smooth);
        }
        t->gen[i] = f;
    }
    return FRUGAL_OK;
}

/* A generated 1-D F32 tensor from a JSON list of numbers. */
static int plan_list(cv_ctx *c, const char *name, const cJSON *list, int64_t want, fr_err *err) {
    int n = cJSON_GetArraySize(list);
    if (!list || !cJSON_IsArray(list) || n != want)
        return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: rope_scaling needs %lld long_factor and short_factor values",
                          (long long)want);
    cv_tensor *t = new_tensor(c, err);
    if (!t) return FRUGAL_E_NOMEM;
    snprintf(t->name, sizeof t->name, "%s", name);
    t->type = FR_TYPE_F32;
    t->n_dims = 1;
    t->ne[0] = n;
    t->ne[1] = t->ne[2] = t->ne[3] = 1;
    if (!(t->gen = fr_malloc((size_t)n * sizeof(float)))) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int i = 0;
    for (const cJSON *e = list->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e)) return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: rope_scaling factor %d is not a number", i);
        t->gen[i] = (float)e->valuedouble;
    }
    return FRUGAL_OK;
}

/* Phi-3 LongRoPE (Phi3MiniModel.generate_extra_tensors): rope_factors_long/short and
 * the attention factor sqrt(1 + ln(scale) / ln(original context)). */
static int plan_longrope(cv_ctx *c, fr_err *err) {
    const cJSON *r = hj_obj(c->config, "rope_scaling");
    const cJSON *lf = r ? cJSON_GetObjectItemCaseSensitive(r, "long_factor") : NULL;
    if (strcmp(c->fam->gguf_arch, "phi3") || !cJSON_IsArray(lf) || !cJSON_GetArraySize(lf)) return FRUGAL_OK;
    const char *type = hj_str(r, "rope_type");
    if (!type) type = hj_str(r, "type");
    int64_t heads = 1, hidden = 0, ctx = 4096, orig = 4096;
    double pct = 1.0;
    cv_cfg_int(c, "num_attention_heads", &heads);
    cv_cfg_int(c, "hidden_size", &hidden);
    cv_cfg_int(c, "max_position_embeddings", &ctx);
    cv_cfg_int(c, "original_max_position_embeddings", &orig);
    cv_cfg_num(c, "partial_rotary_factor", &pct);
    if (!type || (strcmp(type, "longrope") && strcmp(type, "su") && strcmp(type, "yarn")) || heads <= 0 || orig <= 1)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "config.json: rope_scaling with long_factor needs type longrope, su or yarn");
    double scale = (double)ctx / (double)orig;
    double attn = scale <= 1.0 ? 1.0 : strcmp(type, "yarn") ? sqrt(1.0 + log(scale) / log((double)orig)) : 0.1 * log(scale) + 1.0;
    if (gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.attn_factor"), (float)attn))
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int64_t half = (int64_t)(pct * (double)hidden) / heads / 2;
    int rc = plan_list(c, "rope_factors_long.weight", lf, half, err);
    if (!rc) rc = plan_list(c, "rope_factors_short.weight", cJSON_GetObjectItemCaseSensitive(r, "short_factor"), half, err);
    return rc;
}

static int plan_one(cv_ctx *c, const st_tensor *s, fr_err *err) {
    char name[96];
    unsigned xf;
    if (!rename_tensor(c, s->name, name, sizeof name, &xf))
        return fr_err_set(err, FRUGAL_E_FORMAT, "%s: tensor '%s' has no GGUF name for architecture %s",
                          c->st->paths[s->shard], s->name, c->fam->gguf_arch);
    cv_tensor *t = new_tensor(c, err);
    if (!t) return FRUGAL_E_NOMEM;
    memcpy(t->name, name, sizeof name);
    t->src[0] = s;
    t->n_src = 1;
    set_shape(t, s, xf & CV_X_TRANSPOSE);
    if (xf & CV_X_TRANSPOSE && s->n_dims != 2)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': a Conv1D weight must be 2-D", s->name);
    int64_t heads = 0, kv = 0;
    cv_cfg_int(c, "num_attention_heads", &heads);
    kv = heads;
    cv_cfg_int(c, "num_key_value_heads", &kv);
    if (c->fam->flags & CV_F_PERMUTE_QK) {
        bool q = strstr(name, ".attn_q.") != NULL, k = strstr(name, ".attn_k.") != NULL;
        if (q || k) {
            xf |= CV_X_PERMUTE;
            t->perm_heads = (int)(q ? heads : kv);
            int64_t rows = s->n_dims ? s->shape[0] : 0;
            if (t->perm_heads <= 0 || rows % (2 * t->perm_heads))
                return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': %lld rows do not split into %d heads of even size",
                                  s->name, (long long)rows, t->perm_heads);
        }
    }
    if ((c->fam->flags & CV_F_NORM_PLUS1) && ends_with(s->name, "norm.weight")) xf |= CV_X_ADD1;
    t->xform = xf;
    t->rows = 0;
    if ((c->fam->flags & CV_F_TRIM_VOCAB) && !strcmp(name, "token_embd.weight") && c->n_vocab_tok > 0 &&
        c->n_vocab_tok < t->ne[1])
        t->ne[1] = c->n_vocab_tok;
    t->type = out_type(c, name, t->n_dims);
    if (fr_row_size(t->type, t->ne[0]) == 0 && t->ne[0]) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': bad row", name);
    return FRUGAL_OK;
}

int cv_plan(cv_ctx *c, fr_err *err) {
    int rc = plan_rope_freqs(c, err);
    if (!rc) rc = plan_longrope(c, err);
    if (rc) return rc;
    for (size_t i = 0; i < c->st->n_tensors && !rc; i++) {
        const st_tensor *s = &c->st->tensors[i];
        const char *rest;
        int e, k;
        if (skipped(c, s->name) || (layer_of(s->name, &rest) >= 0 && expert_of(rest, &e, &k))) continue;
        rc = plan_one(c, s, err);
    }
    int64_t n_exp = 0;
    if (!rc && !cv_cfg_int(c, "num_local_experts", &n_exp)) cv_cfg_int(c, "num_experts", &n_exp);
    if (!rc) rc = plan_experts(c, n_exp, err);
    if (!rc && c->n_t == 0) rc = fr_err_set(err, FRUGAL_E_FORMAT, "no tensors to convert");
    return rc;
}

/* ------------------------------------------------------------------ the data */

#define CV_SLICE ((size_t)8 << 20)

static float load1(const uint8_t *p, fr_type t) {
    if (t == FR_TYPE_F32) { float f; memcpy(&f, p, 4); return f; }
    uint16_t h;
    memcpy(&h, p, 2);
    return t == FR_TYPE_F16 ? fr_f16_to_f32(h) : fr_bf16_to_f32(h);
}

static void store1(uint8_t *p, fr_type t, float f) {
    if (t == FR_TYPE_F32) { memcpy(p, &f, 4); return; }
    uint16_t h = t == FR_TYPE_F16 ? fr_f32_to_f16(f) : fr_f32_to_bf16(f);
    memcpy(p, &h, 2);
}

/* Element (r, j) of the output (row r of rows, column j of cols) from source s. */
static float elem(const cv_tensor *t, const st_tensor *s, int64_t r, int64_t j, int64_t rows, int64_t cols) {
    size_t es = st_elem_size(s->dtype);
    int64_t idx;
    if (t->xform & CV_X_TRANSPOSE) {
        idx = j * rows + r;          /* source is [cols][rows] */
    } else if (t->xform & CV_X_PERMUTE) {
        int64_t d = rows / t->perm_heads, h = r / d, w = r % d;
        idx = (h * d + (w % 2) * (d / 2) + w / 2) * cols + j;
    } else {
        idx = r * cols + j;
    }
    float v = load1(s->data + (size_t)idx * es, s->dtype);
    if (t->xform & CV_X_ADD1) {
        v += 1.0f;
        /* torch adds in the tensor's dtype: a half tensor's sum is rounded to half
         * (BF16 sources were widened to F32 first) */
        if (s->dtype == FR_TYPE_F16) v = fr_f16_to_f32(fr_f32_to_f16(v));
    }
    return v;
}

int cv_fill(cv_ctx *c, int i, void *dst, size_t nbytes, fr_err *err) {
    const cv_tensor *t = &c->t[i];
    uint8_t *out = dst;
    if (t->gen) {
        memcpy(out, t->gen, nbytes);
        return FRUGAL_OK;
    }
    /* a 1-D tensor is a column (so a permuted bias moves element by element) */
    int64_t cols = t->n_dims == 1 ? 1 : t->ne[0];
    int64_t rows = 1;
    for (int d = t->n_dims == 1 ? 0 : 1; d < t->n_dims; d++) rows *= t->ne[d];
    rows /= t->n_src;
    size_t es_out = fr_row_size(t->type, 1);
    size_t per_src = (size_t)(rows * cols) * es_out;
    if (per_src * (size_t)t->n_src != nbytes) return fr_err_set(err, FRUGAL_E_INTERNAL, "tensor '%s': size mismatch", t->name);
    for (int e = 0; e < t->n_src; e++) {
        const st_tensor *s = t->src[e];
        uint8_t *o = out + per_src * (size_t)e;
        if (!t->xform && s->dtype == t->type) {
            /* in slices, each released once copied: the source never stays resident
             * next to the whole output buffer */
            for (size_t off = 0; off < per_src; off += CV_SLICE) {
                size_t n = per_src - off < CV_SLICE ? per_src - off : CV_SLICE;
                memcpy(o + off, s->data + off, n);
                st_release_range(c->st, s->shard, s->data + off, n);
            }
        } else {
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < cols; j++)
                    store1(o + (size_t)(r * cols + j) * es_out, t->type, elem(t, s, r, j, rows, cols));
        }
        st_release(c->st, s);
    }
    return FRUGAL_OK;
}
