/* serve.h - internals of `frugal serve`, an OpenAI-compatible HTTP server.
 *
 * Threads:
 *  - libmicrohttpd runs one thread per connection (http.c). A connection thread
 *    parses and validates a request, tokenizes its prompt (the model is read-only and
 *    shared), submits an srv_req to the scheduler and then blocks on the request's
 *    condition variable, copying text out as it appears (streaming) or waiting for the
 *    end (non-streaming).
 *  - One scheduler thread (sched.c) owns the frugal_context: it admits queued
 *    requests into free slots (one KV sequence each) and runs one frugal_eval_batch
 *    per step for all of them (continuous batching, chunked prefill).
 * An srv_req is shared by both sides and reference counted; its output fields are
 * guarded by its own mutex. Only the public API (frugal.h) is used.
 */
#ifndef FRUGAL_SERVE_H
#define FRUGAL_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "frugal.h"

/* ------------------------------------------------------------------ small helpers */

typedef struct srv_buf {
    char *p;
    size_t len, cap;
} srv_buf;

/* Append n bytes (keeps the buffer NUL-terminated). 0 ok, -1 out of memory. */
int srv_buf_append(srv_buf *b, const void *data, size_t n);
int srv_buf_puts(srv_buf *b, const char *s);
int srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void srv_buf_free(srv_buf *b);

/* 1 when the Authorization header value `header` (may be NULL) carries `key` as a
 * bearer token: scheme case-insensitive (RFC 7235), one or more spaces, then the
 * key compared in time independent of where it differs and of the key's length. */
int srv_auth_ok(const char *header, const char *key);

/* Longest text of any token of the model in bytes (special tokens included), or 0. */
int srv_max_piece_len(const frugal_model *model, int n_vocab);

/* Monotonic clock in seconds. */
double srv_now(void);

/* Length of the longest prefix of s[0..n) that does not end inside an incomplete
 * (but so far valid-looking) UTF-8 sequence: the bytes after it may be completed by
 * the next token's text, so streaming holds them back. */
size_t srv_utf8_complete_len(const char *s, size_t n);

/* malloc'd, NUL-terminated copy of s[0..n) where every byte that is not part of
 * valid UTF-8 (and every NUL) is replaced by U+FFFD, so JSON output stays valid.
 * NULL on out of memory. */
char *srv_utf8_sanitize(const char *s, size_t n);

/* ------------------------------------------------------------------ chat templates */

/* The formats and the renderer are the public API's (src/api/chat_template.c);
 * these names keep the server's code short. */
enum {
    SRV_TMPL_CHATML = FRUGAL_TMPL_CHATML, SRV_TMPL_LLAMA2 = FRUGAL_TMPL_LLAMA2,
    SRV_TMPL_LLAMA3 = FRUGAL_TMPL_LLAMA3, SRV_TMPL_MISTRAL = FRUGAL_TMPL_MISTRAL,
    SRV_TMPL_PHI3 = FRUGAL_TMPL_PHI3, SRV_TMPL_GEMMA = FRUGAL_TMPL_GEMMA,
    SRV_TMPL_ZEPHYR = FRUGAL_TMPL_ZEPHYR, SRV_TMPL_COUNT = FRUGAL_TMPL_COUNT
};

typedef frugal_chat_msg srv_msg;

/* Name ("chatml", "llama2", ...) -> SRV_TMPL_*, or -1. */
int srv_template_parse(const char *name);
const char *srv_template_name(int tmpl);
/* Recognise a Jinja chat template by its distinctive markers; -1 when unknown. */
int srv_template_detect(const char *jinja);
/* Render the conversation followed by the assistant's turn header into out. BOS is
 * not written: the tokenizer adds it as the model's metadata says. 0 ok, -1 OOM. */
int srv_template_render(int tmpl, const srv_msg *msgs, int n, srv_buf *out);
/* The text that ends an assistant turn in this format when the model does not have
 * it as a control token (used as an implicit stop string), or NULL. */
const char *srv_template_end_marker(int tmpl);

/* ------------------------------------------------------------------ requests */

enum { SRV_KIND_CHAT = 0, SRV_KIND_COMPLETION = 1 };

#define SRV_MAX_STOP 16
#define SRV_MAX_TOP_LP 20

/* Log-probabilities of one generated token (natural log, of the raw model
 * distribution, before temperature/top-p). */
typedef struct srv_lp {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top[SRV_MAX_TOP_LP];
    float top_lp[SRV_MAX_TOP_LP];
} srv_lp;

typedef struct srv_req {
    /* set by the HTTP side before submission, read-only afterwards */
    int kind, stream, include_usage;
    int32_t *prompt;
    int n_prompt;
    int max_tokens;
    int n_logprobs;              /* -1: none; else top alternatives per token */
    frugal_sampler_params sp;
    char *stop[SRV_MAX_STOP];
    int n_stop;
    int32_t *bias_tok;           /* logit_bias: added to these tokens' logits */
    float *bias_val;             /* (-INFINITY bans a token) */
    int n_bias;
    double deadline;             /* srv_now() after which generation stops; 0: none */
    char id[48];
    long long created;
    int fd;                      /* the client's socket, for disconnect probes; -1 */

    /* shared between the sides, guarded by mu; cv is broadcast on every change */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    srv_buf text;                /* emitted text: stop strings removed, UTF-8 complete */
    srv_lp *lp;
    int n_lp, cap_lp;
    int n_gen;                   /* completion tokens so far */
    int done;                    /* finished: finish or err_status is set */
    const char *finish;          /* "stop" or "length" */
    int err_status;              /* non-zero: failed with this HTTP status */
    char err_msg[256];
    int cancelled;               /* the client went away: the slot is freed */
    int refs;
} srv_req;

/* A new request holding one reference (the caller's), or NULL on OOM. */
srv_req *srv_req_new(void);
void srv_req_retain(srv_req *r);
/* Drop a reference; the last one frees the request. */
void srv_req_release(srv_req *r);
/* Mark the request abandoned by its client (no-op once done). */
void srv_req_cancel(srv_req *r);

/* ------------------------------------------------------------------ scheduler */

typedef struct srv_sched srv_sched;

typedef struct srv_sched_stats {
    int n_slots, active, queued;
    uint64_t tokens_in, tokens_out;
    uint64_t cancelled;           /* requests dropped because the client went away */
    double gen_tok_s;             /* generated tokens per second over recent steps */
    uint64_t kv_used, kv_allocated, kv_capacity;
    int have_safety;              /* a safety policy is set: its readings */
    frugal_readings safety;
    int have_gpu;                 /* layers on a device (-ngl): its memory figures */
    frugal_gpu_info gpu;
} srv_sched_stats;

/* ctx must have n_seq_max >= n_slots sequences of n_ctx tokens each. The scheduler
 * does not own model or ctx. NULL on OOM. */
srv_sched *srv_sched_new(const frugal_model *model, frugal_context *ctx, int n_slots,
                         int n_ctx, int queue_cap);
int srv_sched_start(srv_sched *s);     /* 0 ok */
/* Queue a request; the scheduler takes its own reference. 0 ok, -1 queue full,
 * -2 shutting down. */
int srv_sched_submit(srv_sched *s, srv_req *r);
void srv_sched_get_stats(srv_sched *s, srv_sched_stats *st);
/* Fail every queued and running request ("server shutting down"), stop the thread. */
void srv_sched_stop(srv_sched *s);
void srv_sched_free(srv_sched *s);

/* ------------------------------------------------------------------ JSON API */

typedef struct srv_config {
    frugal_model *model;
    const char *model_id;        /* what /v1/models lists and responses name */
    int n_vocab, n_ctx;
    int max_prompt;              /* prompt tokens allowed (<= n_ctx - 1) */
    size_t max_body;
    const char *api_key;         /* NULL: no authentication */
    double timeout;              /* seconds a request may take in total (0: none) */
    unsigned idle_timeout;       /* seconds a connection may idle / take to send a body */
    unsigned header_timeout;     /* seconds a connection may take to send request headers */
    unsigned max_conns_per_ip;   /* open connections allowed per client address (0: any) */
    int max_piece;               /* longest token text in bytes (bounds tokenization); 0: unknown */
    int tmpl;                    /* SRV_TMPL_* */
    int n_slots, queue_cap;
} srv_config;

typedef struct srv_error {
    int status;                  /* HTTP status */
    const char *type;            /* OpenAI error type */
    const char *param;           /* offending field or NULL */
    const char *code;            /* machine-readable code or NULL */
    char message[256];
} srv_error;

/* Parse and validate a /v1/chat/completions (kind CHAT) or /v1/completions body,
 * render and tokenize its prompt and return a request ready for submission. Unknown
 * fields are ignored (as OpenAI-compatible servers commonly do). NULL with e filled
 * on a client error (400) or out of memory (500). */
srv_req *srv_parse_request(const srv_config *cfg, int kind, const char *body, size_t len,
                           srv_error *e);

/* Render a chat request's messages with the configured template (the prompt text
 * srv_parse_request would tokenize). malloc'd string, or NULL with e filled. */
char *srv_render_chat(const srv_config *cfg, const char *body, size_t len, srv_error *e);

/* JSON bodies (malloc'd strings, NULL on OOM). The caller holds r->mu for the
 * fields it reads (text, lp, n_gen, finish). */
char *srv_json_error(const srv_error *e);
char *srv_json_response(const srv_config *cfg, srv_req *r);
/* One streaming chunk with text delta s[0..n), the log-probabilities lp[0..n_lp),
 * finish (NULL while running) and, for chat, the role on the first chunk. */
char *srv_json_chunk(const srv_config *cfg, srv_req *r, const char *s, size_t n,
                     const srv_lp *lp, int n_lp, const char *finish, int first);
/* The final usage-only chunk (stream_options.include_usage). */
char *srv_json_usage_chunk(const srv_config *cfg, srv_req *r);
char *srv_json_models(const srv_config *cfg);

/* ------------------------------------------------------------------ HTTP server */

typedef struct srv_http srv_http;

/* Start listening on host:port. NULL with a message in err (size errlen). */
srv_http *srv_http_start(const srv_config *cfg, srv_sched *sched, const char *host, int port,
                         char *err, size_t errlen);
/* The port actually bound (useful with port 0), or -1. */
int srv_http_port(srv_http *h);
/* Stop accepting new connections (in-flight ones go on). */
void srv_http_quiesce(srv_http *h);
/* Wait (at most `seconds`) until every request received has been answered, so
 * streams cut short by a shutdown still get their final event. */
void srv_http_drain(srv_http *h, double seconds);
/* Close everything and free; requests must have been failed first (srv_sched_stop)
 * so connection threads blocked on them wake up. */
void srv_http_stop(srv_http *h);

#endif
