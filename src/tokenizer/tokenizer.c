/* tokenizer.c - vocabulary loading, special tokens, BOS/EOS, pieces, detokenizing.
 *
 * Mirrors llama.cpp's llama_vocab (src/llama-vocab.cpp) so that ids come out
 * bit-exact: the same defaults per family, the same token attributes derived from
 * tokenizer.ggml.token_type plus the same text-based overrides (EOG/EOT/FIM tokens
 * forced to CONTROL, phi-3 rstrip, ...), and the same special-token partitioning.
 * Lookups (token text -> id, merge pair -> rank) are hash maps built at load.
 *
 * Error reporting of the int-returning entry points follows frugal.h: a negative
 * count means "buffer too small"; INT32_MIN means a failure that is not about the
 * buffer (bad argument, out of memory). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/strmap.h"
#include "tokenizer/tokenizer_impl.h"

enum { FAM_SPM = 1, FAM_BPE = 2 };

/* llama.cpp's llama_token_attr bits (only those it consults for text handling). */
enum {
    A_UNKNOWN = 1 << 0, A_UNUSED = 1 << 1, A_NORMAL = 1 << 2, A_CONTROL = 1 << 3,
    A_USER_DEFINED = 1 << 4, A_BYTE = 1 << 5, A_LSTRIP = 1 << 7, A_RSTRIP = 1 << 8,
};

struct fr_tokenizer {
    int family;
    int pre;
    int n_vocab;
    char *pool;              /* all token texts, back to back */
    uint32_t *off, *len;     /* token i's text = pool[off[i] .. off[i]+len[i]) */
    float *score;
    uint8_t *type;           /* FR_TOKTYPE_*, after llama.cpp's overrides */
    uint16_t *attr;          /* A_* bits */
    uint8_t *eog;            /* 1 = end of generation */
    char *piece_pool;        /* token_to_piece(special = true) of every token */
    uint32_t *piece_off, *piece_len;
    fr_strmap tok_map;
    char *merge_pool;        /* BPE merge lines, copied */
    uint32_t *merge_split;   /* per rank: byte position of the separating space */
    int n_merges;
    fr_strmap merge_map;     /* whole line "a b" -> rank */
    int32_t *special;        /* CONTROL/USER_DEFINED/UNKNOWN ids, longest text first */
    int n_special;
    int32_t bos, eos, eot, eom, unk, pad;
    bool add_bos, add_eos, add_space_prefix, clean_spaces;
};

/* ------------------------------------------------------------ small helpers */

int fr_tokvec_push(fr_tokvec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 64;
        if (nc > SIZE_MAX / sizeof *v->ids) return FRUGAL_E_NOMEM;
        int32_t *ni = fr_realloc(v->ids, nc * sizeof *ni);
        if (!ni) return FRUGAL_E_NOMEM;
        v->ids = ni;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return FRUGAL_OK;
}

int32_t fr_tok_find(const fr_tokenizer *t, const char *s, size_t len) {
    return fr_strmap_get(&t->tok_map, s, len);
}

int fr_tok_merge_rank(const fr_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen) {
    int32_t r = fr_strmap_get2(&t->merge_map, a, alen, ' ', b, blen);
    /* the key bytes match; also require llama.cpp's split point (first space at
     * index >= 1) to be where the caller's pair splits */
    if (r < 0 || t->merge_split[r] != alen) return -1;
    return r;
}

const char *fr_tok_text(const fr_tokenizer *t, int32_t id, size_t *len) {
    if (len) *len = t->len[id];
    return t->pool + t->off[id];
}

float fr_tok_score(const fr_tokenizer *t, int32_t id) { return t->score[id]; }
int fr_tok_type(const fr_tokenizer *t, int32_t id) { return t->type[id]; }
int fr_tok_pre(const fr_tokenizer *t) { return t->pre; }
bool fr_tok_add_space_prefix(const fr_tokenizer *t) { return t->add_space_prefix; }
int32_t fr_tok_unk(const fr_tokenizer *t) { return t->unk; }

int fr_tokenizer_n_vocab(const fr_tokenizer *t) { return t ? t->n_vocab : 0; }
int32_t fr_tokenizer_bos(const fr_tokenizer *t) { return t ? t->bos : -1; }
int32_t fr_tokenizer_eos(const fr_tokenizer *t) { return t ? t->eos : -1; }
bool fr_tokenizer_add_bos(const fr_tokenizer *t) { return t && t->add_bos; }
bool fr_tokenizer_is_eog(const fr_tokenizer *t, int32_t token) {
    return t && token >= 0 && token < t->n_vocab && t->eog[token];
}

static bool tok_is(const fr_tokenizer *t, int32_t id, const char *s) {
    size_t n = strlen(s);
    return t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0;
}

static bool str_in(gguf_str s, const char *const *list) {
    for (; *list; list++)
        if (gguf_str_eq(s, *list)) return true;
    return false;
}

/* ------------------------------------------------------------ loading */

/* Optional integer token id under key: kept in *id when absent, negative or out of
 * range (llama.cpp warns and keeps its default in those cases). */
static void read_id(const gguf_file *f, const char *key, int n_vocab, int32_t *id) {
    const gguf_kv *kv = gguf_find_kv(f, key);
    if (!kv) return;
    int64_t v;
    switch (kv->type) {
    case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
        v = kv->v.u64 > (uint64_t)INT32_MAX ? -1 : (int64_t)kv->v.u64;
        break;
    case GGUF_VT_INT8: case GGUF_VT_INT16: case GGUF_VT_INT32: case GGUF_VT_INT64:
        v = kv->v.i64;
        break;
    default:
        return;
    }
    if (v >= 0 && v < n_vocab) *id = (int32_t)v;
}

static bool is_numeric_vtype(gguf_vtype vt) {
    return vt <= GGUF_VT_FLOAT32 || vt == GGUF_VT_UINT64 || vt == GGUF_VT_INT64 ||
           vt == GGUF_VT_FLOAT64;
}

/* Copy the token texts into one pool and index them. */
static int load_tokens(fr_tokenizer *t, const gguf_kv *kv, fr_err *err) {
    uint64_t n = kv->arr_n;
    size_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        size_t l = kv->arr_strs[i].len ? (size_t)kv->arr_strs[i].len : 32;
        if (l > UINT32_MAX - total) return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.tokens: texts too large");
        total += l;
    }
    t->pool = fr_malloc(total + 1);
    t->off = fr_malloc(n * sizeof *t->off);
    t->len = fr_malloc(n * sizeof *t->len);
    if (!t->pool || !t->off || !t->len) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    int rc = fr_strmap_init(&t->tok_map, (size_t)n);
    if (rc) return fr_err_set(err, rc, "tokenizer: out of memory");
    size_t pos = 0;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s = kv->arr_strs[i];
        t->off[i] = (uint32_t)pos;
        if (s.len == 0) {
            /* llama.cpp renames empty tokens so they can never match text */
            int w = snprintf(t->pool + pos, 32, "[EMPTY_%u]", (unsigned)i);
            t->len[i] = (uint32_t)w;
        } else {
            memcpy(t->pool + pos, s.ptr, (size_t)s.len);
            t->len[i] = (uint32_t)s.len;
        }
        pos += t->len[i];
        /* duplicates: llama.cpp rejects the file; we keep the first id, which is what
         * its map held for every lookup before that check existed */
        rc = fr_strmap_put(&t->tok_map, t->pool + t->off[i], t->len[i], (int32_t)i, NULL);
        if (rc) return fr_err_set(err, rc, "tokenizer: out of memory");
    }
    return FRUGAL_OK;
}

static int load_merges(fr_tokenizer *t, const gguf_file *f, fr_err *err) {
    const gguf_kv *kv = gguf_find_kv(f, "tokenizer.ggml.merges");
    if (!kv) return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.merges missing (required by gpt2 tokenizer)");
    if (kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.merges: not a string array");
    if (kv->arr_n > INT32_MAX) return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.merges: too many");
    size_t total = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        if (kv->arr_strs[i].len > UINT32_MAX - total)
            return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.merges: too large");
        total += (size_t)kv->arr_strs[i].len;
    }
    t->n_merges = (int)kv->arr_n;
    t->merge_pool = fr_malloc(total + 1);
    t->merge_split = fr_malloc((kv->arr_n ? kv->arr_n : 1) * sizeof *t->merge_split);
    int rc = fr_strmap_init(&t->merge_map, (size_t)kv->arr_n);
    if (!t->merge_pool || !t->merge_split || rc) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    size_t pos = 0;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        gguf_str s = kv->arr_strs[i];
        char *line = t->merge_pool + pos;
        if (s.len) memcpy(line, s.ptr, (size_t)s.len);
        pos += (size_t)s.len;
        /* llama.cpp splits at the first space found from index 1 on, so a leading
         * space belongs to the left part; a line without one is never matchable */
        const char *sp = s.len > 1 ? memchr(line + 1, ' ', (size_t)s.len - 1) : NULL;
        t->merge_split[i] = sp ? (uint32_t)(sp - line) : UINT32_MAX;
        if (!sp) continue;
        rc = fr_strmap_put(&t->merge_map, line, (size_t)s.len, (int32_t)i, NULL);
        if (rc) return fr_err_set(err, rc, "tokenizer: out of memory");
    }
    return FRUGAL_OK;
}

/* Parse the hex digits of a byte token "<0xNN>" (llama.cpp: strtol of text[3..5)). */
static uint8_t byte_of_token(const char *s, size_t n) {
    unsigned v = 0;
    for (size_t i = 3; i < 5 && i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else break;
        v = v * 16 + d;
    }
    return (uint8_t)v;
}

/* Append token id's piece (as llama.cpp renders it with special = true) to buf. */
static int build_piece(const fr_tokenizer *t, int32_t id, char **buf, size_t *n, size_t *cap) {
    const char *s = t->pool + t->off[id];
    size_t len = t->len[id];
    unsigned a = t->attr[id];
    /* worst cases: the text itself, or (BPE) an "[UNK_BYTE_0x..]" wrapper per code point */
    size_t need = *n + len * 3 + 64 + (t->family == FAM_BPE ? len * (len + 24) : 0);
    if (need > *cap) {
        size_t nc = *cap ? *cap : 1 << 16;
        while (nc < need) nc *= 2;
        char *nb = fr_realloc(*buf, nc);
        if (!nb) return FRUGAL_E_NOMEM;
        *buf = nb;
        *cap = nc;
    }
    char *o = *buf + *n;
    if (a & (A_UNKNOWN | A_CONTROL | A_USER_DEFINED)) {
        memcpy(o, s, len);
        *n += len;
    } else if (a & A_NORMAL) {
        if (t->family == FAM_SPM) {
            size_t w = 0;
            for (size_t i = 0; i < len; i++) {
                if (i + 2 < len && (uint8_t)s[i] == 0xE2 && (uint8_t)s[i + 1] == 0x96 && (uint8_t)s[i + 2] == 0x81) {
                    o[w++] = ' ';
                    i += 2;
                } else {
                    o[w++] = s[i];
                }
            }
            *n += w;
        } else {
            /* byte-level BPE: every code point stands for one byte */
            size_t w = 0;
            static const uint8_t lens[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
            for (size_t i = 0; i < len;) {
                size_t cl = lens[(uint8_t)s[i] >> 4];
                if (cl > len - i) cl = len - i;
                int r = fr_bpe_text_to_bytes(s + i, cl, o + w, 4);
                if (r >= 0) {
                    w += (size_t)r;
                } else {
                    w += (size_t)sprintf(o + w, "[UNK_BYTE_0x");
                    for (size_t k = 0; k < cl; k++) w += (size_t)sprintf(o + w, "%02x", (uint8_t)s[i + k]);
                    memcpy(o + w, s, len);
                    w += len;
                    o[w++] = ']';
                }
                i += cl;
            }
            *n += w;
        }
    } else if (a & A_BYTE) {
        o[0] = (char)byte_of_token(s, len);
        *n += 1;
    }
    /* UNDEFINED / UNUSED-only tokens render as nothing */
    return FRUGAL_OK;
}

/* Apply llama.cpp's text-based attribute fixes and compute the EOG set. */
static void derive_specials(fr_tokenizer *t, int32_t fim[6]) {
    static const char *const eot_names[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",
        "<|endoftext|>", "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
        "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "<end_of_utterance>", NULL };
    static const char *const eom_names[] = { "<|eom_id|>", NULL };
    static const char *const fim_names[6][9] = {
        { "<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>",
          "<PRE>", "\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL },
        { "<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "hole\xef\xbd\x9c>",
          "<SUF>", "\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL },
        { "<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>",
          "<MID>", "\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL },
        { "<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL },
        { "<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL },
        { "<|file_sep|>", NULL },
    };
    static const char *const eog_names[] = { "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>",
        "<|flush|>", "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>",
        "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
        "<\xef\xbd\x9c" "end\xe2\x96\x81" "of\xe2\x96\x81" "sentence\xef\xbd\x9c>", "[e~[", NULL };

    /* llama.cpp walks an unordered_map here; we walk ids in order (only matters when
     * a vocabulary holds two candidate texts for the same role) */
    for (int32_t id = 0; id < t->n_vocab; id++) {
        gguf_str s = { t->pool + t->off[id], t->len[id] };
        if (t->eot < 0 && str_in(s, eot_names)) { t->eot = id; t->attr[id] |= A_CONTROL; }
        if (t->eom < 0 && str_in(s, eom_names)) { t->eom = id; t->attr[id] |= A_CONTROL; }
        for (int k = 0; k < 6; k++)
            if (fim[k] < 0 && str_in(s, fim_names[k])) { fim[k] = id; t->attr[id] |= A_CONTROL; }
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        /* control tokens named "unused" are marked unused */
        if ((t->attr[id] & A_CONTROL) && memmem(t->pool + t->off[id], t->len[id], "unused", 6))
            t->attr[id] |= A_UNUSED;
    }
    for (int k = 3; k < 6; k++)   /* FIM pad / repo / file-sep end generation */
        if (fim[k] >= 0) t->eog[fim[k]] = 1;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        gguf_str s = { t->pool + t->off[id], t->len[id] };
        if (str_in(s, eog_names)) { t->eog[id] = 1; t->attr[id] |= A_CONTROL; }
    }
    for (int32_t id = 0; id < t->n_vocab; id++) {
        /* gpt-oss: these are always rendered */
        if (tok_is(t, id, "<|channel|>") || tok_is(t, id, "<|message|>") || tok_is(t, id, "<|start|>") ||
            tok_is(t, id, "<|constrain|>"))
            t->attr[id] = A_USER_DEFINED;
    }
    if (t->eos >= 0) t->eog[t->eos] = 1;
    if (t->eot >= 0) t->eog[t->eot] = 1;
    if (t->eom >= 0) t->eog[t->eom] = 1;

    /* o200k_harmony / solar-open: "<|end|>" is not an end of generation there */
    int32_t ret = fr_tok_find(t, "<|return|>", 10), call = fr_tok_find(t, "<|call|>", 8);
    int32_t calls = fr_tok_find(t, "<|calls|>", 9), flush = fr_tok_find(t, "<|flush|>", 9);
    int32_t end = fr_tok_find(t, "<|end|>", 7);
    bool has_ret = ret >= 0 && t->eog[ret], has_call = (call >= 0 && t->eog[call]) || (calls >= 0 && t->eog[calls]);
    bool has_flush = flush >= 0 && t->eog[flush], has_end = end >= 0 && t->eog[end];
    if ((has_ret && has_call && has_end) || (has_call && has_flush && has_end)) {
        t->eog[end] = 0;
        t->attr[end] = A_USER_DEFINED;
    }
    /* gemma4 / paddleocr: "</s>" is a normal token when "<|tool_response>" exists */
    int32_t tr = fr_tok_find(t, "<|tool_response>", 16), s_end = fr_tok_find(t, "</s>", 4);
    if (tr >= 0 && t->eog[tr] && s_end >= 0 && t->eog[s_end]) {
        t->eog[s_end] = 0;
        t->attr[s_end] = A_NORMAL;
    }
}

static int cmp_special_len(const void *pa, const void *pb, void *ctx) {
    const fr_tokenizer *t = ctx;
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    if (t->len[a] != t->len[b]) return t->len[a] > t->len[b] ? -1 : 1;
    return a < b ? -1 : a > b;   /* deterministic among equal lengths */
}

static bool contains_ci(gguf_str s, const char *needle) {
    size_t n = strlen(needle);
    for (uint64_t i = 0; i + n <= s.len; i++) {
        size_t k = 0;
        while (k < n && (char)((s.ptr[i + k] >= 'A' && s.ptr[i + k] <= 'Z') ? s.ptr[i + k] + 32 : s.ptr[i + k]) == needle[k]) k++;
        if (k == n) return true;
    }
    return false;
}

static void set_attr_by_text(fr_tokenizer *t, const char *text, unsigned bit, bool on) {
    int32_t id = fr_tok_find(t, text, strlen(text));
    if (id < 0) return;
    if (on) t->attr[id] |= (uint16_t)bit;
    else t->attr[id] &= (uint16_t)~bit;
}

/* llama.cpp's hard-coded per-model lstrip/rstrip attributes. */
static void strip_rules(fr_tokenizer *t, const gguf_file *f) {
    gguf_str name = { "", 0 }, pre = { "", 0 }, arch = { "", 0 };
    const gguf_kv *kv;
    if ((kv = gguf_find_kv(f, "general.name")) && kv->type == GGUF_VT_STRING) name = kv->v.str;
    if ((kv = gguf_find_kv(f, "tokenizer.ggml.pre")) && kv->type == GGUF_VT_STRING) pre = kv->v.str;
    if ((kv = gguf_find_kv(f, "general.architecture")) && kv->type == GGUF_VT_STRING) arch = kv->v.str;
    /* the pre and arch tests are case-sensitive substring tests, the name test is on
     * the lower-cased name */
    if (memmem(pre.ptr, pre.len, "jina-v2-de", 10) || memmem(pre.ptr, pre.len, "jina-v2-es", 10) ||
        memmem(pre.ptr, pre.len, "jina-v2-code", 12) || memmem(arch.ptr, arch.len, "nomic-bert-moe", 14) ||
        memmem(arch.ptr, arch.len, "jina-bert-v3", 12)) {
        set_attr_by_text(t, "<mask>", A_LSTRIP, true);
    } else if (contains_ci(name, "phi-3") || contains_ci(name, "phi3")) {
        for (int i = 0; i < t->n_special; i++) t->attr[t->special[i]] |= A_RSTRIP;
        set_attr_by_text(t, "</s>", A_RSTRIP, true);
        set_attr_by_text(t, "<unk>", A_RSTRIP, false);
        set_attr_by_text(t, "<s>", A_RSTRIP, false);
        set_attr_by_text(t, "<|endoftext|>", A_RSTRIP, false);
    } else if (contains_ci(name, "modern-bert")) {
        set_attr_by_text(t, "[MASK]", A_LSTRIP, true);
    }
}

/* BPE pre-tokenizer names whose models do not clean up spaces when detokenizing
 * (llama.cpp sets clean_spaces = false for them; true for the other BPE ones). */
static const char *const no_clean_pre[] = { "deepseek-llm", "deepseek-coder", "deepseek-v3", "spark2_5",
    "youtu", "sarvam-moe", "command-r", "qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "qwen35",
    "poro-chat", "viking", "tekken", "smollm", "chameleon", "gpt-4o", "llama4", "kanana2", "talkie",
    "granite-embed-multi-97m", "tiny_aya", "cohere2moe", "superbpe", "trillion", "granite-docling",
    "bailingmoe", "bailingmoe2", "llada-moe", "seed-coder", "hunyuan", "hunyuan-dense", "hy_v4",
    "joyai-llm", "kimi-k2", "ufakzeka", "grok-2", "afmoe", "laguna", "minimax-m2", "solar-open", NULL };
/* ...and those that add BOS by default. */
static const char *const bos_pre[] = { "llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
    "midm-2.0", "lfm2", "jina-v5-nano", "tekken", "chameleon", NULL };

static int load_impl(fr_tokenizer *t, const gguf_file *f, fr_err *err) {
    gguf_str model;
    int rc = gguf_get_str(f, "tokenizer.ggml.model", &model, err);
    if (rc) return rc;
    const gguf_kv *pre_kv = gguf_find_kv(f, "tokenizer.ggml.pre");
    if (pre_kv && pre_kv->type != GGUF_VT_STRING)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.pre: not a string");
    gguf_str pre = pre_kv ? pre_kv->v.str : (gguf_str){ "", 0 };

    if (gguf_str_eq(model, "llama")) {
        t->family = FAM_SPM;
        t->bos = 1; t->eos = 2; t->unk = 0;
        t->add_space_prefix = true;
        t->add_bos = true;
    } else if (gguf_str_eq(model, "gpt2")) {
        t->family = FAM_BPE;
        t->bos = 11; t->eos = 11; t->unk = -1;
        t->clean_spaces = true;
        if (pre.len && !gguf_str_eq(pre, "default")) {
            int p = fr_bpe_pre_from_name(pre.ptr, (size_t)pre.len);
            if (p < 0)
                return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "unknown pre-tokenizer type: '%.*s'",
                                  (int)(pre.len > 200 ? 200 : pre.len), pre.ptr);
            t->pre = p;
        }
        if (str_in(pre, no_clean_pre)) t->clean_spaces = false;
        if (str_in(pre, bos_pre)) t->add_bos = true;
        if (gguf_str_eq(pre, "glm4") || gguf_str_eq(pre, "chatglm-bpe")) t->bos = -1;
    } else {
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "unsupported tokenizer model '%.*s'",
                          (int)(model.len > 200 ? 200 : model.len), model.ptr);
    }
    rc = gguf_get_bool_opt(f, "tokenizer.ggml.add_space_prefix", t->add_space_prefix, &t->add_space_prefix, err);
    if (rc) return rc;

    const gguf_kv *toks = gguf_find_kv(f, "tokenizer.ggml.tokens");
    if (!toks) return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.tokens missing");
    if (toks->type != GGUF_VT_ARRAY || toks->arr_type != GGUF_VT_STRING)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.tokens: not a string array");
    if (toks->arr_n == 0 || toks->arr_n > INT32_MAX / 2)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.tokens: bad count %llu",
                          (unsigned long long)toks->arr_n);
    int n = (int)toks->arr_n;
    t->n_vocab = n;

    const gguf_kv *scores = gguf_find_kv(f, "tokenizer.ggml.scores");
    if (scores && (scores->type != GGUF_VT_ARRAY || !is_numeric_vtype(scores->arr_type) || scores->arr_n < (uint64_t)n))
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.scores: not a numeric array of %d", n);
    const gguf_kv *types = gguf_find_kv(f, "tokenizer.ggml.token_type");
    if (types && (types->type != GGUF_VT_ARRAY || !is_numeric_vtype(types->arr_type) || types->arr_n < (uint64_t)n))
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.token_type: not an integer array of %d", n);

    if ((rc = load_tokens(t, toks, err))) return rc;
    t->score = fr_malloc((size_t)n * sizeof *t->score);
    t->type = fr_malloc((size_t)n);
    t->attr = fr_malloc((size_t)n * sizeof *t->attr);
    t->eog = fr_calloc((size_t)n, 1);
    if (!t->score || !t->type || !t->attr || !t->eog) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < n; i++) {
        t->score[i] = scores ? (float)gguf_arr_f64(scores, (uint64_t)i) : 0.0f;
        int64_t ty = types ? gguf_arr_i64(types, (uint64_t)i) : FR_TOKTYPE_NORMAL;
        uint16_t a;
        switch (ty) {
        case FR_TOKTYPE_UNKNOWN: a = A_UNKNOWN; break;
        case FR_TOKTYPE_UNUSED: a = A_UNUSED; break;
        case FR_TOKTYPE_NORMAL: a = A_NORMAL; break;
        case FR_TOKTYPE_CONTROL: a = A_CONTROL; break;
        case FR_TOKTYPE_USER_DEFINED: a = A_USER_DEFINED; break;
        case FR_TOKTYPE_BYTE: a = A_BYTE; break;
        default: a = 0; ty = FR_TOKTYPE_UNDEFINED; break;
        }
        t->attr[i] = a;
        t->type[i] = (uint8_t)ty;
    }
    if (t->family == FAM_BPE && (rc = load_merges(t, f, err))) return rc;

    /* special ids: defaults out of range are disabled, then metadata overrides */
    int32_t fim[6] = { -1, -1, -1, -1, -1, -1 };
    t->eot = t->eom = t->pad = -1;
    int32_t *ids[] = { &t->bos, &t->eos, &t->unk };
    for (size_t i = 0; i < 3; i++)
        if (*ids[i] >= n) *ids[i] = -1;
    read_id(f, "tokenizer.ggml.bos_token_id", n, &t->bos);
    read_id(f, "tokenizer.ggml.eos_token_id", n, &t->eos);
    read_id(f, "tokenizer.ggml.eot_token_id", n, &t->eot);
    read_id(f, "tokenizer.ggml.eom_token_id", n, &t->eom);
    read_id(f, "tokenizer.ggml.unknown_token_id", n, &t->unk);
    read_id(f, "tokenizer.ggml.padding_token_id", n, &t->pad);
    static const char *const fim_keys[6][2] = {
        { "tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.prefix_token_id" },
        { "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.suffix_token_id" },
        { "tokenizer.ggml.fim_mid_token_id", "tokenizer.ggml.middle_token_id" },
        { "tokenizer.ggml.fim_pad_token_id", NULL },
        { "tokenizer.ggml.fim_rep_token_id", NULL },
        { "tokenizer.ggml.fim_sep_token_id", NULL },
    };
    for (int k = 0; k < 6; k++) {
        read_id(f, fim_keys[k][0], n, &fim[k]);
        if (fim_keys[k][1]) read_id(f, fim_keys[k][1], n, &fim[k]);   /* deprecated, read last */
    }
    if ((rc = gguf_get_bool_opt(f, "tokenizer.ggml.add_bos_token", t->add_bos, &t->add_bos, err))) return rc;
    if ((rc = gguf_get_bool_opt(f, "tokenizer.ggml.add_eos_token", t->add_eos, &t->add_eos, err))) return rc;
    if (t->add_bos && t->bos < 0)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.add_bos_token is true, but no valid bos_token_id");
    if (t->add_eos && t->eos < 0)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tokenizer.ggml.add_eos_token is true, but no valid eos_token_id");

    derive_specials(t, fim);
    for (int i = 0; i < n; i++) {   /* keep the exported type in line with the attributes */
        uint16_t a = t->attr[i];
        if (a & A_CONTROL) t->type[i] = FR_TOKTYPE_CONTROL;
        else if (a & A_USER_DEFINED) t->type[i] = FR_TOKTYPE_USER_DEFINED;
        else if (a & A_NORMAL) t->type[i] = FR_TOKTYPE_NORMAL;
    }

    t->special = fr_malloc((size_t)n * sizeof *t->special);
    if (!t->special) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < n; i++)
        if (t->attr[i] & (A_CONTROL | A_USER_DEFINED | A_UNKNOWN)) t->special[t->n_special++] = i;
    qsort_r(t->special, (size_t)t->n_special, sizeof *t->special, cmp_special_len, t);

    size_t pn = 0, pcap = 0;
    t->piece_off = fr_malloc((size_t)n * sizeof *t->piece_off);
    t->piece_len = fr_malloc((size_t)n * sizeof *t->piece_len);
    if (!t->piece_off || !t->piece_len) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    for (int i = 0; i < n; i++) {
        size_t before = pn;
        if (build_piece(t, i, &t->piece_pool, &pn, &pcap) != FRUGAL_OK || pn > UINT32_MAX)
            return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
        t->piece_off[i] = (uint32_t)before;
        t->piece_len[i] = (uint32_t)(pn - before);
    }
    strip_rules(t, f);
    return FRUGAL_OK;
}

int fr_tokenizer_load(const gguf_file *f, fr_tokenizer **out, fr_err *err) {
    if (!out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "tokenizer: NULL output");
    *out = NULL;
    if (!f) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "tokenizer: NULL file");
    fr_tokenizer *t = fr_calloc(1, sizeof *t);
    if (!t) return fr_err_set(err, FRUGAL_E_NOMEM, "tokenizer: out of memory");
    int rc = load_impl(t, f, err);
    if (rc != FRUGAL_OK) {
        fr_tokenizer_free(t);
        return rc;
    }
    *out = t;
    return FRUGAL_OK;
}

void fr_tokenizer_free(fr_tokenizer *t) {
    if (!t) return;
    fr_strmap_free(&t->tok_map);
    fr_strmap_free(&t->merge_map);
    free(t->pool); free(t->off); free(t->len); free(t->score); free(t->type); free(t->attr);
    free(t->eog); free(t->piece_pool); free(t->piece_off); free(t->piece_len);
    free(t->merge_pool); free(t->merge_split); free(t->special);
    free(t);
}

/* ------------------------------------------------------------ tokenizing */

typedef struct frag {
    int32_t token;        /* >= 0: a special token; -1: raw text [off, off+len) */
    size_t off, len;
} frag;

typedef struct fragvec {
    frag *v;
    size_t n, cap;
} fragvec;

static int frag_push(fragvec *fv, frag f) {
    if (fv->n == fv->cap) {
        size_t nc = fv->cap ? fv->cap * 2 : 16;
        frag *nv = fr_realloc(fv->v, nc * sizeof *nv);
        if (!nv) return FRUGAL_E_NOMEM;
        fv->v = nv;
        fv->cap = nc;
    }
    fv->v[fv->n++] = f;
    return FRUGAL_OK;
}

/* isspace() in the C locale, without its undefined behaviour on negative chars */
static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* llama.cpp's tokenizer_st_partition: for each special token in turn (longest
 * first) split every remaining raw-text fragment around its occurrences, trimming
 * whitespace next to tokens flagged lstrip/rstrip. Without parse_special, CONTROL
 * and UNKNOWN tokens are left in the text, but USER_DEFINED ones are still split
 * out (as Hugging Face tokenizers do with added tokens). */
static int partition(const fr_tokenizer *t, const char *text, size_t len, bool parse_special, fragvec *out) {
    fragvec cur = { 0 }, next = { 0 };
    int rc = FRUGAL_OK;
    if (len > 0) rc = frag_push(&cur, (frag){ -1, 0, len });
    for (int si = 0; rc == FRUGAL_OK && si < t->n_special && cur.n > 0; si++) {
        int32_t id = t->special[si];
        unsigned a = t->attr[id];
        if (!parse_special && (a & (A_CONTROL | A_UNKNOWN))) continue;
        const char *st = t->pool + t->off[id];
        size_t sl = t->len[id];
        next.n = 0;
        for (size_t fi = 0; rc == FRUGAL_OK && fi < cur.n; fi++) {
            frag fr = cur.v[fi];
            if (fr.token >= 0) { rc = frag_push(&next, fr); continue; }
            size_t off = fr.off, rem = fr.len;
            for (;;) {
                const char *m = rem >= sl ? memmem(text + off, rem, st, sl) : NULL;
                if (!m) {
                    if (rem > 0) rc = frag_push(&next, (frag){ -1, off, rem });
                    break;
                }
                size_t mpos = (size_t)(m - text);
                size_t left = mpos - off;
                if (a & A_LSTRIP)
                    while (left > 0 && is_space(text[off + left - 1])) left--;
                if (left > 0 && (rc = frag_push(&next, (frag){ -1, off, left }))) break;
                if ((rc = frag_push(&next, (frag){ id, 0, 0 }))) break;
                size_t roff = mpos + sl, rlen = off + rem - roff;
                if (a & A_RSTRIP)
                    while (rlen > 0 && is_space(text[roff])) { roff++; rlen--; }
                off = roff;
                rem = rlen;
                if (rem == 0) break;
            }
        }
        fragvec tmp = cur; cur = next; next = tmp;
    }
    free(next.v);
    if (rc != FRUGAL_OK) { free(cur.v); return rc; }
    *out = cur;
    return FRUGAL_OK;
}

static int tokenize_vec(const fr_tokenizer *t, const char *text, size_t len, bool add_special,
                        bool parse_special, fr_tokvec *out) {
    fragvec fv = { 0 };
    int rc = partition(t, text, len, parse_special, &fv);
    if (rc) return rc;
    char *buf = NULL;
    size_t buf_cap = 0;
    if (add_special && t->add_bos) rc = fr_tokvec_push(out, t->bos);
    bool prev_special = true;   /* SPM: the first fragment gets the space prefix too */
    for (size_t i = 0; rc == FRUGAL_OK && i < fv.n; i++) {
        frag fr = fv.v[i];
        if (fr.token >= 0) {
            rc = fr_tokvec_push(out, fr.token);
            prev_special = true;
        } else if (t->family == FAM_SPM) {
            /* llama.cpp prefixes a space to every text fragment that starts the input
             * or follows a special token */
            size_t pre = t->add_space_prefix && prev_special ? 1 : 0;
            if (!buf || fr.len + pre > buf_cap) { /* never NULL below, even for an empty fragment */
                char *nb = fr_realloc(buf, fr.len + pre + 1);
                if (!nb) { rc = FRUGAL_E_NOMEM; break; }
                buf = nb;
                buf_cap = fr.len + pre + 1;
            }
            if (pre) buf[0] = ' ';
            memcpy(buf + pre, text + fr.off, fr.len);
            rc = fr_spm_encode(t, buf, fr.len + pre, out);
            prev_special = false;
        } else {
            rc = fr_bpe_encode(t, text + fr.off, fr.len, out);
        }
    }
    if (rc == FRUGAL_OK && add_special && t->add_eos) rc = fr_tokvec_push(out, t->eos);
    free(buf);
    free(fv.v);
    return rc;
}

int fr_tokenize(const fr_tokenizer *t, const char *text, size_t len, bool add_special,
                bool parse_special, int32_t *out, int n_max) {
    if (!t || (!text && len) || (!out && n_max > 0)) return INT32_MIN;
    fr_tokvec v = { 0 };
    int rc = tokenize_vec(t, text, len, add_special, parse_special, &v);
    if (rc != FRUGAL_OK || v.n > (size_t)INT32_MAX) {
        free(v.ids);
        return INT32_MIN;
    }
    int n = (int)v.n;
    if (n > n_max) {
        free(v.ids);
        return -n;
    }
    if (n) memcpy(out, v.ids, (size_t)n * sizeof *out);
    free(v.ids);
    return n;
}

/* ------------------------------------------------------------ pieces */

/* token_to_piece with llama.cpp's lstrip argument (skip up to lstrip leading spaces). */
static int piece_impl(const fr_tokenizer *t, int32_t token, char *buf, int len, int lstrip, bool special) {
    if (!t || token < 0 || token >= t->n_vocab) return 0;
    if (!special && (t->attr[token] & (A_UNKNOWN | A_CONTROL))) return 0;
    const char *p = t->piece_pool + t->piece_off[token];
    size_t n = t->piece_len[token];
    for (int i = 0; i < lstrip && n && *p == ' '; i++) { p++; n--; }
    if (n > (size_t)INT32_MAX) return INT32_MIN;
    if (len < 0 || (size_t)len < n) return -(int)n;
    if (n) memcpy(buf, p, n);
    return (int)n;
}

int fr_token_to_piece(const fr_tokenizer *t, int32_t token, char *buf, int len, bool special) {
    if (!buf && len > 0) return INT32_MIN;
    return piece_impl(t, token, buf, len, 0, special);
}

/* llama.cpp's clean_up_tokenization_spaces passes over text[0..total), in place. */
static int32_t clean_spaces(char *text, int32_t total) {
    int32_t t1 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < t1; i++) {   /* " ?", " !", " .", " ," lose the space */
        char x = text[i];
        if (text[i - 1] == ' ' && (x == '?' || x == '!' || x == '.' || x == ','))
            total--;
        text[total++] = x;
    }
    int32_t t2 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < t2; i++) {   /* " ' " -> "'" */
        char x = text[i];
        if (x == '\'' && i + 1 < t2 && text[i - 1] == ' ' && text[i + 1] == ' ') {
            total--;
            text[++i] = '\0';
        }
        text[total++] = x;
    }
    int32_t t3 = total;
    total = total ? 1 : 0;
    for (int32_t i = 1; i < t3; i++) {   /* " 's", " 'm", " 're", " 've" lose the space */
        char x = text[i];
        if (text[i - 1] == ' ' && x == '\'' && i + 1 < t3) {
            char x1 = text[i + 1];
            if (x1 == 's' || x1 == 'm') total--;
            else if (i + 2 < t3 && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e')))
                total--;
        }
        text[total++] = x;
    }
    return total;
}

int fr_detokenize(const fr_tokenizer *t, const int32_t *tokens, int n, char *buf, int len,
                  bool remove_special, bool unparse_special) {
    if (!t || (!tokens && n > 0) || (!buf && len > 0) || n < 0) return INT32_MIN;
    if (len < 0) len = 0;
    int32_t avail = len;
    int64_t total = 0;
    bool remove_space = t->add_space_prefix;
    if (remove_special && t->add_bos && n > 0 && tokens[0] == t->bos) {
        remove_space = false;
        n--;
        tokens++;
    }
    if (remove_special && t->add_eos && n > 0 && tokens[n - 1] == t->eos) n--;
    char *o = buf;
    for (int i = 0; i < n; i++) {
        int r = piece_impl(t, tokens[i], o, avail, remove_space ? 1 : 0, unparse_special);
        remove_space = false;
        if (r == INT32_MIN) return INT32_MIN;
        if (r < 0) {
            avail = 0;
            total -= r;
        } else if (r > 0) {
            avail -= r;
            o += r;
            total += r;
        }
        if (total > INT32_MAX) return INT32_MIN;
    }
    if (total > len) return -(int)total;
    int32_t tot = (int32_t)total;
    if (t->clean_spaces) tot = clean_spaces(buf, tot);
    if (tot < len) buf[tot] = '\0';
    return tot;
}
