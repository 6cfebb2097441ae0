/* fuzz_gguf.c - libFuzzer target: the GGUF reader, then a full model load with
 * validation, then one tiny evaluation of whatever loaded.
 *
 * Each input goes through a memfd (the reader maps files). A successful open is
 * checked as test_gguf_fuzz does (every pointer handed out lies inside the
 * mapping); a failed open or load must come with a message. A model that loads is
 * evaluated on two tokens in an 8-token context: the forward pass must not read
 * outside what validation accepted (ASan) whatever the weights hold.
 * Seeds: fuzz/seeds.sh (tiny models written by `frugal mkmodel` from the shared
 * vocabularies). */
#include "fuzz_util.h"

#include "gguf/gguf.h"

#include <string.h>

/* Abort (a finding for libFuzzer) when an opened file hands out an out-of-range range. */
static void check_inside(const gguf_file *f, const void *p, uint64_t n) {
    const uint8_t *b = p;
    if (b < f->map || b > f->map + f->size || n > (uint64_t)(f->map + f->size - b)) abort();
}

static void check_reader(const char *path) {
    fr_err err = FRUGAL_ERROR_INIT;
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &err) != FRUGAL_OK) {
        if (f || err.message[0] == '\0') abort();
        return;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        check_inside(f, f->tensors[i].data, f->tensors[i].nbytes);
        check_inside(f, f->tensors[i].name.ptr, f->tensors[i].name.len);
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        check_inside(f, kv->key.ptr, kv->key.len);
        if (kv->type == GGUF_VT_STRING) check_inside(f, kv->v.str.ptr, kv->v.str.len);
        if (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING)
            for (uint64_t j = 0; j < kv->arr_n; j++) check_inside(f, kv->arr_strs[j].ptr, kv->arr_strs[j].len);
    }
    if (gguf_check_intact(f, &err) != FRUGAL_OK) abort(); /* nothing changed the memfd */
    gguf_close(f);
}

static void check_load(const char *path, int repack) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 1;
    mp.no_repack = !repack;
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(path, &mp, &m, &err) != FRUGAL_OK) {
        if (m || err.message[0] == '\0') abort();
        return;
    }
    frugal_model_info info;
    frugal_model_get_info(m, &info);
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 8;
    frugal_context *c = NULL;
    if (info.n_vocab > 0 && frugal_context_new(m, &cp, &c, &err) == FRUGAL_OK) {
        int32_t toks[2] = {0, info.n_vocab - 1};
        if (frugal_eval(c, toks, 2, 0, &err) != FRUGAL_OK && err.message[0] == '\0') abort();
        frugal_context_free(c);
    } else if (!c && info.n_vocab > 0 && err.message[0] == '\0') {
        abort();
    }
    frugal_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_memfile(data, size);
    if (!path) return 0;
    check_reader(path);
    check_load(path, size & 1); /* both the repacked and the zero-copy binding */
    return 0;
}
