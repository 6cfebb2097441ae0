/* fuzz_http.c - libFuzzer target: the server's request path without sockets:
 * Authorization header -> srv_auth_ok, body -> JSON -> validated request struct
 * (srv_parse_request: field types and ranges, chat rendering, bounded
 * tokenization with the fortune model's vocabulary).
 *
 * Input layout: byte 0 picks the endpoint (chat / completions) and whether the
 * prompt limit is small; then an Authorization value up to the first newline; the
 * rest is the body. Checked: a refused request carries a 4xx/5xx status and a
 * message and leaves no request; an accepted one has 1..max_prompt prompt ids
 * inside the vocabulary, max_tokens in [1, n_ctx], and its stop strings set; the
 * error body it would send is valid JSON. Seeds: fuzz/seeds.sh (requests built
 * from the shared texts); dictionary fuzz/http.dict. */
#include "fuzz_util.h"

#include <cjson/cJSON.h>
#include <string.h>

#include "../tools/frugal/serve/serve.h"

static frugal_model *g_m;
static srv_config g_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    g_m = fz_vocab("models/fortune-3m-q8_0.gguf");
    frugal_model_info info;
    frugal_model_get_info(g_m, &info);
    g_cfg.model = g_m;
    g_cfg.model_id = "fuzz";
    g_cfg.n_vocab = info.n_vocab;
    g_cfg.n_ctx = 256;
    g_cfg.max_prompt = 255;
    g_cfg.max_body = 1 << 20;
    g_cfg.api_key = "sekrit";
    g_cfg.tmpl = SRV_TMPL_CHATML;
    g_cfg.max_piece = srv_max_piece_len(g_m, info.n_vocab);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    srv_config cfg = g_cfg;
    const int kind = data[0] & 1 ? SRV_KIND_CHAT : SRV_KIND_COMPLETION;
    if (data[0] & 2) cfg.max_prompt = 8;
    cfg.tmpl = (data[0] >> 2) % SRV_TMPL_COUNT;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (nl) {
        char auth[256];
        size_t al = (size_t)(nl - p) < sizeof auth - 1 ? (size_t)(nl - p) : sizeof auth - 1;
        memcpy(auth, p, al);
        auth[al] = '\0';
        int ok = srv_auth_ok(auth, cfg.api_key);
        if (ok && strlen(auth) < 7) abort(); /* "Bearer " + key at least */
        p = nl + 1;
    }
    srv_error e;
    memset(&e, 0, sizeof e);
    srv_req *r = srv_parse_request(&cfg, kind, p, (size_t)(end - p), &e);
    if (!r) {
        if (e.status < 400 || e.status > 599 || e.message[0] == '\0') abort();
        char *body = srv_json_error(&e);
        if (body) {
            cJSON *j = cJSON_Parse(body);
            if (!j) abort();
            cJSON_Delete(j);
            free(body);
        }
        return 0;
    }
    if (r->n_prompt < 1 || r->n_prompt > cfg.max_prompt) abort();
    for (int i = 0; i < r->n_prompt; i++)
        if (r->prompt[i] < 0 || r->prompt[i] >= cfg.n_vocab) abort();
    if (r->max_tokens < 1 || r->max_tokens > cfg.n_ctx) abort();
    for (int i = 0; i < r->n_stop; i++) if (!r->stop[i]) abort();
    for (int i = 0; i < r->n_bias; i++) if (r->bias_tok[i] < 0 || r->bias_tok[i] >= cfg.n_vocab) abort();
    srv_req_release(r);
    return 0;
}
