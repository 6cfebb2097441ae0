/* cv_vocab.c - the tokenizer.* keys of a converted model, as llama.cpp's converter
 * writes them (base.py _create_vocab_sentencepiece / get_vocab_base, vocab.py
 * SpecialVocab):
 *  - SentencePiece (tokenizer.model, a protobuf parsed here by hand): pieces, scores
 *    and types (unknown 2, control 3, unused 5, byte 6, anything else 1), padded to
 *    config.json's vocab_size with "[PAD<i>]"; then tokenizer_config.json's
 *    added_tokens_decoder entries overwrite theirs with score -1000 and type 3
 *    (control: special, or looking special) or 4 (user-defined);
 *  - byte-level BPE (tokenizer.json): tokens by id from model.vocab and added_tokens,
 *    ids with no token "[PAD<i>]" type 5, added tokens 3 or 4, the rest 1; merges as
 *    "a b" (pairs joined, spaces inside a part written as U+0120); the pre-tokenizer
 *    name recognised from its regex;
 *  - special ids: tokenizer_config.json's bos/eos/unk/sep/pad/cls/mask token strings
 *    looked up in tokenizer.json's added_tokens, then config.json's *_token_id; the
 *    add_*_token flags and the chat template from tokenizer_config.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "convert/cv_internal.h"
#include "convert/hfjson.h"

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

typedef struct vocab {
    int64_t n;
    char **tok;      /* owned strings */
    float *score;    /* NULL for BPE */
    int32_t *type;
} vocab;

static void vocab_free(vocab *v) {
    if (v->tok)
        for (int64_t i = 0; i < v->n; i++) free(v->tok[i]);
    free(v->tok);
    free(v->score);
    free(v->type);
}

static int vocab_init(vocab *v, int64_t n, bool scores, fr_err *err) {
    memset(v, 0, sizeof *v);
    if (n <= 0 || n > (1 << 24)) return fr_err_set(err, FRUGAL_E_FORMAT, "vocabulary size %lld out of range", (long long)n);
    v->n = n;
    v->tok = fr_calloc((size_t)n, sizeof *v->tok);
    v->type = fr_calloc((size_t)n, sizeof *v->type);
    v->score = scores ? fr_calloc((size_t)n, sizeof *v->score) : NULL;
    if (!v->tok || !v->type || (scores && !v->score)) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        char b[32];
        snprintf(b, sizeof b, "[PAD%lld]", (long long)i);
        if (!(v->tok[i] = fr_strdup(b))) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        v->type[i] = TT_UNUSED;
        if (scores) v->score[i] = -10000.0f;
    }
    return FRUGAL_OK;
}

static int set_tok(vocab *v, int64_t id, const char *s, size_t len, fr_err *err) {
    char *p = fr_malloc(len + 1);
    if (!p) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    memcpy(p, s, len);
    p[len] = 0;
    free(v->tok[id]);
    v->tok[id] = p;
    return FRUGAL_OK;
}

/* ------------------------------------------------------------ tokenizer.model */

typedef struct pb { const uint8_t *p, *end; } pb;

static bool pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int s = 0; s < 64 && b->p < b->end; s += 7) {
        uint8_t c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << s;
        if (!(c & 0x80)) return true;
    }
    return false;
}

/* Skip a field of wire type wt. */
static bool pb_skip(pb *b, unsigned wt) {
    uint64_t v;
    switch (wt) {
    case 0: return pb_varint(b, &v);
    case 1: if (b->end - b->p < 8) return false; b->p += 8; return true;
    case 5: if (b->end - b->p < 4) return false; b->p += 4; return true;
    case 2: if (!pb_varint(b, &v) || v > (uint64_t)(b->end - b->p)) return false; b->p += v; return true;
    default: return false;
    }
}

/* One SentencePiece message: piece (1), score (2, float), type (3, enum). */
static bool pb_piece(pb b, const char **s, size_t *len, float *score, int *type) {
    *s = "";
    *len = 0;
    *score = 0.0f;
    *type = 1;
    while (b.p < b.end) {
        uint64_t key, v;
        if (!pb_varint(&b, &key)) return false;
        unsigned f = (unsigned)(key >> 3), wt = (unsigned)(key & 7);
        if (f == 1 && wt == 2) {
            if (!pb_varint(&b, &v) || v > (uint64_t)(b.end - b.p)) return false;
            *s = (const char *)b.p;
            *len = (size_t)v;
            b.p += v;
        } else if (f == 2 && wt == 5) {
            if (b.end - b.p < 4) return false;
            memcpy(score, b.p, 4);
            b.p += 4;
        } else if (f == 3 && wt == 0) {
            if (!pb_varint(&b, &v)) return false;
            *type = (int)v;
        } else if (!pb_skip(&b, wt)) {
            return false;
        }
    }
    return true;
}

static int32_t spm_type(int t) {
    switch (t) {
    case 2: return TT_UNKNOWN;
    case 3: return TT_CONTROL;
    case 5: return TT_UNUSED;
    case 6: return TT_BYTE;
    default: return TT_NORMAL;
    }
}

static int read_bytes(const char *path, uint8_t **buf, size_t *len, fr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fr_err_set(err, FRUGAL_E_IO, "%s: cannot open", path);
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || n > (256L << 20) || fseek(f, 0, SEEK_SET)) { fclose(f); return fr_err_set(err, FRUGAL_E_IO, "%s: not readable", path); }
    *buf = fr_malloc((size_t)n + 1);
    if (!*buf) { fclose(f); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
    size_t got = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) { free(*buf); return fr_err_set(err, FRUGAL_E_IO, "%s: short read", path); }
    *len = (size_t)n;
    return FRUGAL_OK;
}

/* Count (pass 0) or store (pass 1) the pieces of a ModelProto. */
static int spm_pass(const uint8_t *buf, size_t len, vocab *v, int64_t *count, const char *path, fr_err *err) {
    pb b = {buf, buf + len};
    int64_t i = 0;
    while (b.p < b.end) {
        uint64_t key, l;
        if (!pb_varint(&b, &key)) goto bad;
        if ((key >> 3) == 1 && (key & 7) == 2) {
            if (!pb_varint(&b, &l) || l > (uint64_t)(b.end - b.p)) goto bad;
            pb sub = {b.p, b.p + l};
            b.p += l;
            const char *s;
            size_t sl;
            float sc;
            int ty;
            if (!pb_piece(sub, &s, &sl, &sc, &ty)) goto bad;
            if (v && i < v->n) {
                int rc = set_tok(v, i, s, sl, err);
                if (rc) return rc;
                v->score[i] = sc;
                v->type[i] = spm_type(ty);
            }
            i++;
        } else if (!pb_skip(&b, (unsigned)(key & 7))) {
            goto bad;
        }
    }
    *count = i;
    if (i == 0) return fr_err_set(err, FRUGAL_E_FORMAT, "%s: no pieces (not a SentencePiece model?)", path);
    return FRUGAL_OK;
bad:
    return fr_err_set(err, FRUGAL_E_FORMAT, "%s: malformed protobuf (not a SentencePiece model?)", path);
}

/* llama.cpp's does_token_look_special. */
static bool looks_special(const char *s) {
    size_t n = strlen(s);
    if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]")) return true;
    if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>")) return true;
    if (n >= 6 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>")) return true;
    return n >= 8 && !strncmp(s, "<unused", 7) && s[n - 1] == '>';
}

/* U+2581 (▁) -> ' ' for user-defined tokens (the converter pre-normalizes them). */
static void unspace(char *s) {
    char *o = s;
    for (char *p = s; *p;) {
        if (!strncmp(p, "\xe2\x96\x81", 3)) { *o++ = ' '; p += 3; }
        else *o++ = *p++;
    }
    *o = 0;
}

static int apply_added_decoder(vocab *v, const cJSON *tcfg, fr_err *err) {
    const cJSON *dec = tcfg ? hj_obj(tcfg, "added_tokens_decoder") : NULL;
    if (!dec) return FRUGAL_OK;
    for (const cJSON *e = dec->child; e; e = e->next) {
        char *end;
        long long id = strtoll(e->string, &end, 10);
        const char *content = hj_str(e, "content");
        if (*end || id < 0 || !content || id >= v->n) continue;
        bool special = false;
        hj_bool(e, "special", &special);
        int rc = set_tok(v, id, content, strlen(content), err);
        if (rc) return rc;
        if (special || looks_special(content)) v->type[id] = TT_CONTROL;
        else { unspace(v->tok[id]); v->type[id] = TT_USER; }
        if (v->score) v->score[id] = -1000.0f;
    }
    return FRUGAL_OK;
}

static int vocab_spm(cv_ctx *c, const char *path, const cJSON *tcfg, vocab *v, fr_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    int64_t n = 0;
    int rc = read_bytes(path, &buf, &len, err);
    if (rc) return rc;
    if ((rc = spm_pass(buf, len, NULL, &n, path, err))) { free(buf); return rc; }
    int64_t size = n;
    cv_cfg_int(c, "vocab_size", &size);
    if (!(rc = vocab_init(v, size, true, err))) rc = spm_pass(buf, len, v, &n, path, err);
    free(buf);
    if (!rc) rc = apply_added_decoder(v, tcfg, err);
    return rc;
}

/* ------------------------------------------------------------ tokenizer.json */

static const char k_re_gpt2[] = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char k_re_llama3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char k_re_qwen2[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/* The regex of a Split pre-tokenizer, or the GPT-2 one of a ByteLevel with use_regex. */
static const char *pre_regex(const cJSON *pt) {
    const char *type = pt ? hj_str(pt, "type") : NULL;
    if (!type) return NULL;
    if (!strcmp(type, "Sequence")) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(pt, "pretokenizers");
        for (const cJSON *e = cJSON_IsArray(l) ? l->child : NULL; e; e = e->next) {
            const char *r = pre_regex(e);
            if (r) return r;
        }
        return NULL;
    }
    if (!strcmp(type, "Split")) {
        const cJSON *p = hj_obj(pt, "pattern");
        return p ? hj_str(p, "Regex") : NULL;
    }
    bool use = true;
    if (!strcmp(type, "ByteLevel") && (!hj_bool(pt, "use_regex", &use) || use)) return k_re_gpt2;
    return NULL;
}

static int pre_name(const cJSON *tj, const char *path, const char **name, fr_err *err) {
    const char *re = pre_regex(cJSON_GetObjectItemCaseSensitive(tj, "pre_tokenizer"));
    if (re && !strcmp(re, k_re_gpt2)) *name = "gpt-2";
    else if (re && !strcmp(re, k_re_llama3)) *name = "llama-bpe";
    else if (re && !strcmp(re, k_re_qwen2)) *name = "qwen2";
    else
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "%s: pre-tokenizer not recognised (known: GPT-2, Llama-3, Qwen2 regexes)", path);
    return FRUGAL_OK;
}

static int vocab_bpe(cv_ctx *c, const cJSON *tj, const cJSON *tcfg, const char *path, vocab *v, fr_err *err) {
    const cJSON *model = hj_obj(tj, "model");
    const cJSON *vmap = model ? hj_obj(model, "vocab") : NULL;
    const char *mt = model ? hj_str(model, "type") : NULL;
    if (!vmap || !mt || strcmp(mt, "BPE")) return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "%s: not a BPE tokenizer (model.type)", path);
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    int64_t max_id = -1, id;
    for (const cJSON *e = vmap->child; e; e = e->next)
        if (cJSON_IsNumber(e) && e->valuedouble > (double)max_id) max_id = (int64_t)e->valuedouble;
    for (const cJSON *e = cJSON_IsArray(added) ? added->child : NULL; e; e = e->next)
        if (hj_int(e, "id", &id) && id > max_id) max_id = id;
    int64_t size = max_id + 1;
    cv_cfg_int(c, "vocab_size", &size);
    if (size <= max_id) return fr_err_set(err, FRUGAL_E_FORMAT, "%s: token id %lld at or above config.json's vocab_size %lld", path, (long long)max_id, (long long)size);
    int rc = vocab_init(v, size, false, err);
    for (const cJSON *e = vmap->child; e && !rc; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0) continue;
        id = (int64_t)e->valuedouble;
        if (!(rc = set_tok(v, id, e->string, strlen(e->string), err))) v->type[id] = TT_NORMAL;
    }
    for (const cJSON *e = cJSON_IsArray(added) ? added->child : NULL; e && !rc; e = e->next) {
        const char *s = hj_str(e, "content");
        bool special = false;
        if (!s || !hj_int(e, "id", &id) || id < 0) continue;
        hj_bool(e, "special", &special);
        if ((rc = set_tok(v, id, s, strlen(s), err))) break;
        if (special || looks_special(s)) v->type[id] = TT_CONTROL;
        else { unspace(v->tok[id]); v->type[id] = TT_USER; }
    }
    (void)tcfg;
    return rc;
}

/* A Llama/Gemma-style tokenizer.json (BPE over SentencePiece pieces with byte fallback,
 * a Sequence decoder): llama.cpp's LlamaHfVocab. Every score is -1000; pieces
 * <0xXX> are bytes, the special tokens (tokenizer_config.json's *_token strings and
 * additional_special_tokens) control, the rest normal; added tokens past the base
 * vocabulary follow it (special: control, else user-defined). */
static bool is_llama_hf(const cJSON *tj) {
    const cJSON *model = hj_obj(tj, "model"), *dec = hj_obj(tj, "decoder");
    const char *mt = model ? hj_str(model, "type") : NULL, *dt = dec ? hj_str(dec, "type") : NULL;
    bool bf = false;
    return mt && !strcmp(mt, "BPE") && hj_bool(model, "byte_fallback", &bf) && bf && dt && !strcmp(dt, "Sequence");
}

static bool is_special_str(const cJSON *tcfg, const char *s) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; tcfg && i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(tcfg, keys[i]);
        const char *v = cJSON_IsString(x) ? x->valuestring : cJSON_IsObject(x) ? hj_str(x, "content") : NULL;
        if (v && !strcmp(v, s)) return true;
    }
    const cJSON *add = tcfg ? cJSON_GetObjectItemCaseSensitive(tcfg, "additional_special_tokens") : NULL;
    for (const cJSON *e = cJSON_IsArray(add) ? add->child : NULL; e; e = e->next)
        if (cJSON_IsString(e) && !strcmp(e->valuestring, s)) return true;
    return false;
}

static bool is_byte_piece(const char *s) {
    return strlen(s) == 6 && !strncmp(s, "<0x", 3) && s[5] == '>' && strchr("0123456789ABCDEFabcdef", s[3]) &&
           strchr("0123456789ABCDEFabcdef", s[4]) && s[3] && s[4];
}

static int vocab_llama_hf(const cJSON *tj, const cJSON *tcfg, const char *path, vocab *v, fr_err *err) {
    const cJSON *vmap = hj_obj(hj_obj(tj, "model"), "vocab");
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(tj, "added_tokens");
    int64_t base = vmap ? cJSON_GetArraySize(vmap) : 0, n = base, id;
    for (const cJSON *e = cJSON_IsArray(added) ? added->child : NULL; e; e = e->next)
        if (hj_int(e, "id", &id) && id >= base && id + 1 > n) n = id + 1;
    int rc = vocab_init(v, n, true, err);
    for (int64_t i = 0; !rc && i < n; i++) { v->score[i] = -1000.0f; v->type[i] = 0; }
    for (const cJSON *e = vmap ? vmap->child : NULL; e && !rc; e = e->next) {
        if (!cJSON_IsNumber(e) || e->valuedouble < 0 || e->valuedouble >= (double)base) continue;
        id = (int64_t)e->valuedouble;
        rc = set_tok(v, id, e->string, strlen(e->string), err);
        v->type[id] = is_byte_piece(e->string) ? TT_BYTE : is_special_str(tcfg, e->string) ? TT_CONTROL : TT_NORMAL;
    }
    for (const cJSON *e = cJSON_IsArray(added) ? added->child : NULL; e && !rc; e = e->next) {
        const char *s = hj_str(e, "content");
        bool special = false;
        if (!s || !hj_int(e, "id", &id) || id < base) continue;
        hj_bool(e, "special", &special);
        rc = set_tok(v, id, s, strlen(s), err);
        v->type[id] = (special || is_special_str(tcfg, s)) ? TT_CONTROL : TT_USER;
    }
    for (int64_t i = 0; !rc && i < n; i++)
        if (!v->type[i]) rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: no token with id %lld", path, (long long)i);
    return rc;
}

/* Merges as "a b" strings (pairs joined; a space inside a part becomes U+0120). */
static int write_merges(cv_ctx *c, const cJSON *tj, const char *path, fr_err *err) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(hj_obj(tj, "model"), "merges");
    int n = cJSON_IsArray(m) ? cJSON_GetArraySize(m) : 0;
    if (!n) return FRUGAL_OK;
    gguf_str *s = fr_calloc((size_t)n, sizeof *s);
    char **own = fr_calloc((size_t)n, sizeof *own);
    int rc = (!s || !own) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
    int i = 0;
    for (const cJSON *e = m->child; e && !rc; e = e->next, i++) {
        if (cJSON_IsString(e)) { s[i].ptr = e->valuestring; s[i].len = strlen(e->valuestring); continue; }
        const cJSON *a = cJSON_GetArrayItem(e, 0), *b = cJSON_GetArrayItem(e, 1);
        if (!cJSON_IsArray(e) || cJSON_GetArraySize(e) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b)) {
            rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: merge %d is neither \"a b\" nor [\"a\", \"b\"]", path, i);
            break;
        }
        size_t la = strlen(a->valuestring), lb = strlen(b->valuestring);
        char *o = own[i] = fr_malloc(2 * (la + lb) + 2);
        if (!o) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); break; }
        size_t k = 0;
        for (int part = 0; part < 2; part++) {
            for (const char *p = part ? b->valuestring : a->valuestring; *p; p++) {
                if (*p == ' ') { o[k++] = (char)0xc4; o[k++] = (char)0xa0; }
                else o[k++] = *p;
            }
            if (!part) o[k++] = ' ';
        }
        s[i].ptr = o;
        s[i].len = k;
    }
    if (!rc && gguf_writer_set_str_arr(c->w, "tokenizer.ggml.merges", s, (uint64_t)n))
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int j = 0; own && j < n; j++) free(own[j]);
    free(own);
    free(s);
    return rc;
}

/* ------------------------------------------------------------ special tokens */

static const char *const k_special[] = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
static const char *const k_special_key[] = {"bos", "eos", "unknown", "seperator", "padding", "cls", "mask"};

/* The id string of a TemplateProcessing item that is a SpecialToken, or NULL. */
static const char *tp_special(const cJSON *item) {
    const cJSON *st = hj_obj(item, "SpecialToken");
    return st ? hj_str(st, "id") : NULL;
}

static const char *cfg_token(const cJSON *tcfg, const char *key) {
    const cJSON *x = tcfg ? cJSON_GetObjectItemCaseSensitive(tcfg, key) : NULL;
    return cJSON_IsString(x) ? x->valuestring : cJSON_IsObject(x) ? hj_str(x, "content") : NULL;
}

/* add_bos/add_eos from a TemplateProcessing post-processor (Llama-3's tokenizer.json
 * adds <|begin_of_text|> there, not in tokenizer_config.json), as SpecialVocab reads
 * it: the first special token of "single" is BOS (or CLS) -> add_bos, the last EOS ->
 * add_eos. tokenizer_config.json's add_*_token flags, written after, win. */
static int template_flags(cv_ctx *c, const cJSON *tj, const cJSON *tcfg) {
    const cJSON *pp = tj ? hj_obj(tj, "post_processor") : NULL;
    const cJSON *list = pp ? cJSON_GetObjectItemCaseSensitive(pp, "processors") : NULL;
    const cJSON *one = cJSON_IsArray(list) ? list->child : pp;
    int rc = 0;
    for (; one; one = cJSON_IsArray(list) ? one->next : NULL) {
        const char *type = hj_str(one, "type");
        const cJSON *single = cJSON_GetObjectItemCaseSensitive(one, "single");
        if (!type || strcmp(type, "TemplateProcessing") || !cJSON_IsArray(single) || cJSON_GetArraySize(single) < 2) continue;
        const char *bos = cfg_token(tcfg, "bos_token"), *cls = cfg_token(tcfg, "cls_token"), *eos = cfg_token(tcfg, "eos_token");
        const char *first = tp_special(cJSON_GetArrayItem(single, 0));
        const char *last = tp_special(cJSON_GetArrayItem(single, cJSON_GetArraySize(single) - 1));
        if (!tcfg) { bos = first; eos = last; }
        if (!bos && !cls) bos = first;  /* SpecialVocab takes it as the BOS token then */
        if (first && *first)
            rc |= gguf_writer_set_bool(c->w, "tokenizer.ggml.add_bos_token",
                                       (bos && !strcmp(first, bos)) || (cls && !strcmp(first, cls)));
        if (last && *last) rc |= gguf_writer_set_bool(c->w, "tokenizer.ggml.add_eos_token", eos && !strcmp(last, eos));
    }
    return rc;
}

static int special_ids(cv_ctx *c, const cJSON *tj, const cJSON *tcfg, int64_t n_vocab, fr_err *err) {
    int64_t ids[7];
    for (int i = 0; i < 7; i++) ids[i] = -1;
    const cJSON *added = tj ? cJSON_GetObjectItemCaseSensitive(tj, "added_tokens") : NULL;
    int rc = 0;
    for (int i = 0; i < 7 && tj && tcfg; i++) {
        char k[32];
        snprintf(k, sizeof k, "%s_token", k_special[i]);
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(tcfg, k);
        const char *s = cJSON_IsString(x) ? x->valuestring : cJSON_IsObject(x) ? hj_str(x, "content") : NULL;
        for (const cJSON *e = (s && cJSON_IsArray(added)) ? added->child : NULL; e; e = e->next) {
            const char *ct = hj_str(e, "content");
            int64_t id;
            if (ct && !strcmp(ct, s)) {
                if (hj_int(e, "id", &id) && id >= 0 && id < n_vocab) ids[i] = id;
                break;
            }
        }
    }
    for (int i = 0; i < 7; i++) {
        char k[32];
        int64_t id;
        snprintf(k, sizeof k, "%s_token_id", k_special[i]);
        if (ids[i] < 0 && cv_cfg_int(c, k, &id) && id >= 0 && id < n_vocab) ids[i] = id;
        if (ids[i] < 0) continue;
        snprintf(k, sizeof k, "tokenizer.ggml.%s_token_id", k_special_key[i]);
        rc |= gguf_writer_set_u32(c->w, k, (uint32_t)ids[i]);
    }
    rc |= template_flags(c, tj, tcfg);
    for (int i = 0; i < 7 && tcfg; i++) {
        char k[40];
        bool b;
        snprintf(k, sizeof k, "add_%s_token", k_special[i]);
        if (!hj_bool(tcfg, k, &b)) continue;
        snprintf(k, sizeof k, "tokenizer.ggml.add_%s_token", k_special[i]);
        rc |= gguf_writer_set_bool(c->w, k, b);
    }
    const char *tmpl = tcfg ? hj_str(tcfg, "chat_template") : NULL;
    if (tmpl) rc |= gguf_writer_set_str(c->w, "tokenizer.chat_template", tmpl);
    return rc ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : FRUGAL_OK;
}

static int write_vocab(cv_ctx *c, const vocab *v, const char *model, const char *pre, fr_err *err) {
    gguf_str *s = fr_malloc((size_t)v->n * sizeof *s);
    if (!s) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int64_t i = 0; i < v->n; i++) { s[i].ptr = v->tok[i]; s[i].len = strlen(v->tok[i]); }
    int rc = gguf_writer_set_str(c->w, "tokenizer.ggml.model", model);
    rc |= gguf_writer_set_str(c->w, "tokenizer.ggml.pre", pre);
    rc |= gguf_writer_set_str_arr(c->w, "tokenizer.ggml.tokens", s, (uint64_t)v->n);
    if (v->score) rc |= gguf_writer_set_arr(c->w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, v->score, (uint64_t)v->n);
    rc |= gguf_writer_set_arr(c->w, "tokenizer.ggml.token_type", GGUF_VT_INT32, v->type, (uint64_t)v->n);
    free(s);
    return rc ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : FRUGAL_OK;
}

/* GemmaModel.set_vocab: CodeGemma's fill-in-the-middle ids, written for every Gemma 1
 * whose vocabulary reaches them (the converter's TODO says CodeGemma only). */
static int gemma_fim_ids(cv_ctx *c, int64_t n_vocab, fr_err *err) {
    static const struct { const char *key; uint32_t id; } k[] = {
        {"tokenizer.ggml.prefix_token_id", 67}, {"tokenizer.ggml.suffix_token_id", 69},
        {"tokenizer.ggml.middle_token_id", 68}, {"tokenizer.ggml.eot_token_id", 107}};
    int rc = 0;
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if ((int64_t)k[i].id < n_vocab) rc |= gguf_writer_set_u32(c->w, k[i].key, k[i].id);
    return rc ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : FRUGAL_OK;
}

int cv_vocab(cv_ctx *c, fr_err *err) {
    char *spm = hj_path(c->dir, "tokenizer.model"), *tjp = hj_path(c->dir, "tokenizer.json");
    char *tcp = hj_path(c->dir, "tokenizer_config.json");
    cJSON *tj = NULL, *tcfg = NULL;
    vocab v = {0};
    int rc = (!spm || !tjp || !tcp) ? fr_err_set(err, FRUGAL_E_NOMEM, "out of memory") : 0;
    bool use_spm = !rc && (c->fam->flags & CV_F_SPM_FIRST) && hj_exists(spm), llama_hf = false;
    if (!rc && hj_exists(tcp)) rc = hj_load(tcp, &tcfg, err);
    if (!rc && hj_exists(tjp)) rc = hj_load(tjp, &tj, err);
    if (!rc && !use_spm && !tj)
        rc = fr_err_set(err, FRUGAL_E_IO, "%s: no tokenizer (neither tokenizer.json%s)", c->dir,
                        (c->fam->flags & CV_F_SPM_FIRST) ? " nor tokenizer.model" : "");
    if (!rc && use_spm) {
        rc = vocab_spm(c, spm, tcfg, &v, err);
        if (!rc) rc = write_vocab(c, &v, "llama", "default", err);
    } else if (!rc && (llama_hf = (c->fam->flags & CV_F_LLAMA_HF) && is_llama_hf(tj))) {
        rc = vocab_llama_hf(tj, tcfg, tjp, &v, err);
        if (!rc) rc = write_vocab(c, &v, "llama", "default", err);
    } else if (!rc) {
        const char *pre = NULL;
        rc = pre_name(tj, tjp, &pre, err);
        if (!rc) rc = vocab_bpe(c, tj, tcfg, tjp, &v, err);
        if (!rc) rc = write_vocab(c, &v, "gpt2", pre, err);
        if (!rc) rc = write_merges(c, tj, tjp, err);
    }
    if (!rc) {
        bool asp;
        if (!strcmp(c->fam->gguf_arch, "llama") && tcfg && hj_bool(tcfg, "add_prefix_space", &asp))
            rc = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_space_prefix", asp) ? FRUGAL_E_NOMEM : 0;
        if ((use_spm || llama_hf) && (c->fam->flags & CV_F_NORM_PLUS1))  /* Gemma: no space prefix */
            rc = gguf_writer_set_bool(c->w, "tokenizer.ggml.add_space_prefix", false) ? FRUGAL_E_NOMEM : 0;
        if (rc) rc = fr_err_set(err, rc, "out of memory");
    }
    if (!rc) rc = special_ids(c, tj, tcfg, v.n, err);
    if (!rc && !strcmp(c->fam->gguf_arch, "gemma")) rc = gemma_fim_ids(c, v.n, err);
    c->n_vocab_tok = v.n;
    vocab_free(&v);
    cJSON_Delete(tj);
    cJSON_Delete(tcfg);
    free(spm);
    free(tjp);
    free(tcp);
    return rc;
}
