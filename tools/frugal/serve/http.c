/* http.c - the HTTP side of `frugal serve` (libmicrohttpd, one thread per connection).
 *
 * A connection thread receives the body (bounded by max_body, and by idle_timeout
 * in total so a slow-drip body cannot hold a thread forever), validates it, submits
 * the request to the scheduler and then blocks on the request: non-streaming
 * requests wait for the end and get one JSON body; streaming requests get an SSE
 * response whose content-reader callback blocks until text arrives. While waiting,
 * the thread probes the socket every 200 ms so a client that went away frees its
 * slot at once. A half-closed client (one that sent its request and then shut down
 * its sending side, as HTTP/1.1 allows and `nc -N` does) is still listening and is
 * answered.
 *
 * Slow clients: MHD's timeout is an inactivity timer, which a client dripping one
 * byte every few seconds never trips. A reaper thread therefore gives every
 * connection a deadline for its request headers (--header-timeout, counted from the
 * accept or from the previous response on a kept-alive connection) and shuts down
 * the socket of a connection that misses it; MHD also caps the connections of one
 * client address (--max-conns-per-ip) so one host cannot take every slot.
 */
#include <malloc.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/thread.h"
#include "core/fault.h"
#include "serve.h"

enum { EP_CHAT, EP_COMPLETIONS, EP_MODELS, EP_HEALTH, EP_METRICS, EP_OTHER, EP_COUNT };
static const char *const k_ep_names[EP_COUNT] = {
    "/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "other",
};
/* statuses counted by /metrics; 0 = the connection was dropped without a response */
static const int k_statuses[] = {200, 400, 401, 404, 405, 408, 413, 431, 500, 503, 0};

/* Request headers: MHD keeps them in a per-connection pool of POOL_BYTES; what
 * does not fit there gets MHD's own 431 (an HTML body). Headers over
 * MAX_HEADER_BYTES that did fit get a JSON 431 from us, so every client that
 * stays below the pool sees the API's error shape. */
#define POOL_BYTES (96 * 1024)
#define MAX_HEADER_BYTES (32 * 1024)
#define N_STATUS ((int)(sizeof k_statuses / sizeof k_statuses[0]))

/* One accepted connection as the reaper sees it (MHD's socket_context). */
typedef struct conn_track {
    struct conn_track *prev, *next;
    int fd;
    double t0;           /* when it began waiting for request headers */
    int waiting;         /* 1 while no complete request header has arrived */
    int cut;             /* the reaper shut its socket down */
} conn_track;

struct srv_http {
    struct MHD_Daemon *d;
    int quiesced_fd;                     /* listen socket handed back by quiesce */
    const srv_config *cfg;
    srv_sched *sched;
    pthread_mutex_t mu;                  /* guards counts and in_flight */
    uint64_t counts[EP_COUNT][N_STATUS];
    int in_flight;                       /* requests received and not yet completed */
    /* header deadlines: every open connection, guarded by tmu; MHD reports a
     * connection closed before it closes the socket, so an fd in this list is
     * never one the kernel already reused */
    pthread_mutex_t tmu;
    pthread_cond_t tcv;
    conn_track *tracks;
    uint64_t n_cut;                      /* connections cut for missing the deadline */
    int n_open;                          /* connections open now */
    int closed_since_trim;               /* closed since the last malloc_trim */
    pthread_t reaper;
    int reaper_started, reaper_stop;
};

/* Per-request state of one connection (MHD's con_cls). */
typedef struct conn {
    struct MHD_Connection *c;
    int ep, status;
    srv_buf body;
    int too_large;
    int no_memory; /* the body could not be kept: answer 503 once it is read */
    double t0;
} conn;

/* The SSE response of one streaming request. */
typedef struct stream_ctx {
    srv_http *h;
    srv_req *r;               /* one reference, released by stream_free */
    srv_buf out;              /* formatted bytes not yet handed to MHD */
    size_t off;
    size_t text_sent;
    int lp_sent, first, finished;
    double last_write;
} stream_ctx;

static int route(const char *url) {
    if (strncmp(url, "/v1/", 4) == 0) url += 3; /* accept both /v1/x and /x */
    if (strcmp(url, "/chat/completions") == 0) return EP_CHAT;
    if (strcmp(url, "/completions") == 0) return EP_COMPLETIONS;
    if (strcmp(url, "/models") == 0) return EP_MODELS;
    if (strcmp(url, "/health") == 0) return EP_HEALTH;
    if (strcmp(url, "/metrics") == 0) return EP_METRICS;
    return EP_OTHER;
}

enum { PEER_OPEN = 0, PEER_HALF_CLOSED = 1, PEER_GONE = 2 };

/* The peer's state, checked without blocking. The end of its sending side alone
 * (POLLRDHUP, a FIN) is not "gone": HTTP/1.1 lets a client half-close after its
 * request and still read the answer, and a FIN looks the same whether the client
 * called shutdown(SHUT_WR) or close(). A client that closed its socket altogether
 * answers our next write with a reset, which shows as POLLHUP/POLLERR; streams
 * probe a half-closed peer with an SSE comment to find out which it is. */
static int peer_state(int fd) {
    if (fd < 0) return PEER_OPEN;
    struct pollfd p = {fd, POLLRDHUP, 0};
    if (poll(&p, 1, 0) <= 0) return PEER_OPEN;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL)) return PEER_GONE;
    return p.revents & POLLRDHUP ? PEER_HALF_CLOSED : PEER_OPEN;
}

/* Wait up to 200 ms on r->cv (r->mu held). */
static void wait_a_little(srv_req *r) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 200 * 1000000L;
    if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

/* ------------------------------------------------------------------ header deadlines */

static conn_track *track_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Start (waiting = 1) or stop (0) the header clock of a connection. */
static void track_wait(srv_http *h, struct MHD_Connection *c, int waiting) {
    conn_track *t = track_of(c);
    if (!t) return;
    pthread_mutex_lock(&h->tmu);
    t->waiting = waiting;
    t->t0 = srv_now();
    pthread_mutex_unlock(&h->tmu);
}

/* MHD: a connection was accepted or is about to be closed (before its socket is). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    srv_http *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_track *t = ci ? fr_calloc(1, sizeof *t) : NULL;
        *socket_context = t;
        if (!t) return; /* out of memory: the idle timeout still applies */
        t->fd = ci->connect_fd;
        t->t0 = srv_now();
        t->waiting = 1;
        pthread_mutex_lock(&h->tmu);
        h->n_open++;
        t->next = h->tracks;
        if (h->tracks) h->tracks->prev = t;
        h->tracks = t;
        pthread_mutex_unlock(&h->tmu);
        return;
    }
    conn_track *t = *socket_context;
    if (!t) return;
    pthread_mutex_lock(&h->tmu);
    h->n_open--;
    h->closed_since_trim++;
    if (t->prev) t->prev->next = t->next;
    else h->tracks = t->next;
    if (t->next) t->next->prev = t->prev;
    pthread_mutex_unlock(&h->tmu);
    free(t);
    *socket_context = NULL;
}

/* After a burst of connections (hostile or not) has come and gone, give the
 * memory their threads freed back to the system (tmu held). glibc keeps freed
 * chunks in its arenas, where a thousand connection pools and request buffers
 * left RSS ~60 % above its baseline for good; malloc_trim releases the free pages
 * of every arena. Done only when nearly no connection is open, so it never costs
 * a busy server anything. */
static void trim_if_quiet(srv_http *h) {
#ifdef __GLIBC__
    if (h->n_open > 4 || h->closed_since_trim < 64) return;
    h->closed_since_trim = 0;
    malloc_trim(0);
#else
    (void)h;
#endif
}

/* The reaper: four times a second, shut down the sockets of connections whose
 * request headers are overdue (and trim memory after a burst). shutdown() wakes the connection's own thread, which
 * then closes it through MHD as for any client that hung up. */
static void *reaper_main(void *arg) {
    srv_http *h = arg;
    double limit = (double)h->cfg->header_timeout;
    pthread_mutex_lock(&h->tmu);
    while (!h->reaper_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 250 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&h->tcv, &h->tmu, &ts);
        double now = srv_now();
        trim_if_quiet(h);
        for (conn_track *t = h->tracks; t; t = t->next) {
            if (!t->waiting || t->cut || now - t->t0 <= limit) continue;
            shutdown(t->fd, SHUT_RDWR);
            t->cut = 1;
            h->n_cut++;
        }
    }
    pthread_mutex_unlock(&h->tmu);
    return NULL;
}

/* ------------------------------------------------------------------ responses */

/* The answer when memory ran out: static, so that sending it allocates nothing of ours. */
static const char k_oom_json[] =
    "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,\"code\":null}}";

/* Queue a static body; the connection is closed after it (used when memory ran out,
 * so nothing about the connection's state can be trusted to be kept). */
static enum MHD_Result respond_static(struct MHD_Connection *c, unsigned status, const char *body) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)(uintptr_t)body, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Connection", "close");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Queue body (malloc'd, ownership taken; NULL = out of memory -> 500). */
static enum MHD_Result respond(conn *cn, int status, const char *ctype, char *body) {
    if (!body) {
        cn->status = 500;
        return respond_static(cn->c, 500, k_oom_json);
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        cn->status = 500;
        return respond_static(cn->c, 500, k_oom_json);
    }
    MHD_add_response_header(resp, "Content-Type", ctype);
    if (status == 405) {
        MHD_add_response_header(resp, "Allow", cn->ep == EP_CHAT || cn->ep == EP_COMPLETIONS ? "POST" : "GET");
    }
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    cn->status = status;
    enum MHD_Result rc = MHD_queue_response(cn->c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result respond_error(conn *cn, srv_error *e) {
    return respond(cn, e->status, "application/json", srv_json_error(e));
}

static enum MHD_Result fail(conn *cn, int status, const char *code, const char *msg) {
    srv_error e = {status, status >= 500 ? "server_error" : "invalid_request_error", NULL, code, {0}};
    snprintf(e.message, sizeof e.message, "%s", msg);
    return respond_error(cn, &e);
}

/* ------------------------------------------------------------------ /metrics */

static uint64_t current_rss(void) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1) break;
    fclose(f);
    return (uint64_t)kb * 1024;
}

/* The safety policy's readings and actions; an unavailable reading is left out
 * (Prometheus has no null). */
static int render_safety(srv_buf *b, const frugal_readings *r) {
    const struct { const char *name, *help; double v; } g[] = {
        {"frugal_cpu_temperature_celsius", "hottest CPU sensor", r->cpu_temp_c},
        {"frugal_cpu_temperature_peak_celsius", "peak CPU temperature since the policy was set", r->peak_cpu_temp_c},
        {"frugal_gpu_temperature_celsius", "GPU temperature (NVML)", r->gpu_temp_c},
        {"frugal_cpu_utilization_percent", "whole-machine CPU utilisation", r->cpu_util_pct},
        {"frugal_gpu_utilization_percent", "GPU utilisation (NVML)", r->gpu_util_pct},
        {"frugal_power_watts_average", "mean power (RAPL package + GPU)", r->avg_watts},
        {"frugal_memory_pressure_some_avg10", "PSI memory some avg10", r->psi_some_avg10},
        {"frugal_memory_room_bytes", "memory left (MemAvailable, cgroup room)", r->mem_room >= 0 ? (double)r->mem_room : NAN},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++)
        if (isfinite(g[i].v))
            rc |= srv_buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.3f\n", g[i].name, g[i].help, g[i].name,
                                 g[i].name, g[i].v);
    rc |= srv_buf_printf(b,
        "# TYPE frugal_throttling gauge\nfrugal_throttling %d\n"
        "# HELP frugal_throttled_seconds_total time paused by the duty cycle\n"
        "# TYPE frugal_throttled_seconds_total counter\nfrugal_throttled_seconds_total %.3f\n"
        "# TYPE frugal_throttle_events_total counter\nfrugal_throttle_events_total %llu\n"
        "# HELP frugal_degrade_level memory degrade steps applied now (0-4)\n"
        "# TYPE frugal_degrade_level gauge\nfrugal_degrade_level %d\n"
        "# TYPE frugal_degrade_steps_total counter\nfrugal_degrade_steps_total %llu\n"
        "# TYPE frugal_degrade_recoveries_total counter\nfrugal_degrade_recoveries_total %llu\n",
        r->throttling, r->throttled_s, (unsigned long long)r->n_throttle_on, r->degrade_level,
        (unsigned long long)r->n_degrade, (unsigned long long)r->n_recover);
    return rc;
}

/* The device's memory (-ngl): bytes held now, peak since load, budget (--vram, else
 * the device's memory), the layers placed, and its name as a label of an info gauge. */
static int render_gpu(srv_buf *b, const frugal_gpu_info *g) {
    char name[2 * sizeof g->device];
    size_t k = 0;
    for (const char *c = g->device; *c && k + 2 < sizeof name; c++) { /* label escaping */
        if (*c == '"' || *c == '\\') name[k++] = '\\';
        name[k++] = *c == '\n' ? ' ' : *c;
    }
    name[k] = 0;
    return srv_buf_printf(b,
        "# HELP frugal_device_info the device the GPU layers run on\n"
        "# TYPE frugal_device_info gauge\nfrugal_device_info{device=\"%s\"} 1\n"
        "# TYPE frugal_device_layers gauge\nfrugal_device_layers %d\n"
        "# HELP frugal_device_memory_bytes device memory held now (weights, activations)\n"
        "# TYPE frugal_device_memory_bytes gauge\nfrugal_device_memory_bytes %llu\n"
        "# HELP frugal_device_memory_peak_bytes device memory peak since load\n"
        "# TYPE frugal_device_memory_peak_bytes gauge\nfrugal_device_memory_peak_bytes %llu\n"
        "# HELP frugal_device_memory_budget_bytes --vram, else the device's memory\n"
        "# TYPE frugal_device_memory_budget_bytes gauge\nfrugal_device_memory_budget_bytes %llu\n",
        name, g->n_gpu_layers, (unsigned long long)g->mem_used, (unsigned long long)g->mem_peak,
        (unsigned long long)g->mem_budget);
}

static char *render_metrics(srv_http *h) {
    srv_sched_stats st;
    srv_sched_get_stats(h->sched, &st);
    srv_buf b = {0};
    int rc = srv_buf_puts(&b, "# HELP frugal_requests_total HTTP requests by endpoint and status (0: dropped)\n"
                              "# TYPE frugal_requests_total counter\n");
    pthread_mutex_lock(&h->mu);
    for (int e = 0; e < EP_COUNT; e++)
        for (int s = 0; s < N_STATUS; s++)
            if (h->counts[e][s])
                rc |= srv_buf_printf(&b, "frugal_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                                     k_ep_names[e], k_statuses[s], (unsigned long long)h->counts[e][s]);
    pthread_mutex_unlock(&h->mu);
    double kv_ratio = st.kv_capacity ? (double)st.kv_used / (double)st.kv_capacity : 0.0;
    rc |= srv_buf_printf(&b,
        "# TYPE frugal_prompt_tokens_total counter\nfrugal_prompt_tokens_total %llu\n"
        "# TYPE frugal_generated_tokens_total counter\nfrugal_generated_tokens_total %llu\n"
        "# HELP frugal_requests_cancelled_total requests abandoned by their client mid-generation\n"
        "# TYPE frugal_requests_cancelled_total counter\nfrugal_requests_cancelled_total %llu\n"
        "# TYPE frugal_queue_depth gauge\nfrugal_queue_depth %d\n"
        "# TYPE frugal_active_slots gauge\nfrugal_active_slots %d\n"
        "# TYPE frugal_slots gauge\nfrugal_slots %d\n",
        (unsigned long long)st.tokens_in, (unsigned long long)st.tokens_out,
        (unsigned long long)st.cancelled, st.queued, st.active, st.n_slots);
    rc |= srv_buf_printf(&b,
        "# HELP frugal_generation_tokens_per_second decode throughput over recent steps (all slots)\n"
        "# TYPE frugal_generation_tokens_per_second gauge\nfrugal_generation_tokens_per_second %.3f\n"
        "# TYPE frugal_kv_used_tokens gauge\nfrugal_kv_used_tokens %llu\n"
        "# TYPE frugal_kv_allocated_tokens gauge\nfrugal_kv_allocated_tokens %llu\n"
        "# TYPE frugal_kv_capacity_tokens gauge\nfrugal_kv_capacity_tokens %llu\n"
        "# TYPE frugal_kv_usage_ratio gauge\nfrugal_kv_usage_ratio %.6f\n",
        st.gen_tok_s, (unsigned long long)st.kv_used, (unsigned long long)st.kv_allocated,
        (unsigned long long)st.kv_capacity, kv_ratio);
    rc |= srv_buf_printf(&b,
        "# TYPE frugal_resident_memory_bytes gauge\nfrugal_resident_memory_bytes %llu\n"
        "# TYPE frugal_peak_rss_bytes gauge\nfrugal_peak_rss_bytes %llu\n",
        (unsigned long long)current_rss(), (unsigned long long)frugal_peak_rss());
    pthread_mutex_lock(&h->tmu);
    uint64_t n_cut = h->n_cut;
    pthread_mutex_unlock(&h->tmu);
    rc |= srv_buf_printf(&b,
        "# HELP frugal_connections_cut_total connections closed for not sending request headers within --header-timeout\n"
        "# TYPE frugal_connections_cut_total counter\nfrugal_connections_cut_total %llu\n",
        (unsigned long long)n_cut);
    if (st.have_safety) rc |= render_safety(&b, &st.safety);
    if (st.have_gpu) rc |= render_gpu(&b, &st.gpu);
    if (rc) { srv_buf_free(&b); return NULL; }
    return b.p;
}

/* ------------------------------------------------------------------ streaming */

static int sse_event(srv_buf *b, char *json) {
    if (!json) return -1;
    int rc = srv_buf_puts(b, "data: ") | srv_buf_puts(b, json) | srv_buf_puts(b, "\n\n");
    free(json);
    return rc;
}

/* Wait for news on the request and format it as SSE events into st->out.
 * 0 ok (maybe only a keep-alive comment), -1 the client went away or OOM. */
static int stream_fill(stream_ctx *st) {
    srv_req *r = st->r;
    const srv_config *cfg = st->h->cfg;
    pthread_mutex_lock(&r->mu);
    while (!r->done && r->text.len == st->text_sent && r->n_lp == st->lp_sent) {
        wait_a_little(r);
        if (r->done || r->text.len != st->text_sent || r->n_lp != st->lp_sent) break;
        pthread_mutex_unlock(&r->mu);
        int ps = peer_state(r->fd);
        if (ps == PEER_GONE) {
            srv_req_cancel(r);
            return -1;
        }
        /* half-closed: a comment each second finds out whether anyone still reads */
        if (srv_now() - st->last_write > (ps == PEER_HALF_CLOSED ? 1.0 : 10.0)) {
            /* an SSE comment: keeps proxies from timing out while queued */
            st->last_write = srv_now();
            return srv_buf_puts(&st->out, ": keep-alive\n\n");
        }
        pthread_mutex_lock(&r->mu);
    }
    size_t n_text = r->text.len - st->text_sent;
    char *text = n_text ? fr_malloc(n_text) : NULL;
    int n_lp = r->n_lp - st->lp_sent;
    srv_lp *lp = n_lp ? fr_malloc((size_t)n_lp * sizeof *lp) : NULL;
    int oom = (n_text && !text) || (n_lp && !lp);
    if (!oom) {
        if (n_text) memcpy(text, r->text.p + st->text_sent, n_text);
        if (n_lp) memcpy(lp, r->lp + st->lp_sent, (size_t)n_lp * sizeof *lp);
        st->text_sent += n_text;
        st->lp_sent += n_lp;
    }
    int done = r->done, status = r->err_status;
    const char *finish = r->finish;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", r->err_msg);
    pthread_mutex_unlock(&r->mu);

    int rc = oom ? -1 : 0;
    if (!rc && (n_text || n_lp || (st->first && !status))) {
        rc = sse_event(&st->out, srv_json_chunk(cfg, r, text, n_text, lp, n_lp, NULL, st->first));
        st->first = 0;
    }
    free(text);
    free(lp);
    if (!rc && done) {
        if (status) {
            srv_error e = {status, status >= 500 ? "server_error" : "invalid_request_error", NULL, NULL, {0}};
            snprintf(e.message, sizeof e.message, "%s", msg);
            rc = sse_event(&st->out, srv_json_error(&e));
        } else {
            rc = sse_event(&st->out, srv_json_chunk(cfg, r, "", 0, NULL, 0, finish ? finish : "stop", 0));
            if (!rc && r->include_usage) {
                pthread_mutex_lock(&r->mu);
                char *u = srv_json_usage_chunk(cfg, r);
                pthread_mutex_unlock(&r->mu);
                rc = sse_event(&st->out, u);
            }
        }
        if (!rc) rc = srv_buf_puts(&st->out, "data: [DONE]\n\n");
        st->finished = 1;
    }
    st->last_write = srv_now();
    return rc;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max) {
    stream_ctx *st = cls;
    (void)pos;
    while (st->off >= st->out.len) {
        st->out.len = 0;
        st->off = 0;
        if (st->finished) return MHD_CONTENT_READER_END_OF_STREAM;
        if (stream_fill(st) != 0) return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t n = st->out.len - st->off;
    if (n > max) n = max;
    memcpy(buf, st->out.p + st->off, n);
    st->off += n;
    return (ssize_t)n;
}

/* MHD is done with the response (sent, or the connection died): a request still
 * running is abandoned, which frees its slot. */
static void stream_free(void *cls) {
    stream_ctx *st = cls;
    srv_req_cancel(st->r);
    srv_req_release(st->r);
    srv_buf_free(&st->out);
    free(st);
}

/* ------------------------------------------------------------------ generation */

static enum MHD_Result handle_generate(srv_http *h, conn *cn) {
    const srv_config *cfg = h->cfg;
    srv_error e = {0};
    srv_req *r = srv_parse_request(cfg, cn->ep == EP_CHAT ? SRV_KIND_CHAT : SRV_KIND_COMPLETION,
                                   cn->body.p ? cn->body.p : "", cn->body.len, &e);
    if (!r) return respond_error(cn, &e);
    r->deadline = cfg->timeout > 0 ? srv_now() + cfg->timeout : 0;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(cn->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    int sub = srv_sched_submit(h->sched, r);
    if (sub != 0) {
        srv_req_release(r);
        return fail(cn, 503, sub == -1 ? "queue_full" : "shutting_down",
                    sub == -1 ? "the server is busy: request queue full, retry later" : "the server is shutting down");
    }
    /* generation is bounded by cfg->timeout; the idle timeout must not cut it */
    MHD_set_connection_option(cn->c, MHD_CONNECTION_OPTION_TIMEOUT, 0u);
    if (r->stream) {
        stream_ctx *st = fr_calloc(1, sizeof *st);
        struct MHD_Response *resp = st ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024,
                                                                          stream_reader, st, stream_free) : NULL;
        if (!resp) {
            free(st);
            srv_req_cancel(r);
            srv_req_release(r);
            return fail(cn, 500, NULL, "out of memory");
        }
        st->h = h;
        st->r = r;
        st->first = 1;
        st->last_write = srv_now();
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
        cn->status = 200;
        enum MHD_Result rc = MHD_queue_response(cn->c, MHD_HTTP_OK, resp);
        MHD_destroy_response(resp);
        return rc;
    }
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        wait_a_little(r);
        if (r->done) break;
        pthread_mutex_unlock(&r->mu);
        if (peer_state(r->fd) == PEER_GONE) {
            srv_req_cancel(r);
            srv_req_release(r);
            return MHD_NO; /* drop the connection; nobody is listening */
        }
        pthread_mutex_lock(&r->mu);
    }
    enum MHD_Result rc;
    if (r->err_status) {
        srv_error fe = {r->err_status, r->err_status >= 500 ? "server_error" : "invalid_request_error", NULL, NULL, {0}};
        snprintf(fe.message, sizeof fe.message, "%s", r->err_msg);
        pthread_mutex_unlock(&r->mu);
        rc = respond_error(cn, &fe);
    } else {
        char *body = srv_json_response(cfg, r);
        pthread_mutex_unlock(&r->mu);
        rc = respond(cn, 200, "application/json", body);
    }
    srv_req_release(r);
    return rc;
}

/* ------------------------------------------------------------------ dispatch */

static int authorized(const srv_config *cfg, struct MHD_Connection *c) {
    if (!cfg->api_key) return 1;
    return srv_auth_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"), cfg->api_key);
}

static enum MHD_Result sum_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    *(size_t *)cls += strlen(key) + (value ? strlen(value) : 0) + 4;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    srv_http *h = cls;
    const srv_config *cfg = h->cfg;
    conn *cn = *con_cls;
    (void)version;
    if (!cn) {
        /* headers are in: everything decidable without the body is decided now */
        cn = fr_calloc(1, sizeof *cn);
        if (!cn) { /* no state for this request: answer 503 and close */
            track_wait(h, c, 0);
            return respond_static(c, 503, k_oom_json);
        }
        *con_cls = cn;
        pthread_mutex_lock(&h->mu);
        h->in_flight++;
        pthread_mutex_unlock(&h->mu);
        cn->c = c;
        cn->t0 = srv_now();
        track_wait(h, c, 0); /* the headers are complete: their deadline is met */
        cn->ep = route(url);
        int is_post = strcmp(method, "POST") == 0;
        int is_get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
        int wants_post = cn->ep == EP_CHAT || cn->ep == EP_COMPLETIONS;
        size_t hdr_bytes = strlen(url) + strlen(method);
        MHD_get_connection_values(c, MHD_HEADER_KIND, sum_header, &hdr_bytes);
        if (hdr_bytes > MAX_HEADER_BYTES)
            return fail(cn, 431, "header_too_large", "request headers too large (at most 32 KiB)");
        if (cn->ep == EP_OTHER) return fail(cn, 404, "not_found", "unknown endpoint");
        if (wants_post ? !is_post : !is_get) return fail(cn, 405, "method_not_allowed", "method not allowed on this endpoint");
        if (cn->ep != EP_HEALTH && !authorized(cfg, c)) {
            srv_error e = {401, "invalid_request_error", NULL, "invalid_api_key", "invalid or missing API key (Authorization: Bearer KEY)"};
            return respond_error(cn, &e);
        }
        if (cn->ep == EP_HEALTH) return respond(cn, 200, "application/json", fr_strdup("{\"status\":\"ok\"}"));
        if (cn->ep == EP_MODELS) return respond(cn, 200, "application/json", srv_json_models(cfg));
        if (cn->ep == EP_METRICS) return respond(cn, 200, "text/plain; version=0.0.4", render_metrics(h));
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > cfg->max_body) return fail(cn, 413, "body_too_large", "request body too large");
        return MHD_YES;
    }
    if (*upload_data_size) {
        /* a body must arrive within idle_timeout seconds in total: drop slow drips */
        if (srv_now() - cn->t0 > (double)cfg->idle_timeout) return MHD_NO;
        if (cn->too_large || cn->body.len + *upload_data_size > cfg->max_body) {
            cn->too_large = 1;
            srv_buf_free(&cn->body);
        } else if (cn->no_memory || srv_buf_append(&cn->body, upload_data, *upload_data_size) != 0) {
            cn->no_memory = 1; /* read the rest and drop it, so that the client reads the answer */
            srv_buf_free(&cn->body);
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cn->status) return MHD_YES; /* already answered */
    if (cn->too_large) return fail(cn, 413, "body_too_large", "request body too large");
    if (cn->no_memory) {
        cn->status = 503;
        return respond_static(c, 503, k_oom_json);
    }
    return handle_generate(h, cn);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    srv_http *h = cls;
    conn *cn = *con_cls;
    (void)toe;
    if (!cn) return;
    int s = N_STATUS - 1;
    for (int i = 0; i < N_STATUS; i++) if (k_statuses[i] == cn->status) s = i;
    pthread_mutex_lock(&h->mu);
    h->counts[cn->ep][s]++;
    h->in_flight--;
    pthread_mutex_unlock(&h->mu);
    /* a kept-alive connection idles under the normal timeout again */
    MHD_set_connection_option(c, MHD_CONNECTION_OPTION_TIMEOUT, h->cfg->idle_timeout);
    track_wait(h, c, 1); /* and the next request's headers have a deadline again */
    srv_buf_free(&cn->body);
    free(cn);
    *con_cls = NULL;
}

/* Stop the reaper and free h (the daemon is stopped or was never started). */
static void http_free(srv_http *h) {
    if (h->reaper_started) {
        pthread_mutex_lock(&h->tmu);
        h->reaper_stop = 1;
        pthread_cond_signal(&h->tcv);
        pthread_mutex_unlock(&h->tmu);
        pthread_join(h->reaper, NULL);
    }
    pthread_cond_destroy(&h->tcv);
    pthread_mutex_destroy(&h->tmu);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

srv_http *srv_http_start(const srv_config *cfg, srv_sched *sched, const char *host, int port, char *err,
                         size_t errlen) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char ports[16];
    snprintf(ports, sizeof ports, "%d", port);
    int g = getaddrinfo(host, ports, &hints, &ai);
    if (g != 0 || !ai) {
        snprintf(err, errlen, "cannot resolve host '%s': %s", host, gai_strerror(g));
        return NULL;
    }
    srv_http *h = fr_calloc(1, sizeof *h);
    if (!h) { freeaddrinfo(ai); snprintf(err, errlen, "out of memory"); return NULL; }
    h->cfg = cfg;
    h->sched = sched;
    h->quiesced_fd = -1;
    pthread_mutex_init(&h->mu, NULL);
    pthread_mutex_init(&h->tmu, NULL);
    pthread_cond_init(&h->tcv, NULL);
    if (fr_thread_create(&h->reaper, reaper_main, h) != 0) {
        freeaddrinfo(ai);
        snprintf(err, errlen, "cannot start a thread");
        http_free(h);
        return NULL;
    }
    h->reaper_started = 1;
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, h,
                            MHD_OPTION_SOCK_ADDR, ai->ai_addr,
                            MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)1024,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)POOL_BYTES,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->max_conns_per_ip,
                            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
                            MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!h->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (port in use or not permitted?)", host, port);
        http_free(h);
        return NULL;
    }
    return h;
}

int srv_http_port(srv_http *h) {
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    return di ? (int)di->port : -1;
}

void srv_http_quiesce(srv_http *h) {
    if (h && h->d && h->quiesced_fd < 0) h->quiesced_fd = (int)MHD_quiesce_daemon(h->d);
}

void srv_http_drain(srv_http *h, double seconds) {
    if (!h) return;
    for (double t0 = srv_now(); srv_now() - t0 < seconds;) {
        pthread_mutex_lock(&h->mu);
        int n = h->in_flight;
        pthread_mutex_unlock(&h->mu);
        if (n == 0) break;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    if (h->d) MHD_stop_daemon(h->d);
    if (h->quiesced_fd >= 0) close(h->quiesced_fd);
    http_free(h);
}
