/* test_bad_model.c - bad model files through the whole loader (GGUF reader,
 * tokenizer, tensor binding): truncated at many offsets, bytes flipped in the
 * header/metadata/tensor table, and hand-made inconsistent models (missing tensor,
 * wrong shape, unknown architecture, unsupported tensor type, missing or absurd
 * hyper-parameters, vocabulary/embedding mismatch, a tensor no description binds,
 * and each family's own tensors missing or misshapen). Every case must end in one
 * clean error whose message starts with the file's path, or - for flips that leave a
 * consistent file - a model that evaluates without crashing. Runs under ASan+UBSan
 * in CI. Needs ../shared (skips without it). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frugal.h"
#include "gguf/gguf.h"
#include "testutil.h"

static char *g_data;
static size_t g_len;
static uint64_t g_data_offset;

static int write_bytes(const char *path, const char *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(data, 1, n, f);
    fclose(f);
    return w == n ? 0 : -1;
}

/* Load a model; returns the status. If it loads, evaluate a few tokens. */
static int try_load(const char *path, frugal_error *err) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 1;
    frugal_model *m = NULL;
    int rc = frugal_model_load(path, &mp, &m, err);
    if (rc == FRUGAL_OK) {
        frugal_context_params cp;
        frugal_context_params_default(&cp);
        cp.n_ctx = 16;
        frugal_context *c = NULL;
        if (frugal_context_new(m, &cp, &c, err) == FRUGAL_OK) {
            int32_t toks[3] = {1, 2, 3};
            frugal_eval(c, toks, 3, 1, err);
            frugal_context_free(c);
        }
        frugal_model_free(m);
    }
    return rc;
}

static void expect_clean_error(const char *path, const char *what, size_t at) {
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = try_load(path, &err);
    CHECKF(rc != FRUGAL_OK, "%s at %zu: loaded", what, at);
    if (rc != FRUGAL_OK) {
        CHECKF(err.code == rc, "%s at %zu: err.code %d != rc %d", what, at, err.code, rc);
        CHECKF(strncmp(err.message, path, strlen(path)) == 0 && err.message[strlen(path)] == ':',
               "%s at %zu: message does not start with the path: %s", what, at, err.message);
    }
}

static void truncations(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/trunc.gguf", dir);
    size_t n_cases = 0;
    /* every offset of the first 4 KiB, then a stride through metadata and tensor table,
     * then a sample inside the data section */
    for (size_t at = 0; at < g_len; ) {
        if (write_bytes(path, g_data, at) == 0) {
            expect_clean_error(path, "truncated", at);
            n_cases++;
        }
        if (at < 4096) at += 1;
        else if (at < g_data_offset) at += 61;
        else at += (g_len - g_data_offset) / 37 + 1;
    }
    printf("truncations: %zu cases\n", n_cases);
}

static void flips(const char *dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/flip.gguf", dir);
    char *copy = tu_malloc(g_len);
    size_t n_cases = 0, n_loaded = 0;
    for (size_t at = 0; at < g_data_offset; at += (at < 512 ? 1 : 13)) {
        memcpy(copy, g_data, g_len);
        copy[at] ^= (char)0xFF;
        if (write_bytes(path, copy, g_len) != 0) continue;
        frugal_error err = FRUGAL_ERROR_INIT;
        int rc = try_load(path, &err);
        n_cases++;
        if (rc == FRUGAL_OK) n_loaded++;
        else CHECKF(strncmp(err.message, path, strlen(path)) == 0, "flip at %zu: message %s", at, err.message);
    }
    printf("flips: %zu cases, %zu still loadable (harmless changes, evaluated without crash)\n",
           n_cases, n_loaded);
    free(copy);
}

/* Rewrite the source model with one change, through our GGUF writer. */
typedef struct {
    const char *skip_tensor;      /* omit this tensor */
    const char *reshape_tensor;   /* swap its two dims */
    const char *retype_tensor;    /* declare it as type TQ1_0 (layout known, not runnable) */
    const char *drop_key;         /* omit this metadata key */
    const char *set_arch;         /* general.architecture value */
    const char *set_u32_key;      /* set this u32 key ... */
    uint32_t set_u32_val;         /* ... to this value */
    const char *add_tensor;       /* an extra tensor (a copy of the first 1-D one) */
} mutation;

static int write_mutant(const gguf_file *src, const char *out, const mutation *mu) {
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const gguf_kv *kv = &src->kv[i];
        if (mu->drop_key && gguf_str_eq(kv->key, mu->drop_key)) continue;
        gguf_writer_copy_kv(w, kv);
    }
    if (mu->set_arch) gguf_writer_set_str(w, "general.architecture", mu->set_arch);
    if (mu->set_u32_key) gguf_writer_set_u32(w, mu->set_u32_key, mu->set_u32_val);
    static uint8_t q2k_block[84 * 64];
    for (uint64_t i = 0; i < src->n_tensors; i++) {
        const gguf_tensor *t = &src->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        if (mu->skip_tensor && !strcmp(name, mu->skip_tensor)) continue;
        int64_t ne[4] = {t->ne[0], t->ne[1], t->ne[2], t->ne[3]};
        uint32_t type = t->type;
        const void *data = t->data;
        if (mu->reshape_tensor && !strcmp(name, mu->reshape_tensor)) { ne[0] = t->ne[1]; ne[1] = t->ne[0]; }
        if (mu->retype_tensor && !strcmp(name, mu->retype_tensor)) {
            /* a 256-wide, few-row TQ1_0 tensor: valid layout, unsupported type */
            type = 34; ne[0] = 256; ne[1] = 64; data = q2k_block; /* 54 * 64 bytes needed */
        }
        gguf_writer_add_tensor(w, name, type, t->n_dims, ne, data);
    }
    for (uint64_t i = 0; mu->add_tensor && i < src->n_tensors; i++)
        if (src->tensors[i].n_dims == 1) {
            const gguf_tensor *t = &src->tensors[i];
            gguf_writer_add_tensor(w, mu->add_tensor, t->type, 1, t->ne, t->data);
            break;
        }
    fr_err err = FRUGAL_ERROR_INIT;
    int rc = gguf_writer_write(w, out, NULL, NULL, &err);
    gguf_writer_free(w);
    return rc;
}

typedef struct { mutation mu; int code; const char *must_mention; } mutant_case;

static void run_mutants(const gguf_file *src, const char *dir, const mutant_case *cases, size_t n_cases);

static void mutants(const char *src_path, const char *dir) {
    gguf_file *src = NULL;
    fr_err e = FRUGAL_ERROR_INIT;
    CHECK(gguf_open(src_path, &src, &e) == FRUGAL_OK);
    if (!src) return;
    const mutant_case cases[] = {
        {{.skip_tensor = "blk.1.ffn_up.weight"}, FRUGAL_E_FORMAT, "blk.1.ffn_up.weight"},
        {{.skip_tensor = "output_norm.weight"}, FRUGAL_E_FORMAT, "output_norm.weight"},
        {{.reshape_tensor = "blk.0.attn_k.weight"}, FRUGAL_E_FORMAT, "blk.0.attn_k.weight"},
        {{.retype_tensor = "blk.0.ffn_gate.weight"}, FRUGAL_E_FORMAT, "blk.0.ffn_gate.weight"},
        {{.set_arch = "mamba9"}, FRUGAL_E_UNSUPPORTED, "mamba9"},
        {{.set_arch = "mamba9"}, FRUGAL_E_UNSUPPORTED, "supported: llama, qwen2, qwen3, qwen3moe, gemma, gemma2, gemma3, phi3, gpt2"},
        {{.set_arch = "clip"}, FRUGAL_E_UNSUPPORTED, "vision projector"},
        {{.add_tensor = "blk.0.attn_rot_embd"}, FRUGAL_E_UNSUPPORTED, "blk.0.attn_rot_embd"},
        {{.add_tensor = "v.blk.0.attn_q.bias"}, FRUGAL_E_UNSUPPORTED, "vision encoder"},
        {{.drop_key = "llama.block_count"}, FRUGAL_E_FORMAT, "block_count"},
        {{.drop_key = "tokenizer.ggml.tokens"}, FRUGAL_E_FORMAT, "tokenizer.ggml.tokens"},
        {{.set_u32_key = "llama.attention.head_count", .set_u32_val = 0}, FRUGAL_E_FORMAT, "heads"},
        {{.set_u32_key = "llama.attention.head_count_kv", .set_u32_val = 3}, FRUGAL_E_FORMAT, "kv heads"},
        {{.set_u32_key = "llama.embedding_length", .set_u32_val = 128}, FRUGAL_E_FORMAT, "shape"},
        {{.set_u32_key = "llama.block_count", .set_u32_val = 9}, FRUGAL_E_FORMAT, "blk.5"},
    };
    run_mutants(src, dir, cases, sizeof cases / sizeof *cases);
    gguf_close(src);
}

/* What each family's description requires, removed or misshapen one at a time on the
 * ../shared/arch files (skipped when absent). */
static void family_mutants(const char *dir) {
    static const struct { const char *file; mutant_case c; } k[] = {
        {"arch/models/synth-gemma2-q8_0.gguf", {{.skip_tensor = "blk.3.post_ffw_norm.weight"}, FRUGAL_E_FORMAT, "post_ffw_norm"}},
        {"arch/models/synth-gemma3-q8_0.gguf", {{.reshape_tensor = "blk.0.attn_q.weight"}, FRUGAL_E_FORMAT, "blk.0.attn_q.weight"}},
        {"arch/models/synth-qwen3-q8_0.gguf", {{.skip_tensor = "blk.2.attn_k_norm.weight"}, FRUGAL_E_FORMAT, "attn_k_norm"}},
        {"arch/models/synth-qwen3-q8_0.gguf", {{.drop_key = "qwen3.attention.key_length"}, FRUGAL_E_UNSUPPORTED, "key_length"}},
        {"arch/models/synth-phi3-q8_0.gguf", {{.skip_tensor = "blk.1.attn_qkv.weight"}, FRUGAL_E_FORMAT, "attn_qkv"}},
        {"arch/models/synth-phi3-q8_0.gguf", {{.skip_tensor = "rope_factors_short.weight"}, FRUGAL_E_FORMAT, "pairs"}},
        {"arch/models/synth-gpt2-q8_0.gguf", {{.skip_tensor = "position_embd.weight"}, FRUGAL_E_FORMAT, "position_embd"}},
        {"arch/models/synth-gpt2-q8_0.gguf", {{.drop_key = "gpt2.context_length"}, FRUGAL_E_FORMAT, "context_length"}},
        {"arch/models/synth-llama3-q8_0.gguf", {{.reshape_tensor = "rope_freqs.weight"}, FRUGAL_E_FORMAT, "rope_freqs"}},
        {"arch/models/synth-mixtral-q8_0.gguf",
         {{.set_u32_key = "llama.expert_used_count", .set_u32_val = 5}, FRUGAL_E_FORMAT, "expert_used_count 5"}},
        {"arch/models/synth-mixtral-q8_0.gguf",
         {{.set_u32_key = "llama.expert_count", .set_u32_val = 2000}, FRUGAL_E_FORMAT, "expert_count 2000"}},
        {"arch/models/synth-mixtral-q8_0.gguf", {{.drop_key = "llama.expert_count"}, FRUGAL_E_FORMAT, "blk.0.ffn_gate.weight"}},
        {"arch/models/synth-mixtral-q8_0.gguf",
         {{.reshape_tensor = "blk.1.ffn_up_exps.weight"}, FRUGAL_E_FORMAT, "blk.1.ffn_up_exps.weight"}},
        {"arch/models/synth-qwen3moe-q8_0.gguf",
         {{.drop_key = "qwen3moe.expert_feed_forward_length"}, FRUGAL_E_FORMAT, "expert_feed_forward_length"}},
        {"arch/models/synth-qwen3moe-q8_0.gguf",
         {{.skip_tensor = "blk.0.ffn_gate_inp.weight"}, FRUGAL_E_FORMAT, "blk.0.ffn_gate_inp.weight"}},
    };
    for (size_t i = 0; i < sizeof k / sizeof *k; i++) {
        const char *path = tu_shared(k[i].file);
        if (!path) {
            printf("  %s absent: family case skipped\n", k[i].file);
            continue;
        }
        gguf_file *src = NULL;
        fr_err e = FRUGAL_ERROR_INIT;
        CHECK(gguf_open(path, &src, &e) == FRUGAL_OK);
        if (src) run_mutants(src, dir, &k[i].c, 1);
        gguf_close(src);
    }
}

static void run_mutants(const gguf_file *src, const char *dir, const mutant_case *cases, size_t n_cases) {
    char out[512];
    snprintf(out, sizeof out, "%s/mutant.gguf", dir);
    for (size_t i = 0; i < n_cases; i++) {
        int wrc = write_mutant(src, out, &cases[i].mu);
        CHECKF(wrc == FRUGAL_OK, "case %zu: cannot write mutant", i);
        if (wrc) continue;
        frugal_error err = FRUGAL_ERROR_INIT;
        int rc = try_load(out, &err);
        /* a retyped tensor changes the shape too; either complaint names the tensor */
        bool code_ok = rc == cases[i].code || (cases[i].mu.retype_tensor && rc != FRUGAL_OK);
        CHECKF(code_ok, "case %zu (%s): rc %d, expected %d: %s", i, cases[i].must_mention, rc,
               cases[i].code, err.message);
        CHECKF(strstr(err.message, cases[i].must_mention) != NULL, "case %zu: message '%s' lacks '%s'", i,
               err.message, cases[i].must_mention);
        CHECKF(strncmp(err.message, out, strlen(out)) == 0, "case %zu: message lacks path: %s", i, err.message);
        printf("  mutant %zu: %s\n", i, err.message);
    }
    /* the unmodified rewrite must load: the mutations, not the writer, cause the errors */
    mutation none = {0};
    CHECK(write_mutant(src, out, &none) == FRUGAL_OK);
    frugal_error err = FRUGAL_ERROR_INIT;
    CHECKF(try_load(out, &err) == FRUGAL_OK, "clean rewrite failed: %s", err.message);
}

int main(void) {
    const char *src = tu_need_shared("models/tinystories-xs-q8_0.gguf");
    g_data = tu_read_file(src, &g_len);
    CHECK(g_data != NULL);
    gguf_file *f = NULL;
    fr_err e = FRUGAL_ERROR_INIT;
    CHECK(gguf_open(src, &f, &e) == FRUGAL_OK);
    if (!f || !g_data) return tu_finish("test_bad_model");
    g_data_offset = f->data_offset;
    gguf_close(f);

    const char *dir = tu_tmpdir();
    truncations(dir);
    flips(dir);
    mutants(src, dir);
    family_mutants(dir);

    /* a path that does not exist and a directory */
    frugal_error err = FRUGAL_ERROR_INIT;
    CHECK(try_load("/nonexistent/model.gguf", &err) == FRUGAL_E_IO);
    CHECK(strstr(err.message, "/nonexistent/model.gguf") == err.message);
    frugal_error err2 = FRUGAL_ERROR_INIT;
    CHECK(try_load(dir, &err2) != FRUGAL_OK);
    free(g_data);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return tu_finish("test_bad_model");
}
