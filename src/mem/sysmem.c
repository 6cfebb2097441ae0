/* sysmem.c - see sysmem.h (moved here from model/loader.c unchanged). */
#include "mem/sysmem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room left under this process's memory cgroup limit (v1 or v2, from the path in
 * /proc/self/cgroup), or 0 if there is no limit or it cannot be read. */
uint64_t fr_sys_cgroup_room(void) {
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f) return 0;
    char line[512], lim_path[640] = "", cur_path[640] = "", stat_path[640] = "";
    const char *file_key = "total_cache "; /* v1 memory.stat; v2: "file " */
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        const char *ctrl = a + 1, *path = b + 1;
        if (strstr(ctrl, "memory")) { /* v1 */
            snprintf(lim_path, sizeof lim_path, "/sys/fs/cgroup/memory%s/memory.limit_in_bytes", path);
            snprintf(cur_path, sizeof cur_path, "/sys/fs/cgroup/memory%s/memory.usage_in_bytes", path);
            snprintf(stat_path, sizeof stat_path, "/sys/fs/cgroup/memory%s/memory.stat", path);
            file_key = "total_cache ";
            break;
        }
        if (!*ctrl && !*lim_path) { /* v2 (unless a v1 memory line follows) */
            snprintf(lim_path, sizeof lim_path, "/sys/fs/cgroup%s/memory.max", path);
            snprintf(cur_path, sizeof cur_path, "/sys/fs/cgroup%s/memory.current", path);
            snprintf(stat_path, sizeof stat_path, "/sys/fs/cgroup%s/memory.stat", path);
            file_key = "file ";
        }
    }
    fclose(f);
    unsigned long long lim = 0, cur = 0;
    FILE *fl = *lim_path ? fopen(lim_path, "r") : NULL, *fc = *cur_path ? fopen(cur_path, "r") : NULL;
    int ok = fl && fc && fscanf(fl, "%llu", &lim) == 1 && fscanf(fc, "%llu", &cur) == 1; /* "max": no number */
    if (fl) fclose(fl);
    if (fc) fclose(fc);
    if (!ok) return 0;
    /* page cache charged to the cgroup is reclaimed under the limit: not in the way */
    FILE *fs = fopen(stat_path, "r");
    unsigned long long cache = 0;
    while (fs && fgets(line, sizeof line, fs))
        if (!strncmp(line, file_key, strlen(file_key))) cache = strtoull(line + strlen(file_key), NULL, 10);
    if (fs) fclose(fs);
    cur = cur > cache ? cur - cache : 0;
    return lim > cur ? (uint64_t)(lim - cur) : 1; /* 1: a limit with no room at all */
}

/* Bytes of memory this process may still take: MemAvailable, lowered to the room
 * under its cgroup limit; 0 when unknown. */
uint64_t fr_sys_memory_available(void) {
    uint64_t avail = 0;
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[128];
        unsigned long long kb;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1) avail = (uint64_t)kb * 1024;
        fclose(f);
    }
    const uint64_t room = fr_sys_cgroup_room();
    if (room && (avail == 0 || room < avail)) avail = room;
    return avail;
}
