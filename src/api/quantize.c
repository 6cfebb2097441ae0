/* quantize.c - frugal_quantize: rewrite a GGUF model with its weight matrices in
 * another type, following llama-quantize (tools/quantize + src/llama-quant.cpp).
 *
 * Why it copies llama.cpp's rules so closely: files we write should be the files
 * llama.cpp writes, so perplexity/KL figures compare like for like and a test can
 * check our output byte for byte against llama-quantize's. What is reproduced:
 *  - tensor order: llama.cpp walks a std::map of weights ordered by layer number,
 *    then name (non-layer tensors first), and counts layers in that order;
 *  - which tensors are quantized: names ending in "weight", 2-D or more, not norms,
 *    not MoE gate inputs, not positional/token-type embeddings;
 *  - the type mix of a quantized target: output.weight (token_embd.weight when the
 *    model has no output.weight) goes to Q6_K unless the target is Q8_0 (or to Q8_0
 *    when its rows are not a multiple of the block); for Q4_K (= LLAMA_FTYPE_MOSTLY_Q4_K_M)
 *    attn_v and ffn_down of the "use_more_bits" layers go to Q6_K, counted in the
 *    sorted order as llama.cpp counts them;
 *  - rows that do not fit the block: Q4_K falls back to Q5_0, Q6_K to Q8_0 (as
 *    llama.cpp); if that still does not fit, the tensor keeps its input type (llama.cpp
 *    would use F16 or fail) and a note says so;
 *  - metadata is copied, general.file_type set to llama_ftype's value and
 *    general.quantization_version to 2.
 * Rows are quantized independently (no importance matrix), so the tensor is split
 * by rows over a thread pool and the result does not depend on the thread count. */
#include "core/fault.h"
#include "kernels/dispatch.h"
#include "frugal.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/pool.h"
#include "core/quant_lowbit.h"
#include "core/quant_private.h"
#include "api/quant_mix.h"
#include "api/quant_policy.h"
#include "core/types.h"
#include "gguf/gguf.h"

void frugal_quantize_params_default(frugal_quantize_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->type = "q8_0";
}

void frugal_f32_to_f16_row(const float *x, uint16_t *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = fr_f32_to_f16(x[i]);
}

void frugal_f16_to_f32_row(const uint16_t *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = fr_f16_to_f32(x[i]);
}

/* ------------------------------------------------------------------ the plan */

/* Target type from its CLI name with llama_ftype's number (general.file_type). */
typedef struct q_target { const char *name; fr_type type; uint32_t ftype; } q_target;
static const q_target k_targets[] = {
    {"f32", FR_TYPE_F32, 0}, {"f16", FR_TYPE_F16, 1}, {"q4_0", FR_TYPE_Q4_0, 2},
    {"q8_0", FR_TYPE_Q8_0, 7}, {"q4_k", FR_TYPE_Q4_K, 15}, {"q4_k_m", FR_TYPE_Q4_K, 15},
    {"q5_k", FR_TYPE_Q5_K, 17}, {"q5_k_m", FR_TYPE_Q5_K, 17}, {"q5_k_s", FR_TYPE_Q5_K, 16},
    {"q6_k", FR_TYPE_Q6_K, 18},
    /* low-bit mixes (api/quant_mix.c); the bare type names get llama.cpp's default mix */
    {"q2_k", FR_TYPE_Q2_K, FR_FTYPE_Q2_K}, {"q3_k", FR_TYPE_Q3_K, FR_FTYPE_Q3_K_M},
    {"q3_k_s", FR_TYPE_Q3_K, FR_FTYPE_Q3_K_S}, {"q3_k_m", FR_TYPE_Q3_K, FR_FTYPE_Q3_K_M},
    {"q3_k_l", FR_TYPE_Q3_K, FR_FTYPE_Q3_K_L}, {"iq4_nl", FR_TYPE_IQ4_NL, FR_FTYPE_IQ4_NL},
    {"iq4_xs", FR_TYPE_IQ4_XS, FR_FTYPE_IQ4_XS}, {"iq3_s", FR_TYPE_IQ3_S, FR_FTYPE_IQ3_S},
    {"iq3_m", FR_TYPE_IQ3_S, FR_FTYPE_IQ3_M}, {"iq2_xxs", FR_TYPE_IQ2_XXS, FR_FTYPE_IQ2_XXS},
    {"iq2_xs", FR_TYPE_IQ2_XS, FR_FTYPE_IQ2_XS},
    /* llama.cpp's IQ2_S mix is IQ2_XS tensors with IQ3_S attn_output / token_embd */
    {"iq2_s", FR_TYPE_IQ2_XS, FR_FTYPE_IQ2_S}, {"iq2_m", FR_TYPE_IQ2_S, FR_FTYPE_IQ2_M},
    {"iq3_xxs", FR_TYPE_IQ3_XXS, FR_FTYPE_IQ3_XXS}, {"iq1_s", FR_TYPE_IQ1_S, FR_FTYPE_IQ1_S},
    {"iq1_m", FR_TYPE_IQ1_M, FR_FTYPE_IQ1_M},
    /* frugal-only types: llama_ftype has no number for them; 1024 is its
     * LLAMA_FTYPE_GUESSED ("no single type"), also used for policy auto */
    {"i8c", FR_TYPE_I8C, 1024}, {"nf4", FR_TYPE_NF4, 1024}, {"fp8o", FR_TYPE_FP8O, 1024},
};
static const q_target k_policy_target = {"auto", FR_TYPE_F16, 1024};

typedef struct q_item {
    const gguf_tensor *src;
    char name[256];      /* NUL-terminated copy of the tensor name */
    fr_type out_type;
    uint64_t out_bytes;
    bool cand;           /* a weight matrix policy auto may choose a type for */
    float *imp;          /* --calib with --type: per-column importance (owned), or NULL */
} q_item;

typedef struct q_state {
    q_item *items;
    size_t n;
    fr_pool *pool;
    float *scratch;      /* n_threads rows of max_ne0 floats */
    int64_t max_ne0;
    bool progress;
    void (*on_progress)(void *user, uint64_t done, uint64_t total, const char *what);
    void *progress_user;
    uint64_t total_bytes, done_bytes;
    struct timespec t0;
    /* per-call job for the pool */
    const q_item *job;
    uint8_t *job_dst;
} q_state;

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

static int layer_of(const char *name);

/* llama.cpp's weight_name_comparer: by layer number ("blk.N."; others count as -1,
 * so they come first), then by name. */
static int cmp_item(const void *a, const void *b) {
    const char *na = ((const q_item *)a)->name, *nb = ((const q_item *)b)->name;
    int la = layer_of(na), lb = layer_of(nb);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(na, nb);
}

static bool is_quantized_type(fr_type t) {
    return t != FR_TYPE_F32 && t != FR_TYPE_F16 && t != FR_TYPE_BF16;
}

/* llama.cpp's use_more_bits(i_layer, n_layers). */
static bool use_more_bits(int i, int n) {
    return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* Layer index of "blk.N.<...>", or -1. */
static int layer_of(const char *name) {
    if (strncmp(name, "blk.", 4) != 0) return -1;
    char *end;
    long v = strtol(name + 4, &end, 10);
    return (end != name + 4 && *end == '.' && v >= 0 && v < 1 << 20) ? (int)v : -1;
}

/* Whether llama-quantize would quantize this tensor at all. */
static bool wants_quant(const gguf_tensor *t, const char *name) {
    return ends_with(name, "weight") && t->n_dims >= 2 && !strstr(name, "_norm.weight") &&
           !strstr(name, "ffn_gate_inp.weight") && strcmp(name, "position_embd.weight") != 0 &&
           strcmp(name, "token_types.weight") != 0 && !strstr(name, "ssm_conv1d.weight");
}

typedef struct q_counters { int n_wv, i_wv, n_down, i_down, n_gqa; bool has_output; } q_counters;


/* Tensor rule for the frugal-only targets: everything gets the target, except that
 * the output matrix of NF4 goes to Q6_K as llama.cpp's 4-bit mixes do (it is the
 * most error-sensitive matrix; this keeps NF4 comparable with q4_0 / q4_k). */
static fr_type private_rule(const char *name, fr_type def, const q_counters *c) {
    bool is_out = strcmp(name, "output.weight") == 0 || (!c->has_output && strcmp(name, "token_embd.weight") == 0);
    return is_out && def == FR_TYPE_NF4 ? FR_TYPE_Q6_K : def;
}

/* Q4_K_M (15) and Q5_K_M (17): llama.cpp gives attn_v and ffn_down of the
 * use_more_bits layers Q6_K (Q5_K_S, 16, keeps Q5_K everywhere but the output) */
static bool k_m_mix(uint32_t ftype) { return ftype == 15 || ftype == 17; }

/* llama_tensor_get_type for the ftypes we write: the type this tensor gets when the
 * target is the quantized type `def`. Advances the attn_v / ffn_down counters. */
static fr_type rule_type(const char *name, fr_type def, uint32_t ftype, int64_t ne0, q_counters *c) {
    fr_type t = def;
    const fr_type_traits *tr = fr_type_traits_get(def);
    if (strcmp(name, "output.weight") == 0 || (!c->has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (ne0 % tr->blck_size != 0) t = FR_TYPE_Q8_0;
        else if (def != FR_TYPE_Q8_0) t = fr_mix_output(ftype);
    } else if (strcmp(name, "token_embd.weight") == 0) {
        t = fr_mix_embd(ftype, def); /* the target type but for the IQ2 mixes */
    } else if (strstr(name, "attn_v.weight")) {
        if (k_m_mix(ftype) && use_more_bits(c->i_wv, c->n_wv)) t = FR_TYPE_Q6_K;
        if (fr_mix_lowbit(ftype)) t = fr_mix_rule(ftype, FR_MIX_ATTN_V, def, c->i_wv, c->n_wv, c->n_gqa);
        c->i_wv++;
    } else if (strstr(name, "ffn_down")) {
        if (k_m_mix(ftype) && use_more_bits(c->i_down, c->n_down)) t = FR_TYPE_Q6_K;
        if (fr_mix_lowbit(ftype)) t = fr_mix_rule(ftype, FR_MIX_FFN_DOWN, def, c->i_down, c->n_down, c->n_gqa);
        c->i_down++;
    } else if (fr_mix_lowbit(ftype) && strstr(name, "attn_output.weight")) {
        t = fr_mix_rule(ftype, FR_MIX_ATTN_OUT, def, 0, 0, c->n_gqa);
    } else if (fr_mix_lowbit(ftype) && (strstr(name, "attn_q.weight") || strstr(name, "attn_k.weight"))) {
        t = fr_mix_rule(ftype, FR_MIX_ATTN_QK, def, 0, 0, c->n_gqa);
    } else if (fr_mix_lowbit(ftype) && strstr(name, "attn_qkv.weight")) {
        t = fr_mix_rule(ftype, FR_MIX_ATTN_QKV, def, 0, 0, c->n_gqa);
    }
    return t;
}

/* Decide every tensor's output type. Notes for unusual decisions go to log. */
static int make_plan(const gguf_file *f, const q_target *tg, const frugal_quantize_params *p,
                     q_item *items, FILE *log, fr_err *err) {
    q_counters c = {0};
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        if (t->name.len >= sizeof items[i].name)
            return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "tensor name of %llu bytes is too long",
                              (unsigned long long)t->name.len);
        items[i].src = t;
        memcpy(items[i].name, t->name.ptr, t->name.len);
        items[i].name[t->name.len] = '\0';
        if (strstr(items[i].name, "attn_v.weight") || strstr(items[i].name, "attn_qkv.weight") ||
            strstr(items[i].name, "attn_kv_b.weight"))
            c.n_wv++;
        if (strcmp(items[i].name, "output.weight") == 0) c.has_output = true;
    }
    qsort(items, (size_t)f->n_tensors, sizeof *items, cmp_item);
    uint32_t n_layer = 0;
    const gguf_kv *arch = gguf_find_kv(f, "general.architecture");
    if (arch && arch->type == GGUF_VT_STRING && arch->v.str.len < 64) {
        char key[96];
        snprintf(key, sizeof key, "%.*s.block_count", (int)arch->v.str.len, arch->v.str.ptr);
        if (gguf_get_u32_opt(f, key, 0, &n_layer, NULL) != FRUGAL_OK) n_layer = 0;
        /* heads per KV head (llama.cpp's n_gqa, from the first layer's counts) */
        uint32_t nh = 0, nkv = 0;
        snprintf(key, sizeof key, "%.*s.attention.head_count", (int)arch->v.str.len, arch->v.str.ptr);
        if (gguf_get_u32_opt(f, key, 0, &nh, NULL) != FRUGAL_OK) nh = 0;
        snprintf(key, sizeof key, "%.*s.attention.head_count_kv", (int)arch->v.str.len, arch->v.str.ptr);
        if (gguf_get_u32_opt(f, key, nh, &nkv, NULL) != FRUGAL_OK) nkv = nh;
        c.n_gqa = nkv ? (int)(nh / nkv) : 1;
    }
    c.n_down = (int)n_layer;
    if (c.n_down == 0)
        for (uint64_t i = 0; i < f->n_tensors; i++) c.n_down += strstr(items[i].name, "ffn_down") != NULL;

    for (uint64_t i = 0; i < f->n_tensors; i++) {
        q_item *it = &items[i];
        const gguf_tensor *t = it->src;
        const char *name = it->name;
        const fr_type_traits *in_tr = fr_type_traits_get(t->type);
        fr_type out = (fr_type)t->type;
        if (wants_quant(t, name)) {
            out = tg->type;
            if (fr_type_is_private(tg->type)) out = private_rule(name, out, &c);
            else if (is_quantized_type(tg->type)) out = rule_type(name, out, tg->ftype, t->ne[0], &c);
            bool is_out = strcmp(name, "output.weight") == 0 ||
                          (!c.has_output && strcmp(name, "token_embd.weight") == 0);
            int layer = layer_of(name);
            if ((p->keep_output && is_out) || (layer >= 0 && layer < p->keep_first)) out = (fr_type)t->type;
            else it->cand = true;
            if (out != (fr_type)t->type && t->ne[0] % fr_type_traits_get(out)->blck_size != 0) {
                fr_type fb = fr_type_is_private(out) ? FR_TYPE_Q8_0 : fr_mix_fallback(out);
                if (t->ne[0] % fr_type_traits_get(fb)->blck_size == 0) {
                    fprintf(log, "note: %s: rows of %lld do not fit %s blocks, using %s\n", name,
                            (long long)t->ne[0], fr_type_name(out), fr_type_name(fb));
                    out = fb;
                } else {
                    fprintf(log, "note: %s: rows of %lld are not a multiple of %d, kept as %s\n", name,
                            (long long)t->ne[0], fr_type_traits_get(out)->blck_size, fr_type_name(t->type));
                    out = (fr_type)t->type;
                }
            }
            if (out != (fr_type)t->type && (!in_tr || !in_tr->supported || !in_tr->to_float))
                return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "tensor '%s': cannot read type %s", name,
                                  fr_type_name(t->type) ? fr_type_name(t->type) : "?");
            if (out != (fr_type)t->type && is_quantized_type((fr_type)t->type))
                fprintf(log, "warning: %s is already %s: re-quantizing it to %s (quality loss adds up)\n",
                        name, fr_type_name(t->type), fr_type_name(out));
        }
        it->out_type = out;
        it->out_bytes = out == (fr_type)t->type ? t->nbytes
                                                : (uint64_t)fr_row_size(out, t->ne[0]) *
                                                      (uint64_t)(t->ne[1] * t->ne[2] * t->ne[3]);
    }
    return FRUGAL_OK;
}

/* ------------------------------------------------------------------ the work */

/* Pool task: rows [start, end) of the current tensor, via floats. */
static void quant_rows(void *arg, int ith, int nth) {
    q_state *st = arg;
    const q_item *it = st->job;
    const gguf_tensor *t = it->src;
    int64_t ne0 = t->ne[0], nrows = t->ne[1] * t->ne[2] * t->ne[3];
    const fr_type_traits *in = fr_type_traits_get(t->type), *out = fr_type_traits_get(it->out_type);
    size_t in_row = fr_row_size((fr_type)t->type, ne0), out_row = fr_row_size(it->out_type, ne0);
    float *buf = st->scratch + (size_t)ith * (size_t)st->max_ne0;
    long start, end;
    fr_split((long)nrows, ith, nth, &start, &end);
    for (long r = start; r < end; r++) {
        in->to_float((const uint8_t *)t->data + (size_t)r * in_row, buf, ne0);
        uint8_t *dst = st->job_dst + (size_t)r * out_row;
        if (!it->imp || fr_quantize_weighted(it->out_type, buf, dst, ne0, it->imp) != 0) out->from_float(buf, dst, ne0);
    }
}

static double secs_since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + 1e-9 * (double)(t.tv_nsec - t0->tv_nsec);
}

static void drop_pages(const void *p, size_t n) {
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), a = ((uintptr_t)p + pg - 1) / pg * pg, b = (uintptr_t)p + n;
    b = b / pg * pg;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* gguf writer fill callback: tensor `index` of the sorted plan. */
static int q_fill(void *user, size_t index, void *dst, size_t nbytes, fr_err *err) {
    q_state *st = user;
    if (index >= st->n || st->items[index].out_bytes != nbytes)
        return fr_err_set(err, FRUGAL_E_INTERNAL, "quantize: tensor %zu: size mismatch", index);
    const q_item *it = &st->items[index];
    if (it->out_type == (fr_type)it->src->type) {
        memcpy(dst, it->src->data, nbytes);
    } else {
        st->job = it;
        st->job_dst = dst;
        fr_pool_run(st->pool, quant_rows, st);
    }
    /* the input's pages are not needed again: dropping them keeps the resident set
     * to about one tensor (convert's peak-RSS bound relies on it; advice only) */
    drop_pages(it->src->data, (size_t)it->src->nbytes);
    st->done_bytes += it->src->nbytes;
    if (st->on_progress) {
        st->on_progress(st->progress_user, st->done_bytes, st->total_bytes, it->name);
    } else if (st->progress) {
        double el = secs_since(&st->t0);
        double eta = st->done_bytes ? el * (double)(st->total_bytes - st->done_bytes) / (double)st->done_bytes : 0;
        fprintf(stderr, "\r[%zu/%zu] %-32.32s %-5s -> %-5s  %5.1fs, ETA %5.1fs ", index + 1, st->n, it->name,
                fr_type_name(it->src->type), fr_type_name(it->out_type), el, eta);
        if (index + 1 == st->n) fputc('\n', stderr);
        fflush(stderr);
    }
    return FRUGAL_OK;
}

/* policy auto: replace the plan's types of the candidate matrices by the chooser's
 * (api/quant_policy.h). Everything else keeps the type make_plan gave it. */
static int apply_policy(q_state *st, const char *in_path, const frugal_quantize_params *p, FILE *log,
                        fr_err *err) {
    fr_policy_item *pi = fr_calloc(st->n ? st->n : 1, sizeof *pi);
    size_t *map = fr_calloc(st->n ? st->n : 1, sizeof *map);
    if (!pi || !map) { free(pi); free(map); return fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory"); }
    size_t m = 0;
    uint64_t fixed = 0, n_params = 0;
    for (size_t i = 0; i < st->n; i++) {
        const gguf_tensor *t = st->items[i].src;
        n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
        if (!st->items[i].cand) { fixed += st->items[i].out_bytes; continue; }
        pi[m] = (fr_policy_item){.name = st->items[i].name, .data = t->data, .in_type = (fr_type)t->type,
                                 .ne0 = t->ne[0], .nrows = t->ne[1] * t->ne[2] * t->ne[3]};
        map[m++] = i;
    }
    uint64_t budget = p->budget_bytes ? p->budget_bytes : (uint64_t)(p->budget_bpw * (double)n_params / 8.0);
    uint64_t all_f16 = fixed;
    for (size_t k = 0; k < m; k++) all_f16 += (uint64_t)fr_row_size(FR_TYPE_F16, pi[k].ne0) * (uint64_t)pi[k].nrows;
    int rc = FRUGAL_OK;
    if (budget >= all_f16) { /* F16 everywhere fits: nothing to trade, nothing to measure */
        for (size_t k = 0; k < m; k++) {
            pi[k].n_cand = 1;
            pi[k].cand[0] = FR_TYPE_F16;
            pi[k].bytes[0] = (uint64_t)fr_row_size(FR_TYPE_F16, pi[k].ne0) * (uint64_t)pi[k].nrows;
        }
    } else {
        /* a budget no mix can meet fails before the minutes of calibration and measuring */
        rc = fr_policy_check_budget(pi, m, fixed, budget, err);
        if (!rc && p->calib) rc = fr_calib_importance(in_path, p->calib, pi, m, log, err);
        if (!rc) rc = fr_policy_sensitivity(in_path, p->calib, pi, m, log, err);
        if (!rc) rc = fr_policy_measure(pi, m, st->pool, err);
    }
    if (!rc) rc = fr_policy_choose(pi, m, fixed, budget, log, err);
    for (size_t k = 0; !rc && k < m; k++) {
        q_item *it = &st->items[map[k]];
        it->out_type = pi[k].cand[pi[k].choice];
        it->out_bytes = pi[k].bytes[pi[k].choice];
        /* the chooser measured the weighted writer where there is one: write with it */
        if (pi[k].imp && fr_quantize_weighted_ok(it->out_type)) { it->imp = (float *)pi[k].imp; pi[k].imp = NULL; }
    }
    for (size_t k = 0; k < m; k++) free((float *)pi[k].imp);
    free(pi);
    free(map);
    return rc;
}

/* --calib with --type: the per-column importance of every matrix whose type has an
 * importance-weighted writer (core/quant_lowbit.h), from the model run over the
 * calibration text (api/quant_calib.c). Other tensors are written as without it. */
static int apply_calib(q_state *st, const char *in_path, const char *calib, FILE *log, fr_err *err) {
    fr_policy_item *pi = fr_calloc(st->n ? st->n : 1, sizeof *pi);
    size_t *map = fr_calloc(st->n ? st->n : 1, sizeof *map);
    if (!pi || !map) { free(pi); free(map); return fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory"); }
    size_t m = 0;
    for (size_t i = 0; i < st->n; i++) {
        const gguf_tensor *t = st->items[i].src;
        if (st->items[i].out_type == (fr_type)t->type || !fr_quantize_weighted_ok(st->items[i].out_type)) continue;
        pi[m] = (fr_policy_item){.name = st->items[i].name, .data = t->data, .in_type = (fr_type)t->type,
                                 .ne0 = t->ne[0], .nrows = t->ne[1] * t->ne[2] * t->ne[3]};
        map[m++] = i;
    }
    const int rc = m ? fr_calib_importance(in_path, calib, pi, m, log, err) : FRUGAL_OK;
    for (size_t k = 0; k < m; k++) {
        if (!rc) st->items[map[k]].imp = (float *)pi[k].imp; /* ownership moves to the item */
        else free((float *)pi[k].imp);
    }
    free(pi);
    free(map);
    return rc;
}

/* True when both paths name the same existing file (or the same string). */
static bool same_file(const char *a, const char *b) {
    if (strcmp(a, b) == 0) return true;
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

int frugal_quantize(const char *in_path, const char *out_path, const frugal_quantize_params *p,
                    frugal_quantize_stats *stats, frugal_error *err) {
    frugal_quantize_params defaults;
    if (!p) { frugal_quantize_params_default(&defaults); p = &defaults; }
    if (stats) memset(stats, 0, sizeof *stats);
    if (!in_path || !*in_path || !out_path || !*out_path)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "quantize: missing input or output path");
    const q_target *tg = NULL;
    const bool policy = p->policy && *p->policy;
    if (policy) {
        if (strcasecmp(p->policy, "auto") != 0)
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "quantize: unknown policy '%s' (auto)", p->policy);
        if (!p->budget_bytes && !(p->budget_bpw > 0.0 && p->budget_bpw <= 64.0))
            return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                              "quantize: policy auto needs a size budget (bytes, or bits per weight in (0, 64])");
        tg = &k_policy_target;
    }
    for (size_t i = 0; !tg && p->type && i < sizeof k_targets / sizeof k_targets[0]; i++)
        if (strcasecmp(p->type, k_targets[i].name) == 0) tg = &k_targets[i];
    if (!tg)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "quantize: unknown type '%s' (q8_0, q4_0, q4_k, q5_k_s, q5_k_m, q6_k, q3_k_s, q3_k_m, q3_k_l, q2_k, iq4_nl, iq4_xs, iq3_s, iq3_m, iq2_xxs, iq2_xs, iq2_s, iq2_m, iq3_xxs, iq1_s, iq1_m, "
                          "f16, f32, or frugal-only i8c, nf4, fp8o)",
                          p->type ? p->type : "(null)");
    if (!policy && p->calib && *p->calib && !fr_quantize_weighted_ok(tg->type))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "quantize: --calib goes with --policy auto or a type with an importance-weighted writer "
                          "(q2_k, q3_k_s, q3_k_m, q3_k_l, iq4_nl, iq4_xs, iq3_s, iq3_m, iq2_xxs, iq2_xs, iq2_s, iq2_m, iq3_xxs, iq1_s, iq1_m), not '%s'",
                          p->type);
    if (!policy && fr_mix_needs_calib(tg->ftype) && !(p->calib && *p->calib))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "quantize: type '%s' needs importance weights: add --calib TEXT (a calibration text)",
                          p->type);
    if (p->keep_first < 0) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "quantize: keep_first must be >= 0");
    if (same_file(in_path, out_path))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "quantize: the output path names the input file '%s'",
                          in_path);
    FILE *log = p->log ? p->log : stderr;

    gguf_file *f = NULL;
    int rc = gguf_open(in_path, &f, err);
    if (rc) { fr_err_prefix(err, in_path); return rc; }
    q_state st = {0};
    gguf_writer *w = NULL;
    st.n = (size_t)f->n_tensors;
    st.items = fr_calloc(st.n ? st.n : 1, sizeof *st.items);
    if (!st.items) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory"); goto done; }
    rc = make_plan(f, tg, p, st.items, log, err);
    if (rc) { fr_err_prefix(err, in_path); goto done; }

    int nt = p->n_threads > 0 ? p->n_threads : frugal_cpu_count();
    if (nt > frugal_cpu_count()) nt = frugal_cpu_count();
    if (nt < 1) nt = 1;
    if (nt > 256) nt = 256;
    for (size_t i = 0; i < st.n; i++) {
        if (st.items[i].src->ne[0] > st.max_ne0) st.max_ne0 = st.items[i].src->ne[0];
        st.total_bytes += st.items[i].src->nbytes;
    }
    st.pool = fr_pool_new(nt);
    st.scratch = fr_malloc((size_t)nt * (size_t)(st.max_ne0 ? st.max_ne0 : 1) * sizeof(float));
    w = gguf_writer_new();
    if (!st.pool || !st.scratch || !w) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory"); goto done; }
    if (policy && (rc = apply_policy(&st, in_path, p, log, err))) goto done;
    if (!policy && p->calib && *p->calib && (rc = apply_calib(&st, in_path, p->calib, log, err))) goto done;
    for (size_t i = 0; i < st.n; i++) { /* IQ2 tensors have only the weighted writer */
        const q_item *it = &st.items[i];
        if (it->out_type != (fr_type)it->src->type && !fr_type_traits_get(it->out_type)->from_float && !it->imp) {
            rc = fr_err_set(err, FRUGAL_E_UNSUPPORTED, "quantize: tensor '%s': the calibration gave no importance for it, "
                            "and %s cannot be written without", it->name, fr_type_name(it->out_type));
            goto done;
        }
    }

    for (uint64_t i = 0; rc == FRUGAL_OK && i < f->n_kv; i++) rc = gguf_writer_copy_kv(w, &f->kv[i]);
    if (!rc) rc = gguf_writer_set_u32(w, "general.quantization_version", 2);
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", tg->ftype);
    for (size_t i = 0; rc == FRUGAL_OK && i < st.n; i++) {
        const gguf_tensor *t = st.items[i].src;
        rc = gguf_writer_add_tensor(w, st.items[i].name, st.items[i].out_type, t->n_dims, t->ne, NULL);
    }
    if (rc) { rc = fr_err_set(err, rc, "quantize: cannot build the output (%s)", frugal_status_str(rc)); goto done; }

    st.progress = p->progress != 0;
    st.on_progress = p->on_progress;
    st.progress_user = p->progress_user;
    clock_gettime(CLOCK_MONOTONIC, &st.t0);
    rc = gguf_writer_write(w, out_path, q_fill, &st, err);
    if (rc) { fr_err_prefix(err, out_path); goto done; }
    if (stats) {
        stats->n_tensors = (int)st.n;
        for (size_t i = 0; i < st.n; i++) {
            const gguf_tensor *t = st.items[i].src;
            stats->n_params += (uint64_t)(t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]);
            stats->bytes_in += t->nbytes;
            stats->bytes_out += st.items[i].out_bytes;
            stats->n_quantized += st.items[i].out_type != (fr_type)t->type;
        }
    }

done:
    gguf_writer_free(w);
    fr_pool_free(st.pool);
    free(st.scratch);
    for (size_t i = 0; st.items && i < st.n; i++) free(st.items[i].imp);
    free(st.items);
    gguf_close(f);
    return rc;
}
