/* api_json.c - OpenAI request parsing and response bodies for `frugal serve`.
 *
 * Validation follows the OpenAI API reference: wrong types and out-of-range values
 * are 400 invalid_request_error naming the field in "param"; JSON null counts as
 * absent (clients send it for unset options); unknown fields are ignored, as
 * OpenAI-compatible servers do, so newer clients keep working.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "serve.h"

/* ------------------------------------------------------------------ errors */

static void set_err(srv_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_err(srv_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status >= 500 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

char *srv_json_error(const srv_error *e) {
    cJSON *root = cJSON_CreateObject(), *o = cJSON_AddObjectToObject(root, "error");
    if (o) {
        cJSON_AddStringToObject(o, "message", e->message);
        cJSON_AddStringToObject(o, "type", e->type ? e->type : "invalid_request_error");
        if (e->param) cJSON_AddStringToObject(o, "param", e->param);
        else cJSON_AddNullToObject(o, "param");
        if (e->code) cJSON_AddStringToObject(o, "code", e->code);
        else cJSON_AddNullToObject(o, "code");
    }
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* ------------------------------------------------------------------ parsing */

/* 1 when the JSON text holds a NUL: a raw 0 byte, or a \u0000 escape inside a
 * string. cJSON keeps strings NUL-terminated, so such a string would be cut short
 * silently; the request is refused instead. */
static int json_has_nul(const char *s, size_t n) {
    int in_str = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\0') return 1;
        if (!in_str) {
            in_str = c == '"';
        } else if (c == '"') {
            in_str = 0;
        } else if (c == '\\' && i + 1 < n) {
            if (s[i + 1] == 'u' && i + 5 < n && memcmp(s + i + 2, "0000", 4) == 0) return 1;
            i++; /* the escaped character cannot end the string */
        }
    }
    return 0;
}

/* Parse body[0..len) as exactly one JSON value with only whitespace after it.
 * NULL with e set (400) otherwise. */
static cJSON *parse_body(const char *body, size_t len, srv_error *e) {
    if (json_has_nul(body, len)) {
        set_err(e, 400, NULL, "the request body contains a NUL character (\\u0000), which is not supported");
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        set_err(e, 400, NULL, "the request body is not valid JSON");
        return NULL;
    }
    const char *lim = body + len;
    while (end && end < lim && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')) end++;
    if (!end || end < lim) {
        cJSON_Delete(root);
        set_err(e, 400, NULL, "the request body has data after the JSON value");
        return NULL;
    }
    return root;
}

/* ------------------------------------------------------------------ field getters */

/* The field, or NULL when absent or JSON null. */
static const cJSON *field(const cJSON *obj, const char *name) {
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(obj, name);
    return f && !cJSON_IsNull(f) ? f : NULL;
}

/* Number field within [lo, hi] (integer-valued when integral). 0: absent (out
 * untouched) or ok; -1: error set. */
static int get_num(const cJSON *obj, const char *name, double lo, double hi, int integral,
                   double *out, srv_error *e) {
    const cJSON *f = field(obj, name);
    if (!f) return 0;
    if (!cJSON_IsNumber(f) || !isfinite(f->valuedouble) || (integral && f->valuedouble != floor(f->valuedouble))) {
        set_err(e, 400, name, "'%s' must be %s", name, integral ? "an integer" : "a number");
        return -1;
    }
    if (f->valuedouble < lo || f->valuedouble > hi) {
        set_err(e, 400, name, "'%s' must be between %g and %g", name, lo, hi);
        return -1;
    }
    *out = f->valuedouble;
    return 0;
}

static int get_bool(const cJSON *obj, const char *name, int *out, srv_error *e) {
    const cJSON *f = field(obj, name);
    if (!f) return 0;
    if (!cJSON_IsBool(f)) {
        set_err(e, 400, name, "'%s' must be a boolean", name);
        return -1;
    }
    *out = cJSON_IsTrue(f);
    return 0;
}

/* ------------------------------------------------------------------ chat messages */

/* Concatenated text of a message's content: a string, or an array of
 * {"type":"text","text":...} parts. malloc'd, or NULL with e set. */
static char *message_text(const cJSON *content, srv_error *e) {
    if (!content) return fr_strdup("");
    if (cJSON_IsString(content)) return fr_strdup(content->valuestring);
    if (!cJSON_IsArray(content)) {
        set_err(e, 400, "messages", "message content must be a string or an array of text parts");
        return NULL;
    }
    srv_buf b = {0};
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0 || !cJSON_IsString(text)) {
            set_err(e, 400, "messages", "only text content parts are supported");
            srv_buf_free(&b);
            return NULL;
        }
        if (srv_buf_puts(&b, text->valuestring) != 0) {
            set_err(e, 500, NULL, "out of memory");
            srv_buf_free(&b);
            return NULL;
        }
    }
    return b.p ? b.p : fr_strdup("");
}

/* Render root["messages"] with the configured template. malloc'd or NULL. */
static char *render_messages(const srv_config *cfg, const cJSON *root, srv_error *e) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(root, "messages");
    if (!msgs) { set_err(e, 400, "messages", "'messages' is required"); return NULL; }
    if (!cJSON_IsArray(msgs)) { set_err(e, 400, "messages", "'messages' must be an array"); return NULL; }
    int n = cJSON_GetArraySize(msgs);
    if (n == 0) { set_err(e, 400, "messages", "'messages' must not be empty"); return NULL; }
    srv_msg *m = fr_calloc((size_t)n, sizeof *m);
    char **texts = fr_calloc((size_t)n, sizeof *texts);
    char *out = NULL;
    int i = 0, ok = m && texts;
    if (!ok) set_err(e, 500, NULL, "out of memory");
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs) {
        if (!ok) break;
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        if (!cJSON_IsObject(msg) || !cJSON_IsString(role)) {
            set_err(e, 400, "messages", "messages[%d] must be an object with a string 'role'", i);
            ok = 0;
            break;
        }
        texts[i] = message_text(field(msg, "content"), e);
        if (!texts[i]) { ok = 0; break; }
        m[i].role = role->valuestring;
        m[i].content = texts[i];
        i++;
    }
    if (ok) {
        srv_buf b = {0};
        /* a format may render nothing (llama2 with only a system message): an
         * empty prompt, refused later as such, not an allocation failure */
        if (srv_template_render(cfg->tmpl, m, n, &b) != 0 || !(out = b.p ? b.p : fr_strdup(""))) {
            srv_buf_free(&b);
            set_err(e, 500, NULL, "out of memory");
        }
    }
    for (int k = 0; texts && k < n; k++) free(texts[k]);
    free(texts);
    free(m);
    return out;
}

char *srv_render_chat(const srv_config *cfg, const char *body, size_t len, srv_error *e) {
    cJSON *root = parse_body(body, len, e);
    if (!root) return NULL;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        set_err(e, 400, NULL, "the request body is not a JSON object");
        return NULL;
    }
    char *s = render_messages(cfg, root, e);
    cJSON_Delete(root);
    return s;
}

/* ------------------------------------------------------------------ requests */

static void too_long(const srv_config *cfg, int kind, const char *what, srv_error *e) {
    set_err(e, 400, kind == SRV_KIND_CHAT ? "messages" : "prompt",
            "the prompt has %s tokens; this server accepts at most %d", what, cfg->max_prompt);
    e->code = "context_length_exceeded";
}

/* Tokenize text into r->prompt (BOS per the model, special-token text parsed).
 * The work is bounded before it starts: no token's text is longer than
 * cfg->max_piece bytes, so a text longer than (max_prompt + 2) * max_piece bytes
 * has more tokens than allowed and is refused without tokenizing it (a 1 MB prompt
 * costs no more than its body), and the token buffer holds max_prompt + 8 ids. */
static int tokenize_into(const srv_config *cfg, int kind, const char *text, srv_req *r, srv_error *e) {
    size_t len = strlen(text);
    size_t bound = (size_t)cfg->max_prompt + 2;
    if (cfg->max_piece > 0 && len / (size_t)cfg->max_piece > bound) { too_long(cfg, kind, "more than", e); return -1; }
    if (len > (size_t)1 << 28) { too_long(cfg, kind, "more than", e); return -1; }
    int cap = len + 8 < (size_t)cfg->max_prompt + 8 ? (int)len + 8 : cfg->max_prompt + 8;
    r->prompt = fr_malloc((size_t)cap * sizeof *r->prompt);
    if (!r->prompt) { set_err(e, 500, NULL, "out of memory"); return -1; }
    int n = frugal_tokenize(cfg->model, text, len, 1, 1, r->prompt, cap);
    if (n == INT32_MIN) { set_err(e, 500, NULL, "tokenization failed (out of memory)"); return -1; }
    if (n < 0 && -n > cap) { too_long(cfg, kind, "more than", e); return -1; }
    if (n < 0) { set_err(e, 500, NULL, "tokenization failed"); return -1; }
    r->n_prompt = n;
    return 0;
}

/* A completions prompt given as token ids. */
static int prompt_ids(const srv_config *cfg, const cJSON *arr, srv_req *r, srv_error *e) {
    int n = cJSON_GetArraySize(arr);
    if (n > cfg->max_prompt) {
        too_long(cfg, SRV_KIND_COMPLETION, "more than", e);
        return -1;
    }
    r->prompt = fr_malloc((size_t)(n > 0 ? n : 1) * sizeof *r->prompt);
    if (!r->prompt) { set_err(e, 500, NULL, "out of memory"); return -1; }
    const cJSON *t;
    cJSON_ArrayForEach(t, arr) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 ||
            t->valuedouble >= cfg->n_vocab) {
            set_err(e, 400, "prompt", "token ids in 'prompt' must be integers in [0, %d)", cfg->n_vocab);
            return -1;
        }
        r->prompt[r->n_prompt++] = (int32_t)t->valuedouble;
    }
    return 0;
}

static int parse_prompt(const srv_config *cfg, const cJSON *root, srv_req *r, srv_error *e) {
    const cJSON *p = field(root, "prompt");
    if (!p) { set_err(e, 400, "prompt", "'prompt' is required"); return -1; }
    if (cJSON_IsString(p)) return tokenize_into(cfg, SRV_KIND_COMPLETION, p->valuestring, r, e);
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) >= 1) {
        const cJSON *first = cJSON_GetArrayItem(p, 0);
        if (cJSON_IsNumber(first)) return prompt_ids(cfg, p, r, e);
        if (cJSON_GetArraySize(p) == 1 && cJSON_IsString(first)) return tokenize_into(cfg, SRV_KIND_COMPLETION, first->valuestring, r, e);
        if (cJSON_GetArraySize(p) == 1 && cJSON_IsArray(first)) return prompt_ids(cfg, first, r, e);
        if (cJSON_GetArraySize(p) > 1) { set_err(e, 400, "prompt", "only one prompt per request is supported"); return -1; }
    }
    set_err(e, 400, "prompt", "'prompt' must be a string, an array of one string, or token ids");
    return -1;
}

static int parse_stop(const cJSON *root, srv_req *r, srv_error *e) {
    const cJSON *st = field(root, "stop");
    if (!st) return 0;
    if (cJSON_IsString(st)) {
        if (!*st->valuestring) return 0;
        if (!(r->stop[r->n_stop++] = fr_strdup(st->valuestring))) { set_err(e, 500, NULL, "out of memory"); return -1; }
        return 0;
    }
    if (!cJSON_IsArray(st)) { set_err(e, 400, "stop", "'stop' must be a string or an array of strings"); return -1; }
    if (cJSON_GetArraySize(st) > SRV_MAX_STOP - 1) { set_err(e, 400, "stop", "at most %d stop strings", SRV_MAX_STOP - 1); return -1; }
    const cJSON *s;
    cJSON_ArrayForEach(s, st) {
        if (!cJSON_IsString(s)) { set_err(e, 400, "stop", "'stop' must be a string or an array of strings"); return -1; }
        if (!*s->valuestring) continue;
        if (!(r->stop[r->n_stop++] = fr_strdup(s->valuestring))) { set_err(e, 500, NULL, "out of memory"); return -1; }
    }
    return 0;
}

/* logit_bias: {"token id": bias in [-100, 100]}; -100 bans the token outright. */
static int parse_bias(const srv_config *cfg, const cJSON *root, srv_req *r, srv_error *e) {
    const cJSON *lb = field(root, "logit_bias");
    if (!lb) return 0;
    if (!cJSON_IsObject(lb)) { set_err(e, 400, "logit_bias", "'logit_bias' must be an object"); return -1; }
    int n = cJSON_GetArraySize(lb);
    if (n > 1024) { set_err(e, 400, "logit_bias", "at most 1024 entries in 'logit_bias'"); return -1; }
    r->bias_tok = fr_malloc((size_t)(n ? n : 1) * sizeof *r->bias_tok);
    r->bias_val = fr_malloc((size_t)(n ? n : 1) * sizeof *r->bias_val);
    if (!r->bias_tok || !r->bias_val) { set_err(e, 500, NULL, "out of memory"); return -1; }
    const cJSON *b;
    cJSON_ArrayForEach(b, lb) {
        char *end;
        long id = strtol(b->string, &end, 10);
        if (*end || end == b->string || id < 0 || id >= cfg->n_vocab || !cJSON_IsNumber(b) ||
            b->valuedouble < -100 || b->valuedouble > 100) {
            set_err(e, 400, "logit_bias", "'logit_bias' maps token ids in [0, %d) to numbers in [-100, 100]", cfg->n_vocab);
            return -1;
        }
        r->bias_tok[r->n_bias] = (int32_t)id;
        r->bias_val[r->n_bias++] = b->valuedouble <= -100 ? -INFINITY : (float)b->valuedouble;
    }
    return 0;
}

/* Sampling options, n, stream, stop and logprobs (shared by both endpoints). */
static int parse_options(const srv_config *cfg, int kind, const cJSON *root, srv_req *r, srv_error *e) {
    double v;
    v = 1;
    if (get_num(root, "n", 1, 128, 1, &v, e)) return -1;
    if (v != 1) { set_err(e, 400, "n", "only n = 1 is supported"); return -1; }
    if (get_bool(root, "stream", &r->stream, e)) return -1;
    const cJSON *so = field(root, "stream_options");
    if (so && !cJSON_IsObject(so)) { set_err(e, 400, "stream_options", "'stream_options' must be an object"); return -1; }
    if (so && get_bool(so, "include_usage", &r->include_usage, e)) return -1;

    frugal_sampler_params *sp = &r->sp;
    frugal_sampler_params_default(sp);
    /* OpenAI's defaults: temperature 1, top_p 1, no top-k/min-p/repetition penalty */
    sp->temp = 1.0f; sp->top_p = 1.0f; sp->top_k = 0; sp->min_p = 0.0f; sp->repeat_penalty = 1.0f;
    v = sp->temp;  if (get_num(root, "temperature", 0, 2, 0, &v, e)) return -1;  sp->temp = (float)v;
    v = sp->top_p; if (get_num(root, "top_p", 0, 1, 0, &v, e)) return -1;        sp->top_p = (float)v;
    v = 0;         if (get_num(root, "top_k", 0, 1 << 20, 1, &v, e)) return -1;  sp->top_k = (int)v;
    v = 0;         if (get_num(root, "min_p", 0, 1, 0, &v, e)) return -1;        sp->min_p = (float)v;
    v = 0; if (get_num(root, "frequency_penalty", -2, 2, 0, &v, e)) return -1; sp->freq_penalty = (float)v;
    v = 0; if (get_num(root, "presence_penalty", -2, 2, 0, &v, e)) return -1;  sp->presence_penalty = (float)v;
    sp->repeat_last_n = cfg->n_ctx; /* the penalties see the whole completion */
    static atomic_uint_fast64_t counter;
    /* no seed: a different one per request (clock mixed with a counter) */
    sp->seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15ull + atomic_fetch_add(&counter, 1) * 0xBF58476D1CE4E5B9ull;
    v = 0;
    const cJSON *seed = field(root, "seed");
    if (seed) {
        /* int64 or uint64 range: both ends exact in a double, so the casts below
         * are defined (-0x1p63 is INT64_MIN; anything below it would not be) */
        if (get_num(root, "seed", -0x1p63, 0x1p64 - 0x1p11, 1, &v, e)) return -1;
        sp->seed = v < 0 ? (uint64_t)(int64_t)v : (uint64_t)v;
    }

    v = kind == SRV_KIND_CHAT ? cfg->n_ctx : 16; /* OpenAI: completions default to 16 */
    if (get_num(root, "max_tokens", 1, 1e9, 1, &v, e)) return -1;
    if (get_num(root, "max_completion_tokens", 1, 1e9, 1, &v, e)) return -1;
    r->max_tokens = v > cfg->n_ctx ? cfg->n_ctx : (int)v;
    if (parse_stop(root, r, e) || parse_bias(cfg, root, r, e)) return -1;

    if (kind == SRV_KIND_COMPLETION) {
        v = -1;
        if (get_num(root, "logprobs", 0, SRV_MAX_TOP_LP, 1, &v, e)) return -1;
        r->n_logprobs = (int)v;
    } else {
        int want = 0;
        if (get_bool(root, "logprobs", &want, e)) return -1;
        v = 0;
        if (get_num(root, "top_logprobs", 0, SRV_MAX_TOP_LP, 1, &v, e)) return -1;
        r->n_logprobs = want ? (int)v : -1;
    }
    return 0;
}

srv_req *srv_parse_request(const srv_config *cfg, int kind, const char *body, size_t len, srv_error *e) {
    cJSON *root = parse_body(body, len, e);
    if (!root) return NULL;
    srv_req *r = NULL;
    if (!cJSON_IsObject(root)) {
        set_err(e, 400, NULL, "the request body must be a JSON object");
        goto fail;
    }
    const cJSON *model = field(root, "model");
    if (model && !cJSON_IsString(model)) {
        set_err(e, 400, "model", "'model' must be a string");
        goto fail;
    }
    r = srv_req_new();
    if (!r) { set_err(e, 500, NULL, "out of memory"); goto fail; }
    r->kind = kind;
    if (parse_options(cfg, kind, root, r, e)) goto fail;
    if (kind == SRV_KIND_CHAT) {
        char *text = render_messages(cfg, root, e);
        if (!text) goto fail;
        int rc = tokenize_into(cfg, kind, text, r, e);
        free(text);
        if (rc) goto fail;
        const char *end = srv_template_end_marker(cfg->tmpl);
        if (end && r->n_stop < SRV_MAX_STOP && !(r->stop[r->n_stop++] = fr_strdup(end))) {
            set_err(e, 500, NULL, "out of memory");
            goto fail;
        }
    } else if (parse_prompt(cfg, root, r, e)) {
        goto fail;
    }
    if (r->n_prompt == 0) {
        set_err(e, 400, "prompt", "the prompt is empty");
        goto fail;
    }
    if (r->n_prompt > cfg->max_prompt) {
        set_err(e, 400, kind == SRV_KIND_CHAT ? "messages" : "prompt",
                "the prompt has %d tokens; this server accepts at most %d", r->n_prompt, cfg->max_prompt);
        e->code = "context_length_exceeded";
        goto fail;
    }
    static atomic_uint_fast64_t ids;
    snprintf(r->id, sizeof r->id, "%s%016llx%08llx", kind == SRV_KIND_CHAT ? "chatcmpl-" : "cmpl-",
             (unsigned long long)r->sp.seed, (unsigned long long)atomic_fetch_add(&ids, 1));
    r->created = (long long)time(NULL);
    cJSON_Delete(root);
    return r;
fail:
    cJSON_Delete(root);
    srv_req_release(r);
    return NULL;
}

/* ------------------------------------------------------------------ responses */

/* Add s[0..n) as a string field, invalid UTF-8 replaced. */
static void add_text(cJSON *obj, const char *name, const char *s, size_t n) {
    char *t = srv_utf8_sanitize(s ? s : "", s ? n : 0);
    if (t) cJSON_AddStringToObject(obj, name, t);
    free(t);
}

static cJSON *piece_json(const srv_config *cfg, int32_t tok, const char *name, cJSON *obj, size_t *n_out) {
    char buf[256];
    int n = frugal_token_to_piece(cfg->model, tok, buf, (int)sizeof buf, 0);
    if (n < 0) n = 0;
    add_text(obj, name, buf, (size_t)n);
    if (n_out) *n_out = (size_t)n;
    return obj;
}

/* Completions logprobs: {tokens, token_logprobs, top_logprobs, text_offset}. */
static cJSON *completion_logprobs(const srv_config *cfg, const srv_lp *lp, int n, size_t offset) {
    cJSON *o = cJSON_CreateObject();
    cJSON *toks = cJSON_AddArrayToObject(o, "tokens"), *lps = cJSON_AddArrayToObject(o, "token_logprobs");
    cJSON *tops = cJSON_AddArrayToObject(o, "top_logprobs"), *offs = cJSON_AddArrayToObject(o, "text_offset");
    for (int i = 0; i < n; i++) {
        char buf[256];
        int len = frugal_token_to_piece(cfg->model, lp[i].token, buf, (int)sizeof buf, 0);
        if (len < 0) len = 0;
        char *t = srv_utf8_sanitize(buf, (size_t)len);
        cJSON_AddItemToArray(toks, cJSON_CreateString(t ? t : ""));
        free(t);
        cJSON_AddItemToArray(lps, cJSON_CreateNumber(lp[i].logprob));
        cJSON *top = cJSON_CreateObject();
        for (int k = 0; k < lp[i].n_top; k++) {
            char key[256];
            int kl = frugal_token_to_piece(cfg->model, lp[i].top[k], key, (int)sizeof key - 1, 0);
            key[kl < 0 ? 0 : kl] = '\0';
            char *ks = srv_utf8_sanitize(key, strlen(key));
            if (ks && !cJSON_GetObjectItemCaseSensitive(top, ks)) cJSON_AddNumberToObject(top, ks, lp[i].top_lp[k]);
            free(ks);
        }
        cJSON_AddItemToArray(tops, top);
        cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)offset));
        offset += (size_t)len;
    }
    return o;
}

/* Chat logprobs: {content: [{token, logprob, bytes, top_logprobs: [...]}]}. */
static cJSON *chat_logprobs(const srv_config *cfg, const srv_lp *lp, int n) {
    cJSON *o = cJSON_CreateObject(), *content = cJSON_AddArrayToObject(o, "content");
    for (int i = 0; i < n; i++) {
        cJSON *t = cJSON_CreateObject();
        piece_json(cfg, lp[i].token, "token", t, NULL);
        cJSON_AddNumberToObject(t, "logprob", lp[i].logprob);
        cJSON_AddNullToObject(t, "bytes");
        cJSON *tops = cJSON_AddArrayToObject(t, "top_logprobs");
        for (int k = 0; k < lp[i].n_top; k++) {
            cJSON *a = cJSON_CreateObject();
            piece_json(cfg, lp[i].top[k], "token", a, NULL);
            cJSON_AddNumberToObject(a, "logprob", lp[i].top_lp[k]);
            cJSON_AddNullToObject(a, "bytes");
            cJSON_AddItemToArray(tops, a);
        }
        cJSON_AddItemToArray(content, t);
    }
    return o;
}

static cJSON *envelope(const srv_config *cfg, srv_req *r, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", r->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)r->created);
    cJSON_AddStringToObject(o, "model", cfg->model_id);
    cJSON_AddStringToObject(o, "system_fingerprint", "frugal-" FRUGAL_VERSION);
    return o;
}

static void add_usage(cJSON *o, srv_req *r) {
    cJSON *u = cJSON_AddObjectToObject(o, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", r->n_prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", r->n_gen);
    cJSON_AddNumberToObject(u, "total_tokens", r->n_prompt + r->n_gen);
}

static char *print_delete(cJSON *o) {
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *srv_json_response(const srv_config *cfg, srv_req *r) {
    int chat = r->kind == SRV_KIND_CHAT;
    cJSON *o = envelope(cfg, r, chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(c, "message");
        cJSON_AddStringToObject(m, "role", "assistant");
        add_text(m, "content", r->text.p, r->text.len);
    } else {
        add_text(c, "text", r->text.p, r->text.len);
    }
    if (r->n_logprobs < 0) cJSON_AddNullToObject(c, "logprobs");
    else cJSON_AddItemToObject(c, "logprobs", chat ? chat_logprobs(cfg, r->lp, r->n_lp)
                                                   : completion_logprobs(cfg, r->lp, r->n_lp, 0));
    cJSON_AddStringToObject(c, "finish_reason", r->finish ? r->finish : "stop");
    add_usage(o, r);
    return print_delete(o);
}

char *srv_json_chunk(const srv_config *cfg, srv_req *r, const char *s, size_t n, const srv_lp *lp,
                     int n_lp, const char *finish, int first) {
    int chat = r->kind == SRV_KIND_CHAT;
    cJSON *o = envelope(cfg, r, chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices"), *c = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, c);
    cJSON_AddNumberToObject(c, "index", 0);
    if (chat) {
        cJSON *d = cJSON_AddObjectToObject(c, "delta");
        if (first) cJSON_AddStringToObject(d, "role", "assistant");
        if (first || n || !finish) add_text(d, "content", s, n);
    } else {
        add_text(c, "text", s, n);
    }
    if (r->n_logprobs < 0 || n_lp == 0) cJSON_AddNullToObject(c, "logprobs");
    else cJSON_AddItemToObject(c, "logprobs", chat ? chat_logprobs(cfg, lp, n_lp)
                                                   : completion_logprobs(cfg, lp, n_lp, 0));
    if (finish) cJSON_AddStringToObject(c, "finish_reason", finish);
    else cJSON_AddNullToObject(c, "finish_reason");
    return print_delete(o);
}

char *srv_json_usage_chunk(const srv_config *cfg, srv_req *r) {
    cJSON *o = envelope(cfg, r, r->kind == SRV_KIND_CHAT ? "chat.completion.chunk" : "text_completion");
    cJSON_AddArrayToObject(o, "choices");
    add_usage(o, r);
    return print_delete(o);
}

char *srv_json_models(const srv_config *cfg) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data"), *m = cJSON_CreateObject();
    cJSON_AddItemToArray(data, m);
    cJSON_AddStringToObject(m, "id", cfg->model_id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", 0);
    cJSON_AddStringToObject(m, "owned_by", "frugal");
    cJSON *meta = cJSON_AddObjectToObject(m, "meta");
    cJSON_AddNumberToObject(meta, "n_ctx_per_slot", cfg->n_ctx);
    cJSON_AddNumberToObject(meta, "slots", cfg->n_slots);
    cJSON_AddStringToObject(meta, "chat_template", srv_template_name(cfg->tmpl));
    return print_delete(o);
}
