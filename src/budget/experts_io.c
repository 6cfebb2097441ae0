/* experts_io.c - the expert cache's reads (see experts.h): page-aligned O_DIRECT
 * reads of the pieces fr_experts_next_piece claims, through Linux AIO from one thread
 * (io/aread.h) or, where that is missing, blocking reads on N_IO threads. */
#include "budget/experts_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(__linux__)
#include <sched.h>
#include <sys/syscall.h>
#endif

#include "core/clock.h"
#include "core/fault.h"
#include "core/thread.h"

/* Read file range [a, a_end) into dst, at least up to need_end (a_end may run past
 * EOF). O_DIRECT first; when refused, buffered reads for good, their pages dropped. */
static int read_range(fr_experts *x, uint64_t a, uint64_t a_end, uint64_t need_end, uint8_t *dst, fr_err *err) {
    uint64_t got = 0, need = need_end - a;
    if (x->fd_direct >= 0) {
        while (got < a_end - a) {
            ssize_t r = fr_fault_hit(FR_FAULT_IO) ? (errno = EIO, -1)
                                                   : pread(x->fd_direct, dst + got, (size_t)(a_end - a - got),
                                                           (off_t)(a + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return fr_err_set(err, FRUGAL_E_IO, "%s: reading an expert: %s", x->m->path, strerror(errno));
            if (r == 0) break;
            got += (uint64_t)r;
            if (got % PAGE) break; /* short and unaligned: EOF */
        }
        if (x->fd_direct >= 0)
            return got >= need ? FRUGAL_OK
                               : fr_err_set(err, FRUGAL_E_IO, "%s: file truncated: an expert needs bytes up to %llu",
                                            x->m->path, (unsigned long long)need_end);
    }
    got = 0;
    while (got < need) {
        ssize_t r = fr_fault_hit(FR_FAULT_IO) ? (errno = EIO, -1)
                                               : pread(x->fd, dst + got, (size_t)(need - got), (off_t)(a + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fr_err_set(err, FRUGAL_E_IO, "%s: reading an expert: %s", x->m->path, strerror(errno));
        if (r == 0)
            return fr_err_set(err, FRUGAL_E_IO, "%s: file truncated: an expert needs bytes up to %llu", x->m->path,
                              (unsigned long long)need_end);
        got += (uint64_t)r;
    }
    posix_fadvise(x->fd, (off_t)a, (off_t)need, POSIX_FADV_DONTNEED);
    return FRUGAL_OK;
}

/* Decide once, before the I/O threads share the descriptors, whether O_DIRECT works
 * here (tmpfs and some FUSE filesystems refuse it with EINVAL): else buffered reads. */
void fr_xio_probe_direct(fr_experts *x, uint8_t *page) {
    if (x->fd_direct < 0) return;
    ssize_t r;
    do r = pread(x->fd_direct, page, PAGE, 0);
    while (r < 0 && errno == EINTR);
    if (r < 0) { close(x->fd_direct); x->fd_direct = -1; }
}

/* Bytes [from, from + n) of part j's extent of slot s's expert (n = 0: to the end of
 * the extent): file range [*lo, *hi), of which bytes up to *need_end must be read
 * (the extent may run past EOF), going to *dst. */
static void piece_span(const fr_experts *x, const slot *s, int j, uint64_t from, uint64_t n, uint64_t *lo,
                       uint64_t *hi, uint64_t *need_end, uint8_t **dst) {
    uint64_t a, a_end, ne;
    size_t pos;
    fr_experts_part_extent(x, s, j, &a, &a_end, &ne, &pos);
    *lo = a + from;
    *hi = n && *lo + n < a_end ? *lo + n : a_end;
    *need_end = *hi < a_end ? *hi : ne;
    *dst = s->data + pos + from;
}

/* Read that piece with blocking reads. *bytes: bytes requested from the file. */
int fr_xio_read_piece(fr_experts *x, slot *s, int j, uint64_t from, uint64_t n, uint64_t *bytes, fr_err *err) {
    uint64_t lo, hi, need_end;
    uint8_t *dst;
    piece_span(x, s, j, from, n, &lo, &hi, &need_end, &dst);
    *bytes = hi - lo;
    return read_range(x, lo, hi, need_end, dst, err);
}

/* Ask the scheduler for a short time slice for the calling I/O thread (Linux >= 6.12,
 * EEVDF: sched_attr.sched_runtime of a SCHED_OTHER thread; unprivileged, same nice).
 * Why: a read completes while both vCPUs compute; with the default 3 ms slice the
 * woken I/O thread may wait for the running compute thread's slice to end before it
 * can issue the next read, and the disk idles meanwhile (a part takes ~1.5 ms). With
 * a short slice its deadline comes first and it preempts at once, for the few
 * microseconds it needs. Older kernels ignore the field or refuse: nothing changes.
 * FRUGAL_EXPERT_SLICE_US overrides the slice (0: leave the default). */
static void io_short_slice(void) {
#if defined(__linux__) && defined(SYS_sched_setattr) && defined(SYS_gettid)
    const char *env = getenv("FRUGAL_EXPERT_SLICE_US");
    const long us = env && *env ? atol(env) : 100;
    if (us <= 0 || sched_getscheduler(0) != SCHED_OTHER) return;
    struct {
        uint32_t size, policy;
        uint64_t flags;
        int32_t nice;
        uint32_t priority;
        uint64_t runtime, deadline, period;
    } a = {.size = sizeof a, .policy = SCHED_OTHER, .runtime = (uint64_t)us * 1000u};
    const int saved = errno;
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (errno == 0) {
        a.nice = nice;
        (void)syscall(SYS_sched_setattr, 0, &a, 0u);
    }
    errno = saved;
#endif
}

/* A piece's read begins (under mu): the disk's busy time starts with the first. */
static void piece_started(fr_experts *x) {
    if (x->in_flight++ == 0) x->busy_since = fr_now_s();
}

/* A piece's read ended with rc (error e) after requesting `bytes` (under mu): the
 * first error is kept; the slot is ready once all its pieces are. */
static void piece_done(fr_experts *x, slot *s, int rc, const fr_err *e, uint64_t bytes) {
    if (rc && x->err_code == FRUGAL_OK) { x->err_code = rc; x->err = *e; }
    if (--x->in_flight == 0) x->st.io_busy_s += fr_now_s() - x->busy_since;
    if (--s->pending == 0 && s->cur_part >= N_PART) {
        s->loading = false;
        if (s->abandoned) { /* a part of it is missing: the slot is empty again */
            s->key = -1;
            s->abandoned = false;
        }
    }
    x->st.bytes_read += bytes;
    pthread_cond_broadcast(&x->cv);
}

/* Wake the I/O side for new work (under mu): the threads on cv, the AIO thread on its
 * eventfd. */
void fr_xio_wake(fr_experts *x) {
    pthread_cond_broadcast(&x->cv);
    if (x->aio) fr_aread_kick(x->aio);
}

/* An I/O thread: reads the parts of the queued experts of the current layer in queue
 * order (the threads share them part by part, so four reads stay in flight to the end
 * of a layer's misses), each expert into a victim slot pinned for the consumer; then
 * the experts guessed for the layer about to run, unpinned (route() pins them if picked). */
static void *io_main(void *arg) {
    fr_experts *x = arg;
    io_short_slice();
    pthread_mutex_lock(&x->mu);
    for (;;) {
        slot *s = NULL;
        int j = -1;
        uint64_t from = 0, n = 0;
        while (!x->stop && !(s = fr_experts_next_piece(x, &j, &from, &n))) pthread_cond_wait(&x->cv, &x->mu);
        if (x->stop || !s) break;
        const bool failed = x->err_code != FRUGAL_OK;
        piece_started(x);
        pthread_mutex_unlock(&x->mu);
        fr_err e = FRUGAL_ERROR_INIT;
        uint64_t bytes = 0;
        int rc = failed ? FRUGAL_OK : fr_xio_read_piece(x, s, j, from, n, &bytes, &e);
        pthread_mutex_lock(&x->mu);
        piece_done(x, s, rc, &e, bytes);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* The AIO thread (x->aio): claims pieces as io_main does, up to x->depth in flight,
 * submits them together and collects them as they complete, so a layer's misses are
 * all queued at the device the moment route() names them, and a finished read needs no
 * thread to run before the next one starts. */
static void *aio_main(void *arg) {
    fr_experts *x = arg;
    fr_aread_done done[AIO_MAX];
    io_short_slice();
    pthread_mutex_lock(&x->mu);
    for (;;) {
        slot *s;
        int j = -1;
        uint64_t from = 0, n = 0;
        while (!x->stop && x->in_flight < x->depth && (s = fr_experts_next_piece(x, &j, &from, &n))) {
            uint64_t lo, hi, need_end;
            uint8_t *dst;
            piece_span(x, s, j, from, n, &lo, &hi, &need_end, &dst);
            aio_req *q = &x->reqs[x->req_free[--x->n_req_free]];
            *q = (aio_req){s, hi - lo, need_end - lo};
            piece_started(x);
            fr_aread_add(x->aio, dst, lo, (size_t)(hi - lo), q);
        }
        if (x->stop && x->in_flight == 0) break;
        pthread_mutex_unlock(&x->mu);
        fr_aread_flush(x->aio);
        fr_aread_wait(x->aio);
        const int got = fr_aread_reap(x->aio, done, AIO_MAX);
        pthread_mutex_lock(&x->mu);
        for (int i = 0; i < got; i++) {
            aio_req *q = done[i].tag;
            fr_err e = FRUGAL_ERROR_INIT;
            int rc = FRUGAL_OK;
            const int64_t res = fr_fault_hit(FR_FAULT_IO) ? -EIO : done[i].res;
            if (res < 0)
                rc = fr_err_set(&e, FRUGAL_E_IO, "%s: reading an expert: %s", x->m->path, strerror((int)-res));
            else if ((uint64_t)res < q->need)
                rc = fr_err_set(&e, FRUGAL_E_IO, "%s: file truncated: an expert's read returned %lld of %llu bytes",
                                x->m->path, (long long)res, (unsigned long long)q->need);
            x->req_free[x->n_req_free++] = (int)(q - x->reqs);
            piece_done(x, q->s, rc, &e, q->bytes);
        }
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

void fr_xio_kick(fr_experts *x) {
    if (x->aio) fr_aread_kick(x->aio);
}

int fr_xio_start(fr_experts *x, fr_err *err) {
    /* AIO where it works on the O_DIRECT descriptor (FRUGAL_EXPERT_DEPTH=0: threads) */
    const char *dp = getenv("FRUGAL_EXPERT_DEPTH");
    x->depth = dp && *dp ? atoi(dp) : AIO_DEPTH;
    x->depth = x->depth > AIO_MAX ? AIO_MAX : x->depth;
    if (x->fd_direct >= 0 && x->depth > 0 && (x->aio = fr_aread_new(x->fd_direct, x->depth))) {
        for (int i = 0; i < x->depth; i++) x->req_free[i] = i;
        x->n_req_free = x->depth;
    }
    x->st.io_async = x->aio != NULL;
    x->st.io_depth = x->aio ? x->depth : N_IO;
    for (; x->n_started < (x->aio ? 1 : N_IO); x->n_started++)
        if (fr_thread_create(&x->thread[x->n_started], x->aio ? aio_main : io_main, x) != 0)
            return fr_err_set(err, FRUGAL_E_NOMEM, "cannot start the expert I/O threads");
    return FRUGAL_OK;
}

void fr_xio_stop(fr_experts *x) {
    pthread_mutex_lock(&x->mu);
    x->stop = true;
    fr_xio_wake(x);
    pthread_mutex_unlock(&x->mu);
    for (int i = 0; i < x->n_started; i++) pthread_join(x->thread[i], NULL);
    x->n_started = 0;
    fr_aread_free(x->aio);
    x->aio = NULL;
}
