/* test_repack.c - the load-time copies of the weights (model/loader.c): without a
 * budget, matrices with an IL16 layout are repacked and the others copied row-major
 * out of the file mapping (huge pages stream faster than the mapping's 4 KiB ones).
 * Checks, on F32 and Q8_0 models frugal_mkmodel writes (F32 has no IL16 layout, Q8_0
 * has one): after a default load no layer matrix points into the mapping, the F32
 * ones keep the row-major layout; a no_repack load keeps every matrix in the mapping;
 * for F32 both give bit-identical logits over a prompt and fixed steps (same kernels on
 * the same bytes, only where they live differs). Needs ../shared (the vocabulary). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal.h"
#include "model/model.h"
#include "testutil.h"

#define N_CTX 64
#define N_STEPS 8

static frugal_model *load(const char *path, int no_repack) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    mp.no_repack = no_repack;
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    CHECKF(frugal_model_load(path, &mp, &m, &err) == FRUGAL_OK, "%s: %s", path, err.message);
    return m;
}

/* Layer matrices of m inside its file mapping, and those in the row-major layout. */
static void count_mapped(const frugal_model *m, int *mapped, int *rows, int *total) {
    *mapped = *rows = *total = 0;
    const uint8_t *a = m->file->map, *b = a + m->file->size;
    for (int il = 0; il < m->hp.n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++) {
            const fr_weight *w = fr_layer_mat(&m->layers[il], j);
            if (!w || !fr_layer_mat_repackable(j)) continue;
            const uint8_t *d = w->data;
            (*total)++;
            *mapped += d >= a && d < b;
            *rows += w->layout == FR_LAYOUT_ROWS;
        }
}

/* Logits after the prompt and each of N_STEPS fixed tokens into out (N_STEPS + 1 rows). */
static int logits(frugal_model *m, float *out, int n_vocab) {
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = N_CTX;
    cp.n_threads = 2;
    frugal_context *c = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = frugal_context_new(m, &cp, &c, &err);
    int32_t toks[5] = {1, 450, 4996, 17354, 1701};
    for (int i = 0; i < 5; i++) toks[i] %= n_vocab;
    if (!rc) rc = frugal_eval(c, toks, 5, 0, &err);
    for (int s = 0; !rc && s <= N_STEPS; s++) {
        const float *l = frugal_get_logits(c, -1);
        memcpy(out + (size_t)s * n_vocab, l, sizeof(float) * (size_t)n_vocab);
        if (s == N_STEPS) break;
        int32_t next = (int32_t)((s * 37 + 11) % n_vocab); /* fixed: both runs see the same tokens */
        rc = frugal_eval(c, &next, 1, 0, &err);
    }
    CHECKF(rc == FRUGAL_OK, "eval: %s", err.message);
    frugal_context_free(c);
    return rc;
}

static void check_type(const char *vocab, const char *type, int want_rows) {
    char path[512];
    snprintf(path, sizeof path, "%s/repack-%s.gguf", tu_tmpdir(), type);
    frugal_mkmodel_params p;
    frugal_mkmodel_params_default(&p);
    p.arch = "llama";
    p.dim = 128, p.n_layers = 2, p.n_heads = 4, p.n_kv_heads = 2, p.ffn = 256, p.ctx = 256;
    p.vocab_path = vocab;
    p.type = type;
    p.seed = 7;
    frugal_error err = FRUGAL_ERROR_INIT;
    const int rc = frugal_mkmodel(&p, path, &err);
    CHECKF(rc == FRUGAL_OK, "mkmodel %s: %s", type, err.message);
    if (rc) return;
    frugal_model *copied = load(path, 0), *mapped = load(path, 1);
    if (copied && mapped) {
        int n_map, n_rows, n;
        count_mapped(copied, &n_map, &n_rows, &n);
        CHECKF(n > 0 && n_map == 0, "%s, default load: %d of %d matrices left in the mapping", type, n_map, n);
        if (want_rows) CHECKF(n_rows == n, "%s: %d of %d matrices row-major (copied as they are)", type, n_rows, n);
        count_mapped(mapped, &n_map, &n_rows, &n);
        CHECKF(n_map == n && n_rows == n, "%s, no_repack: %d of %d in the mapping, %d row-major", type, n_map, n,
               n_rows);
        /* the row-major copies: the same kernels on the same bytes, bit-identical logits
         * (IL16 groups run other kernels, checked against the scalar ones in test_kernels
         * and by the goldens) */
        frugal_model_info info;
        frugal_model_get_info(copied, &info);
        const size_t len = (size_t)info.n_vocab * (N_STEPS + 1);
        float *x = want_rows ? calloc(len, sizeof *x) : NULL, *y = want_rows ? calloc(len, sizeof *y) : NULL;
        if (x && y && !logits(copied, x, info.n_vocab) && !logits(mapped, y, info.n_vocab))
            CHECKF(memcmp(x, y, len * sizeof *x) == 0, "%s: logits of the copied and the mapped weights differ", type);
        free(x);
        free(y);
    }
    frugal_model_free(copied);
    frugal_model_free(mapped);
    remove(path);
}

int main(void) {
    const char *vocab = tu_need_shared("models/fortune-3m-f32.gguf");
    check_type(vocab, "f32", 1);  /* no IL16 layout: copied row-major */
    check_type(vocab, "q8_0", 0); /* IL16 where the CPU has the GEMM, else copied row-major */
    return tu_finish("test_repack");
}
