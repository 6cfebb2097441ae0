/* safety_api.c - the safety policy applied to a context: the monitor thread
 * (monitor/safety.c) decides, this file acts at decode-step boundaries, where no
 * layer is in flight and the stream's ring may change size. */
#include "core/fault.h"
#include "api/safety_api.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "budget/stream.h"
#include "model/model.h"
#include "model/offload.h"
#include "monitor/safety.h"

struct fr_safety_ctx {
    fr_safety *s;
    int saved_window;    /* the stream's read-ahead window before step 1 */
    int saved_resident;  /* its resident layers before step 3 */
};

void frugal_safety_policy_default(frugal_safety_policy *p) {
    *p = (frugal_safety_policy){.duty = 0.5, .interval_ms = 1000};
}

void fr_api_safety_free(frugal_context *c) {
    if (!c || !c->safety) return;
    fr_safety_free(c->safety->s);
    free(c->safety);
    c->safety = NULL;
}

/* Take degrade step `level` (up) or undo it; log it through the policy. */
static void degrade(frugal_context *c, int level, int up) {
    struct fr_safety_ctx *sc = c->safety;
    fr_stream *st = fr_stream_of(c->layer_src);
    char what[256] = "nothing to do in this context";
    int64_t freed = 0;
    fr_err e = FRUGAL_ERROR_INIT;
    if (level == 1 && st && fr_stream_window(st) > 0) {
        if (up) {
            sc->saved_window = fr_stream_window(st);
            if (sc->saved_window > 1 && fr_stream_set_window(st, 1, &freed, &e) == FRUGAL_OK)
                snprintf(what, sizeof what, "read-ahead %d -> 1 buffer", sc->saved_window);
        } else if (sc->saved_window > 1) {
            int rc = fr_stream_set_window(st, sc->saved_window, &freed, &e);
            snprintf(what, sizeof what, rc ? "read-ahead stays at %d buffers (%.120s)" : "read-ahead back to %d buffers",
                     fr_stream_window(st), e.message);
        }
    } else if (level == 3 && st && fr_stream_window(st) > 0) {
        if (up) {
            sc->saved_resident = fr_stream_resident(st);
            int to = sc->saved_resident / 2;
            if (to < sc->saved_resident && fr_stream_set_resident(st, to, &freed, &e) == FRUGAL_OK)
                snprintf(what, sizeof what, "resident layers %d -> %d", sc->saved_resident, to);
            else if (e.message[0])
                snprintf(what, sizeof what, "resident layers stay at %d (%.120s)", sc->saved_resident, e.message);
            else
                snprintf(what, sizeof what, "nothing to do: no resident layer left");
        } else if (sc->saved_resident > fr_stream_resident(st)) {
            int rc = fr_stream_set_resident(st, sc->saved_resident, &freed, &e);
            freed = 0;
            snprintf(what, sizeof what, rc ? "resident layers back to %d (%.120s)" : "resident layers back to %d",
                     fr_stream_resident(st), e.message);
        }
    } else if (level == 2) {
        /* the pool is allocated once: its unused blocks' pages go back to the kernel
         * (RSS, not the accounting); idle sequences are the server's to clear */
        if (up && (freed = (int64_t)fr_kv_pool_release_free(&c->kv_pool)) > 0)
            snprintf(what, sizeof what, "KV pages of %d free blocks given back to the kernel", c->kv_pool.n_free);
        else if (up)
            snprintf(what, sizeof what, "nothing to do: no free KV block%s", c->kv_pool.disk ? " in RAM (disk tier)" : "");
        else
            snprintf(what, sizeof what, "KV pages come back as blocks are used");
    } else if (level == 4 && c->n_seq_max > 1) {
        snprintf(what, sizeof what, up ? "server admits half its slots" : "server admits every slot");
    }
    fr_safety_applied(sc->s, level, up, freed, what);
}

/* Bring the applied steps to what the policy wants, one step at a time. */
static void apply_degrade(frugal_context *c) {
    fr_safety *s = c->safety->s;
    int want = fr_safety_want(s), lvl = fr_safety_level(s);
    while (lvl < want) degrade(c, ++lvl, 1);
    while (lvl > want) degrade(c, lvl--, 0);
}

int frugal_set_safety_policy(frugal_context *c, const frugal_safety_policy *p, frugal_error *err) {
    if (!c) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_set_safety_policy: no context");
    if (c->safety) { /* undo the old policy's steps: the new one decides afresh */
        fr_safety *s = c->safety->s;
        while (fr_safety_level(s) > 0) degrade(c, fr_safety_level(s), 0);
        fr_api_safety_free(c);
    }
    if (!p) return FRUGAL_OK;
    struct fr_safety_ctx *sc = fr_calloc(1, sizeof *sc);
    if (!sc) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int rc = fr_safety_new(p, NULL, 1, NULL, NULL, &sc->s, err);
    if (rc) {
        free(sc);
        return rc;
    }
    c->safety = sc;
    return FRUGAL_OK;
}

/* The Vulkan device's memory, read when asked (it is frugal's own accounting and one
 * driver query, not a file to poll). */
static void device_readings(const frugal_model *m, frugal_readings *r) {
    const fr_offload *o = m ? m->offload : NULL;
    uint64_t budget = 0, usage = 0;
    r->vk_mem_used = o ? (int64_t)fr_offload_mem_current(o) : -1;
    r->vk_mem_budget = o ? (int64_t)fr_offload_mem_budget(o) : -1;
    const int known = fr_offload_heap_budget(o, &budget, &usage);
    r->vk_heap_budget = known ? (int64_t)budget : -1;
    r->vk_heap_usage = known ? (int64_t)usage : -1;
}

int frugal_get_readings(frugal_context *c, frugal_readings *r, frugal_error *err) {
    if (!c || !c->safety || !r)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_get_readings: no safety policy set");
    fr_safety_get(c->safety->s, r);
    device_readings(c->model, r);
    return FRUGAL_OK;
}

double frugal_safety_step(frugal_context *c, double step_s) {
    if (!c || !c->safety) return 0;
    apply_degrade(c);
    double pause = fr_safety_after_step(c->safety->s, step_s);
    if (pause <= 0) return 0;
    struct timespec t0, t1, ts = {(time_t)pause, (long)((pause - floor(pause)) * 1e9)};
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (nanosleep(&ts, &ts) != 0) {}
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double slept = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    fr_safety_slept(c->safety->s, slept);
    return slept;
}

int frugal_safety_admit(frugal_context *c, int n_slots) {
    if (!c || !c->safety || n_slots <= 1) return n_slots;
    fr_safety *s = c->safety->s;
    int n = n_slots;
    if (fr_safety_throttling(s)) n = (int)ceil(n_slots * fr_safety_duty(s));
    if (fr_safety_level(s) >= 4 && n > (n_slots + 1) / 2) n = (n_slots + 1) / 2;
    return n < 1 ? 1 : n;
}

struct frugal_monitor {
    fr_monitor *m;
};

frugal_monitor *frugal_monitor_new(int verbose) {
    frugal_monitor *fm = fr_calloc(1, sizeof *fm);
    if (fm && !(fm->m = fr_monitor_new(NULL, verbose, NULL, NULL))) {
        free(fm);
        fm = NULL;
    }
    return fm;
}

void frugal_monitor_read(frugal_monitor *fm, frugal_readings *r) {
    fr_readings in;
    fr_monitor_read(fm->m, &in);
    fr_readings_to_public(&in, r);
}

void frugal_monitor_free(frugal_monitor *fm) {
    if (!fm) return;
    fr_monitor_free(fm->m);
    free(fm);
}
