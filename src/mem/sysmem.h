/* sysmem.h - the memory this process may still take, as the OS reports it. */
#ifndef FRUGAL_SYSMEM_H
#define FRUGAL_SYSMEM_H

#include <stdint.h>

/* Room left under this process's memory cgroup limit (v1 or v2, from the path in
 * /proc/self/cgroup; the cgroup's reclaimable page cache counts as room), 0 if there
 * is no limit or it cannot be read, 1 for a limit with no room at all. */
uint64_t fr_mem_cgroup_room(void);
/* MemAvailable, lowered to the cgroup room; 0 when unknown. */
uint64_t fr_mem_available(void);

#endif
