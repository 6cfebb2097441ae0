/* fault.h - fault injection: make the N-th allocation or I/O call fail.
 *
 * SQLite-style: a test sets "fail the N-th call of this kind" and runs a path with
 * N = 1, 2, 3, ... until it completes without reaching N; every failure must come
 * back as a clean error (no crash, no leak, no partial output). The hooks sit in
 * the allocation layer (fr_mem_alloc) and the I/O layer (opening/mapping model
 * files, writing output files, the KV spill file). Off unless set, and then one
 * relaxed atomic load per call.
 *
 * From outside a test binary: FRUGAL_FAULT="alloc:N" or "io:N" (read once, at the
 * first hook call) makes the N-th call of that kind fail, and FRUGAL_FAULT_COUNT=1
 * prints the number of calls of each kind at exit (how far N needs to go). */
#ifndef FRUGAL_FAULT_H
#define FRUGAL_FAULT_H

#include <stddef.h>
#include <stdint.h>

typedef enum fr_fault_kind { FR_FAULT_ALLOC = 0, FR_FAULT_IO = 1, FR_FAULT_KINDS } fr_fault_kind;

/* Called by each hooked site: 1 when this call is to fail (the caller then fails
 * exactly as it would on ENOMEM / EIO), else 0. Counts every call. */
int fr_fault_hit(fr_fault_kind kind);

/* Fail the n-th call of `kind` from now on (n >= 1; 0 = never) and reset the
 * counter of that kind. */
void fr_fault_arm(fr_fault_kind kind, uint64_t n);

/* Calls of `kind` counted since the last arm (or process start). */
uint64_t fr_fault_calls(fr_fault_kind kind);

/* malloc / calloc / realloc / strdup with the allocation hook in front: NULL (as on
 * ENOMEM) when the hook says fail, else exactly the libc call. Small bookkeeping
 * allocations use these; large buffers go through the accounting layer (mem/alloc.h).
 * fr_realloc leaves `p` untouched when it fails, as realloc does. */
void *fr_malloc(size_t n);
void *fr_calloc(size_t count, size_t n);
void *fr_realloc(void *p, size_t n);
char *fr_strdup(const char *s);

#endif
