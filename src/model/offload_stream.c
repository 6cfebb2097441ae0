/* offload_stream.c - --gpu-stream's two slots filled one layer ahead: when layer il is
 * taken from its slot, a worker thread copies the next streamed layer (after the last,
 * the first: the next token's) into the other slot while the device and the CPU compute
 * layer il, so the copy overlaps compute instead of stalling the pass.
 *
 * The worker writes through the slots' host mapping (backend.h's buf_host: the CPU's
 * buffers, host-visible device memory as lavapipe's, UMA GPUs' or a resizable BAR);
 * where the slots have none (a discrete GPU's device-local memory), copies stay
 * synchronous uploads at the time of use. Safety: every device op runs under o->mu
 * and is complete when it returns, and the worker only fills the slot not holding the
 * layer in use, whose next reader (fr_stream_load of that layer) waits for the copy.
 * A copy ahead joins the copy counters (h2d bytes and seconds) when its layer is used,
 * so the counts per token are those of the layers the tokens used. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/offload_impl.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Layer il's streamed matrices into slot k: through the mapping when there is one,
 * else by uploads. Returns the bytes copied (*rc set on an upload error). */
static uint64_t copy_layer(fr_offload *o, int il, int k, int *rc, fr_err *err) {
    uint8_t *host = o->be->ops->buf_host ? o->be->ops->buf_host(o->be, o->slot[k]) : NULL;
    uint64_t bytes = 0;
    *rc = FRUGAL_OK;
    for (int i = 0; i < o->n_st && !*rc; i++) {
        if (o->st[i].layer != il) continue;
        if (host) memcpy(host + o->st[i].off, o->st[i].src, o->st[i].bytes);
        else *rc = o->be->ops->upload(o->be, o->slot[k], o->st[i].off, o->st[i].src, o->st[i].bytes, err);
        bytes += o->st[i].bytes;
    }
    return bytes;
}

static void *worker(void *arg) {
    fr_offload *o = arg;
    pthread_mutex_lock(&o->pf_mu);
    while (!o->pf_quit) {
        if (o->pf_layer < 0) {
            pthread_cond_wait(&o->pf_cv, &o->pf_mu);
            continue;
        }
        const int il = o->pf_layer, k = o->pf_slot;
        pthread_mutex_unlock(&o->pf_mu);
        const double t0 = now_s();
        int rc;
        const uint64_t bytes = copy_layer(o, il, k, &rc, NULL); /* mapped: cannot fail */
        const double dt = now_s() - t0;
        pthread_mutex_lock(&o->pf_mu);
        o->ahead_bytes[k] = bytes, o->ahead_s[k] = dt; /* counted when the layer is used */
        o->slot_layer[k] = il;
        o->pf_layer = -1;
        o->pf_done++;
        pthread_cond_broadcast(&o->pf_cv);
    }
    pthread_mutex_unlock(&o->pf_mu);
    return NULL;
}

void fr_stream_start(fr_offload *o) {
    const char *env = getenv("FRUGAL_GPU_PREFETCH");
    o->pf_layer = -1;
    if ((env && strcmp(env, "0") == 0) || !o->be->ops->buf_host) return;
    for (int k = 0; k < 2; k++)
        if (!o->slot[k] || !o->be->ops->buf_host(o->be, o->slot[k])) return;
    o->pf_quit = false;
    o->pf_on = pthread_create(&o->pf_thread, NULL, worker, o) == 0; /* no thread: synchronous copies */
}

void fr_stream_stop(fr_offload *o) {
    if (!o->pf_on) return;
    pthread_mutex_lock(&o->pf_mu);
    o->pf_quit = true;
    pthread_cond_broadcast(&o->pf_cv);
    pthread_mutex_unlock(&o->pf_mu);
    pthread_join(o->pf_thread, NULL);
    o->pf_on = false;
}

/* The streamed layer used after il: the next one, or after the last the first. */
static int next_streamed(const fr_offload *o, int il) {
    const int first = o->st[0].layer, last = o->st[o->n_st - 1].layer;
    return il < last ? il + 1 : first;
}

int fr_stream_load(fr_offload *o, int il, fr_bbuf **out, fr_err *err) {
    pthread_mutex_lock(&o->pf_mu);
    while (o->pf_layer >= 0) pthread_cond_wait(&o->pf_cv, &o->pf_mu); /* a copy in flight: let it land */
    int k = o->slot_layer[0] == il ? 0 : o->slot_layer[1] == il ? 1 : -1;
    int rc = FRUGAL_OK;
    if (k >= 0) { /* copied ahead (or still there): its copy counts at its first use */
        o->h2d_bytes += o->ahead_bytes[k], o->h2d_s += o->ahead_s[k];
        o->ahead_bytes[k] = 0, o->ahead_s[k] = 0;
    } else { /* not copied ahead: now, into the slot not used last */
        k = o->next_slot;
        o->slot_layer[k] = -1;
        const double t0 = now_s();
        const uint64_t bytes = copy_layer(o, il, k, &rc, err);
        o->h2d_bytes += bytes, o->h2d_s += now_s() - t0;
        if (!rc) o->slot_layer[k] = il;
    }
    o->next_slot = k ^ 1;
    const int nx = next_streamed(o, il);
    if (!rc && o->pf_on && nx != il && o->slot_layer[k ^ 1] != nx) { /* the next layer, ahead */
        o->slot_layer[k ^ 1] = -1;
        o->ahead_bytes[k ^ 1] = 0, o->ahead_s[k ^ 1] = 0;
        o->pf_layer = nx, o->pf_slot = k ^ 1;
        pthread_cond_broadcast(&o->pf_cv);
    }
    pthread_mutex_unlock(&o->pf_mu);
    *out = o->slot[k];
    return rc;
}

uint64_t fr_offload_stream_prefetched(const fr_offload *o) {
    if (!o) return 0;
    pthread_mutex_lock((pthread_mutex_t *)&o->pf_mu);
    const uint64_t n = o->pf_done;
    pthread_mutex_unlock((pthread_mutex_t *)&o->pf_mu);
    return n;
}
