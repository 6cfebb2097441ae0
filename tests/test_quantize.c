/* test_quantize.c - frugal_quantize against llama-quantize's own files: quantizing
 * synth-spm-f16.gguf (and fortune-3m-f32.gguf) to q8_0 / q4_0 / q4_k (/ q5_k_m) must give the
 * tensor table (order, names, types, shapes) and the tensor bytes of the shared
 * llama.cpp-made files exactly; metadata general.file_type / quantization_version as
 * llama.cpp writes them; bad arguments fail cleanly; --keep-output / --keep-first keep
 * the input types; the thread count does not change the bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frugal.h"
#include "core/types.h"
#include "gguf/gguf.h"
#include "testutil.h"

/* Compare every tensor of got with want: same order, name, type, shape, bytes. */
static void compare_files(const char *got_path, const char *want_path) {
    gguf_file *g = NULL, *w = NULL;
    fr_err err = FRUGAL_ERROR_INIT;
    CHECKF(gguf_open(got_path, &g, &err) == FRUGAL_OK, "%s: %s", got_path, err.message);
    fr_err_clear(&err);
    CHECKF(gguf_open(want_path, &w, &err) == FRUGAL_OK, "%s: %s", want_path, err.message);
    if (!g || !w) { gguf_close(g); gguf_close(w); return; }
    CHECKF(g->n_tensors == w->n_tensors, "%llu vs %llu tensors", (unsigned long long)g->n_tensors,
           (unsigned long long)w->n_tensors);
    int bad = 0;
    for (uint64_t i = 0; i < g->n_tensors && i < w->n_tensors; i++) {
        const gguf_tensor *a = &g->tensors[i], *b = &w->tensors[i];
        int same = a->name.len == b->name.len && memcmp(a->name.ptr, b->name.ptr, a->name.len) == 0 &&
                   a->type == b->type && a->n_dims == b->n_dims && memcmp(a->ne, b->ne, sizeof a->ne) == 0 &&
                   a->nbytes == b->nbytes && memcmp(a->data, b->data, a->nbytes) == 0;
        if (!same && bad++ < 5)
            fprintf(stderr, "  %s: tensor %llu '%.*s' (%s) differs from '%.*s' (%s)\n", got_path,
                    (unsigned long long)i, (int)a->name.len, a->name.ptr, fr_type_name(a->type),
                    (int)b->name.len, b->name.ptr, fr_type_name(b->type));
    }
    CHECKF(bad == 0, "%s: %d tensors differ from %s", got_path, bad, want_path);
    uint32_t fa = 99, fb = 98, qa = 0, qb = 1;
    CHECK(gguf_get_u32(g, "general.file_type", &fa, NULL) == FRUGAL_OK);
    CHECK(gguf_get_u32(w, "general.file_type", &fb, NULL) == FRUGAL_OK);
    CHECKF(fa == fb, "file_type %u vs %u", fa, fb);
    CHECK(gguf_get_u32(g, "general.quantization_version", &qa, NULL) == FRUGAL_OK);
    CHECK(gguf_get_u32(w, "general.quantization_version", &qb, NULL) == FRUGAL_OK);
    CHECKF(qa == qb, "quantization_version %u vs %u", qa, qb);
    gguf_close(g);
    gguf_close(w);
}

static int quantize(const char *in, const char *out, const char *type, int threads, int keep_first,
                    int keep_output, frugal_error *err) {
    frugal_quantize_params p;
    frugal_quantize_params_default(&p);
    p.type = type;
    p.n_threads = threads;
    p.keep_first = keep_first;
    p.keep_output = keep_output;
    FILE *devnull = fopen("/dev/null", "w");
    p.log = devnull;
    frugal_error local = FRUGAL_ERROR_INIT;
    int rc = frugal_quantize(in, out, &p, NULL, err ? err : &local);
    if (devnull) fclose(devnull);
    return rc;
}

/* Type of a named tensor in a file, or -1. */
static int tensor_type(const char *path, const char *name) {
    gguf_file *f = NULL;
    if (gguf_open(path, &f, NULL) != FRUGAL_OK) return -1;
    const gguf_tensor *t = gguf_find_tensor(f, name);
    int type = t ? (int)t->type : -1;
    gguf_close(f);
    return type;
}

/* A quantized model loads and produces finite logits. */
static void check_runs(const char *path) {
    frugal_model *m = NULL;
    frugal_context *c = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    CHECKF(frugal_model_load(path, &mp, &m, &err) == FRUGAL_OK, "%s", err.message);
    if (!m) return;
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 32;
    CHECKF(frugal_context_new(m, &cp, &c, &err) == FRUGAL_OK, "%s", err.message);
    int32_t toks[64];
    int n = frugal_tokenize(m, "Hello world, this is a test.", 28, 1, 0, toks, 64);
    CHECK(n > 0);
    if (c && n > 0) {
        CHECKF(frugal_eval(c, toks, n, 0, &err) == FRUGAL_OK, "%s", err.message);
        frugal_model_info info;
        frugal_model_get_info(m, &info);
        const float *l = frugal_get_logits(c, -1);
        int finite = l != NULL;
        for (int i = 0; l && i < info.n_vocab; i++) finite &= l[i] == l[i] && l[i] - l[i] == 0;
        CHECKF(finite, "%s: logits not finite", path);
    }
    frugal_context_free(c);
    frugal_model_free(m);
}

int main(void) {
    const char *tmp = tu_tmpdir();
    char out[1024], out2[1024];
    frugal_error err = FRUGAL_ERROR_INIT;

    /* bad arguments: clean errors, no output file */
    /* tu_shared's buffers rotate: keep our own copy of the path */
    static char f16_buf[1024];
    const char *f16 = tu_shared("models/synth-spm-f16.gguf");
    if (f16) { snprintf(f16_buf, sizeof f16_buf, "%s", f16); f16 = f16_buf; }
    snprintf(out, sizeof out, "%s/missing.gguf", tmp);
    CHECK(quantize("/nonexistent/model.gguf", out, "q8_0", 1, 0, 0, &err) == FRUGAL_E_IO);
    CHECKF(strstr(err.message, "/nonexistent/model.gguf") != NULL, "%s", err.message);
    CHECK(quantize(out, out, "q8_0", 1, 0, 0, NULL) == FRUGAL_E_INVALID_ARG);
    memset(&err, 0, sizeof err);
    CHECK(quantize("a.gguf", "b.gguf", "q3_x", 1, 0, 0, &err) == FRUGAL_E_INVALID_ARG);
    CHECKF(strstr(err.message, "q3_x") != NULL, "%s", err.message);
    if (!f16) {
        fprintf(stderr, "shared models absent: comparisons with llama-quantize skipped\n");
        return tu_finish("test_quantize");
    }
    /* OUT == IN through another spelling of the path: refused, input untouched */
    char alias[1024];
    snprintf(alias, sizeof alias, "%s/../models/synth-spm-f16.gguf", tu_shared("text"));
    memset(&err, 0, sizeof err);
    CHECK(quantize(f16, alias, "q8_0", 1, 0, 0, &err) == FRUGAL_E_INVALID_ARG);

    /* byte-exact against llama-quantize */
    static const struct { const char *in, *type, *want; } k[] = {
        {"models/synth-spm-f16.gguf", "q8_0", "models/synth-spm-q8_0.gguf"},
        {"models/synth-spm-f16.gguf", "q4_0", "models/synth-spm-q4_0.gguf"},
        {"models/synth-spm-f16.gguf", "q4_k", "models/synth-spm-q4_k_m.gguf"},
        {"models/fortune-3m-f32.gguf", "q8_0", "models/fortune-3m-q8_0.gguf"},
        {"models/fortune-3m-f32.gguf", "q4_0", "models/fortune-3m-q4_0.gguf"},
        {"models/fortune-3m-f32.gguf", "q4_k", "models/fortune-3m-q4_k_m.gguf"},
        /* the Q5_K_M mix (use_more_bits layers' attn_v / ffn_down as Q6_K) */
        {"models/fortune-3m-f32.gguf", "q5_k_m", "quant/models/fortune-3m-q5_k_m.gguf"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        const char *in = tu_shared(k[i].in), *want = tu_shared(k[i].want);
        if (!in || !want) continue;
        snprintf(out, sizeof out, "%s/q%zu.gguf", tmp, i);
        memset(&err, 0, sizeof err);
        int rc = quantize(in, out, k[i].type, 2, 0, 0, &err);
        CHECKF(rc == FRUGAL_OK, "%s -> %s: %s", k[i].in, k[i].type, err.message);
        if (rc == FRUGAL_OK) {
            compare_files(out, want);
            if (i >= 3) check_runs(out);
        }
    }
    /* the thread count does not change the result */
    snprintf(out, sizeof out, "%s/t1.gguf", tmp);
    CHECK(quantize(f16, out, "q4_k", 1, 0, 0, NULL) == FRUGAL_OK);
    compare_files(out, tu_shared("models/synth-spm-q4_k_m.gguf"));

    /* --keep-output and --keep-first keep the input types; f16 target leaves norms F32 */
    snprintf(out2, sizeof out2, "%s/keep.gguf", tmp);
    CHECK(quantize(f16, out2, "q4_0", 2, 1, 1, NULL) == FRUGAL_OK);
    CHECK(tensor_type(out2, "output.weight") == 1);
    CHECK(tensor_type(out2, "blk.0.attn_q.weight") == 1);
    CHECK(tensor_type(out2, "blk.1.attn_q.weight") == 2);
    CHECK(tensor_type(out2, "token_embd.weight") == 2);
    CHECK(tensor_type(out2, "blk.1.attn_norm.weight") == 0);
    check_runs(out2);
    /* quantized input is re-quantized (via floats), with the same tensor table */
    snprintf(out, sizeof out, "%s/req.gguf", tmp);
    CHECK(quantize(out2, out, "q8_0", 2, 0, 0, NULL) == FRUGAL_OK);
    CHECK(tensor_type(out, "blk.1.attn_q.weight") == 8);
    CHECK(tensor_type(out, "output.weight") == 8);
    check_runs(out);
    /* stories260K: ffn 172 fits no block: those tensors keep their type, the rest converts */
    const char *st = tu_shared("models/stories260K.gguf");
    if (st) {
        snprintf(out, sizeof out, "%s/st.gguf", tmp);
        CHECK(quantize(st, out, "q8_0", 2, 0, 0, NULL) == FRUGAL_OK);
        CHECK(tensor_type(out, "blk.0.ffn_down.weight") == 0);
        CHECK(tensor_type(out, "blk.0.attn_q.weight") == 8);
        check_runs(out);
    }
    return tu_finish("test_quantize");
}
