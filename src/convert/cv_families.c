/* cv_families.c - one small description per model family: which HF architectures it
 * covers and how config.json becomes the <arch>.* keys, following what llama.cpp's
 * convert_hf_to_gguf.py writes for that family (conversion/{llama,qwen,gemma,phi,gpt2}.py,
 * TextModel.set_gguf_parameters). A key config.json leaves out takes transformers'
 * default for that model type (the converter reads the config through AutoConfig).
 * The tensor renames are in cv_tensors.c, keyed by the flags here. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "convert/cv_internal.h"
#include "convert/hfjson.h"

const char *cv_key(cv_ctx *c, const char *suffix) {
    snprintf(c->key, sizeof c->key, "%s.%s", c->fam->gguf_arch, suffix);
    return c->key;
}

bool cv_cfg_num(const cv_ctx *c, const char *key, double *v) { return hj_num(c->config, key, v); }
bool cv_cfg_int(const cv_ctx *c, const char *key, int64_t *v) { return hj_int(c->config, key, v); }

/* The first of keys (NULL-terminated) config.json holds as an integer. */
static bool first_int(const cv_ctx *c, const char *const *keys, int64_t *v) {
    for (; *keys; keys++)
        if (cv_cfg_int(c, *keys, v)) return true;
    return false;
}

static int missing(const char *what, fr_err *err) {
    return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: no integer \"%s\"", what);
}

/* u32 key from the first config key present, or def (< 0: required). */
static int put_u32(cv_ctx *c, const char *suffix, const char *const *keys, int64_t def, fr_err *err) {
    int64_t v;
    if (!first_int(c, keys, &v)) {
        if (def < 0) return missing(keys[0], err);
        v = def;
    }
    if (v < 0 || v > UINT32_MAX) return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: \"%s\" out of range", keys[0]);
    return gguf_writer_set_u32(c->w, cv_key(c, suffix), (uint32_t)v) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
}

static int put_f32(cv_ctx *c, const char *suffix, const char *key, double def, fr_err *err) {
    double v;
    if (!cv_cfg_num(c, key, &v)) {
        if (isnan(def)) return FRUGAL_OK;
        v = def;
    }
    return gguf_writer_set_f32(c->w, cv_key(c, suffix), (float)v) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static int64_t cfg_or(const cv_ctx *c, const char *key, int64_t def) {
    int64_t v;
    return cv_cfg_int(c, key, &v) ? v : def;
}

/* rope_scaling (or rope_parameters) object, or NULL. */
static const cJSON *rope_params(const cv_ctx *c) {
    const cJSON *r = hj_obj(c->config, "rope_parameters");
    return r ? r : hj_obj(c->config, "rope_scaling");
}

static const char *rope_type(const cv_ctx *c) {
    const cJSON *r = rope_params(c);
    if (!r) return NULL;
    const char *t = hj_str(r, "rope_type");
    return t ? t : hj_str(r, "type");
}

/* TextModel's rope scaling keys: linear and YaRN; llama3 becomes rope_freqs. */
static int rope_scaling_keys(cv_ctx *c, fr_err *err) {
    const cJSON *r = rope_params(c);
    const char *t = rope_type(c);
    double f;
    if (!t || !hj_num(r, "factor", &f)) return FRUGAL_OK;
    int rc = 0;
    if (!strcmp(t, "linear")) {
        rc |= gguf_writer_set_str(c->w, cv_key(c, "rope.scaling.type"), "linear");
        rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.factor"), (float)f);
    } else if (!strcmp(t, "yarn")) {
        int64_t orig;
        if (!hj_int(r, "original_max_position_embeddings", &orig))
            return fr_err_set(err, FRUGAL_E_FORMAT, "config.json: yarn rope_scaling without original_max_position_embeddings");
        rc |= gguf_writer_set_str(c->w, cv_key(c, "rope.scaling.type"), "yarn");
        rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.factor"), (float)f);
        rc |= gguf_writer_set_u32(c->w, cv_key(c, "rope.scaling.original_context_length"), (uint32_t)orig);
        double v;
        if (hj_num(r, "extrapolation_factor", &v)) rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.yarn_ext_factor"), (float)v);
        if (hj_num(r, "attention_factor", &v) || hj_num(r, "attn_factor", &v))
            rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.yarn_attn_factor"), (float)v);
        if (hj_num(r, "beta_fast", &v)) rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.yarn_beta_fast"), (float)v);
        if (hj_num(r, "beta_slow", &v)) rc |= gguf_writer_set_f32(c->w, cv_key(c, "rope.scaling.yarn_beta_slow"), (float)v);
    }
    return rc ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : FRUGAL_OK;
}

/* TextModel.set_gguf_parameters with this family's defaults: head_dim_def 0 means
 * the config type has no head_dim (no key_length written unless config.json has one),
 * -1 means hidden_size / num_attention_heads. */
static int base_hparams(cv_ctx *c, double theta_def, double eps_def, int64_t head_dim_def, fr_err *err) {
    int64_t heads;
    if (!cv_cfg_int(c, "num_attention_heads", &heads) || heads <= 0) return missing("num_attention_heads", err);
    int rc;
    if ((rc = put_u32(c, "block_count", KEYS("num_hidden_layers"), -1, err)) ||
        (rc = put_u32(c, "context_length", KEYS("max_position_embeddings"), 2048, err)) ||
        (rc = put_u32(c, "embedding_length", KEYS("hidden_size"), -1, err)) ||
        (rc = put_u32(c, "feed_forward_length", KEYS("intermediate_size"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count", KEYS("num_attention_heads"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count_kv", KEYS("num_key_value_heads"), heads, err)) ||
        (rc = rope_scaling_keys(c, err)) ||
        (rc = put_f32(c, "rope.freq_base", "rope_theta", theta_def, err)) ||
        (rc = put_f32(c, "attention.layer_norm_rms_epsilon", "rms_norm_eps", eps_def, err)))
        return rc;
    int64_t ne;
    if (first_int(c, KEYS("num_local_experts", "num_experts"), &ne) &&
        (rc = put_u32(c, "expert_count", KEYS("num_local_experts", "num_experts"), -1, err)))
        return rc;
    if (cv_cfg_int(c, "num_experts_per_tok", &ne) && (rc = put_u32(c, "expert_used_count", KEYS("num_experts_per_tok"), -1, err)))
        return rc;
    int64_t hd = head_dim_def, hidden = cfg_or(c, "hidden_size", 0);
    if (hd < 0) hd = hidden / heads;
    cv_cfg_int(c, "head_dim", &hd);
    if (hd > 0 && ((rc = put_u32(c, "attention.key_length", KEYS("head_dim"), hd, err)) ||
                   (rc = put_u32(c, "attention.value_length", KEYS("head_dim"), hd, err))))
        return rc;
    return FRUGAL_OK;
}

static int hp_llama(cv_ctx *c, fr_err *err) {
    int rc = base_hparams(c, 10000.0, 1e-6, -1, err);
    if (rc) return rc;
    int64_t heads = cfg_or(c, "num_attention_heads", 1), hd = cfg_or(c, "hidden_size", 0) / heads;
    cv_cfg_int(c, "head_dim", &hd);
    if ((rc = put_u32(c, "vocab_size", KEYS("vocab_size"), 32000, err))) return rc;
    return gguf_writer_set_u32(c->w, cv_key(c, "rope.dimension_count"), (uint32_t)hd) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
}

static int hp_mixtral(cv_ctx *c, fr_err *err) {
    int rc = base_hparams(c, 1e6, 1e-5, -1, err);
    if (rc) return rc;
    int64_t heads = cfg_or(c, "num_attention_heads", 1), hd = cfg_or(c, "hidden_size", 0) / heads;
    cv_cfg_int(c, "head_dim", &hd);
    if ((rc = put_u32(c, "vocab_size", KEYS("vocab_size"), 32000, err))) return rc;
    return gguf_writer_set_u32(c->w, cv_key(c, "rope.dimension_count"), (uint32_t)hd) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
}

static int hp_qwen2(cv_ctx *c, fr_err *err) { return base_hparams(c, 10000.0, 1e-6, 0, err); }
static int hp_qwen3(cv_ctx *c, fr_err *err) { return base_hparams(c, 10000.0, 1e-6, 128, err); }

static int hp_qwen3moe(cv_ctx *c, fr_err *err) {
    int rc = base_hparams(c, 10000.0, 1e-6, 128, err);
    int64_t v;
    if (!rc && cv_cfg_int(c, "moe_intermediate_size", &v))
        rc = put_u32(c, "expert_feed_forward_length", KEYS("moe_intermediate_size"), -1, err);
    return rc;
}

/* GemmaModel / Gemma2Model: their own key list (no rope.freq_base). */
static int hp_gemma_common(cv_ctx *c, fr_err *err) {
    int64_t heads;
    if (!cv_cfg_int(c, "num_attention_heads", &heads)) return missing("num_attention_heads", err);
    int rc;
    if ((rc = put_u32(c, "context_length", KEYS("max_position_embeddings"), 8192, err)) ||
        (rc = put_u32(c, "embedding_length", KEYS("hidden_size"), -1, err)) ||
        (rc = put_u32(c, "block_count", KEYS("num_hidden_layers"), -1, err)) ||
        (rc = put_u32(c, "feed_forward_length", KEYS("intermediate_size"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count", KEYS("num_attention_heads"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count_kv", KEYS("num_key_value_heads"), heads, err)) ||
        (rc = put_f32(c, "attention.layer_norm_rms_epsilon", "rms_norm_eps", 1e-6, err)) ||
        (rc = put_u32(c, "attention.key_length", KEYS("head_dim"), 256, err)) ||
        (rc = put_u32(c, "attention.value_length", KEYS("head_dim"), 256, err)))
        return rc;
    return FRUGAL_OK;
}

static int hp_gemma(cv_ctx *c, fr_err *err) { return hp_gemma_common(c, err); }

static int hp_gemma2(cv_ctx *c, fr_err *err) {
    int rc = hp_gemma_common(c, err);
    if (!rc) rc = put_f32(c, "attn_logit_softcapping", "attn_logit_softcapping", 50.0, err);
    if (!rc) rc = put_f32(c, "final_logit_softcapping", "final_logit_softcapping", 30.0, err);
    if (!rc) rc = put_u32(c, "attention.sliding_window", KEYS("sliding_window"), 4096, err);
    return rc;
}

/* Gemma3Model: TextModel's keys, then its own defaults over them. */
static int hp_gemma3(cv_ctx *c, fr_err *err) {
    int rc = base_hparams(c, 1e6, 1e-6, 256, err);
    if (rc) return rc;
    if ((rc = put_u32(c, "context_length", KEYS("max_position_embeddings"), 131072, err)) ||
        (rc = put_u32(c, "attention.head_count_kv", KEYS("num_key_value_heads"), 4, err)) ||
        (rc = put_f32(c, "rope.freq_base_swa", "rope_local_base_freq", 10000.0, err)))
        return rc;
    double cap;
    if (cv_cfg_num(c, "final_logit_softcapping", &cap) && cap != 0.0)
        rc = put_f32(c, "final_logit_softcapping", "final_logit_softcapping", 0.0, err);
    if (!rc && cfg_or(c, "sliding_window_pattern", 6) != 1)
        rc = put_u32(c, "attention.sliding_window", KEYS("sliding_window"), 4096, err);
    return rc;
}

static int hp_phi3(cv_ctx *c, fr_err *err) {
    int64_t heads, hidden;
    if (!cv_cfg_int(c, "num_attention_heads", &heads) || heads <= 0) return missing("num_attention_heads", err);
    if (!cv_cfg_int(c, "hidden_size", &hidden)) return missing("hidden_size", err);
    double pct = 1.0;
    cv_cfg_num(c, "partial_rotary_factor", &pct);
    int rc;
    if ((rc = put_u32(c, "context_length", KEYS("max_position_embeddings"), 4096, err)) ||
        (rc = put_u32(c, "rope.scaling.original_context_length", KEYS("original_max_position_embeddings"), 4096, err)) ||
        (rc = put_u32(c, "embedding_length", KEYS("hidden_size"), -1, err)) ||
        (rc = put_u32(c, "feed_forward_length", KEYS("intermediate_size"), -1, err)) ||
        (rc = put_u32(c, "block_count", KEYS("num_hidden_layers"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count", KEYS("num_attention_heads"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count_kv", KEYS("num_key_value_heads"), heads, err)) ||
        (rc = put_f32(c, "attention.layer_norm_rms_epsilon", "rms_norm_eps", 1e-5, err)) ||
        (rc = put_f32(c, "rope.freq_base", "rope_theta", 10000.0, err)) ||
        (rc = put_u32(c, "attention.sliding_window", KEYS("sliding_window"), 0, err)))
        return rc;
    uint32_t dims = (uint32_t)((int64_t)(pct * (double)hidden) / heads);
    return gguf_writer_set_u32(c->w, cv_key(c, "rope.dimension_count"), dims) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
}

static int hp_gpt2(cv_ctx *c, fr_err *err) {
    int64_t n_embd;
    if (!cv_cfg_int(c, "n_embd", &n_embd)) return missing("n_embd", err);
    int rc;
    if ((rc = put_u32(c, "block_count", KEYS("n_layer"), -1, err)) ||
        (rc = put_u32(c, "context_length", KEYS("n_ctx", "n_positions"), 1024, err)) ||
        (rc = put_u32(c, "embedding_length", KEYS("n_embd"), -1, err)) ||
        (rc = put_u32(c, "attention.head_count", KEYS("n_head"), -1, err)) ||
        (rc = put_f32(c, "attention.layer_norm_epsilon", "layer_norm_epsilon", 1e-5, err)))
        return rc;
    /* GPT2Model writes 4 * n_embd whatever n_inner says */
    if (gguf_writer_set_u32(c->w, cv_key(c, "feed_forward_length"), (uint32_t)(4 * n_embd)))
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    return FRUGAL_OK;
}

static const cv_family k_families[] = {
    {{"LlamaForCausalLM", "LLaMAForCausalLM", "MistralForCausalLM", NULL}, "llama", CV_F_PERMUTE_QK | CV_F_SPM_FIRST | CV_F_LLAMA_HF, hp_llama},
    {{"MixtralForCausalLM", NULL}, "llama", CV_F_PERMUTE_QK | CV_F_SPM_FIRST | CV_F_LLAMA_HF, hp_mixtral},
    {{"Qwen2ForCausalLM", NULL}, "qwen2", CV_F_SPM_FIRST, hp_qwen2},
    {{"Qwen3ForCausalLM", NULL}, "qwen3", CV_F_SPM_FIRST, hp_qwen3},
    {{"Qwen3MoeForCausalLM", NULL}, "qwen3moe", CV_F_SPM_FIRST, hp_qwen3moe},
    {{"GemmaForCausalLM", NULL}, "gemma", CV_F_NORM_PLUS1 | CV_F_SKIP_LM_HEAD | CV_F_SPM_FIRST | CV_F_LLAMA_HF, hp_gemma},
    {{"Gemma2ForCausalLM", NULL}, "gemma2", CV_F_NORM_PLUS1 | CV_F_GEMMA_NORMS | CV_F_SKIP_LM_HEAD | CV_F_SPM_FIRST | CV_F_LLAMA_HF, hp_gemma2},
    {{"Gemma3ForCausalLM", NULL}, "gemma3", CV_F_NORM_PLUS1 | CV_F_GEMMA_NORMS | CV_F_TRIM_VOCAB | CV_F_SPM_FIRST, hp_gemma3},
    {{"Phi3ForCausalLM", NULL}, "phi3", CV_F_SPM_FIRST, hp_phi3},
    {{"GPT2LMHeadModel", NULL}, "gpt2", 0, hp_gpt2},
};

const cv_family *cv_family_find(const cJSON *config) {
    const cJSON *archs = cJSON_GetObjectItemCaseSensitive(config, "architectures");
    const cJSON *a0 = cJSON_IsArray(archs) ? cJSON_GetArrayItem(archs, 0) : NULL;
    if (!a0 || !cJSON_IsString(a0)) return NULL; /* (the NULL test: for -fanalyzer) */
    for (size_t i = 0; i < sizeof k_families / sizeof k_families[0]; i++)
        for (const char *const *n = k_families[i].hf_arch; *n; n++)
            if (!strcmp(*n, a0->valuestring)) return &k_families[i];
    return NULL;
}
