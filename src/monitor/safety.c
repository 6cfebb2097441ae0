/* safety.c - see safety.h. */
#include "core/clock.h"
#include "core/thread.h"
#include "core/fault.h"
#include "monitor/safety.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HYST_TEMP 5.0       /* C below the limit before the throttle lifts */
#define HYST_UTIL 5.0       /* percentage points */
#define HYST_POWER 0.10     /* fraction of the limit */
#define CALM_POLLS 3        /* calm polls before a degrade step is undone */

struct fr_safety {
    frugal_safety_policy p;
    fr_monitor *mon;
    fr_monitor_log_fn log;
    void *log_user;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool thread_on, stop;
    /* under mu */
    fr_readings last;
    bool throttling;
    int want, level, calm;
    int64_t freed[FR_DEGRADE_MAX + 1];   /* bytes each applied step freed */
    char cause[160];                     /* the reading behind the latest want change */
    double peak_cpu, peak_gpu, watts_sum;
    uint64_t n_watts, n_polls, n_throttle_on, n_degrade, n_recover;
    double throttled_s, throttled_step_s, poll_cpu_s, t_start;
};


static void *poll_main(void *arg);

static int check_policy(const frugal_safety_policy *p, fr_err *err) {
    const double lim[] = {p->max_temp, p->max_gpu_temp, p->max_util, p->max_gpu_util, p->max_power, p->max_psi};
    static const char *names[] = {"max_temp", "max_gpu_temp", "max_util", "max_gpu_util", "max_power", "max_psi"};
    for (int i = 0; i < 6; i++)
        if (!(lim[i] >= 0) || isinf(lim[i]))
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "safety policy: %s must be a number >= 0", names[i]);
    if (!(p->duty > 0 && p->duty <= 1))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "safety policy: duty must be in (0, 1], got %g", p->duty);
    if (p->interval_ms < 10 || p->interval_ms > 60000)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "safety policy: interval_ms must be 10..60000, got %d",
                          p->interval_ms);
    return FRUGAL_OK;
}

int fr_safety_new(const frugal_safety_policy *p, const char *root, int start_thread, fr_monitor_log_fn log,
                  void *log_user, fr_safety **out, fr_err *err) {
    *out = NULL;
    int rc = check_policy(p, err);
    if (rc) return rc;
    fr_safety *s = fr_calloc(1, sizeof *s);
    if (!s) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    s->p = *p;
    s->log = log;
    s->log_user = log_user;
    s->peak_cpu = s->peak_gpu = NAN;
    s->t_start = fr_now_s();
    s->mon = fr_monitor_new(root, p->verbose, log, log_user);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!s->mon) {
        fr_safety_free(s);
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    }
    fr_safety_poll(s); /* the first decisions come before the first step */
    if (start_thread) {
        if (fr_thread_create(&s->thread, poll_main, s) != 0) {
            fr_safety_free(s);
            return fr_err_set(err, FRUGAL_E_NOMEM, "cannot start the monitor thread");
        }
        s->thread_on = true;
    }
    *out = s;
    return FRUGAL_OK;
}

static void *poll_main(void *arg) {
    fr_safety *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = until.tv_nsec + (long long)s->p.interval_ms * 1000000LL;
        until.tv_sec += (time_t)(ns / 1000000000LL);
        until.tv_nsec = (long)(ns % 1000000000LL);
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {}
        if (s->stop) break;
        pthread_mutex_unlock(&s->mu);
        fr_safety_poll(s);
        struct timespec cpu;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu);
        pthread_mutex_lock(&s->mu);
        s->poll_cpu_s = (double)cpu.tv_sec + cpu.tv_nsec * 1e-9;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

void fr_safety_free(fr_safety *s) {
    if (!s) return;
    if (s->thread_on) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    fr_monitor_free(s->mon);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The first limit a reading exceeds ("cpu temp 91.0 C > 80 C"), or NULL. With
 * margin, a reading counts while above its limit less the hysteresis. */
static bool over(const frugal_safety_policy *p, const fr_readings *r, bool margin, char *why, size_t cap) {
    struct { double v, lim, hyst; const char *name, *unit; } k[] = {
        {r->cpu_temp_c, p->max_temp, HYST_TEMP, "cpu temp", "C"},
        {r->gpu_temp_c, p->max_gpu_temp, HYST_TEMP, "gpu temp", "C"},
        {r->cpu_util_pct, p->max_util, HYST_UTIL, "cpu util", "%"},
        {r->gpu_util_pct, p->max_gpu_util, HYST_UTIL, "gpu util", "%"},
        {(isnan(r->cpu_watts) ? 0 : r->cpu_watts) + (isnan(r->gpu_watts) ? 0 : r->gpu_watts), p->max_power,
         p->max_power * HYST_POWER, "power", "W"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (k[i].lim <= 0 || isnan(k[i].v)) continue;
        double edge = margin ? k[i].lim - k[i].hyst : k[i].lim;
        if (margin ? k[i].v > edge : k[i].v > k[i].lim) {
            snprintf(why, cap, "%s %.1f %s > %g %s", k[i].name, k[i].v, k[i].unit, edge, k[i].unit);
            return true;
        }
    }
    return false;
}

static bool mem_pressured(const frugal_safety_policy *p, const fr_readings *r, char *why, size_t cap) {
    int64_t room = fr_readings_mem_room(r);
    if (p->max_psi > 0 && !isnan(r->psi_some_avg10) && r->psi_some_avg10 > p->max_psi) {
        snprintf(why, cap, "memory PSI some avg10 %.2f > %g", r->psi_some_avg10, p->max_psi);
        return true;
    }
    if (p->min_free > 0 && room >= 0 && (uint64_t)room < p->min_free) {
        snprintf(why, cap, "memory room %.1f MiB < %.1f MiB", room / 1048576.0, p->min_free / 1048576.0);
        return true;
    }
    return false;
}

/* Calm enough to undo the latest step: PSI under half its limit and room for the
 * bytes the step freed on top of a quarter more than min_free (so undoing it does
 * not at once bring the pressure back). */
static bool mem_calm(const fr_safety *s, const fr_readings *r) {
    const frugal_safety_policy *p = &s->p;
    if (p->max_psi > 0 && !isnan(r->psi_some_avg10) && r->psi_some_avg10 >= p->max_psi / 2) return false;
    int64_t room = fr_readings_mem_room(r);
    if (p->min_free > 0 && room >= 0 &&
        (double)room < p->min_free * 1.25 + (double)s->freed[s->level > 0 ? s->level : 0])
        return false;
    return true;
}

void fr_safety_poll(fr_safety *s) {
    fr_readings r;
    fr_monitor_read(s->mon, &r);
    char why[160];
    pthread_mutex_lock(&s->mu);
    s->last = r;
    s->n_polls++;
    if (!isnan(r.cpu_temp_c) && !(r.cpu_temp_c <= s->peak_cpu)) s->peak_cpu = r.cpu_temp_c;
    if (!isnan(r.gpu_temp_c) && !(r.gpu_temp_c <= s->peak_gpu)) s->peak_gpu = r.gpu_temp_c;
    if (!isnan(r.cpu_watts) || !isnan(r.gpu_watts)) {
        s->watts_sum += (isnan(r.cpu_watts) ? 0 : r.cpu_watts) + (isnan(r.gpu_watts) ? 0 : r.gpu_watts);
        s->n_watts++;
    }
    if (!s->throttling && over(&s->p, &r, false, why, sizeof why)) {
        s->throttling = true;
        s->n_throttle_on++;
        fr_monitor_logf(s->log, s->log_user, "safety: throttling to %.0f%% duty: %s", s->p.duty * 100, why);
    } else if (s->throttling && !over(&s->p, &r, true, why, sizeof why)) {
        s->throttling = false;
        fr_monitor_logf(s->log, s->log_user, "safety: throttle lifted (cpu temp %.1f C, cpu util %.1f %%)", r.cpu_temp_c, r.cpu_util_pct);
    }
    if (mem_pressured(&s->p, &r, why, sizeof why)) {
        s->calm = 0;
        /* one step per poll, and only once the previous step was applied */
        if (s->want < FR_DEGRADE_MAX && s->level == s->want) {
            s->want++;
            snprintf(s->cause, sizeof s->cause, "%s", why);
        }
    } else if (s->want > 0 && s->level == s->want && mem_calm(s, &r)) {
        if (++s->calm >= CALM_POLLS) {
            s->calm = 0;
            s->want--;
            int64_t room = fr_readings_mem_room(&r);
            snprintf(s->cause, sizeof s->cause, "memory room %.1f MiB, PSI %.2f", room / 1048576.0,
                     r.psi_some_avg10);
        }
    } else {
        s->calm = 0;
    }
    pthread_mutex_unlock(&s->mu);
}

double fr_safety_after_step(fr_safety *s, double step_s) {
    if (!s || !(step_s > 0)) return 0;
    pthread_mutex_lock(&s->mu);
    double pause = 0;
    if (s->throttling) {
        /* paused / (paused + step) = 1 - duty over the throttled time so far: the
         * pause owed is what keeps the totals on target, so a sleep that overslept
         * (timer slack, scheduling) is paid back by a shorter next one */
        s->throttled_step_s += step_s;
        pause = s->throttled_step_s * (1 - s->p.duty) / s->p.duty - s->throttled_s;
        if (pause < 0) pause = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return pause;
}

void fr_safety_slept(fr_safety *s, double slept_s) {
    if (!s || !(slept_s > 0)) return;
    pthread_mutex_lock(&s->mu);
    s->throttled_s += slept_s;
    pthread_mutex_unlock(&s->mu);
}

int fr_safety_want(fr_safety *s) {
    pthread_mutex_lock(&s->mu);
    int w = s->want;
    pthread_mutex_unlock(&s->mu);
    return w;
}

int fr_safety_level(fr_safety *s) {
    pthread_mutex_lock(&s->mu);
    int l = s->level;
    pthread_mutex_unlock(&s->mu);
    return l;
}

void fr_safety_applied(fr_safety *s, int level, int up, int64_t bytes, const char *what) {
    static const char *names[FR_DEGRADE_MAX + 1] = {"", "drop the prefetch window", "shrink idle KV cache",
                                                    "stream more layers", "reduce the batch"};
    if (level < 1 || level > FR_DEGRADE_MAX) return;
    pthread_mutex_lock(&s->mu);
    if (up) {
        s->level = level;
        s->freed[level] = bytes > 0 ? bytes : 0;
        s->n_degrade++;
        fr_monitor_logf(s->log, s->log_user, "safety: degrade step %d (%s): %s, freed %.1f MiB; because %s", level, names[level], what,
            bytes / 1048576.0, s->cause);
    } else {
        s->level = level - 1;
        s->freed[level] = 0;
        s->n_recover++;
        fr_monitor_logf(s->log, s->log_user, "safety: undo step %d (%s): %s; %s", level, names[level], what, s->cause);
    }
    pthread_mutex_unlock(&s->mu);
}

int fr_safety_throttling(fr_safety *s) {
    pthread_mutex_lock(&s->mu);
    int t = s->throttling;
    pthread_mutex_unlock(&s->mu);
    return t;
}

double fr_safety_duty(const fr_safety *s) { return s->p.duty; }

void fr_readings_to_public(const fr_readings *in, frugal_readings *o) {
    memset(o, 0, sizeof *o);
    o->vk_mem_used = o->vk_mem_budget = o->vk_heap_budget = o->vk_heap_usage = -1; /* the context fills them */
    o->cpu_temp_c = in->cpu_temp_c;
    o->cpu_freq_mhz = in->cpu_freq_mhz;
    o->cpu_util_pct = in->cpu_util_pct;
    o->cpu_watts = in->cpu_watts;
    o->psi_some_avg10 = in->psi_some_avg10;
    o->throttle_count = in->throttle_count;
    o->mem_available = in->mem_available;
    o->cgroup_limit = in->cg_limit;
    o->cgroup_usage = in->cg_usage;
    o->mem_room = fr_readings_mem_room(in);
    o->gpu_temp_c = in->gpu_temp_c;
    o->gpu_util_pct = in->gpu_util_pct;
    o->gpu_watts = in->gpu_watts;
    o->gpu_mem_used = in->gpu_mem_used;
    o->gpu_mem_total = in->gpu_mem_total;
    o->peak_cpu_temp_c = o->peak_gpu_temp_c = o->avg_watts = NAN;
}

void fr_safety_get(fr_safety *s, frugal_readings *r) {
    pthread_mutex_lock(&s->mu);
    fr_readings_to_public(&s->last, r);
    r->peak_cpu_temp_c = s->peak_cpu;
    r->peak_gpu_temp_c = s->peak_gpu;
    r->avg_watts = s->n_watts ? s->watts_sum / (double)s->n_watts : NAN;
    r->throttled_s = s->throttled_s;
    r->throttled_step_s = s->throttled_step_s;
    r->throttling = s->throttling;
    r->degrade_level = s->level;
    r->n_throttle_on = s->n_throttle_on;
    r->n_degrade = s->n_degrade;
    r->n_recover = s->n_recover;
    r->n_polls = s->n_polls;
    r->poll_cpu_s = s->poll_cpu_s;
    r->poll_wall_s = fr_now_s() - s->t_start;
    pthread_mutex_unlock(&s->mu);
}
