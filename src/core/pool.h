/* pool.h - a persistent thread pool: threads are created once per context and
 * woken for each parallel op, so no op pays for thread creation.
 *
 * fr_pool_run(pool, fn, arg) calls fn(arg, ith, nth) once for every ith in
 * [0, nth) - the caller's thread runs ith 0 - and returns when all calls are done.
 * One op at a time; not re-entrant. */
#ifndef FRUGAL_POOL_H
#define FRUGAL_POOL_H

typedef struct fr_pool fr_pool;
typedef void (*fr_pool_fn)(void *arg, int ith, int nth);

/* NULL on failure. n_threads < 1 is treated as 1 (no worker threads). */
fr_pool *fr_pool_new(int n_threads);
void fr_pool_free(fr_pool *p);
int fr_pool_size(const fr_pool *p);
void fr_pool_run(fr_pool *p, fr_pool_fn fn, void *arg);
/* The caller is about to block for a while (a read from disk): idle workers go to
 * sleep now instead of spinning (their sched_yield loop would take the CPU from the
 * threads the caller waits for). The next fr_pool_run wakes them. */
void fr_pool_park(fr_pool *p);
/* Solo mode (on != 0): until it is turned off, fr_pool_run calls fn(arg, 0, 1) on the
 * caller alone and the workers sleep. For work that runs beside reads from a disk
 * whose emulation needs CPU time of its own (a VM's virtio disk), when leaving a CPU
 * idle makes the reads faster than the second thread makes the compute. Ops that
 * split rows (matmuls, element-wise) give the same bits either way. */
void fr_pool_solo(fr_pool *p, int on);

/* The share [*start, *end) of n items for thread ith of nth (contiguous, balanced). */
static inline void fr_split(long n, int ith, int nth, long *start, long *end) {
    long per = n / nth, rem = n % nth;
    *start = ith * per + (ith < rem ? ith : rem);
    *end = *start + per + (ith < rem ? 1 : 0);
}

#endif
