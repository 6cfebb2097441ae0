/* aread.c - asynchronous reads through Linux native AIO (see aread.h). */
#include "io/aread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/aio_abi.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#endif

#if defined(__linux__) && defined(SYS_io_setup) && defined(SYS_io_submit) && defined(SYS_io_getevents) && \
    defined(SYS_io_destroy)

struct fr_aread {
    aio_context_t ctx;
    int fd, efd, depth;
    int outstanding;          /* added and not reaped */
    struct iocb *cbs;         /* [depth]; a read's iocb until it is reaped */
    void **tags;              /* [depth] */
    int *free_idx, n_free;    /* iocbs not in use */
    struct iocb **pending;    /* [depth]: added, not submitted */
    int n_pending;
    fr_aread_done *failed;    /* [depth]: refused at submission, reaped next */
    int n_failed;
    struct io_event *ev;      /* [depth] */
};

/* The kernel's AIO calls (glibc has no wrappers; libaio is not needed for four calls). */
static long k_setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long k_destroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
static long k_submit(aio_context_t ctx, long n, struct iocb **cbs) { return syscall(SYS_io_submit, ctx, n, cbs); }
static long k_getevents(aio_context_t ctx, long min_nr, long nr, struct io_event *ev, struct timespec *ts) {
    return syscall(SYS_io_getevents, ctx, min_nr, nr, ev, ts);
}

fr_aread *fr_aread_new(int fd, int depth) {
    if (fd < 0 || depth < 1 || depth > 256) return NULL;
    fr_aread *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->fd = fd;
    r->depth = depth;
    r->efd = eventfd(0, EFD_CLOEXEC);
    r->cbs = calloc((size_t)depth, sizeof *r->cbs);
    r->tags = calloc((size_t)depth, sizeof *r->tags);
    r->free_idx = calloc((size_t)depth, sizeof *r->free_idx);
    r->pending = calloc((size_t)depth, sizeof *r->pending);
    r->failed = calloc((size_t)depth, sizeof *r->failed);
    r->ev = calloc((size_t)depth, sizeof *r->ev);
    if (r->efd < 0 || !r->cbs || !r->tags || !r->free_idx || !r->pending || !r->failed || !r->ev ||
        k_setup((unsigned)depth, &r->ctx) != 0) {
        r->ctx = 0;
        fr_aread_free(r);
        return NULL;
    }
    for (int i = 0; i < depth; i++) r->free_idx[i] = depth - 1 - i;
    r->n_free = depth;
    return r;
}

int fr_aread_add(fr_aread *r, void *buf, uint64_t off, size_t len, void *tag) {
    if (r->n_free == 0) return -1;
    const int i = r->free_idx[--r->n_free];
    struct iocb *cb = &r->cbs[i];
    memset(cb, 0, sizeof *cb);
    cb->aio_data = (uint64_t)i;
    cb->aio_lio_opcode = IOCB_CMD_PREAD;
    cb->aio_fildes = (uint32_t)r->fd;
    cb->aio_buf = (uint64_t)(uintptr_t)buf;
    cb->aio_nbytes = len;
    cb->aio_offset = (int64_t)off;
    cb->aio_flags = IOCB_FLAG_RESFD; /* completion -> the eventfd that fr_aread_wait reads */
    cb->aio_resfd = (uint32_t)r->efd;
    r->tags[i] = tag;
    r->pending[r->n_pending++] = cb;
    r->outstanding++;
    return 0;
}

void fr_aread_flush(fr_aread *r) {
    int done = 0;
    while (done < r->n_pending) {
        const long n = k_submit(r->ctx, r->n_pending - done, r->pending + done);
        if (n > 0) { done += (int)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        /* the first one was refused: it completes with the error, the rest go on */
        const int i = (int)r->pending[done]->aio_data;
        r->failed[r->n_failed++] = (fr_aread_done){r->tags[i], n < 0 ? -(int64_t)errno : -(int64_t)EIO};
        r->free_idx[r->n_free++] = i;
        done++;
        fr_aread_kick(r);
    }
    r->n_pending = 0;
}

void fr_aread_wait(fr_aread *r) {
    uint64_t v;
    while (read(r->efd, &v, sizeof v) < 0 && errno == EINTR) {}
}

void fr_aread_kick(fr_aread *r) {
    const uint64_t one = 1;
    const int saved = errno;
    (void)!write(r->efd, &one, sizeof one);
    errno = saved;
}

/* Move finished events into out (min_nr: block for that many). */
static int collect(fr_aread *r, fr_aread_done *out, int max, long min_nr) {
    int n = 0;
    while (n < max && r->n_failed > 0) out[n++] = r->failed[--r->n_failed];
    if (n == max || r->outstanding - n <= 0) { r->outstanding -= n; return n; }
    struct timespec zero = {0, 0};
    long got;
    do got = k_getevents(r->ctx, min_nr, max - n, r->ev, min_nr ? NULL : &zero);
    while (got < 0 && errno == EINTR);
    for (long k = 0; k < got; k++) {
        const int i = (int)r->ev[k].data;
        out[n++] = (fr_aread_done){r->tags[i], (int64_t)r->ev[k].res};
        r->free_idx[r->n_free++] = i;
    }
    r->outstanding -= n;
    return n;
}

int fr_aread_reap(fr_aread *r, fr_aread_done *out, int max) { return collect(r, out, max, 0); }

void fr_aread_free(fr_aread *r) {
    if (!r) return;
    if (r->ctx) {
        fr_aread_flush(r);
        fr_aread_done d[16];
        while (r->outstanding > 0) /* the kernel writes into the caller's buffers until then */
            if (collect(r, d, 16, 1) <= 0 && r->n_failed == 0) break;
        k_destroy(r->ctx);
    }
    if (r->efd >= 0) close(r->efd);
    free(r->cbs);
    free(r->tags);
    free(r->free_idx);
    free(r->pending);
    free(r->failed);
    free(r->ev);
    free(r);
}

#else /* no Linux AIO: callers keep their blocking reads */

fr_aread *fr_aread_new(int fd, int depth) { (void)fd, (void)depth; return NULL; }
int fr_aread_add(fr_aread *r, void *buf, uint64_t off, size_t len, void *tag) {
    (void)r, (void)buf, (void)off, (void)len, (void)tag;
    return -1;
}
void fr_aread_flush(fr_aread *r) { (void)r; }
void fr_aread_wait(fr_aread *r) { (void)r; }
void fr_aread_kick(fr_aread *r) { (void)r; }
int fr_aread_reap(fr_aread *r, fr_aread_done *out, int max) { (void)r, (void)out, (void)max; return 0; }
void fr_aread_free(fr_aread *r) { (void)r; }

#endif
