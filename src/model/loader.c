/* loader.c - turn a validated GGUF file into a model: find the family's description
 * (arch.h), read its hyper-parameters (hparams.c) and bind every tensor its table
 * names, checking shapes and types before anything runs; any tensor of the file that
 * no description binds is an error naming it (it would otherwise be ignored in
 * silence, as Llama-3.1's rope_freqs once was). Matrices stay in the mapping
 * (zero-copy); 1-D tensors (norms, biases, factors) become owned F32 arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/fault.h"
#include "core/progress.h"
#include "core/types.h"
#include "kernels/interleave.h"
#include "mem/alloc.h"
#include "mem/sysmem.h"
#include "model/model.h"

int64_t fr_dim_value(const fr_hparams *hp, int dim) {
    const int64_t q = (int64_t)hp->n_head * hp->head_dim, kv = (int64_t)hp->n_head_kv * hp->head_dim;
    switch (dim) {
    case FR_D_EMBD: return hp->n_embd;
    case FR_D_Q: return q;
    case FR_D_KV: return kv;
    case FR_D_QKV: return q + 2 * kv;
    case FR_D_FF: return hp->n_ff;
    case FR_D_FF2: return 2 * (int64_t)hp->n_ff;
    case FR_D_HEAD: return hp->head_dim;
    case FR_D_ROT2: return hp->n_rot / 2;
    case FR_D_VOCAB: return hp->n_vocab;
    case FR_D_CTX: return hp->n_ctx_train;
    case FR_D_EXPERT: return hp->n_expert;
    default: return 0;
    }
}

/* A tensor must be [n_in] (n_out == 0), [n_in, n_out] or [n_in, n_out, n_mat] (n_mat
 * > 0: stacked experts) and of a type we compute with. */
static int check_tensor(const gguf_tensor *x, const char *name, int64_t n_in, int64_t n_out, int64_t n_mat,
                        fr_err *err) {
    bool ok = n_mat  ? (x->n_dims == 3 && x->ne[0] == n_in && x->ne[1] == n_out && x->ne[2] == n_mat)
              : n_out ? (x->n_dims == 2 && x->ne[0] == n_in && x->ne[1] == n_out)
                      : (x->n_dims == 1 && x->ne[0] == n_in);
    if (!ok) {
        char want[96];
        if (n_mat) snprintf(want, sizeof want, "[%lld, %lld, %lld]", (long long)n_in, (long long)n_out, (long long)n_mat);
        else if (n_out) snprintf(want, sizeof want, "[%lld, %lld]", (long long)n_in, (long long)n_out);
        else snprintf(want, sizeof want, "[%lld]", (long long)n_in);
        return fr_err_set(err, FRUGAL_E_FORMAT,
                          "tensor '%s' has shape [%lld, %lld, %lld, %lld] (%u dims), expected %s",
                          name, (long long)x->ne[0], (long long)x->ne[1], (long long)x->ne[2],
                          (long long)x->ne[3], x->n_dims, want);
    }
    const fr_type_traits *tr = fr_type_traits_get(x->type);
    if (!tr || !tr->supported) {
        const char *tn = fr_type_name(x->type);
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "tensor '%s': type %s is not supported", name,
                          tn ? tn : "unknown");
    }
    return FRUGAL_OK;
}

static void bind_matrix(const gguf_tensor *t, int64_t n_in, int64_t n_out, fr_weight *w) {
    w->data = t->data;
    w->src = t->data;
    w->layout = FR_LAYOUT_ROWS;
    w->type = (fr_type)t->type;
    w->n_in = n_in;
    w->n_out = n_out;
}

/* 1-D tensor -> owned F32 copy (accounted as weights). */
static int bind_vector(frugal_model *m, const gguf_tensor *t, const char *name, int64_t n, float **out,
                       fr_err *err) {
    float *v = fr_mem_alloc(FR_MEM_WEIGHTS, (size_t)n * sizeof(float));
    if (!v) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for tensor '%s'", name);
    fr_type_traits_get(t->type)->to_float(t->data, v, n);
    m->owned_bytes += (size_t)n * sizeof(float);
    *out = v;
    return FRUGAL_OK;
}

/* Where a global slot's tensor goes. */
static void global_dest(frugal_model *m, int slot, fr_weight **w, float ***v) {
    *w = NULL, *v = NULL;
    switch (slot) {
    case FR_TOK_EMBD: *w = &m->tok_embd; break;
    case FR_POS_EMBD: *w = &m->pos_embd; break;
    case FR_OUTPUT: *w = &m->output; break;
    case FR_OUTPUT_NORM: *v = &m->output_norm; break;
    case FR_OUTPUT_NORM_B: *v = &m->output_norm_b; break;
    case FR_ROPE_FREQS: *v = &m->rope_freqs; break;
    case FR_ROPE_LONG: *v = &m->rope_long; break;
    case FR_ROPE_SHORT: *v = &m->rope_short; break;
    default: break;
    }
}

/* Bind one spec row for layer il (-1: a global tensor); marks the file's tensor used. */
static int bind_spec(frugal_model *m, const fr_tensor_spec *s, int il, uint8_t *used, fr_err *err) {
    char name[128];
    snprintf(name, sizeof name, s->name, il);
    const gguf_tensor *t = gguf_find_tensor(m->file, name);
    const bool unwanted = ((s->flags & FR_T_DENSE) && m->hp.n_expert) || ((s->flags & FR_T_MOE) && !m->hp.n_expert);
    if (unwanted) {
        if (!t) return FRUGAL_OK;
        return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s' does not belong in a model with expert_count %d", name,
                          m->hp.n_expert);
    }
    if (!t) {
        if (s->flags & FR_T_OPTIONAL) return FRUGAL_OK;
        return fr_err_set(err, FRUGAL_E_FORMAT, "missing tensor '%s' (architecture %s)", name, m->hp.arch->name);
    }
    const int64_t n_in = fr_dim_value(&m->hp, s->d0), n_out = fr_dim_value(&m->hp, s->d1);
    const int64_t n_mat = s->d2 ? fr_dim_value(&m->hp, s->d2) : 0;
    int rc = check_tensor(t, name, n_in, n_out, n_mat, err);
    if (rc) return rc;
    used[t - m->file->tensors] = 1;
    fr_weight *w;
    float **v;
    if (il >= 0) {
        fr_layer *L = &m->layers[il];
        w = s->slot < FR_N_LMAT ? &L->mat[s->slot] : NULL;
        v = s->slot < FR_N_LMAT ? NULL : &L->vec[s->slot];
    } else {
        global_dest(m, s->slot, &w, &v);
    }
    if (w && n_out) bind_matrix(t, n_in, n_mat ? n_out * n_mat : n_out, w); /* experts: stacked rows */
    else if (v && !n_out) return bind_vector(m, t, name, n_in, v, err);
    else return fr_err_set(err, FRUGAL_E_INTERNAL, "description of %s: bad slot for '%s'", m->hp.arch->name, name);
    return FRUGAL_OK;
}

/* A layer must have what its recipe runs: Q, K, V (or fused QKV), the output
 * projection, and the FFN matrices its kind needs. */
static int check_layer(const frugal_model *m, int il, fr_err *err) {
    const fr_layer *L = &m->layers[il];
    const bool qkv = L->mat[FR_WQKV].data || (L->mat[FR_WQ].data && L->mat[FR_WK].data && L->mat[FR_WV].data);
    const bool glu = m->hp.arch->ffn != FR_FFN_GELU;
    const bool moe = L->mat[FR_WGATE_INP].data && L->mat[FR_WGATE_EXPS].data && L->mat[FR_WUP_EXPS].data &&
                     L->mat[FR_WDOWN_EXPS].data;
    const bool ffn = moe || (L->mat[FR_WUP].data && L->mat[FR_WDOWN].data &&
                             (!glu || L->mat[FR_WGATE].data || L->mat[FR_WUP].n_out == 2 * (int64_t)m->hp.n_ff));
    if (!qkv) return fr_err_set(err, FRUGAL_E_FORMAT, "layer %d has neither attn_qkv nor attn_q/k/v", il);
    if (!ffn) return fr_err_set(err, FRUGAL_E_FORMAT, "layer %d lacks an FFN matrix (gate, up or down)", il);
    return FRUGAL_OK;
}

/* Every tensor of the file must be bound: one that is not would be ignored and the
 * model would run wrong without a word. */
static int check_unbound(const frugal_model *m, const uint8_t *used, fr_err *err) {
    for (uint64_t i = 0; i < m->file->n_tensors; i++) {
        if (used[i]) continue;
        const gguf_str n = m->file->tensors[i].name;
        const int len = (int)(n.len < 96 ? n.len : 96);
        if ((n.len > 2 && !memcmp(n.ptr, "v.", 2)) || (n.len > 3 && !memcmp(n.ptr, "mm.", 3)))
            return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                              "tensor '%.*s' belongs to a vision encoder: only the text model of %s is supported",
                              len, n.ptr, m->hp.arch->name);
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "tensor '%.*s' is not used by architecture %s", len, n.ptr,
                          m->hp.arch->name);
    }
    return FRUGAL_OK;
}

static int find_arch(frugal_model *m, const fr_arch_desc **out, fr_err *err) {
    gguf_str arch;
    int rc = gguf_get_str(m->file, "general.architecture", &arch, err);
    if (rc) return rc;
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(arch.len < 23 ? arch.len : 23), arch.ptr);
    *out = fr_arch_find(arch.ptr, (size_t)arch.len);
    if (*out) return FRUGAL_OK;
    char list[256];
    fr_arch_list(list, sizeof list);
    if (gguf_str_eq(arch, "clip"))
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                          "a vision projector (architecture 'clip') is not supported: frugal runs text models (%s)",
                          list);
    return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "unsupported architecture '%.*s' (supported: %s)",
                      (int)(arch.len < 64 ? arch.len : 64), arch.ptr, list);
}

static int bind_all(frugal_model *m, uint8_t *used, fr_err *err) {
    const fr_arch_desc *d = m->hp.arch;
    int rc = FRUGAL_OK;
    for (const fr_tensor_spec *s = d->tensors; !rc && s->name; s++)
        if (s->slot >= FR_N_LSLOT) rc = bind_spec(m, s, -1, used, err);
    for (int il = 0; !rc && il < m->hp.n_layer; il++) {
        for (const fr_tensor_spec *s = d->tensors; !rc && s->name; s++)
            if (s->slot < FR_N_LSLOT) rc = bind_spec(m, s, il, used, err);
        if (!rc) rc = check_layer(m, il, err);
    }
    return rc ? rc : check_unbound(m, used, err);
}

int fr_model_bind(frugal_model *m, fr_err *err) {
    const fr_arch_desc *d;
    int rc = find_arch(m, &d, err);
    if (rc) return rc;
    gguf_str name;
    fr_err tmp = FRUGAL_ERROR_INIT;
    if (gguf_get_str(m->file, "general.name", &name, &tmp) == FRUGAL_OK)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len < 127 ? name.len : 127), name.ptr);
    if ((rc = fr_hparams_read(&m->hp, m->file, d, fr_tokenizer_n_vocab(m->tok), err))) return rc;

    m->layers = fr_mem_alloc(FR_MEM_WEIGHTS, sizeof(fr_layer) * (size_t)m->hp.n_layer);
    if (!m->layers) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    memset(m->layers, 0, sizeof(fr_layer) * (size_t)m->hp.n_layer);
    uint8_t *used = fr_calloc(m->file->n_tensors + 1, 1);
    if (!used) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    m->owned_bytes += sizeof(fr_layer) * (size_t)m->hp.n_layer;
    rc = bind_all(m, used, err);
    free(used);
    if (rc) return rc;
    if (!m->output.data || d->always_tied) m->output = m->tok_embd; /* tied embeddings */
    if (d->rope_factors_by_ctx && (!m->rope_long) != (!m->rope_short))
        return fr_err_set(err, FRUGAL_E_FORMAT, "rope_factors_long and rope_factors_short come in pairs");
    return FRUGAL_OK;
}

const float *fr_model_rope_factors(const frugal_model *m, int n_ctx) {
    if (m->rope_freqs) return m->rope_freqs;
    if (m->rope_long) return n_ctx > m->hp.rope.n_ctx_orig ? m->rope_long : m->rope_short;
    return NULL;
}

static fr_weight *layer_matrix(fr_layer *L, int j) { return &L->mat[j]; }

static size_t matrix_bytes(const fr_weight *w) { return fr_row_size(w->type, w->n_in) * (size_t)w->n_out; }

/* Bytes a matrix takes in the block of copies (starts kept 64-byte aligned): `il`
 * asks for the matrices that get the IL16 layout, !il for the others, which are
 * copied as they are (row-major) only so that decode streams them through huge pages. */
static size_t block_share(const fr_weight *w, bool il) {
    if (!w->data || w->layout != FR_LAYOUT_ROWS || fr_il_worth_it(w) != il) return 0;
    return (matrix_bytes(w) + 63) & ~(size_t)63;
}

/* Copy one matrix out of the mapping into dst (IL16 where that pays, else row-major)
 * and give the mapped pages back: the copy replaces them, so RSS ends where it was. */
static void repack_matrix(fr_weight *w, uint8_t *dst) {
    const size_t bytes = matrix_bytes(w);
    if (fr_il_worth_it(w)) {
        fr_il_repack(w, dst);
    } else {
        memcpy(dst, w->data, bytes);
        w->data = dst;
    }
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)w->src + page - 1) & ~(page - 1), b = ((uintptr_t)w->src + bytes) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* The output head is repacked unless it is the token embedding (read row by row). */
static bool output_repacked(const frugal_model *m) { return m->output.src != m->tok_embd.src; }

/* Bytes of the copies of every matrix repack_all would copy (il: the IL16 ones, else the others). */
static uint64_t block_want(frugal_model *m, bool il) {
    uint64_t want = 0;
    for (int il_ = 0; il_ < m->hp.n_layer; il_++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++)
            if (fr_layer_mat_repackable(j)) want += block_share(layer_matrix(&m->layers[il_], j), il);
    if (output_repacked(m)) want += block_share(&m->output, il);
    return want;
}

/* Copy every matrix with a share in the block (IL16 ones, and the others when `plain`). */
static void repack_all(frugal_model *m, uint8_t *block, uint64_t want, bool plain) {
    uint8_t *const start = block;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++) {
            fr_weight *w = layer_matrix(&m->layers[il], j);
            const size_t share = fr_layer_mat_repackable(j) ? block_share(w, true) + (plain ? block_share(w, false) : 0) : 0;
            if (share) repack_matrix(w, block);
            block += share;
            fr_progress("repack", (uint64_t)(block - start), want);
        }
    fr_weight *o = &m->output;
    if (output_repacked(m) && block_share(o, true) + (plain ? block_share(o, false) : 0)) repack_matrix(o, block);
    fr_progress("repack", want, want);
}

int fr_model_repack(frugal_model *m, uint64_t reserve, fr_err *err) {
    /* the copies replace mapped pages one matrix at a time, but unlike the mapping
     * they cannot be dropped under pressure: a model that does not fit in the memory
     * left stays zero-copy (the kernel then pages it, slowly, instead of an OOM kill).
     * The IL16 copies come first (prefill needs them); the plain copies only where
     * both fit. */
    const uint64_t want_il = block_want(m, true), want_plain = block_want(m, false);
    const uint64_t avail = fr_sys_memory_available();
    const bool plain = !avail || want_il + want_plain + reserve <= avail / 10 * 9;
    const uint64_t want = want_il + (plain ? want_plain : 0);
    if (want_il == 0 && !plain) return FRUGAL_OK;
    if (avail && want_il + reserve > avail / 10 * 9) {
        /* printed always: the user should know why prefill is slower than it can be */
        fprintf(stderr,
                "frugal: note: %.0f MiB of weights (+ %.0f MiB for a context) would not fit in the %.0f MiB of "
                "memory available: kept in the file mapping, not repacked (slower prefill)\n",
                want_il / 1048576.0, reserve / 1048576.0, avail / 1048576.0);
        return FRUGAL_OK;
    }
    if (want == 0) return FRUGAL_OK;
    /* one buffer for all copies rather than one per matrix: a big buffer is backed
     * by huge pages (mem/alloc.c), and an attention matrix alone (a few MiB) would
     * not be; such a matrix streams ~9 % faster through huge pages (no TLB miss per
     * 4 KiB; 2-4 % more decode tok/s on the 1.1B Q4_0 model). That is also why the
     * matrices without an IL16 layout are copied: a file mapping has 4 KiB pages. */
    uint8_t *block = fr_mem_alloc(FR_MEM_WEIGHTS, (size_t)want);
    if (!block)
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory repacking %.1f MiB of weights", want / 1048576.0);
    m->il_block = block;
    m->il_block_bytes = (size_t)want;
    repack_all(m, block, want, plain);
    return FRUGAL_OK;
}

static void unrepack(fr_weight *w) {
    w->data = w->src;
    w->layout = FR_LAYOUT_ROWS;
}

/* Free the owned vectors the description's table bound (layer il, or -1: globals). */
static void free_vectors(frugal_model *m, int il) {
    for (const fr_tensor_spec *s = m->hp.arch->tensors; s->name; s++) {
        if (s->slot < FR_N_LMAT || (il < 0) != (s->slot >= FR_N_LSLOT)) continue;
        fr_weight *w;
        float **v;
        if (il >= 0) v = &m->layers[il].vec[s->slot];
        else global_dest(m, s->slot, &w, &v);
        if (!v || !*v) continue;
        fr_mem_free(FR_MEM_WEIGHTS, *v, (size_t)fr_dim_value(&m->hp, s->d0) * sizeof(float));
        *v = NULL;
    }
}

void fr_model_unbind(frugal_model *m) {
    if (!m->hp.arch) return;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layer; il++) {
            for (int j = 0; j < FR_LAYER_MATRICES; j++) unrepack(layer_matrix(&m->layers[il], j));
            free_vectors(m, il);
        }
        fr_mem_free(FR_MEM_WEIGHTS, m->layers, sizeof(fr_layer) * (size_t)m->hp.n_layer);
        m->layers = NULL;
    }
    if (output_repacked(m)) unrepack(&m->output);
    fr_mem_free(FR_MEM_WEIGHTS, m->il_block, m->il_block_bytes);
    m->il_block = NULL;
    m->il_block_bytes = 0;
    free_vectors(m, -1);
}
