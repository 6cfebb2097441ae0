/* mapguard.h - surviving a mapped file that shrinks under us (SIGBUS).
 *
 * Reading a page of a file mapping beyond the file's current end raises SIGBUS,
 * which by default kills the process with no message: a model file truncated or
 * rewritten (`cp new.gguf model.gguf`) while `run` or `serve` maps it. The guard
 * installs one SIGBUS handler (SA_SIGINFO): when the faulting address lies in a
 * registered mapping it maps a zero page over the faulting page (so the load that
 * faulted, on whatever thread, completes and reads zeros) and marks the mapping
 * faulted; the code that used the mapping checks the mark when its work is done
 * and reports an error naming the file instead of using the result. A SIGBUS
 * anywhere else gets the previous disposition (the default: the process dies as
 * before). */
#ifndef FRUGAL_MAPGUARD_H
#define FRUGAL_MAPGUARD_H

#include <stddef.h>

/* Watch [addr, addr + len). Returns a slot (>= 0) for fr_mapguard_faulted and
 * fr_mapguard_remove, or -1 when the table is full (the mapping is then not
 * guarded: a SIGBUS in it kills the process as before). */
int fr_mapguard_add(const void *addr, size_t len);

/* Stop watching (before the mapping is unmapped). -1 is ignored. */
void fr_mapguard_remove(int slot);

/* 1 when a read of the mapping in `slot` faulted since it was added. */
int fr_mapguard_faulted(int slot);

#endif
