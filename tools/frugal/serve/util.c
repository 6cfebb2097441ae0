/* util.c - buffers, clock, UTF-8 helpers and the request object of `frugal serve`. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/fault.h"
#include "serve.h"
#include "../args.h"

int srv_buf_append(srv_buf *b, const void *data, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = fr_realloc(b->p, nc);
        if (!p) return -1;
        b->p = p;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

int srv_buf_puts(srv_buf *b, const char *s) { return srv_buf_append(b, s, strlen(s)); }

int srv_buf_printf(srv_buf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return -1;
    if ((size_t)n < sizeof tmp) return srv_buf_append(b, tmp, (size_t)n);
    char *big = fr_malloc((size_t)n + 1);
    if (!big) return -1;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = srv_buf_append(b, big, (size_t)n);
    free(big);
    return rc;
}

void srv_buf_free(srv_buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

int srv_auth_ok(const char *header, const char *key) {
    if (!header || strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t')) return 0;
    const char *a = header + 6;
    while (*a == ' ' || *a == '\t') a++;
    /* Walk the whole given token and fold every byte difference into one value, so
     * the time taken depends only on the length of what the client sent, never on
     * where it differs from the key or on the key's own length. volatile keeps the
     * compiler from turning the loop into an early-exit comparison. */
    size_t la = strlen(a), lk = strlen(key);
    volatile unsigned char diff = (unsigned char)(la != lk);
    for (size_t i = 0; i < la; i++) {
        unsigned char k = lk ? (unsigned char)key[i % lk] : 0;
        diff |= (unsigned char)((unsigned char)a[i] ^ k);
    }
    return lk > 0 && diff == 0;
}

int srv_max_piece_len(const frugal_model *model, int n_vocab) {
    int best = 0;
    char buf[512];
    for (int t = 0; t < n_vocab; t++) {
        int n = frugal_token_to_piece(model, t, buf, (int)sizeof buf, 1);
        if (n < 0) n = -n;
        if (n > best) best = n;
    }
    return best;
}

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Expected length of a UTF-8 sequence from its lead byte; 0 for a byte that cannot
 * start one (continuation bytes, C0/C1 overlong leads, F5..FF). */
static size_t utf8_lead_len(unsigned char c) {
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c >= 0xE0 && c <= 0xEF) return 3;
    if (c >= 0xF0 && c <= 0xF4) return 4;
    return 0;
}

size_t srv_utf8_complete_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    /* find the last lead byte within the final 4 bytes */
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = s[n - back];
        if ((c & 0xC0) == 0x80) continue; /* continuation byte */
        size_t want = utf8_lead_len(c);
        if (want > back) {
            /* incomplete so far; hold it back only if the bytes seen are continuations */
            return n - back;
        }
        return n;
    }
    return n;
}

char *srv_utf8_sanitize(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    char *out = fr_malloc(n * 3 + 1); /* each bad byte becomes 3 bytes at most */
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        size_t l = s[i] ? cli_utf8_valid_len(s + i, n - i) : 0;
        if (l == 0) {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, s + i, l);
        o += l;
        i += l;
    }
    out[o] = '\0';
    return out;
}

/* ------------------------------------------------------------------ requests */

srv_req *srv_req_new(void) {
    srv_req *r = fr_calloc(1, sizeof *r);
    if (!r) return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) { free(r); return NULL; }
    if (pthread_cond_init(&r->cv, NULL) != 0) {
        pthread_mutex_destroy(&r->mu);
        free(r);
        return NULL;
    }
    r->refs = 1;
    r->fd = -1;
    r->n_logprobs = -1;
    return r;
}

void srv_req_retain(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    r->refs++;
    pthread_mutex_unlock(&r->mu);
}

void srv_req_release(srv_req *r) {
    if (!r) return;
    pthread_mutex_lock(&r->mu);
    int last = --r->refs == 0;
    pthread_mutex_unlock(&r->mu);
    if (!last) return;
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    srv_buf_free(&r->text);
    free(r->lp);
    free(r->bias_tok);
    free(r->bias_val);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

void srv_req_cancel(srv_req *r) {
    pthread_mutex_lock(&r->mu);
    if (!r->done) r->cancelled = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}
