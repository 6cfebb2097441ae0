/* loader.c - turn a validated GGUF file into a model: read the hyper-parameters of
 * a supported architecture and bind every tensor it needs, checking names, shapes
 * and types before anything runs. Matrices stay in the mapping (zero-copy); the
 * small 1-D tensors (norms, biases) are converted to owned F32 arrays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/progress.h"
#include "core/types.h"
#include "kernels/interleave.h"
#include "mem/alloc.h"
#include "model/model.h"

static int get_u32(const gguf_file *f, const char *arch, const char *suffix, uint32_t *out,
                   bool optional, uint32_t def, fr_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (optional) return gguf_get_u32_opt(f, key, def, out, err);
    return gguf_get_u32(f, key, out, err);
}

static int get_f32(const gguf_file *f, const char *arch, const char *suffix, float def, float *out,
                   fr_err *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return gguf_get_f32_opt(f, key, def, out, err);
}

/* A tensor must exist (unless optional), be 2-D [n_in, n_out] (1-D when n_out == 0)
 * and have a type we can compute with. *t is NULL when optional and absent. */
static int find_tensor(const frugal_model *m, const char *name, int64_t n_in, int64_t n_out,
                       bool optional, const gguf_tensor **t, fr_err *err) {
    *t = gguf_find_tensor(m->file, name);
    if (!*t) {
        if (optional) return FRUGAL_OK;
        return fr_err_set(err, FRUGAL_E_FORMAT, "missing tensor '%s'", name);
    }
    const gguf_tensor *x = *t;
    bool ok = n_out ? (x->n_dims == 2 && x->ne[0] == n_in && x->ne[1] == n_out)
                    : (x->n_dims == 1 && x->ne[0] == n_in);
    if (!ok) {
        char want[64];
        if (n_out) snprintf(want, sizeof want, "[%lld, %lld]", (long long)n_in, (long long)n_out);
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

static int bind_matrix(frugal_model *m, const char *name, int64_t n_in, int64_t n_out,
                       bool optional, fr_weight *w, fr_err *err) {
    const gguf_tensor *t;
    int rc = find_tensor(m, name, n_in, n_out, optional, &t, err);
    if (rc || !t) return rc;
    w->data = t->data;
    w->src = t->data;
    w->layout = FR_LAYOUT_ROWS;
    w->type = (fr_type)t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    return FRUGAL_OK;
}

/* 1-D tensor -> owned F32 copy (accounted as weights). */
static int bind_vector(frugal_model *m, const char *name, int64_t n, bool optional, float **out,
                       fr_err *err) {
    const gguf_tensor *t;
    *out = NULL;
    int rc = find_tensor(m, name, n, 0, optional, &t, err);
    if (rc || !t) return rc;
    float *v = fr_mem_alloc(FR_MEM_WEIGHTS, (size_t)n * sizeof(float));
    if (!v) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for tensor '%s'", name);
    fr_type_traits_get(t->type)->to_float(t->data, v, n);
    m->owned_bytes += (size_t)n * sizeof(float);
    *out = v;
    return FRUGAL_OK;
}

static int read_hparams(frugal_model *m, fr_err *err) {
    const gguf_file *f = m->file;
    gguf_str arch;
    int rc = gguf_get_str(f, "general.architecture", &arch, err);
    if (rc) return rc;
    snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(arch.len < 15 ? arch.len : 15), arch.ptr);
    fr_hparams *hp = &m->hp;
    if (gguf_str_eq(arch, "llama")) {
        hp->arch = FR_ARCH_LLAMA;
        hp->rope_neox = false;
    } else if (gguf_str_eq(arch, "qwen2")) {
        hp->arch = FR_ARCH_QWEN2;
        hp->rope_neox = true;
    } else {
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "unsupported architecture '%.*s'",
                          (int)(arch.len < 64 ? arch.len : 64), arch.ptr);
    }
    gguf_str name;
    fr_err tmp = FRUGAL_ERROR_INIT;
    if (gguf_get_str(f, "general.name", &name, &tmp) == FRUGAL_OK)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(name.len < 127 ? name.len : 127), name.ptr);

    const char *a = m->arch_name;
    uint32_t n_ctx, n_embd, n_layer, n_ff, n_head, n_head_kv, key_len, n_rot;
    if ((rc = get_u32(f, a, "context_length", &n_ctx, false, 0, err)) ||
        (rc = get_u32(f, a, "embedding_length", &n_embd, false, 0, err)) ||
        (rc = get_u32(f, a, "block_count", &n_layer, false, 0, err)) ||
        (rc = get_u32(f, a, "feed_forward_length", &n_ff, false, 0, err)) ||
        (rc = get_u32(f, a, "attention.head_count", &n_head, false, 0, err)))
        return rc;
    if ((rc = get_u32(f, a, "attention.head_count_kv", &n_head_kv, true, n_head, err))) return rc;
    if (n_embd == 0 || n_embd > (1u << 16) || n_layer == 0 || n_layer > 1024 || n_ff == 0 ||
        n_ff > (1u << 20) || n_head == 0 || n_head > 1024 || n_head_kv == 0 ||
        n_head % n_head_kv != 0 || n_ctx == 0)
        return fr_err_set(err, FRUGAL_E_FORMAT,
                          "implausible hyper-parameters: embd %u, layers %u, ffn %u, heads %u, kv heads %u, ctx %u",
                          n_embd, n_layer, n_ff, n_head, n_head_kv, n_ctx);
    if ((rc = get_u32(f, a, "attention.key_length", &key_len, true, n_embd / n_head, err))) return rc;
    if (key_len == 0 || key_len > 1024 || key_len % 2)
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad head dimension %u", key_len);
    if ((rc = get_u32(f, a, "rope.dimension_count", &n_rot, true, key_len, err))) return rc;
    if (n_rot == 0 || n_rot > key_len || n_rot % 2)
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad rope.dimension_count %u (head dim %u)", n_rot, key_len);
    if ((rc = get_f32(f, a, "rope.freq_base", 10000.0f, &hp->rope_base, err)) ||
        (rc = get_f32(f, a, "attention.layer_norm_rms_epsilon", 1e-5f, &hp->norm_eps, err)))
        return rc;
    if (!(hp->rope_base > 0.0f) || !(hp->norm_eps >= 0.0f))
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad rope.freq_base or rms epsilon");
    hp->n_ctx_train = (int)(n_ctx > (1u << 30) ? (1u << 30) : n_ctx);
    hp->n_embd = (int)n_embd;
    hp->n_layer = (int)n_layer;
    hp->n_ff = (int)n_ff;
    hp->n_head = (int)n_head;
    hp->n_head_kv = (int)n_head_kv;
    hp->head_dim = (int)key_len;
    hp->n_rot = (int)n_rot;
    hp->n_vocab = fr_tokenizer_n_vocab(m->tok);
    return FRUGAL_OK;
}

int fr_model_bind(frugal_model *m, fr_err *err) {
    int rc = read_hparams(m, err);
    if (rc) return rc;
    const fr_hparams *hp = &m->hp;
    int64_t d = hp->n_embd, qd = (int64_t)hp->n_head * hp->head_dim,
            kvd = (int64_t)hp->n_head_kv * hp->head_dim;

    const gguf_tensor *te = gguf_find_tensor(m->file, "token_embd.weight");
    if (te && te->n_dims == 2 && te->ne[1] != hp->n_vocab)
        return fr_err_set(err, FRUGAL_E_FORMAT,
                          "token_embd.weight has %lld rows but the vocabulary has %d tokens",
                          (long long)te->ne[1], hp->n_vocab);
    if ((rc = bind_matrix(m, "token_embd.weight", d, hp->n_vocab, false, &m->tok_embd, err)) ||
        (rc = bind_vector(m, "output_norm.weight", d, false, &m->output_norm, err)) ||
        (rc = bind_matrix(m, "output.weight", d, hp->n_vocab, true, &m->output, err)))
        return rc;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */

    m->layers = fr_mem_alloc(FR_MEM_WEIGHTS, sizeof(fr_layer) * (size_t)hp->n_layer);
    if (!m->layers) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    m->owned_bytes += sizeof(fr_layer) * (size_t)hp->n_layer;
    bool bias = hp->arch == FR_ARCH_QWEN2;
    for (int il = 0; il < hp->n_layer; il++) {
        fr_layer *L = &m->layers[il];
        char nm[96];
#define NAME(s) (snprintf(nm, sizeof nm, "blk.%d." s, il), nm)
        if ((rc = bind_vector(m, NAME("attn_norm.weight"), d, false, &L->attn_norm, err)) ||
            (rc = bind_matrix(m, NAME("attn_q.weight"), d, qd, false, &L->wq, err)) ||
            (rc = bind_matrix(m, NAME("attn_k.weight"), d, kvd, false, &L->wk, err)) ||
            (rc = bind_matrix(m, NAME("attn_v.weight"), d, kvd, false, &L->wv, err)) ||
            (rc = bind_matrix(m, NAME("attn_output.weight"), qd, d, false, &L->wo, err)) ||
            (rc = bind_vector(m, NAME("attn_q.bias"), qd, !bias, &L->bq, err)) ||
            (rc = bind_vector(m, NAME("attn_k.bias"), kvd, !bias, &L->bk, err)) ||
            (rc = bind_vector(m, NAME("attn_v.bias"), kvd, !bias, &L->bv, err)) ||
            (rc = bind_vector(m, NAME("ffn_norm.weight"), d, false, &L->ffn_norm, err)) ||
            (rc = bind_matrix(m, NAME("ffn_gate.weight"), d, hp->n_ff, false, &L->w_gate, err)) ||
            (rc = bind_matrix(m, NAME("ffn_up.weight"), d, hp->n_ff, false, &L->w_up, err)) ||
            (rc = bind_matrix(m, NAME("ffn_down.weight"), hp->n_ff, d, false, &L->w_down, err)))
            return rc;
#undef NAME
    }
    return FRUGAL_OK;
}

static fr_weight *layer_matrix(fr_layer *L, int j) {
    fr_weight *w[FR_LAYER_MATRICES] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
    return w[j];
}

static size_t matrix_bytes(const fr_weight *w) { return fr_row_size(w->type, w->n_in) * (size_t)w->n_out; }

/* Bytes a matrix takes in the block of IL16 copies (starts kept 64-byte aligned). */
static size_t block_share(const fr_weight *w) { return fr_il_worth_it(w) ? (matrix_bytes(w) + 63) & ~(size_t)63 : 0; }

/* Copy one matrix out of the mapping into dst in the IL16 layout and give the mapped
 * pages back: the copy replaces them, so RSS ends where it was. */
static void repack_matrix(fr_weight *w, uint8_t *dst) {
    const size_t bytes = matrix_bytes(w);
    fr_il_repack(w, dst);
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)w->src + page - 1) & ~(page - 1), b = ((uintptr_t)w->src + bytes) & ~(page - 1);
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

/* Room left under this process's memory cgroup limit (v1 or v2, from the path in
 * /proc/self/cgroup), or 0 if there is no limit or it cannot be read. */
static uint64_t cgroup_room(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[512], lim_path[640] = "", cur_path[640] = "", stat_path[640] = "";
    const char *file_key = "total_cache "; /* v1 memory.stat; v2: "file " */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        const char *ctrl = a + 1, *path = b + 1;
        if (strstr(ctrl, "memory")) { /* v1 */
            snprintf(lim_path, sizeof lim_path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path);
            snprintf(cur_path, sizeof cur_path, "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", path);
            snprintf(stat_path, sizeof stat_path, "/sys/fs/cgroup/memory%s/memory.stat", path);
            file_key = "total_cache ";
            break;
        }
        if (!*ctrl && !*lim_path) { /* v2 (unless a v1 memory line follows) */
            snprintf(lim_path, sizeof lim_path, "/sys/fs/cgroup%s/memory.max", path);
            snprintf(cur_path, sizeof cur_path, "/sys/fs/cgroup%s/memory.current", path);
            snprintf(stat_path, sizeof stat_path, "/sys/fs/cgroup%s/memory.stat", path);
            file_key = "file ";
        }
    }
    fclose(f);
    unsigned long long lim = 0, cur = 0;
    FILE *fl = *lim_path ? fopen(lim_path, "r") : NULL, *fc = *cur_path ? fopen(cur_path, "r") : NULL;
    int ok = fl && fc && fscanf(fl, "%llu", &lim) == 1 && fscanf(fc, "%llu", &cur) == 1; /* "max": no number */
    if (fl) fclose(fl);
    if (fc) fclose(fc);
    if (!ok) return 0;
    /* page cache charged to the cgroup is reclaimed under the limit: not in the way */
    FILE *fs = fopen(stat_path, "r");
    unsigned long long cache = 0;
    while (fs && fgets(line, sizeof line, fs))
        if (!strncmp(line, file_key, strlen(file_key))) cache = strtoull(line + strlen(file_key), NULL, 10);
    if (fs) fclose(fs);
    cur = cur > cache ? cur - cache : 0;
    return lim > cur ? (uint64_t)(lim - cur) : 1; /* 1: a limit with no room at all */
}

/* Bytes of memory this process may still take: MemAvailable, lowered to the room
 * under its cgroup limit; 0 when unknown. */
static uint64_t memory_available(void) {
    uint64_t avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (uint64_t)kb * 1024;
        fclose(f);
    }
    const uint64_t room = cgroup_room();
    if (room && (avail == 0 || room < avail)) avail = room;
    return avail;
}

/* The output head is repacked unless it is the token embedding (read row by row). */
static bool output_repacked(const frugal_model *m) { return m->output.src != m->tok_embd.src; }

int fr_model_repack(frugal_model *m, fr_err *err) {
    /* the copies replace mapped pages one matrix at a time, but unlike the mapping
     * they cannot be dropped under pressure: a model that does not fit in the memory
     * left stays zero-copy (the kernel then pages it, slowly, instead of an OOM kill) */
    uint64_t want = 0;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++) want += block_share(layer_matrix(&m->layers[il], j));
    if (output_repacked(m)) want += block_share(&m->output);
    if (want == 0) return FRUGAL_OK;
    const uint64_t avail = memory_available();
    if (avail && want > avail / 10 * 9) {
        /* printed always: the user should know why prefill is slower than it can be */
        fprintf(stderr,
                "frugal: note: %.0f MiB of weights would not fit in the %.0f MiB of memory available: kept in the "
                "file mapping, not repacked (slower prefill)\n",
                want / 1048576.0, avail / 1048576.0);
        return FRUGAL_OK;
    }
    /* one buffer for all copies rather than one per matrix: a big buffer is backed
     * by huge pages (mem/alloc.c), and an attention matrix alone (a few MiB) would
     * not be; such a matrix streams ~9 % faster through huge pages (no TLB miss per
     * 4 KiB; 2-4 % more decode tok/s on the 1.1B Q4_0 model) */
    uint8_t *block = fr_mem_alloc(FR_MEM_WEIGHTS, (size_t)want);
    if (!block)
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory repacking %.1f MiB of weights", want / 1048576.0);
    m->il_block = block;
    m->il_block_bytes = (size_t)want;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++) {
            fr_weight *w = layer_matrix(&m->layers[il], j);
            const size_t share = block_share(w);
            if (share) repack_matrix(w, block);
            block += share;
            fr_progress("repack", (uint64_t)(block - (uint8_t *)m->il_block), want);
        }
    if (output_repacked(m) && block_share(&m->output)) repack_matrix(&m->output, block);
    fr_progress("repack", want, want);
    return FRUGAL_OK;
}

static void unrepack(fr_weight *w) {
    w->data = w->src;
    w->layout = FR_LAYOUT_ROWS;
}

void fr_model_unbind(frugal_model *m) {
    size_t d = (size_t)m->hp.n_embd;
    size_t qd = (size_t)m->hp.n_head * m->hp.head_dim, kvd = (size_t)m->hp.n_head_kv * m->hp.head_dim;
    if (m->layers) {
        for (int il = 0; il < m->hp.n_layer; il++) {
            fr_layer *L = &m->layers[il];
            for (int j = 0; j < FR_LAYER_MATRICES; j++) unrepack(layer_matrix(L, j));
            fr_mem_free(FR_MEM_WEIGHTS, L->attn_norm, d * 4);
            fr_mem_free(FR_MEM_WEIGHTS, L->ffn_norm, d * 4);
            fr_mem_free(FR_MEM_WEIGHTS, L->bq, qd * 4);
            fr_mem_free(FR_MEM_WEIGHTS, L->bk, kvd * 4);
            fr_mem_free(FR_MEM_WEIGHTS, L->bv, kvd * 4);
        }
        fr_mem_free(FR_MEM_WEIGHTS, m->layers, sizeof(fr_layer) * (size_t)m->hp.n_layer);
        m->layers = NULL;
    }
    if (output_repacked(m)) unrepack(&m->output);
    fr_mem_free(FR_MEM_WEIGHTS, m->il_block, m->il_block_bytes);
    m->il_block = NULL;
    m->il_block_bytes = 0;
    fr_mem_free(FR_MEM_WEIGHTS, m->output_norm, d * 4);
    m->output_norm = NULL;
}
