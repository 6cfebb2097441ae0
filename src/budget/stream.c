/* stream.c - out-of-core layer streaming (see stream.h). */
#include "core/thread.h"
#include "budget/stream.h"
#include "core/fault.h"
#include "kernels/interleave.h"

#include <errno.h>

#include "core/fault.h"
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/progress.h"
#include "core/types.h"
#include "mem/alloc.h"

#define PAGE 4096u             /* O_DIRECT alignment (covers 512 and 4096 sectors) */
#define MERGE_GAP (256u << 10) /* read through gaps up to this (norms between matrices) */
#define N_MAT FR_LAYER_MATRICES

typedef struct extent {
    uint64_t a_start, a_end;   /* page-aligned file range */
    uint64_t need_end;         /* last byte we need + 1 (a_end may run past EOF) */
    size_t dst;                /* position in the buffer (page-aligned) */
} extent;

typedef struct layer_io {
    int n_ext;
    extent ext[N_MAT];
    size_t w_dst[N_MAT];       /* where each matrix lands in the buffer */
    size_t data_bytes;         /* the matrices; then scratch up to `bytes` */
    size_t bytes;              /* buffer bytes for this layer (without slack) */
} layer_io;

typedef struct ring_buf {
    void *raw;                 /* accounted allocation (bytes + PAGE) */
    uint8_t *data;             /* page-aligned */
    fr_layer layer;            /* view of the layer it holds */
} ring_buf;

struct fr_stream {
    fr_layer_source src;
    frugal_model *m;
    int fd;                    /* O_RDONLY */
    int fd_direct;             /* O_DIRECT, or -1 */
    uint64_t file_size;        /* at creation, for messages */
    int n_layer, n_resident, n_streamed, n_buf;
    bool dense_only;           /* the stacked experts stay out (budget/experts.c streams them) */
    layer_io *io;              /* [n_layer] */
    fr_layer *res;             /* [n_resident]: layer views into res_raw */
    void **res_raw;            /* [n_resident] accounted allocations */
    size_t *res_size;
    ring_buf ring[3];
    size_t ring_size;          /* accounted bytes per ring buffer */
    /* producer/consumer state, under mu */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t produced;         /* loads finished (ok or failed) */
    uint64_t consumed;         /* acquire() calls on streamed layers */
    uint64_t released;         /* release() calls on streamed layers */
    bool stop;
    bool hold;                 /* fr_stream_set_*: start no new load */
    bool busy;                 /* the I/O thread is reading into a ring slot */
    int err_code;
    fr_err err;
};

/* Matrix j of a layer, or NULL when its family has none there. */
static const fr_weight *mat(const fr_layer *L, int j) { return fr_layer_mat(L, j); }

static fr_weight *mat_mut(fr_layer *L, int j) { return (fr_weight *)mat(L, j); }

/* Whether matrix j stays out of a dense-only stream: the stacked experts. */
static bool skipped(bool dense_only, int j) { return dense_only && j >= FR_WGATE_EXPS; }

/* Plan the reads of layer il: its matrices' file ranges (without the experts when
 * dense_only), sorted, merged across small gaps, each widened to whole pages
 * (O_DIRECT) and packed into a buffer. */
static void plan_layer(const frugal_model *m, int il, bool dense_only, layer_io *io) {
    const fr_layer *L = &m->layers[il];
    uint64_t off[N_MAT], len[N_MAT];
    int order[N_MAT], n_mat = 0;
    for (int j = 0; j < N_MAT; j++) {
        const fr_weight *w = mat(L, j);
        if (!w || skipped(dense_only, j)) continue;
        off[j] = (uint64_t)((const uint8_t *)w->src - m->file->map); /* data may be a repacked copy */
        len[j] = (uint64_t)fr_row_size(w->type, w->n_in) * (uint64_t)w->n_out;
        order[n_mat++] = j;
    }
    for (int a = 1; a < n_mat; a++) /* insertion sort by offset */
        for (int b = a; b > 0 && off[order[b]] < off[order[b - 1]]; b--) {
            int t = order[b]; order[b] = order[b - 1]; order[b - 1] = t;
        }
    memset(io, 0, sizeof *io);
    size_t pos = 0;
    uint64_t ext_start = 0, ext_end = 0;
    int first_in_ext = 0;
    for (int k = 0; k <= n_mat; k++) {
        int j = k < n_mat ? order[k] : -1;
        if (k > 0 && (j < 0 || off[j] > ext_end + MERGE_GAP)) {
            /* close the current extent */
            extent *e = &io->ext[io->n_ext++];
            e->a_start = ext_start & ~(uint64_t)(PAGE - 1);
            e->a_end = (ext_end + PAGE - 1) & ~(uint64_t)(PAGE - 1);
            e->need_end = ext_end;
            e->dst = pos;
            for (int q = first_in_ext; q < k; q++)
                io->w_dst[order[q]] = pos + (size_t)(off[order[q]] - e->a_start);
            pos += (size_t)(e->a_end - e->a_start);
            first_in_ext = k;
        }
        if (j < 0) break;
        if (k == first_in_ext) { ext_start = off[j]; ext_end = off[j] + len[j]; }
        else if (off[j] + len[j] > ext_end) ext_end = off[j] + len[j];
    }
    /* room after the data to repack the layer's matrices in place (16 rows) */
    size_t tmp = 0;
    for (int j = 0; j < N_MAT; j++) {
        size_t t = mat(L, j) && fr_layer_mat_repackable(j) ? fr_il_scratch_bytes(mat(L, j)) : 0;
        if (t > tmp) tmp = t;
    }
    io->data_bytes = pos;
    io->bytes = pos + tmp;
}

uint64_t fr_stream_layer_bytes(const frugal_model *m, int il) {
    if (!m || !m->layers || il < 0 || il >= m->hp.n_layer) return 0;
    layer_io io;
    plan_layer(m, il, false, &io);
    return (uint64_t)io.bytes + PAGE;
}

uint64_t fr_stream_dense_bytes(const frugal_model *m, int il) {
    if (!m || !m->layers || il < 0 || il >= m->hp.n_layer) return 0;
    layer_io io;
    plan_layer(m, il, true, &io);
    return (uint64_t)io.bytes + PAGE;
}

/* Read [a_start, a_end) of one extent into dst; at least need_end - a_start bytes
 * must arrive. O_DIRECT first; on EINVAL (filesystem refuses it) fall back to
 * buffered pread for good, dropping the page cache of what we read. */
static int read_extent(fr_stream *s, int il, const extent *e, uint8_t *dst, fr_err *err) {
    uint64_t need = e->need_end - e->a_start;
    if (s->fd_direct >= 0) {
        uint64_t got = 0, want = e->a_end - e->a_start;
        while (got < want) {
            ssize_t r = fr_fault_hit(FR_FAULT_IO) ? (errno = EIO, -1)
                                                   : pread(s->fd_direct, dst + got, (size_t)(want - got),
                                                           (off_t)(e->a_start + got));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0 && errno == EINVAL && got == 0) { close(s->fd_direct); s->fd_direct = -1; break; }
            if (r < 0)
                return fr_err_set(err, FRUGAL_E_IO, "%s: reading layer %d: %s", s->m->path, il, strerror(errno));
            if (r == 0) break; /* EOF */
            got += (uint64_t)r;
            if (got % PAGE) break; /* a short, unaligned read only happens at EOF */
        }
        if (s->fd_direct >= 0) {
            if (got < need)
                return fr_err_set(err, FRUGAL_E_IO,
                                  "%s: file truncated: layer %d needs bytes up to %llu but the file ends at %llu",
                                  s->m->path, il, (unsigned long long)e->need_end,
                                  (unsigned long long)(e->a_start + got));
            return FRUGAL_OK;
        }
    }
    uint64_t got = 0;
    while (got < need) {
        ssize_t r = fr_fault_hit(FR_FAULT_IO) ? (errno = EIO, -1)
                                               : pread(s->fd, dst + got, (size_t)(need - got), (off_t)(e->a_start + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0)
            return fr_err_set(err, FRUGAL_E_IO, "%s: reading layer %d: %s", s->m->path, il, strerror(errno));
        if (r == 0)
            return fr_err_set(err, FRUGAL_E_IO,
                              "%s: file truncated: layer %d needs bytes up to %llu but the file ends at %llu",
                              s->m->path, il, (unsigned long long)e->need_end,
                              (unsigned long long)(e->a_start + got));
        got += (uint64_t)r;
    }
    /* the page cache we just filled would be charged to us (and our cgroup) */
    posix_fadvise(s->fd, (off_t)e->a_start, (off_t)need, POSIX_FADV_DONTNEED);
    return FRUGAL_OK;
}

static int read_layer(fr_stream *s, int il, uint8_t *buf, fr_err *err) {
    const layer_io *io = &s->io[il];
    for (int k = 0; k < io->n_ext; k++) {
        int rc = read_extent(s, il, &io->ext[k], buf + io->ext[k].dst, err);
        if (rc) return rc;
    }
    return FRUGAL_OK;
}

/* The model's layer il with its matrices pointing into buf. */
static void view_layer(const fr_stream *s, int il, uint8_t *buf, fr_layer *out) {
    *out = s->m->layers[il];
    for (int j = 0; j < N_MAT; j++) {
        fr_weight *w = mat_mut(out, j);
        if (!w || skipped(s->dense_only, j)) continue;
        w->data = buf + s->io[il].w_dst[j];
        w->layout = FR_LAYOUT_ROWS; /* as in the file */
    }
}

/* Give a layer just read its matrices in the IL16 layout where that pays, in place
 * (same bytes), through the scratch after its data: resident and streamed layers then
 * compute exactly like the repacked layers of an unbudgeted model. */
static void repack_layer(const fr_stream *s, int il, uint8_t *buf, fr_layer *L) {
    for (int j = 0; j < N_MAT; j++) {
        fr_weight *w = mat_mut(L, j);
        if (w && fr_layer_mat_repackable(j) && fr_il_worth_it(w)) fr_il_repack_in_place(w, buf + s->io[il].data_bytes);
    }
}

/* The I/O thread: load number k (k = 0, 1, ...) is streamed layer
 * n_resident + k % n_streamed into ring slot k % n_buf, once load k - n_buf has
 * been released. After an error it keeps "finishing" loads without reading, so
 * consumers never wait for a load that cannot come. */
static void *io_main(void *arg) {
    fr_stream *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && (s->hold || s->produced - s->released >= (uint64_t)s->n_buf))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) break;
        uint64_t k = s->produced;
        bool failed = s->err_code != FRUGAL_OK;
        s->busy = true;
        pthread_mutex_unlock(&s->mu);
        int il = s->n_resident + (int)(k % (uint64_t)s->n_streamed);
        ring_buf *rb = &s->ring[k % (uint64_t)s->n_buf];
        fr_err e = FRUGAL_ERROR_INIT;
        int rc = failed ? FRUGAL_OK : read_layer(s, il, rb->data, &e);
        view_layer(s, il, rb->data, &rb->layer);
        if (!failed && !rc) repack_layer(s, il, rb->data, &rb->layer);
        pthread_mutex_lock(&s->mu);
        if (rc && s->err_code == FRUGAL_OK) { s->err_code = rc; s->err = e; }
        s->busy = false;
        s->produced++;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static const fr_layer *src_acquire(void *user, int il) {
    fr_stream *s = user;
    if (il < s->n_resident) return &s->res[il];
    pthread_mutex_lock(&s->mu);
    uint64_t k = s->consumed++;
    while (s->produced <= k) pthread_cond_wait(&s->cv, &s->mu);
    int expect = s->n_resident + (int)(k % (uint64_t)s->n_streamed);
    if (il != expect && s->err_code == FRUGAL_OK) {
        s->err_code = FRUGAL_E_INTERNAL;
        fr_err_set(&s->err, FRUGAL_E_INTERNAL, "layer stream out of order: layer %d acquired, %d expected", il, expect);
    }
    const fr_layer *L = &s->ring[k % (uint64_t)s->n_buf].layer;
    pthread_mutex_unlock(&s->mu);
    return L;
}

static void src_release(void *user, int il) {
    fr_stream *s = user;
    if (il < s->n_resident) return;
    pthread_mutex_lock(&s->mu);
    s->released++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int fr_stream_check(fr_stream *s, fr_err *err) {
    if (!s) return FRUGAL_OK;
    pthread_mutex_lock(&s->mu);
    int rc = s->err_code;
    if (rc) fr_err_set(err, rc, "%s", s->err.message);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int src_check(void *user, fr_err *err) { return fr_stream_check(user, err); }
static void src_destroy(void *user) { fr_stream_free(user); }

fr_layer_source *fr_stream_source(fr_stream *s) { return s ? &s->src : NULL; }

static int stream_new(frugal_model *m, int n_resident, int n_io_buf, bool dense_only, fr_stream **out,
                      fr_err *err) {
    *out = NULL;
    const int n_layer = m->hp.n_layer;
    if (!m->layers || n_resident < 0 || n_resident > n_layer || n_io_buf < 1 || n_io_buf > 3)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "stream: bad arguments (resident %d of %d, %d buffers)",
                          n_resident, n_layer, n_io_buf);
    fr_stream *s = fr_calloc(1, sizeof *s);
    if (!s) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    s->m = m;
    s->dense_only = dense_only;
    s->fd = s->fd_direct = -1;
    s->n_layer = n_layer;
    s->n_resident = n_resident;
    s->n_streamed = n_layer - n_resident;
    s->n_buf = s->n_streamed < n_io_buf ? s->n_streamed : n_io_buf;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->src = (fr_layer_source){s, src_acquire, src_release, src_check, src_destroy, NULL, NULL, NULL, NULL, NULL};
    int rc = FRUGAL_OK;

    s->fd = open(m->path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) != 0) {
        rc = fr_err_set(err, FRUGAL_E_IO, "%s: cannot open for streaming: %s", m->path, strerror(errno));
        goto fail;
    }
    s->file_size = (uint64_t)st.st_size;
    s->fd_direct = open(m->path, O_RDONLY | O_CLOEXEC | O_DIRECT); /* -1 is fine: buffered */

    s->io = fr_calloc((size_t)n_layer, sizeof *s->io);
    s->res = fr_calloc((size_t)n_resident + 1, sizeof *s->res);
    s->res_raw = fr_calloc((size_t)n_resident + 1, sizeof *s->res_raw);
    s->res_size = fr_calloc((size_t)n_resident + 1, sizeof *s->res_size);
    if (!s->io || !s->res || !s->res_raw || !s->res_size) {
        rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        goto fail;
    }
    size_t ring_max = 0;
    for (int il = 0; il < n_layer; il++) {
        plan_layer(m, il, dense_only, &s->io[il]);
        if (il >= n_resident && s->io[il].bytes > ring_max) ring_max = s->io[il].bytes;
    }
    /* The loader touched the mapping (metadata, norms): drop those pages so our RSS
     * starts from what we account. Mappings of other contexts simply refault. */
    madvise((void *)m->file->map, (size_t)m->file->size, MADV_DONTNEED);
    posix_fadvise(s->fd, 0, 0, POSIX_FADV_DONTNEED);

    for (int il = 0; il < n_resident; il++) {
        s->res_size[il] = s->io[il].bytes + PAGE;
        s->res_raw[il] = fr_mem_alloc(FR_MEM_WEIGHTS, s->res_size[il]);
        if (!s->res_raw[il]) {
            rc = fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %.1f MiB for resident layer %d",
                            s->res_size[il] / 1048576.0, il);
            goto fail;
        }
        uint8_t *buf = (uint8_t *)(((uintptr_t)s->res_raw[il] + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
        if ((rc = read_layer(s, il, buf, err))) goto fail;
        view_layer(s, il, buf, &s->res[il]);
        repack_layer(s, il, buf, &s->res[il]);
        fr_progress("warm-up", (uint64_t)il + 1, (uint64_t)n_resident);
    }
    s->ring_size = ring_max + PAGE;
    for (int b = 0; b < s->n_buf; b++) {
        s->ring[b].raw = fr_mem_alloc(FR_MEM_IO, s->ring_size);
        if (!s->ring[b].raw) {
            rc = fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %.1f MiB for I/O buffer %d",
                            s->ring_size / 1048576.0, b);
            goto fail;
        }
        s->ring[b].data = (uint8_t *)(((uintptr_t)s->ring[b].raw + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    }
    if (s->n_streamed > 0) {
        if (fr_thread_create(&s->thread, io_main, s) != 0) {
            rc = fr_err_set(err, FRUGAL_E_NOMEM, "cannot start the I/O thread");
            goto fail;
        }
        s->thread_started = true;
    }
    *out = s;
    return FRUGAL_OK;
fail:
    fr_stream_free(s);
    return rc;
}

int fr_stream_new(frugal_model *m, int n_resident, int n_io_buf, fr_stream **out, fr_err *err) {
    return stream_new(m, n_resident, n_io_buf, false, out, err);
}

int fr_stream_new_dense(frugal_model *m, int n_resident, int n_io_buf, fr_stream **out, fr_err *err) {
    return stream_new(m, n_resident, n_resident < m->hp.n_layer ? n_io_buf : 1, true, out, err);
}

void fr_stream_free(fr_stream *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int b = 0; b < 3; b++) fr_mem_free(FR_MEM_IO, s->ring[b].raw, s->ring_size);
    if (s->res_raw)
        for (int il = 0; il < s->n_resident; il++) fr_mem_free(FR_MEM_WEIGHTS, s->res_raw[il], s->res_size[il]);
    free(s->res_raw);
    free(s->res_size);
    free(s->res);
    free(s->io);
    if (s->fd >= 0) close(s->fd);
    if (s->fd_direct >= 0) close(s->fd_direct);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Stop the I/O thread between loads and throw away what it read ahead, so the
 * ring and the layer schedule can change: the next load is the next layer the
 * forward pass will acquire. Called with mu held, at a step boundary (every
 * acquired layer released). */
static void quiesce(fr_stream *s) {
    s->hold = true;
    while (s->busy) pthread_cond_wait(&s->cv, &s->mu);
    s->produced = s->consumed;
}

static void resume(fr_stream *s) {
    s->hold = false;
    pthread_cond_broadcast(&s->cv);
}

int fr_stream_window(fr_stream *s) {
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int n = s->n_streamed > 0 ? s->n_buf : 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int fr_stream_set_window(fr_stream *s, int n_buf, int64_t *freed, fr_err *err) {
    *freed = 0;
    if (!s || s->n_streamed == 0) return FRUGAL_OK;
    if (n_buf < 1) n_buf = 1;
    if (n_buf > 3) n_buf = 3;
    if (n_buf > s->n_streamed) n_buf = s->n_streamed;
    pthread_mutex_lock(&s->mu);
    int rc = FRUGAL_OK;
    if (s->consumed != s->released) {
        rc = fr_err_set(err, FRUGAL_E_INTERNAL, "stream: window changed while a layer is in use");
        goto out;
    }
    quiesce(s);
    for (int b = n_buf; b < s->n_buf; b++) { /* shrink */
        fr_mem_free(FR_MEM_IO, s->ring[b].raw, s->ring_size);
        s->ring[b].raw = NULL;
        *freed += (int64_t)s->ring_size;
    }
    int have = s->n_buf < n_buf ? s->n_buf : n_buf;
    for (int b = have; b < n_buf; b++) { /* grow; stop at the first refusal */
        s->ring[b].raw = fr_mem_alloc(FR_MEM_IO, s->ring_size);
        if (!s->ring[b].raw) {
            rc = fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %.1f MiB for I/O buffer %d",
                            s->ring_size / 1048576.0, b);
            n_buf = b;
            break;
        }
        s->ring[b].data = (uint8_t *)(((uintptr_t)s->ring[b].raw + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    }
    s->n_buf = n_buf;
    /* the slot of load k is k % n_buf: restart the count so it holds for the new n_buf */
    s->produced = s->consumed = s->released = s->consumed % (uint64_t)s->n_streamed;
    resume(s);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

fr_stream *fr_stream_of(fr_layer_source *src) {
    return src && src->destroy == src_destroy ? (fr_stream *)src->user : NULL;
}

int fr_stream_resident(fr_stream *s) { return s ? s->n_resident : 0; }

/* Read layer il back into a new resident buffer (undoing an eviction). */
static int load_resident(fr_stream *s, int il, fr_err *err) {
    s->res_size[il] = s->io[il].bytes + PAGE;
    s->res_raw[il] = fr_mem_alloc(FR_MEM_WEIGHTS, s->res_size[il]);
    if (!s->res_raw[il])
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate %.1f MiB for resident layer %d",
                          s->res_size[il] / 1048576.0, il);
    uint8_t *buf = (uint8_t *)(((uintptr_t)s->res_raw[il] + PAGE - 1) & ~(uintptr_t)(PAGE - 1));
    int rc = read_layer(s, il, buf, err);
    if (rc) {
        fr_mem_free(FR_MEM_WEIGHTS, s->res_raw[il], s->res_size[il]);
        s->res_raw[il] = NULL;
        return rc;
    }
    view_layer(s, il, buf, &s->res[il]);
    repack_layer(s, il, buf, &s->res[il]);
    return FRUGAL_OK;
}

int fr_stream_set_resident(fr_stream *s, int n_res, int64_t *freed, fr_err *err) {
    *freed = 0;
    if (!s || s->n_streamed == 0 || n_res == s->n_resident) return FRUGAL_OK;
    if (n_res < 0 || n_res > s->n_layer - 1)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "stream: %d resident layers of %d", n_res, s->n_layer);
    pthread_mutex_lock(&s->mu);
    int rc = FRUGAL_OK;
    /* only between whole forward passes: the next layer acquired is the first streamed one */
    if (s->consumed != s->released || s->consumed % (uint64_t)s->n_streamed) {
        rc = fr_err_set(err, FRUGAL_E_INTERNAL, "stream: resident layers changed inside a forward pass");
        goto out;
    }
    for (int il = n_res; il < s->n_layer; il++)
        if (s->io[il].bytes + PAGE > s->ring_size) {
            rc = fr_err_set(err, FRUGAL_E_UNSUPPORTED, "layer %d is larger than the read-ahead buffers", il);
            goto out;
        }
    quiesce(s);
    for (int il = n_res; il < s->n_resident; il++) { /* evict: stream them from now on */
        fr_mem_free(FR_MEM_WEIGHTS, s->res_raw[il], s->res_size[il]);
        *freed += (int64_t)s->res_size[il];
        s->res_raw[il] = NULL;
    }
    int have = s->n_resident < n_res ? s->n_resident : n_res;
    for (int il = have; il < n_res; il++) /* reload; stop at the first failure */
        if ((rc = load_resident(s, il, err))) { n_res = il; break; }
    s->n_resident = n_res;
    s->n_streamed = s->n_layer - n_res;
    s->produced = s->consumed = s->released = 0; /* load 0 is layer n_resident */
    resume(s);
out:
    pthread_mutex_unlock(&s->mu);
    return rc;
}
