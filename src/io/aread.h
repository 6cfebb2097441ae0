/* aread.h - asynchronous file reads for one consumer thread: Linux native AIO
 * (io_submit / io_getevents, through syscall(2): no library beyond libc), with
 * completions signalled on an eventfd.
 *
 * Why: the expert cache reads ~1 MiB matrices with O_DIRECT while both CPUs compute.
 * With one blocking pread per thread, every finished read must wait for its thread to
 * get a CPU before the next is issued, and the disk idles meanwhile; with AIO one
 * thread submits a whole layer's reads at once and the device keeps its queue full
 * however busy the CPUs are.
 *
 * Contract. One thread adds reads (fr_aread_add), submits them (fr_aread_flush),
 * blocks (fr_aread_wait) and collects results (fr_aread_reap); any thread may wake
 * it (fr_aread_kick, async-signal-safe). Every added read completes exactly once
 * through reap, also when its submission failed (res = -errno). At most `depth` reads
 * may be added and not reaped. Reads into buffers and at offsets that the descriptor
 * accepts (O_DIRECT: page-aligned). Without Linux AIO (another OS, a kernel or
 * seccomp policy that refuses io_setup) fr_aread_new returns NULL: the caller keeps
 * its blocking reads. */
#ifndef FRUGAL_AREAD_H
#define FRUGAL_AREAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct fr_aread fr_aread;

typedef struct fr_aread_done {
    void *tag;    /* as given to fr_aread_add */
    int64_t res;  /* bytes read, or -errno */
} fr_aread_done;

/* A reader on fd with up to depth (1..256) reads outstanding; NULL where AIO is not
 * available or out of resources. */
fr_aread *fr_aread_new(int fd, int depth);

/* Queue a read of len bytes at off into buf (submitted by the next flush). -1 when
 * depth reads are already outstanding (nothing queued), else 0. */
int fr_aread_add(fr_aread *r, void *buf, uint64_t off, size_t len, void *tag);

/* Submit the queued reads. A read the kernel refuses completes at once with -errno. */
void fr_aread_flush(fr_aread *r);

/* Block until a read completes or a kick arrives (returns at once if one came since
 * the last wait). */
void fr_aread_wait(fr_aread *r);

/* Wake the thread in (or next entering) fr_aread_wait. */
void fr_aread_kick(fr_aread *r);

/* Collect up to max finished reads without blocking; returns how many. */
int fr_aread_reap(fr_aread *r, fr_aread_done *out, int max);

/* Wait for every outstanding read, then release r (NULL: nothing). */
void fr_aread_free(fr_aread *r);

#endif
