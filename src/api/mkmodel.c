/* mkmodel.c - frugal_mkmodel: write a random-weight model of any supported family in
 * GGUF with a real tokenizer copied from another file. The tensors are those the
 * family's description (model/arch.h) requires, so a new family needs nothing here.
 *
 * Why it looks like this: tests and benchmarks need models of arbitrary shapes
 * (up to 7B-class) that we have no trained file for. Each tensor's values come from
 * its own RNG stream seeded from (seed, tensor index), so the writer's fill callback
 * can produce tensors one at a time, row by row, in any order, and a multi-GB model
 * never has to be held in memory. The same seed gives the same file everywhere. */
#include "core/fault.h"
#include "kernels/dispatch.h"
#include "frugal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/types.h"
#include "gguf/gguf.h"
#include "model/model.h"

void frugal_mkmodel_params_default(frugal_mkmodel_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->arch = "llama";
    p->type = "f32";
    p->seed = 42;
}

/* ------------------------------------------------------------------ RNG */

typedef struct rng { uint64_t s[4]; } rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* One independent stream per (seed, tensor index): index is mixed in through
 * splitmix64 so neighbouring indices give unrelated streams. */
static void rng_init(rng *r, uint64_t seed, uint64_t index) {
    uint64_t x = seed;
    uint64_t mix = splitmix64(&x) ^ (index * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&mix);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in (0, 1): never 0, so log() below is finite. */
static double rng_open01(rng *r) { return ((double)(rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }

/* Fill y[0..n) with N(mean, std^2) (Box-Muller, both outputs used). */
static void fill_normal(rng *r, float *y, int64_t n, float mean, float std) {
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = rng_open01(r), u2 = rng_open01(r);
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        y[i] = mean + std * (float)(rad * cos(th));
        if (i + 1 < n) y[i + 1] = mean + std * (float)(rad * sin(th));
    }
}

/* ------------------------------------------------------------------ tensors */

enum init_kind { INIT_MATRIX, INIT_NORM, INIT_BIAS, INIT_ROUTER };

typedef struct mk_tensor {
    uint32_t type;
    int64_t ne0, ne1;
    enum init_kind init;
} mk_tensor;

typedef struct mk_state {
    mk_tensor *t;
    size_t n, cap;
    uint64_t seed;
    float expert_skew;    /* router rows' scale falls from 1 to exp(-skew) (see router_scale) */
    float *row;           /* one row of floats, sized for the widest tensor */
} mk_state;

/* Skewed routing: expert i's router row of tensor `index` is scaled by
 * exp(-skew * rank / (E - 1)), rank = (i + index) % E (another hot set per layer).
 * A row with a larger scale has logits of larger spread, so it wins the top-k more
 * often: skew 0 is uniform, skew 3 gives each layer a few clearly favoured experts. */
static float router_scale(const mk_state *st, size_t index, int64_t i, int64_t n_expert) {
    if (st->expert_skew <= 0.0f || n_expert < 2) return 1.0f;
    const int64_t rank = (i + (int64_t)index) % n_expert;
    return expf(-st->expert_skew * (float)rank / (float)(n_expert - 1));
}

/* Fill callback for gguf_writer_write: tensor `index`, row by row, quantized with the
 * type's from_float. The rows of a tensor continue one RNG stream, so the values
 * depend only on (seed, index, shape), not on how the writer buffers. */
static int mk_fill(void *user, size_t index, void *dst, size_t nbytes, fr_err *err) {
    mk_state *st = user;
    if (index >= st->n) return fr_err_set(err, FRUGAL_E_INTERNAL, "mkmodel: tensor index %zu out of range", index);
    const mk_tensor *t = &st->t[index];
    const fr_type_traits *tr = fr_type_traits_get(t->type);
    size_t row_bytes = fr_row_size((fr_type)t->type, t->ne0);
    if (!tr || !tr->from_float || row_bytes == 0 || row_bytes * (size_t)t->ne1 != nbytes)
        return fr_err_set(err, FRUGAL_E_INTERNAL, "mkmodel: tensor %zu: size mismatch", index);
    rng r;
    rng_init(&r, st->seed, index);
    float mean = 0.0f, std;
    switch (t->init) {
    case INIT_NORM: mean = 1.0f; std = 0.1f; break;   /* ~1 so the norm keeps scale */
    case INIT_BIAS: std = 0.1f; break;
    default: std = 1.0f / sqrtf((float)t->ne0); break; /* keeps activations O(1) */
    }
    uint8_t *out = dst;
    for (int64_t i = 0; i < t->ne1; i++) {
        fill_normal(&r, st->row, t->ne0, mean, t->init == INIT_ROUTER ? std * router_scale(st, index, i, t->ne1) : std);
        tr->from_float(st->row, out + (size_t)i * row_bytes, t->ne0);
    }
    return FRUGAL_OK;
}

/* Register one tensor with the writer and remember how to fill it. */
/* ne2 > 1: a 3-D tensor (stacked experts), filled as ne1 * ne2 rows. */
static int mk_add(gguf_writer *w, mk_state *st, const char *name, uint32_t type, int64_t ne0,
                  int64_t ne1, int64_t ne2, enum init_kind init, fr_err *err) {
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        mk_tensor *nt = fr_realloc(st->t, nc * sizeof *nt);
        if (!nt) return fr_err_set(err, FRUGAL_E_NOMEM, "mkmodel: out of memory");
        st->t = nt;
        st->cap = nc;
    }
    int64_t ne[3] = {ne0, ne1, ne2};
    int rc = gguf_writer_add_tensor(w, name, type, ne2 > 1 ? 3 : (init == INIT_MATRIX || init == INIT_ROUTER) ? 2 : 1, ne, NULL);
    if (rc != FRUGAL_OK)
        return fr_err_set(err, rc, "mkmodel: cannot add tensor '%s' [%lld, %lld] (%s)", name,
                          (long long)ne0, (long long)ne1, frugal_status_str(rc));
    st->t[st->n++] = (mk_tensor){type, ne0, ne1 * ne2, init};
    return FRUGAL_OK;
}

/* ------------------------------------------------------------------ validation */

/* Weight type from its CLI name, with llama.cpp's general.file_type value. */
static int parse_type(const char *s, uint32_t *type, uint32_t *ftype) {
    static const struct { const char *name; uint32_t type, ftype; } k[] = {
        {"f32", FR_TYPE_F32, 0}, {"f16", FR_TYPE_F16, 1},
        {"q4_0", FR_TYPE_Q4_0, 2}, {"q8_0", FR_TYPE_Q8_0, 7},
    };
    for (size_t i = 0; s && i < sizeof k / sizeof k[0]; i++)
        if (strcasecmp(s, k[i].name) == 0) {
            *type = k[i].type;
            *ftype = k[i].ftype;
            return 0;
        }
    return -1;
}

/* Check the shape parameters; FRUGAL_E_INVALID_ARG naming the first problem. */
static int validate(const frugal_mkmodel_params *p, uint32_t type, int head_dim, fr_err *err) {
    if (p->dim <= 0 || p->n_layers <= 0 || p->n_heads <= 0 || p->n_kv_heads <= 0 || p->ffn <= 0 || head_dim <= 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "mkmodel: dim, layers, heads, kv-heads, head-dim and ffn must all be positive");
    if (p->ctx < 0 || p->window < 0) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: ctx and window must be >= 0");
    if (p->n_expert < 0 || p->n_expert > 1024 || (p->n_expert && (p->n_expert_used < 1 || p->n_expert_used > p->n_expert)))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: need 1 <= experts-used <= experts <= 1024 (got %d of %d)",
                          p->n_expert_used, p->n_expert);
    if (!(p->expert_skew >= 0.0f && p->expert_skew <= 20.0f) || (p->expert_skew > 0.0f && !p->n_expert))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: expert skew %g needs --experts and 0 <= skew <= 20",
                          (double)p->expert_skew);
    if (!p->head_dim && p->dim % p->n_heads)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: dim %d is not a multiple of heads %d",
                          p->dim, p->n_heads);
    if (p->n_heads % p->n_kv_heads)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: heads %d is not a multiple of kv-heads %d",
                          p->n_heads, p->n_kv_heads);
    if (head_dim % 2)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: head dimension %d must be even (RoPE rotates pairs)",
                          head_dim);
    const fr_type_traits *tr = fr_type_traits_get(type);
    int bs = tr ? tr->blck_size : 1;
    if (p->dim % bs || p->ffn % bs || (p->n_heads * head_dim) % bs)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "mkmodel: dim %d, ffn %d and heads x head-dim %d must be multiples of %d for type %s",
                          p->dim, p->ffn, p->n_heads * head_dim, bs, p->type);
    if (!(p->rope_base >= 0.0f) || !isfinite(p->rope_base))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: rope base must be >= 0");
    return FRUGAL_OK;
}

/* The metadata keys the reference engine reads for this family and shape. */
static int write_metadata(gguf_writer *w, const frugal_mkmodel_params *p, const fr_arch_desc *d,
                          const fr_hparams *hp, uint32_t ftype) {
    const char *a = d->name;
    char key[128], name[160];
    snprintf(name, sizeof name, "frugal random %s d%d l%d h%d kv%d hd%d ff%d %s", a, p->dim, p->n_layers,
             p->n_heads, p->n_kv_heads, hp->head_dim, p->ffn, p->type ? p->type : "f32");
    int rc = gguf_writer_set_str(w, "general.architecture", a);
    rc = rc ? rc : gguf_writer_set_str(w, "general.name", name);
    rc = rc ? rc : gguf_writer_set_u32(w, "general.file_type", ftype);
#define SET_U32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), rc ? rc : gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define SET_F32(suffix, v) (snprintf(key, sizeof key, "%s." suffix, a), rc ? rc : gguf_writer_set_f32(w, key, (v)))
    rc = SET_U32("context_length", hp->n_ctx_train);
    rc = SET_U32("embedding_length", p->dim);
    rc = SET_U32("block_count", p->n_layers);
    rc = SET_U32("feed_forward_length", p->ffn);
    rc = SET_U32("attention.head_count", p->n_heads);
    rc = SET_U32("attention.head_count_kv", p->n_kv_heads);
    if (hp->head_dim != p->dim / p->n_heads || p->dim % p->n_heads) {
        rc = SET_U32("attention.key_length", hp->head_dim);
        rc = SET_U32("attention.value_length", hp->head_dim);
    }
    if (!d->no_rope) {
        rc = SET_U32("rope.dimension_count", hp->head_dim);
        const float typical = d->rope_base_typical > 0.0f ? d->rope_base_typical : d->rope_base;
        rc = SET_F32("rope.freq_base", p->rope_base > 0.0f ? p->rope_base : typical);
    }
    if (d->layer_norm_eps) rc = SET_F32("attention.layer_norm_epsilon", d->norm_eps);
    else rc = SET_F32("attention.layer_norm_rms_epsilon", d->norm_eps);
    if (p->window > 0 && d->swa_period) rc = SET_U32("attention.sliding_window", p->window);
    if (hp->n_expert) {
        rc = SET_U32("expert_count", hp->n_expert);
        rc = SET_U32("expert_used_count", hp->n_expert_used);
        if (d->expert_ff_key) rc = SET_U32("expert_feed_forward_length", p->ffn);
    }
#undef SET_U32
#undef SET_F32
    return rc;
}

/* Register the tensors of the family's table: every required one, and the output
 * matrix unless tied. ne[0] is the input dimension of each matrix. */
static int add_tensors(gguf_writer *w, mk_state *st, const frugal_mkmodel_params *p, const fr_arch_desc *d,
                       const fr_hparams *hp, uint32_t type, fr_err *err) {
    static const uint8_t norms[] = {FR_ATTN_NORM, FR_Q_NORM, FR_K_NORM, FR_POST_ATTN_NORM,
                                    FR_FFN_NORM,  FR_POST_FFN_NORM, FR_OUTPUT_NORM};
    for (int il = -1; il < hp->n_layer; il++)
        for (const fr_tensor_spec *s = d->tensors; s->name; s++) {
            if ((il < 0) != (s->slot >= FR_N_LSLOT)) continue;
            if ((s->flags & FR_T_OPTIONAL) && (s->slot != FR_OUTPUT || p->tied || d->always_tied)) continue;
            char name[128];
            snprintf(name, sizeof name, s->name, il);
            if (((s->flags & FR_T_DENSE) && hp->n_expert) || ((s->flags & FR_T_MOE) && !hp->n_expert)) continue;
            const int64_t ne0 = fr_dim_value(hp, s->d0), ne1 = s->d1 ? fr_dim_value(hp, s->d1) : 1;
            const int64_t ne2 = s->d2 ? fr_dim_value(hp, s->d2) : 1;
            enum init_kind init = s->d1 ? INIT_MATRIX : INIT_BIAS;
            for (size_t k = 0; k < sizeof norms; k++)
                if (s->slot == norms[k]) init = INIT_NORM;
            if (s->slot == FR_WGATE_INP) init = INIT_ROUTER;
            /* learned positions and the router stay F32, as llama-quantize leaves them */
            const uint32_t t = s->d1 && s->slot != FR_POS_EMBD && s->slot != FR_WGATE_INP ? type : FR_TYPE_F32;
            int rc = mk_add(w, st, name, t, ne0, ne1, ne2, init, err);
            if (rc) return rc;
        }
    return FRUGAL_OK;
}

/* ------------------------------------------------------------------ main entry */

/* Writes the model to out_path (through a temp file + rename, so a failure never
 * leaves a partial file under the final name). Errors: FRUGAL_E_INVALID_ARG for bad
 * parameters or an unknown family, FRUGAL_E_IO/FORMAT for an unreadable vocab file
 * (message prefixed with its path) or a failed write. */
int frugal_mkmodel(const frugal_mkmodel_params *p, const char *out_path, frugal_error *err) {
    if (!p || !out_path || !*out_path)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: missing parameters or output path");
    const char *arch = p->arch ? p->arch : "llama";
    const fr_arch_desc *d = fr_arch_find(arch, strlen(arch));
    if (!d) {
        char list[256];
        fr_arch_list(list, sizeof list);
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: unknown arch '%s' (supported: %s)", arch, list);
    }
    uint32_t type, ftype;
    if (parse_type(p->type ? p->type : "f32", &type, &ftype) != 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: unknown type '%s' (f32, f16, q8_0 or q4_0)",
                          p->type);
    const int head_dim = p->head_dim > 0 ? p->head_dim : (p->n_heads > 0 ? p->dim / p->n_heads : 0);
    int rc = validate(p, type, head_dim, err);
    if (rc) return rc;
    if (d->moe && !p->n_expert)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: %s needs --experts N --experts-used K", d->name);
    if (!p->vocab_path || !*p->vocab_path)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: a vocabulary file is required");

    gguf_file *vf = NULL;
    rc = gguf_open(p->vocab_path, &vf, err);
    if (rc) {
        fr_err_prefix(err, p->vocab_path);
        return rc;
    }
    gguf_writer *w = NULL;
    mk_state st = {.seed = p->seed, .expert_skew = p->expert_skew};
    const gguf_kv *tokens = gguf_find_kv(vf, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_VT_ARRAY || tokens->arr_type != GGUF_VT_STRING ||
        tokens->arr_n == 0 || tokens->arr_n > INT32_MAX) {
        rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: no usable tokenizer.ggml.tokens array", p->vocab_path);
        goto done;
    }
    fr_hparams hp = {.arch = d, .n_vocab = (int)tokens->arr_n, .n_ctx_train = p->ctx > 0 ? p->ctx : 4096,
                     .n_embd = p->dim, .n_layer = p->n_layers, .n_head = p->n_heads, .n_head_kv = p->n_kv_heads,
                     .head_dim = head_dim, .n_ff = p->ffn, .n_rot = d->no_rope ? 0 : head_dim,
                     .n_expert = p->n_expert, .n_expert_used = p->n_expert_used};
    w = gguf_writer_new();
    if (!w) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "mkmodel: out of memory"); goto done; }
    rc = write_metadata(w, p, d, &hp, ftype);
    for (uint64_t i = 0; rc == FRUGAL_OK && i < vf->n_kv; i++) {
        const gguf_kv *kv = &vf->kv[i];
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0)
            rc = gguf_writer_copy_kv(w, kv);
    }
    if (rc) {
        rc = fr_err_set(err, rc, "mkmodel: cannot build metadata (%s)", frugal_status_str(rc));
        goto done;
    }
    if ((rc = add_tensors(w, &st, p, d, &hp, type, err))) goto done;

    int64_t widest = 0;
    for (size_t i = 0; i < st.n; i++) if (st.t[i].ne0 > widest) widest = st.t[i].ne0;
    st.row = fr_malloc((size_t)(widest + 1) * sizeof *st.row);
    if (!st.row) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "mkmodel: out of memory"); goto done; }
    /* the writer names its temp file; the prefix keeps the CLI's "<file>: <what>" form */
    rc = gguf_writer_write(w, out_path, mk_fill, &st, err);
    if (rc) fr_err_prefix(err, out_path);

done:
    gguf_writer_free(w);
    gguf_close(vf);
    free(st.t);
    free(st.row);
    return rc;
}
