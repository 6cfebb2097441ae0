/* mkmodel.c - frugal_mkmodel: write a random-weight llama/qwen2 model in GGUF with
 * a real tokenizer copied from another file.
 *
 * Why it looks like this: tests and benchmarks need models of arbitrary shapes
 * (up to 7B-class) that we have no trained file for. Each tensor's values come from
 * its own RNG stream seeded from (seed, tensor index), so the writer's fill callback
 * can produce tensors one at a time, row by row, in any order, and a multi-GB model
 * never has to be held in memory. The same seed gives the same file everywhere. */
#include "frugal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/error.h"
#include "core/types.h"
#include "gguf/gguf.h"

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

enum init_kind { INIT_MATRIX, INIT_NORM, INIT_BIAS };

typedef struct mk_tensor {
    uint32_t type;
    int64_t ne0, ne1;
    enum init_kind init;
} mk_tensor;

typedef struct mk_state {
    mk_tensor *t;
    size_t n, cap;
    uint64_t seed;
    float *row;           /* one row of floats, sized for the widest tensor */
} mk_state;

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
        fill_normal(&r, st->row, t->ne0, mean, std);
        tr->from_float(st->row, out + (size_t)i * row_bytes, t->ne0);
    }
    return FRUGAL_OK;
}

/* Register one tensor with the writer and remember how to fill it. */
static int mk_add(gguf_writer *w, mk_state *st, const char *name, uint32_t type, int64_t ne0,
                  int64_t ne1, enum init_kind init, fr_err *err) {
    if (st->n == st->cap) {
        size_t nc = st->cap ? st->cap * 2 : 64;
        mk_tensor *nt = realloc(st->t, nc * sizeof *nt);
        if (!nt) return fr_err_set(err, FRUGAL_E_NOMEM, "mkmodel: out of memory");
        st->t = nt;
        st->cap = nc;
    }
    int64_t ne[2] = {ne0, ne1};
    int rc = gguf_writer_add_tensor(w, name, type, (init == INIT_MATRIX) ? 2 : 1, ne, NULL);
    if (rc != FRUGAL_OK)
        return fr_err_set(err, rc, "mkmodel: cannot add tensor '%s' [%lld, %lld] (%s)", name,
                          (long long)ne0, (long long)ne1, frugal_status_str(rc));
    st->t[st->n++] = (mk_tensor){type, ne0, ne1, init};
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
static int validate(const frugal_mkmodel_params *p, uint32_t type, fr_err *err) {
    if (p->dim <= 0 || p->n_layers <= 0 || p->n_heads <= 0 || p->n_kv_heads <= 0 || p->ffn <= 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "mkmodel: dim, layers, heads, kv-heads and ffn must all be positive");
    if (p->ctx < 0) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: ctx must be >= 0");
    if (p->dim % p->n_heads)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: dim %d is not a multiple of heads %d",
                          p->dim, p->n_heads);
    if (p->n_heads % p->n_kv_heads)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: heads %d is not a multiple of kv-heads %d",
                          p->n_heads, p->n_kv_heads);
    if ((p->dim / p->n_heads) % 2)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "mkmodel: head dimension %d must be even (RoPE rotates pairs)", p->dim / p->n_heads);
    const fr_type_traits *tr = fr_type_traits_get(type);
    int bs = tr ? tr->blck_size : 1;
    if (p->dim % bs || p->ffn % bs)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "mkmodel: dim %d and ffn %d must be multiples of %d for type %s",
                          p->dim, p->ffn, bs, p->type);
    if (!(p->rope_base >= 0.0f) || !isfinite(p->rope_base))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: rope base must be >= 0");
    return FRUGAL_OK;
}

/* ------------------------------------------------------------------ main entry */

/* Writes the model to out_path (through "<out_path>.tmp" + rename, so a failure
 * never leaves a partial file under the final name). Errors: FRUGAL_E_INVALID_ARG
 * for bad parameters, FRUGAL_E_IO/FORMAT for an unreadable vocab file (message
 * prefixed with its path) or a failed write. */
int frugal_mkmodel(const frugal_mkmodel_params *p, const char *out_path, frugal_error *err) {
    if (!p || !out_path || !*out_path)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: missing parameters or output path");
    const char *arch = p->arch ? p->arch : "llama";
    bool qwen2 = strcmp(arch, "qwen2") == 0;
    if (!qwen2 && strcmp(arch, "llama") != 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: unknown arch '%s' (llama or qwen2)", arch);
    uint32_t type, ftype;
    if (parse_type(p->type ? p->type : "f32", &type, &ftype) != 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: unknown type '%s' (f32, f16, q8_0 or q4_0)",
                          p->type);
    int rc = validate(p, type, err);
    if (rc) return rc;
    if (!p->vocab_path || !*p->vocab_path)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "mkmodel: a vocabulary file is required");

    gguf_file *vf = NULL;
    rc = gguf_open(p->vocab_path, &vf, err);
    if (rc) {
        fr_err_prefix(err, p->vocab_path);
        return rc;
    }
    gguf_writer *w = NULL;
    mk_state st = {.seed = p->seed};
    const gguf_kv *tokens = gguf_find_kv(vf, "tokenizer.ggml.tokens");
    if (!tokens || tokens->type != GGUF_VT_ARRAY || tokens->arr_type != GGUF_VT_STRING ||
        tokens->arr_n == 0 || tokens->arr_n > INT32_MAX) {
        rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: no usable tokenizer.ggml.tokens array", p->vocab_path);
        goto done;
    }
    int64_t n_vocab = (int64_t)tokens->arr_n;
    w = gguf_writer_new();
    if (!w) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "mkmodel: out of memory"); goto done; }

    /* metadata: the keys llama.cpp reads for these architectures */
    int head_dim = p->dim / p->n_heads;
    float rope_base = p->rope_base > 0.0f ? p->rope_base : (qwen2 ? 1e6f : 1e4f);
    char key[128], name[128];
    snprintf(name, sizeof name, "frugal random %s d%d l%d h%d kv%d ff%d %s", arch, p->dim,
             p->n_layers, p->n_heads, p->n_kv_heads, p->ffn, p->type ? p->type : "f32");
    rc = gguf_writer_set_str(w, "general.architecture", arch);
    rc = rc ? rc : gguf_writer_set_str(w, "general.name", name);
    rc = rc ? rc : gguf_writer_set_u32(w, "general.file_type", ftype);
#define SET_ARCH_U32(suffix, v) \
    (snprintf(key, sizeof key, "%s." suffix, arch), rc ? rc : gguf_writer_set_u32(w, key, (uint32_t)(v)))
#define SET_ARCH_F32(suffix, v) \
    (snprintf(key, sizeof key, "%s." suffix, arch), rc ? rc : gguf_writer_set_f32(w, key, (v)))
    rc = SET_ARCH_U32("context_length", p->ctx > 0 ? p->ctx : 4096);
    rc = SET_ARCH_U32("embedding_length", p->dim);
    rc = SET_ARCH_U32("block_count", p->n_layers);
    rc = SET_ARCH_U32("feed_forward_length", p->ffn);
    rc = SET_ARCH_U32("attention.head_count", p->n_heads);
    rc = SET_ARCH_U32("attention.head_count_kv", p->n_kv_heads);
    rc = SET_ARCH_U32("rope.dimension_count", head_dim);
    rc = SET_ARCH_F32("rope.freq_base", rope_base);
    rc = SET_ARCH_F32("attention.layer_norm_rms_epsilon", 1e-5f);
#undef SET_ARCH_U32
#undef SET_ARCH_F32
    for (uint64_t i = 0; rc == FRUGAL_OK && i < vf->n_kv; i++) {
        const gguf_kv *kv = &vf->kv[i];
        if (kv->key.len > 10 && memcmp(kv->key.ptr, "tokenizer.", 10) == 0)
            rc = gguf_writer_copy_kv(w, kv);
    }
    if (rc) {
        rc = fr_err_set(err, rc, "mkmodel: cannot build metadata (%s)", frugal_status_str(rc));
        goto done;
    }

    /* tensors, in llama.cpp's order; ne[0] is the input dimension of each matrix */
    int64_t dim = p->dim, ffn = p->ffn, kv_dim = (int64_t)p->n_kv_heads * head_dim;
    if ((rc = mk_add(w, &st, "token_embd.weight", type, dim, n_vocab, INIT_MATRIX, err))) goto done;
    if ((rc = mk_add(w, &st, "output_norm.weight", FR_TYPE_F32, dim, 1, INIT_NORM, err))) goto done;
    if (!p->tied && (rc = mk_add(w, &st, "output.weight", type, dim, n_vocab, INIT_MATRIX, err))) goto done;
    for (int l = 0; l < p->n_layers; l++) {
        struct { const char *suffix; uint32_t type; int64_t ne0, ne1; enum init_kind init; bool qwen_only; } k[] = {
            {"attn_norm.weight", FR_TYPE_F32, dim, 1, INIT_NORM, false},
            {"attn_q.weight", type, dim, dim, INIT_MATRIX, false},
            {"attn_q.bias", FR_TYPE_F32, dim, 1, INIT_BIAS, true},
            {"attn_k.weight", type, dim, kv_dim, INIT_MATRIX, false},
            {"attn_k.bias", FR_TYPE_F32, kv_dim, 1, INIT_BIAS, true},
            {"attn_v.weight", type, dim, kv_dim, INIT_MATRIX, false},
            {"attn_v.bias", FR_TYPE_F32, kv_dim, 1, INIT_BIAS, true},
            {"attn_output.weight", type, dim, dim, INIT_MATRIX, false},
            {"ffn_norm.weight", FR_TYPE_F32, dim, 1, INIT_NORM, false},
            {"ffn_gate.weight", type, dim, ffn, INIT_MATRIX, false},
            {"ffn_up.weight", type, dim, ffn, INIT_MATRIX, false},
            {"ffn_down.weight", type, ffn, dim, INIT_MATRIX, false},
        };
        for (size_t j = 0; j < sizeof k / sizeof k[0]; j++) {
            if (k[j].qwen_only && !qwen2) continue;
            snprintf(name, sizeof name, "blk.%d.%s", l, k[j].suffix);
            if ((rc = mk_add(w, &st, name, k[j].type, k[j].ne0, k[j].ne1, k[j].init, err))) goto done;
        }
    }

    int64_t widest = dim > ffn ? dim : ffn;
    if (kv_dim > widest) widest = kv_dim;
    st.row = malloc((size_t)widest * sizeof *st.row);
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
