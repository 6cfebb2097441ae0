/* test_convert.c - frugal convert (src/convert/) against llama.cpp's converter.
 *
 * 1. Every folder of ../shared/hf converted, then compared with expected/<name>.gguf
 *    in the sense of ../shared/hf/README.md: the same tensors (name, type, shape,
 *    bytes), the same general.architecture / general.file_type / <arch>.* /
 *    tokenizer.* keys (type and value, floats bit for bit), and the converted file's
 *    tokenizer gives the ids of ../shared/vocab/ggml-vocab-<v>.gguf.out for every
 *    string of the .inp file.
 * 2. Bad input: a truncated shard, overlapping and out-of-file offsets, an unknown
 *    dtype, an unsupported architecture, a missing config.json or tokenizer, a shard
 *    the index names but that is absent: an error naming the file and the problem,
 *    and no output or temp file left.
 * 3. The layout changes on a folder written here: Q/K permutation, Gemma's +1,
 *    expert stacking, BF16 kept, GPT-2's transpose (values checked element by element). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FRUGAL_HAVE_CJSON
#include "testutil.h"
int main(void) { tu_skip("cJSON not available: frugal convert is not built (apt-get install libcjson-dev)"); }
#else
#include "convert/convert.h"
#include "convert/safetensors.h"
#include "gguf/gguf.h"
#include "testutil.h"
#include "tokenizer/tokenizer.h"

static int convert(const char *dir, const char *out, const char *type, fr_err *err) {
    fr_convert_params p = {0};
    p.in_dir = dir;
    p.out_path = out;
    p.type = type;
    fr_err_clear(err);
    return fr_convert(&p, NULL, err);
}

/* ------------------------------------------------------------ comparing files */

static bool key_compared(const gguf_kv *kv, const char *arch) {
    char k[256];
    snprintf(k, sizeof k, "%.*s", (int)kv->key.len, kv->key.ptr);
    size_t al = strlen(arch);
    return !strcmp(k, "general.architecture") || !strcmp(k, "general.file_type") || !strncmp(k, "tokenizer.", 10) ||
           (!strncmp(k, arch, al) && k[al] == '.');
}

static bool str_eq(gguf_str a, gguf_str b) { return a.len == b.len && !memcmp(a.ptr, b.ptr, a.len); }

static size_t vt_size(gguf_vtype t) {
    static const size_t s[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    return t < GGUF_VT_COUNT ? s[t] : 0;
}

static bool kv_equal(const gguf_kv *a, const gguf_kv *b) {
    if (a->type != b->type) return false;
    if (a->type == GGUF_VT_STRING) return str_eq(a->v.str, b->v.str);
    if (a->type != GGUF_VT_ARRAY) {
        if (a->type == GGUF_VT_FLOAT32) return (float)a->v.f64 == (float)b->v.f64 || (isnan(a->v.f64) && isnan(b->v.f64));
        return a->v.u64 == b->v.u64 && a->v.f64 == b->v.f64;
    }
    if (a->arr_type != b->arr_type || a->arr_n != b->arr_n) return false;
    if (a->arr_type == GGUF_VT_STRING) {
        for (uint64_t i = 0; i < a->arr_n; i++)
            if (!str_eq(a->arr_strs[i], b->arr_strs[i])) return false;
        return true;
    }
    return !memcmp(a->arr_data, b->arr_data, (size_t)a->arr_n * vt_size(a->arr_type));
}

/* Number of differences between expected e and actual a (each printed). */
static int compare(const gguf_file *e, const gguf_file *a, const char *arch) {
    int diff = 0;
    CHECKF(e->n_tensors == a->n_tensors, "tensor count %llu vs %llu", (unsigned long long)e->n_tensors,
           (unsigned long long)a->n_tensors);
    for (uint64_t i = 0; i < e->n_tensors; i++) {
        const gguf_tensor *te = &e->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)te->name.len, te->name.ptr);
        const gguf_tensor *ta = gguf_find_tensor(a, name);
        bool ok = ta && ta->type == te->type && ta->n_dims == te->n_dims && !memcmp(ta->ne, te->ne, sizeof te->ne) &&
                  ta->nbytes == te->nbytes && !memcmp(ta->data, te->data, (size_t)te->nbytes);
        if (!ok) { diff++; fprintf(stderr, "  tensor %s differs%s\n", name, ta ? "" : " (missing)"); }
    }
    const gguf_file *f[2] = {e, a};
    for (int side = 0; side < 2; side++)
        for (uint64_t i = 0; i < f[side]->n_kv; i++) {
            const gguf_kv *kv = &f[side]->kv[i];
            if (!key_compared(kv, arch)) continue;
            char k[256];
            snprintf(k, sizeof k, "%.*s", (int)kv->key.len, kv->key.ptr);
            const gguf_kv *other = gguf_find_kv(f[1 - side], k);
            if (!other) { diff++; fprintf(stderr, "  key %s only in the %s file\n", k, side ? "converted" : "expected"); }
            else if (!side && !kv_equal(kv, other)) { diff++; fprintf(stderr, "  key %s differs\n", k); }
        }
    return diff;
}

/* ------------------------------------------------------------ token ids */

static const char SEP[] = "\n__ggml_vocab_test__\n";

static void check_ids(const char *model, const char *vocab) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", vocab);
    const char *pin = tu_shared(rel);
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", vocab);
    const char *pout = tu_shared(rel);
    size_t il = 0, ol = 0;
    char *inp = pin ? tu_read_file(pin, &il) : NULL, *outp = pout ? tu_read_file(pout, &ol) : NULL;
    gguf_file *f = NULL;
    fr_tokenizer *t = NULL;
    fr_err err = {0};
    if (!inp || !outp || gguf_open(model, &f, &err) || fr_tokenizer_load(f, &t, &err)) {
        CHECKF(false, "%s: cannot check token ids: %s", model, err.message);
        goto out;
    }
    static int32_t ids[8192];
    int n_case = 0, n_pass = 0;
    char *line = outp;
    for (size_t pos = 0; pos < il;) {
        const char *next = memmem(inp + pos, il - pos, SEP, sizeof SEP - 1);
        size_t cl = next ? (size_t)(next - inp - pos) : il - pos;
        int n = fr_tokenize(t, inp + pos, cl, false, false, ids, 8192);
        pos = next ? pos + cl + sizeof SEP - 1 : il;
        char *eol = line ? strchr(line, '\n') : NULL;
        if (eol) *eol = 0;
        int k = 0;
        bool ok = line != NULL;
        for (char *p = line; ok && p && *p;) {
            char *end;
            long v = strtol(p, &end, 10);
            if (end == p) break;
            ok = k < n && ids[k] == v;
            k++;
            p = end;
        }
        n_case++;
        if (ok && k == n) n_pass++;
        line = eol ? eol + 1 : NULL;
    }
    printf("  %s: token ids %d/%d cases as llama.cpp (%s)\n", model, n_pass, n_case, vocab);
    CHECKF(n_case > 0 && n_pass == n_case, "%s: %d/%d token id cases", model, n_pass, n_case);
out:
    fr_tokenizer_free(t);
    gguf_close(f);
    free(inp);
    free(outp);
}

static void test_shared(void) {
    static const char *const names[3][3] = {{"llama", "llama", "llama-spm"}, {"qwen2", "qwen2", "gpt-2"}, {"gpt2", "gpt2", "gpt-2"}};
    for (int i = 0; i < 3; i++) {
        char rel[128], out[512];
        snprintf(rel, sizeof rel, "hf/%s", names[i][0]);
        const char *dir = tu_shared(rel);
        snprintf(rel, sizeof rel, "hf/expected/%s.gguf", names[i][0]);
        const char *exp = tu_shared(rel);
        if (!dir || !exp) { printf("  hf/%s: absent, skipped\n", names[i][0]); continue; }
        char dirc[512], expc[512];
        snprintf(dirc, sizeof dirc, "%s", dir);
        snprintf(expc, sizeof expc, "%s", exp);
        snprintf(out, sizeof out, "%s/%s.gguf", tu_tmpdir(), names[i][0]);
        fr_err err = {0};
        int rc = convert(dirc, out, NULL, &err);
        CHECKF(rc == FRUGAL_OK, "convert %s: %s", names[i][0], err.message);
        if (rc) continue;
        CHECK(!tu_temp_left(out));
        gguf_file *e = NULL, *a = NULL;
        CHECK(gguf_open(expc, &e, &err) == FRUGAL_OK && gguf_open(out, &a, &err) == FRUGAL_OK);
        if (e && a) {
            int d = compare(e, a, names[i][1]);
            printf("  hf/%s: %llu tensors, %d differences from llama.cpp's file\n", names[i][0],
                   (unsigned long long)a->n_tensors, d);
            CHECKF(d == 0, "%s: %d differences", names[i][0], d);
        }
        gguf_close(e);
        gguf_close(a);
        check_ids(out, names[i][2]);
    }
}

/* ------------------------------------------------------------ folders written here */

typedef struct wt { const char *name; const char *dtype; int nd; int64_t shape[3]; } wt;

static size_t wt_bytes(const wt *t) {
    size_t n = strcmp(t->dtype, "F32") ? 2 : 4;
    for (int i = 0; i < t->nd; i++) n *= (size_t)t->shape[i];
    return n;
}

/* Element i of tensor k: a value that tells tensors and positions apart. */
static float wt_val(int k, size_t i) { return (float)(k * 100) + (float)i * 0.25f; }

static void put_file(const char *dir, const char *name, const char *text) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) { fputs(text, f); fclose(f); }
}

/* A safetensors file of tensors t[0..n) with values wt_val(k0 + k, i); header_extra
 * (if not NULL) replaces the header; trunc > 0 cuts that many bytes off the end. */
static void write_st(const char *path, const wt *t, int n, int k0, const char *header, size_t trunc) {
    char h[8192];
    size_t off = 0, hl = 0;
    hl += (size_t)snprintf(h + hl, sizeof h - hl, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int k = 0; k < n; k++) {
        size_t b = wt_bytes(&t[k]);
        hl += (size_t)snprintf(h + hl, sizeof h - hl, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[k].name, t[k].dtype);
        for (int d = 0; d < t[k].nd; d++) hl += (size_t)snprintf(h + hl, sizeof h - hl, "%s%lld", d ? "," : "", (long long)t[k].shape[d]);
        hl += (size_t)snprintf(h + hl, sizeof h - hl, "],\"data_offsets\":[%zu,%zu]}", off, off + b);
        off += b;
    }
    hl += (size_t)snprintf(h + hl, sizeof h - hl, "}");
    if (header) { snprintf(h, sizeof h, "%s", header); hl = strlen(h); }
    FILE *f = fopen(path, "wb");
    if (!f) return;
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(h, 1, hl, f);
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        size_t ne = wt_bytes(&t[k]) / (strcmp(t[k].dtype, "F32") ? 2 : 4);
        for (size_t i = 0; i < ne; i++) {
            float v = wt_val(k0 + k, i);
            if (!strcmp(t[k].dtype, "F32")) fwrite(&v, 4, 1, f);
            else {
                uint16_t x = !strcmp(t[k].dtype, "F16") ? fr_f32_to_f16(v) : fr_f32_to_bf16(v);
                fwrite(&x, 2, 1, f);
            }
        }
        total += wt_bytes(&t[k]);
    }
    fclose(f);
    if (trunc) { int rc = truncate(path, (off_t)(8 + hl + total - trunc)); (void)rc; }
}

static const char k_tok_json[] =
    "{\"added_tokens\":[{\"id\":5,\"content\":\"<|end|>\",\"special\":true}],"
    "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":true},"
    "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1,\"ab\":2,\"c\":3,\"\\u0120\":4},\"merges\":[[\"a\",\"b\"]]}}";

#define L0 "model.layers.0."
static const wt k_llama[] = {
    {"model.embed_tokens.weight", "F32", 2, {8, 8}}, {L0 "input_layernorm.weight", "F32", 1, {8}},
    {L0 "self_attn.q_proj.weight", "F32", 2, {8, 8}}, {L0 "self_attn.k_proj.weight", "F32", 2, {4, 8}},
    {L0 "self_attn.v_proj.weight", "F32", 2, {4, 8}}, {L0 "self_attn.o_proj.weight", "F32", 2, {8, 8}},
    {L0 "post_attention_layernorm.weight", "F32", 1, {8}}, {L0 "mlp.gate_proj.weight", "F32", 2, {8, 8}},
    {L0 "mlp.up_proj.weight", "F32", 2, {8, 8}}, {L0 "mlp.down_proj.weight", "F32", 2, {8, 8}},
    {"model.norm.weight", "F32", 1, {8}},
};
#define N_LLAMA ((int)(sizeof k_llama / sizeof k_llama[0]))

static const char k_llama_cfg[] =
    "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"num_attention_heads\":2,"
    "\"num_key_value_heads\":1,\"num_hidden_layers\":1,\"intermediate_size\":8,\"vocab_size\":8,"
    "\"rms_norm_eps\":1e-5,\"max_position_embeddings\":64,\"tie_word_embeddings\":true,"
    "\"rope_scaling\":{\"rope_type\":\"llama3\",\"factor\":8.0,\"low_freq_factor\":1.0,"
    "\"high_freq_factor\":4.0,\"original_max_position_embeddings\":32},\"rope_theta\":500000.0}";

static const char *mkdir_in(const char *name) {
    static char p[4][1024];
    static int slot;
    char *d = p[slot++ & 3];
    snprintf(d, 1024, "%s/%s", tu_tmpdir(), name);
    mkdir(d, 0755);
    return d;
}

static void llama_folder(const char *dir, const char *cfg) {
    char p[1024];
    put_file(dir, "config.json", cfg ? cfg : k_llama_cfg);
    put_file(dir, "tokenizer.json", k_tok_json);
    put_file(dir, "tokenizer_config.json", "{\"eos_token\":\"<|end|>\",\"add_bos_token\":false}");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, k_llama, N_LLAMA, 0, NULL, 0);
}

static float tval(const gguf_file *f, const char *name, int64_t i) {
    const gguf_tensor *t = gguf_find_tensor(f, name);
    if (!t) return NAN;
    if (t->type == FR_TYPE_F32) { float v; memcpy(&v, (const uint8_t *)t->data + 4 * i, 4); return v; }
    uint16_t h;
    memcpy(&h, (const uint8_t *)t->data + 2 * i, 2);
    return t->type == FR_TYPE_F16 ? fr_f16_to_f32(h) : fr_bf16_to_f32(h);
}

static void test_llama_layout(void) {
    const char *dir = mkdir_in("llama-syn");
    llama_folder(dir, NULL);
    char out[1024];
    snprintf(out, sizeof out, "%s/llama-syn.gguf", tu_tmpdir());
    fr_err err = {0};
    int rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "synthetic llama: %s", err.message);
    gguf_file *f = NULL;
    if (rc || gguf_open(out, &f, &err)) return;
    /* Q (2 heads of 4 rows): out row h*4 + 2j + k = in row h*4 + 2k + j */
    bool perm_ok = true;
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < 8; c++) {
            int h = r / 4, w = r % 4, src = h * 4 + (w % 2) * 2 + w / 2;
            if (tval(f, "blk.0.attn_q.weight", r * 8 + c) != wt_val(2, (size_t)(src * 8 + c))) perm_ok = false;
        }
    CHECKF(perm_ok, "attn_q rows permuted per head");
    /* K: one KV head of 4 rows */
    CHECK(tval(f, "blk.0.attn_k.weight", 1 * 8) == wt_val(3, 2 * 8));
    CHECK(tval(f, "blk.0.attn_v.weight", 1 * 8) == wt_val(4, 1 * 8));
    CHECK(gguf_find_tensor(f, "output.weight") == NULL);  /* tied */
    /* llama3 rope_freqs: head dim 4 -> 2 factors; the fastest pair keeps 1 */
    const gguf_tensor *rf = gguf_find_tensor(f, "rope_freqs.weight");
    CHECK(rf && rf->ne[0] == 2 && tval(f, "rope_freqs.weight", 0) == 1.0f && tval(f, "rope_freqs.weight", 1) > 1.0f);
    uint32_t v = 0;
    CHECK(gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &v, &err) == 0 && v == 5);
    const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
    CHECK(tt && tt->arr_n == 8 && gguf_arr_i64(tt, 5) == 3 && gguf_arr_i64(tt, 6) == 5 && gguf_arr_i64(tt, 0) == 1);
    const gguf_kv *mg = gguf_find_kv(f, "tokenizer.ggml.merges");
    CHECK(mg && mg->arr_n == 1 && gguf_str_eq(mg->arr_strs[0], "a b"));
    bool b = true;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, &err) == 0 && !b);
    gguf_close(f);
    /* Llama-3 style: BOS added by the tokenizer.json TemplateProcessing, not by
     * tokenizer_config.json */
    put_file(dir, "tokenizer.json",
             "{\"added_tokens\":[{\"id\":5,\"content\":\"<|end|>\",\"special\":true}],"
             "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"use_regex\":true},"
             "\"post_processor\":{\"type\":\"Sequence\",\"processors\":[{\"type\":\"ByteLevel\"},"
             "{\"type\":\"TemplateProcessing\",\"single\":[{\"SpecialToken\":{\"id\":\"<|end|>\",\"type_id\":0}},"
             "{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}]}]},"
             "\"model\":{\"type\":\"BPE\",\"vocab\":{\"a\":0,\"b\":1},\"merges\":[\"a b\"]}}");
    put_file(dir, "tokenizer_config.json", "{\"bos_token\":\"<|end|>\"}");
    rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "template tokenizer: %s", err.message);
    if (rc || gguf_open(out, &f, &err)) return;
    b = false;
    CHECK(gguf_get_bool(f, "tokenizer.ggml.add_bos_token", &b, &err) == 0 && b);
    CHECK(gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &v, &err) == 0 && v == 5);
    gguf_close(f);
}

/* rope_scaling linear / yarn -> the rope.scaling.* keys (TextModel.set_gguf_parameters);
 * qwen2 keeps HF's Q/K row order. */
static void test_rope_scaling(void) {
    const char *dir = mkdir_in("qwen2-yarn");
    char out[1024];
    llama_folder(dir, "{\"architectures\":[\"Qwen2ForCausalLM\"],\"hidden_size\":8,\"num_attention_heads\":2,"
                      "\"num_key_value_heads\":1,\"num_hidden_layers\":1,\"intermediate_size\":8,\"vocab_size\":8,"
                      "\"rope_scaling\":{\"type\":\"yarn\",\"factor\":4.0,\"original_max_position_embeddings\":32,"
                      "\"beta_fast\":32.0,\"beta_slow\":1.0}}");
    snprintf(out, sizeof out, "%s/qwen2-yarn.gguf", tu_tmpdir());
    fr_err err = {0};
    int rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "qwen2 yarn: %s", err.message);
    gguf_file *f = NULL;
    if (rc || gguf_open(out, &f, &err)) return;
    gguf_str t = {0};
    float v = 0;
    uint32_t u = 0;
    CHECK(gguf_get_str(f, "qwen2.rope.scaling.type", &t, &err) == 0 && gguf_str_eq(t, "yarn"));
    CHECK(gguf_get_f32(f, "qwen2.rope.scaling.factor", &v, &err) == 0 && v == 4.0f);
    CHECK(gguf_get_u32(f, "qwen2.rope.scaling.original_context_length", &u, &err) == 0 && u == 32);
    CHECK(gguf_get_f32(f, "qwen2.rope.scaling.yarn_beta_fast", &v, &err) == 0 && v == 32.0f);
    CHECK(gguf_get_f32(f, "qwen2.rope.freq_base", &v, &err) == 0 && v == 10000.0f);   /* transformers' default */
    CHECK(gguf_find_kv(f, "qwen2.attention.key_length") == NULL);                     /* no head_dim in Qwen2Config */
    CHECK(tval(f, "blk.0.attn_q.weight", 8) == wt_val(2, 8));                           /* rows as in HF */
    gguf_close(f);
    llama_folder(dir, "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":8,\"num_attention_heads\":2,"
                      "\"num_hidden_layers\":1,\"intermediate_size\":8,\"vocab_size\":8,"
                      "\"rope_scaling\":{\"rope_type\":\"linear\",\"factor\":2.0}}");
    rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "llama linear: %s", err.message);
    if (rc || gguf_open(out, &f, &err)) return;
    CHECK(gguf_get_str(f, "llama.rope.scaling.type", &t, &err) == 0 && gguf_str_eq(t, "linear"));
    CHECK(gguf_get_f32(f, "llama.rope.scaling.factor", &v, &err) == 0 && v == 2.0f);
    CHECK(gguf_get_u32(f, "llama.attention.head_count_kv", &u, &err) == 0 && u == 2);  /* default: = heads */
    CHECK(gguf_find_tensor(f, "rope_freqs.weight") == NULL);
    gguf_close(f);
}

/* A Llama-style tokenizer.json (SentencePiece pieces, byte fallback): llama.cpp's
 * LlamaHfVocab: scores -1000, bytes 6, specials 3, added non-special tokens 4. */
static void test_llama_hf_tokenizer(void) {
    const char *dir = mkdir_in("llama-hf-tok");
    char p[1024], out[1024];
    put_file(dir, "config.json", k_llama_cfg);
    put_file(dir, "tokenizer.json",
             "{\"added_tokens\":[{\"id\":6,\"content\":\"<extra>\",\"special\":false}],"
             "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[]},"
             "\"model\":{\"type\":\"BPE\",\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,"
             "\"</s>\":2,\"<0x0A>\":3,\"\u2581a\":4,\"b\":5},\"merges\":[]}}");
    put_file(dir, "tokenizer_config.json", "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"unk_token\":\"<unk>\"}");
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, k_llama, N_LLAMA, 0, NULL, 0);
    snprintf(out, sizeof out, "%s/llama-hf-tok.gguf", tu_tmpdir());
    fr_err err = {0};
    int rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "llama-style tokenizer.json: %s", err.message);
    gguf_file *f = NULL;
    if (rc || gguf_open(out, &f, &err)) return;
    static const int want[7] = {3, 3, 3, 6, 1, 1, 4};
    const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type"), *sc = gguf_find_kv(f, "tokenizer.ggml.scores");
    const gguf_kv *tk = gguf_find_kv(f, "tokenizer.ggml.tokens");
    bool ok = tt && sc && tk && tt->arr_n == 7 && sc->arr_n == 7 && gguf_str_eq(tk->arr_strs[4], "\xe2\x96\x81" "a");
    for (int i = 0; ok && i < 7; i++) ok = gguf_arr_i64(tt, (uint64_t)i) == want[i] && gguf_arr_f64(sc, (uint64_t)i) == -1000.0;
    CHECKF(ok, "LlamaHfVocab types and scores");
    gguf_str m = {0};
    CHECK(gguf_get_str(f, "tokenizer.ggml.model", &m, &err) == 0 && gguf_str_eq(m, "llama"));
    gguf_close(f);
}

static void test_mixtral_gemma(void) {
    /* Mixtral: 2 experts stacked into ffn_*_exps, router F32 */
    const char *dir = mkdir_in("mixtral-syn");
    static const wt t[] = {
        {"model.embed_tokens.weight", "F16", 2, {8, 8}}, {"lm_head.weight", "F16", 2, {8, 8}},
        {L0 "block_sparse_moe.gate.weight", "F16", 2, {2, 8}},
        {L0 "block_sparse_moe.experts.0.w1.weight", "F16", 2, {4, 8}}, {L0 "block_sparse_moe.experts.1.w1.weight", "F16", 2, {4, 8}},
        {L0 "block_sparse_moe.experts.0.w2.weight", "F16", 2, {8, 4}}, {L0 "block_sparse_moe.experts.1.w2.weight", "F16", 2, {8, 4}},
        {L0 "block_sparse_moe.experts.0.w3.weight", "F16", 2, {4, 8}}, {L0 "block_sparse_moe.experts.1.w3.weight", "F16", 2, {4, 8}},
    };
    char p[1024], out[1024];
    put_file(dir, "config.json",
             "{\"architectures\":[\"MixtralForCausalLM\"],\"hidden_size\":8,\"num_attention_heads\":2,"
             "\"num_hidden_layers\":1,\"intermediate_size\":4,\"vocab_size\":8,\"num_local_experts\":2,"
             "\"num_experts_per_tok\":1}");
    put_file(dir, "tokenizer.json", k_tok_json);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, t, 9, 0, NULL, 0);
    snprintf(out, sizeof out, "%s/mixtral-syn.gguf", tu_tmpdir());
    fr_err err = {0};
    int rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "synthetic mixtral: %s", err.message);
    gguf_file *f = NULL;
    if (!rc && !gguf_open(out, &f, &err)) {
        const gguf_tensor *g = gguf_find_tensor(f, "blk.0.ffn_gate_exps.weight");
        CHECK(g && g->n_dims == 3 && g->ne[0] == 8 && g->ne[1] == 4 && g->ne[2] == 2 && g->type == FR_TYPE_F16);
        /* expert 1 starts after expert 0's 32 values */
        CHECK(tval(f, "blk.0.ffn_gate_exps.weight", 32 + 3) == fr_f16_to_f32(fr_f32_to_f16(wt_val(4, 3))));
        CHECK(tval(f, "blk.0.ffn_down_exps.weight", 32) == fr_f16_to_f32(fr_f32_to_f16(wt_val(6, 0))));
        CHECK(tval(f, "blk.0.ffn_up_exps.weight", 5) == fr_f16_to_f32(fr_f32_to_f16(wt_val(7, 5))));
        const gguf_tensor *r = gguf_find_tensor(f, "blk.0.ffn_gate_inp.weight");
        CHECK(r && r->type == FR_TYPE_F32);
        uint32_t v = 0;
        CHECK(gguf_get_u32(f, "llama.expert_count", &v, &err) == 0 && v == 2);
        CHECK(gguf_get_u32(f, "general.file_type", &v, &err) == 0 && v == 1);
        gguf_close(f);
    }
    /* Gemma 2, BF16: norms + 1 (F32), matrices kept BF16 byte for byte, lm_head ignored */
    dir = mkdir_in("gemma2-syn");
    static const wt g[] = {
        {"model.embed_tokens.weight", "BF16", 2, {8, 8}}, {L0 "input_layernorm.weight", "BF16", 1, {8}},
        {L0 "post_attention_layernorm.weight", "BF16", 1, {8}}, {L0 "pre_feedforward_layernorm.weight", "BF16", 1, {8}},
        {L0 "post_feedforward_layernorm.weight", "BF16", 1, {8}}, {"model.norm.weight", "BF16", 1, {8}},
        {"lm_head.weight", "BF16", 2, {8, 8}},
    };
    put_file(dir, "config.json",
             "{\"architectures\":[\"Gemma2ForCausalLM\"],\"hidden_size\":8,\"num_attention_heads\":2,"
             "\"num_key_value_heads\":1,\"head_dim\":4,\"num_hidden_layers\":1,\"intermediate_size\":8,"
             "\"vocab_size\":8,\"sliding_window\":16,\"attn_logit_softcapping\":50.0,\"final_logit_softcapping\":30.0}");
    put_file(dir, "tokenizer.json", k_tok_json);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, g, 7, 0, NULL, 0);
    snprintf(out, sizeof out, "%s/gemma2-syn.gguf", tu_tmpdir());
    rc = convert(dir, out, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "synthetic gemma2: %s", err.message);
    if (!rc && !gguf_open(out, &f, &err)) {
        CHECK(tval(f, "blk.0.post_attention_norm.weight", 3) == fr_bf16_to_f32(fr_f32_to_bf16(wt_val(2, 3))) + 1.0f);
        CHECK(tval(f, "blk.0.ffn_norm.weight", 1) == fr_bf16_to_f32(fr_f32_to_bf16(wt_val(3, 1))) + 1.0f);
        CHECK(tval(f, "blk.0.post_ffw_norm.weight", 0) == fr_bf16_to_f32(fr_f32_to_bf16(wt_val(4, 0))) + 1.0f);
        const gguf_tensor *e = gguf_find_tensor(f, "token_embd.weight");
        CHECK(e && e->type == FR_TYPE_BF16 && tval(f, "token_embd.weight", 9) == fr_bf16_to_f32(fr_f32_to_bf16(wt_val(0, 9))));
        CHECK(gguf_find_tensor(f, "output.weight") == NULL);
        uint32_t v = 0;
        CHECK(gguf_get_u32(f, "general.file_type", &v, &err) == 0 && v == 32);
        CHECK(gguf_get_u32(f, "gemma2.attention.sliding_window", &v, &err) == 0 && v == 16);
        gguf_close(f);
    }
}

/* ------------------------------------------------------------ bad input */

static void expect_fail(const char *dir, const char *what, const char *needle1, const char *needle2) {
    char out[1024];
    snprintf(out, sizeof out, "%s/bad.gguf", tu_tmpdir());
    unlink(out);
    fr_err err = {0};
    int rc = convert(dir, out, NULL, &err);
    CHECKF(rc != FRUGAL_OK, "%s: accepted", what);
    CHECKF(strstr(err.message, needle1) && (!needle2 || strstr(err.message, needle2)), "%s: message '%s' lacks '%s'/'%s'",
           what, err.message, needle1, needle2 ? needle2 : "");
    CHECKF(access(out, F_OK) != 0 && !tu_temp_left(out), "%s: output or temp file left", what);
    printf("  bad input, %s: %s\n", what, err.message);
}

static void test_bad_input(void) {
    char p[1024];
    const char *dir = mkdir_in("bad");
    llama_folder(dir, NULL);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    write_st(p, k_llama, N_LLAMA, 0, NULL, 100);
    expect_fail(dir, "truncated shard", "model.safetensors", "past the end");
    write_st(p, k_llama, N_LLAMA, 0,
             "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
             "\"b.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 0);
    expect_fail(dir, "overlapping offsets", "model.safetensors", "overlap");
    write_st(p, k_llama, N_LLAMA, 0, "{\"a.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,1000000]}}", 0);
    expect_fail(dir, "offsets past the file", "model.safetensors", "past the end");
    write_st(p, k_llama, N_LLAMA, 0, "{\"a.weight\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 0);
    expect_fail(dir, "unknown dtype", "model.safetensors", "F8_E4M3");
    write_st(p, k_llama, N_LLAMA, 0, NULL, 0);
    put_file(dir, "config.json", "{\"architectures\":[\"FalconForCausalLM\"],\"hidden_size\":8}");
    expect_fail(dir, "unsupported architecture", "config.json", "FalconForCausalLM");
    snprintf(p, sizeof p, "%s/config.json", dir);
    unlink(p);
    expect_fail(dir, "missing config.json", "config.json", "missing");
    put_file(dir, "config.json", k_llama_cfg);
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    unlink(p);
    expect_fail(dir, "missing tokenizer", "tokenizer", NULL);
    put_file(dir, "tokenizer.json", k_tok_json);
    put_file(dir, "model.safetensors.index.json",
             "{\"weight_map\":{\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}");
    expect_fail(dir, "missing shard", "model-00002-of-00002.safetensors", "missing");
}

int main(void) {
    test_llama_layout();
    test_mixtral_gemma();
    test_llama_hf_tokenizer();
    test_rope_scaling();
    test_bad_input();
    if (!tu_shared("hf/README.md")) {
        printf("SKIP part: ../shared/hf absent\n");
    } else {
        test_shared();
    }
    return tu_finish("test_convert");
}
#endif
