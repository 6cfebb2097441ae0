/* sched.c - continuous batching: one thread owns the context and steps every active
 * request together.
 *
 * Each step: admit queued requests into free slots (slot i = KV sequence i), then
 * build ONE frugal_eval_batch holding, per slot, either its last sampled token
 * (decode) or the next chunk of its prompt (chunked prefill: at most PREFILL_CHUNK
 * tokens per slot and PREFILL_BUDGET per step, so a long prompt arriving does not
 * stall the streams already running). Slots whose item carried logits are then
 * sampled with their own seeded sampler; the text is released to the client as far
 * as it is certain: incomplete UTF-8 and any tail that could still grow into a stop
 * string are held back.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/thread.h"
#include "core/fault.h"
#include "serve.h"

enum { PREFILL_CHUNK = 64, PREFILL_BUDGET = 256 };

typedef struct slot {
    srv_req *req;            /* NULL: free */
    frugal_sampler *smpl;
    int n_fed;               /* prompt tokens evaluated (or queued in this step) */
    int32_t last;            /* last sampled token, fed in the next step */
    int has_last;
    int n_gen;
    srv_buf hold;            /* generated text not released yet */
} slot;

struct srv_sched {
    const frugal_model *model;
    frugal_context *ctx;
    int n_slots, n_ctx, n_vocab, queue_cap;
    slot *slots;
    frugal_batch_item *items;
    int *item_slot;          /* slot of each batch item */
    float *biased;           /* n_vocab logits with a request's logit_bias applied */

    pthread_mutex_t mu;      /* guards the queue, stopping and the stats */
    pthread_cond_t cv;
    srv_req **queue;         /* ring buffer */
    int q_head, q_len;
    int stopping, started;
    pthread_t thread;

    int active;
    uint64_t tokens_in, tokens_out, cancelled;
    double gen_tok_s;
    uint64_t kv_used, kv_alloc, kv_cap;
};

srv_sched *srv_sched_new(const frugal_model *model, frugal_context *ctx, int n_slots, int n_ctx,
                         int queue_cap) {
    srv_sched *s = fr_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = model;
    s->ctx = ctx;
    s->n_slots = n_slots;
    s->n_ctx = n_ctx;
    frugal_model_info info;
    frugal_model_get_info(model, &info);
    s->n_vocab = info.n_vocab;
    s->queue_cap = queue_cap;
    int max_items = n_slots + PREFILL_BUDGET;
    s->slots = fr_calloc((size_t)n_slots, sizeof *s->slots);
    s->items = fr_calloc((size_t)max_items, sizeof *s->items);
    s->item_slot = fr_calloc((size_t)max_items, sizeof *s->item_slot);
    s->queue = fr_calloc((size_t)(queue_cap > 0 ? queue_cap : 1), sizeof *s->queue);
    s->biased = fr_calloc((size_t)s->n_vocab, sizeof *s->biased);
    if (!s->slots || !s->items || !s->item_slot || !s->queue || !s->biased ||
        pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s->slots); free(s->items); free(s->item_slot); free(s->queue); free(s->biased);
        free(s);
        return NULL;
    }
    pthread_cond_init(&s->cv, NULL);
    frugal_kv_usage(ctx, &s->kv_used, &s->kv_alloc, &s->kv_cap);
    return s;
}

int srv_sched_submit(srv_sched *s, srv_req *r) {
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    if (s->stopping) rc = -2;
    else if (s->q_len >= s->queue_cap) rc = -1;
    else {
        srv_req_retain(r);
        s->queue[(s->q_head + s->q_len) % s->queue_cap] = r;
        s->q_len++;
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void srv_sched_get_stats(srv_sched *s, srv_sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    st->n_slots = s->n_slots;
    st->active = s->active;
    st->queued = s->q_len;
    st->tokens_in = s->tokens_in;
    st->tokens_out = s->tokens_out;
    st->cancelled = s->cancelled;
    st->gen_tok_s = s->gen_tok_s;
    st->kv_used = s->kv_used;
    st->kv_allocated = s->kv_alloc;
    st->kv_capacity = s->kv_cap;
    pthread_mutex_unlock(&s->mu);
    st->have_safety = frugal_get_readings(s->ctx, &st->safety, NULL) == FRUGAL_OK;
    st->have_gpu = frugal_model_gpu_info(s->model, &st->gpu); /* the counters are atomics */
}

/* ------------------------------------------------------------------ request ends */

/* Finish or fail r (status 0: finished with reason `finish`), waking its client. */
static void req_end(srv_req *r, const char *finish, int status, const char *msg) {
    pthread_mutex_lock(&r->mu);
    if (!r->done) {
        r->done = 1;
        r->finish = finish;
        if (status) {
            r->err_status = status;
            snprintf(r->err_msg, sizeof r->err_msg, "%.250s", msg);
        }
    }
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Free slot i: its KV blocks go back to the pool at once, the request reference is
 * dropped. Called only by the scheduler thread. */
static void slot_free(srv_sched *s, int i) {
    slot *sl = &s->slots[i];
    frugal_seq_clear(s->ctx, i);
    frugal_sampler_free(sl->smpl);
    srv_req_release(sl->req);
    srv_buf_free(&sl->hold);
    memset(sl, 0, sizeof *sl);
}

/* Move text from the slot's hold buffer to the client: everything up to the first
 * stop string (then finish with "stop"), else everything that can no longer become
 * part of a stop string or of a UTF-8 character (all of it when final).
 * Returns 1 when a stop string ended the request. */
static int release_text(srv_sched *s, int i, int final) {
    slot *sl = &s->slots[i];
    srv_req *r = sl->req;
    const char *h = sl->hold.p ? sl->hold.p : "";
    size_t len = sl->hold.len, cut = len;
    int stopped = 0;
    for (int k = 0; k < r->n_stop; k++) {
        const char *p = memmem(h, len, r->stop[k], strlen(r->stop[k]));
        if (p && (size_t)(p - h) < cut) { cut = (size_t)(p - h); stopped = 1; }
    }
    if (!stopped && !final) {
        /* the earliest position whose tail is a proper prefix of a stop string */
        for (int k = 0; k < r->n_stop; k++) {
            size_t sl_len = strlen(r->stop[k]);
            size_t from = len >= sl_len ? len - sl_len + 1 : 0;
            for (size_t p = from; p < cut; p++)
                if (memcmp(h + p, r->stop[k], len - p) == 0) { cut = p; break; }
        }
        cut = srv_utf8_complete_len(h, cut);
    }
    pthread_mutex_lock(&r->mu);
    int rc = cut ? srv_buf_append(&r->text, h, cut) : 0;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    if (rc) {
        req_end(r, NULL, 500, "out of memory");
        return 1;
    }
    if (stopped) {
        req_end(r, "stop", 0, NULL);
        return 1;
    }
    memmove(sl->hold.p, h + cut, len - cut);
    sl->hold.len = len - cut;
    return 0;
}

/* Natural-log softmax of the logits: the chosen token's value and the top k. */
static void fill_logprobs(srv_sched *s, const float *logits, int32_t tok, int k, srv_lp *out) {
    float mx = logits[0];
    for (int v = 1; v < s->n_vocab; v++) if (logits[v] > mx) mx = logits[v];
    double sum = 0;
    for (int v = 0; v < s->n_vocab; v++) sum += exp((double)(logits[v] - mx));
    float lse = mx + (float)log(sum);
    out->token = tok;
    out->logprob = logits[tok] - lse;
    if (k > SRV_MAX_TOP_LP) k = SRV_MAX_TOP_LP;
    if (k > s->n_vocab) k = s->n_vocab;
    out->n_top = 0;
    /* insertion into a sorted top-k list: k is small */
    for (int v = 0; v < s->n_vocab && k > 0; v++) {
        float x = logits[v];
        int n = out->n_top;
        if (n == k && x <= out->top_lp[n - 1]) continue;
        int p = n < k ? n : k - 1;
        while (p > 0 && out->top_lp[p - 1] < x) {
            out->top_lp[p] = out->top_lp[p - 1];
            out->top[p] = out->top[p - 1];
            p--;
        }
        out->top_lp[p] = x;
        out->top[p] = v;
        if (n < k) out->n_top++;
    }
    for (int j = 0; j < out->n_top; j++) out->top_lp[j] -= lse;
}

/* Sample slot i's next token from its logits and hand the result to the client.
 * Ends the request on EOG, a stop string, max_tokens or a full sequence. */
static void on_logits(srv_sched *s, int i, const float *logits) {
    slot *sl = &s->slots[i];
    srv_req *r = sl->req;
    const float *dist = logits;
    if (r->n_bias > 0) {
        memcpy(s->biased, logits, (size_t)s->n_vocab * sizeof *logits);
        for (int k = 0; k < r->n_bias; k++) s->biased[r->bias_tok[k]] += r->bias_val[k];
        dist = s->biased;
    }
    int32_t tok = frugal_sampler_sample(sl->smpl, dist, s->n_vocab);
    if (frugal_token_is_eog(s->model, tok)) {
        release_text(s, i, 1);
        req_end(r, "stop", 0, NULL);
        return;
    }
    frugal_sampler_accept(sl->smpl, tok);
    sl->n_gen++;
    srv_lp lp;
    if (r->n_logprobs >= 0) fill_logprobs(s, logits, tok, r->n_logprobs, &lp);
    pthread_mutex_lock(&r->mu);
    r->n_gen = sl->n_gen;
    int oom = 0;
    if (r->n_logprobs >= 0) {
        if (r->n_lp == r->cap_lp) {
            int nc = r->cap_lp ? r->cap_lp * 2 : 16;
            srv_lp *p = fr_realloc(r->lp, (size_t)nc * sizeof *p);
            if (p) { r->lp = p; r->cap_lp = nc; }
        }
        if (r->n_lp < r->cap_lp) r->lp[r->n_lp++] = lp;
        else oom = 1;
    }
    pthread_mutex_unlock(&r->mu);
    char piece[256];
    int n = frugal_token_to_piece(s->model, tok, piece, (int)sizeof piece, 0);
    if (n < 0) n = 0; /* a piece longer than 256 bytes: not in any real vocabulary */
    if (oom || srv_buf_append(&sl->hold, piece, (size_t)n) != 0) {
        req_end(r, NULL, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&s->mu);
    s->tokens_out++;
    pthread_mutex_unlock(&s->mu);
    int at_limit = sl->n_gen >= r->max_tokens || frugal_seq_len(s->ctx, i) >= s->n_ctx;
    if (release_text(s, i, at_limit)) return;
    if (at_limit) {
        req_end(r, "length", 0, NULL);
        return;
    }
    sl->last = tok;
    sl->has_last = 1;
}

/* ------------------------------------------------------------------ the loop */

/* Put queued requests into free slots. Called with s->mu held. */
static void admit(srv_sched *s) {
    /* the safety policy admits fewer sequences while throttled or degraded */
    int room = frugal_safety_admit(s->ctx, s->n_slots);
    for (int i = 0; i < s->n_slots; i++) room -= s->slots[i].req != NULL;
    for (int i = 0; i < s->n_slots && s->q_len > 0 && room > 0; i++) {
        if (s->slots[i].req) continue;
        room--;
        srv_req *r = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->queue_cap;
        s->q_len--;
        slot *sl = &s->slots[i];
        memset(sl, 0, sizeof *sl);
        sl->req = r;
        sl->smpl = frugal_sampler_new(&r->sp);
        frugal_seq_clear(s->ctx, i);
        s->tokens_in += (uint64_t)r->n_prompt;
        s->active++; /* published now: /metrics must never show an admitted request as idle */
        if (!sl->smpl) req_end(r, NULL, 500, "out of memory");
    }
}

/* Drop slots whose request ended, was abandoned or ran out of time. */
static void reap(srv_sched *s) {
    double now = srv_now();
    for (int i = 0; i < s->n_slots; i++) {
        srv_req *r = s->slots[i].req;
        if (!r) continue;
        pthread_mutex_lock(&r->mu);
        int gone = r->done || r->cancelled, abandoned = r->cancelled && !r->done;
        pthread_mutex_unlock(&r->mu);
        /* s->mu after r->mu is released: submit takes them the other way round
         * (TSan reported the inversion; request memory is reused, so it could bite) */
        if (abandoned) {
            pthread_mutex_lock(&s->mu);
            s->cancelled++;
            pthread_mutex_unlock(&s->mu);
        }
        if (!gone && r->deadline > 0 && now > r->deadline) {
            release_text(s, i, 1);
            req_end(r, "length", 0, NULL);
            gone = 1;
        }
        if (gone) slot_free(s, i);
    }
}

/* One forward pass for every active slot. */
static void step(srv_sched *s) {
    int n = 0, n_decode = 0;
    for (int i = 0; i < s->n_slots; i++) {
        slot *sl = &s->slots[i];
        if (!sl->req || !sl->has_last) continue;
        s->items[n] = (frugal_batch_item){sl->last, i, 1};
        s->item_slot[n++] = i;
        sl->has_last = 0;
        n_decode++;
    }
    int budget = PREFILL_BUDGET;
    for (int i = 0; i < s->n_slots && budget > 0; i++) {
        slot *sl = &s->slots[i];
        if (!sl->req || sl->n_fed >= sl->req->n_prompt) continue;
        int take = sl->req->n_prompt - sl->n_fed;
        if (take > PREFILL_CHUNK) take = PREFILL_CHUNK;
        if (take > budget) take = budget;
        for (int k = 0; k < take; k++) {
            int p = sl->n_fed + k;
            s->items[n] = (frugal_batch_item){sl->req->prompt[p], i, p == sl->req->n_prompt - 1};
            s->item_slot[n++] = i;
        }
        sl->n_fed += take;
        budget -= take;
    }
    if (n == 0) return;
    frugal_error err = FRUGAL_ERROR_INIT;
    double t0 = srv_now();
    int rc = frugal_eval_batch(s->ctx, s->items, n, &err);
    double dt = srv_now() - t0;
    if (rc != FRUGAL_OK) {
        /* the KV state of these sequences is unknown now: fail them all */
        char msg[300];
        snprintf(msg, sizeof msg, "evaluation failed: %.200s", err.message);
        for (int k = 0; k < n; k++) {
            int i = s->item_slot[k];
            if (s->slots[i].req) {
                req_end(s->slots[i].req, NULL, 500, msg);
                slot_free(s, i);
            }
        }
        return;
    }
    int j = 0;
    for (int k = 0; k < n; k++) {
        if (!s->items[k].logits) continue;
        const float *logits = frugal_get_logits(s->ctx, j++);
        int i = s->item_slot[k];
        if (!s->slots[i].req) continue;
        if (!logits) req_end(s->slots[i].req, NULL, 500, "no logits");
        else on_logits(s, i, logits);
    }
    if (n_decode > 0) frugal_safety_step(s->ctx, dt); /* the duty-cycle pause, after the tokens went out */
    pthread_mutex_lock(&s->mu);
    if (n_decode > 0 && dt > 0) {
        /* exponential moving average of decode throughput over recent steps */
        double x = n_decode / dt;
        s->gen_tok_s = s->gen_tok_s > 0 ? 0.9 * s->gen_tok_s + 0.1 * x : x;
    }
    pthread_mutex_unlock(&s->mu);
}

static void *sched_main(void *arg) {
    srv_sched *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stopping && s->q_len == 0 && s->active == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        admit(s);
        pthread_mutex_unlock(&s->mu);

        reap(s);
        step(s);
        reap(s);

        int active = 0;
        for (int i = 0; i < s->n_slots; i++) active += s->slots[i].req != NULL;
        uint64_t u, a, c;
        frugal_kv_usage(s->ctx, &u, &a, &c);
        pthread_mutex_lock(&s->mu);
        s->active = active;
        s->kv_used = u;
        s->kv_alloc = a;
        s->kv_cap = c;
        pthread_mutex_unlock(&s->mu);
    }
    for (int i = 0; i < s->n_slots; i++)
        if (s->slots[i].req) {
            req_end(s->slots[i].req, NULL, 503, "server shutting down");
            slot_free(s, i);
        }
    return NULL;
}

int srv_sched_start(srv_sched *s) {
    if (fr_thread_create(&s->thread, sched_main, s) != 0) return -1;
    s->started = 1;
    return 0;
}

void srv_sched_stop(srv_sched *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    while (s->q_len > 0) {
        srv_req *r = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->queue_cap;
        s->q_len--;
        req_end(r, NULL, 503, "server shutting down");
        srv_req_release(r);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->started) pthread_join(s->thread, NULL);
    s->started = 0;
    pthread_mutex_lock(&s->mu);
    s->active = 0;
    pthread_mutex_unlock(&s->mu);
}

void srv_sched_free(srv_sched *s) {
    if (!s) return;
    if (s->started) srv_sched_stop(s);
    free(s->slots);
    free(s->items);
    free(s->item_slot);
    free(s->queue);
    free(s->biased);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
