/* model_api.c - public API: loading models and their tokenizers. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fault.h"
#include "frugal.h"
#include "mem/alloc.h"
#include "mem/planner.h"
#include "model/model.h"
#include "model/offload.h"

void frugal_model_params_default(frugal_model_params *p) {
    memset(p, 0, sizeof *p);
    p->n_threads = 0;
}

int frugal_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

static int default_threads(void) {
    int n = frugal_cpu_count();
    return n > 64 ? 64 : n;
}

/* What a context with the default size will allocate beside the weights: its KV
 * cache (F16, the default type), scratch and one logits row, plus 8 MiB for thread
 * stacks, the tokenizer's work buffers and the allocator. Repacking counts it:
 * counting the weights alone left a band of cgroup limits (30-34 MiB for
 * synth-spm-f16) where the copies fit but the first context did not, and the
 * process was OOM-killed instead of running zero-copy. */
static uint64_t context_reserve(const frugal_model *m) {
    const fr_hparams *hp = &m->hp;
    uint64_t n_ctx = hp->n_ctx_train > 0 && hp->n_ctx_train < 4096 ? (uint64_t)hp->n_ctx_train : 4096;
    uint64_t kv = 2ull * 2ull * (uint64_t)hp->n_layer * n_ctx * (uint64_t)hp->n_head_kv * (uint64_t)hp->head_dim;
    uint64_t scratch = fr_context_scratch_bytes(m, (int)n_ctx, m->n_threads) + (uint64_t)hp->n_vocab * sizeof(float);
    return kv + scratch + ((uint64_t)8 << 20);
}

/* -ngl: upload the placed layers. An explicit count without a device is an error; the
 * automatic one (< 0) says once that it runs on the CPU. */
static int place_on_device(frugal_model *m, const frugal_model_params *params, fr_err *err) {
    fr_err e = FRUGAL_ERROR_INIT;
    int rc = fr_offload_new(m, params->n_gpu_layers, params->vram_budget, params->gpu_stream, &m->offload,
                            &e);
    if (rc == FRUGAL_E_UNSUPPORTED && params->n_gpu_layers < 0) {
        fprintf(stderr, "frugal: no GPU (%s): running on the CPU\n", e.message);
        return FRUGAL_OK;
    }
    if (rc) return fr_err_set(err, rc, "--gpu-layers %d: %s", params->n_gpu_layers, e.message);
    const int n = fr_offload_n_layers(m->offload), first = fr_offload_first_layer(m->offload);
    fprintf(stderr, "frugal: %s: %d of %d layers on the device", fr_offload_device(m->offload), n, m->hp.n_layer);
    if (n) fprintf(stderr, " (%d-%d)", first, first + n - 1);
    fprintf(stderr, ", %.1f MiB of device memory%s\n", fr_offload_mem_current(m->offload) / 1048576.0,
            fr_offload_whole_layers(m->offload) ? ", whole layers with their KV cache" : "");
    return FRUGAL_OK;
}

int frugal_model_load(const char *path, const frugal_model_params *params, frugal_model **out,
                      frugal_error *err) {
    if (out) *out = NULL;
    if (!path || !out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_model_load: NULL argument");
    frugal_model_params defaults;
    if (!params) { frugal_model_params_default(&defaults); params = &defaults; }

    frugal_model *m = fr_calloc(1, sizeof *m);
    if (!m || !(m->path = fr_strdup(path))) {
        free(m);
        return fr_err_set(err, FRUGAL_E_NOMEM, "%s: out of memory", path);
    }
    m->n_threads = params->n_threads > 0 ? params->n_threads : default_threads();
    if (m->n_threads > frugal_cpu_count()) m->n_threads = frugal_cpu_count();
    m->verbose = params->verbose;
    m->mem_budget = params->mem_budget;

    fr_err e = FRUGAL_ERROR_INIT;
    int rc = gguf_open(path, &m->file, &e);
    if (!rc) rc = fr_tokenizer_load(m->file, &m->tok, &e);
    m->vocab_only = params->vocab_only != 0;
    if (!rc && m->vocab_only) {
        /* the file's architecture, if it names one (chat templates go by it) */
        gguf_str a = {"vocab", 5};
        fr_err ignore = FRUGAL_ERROR_INIT;
        if (gguf_get_str(m->file, "general.architecture", &a, &ignore) != FRUGAL_OK) a = (gguf_str){"vocab", 5};
        snprintf(m->arch_name, sizeof m->arch_name, "%.*s", (int)(a.len < 23 ? a.len : 23), a.ptr);
        m->hp.n_vocab = fr_tokenizer_n_vocab(m->tok);
    } else if (!rc) {
        rc = fr_model_bind(m, &e);
        /* FRUGAL_REPACK=0 keeps every weight in the mapping (zero-copy, shared page cache) */
        const char *rp = getenv("FRUGAL_REPACK");
        if (!rc && !m->mem_budget && !params->no_repack && !(rp && strcmp(rp, "0") == 0))
            rc = fr_model_repack(m, context_reserve(m), &e);
    }
    if (!rc && !m->vocab_only && params->n_gpu_layers != 0) rc = place_on_device(m, params, &e);
    /* the load read the mapping (tokenizer, repacked weights): was it all there? */
    if (!rc) rc = gguf_check_intact(m->file, &e);
    if (rc) {
        fr_err_prefix(&e, path);
        fr_err_set(err, rc, "%s", e.message);
        frugal_model_free(m);
        return rc;
    }
    if (m->verbose)
        fprintf(stderr, "frugal: loaded %s: %s, %d layers, dim %d, %d heads (%d kv), vocab %d\n",
                path, m->arch_name, m->hp.n_layer, m->hp.n_embd, m->hp.n_head, m->hp.n_head_kv,
                m->hp.n_vocab);
    *out = m;
    return FRUGAL_OK;
}

void frugal_model_free(frugal_model *m) {
    if (!m) return;
    fr_offload_free(m->offload);
    fr_model_unbind(m);
    fr_tokenizer_free(m->tok);
    gguf_close(m->file);
    free(m->path);
    free(m);
}

void frugal_model_get_info(const frugal_model *m, frugal_model_info *info) {
    memset(info, 0, sizeof *info);
    const fr_hparams *hp = &m->hp;
    info->arch = m->arch_name;
    info->name = m->name;
    info->n_vocab = hp->n_vocab;
    info->n_ctx_train = hp->n_ctx_train;
    info->n_embd = hp->n_embd;
    info->n_layer = hp->n_layer;
    info->n_head = hp->n_head;
    info->n_head_kv = hp->n_head_kv;
    info->n_ff = hp->n_ff;
    /* dominant type = the one holding the most parameters (a Q4_0 file whose big
     * output matrix is Q6_K is still "Q4_0") */
    enum { N_SLOTS = 16 }; /* distinct matrix types in one file: a handful */
    uint32_t types[N_SLOTS] = {0};
    uint64_t params[N_SLOTS] = {0}; /* zeroed: -fanalyzer cannot see that only filled slots are read */
    int n_types = 0;
    for (uint64_t i = 0; i < m->file->n_tensors; i++) {
        const gguf_tensor *t = &m->file->tensors[i];
        int64_t n = t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        info->n_params += (uint64_t)n;
        info->weight_bytes += t->nbytes;
        if (t->n_dims < 2) continue;
        int k = 0;
        while (k < n_types && types[k] != t->type) k++;
        if (k == n_types) {
            if (n_types == N_SLOTS) continue;
            types[n_types] = t->type;
            params[n_types++] = 0;
        }
        params[k] += (uint64_t)n;
    }
    int best = 0;
    for (int k = 1; k < n_types; k++) if (params[k] > params[best]) best = k;
    info->type_name = n_types ? fr_type_name(types[best]) : "none";
}

int frugal_tokenize(const frugal_model *m, const char *text, size_t len, int add_special,
                    int parse_special, int32_t *out, int n_max) {
    return fr_tokenize(m->tok, text, len, add_special != 0, parse_special != 0, out, n_max);
}

int frugal_token_to_piece(const frugal_model *m, int32_t token, char *buf, int len, int special) {
    return fr_token_to_piece(m->tok, token, buf, len, special != 0);
}

int frugal_detokenize(const frugal_model *m, const int32_t *tokens, int n, char *buf, int len,
                      int remove_special, int unparse_special) {
    return fr_detokenize(m->tok, tokens, n, buf, len, remove_special != 0, unparse_special != 0);
}

int32_t frugal_token_bos(const frugal_model *m) { return fr_tokenizer_bos(m->tok); }
int32_t frugal_token_eos(const frugal_model *m) { return fr_tokenizer_eos(m->tok); }
int frugal_token_is_eog(const frugal_model *m, int32_t t) { return fr_tokenizer_is_eog(m->tok, t); }
int frugal_add_bos(const frugal_model *m) { return fr_tokenizer_add_bos(m->tok); }

uint64_t frugal_peak_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}
