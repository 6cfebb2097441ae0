/* sysmem.h - how much memory this process may still take (system and cgroup).
 *
 * Used before decisions that trade memory for speed (repacking weights into RAM):
 * a cgroup limit is a hard wall (the OOM killer, exit 137, no message), so the
 * room under it matters more than what the machine has free. */
#ifndef FRUGAL_SYSMEM_H
#define FRUGAL_SYSMEM_H

#include <stdint.h>

/* Room left under this process's memory cgroup limit (v1 or v2, found through
 * /proc/self/cgroup), not counting reclaimable page cache; 0 when there is no
 * limit or it cannot be read, 1 when a limit leaves no room at all. */
uint64_t fr_sys_cgroup_room(void);

/* Bytes this process may still take: MemAvailable, lowered to the cgroup room;
 * 0 when unknown. */
uint64_t fr_sys_memory_available(void);

#endif
