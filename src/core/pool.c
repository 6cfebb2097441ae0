/* pool.c - see pool.h.
 *
 * Why spin-then-sleep: during decoding an op takes tens of microseconds, while a
 * condition-variable wake-up costs about as much. So workers first spin on an atomic
 * generation counter (with a pause hint) and only go to sleep after a while without
 * work; the caller likewise spins for the workers' completion count. A worker that
 * sleeps announces it (n_sleeping) so the caller only pays for a broadcast when
 * somebody actually sleeps. The check-then-sleep is done under the mutex and the
 * counters are sequentially consistent, so a wake-up cannot be lost: either the
 * caller sees n_sleeping > 0 and broadcasts, or the worker sees the new generation
 * before it waits. When there are more threads than cores, long spins would steal
 * the CPU from the threads doing the work, hence sched_yield() in longer waits. */
#include "core/thread.h"
#include "core/fault.h"
#include "core/pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

#define SPIN_BEFORE_SLEEP 20000
#define SPIN_BEFORE_YIELD 2000

struct fr_pool {
    int n;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    _Atomic unsigned long gen;
    _Atomic int n_done;
    _Atomic int n_sleeping;
    _Atomic int quit;
    _Atomic int park;        /* 1: waiting workers sleep at once (see fr_pool_park) */
    _Atomic int solo;        /* 1: runs on the caller alone (see fr_pool_solo) */
    fr_pool_fn fn;
    void *arg;
};

typedef struct { fr_pool *p; int ith; } worker_arg;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Wait until the generation moves past `seen` (or quit). Returns the new generation. */
static unsigned long wait_for_work(fr_pool *p, unsigned long seen) {
    for (int i = 0; i < SPIN_BEFORE_SLEEP; i++) {
        unsigned long g = atomic_load(&p->gen);
        if (g != seen || atomic_load(&p->quit)) return g;
        if (atomic_load(&p->park)) break;
        if (i >= SPIN_BEFORE_YIELD) sched_yield();
        else cpu_relax();
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->n_sleeping, 1);
    while (atomic_load(&p->gen) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->wake, &p->mu);
    atomic_fetch_sub(&p->n_sleeping, 1);
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->gen);
}

static void *worker(void *a) {
    worker_arg *wa = a;
    fr_pool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned long seen = 0;
    for (;;) {
        seen = wait_for_work(p, seen);
        if (atomic_load(&p->quit)) return NULL;
        p->fn(p->arg, ith, p->n);
        atomic_fetch_add(&p->n_done, 1);
    }
}

fr_pool *fr_pool_new(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    fr_pool *p = fr_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->threads = fr_calloc((size_t)n_threads, sizeof *p->threads);
    if (!p->threads) { free(p); return NULL; }
    for (int i = 1; i < n_threads; i++) {
        worker_arg *wa = fr_malloc(sizeof *wa);
        if (!wa || (wa->p = p, wa->ith = i, fr_thread_create(&p->threads[i], worker, wa))) {
            free(wa);
            p->n = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void fr_pool_free(fr_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    free(p->threads);
    free(p);
}

int fr_pool_size(const fr_pool *p) { return p ? p->n : 1; }

void fr_pool_park(fr_pool *p) {
    if (p) atomic_store(&p->park, 1);
}

void fr_pool_solo(fr_pool *p, int on) {
    if (!p) return;
    atomic_store(&p->solo, on != 0);
    if (on) atomic_store(&p->park, 1); /* the workers stop spinning; the next full run wakes them */
}

void fr_pool_run(fr_pool *p, fr_pool_fn fn, void *arg) {
    if (!p || p->n == 1 || atomic_load(&p->solo)) { fn(arg, 0, 1); return; }
    p->fn = fn;
    p->arg = arg;
    atomic_store(&p->park, 0);
    atomic_store(&p->n_done, 0);
    atomic_fetch_add(&p->gen, 1); /* publishes fn/arg (seq_cst) */
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(arg, 0, p->n);
    for (int i = 0; atomic_load(&p->n_done) < p->n - 1; i++) {
        if (i >= SPIN_BEFORE_YIELD) sched_yield();
        else cpu_relax();
    }
}
