/* kv_disk.c - the KV cache's disk tier: pages (one layer x one block of 16 tokens)
 * live in a spill file and only `n_frames` of them are cached in RAM.
 *
 * Why pages per layer: attention for layer il reads every position of a sequence,
 * but only layer il's rows. So the RAM share must hold one layer's pages of the
 * sequences in the batch (n_blocks pages at most), not the whole cache: with L
 * layers, RAM can be ~1/L of the cache. The forward pass pins layer il's pages before
 * its workers read them (fr_kv_layer_pin, main thread); everything else goes through
 * fr_kv_page, which pages in on demand and evicts the least recently used unpinned
 * frame, writing it back if dirty.
 *
 * The spill file is created with mkstemp in the given directory and unlinked at
 * once: it is gone when the process exits, however it exits. I/O errors (disk full,
 * read errors) do not stop the forward pass midway (it has no error path); they are
 * recorded and the evaluation that saw them fails cleanly afterwards. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fault.h"
#include "kv/kv_cache.h"
#include "mem/alloc.h"

struct fr_kv_disk {
    int fd;
    int n_pages;
    int *frame_of;        /* [n_pages]: frame holding the page, or -1 */
    int *page_of;         /* [n_frames]: page in the frame, or -1 */
    uint64_t *last_use;   /* [n_frames]: LRU clock */
    unsigned *pinned;     /* [n_frames]: epoch it is pinned for */
    uint8_t *dirty;       /* [n_frames] */
    uint8_t *on_disk;     /* [n_pages]: the file holds valid data for it */
    uint64_t clock;
    unsigned epoch;       /* pins of older epochs have expired */
    int io_code;
    char io_msg[256];
    uint64_t reads, writes;
};

static void io_fail(fr_kv_disk *d, int code, const char *what, int e) {
    if (d->io_code) return;
    d->io_code = code;
    snprintf(d->io_msg, sizeof d->io_msg, "KV spill file: %s: %s", what, strerror(e));
}

int fr_kv_disk_open(fr_kv_pool *p, const char *dir, uint64_t ram_bytes, fr_err *err) {
    int n_pages = p->n_layer * p->n_blocks;
    uint64_t min_frames = (uint64_t)p->n_blocks + 2;
    uint64_t frames = ram_bytes / p->page_bytes;
    if (frames < min_frames)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                          "--kv-ram %.0f KiB is too small: the disk tier needs at least %.0f KiB (one layer's "
                          "KV pages + 2)", ram_bytes / 1024.0, min_frames * p->page_bytes / 1024.0);
    if (frames > (uint64_t)n_pages) frames = (uint64_t)n_pages;
    fr_kv_disk *d = fr_calloc(1, sizeof *d);
    if (!d) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    d->fd = -1;
    d->n_pages = n_pages;
    p->n_frames = (int)frames;
    d->frame_of = fr_malloc(sizeof(int) * (size_t)n_pages);
    d->on_disk = fr_calloc((size_t)n_pages, 1);
    d->page_of = fr_malloc(sizeof(int) * frames);
    d->last_use = fr_calloc(frames, sizeof(uint64_t));
    d->pinned = fr_calloc(frames, sizeof(unsigned));
    d->dirty = fr_calloc(frames, 1);
    p->disk = d;
    p->frames = fr_mem_alloc(FR_MEM_KV, frames * p->page_bytes);
    if (!d->frame_of || !d->on_disk || !d->page_of || !d->last_use || !d->pinned || !d->dirty || !p->frames) {
        fr_kv_disk_close(p);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate the KV RAM share (%.1f MiB)",
                          frames * p->page_bytes / 1048576.0);
    }
    for (int i = 0; i < n_pages; i++) d->frame_of[i] = -1;
    for (uint64_t f = 0; f < frames; f++) d->page_of[f] = -1;
    d->epoch = 1;
    char path[4096];
    snprintf(path, sizeof path, "%s/frugal-kv-XXXXXX", dir);
    d->fd = mkstemp(path);
    if (d->fd < 0) {
        int e = errno;
        fr_kv_disk_close(p);
        return fr_err_set(err, FRUGAL_E_IO, "cannot create the KV spill file in %s: %s", dir, strerror(e));
    }
    unlink(path); /* removed on exit, whatever happens */
    return FRUGAL_OK;
}

void fr_kv_disk_close(fr_kv_pool *p) {
    fr_kv_disk *d = p->disk;
    if (!d) return;
    if (d->fd >= 0) close(d->fd);
    fr_mem_free(FR_MEM_KV, p->frames, (size_t)p->n_frames * p->page_bytes);
    p->frames = NULL;
    free(d->frame_of);
    free(d->on_disk);
    free(d->page_of);
    free(d->last_use);
    free(d->pinned);
    free(d->dirty);
    free(d);
    p->disk = NULL;
}

static int full_pwrite(int fd, const uint8_t *buf, size_t n, off_t off) {
    if (fr_fault_hit(FR_FAULT_IO)) return ENOSPC; /* tests: core/fault.h */
    while (n) {
        ssize_t w = pwrite(fd, buf, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : ENOSPC;
        buf += w;
        n -= (size_t)w;
        off += w;
    }
    return 0;
}

static int full_pread(int fd, uint8_t *buf, size_t n, off_t off) {
    if (fr_fault_hit(FR_FAULT_IO)) return EIO;
    while (n) {
        ssize_t r = pread(fd, buf, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? errno : EIO; /* short file: treat as an I/O error */
        buf += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

/* A frame to reuse: a free one, else the least recently used one not pinned now. */
static int victim(fr_kv_pool *p) {
    fr_kv_disk *d = p->disk;
    int best = -1;
    for (int f = 0; f < p->n_frames; f++) {
        if (d->page_of[f] < 0) return f;
        if (d->pinned[f] == d->epoch) continue;
        if (best < 0 || d->last_use[f] < d->last_use[best]) best = f;
    }
    return best; /* never -1: n_frames >= n_blocks + 2 and one layer pins <= n_blocks */
}

static uint8_t *frame_ptr(const fr_kv_pool *p, int f) { return p->frames + (size_t)f * p->page_bytes; }

/* Bring page into a frame (main thread). */
static int page_in(fr_kv_pool *p, int page) {
    fr_kv_disk *d = p->disk;
    int f = d->frame_of[page];
    if (f >= 0) return f;
    f = victim(p);
    int old = d->page_of[f];
    if (old >= 0) {
        if (d->dirty[f]) {
            int e = full_pwrite(d->fd, frame_ptr(p, f), p->page_bytes, (off_t)old * (off_t)p->page_bytes);
            if (e) io_fail(d, e == ENOSPC ? FRUGAL_E_IO : FRUGAL_E_IO, e == ENOSPC ? "disk full" : "write", e);
            else d->on_disk[old] = 1;
            d->writes++;
        }
        d->frame_of[old] = -1;
    }
    if (d->on_disk[page]) {
        int e = full_pread(d->fd, frame_ptr(p, f), p->page_bytes, (off_t)page * (off_t)p->page_bytes);
        if (e) io_fail(d, FRUGAL_E_IO, "read", e);
        d->reads++;
    } else {
        memset(frame_ptr(p, f), 0, p->page_bytes);
    }
    d->page_of[f] = page;
    d->frame_of[page] = f;
    d->dirty[f] = 0;
    return f;
}

uint8_t *fr_kv_page(fr_kv_pool *p, int il, int block, int write) {
    if (!p->disk) return fr_kv_ram_page(p, il, block);
    int page = il * p->n_blocks + block;
    fr_kv_disk *d = p->disk;
    int f = page_in(p, page);
    d->last_use[f] = ++d->clock;
    if (write) d->dirty[f] = 1;
    return frame_ptr(p, f);
}

uint8_t *fr_kv_page_fast(const fr_kv_cache *kv, int il, int pos) {
    const fr_kv_pool *p = kv->pool;
    if (!p->disk) return fr_kv_ram_page(p, il, kv->blocks[pos / FR_KV_BLOCK]);
    int page = il * p->n_blocks + kv->blocks[pos / FR_KV_BLOCK];
    return frame_ptr(p, p->disk->frame_of[page]); /* pinned by fr_kv_layer_pin */
}

void fr_kv_layer_pin(fr_kv_pool *p, int il, fr_kv_cache *const *seqs, int n) {
    fr_kv_disk *d = p->disk;
    if (!d) return;
    d->epoch++;
    for (int i = 0; i < n; i++) {
        const fr_kv_cache *kv = seqs[i];
        if (i > 0 && seqs[i - 1] == kv) continue; /* common case: runs of one sequence */
        for (int b = 0; b < kv->n_blocks; b++) {
            int page = il * p->n_blocks + kv->blocks[b];
            int f = page_in(p, page);
            d->pinned[f] = d->epoch;
            d->last_use[f] = ++d->clock;
        }
    }
}

void fr_kv_unpin(fr_kv_pool *p) {
    if (p->disk) p->disk->epoch++;
}

int fr_kv_io_error(fr_kv_pool *p, fr_err *err) {
    fr_kv_disk *d = p->disk;
    if (!d || !d->io_code) return FRUGAL_OK;
    int code = d->io_code;
    fr_err_set(err, code, "%s", d->io_msg);
    d->io_code = 0;
    return code;
}

void fr_kv_disk_stats(const fr_kv_pool *p, uint64_t *reads, uint64_t *writes) {
    if (reads) *reads = p->disk ? p->disk->reads : 0;
    if (writes) *writes = p->disk ? p->disk->writes : 0;
}

int fr_kv_disk_fd(const fr_kv_pool *p) { return p && p->disk ? p->disk->fd : -1; }
