/* monitor.h - readings of the machine's health: temperatures, frequency, throttling,
 * power, CPU load, memory pressure and room, and the GPU through NVML.
 *
 * Every file is read below a root directory (FRUGAL_SYSFS_ROOT, default "/"), so a
 * test builds a fake sysfs/procfs tree and drives the readings. A missing or
 * unreadable file makes that reading "unavailable" (NaN or -1), never an error: old
 * laptops and containers lack most of these files. A file whose contents do not
 * parse is also unavailable, and is reported once per monitor through the log hook
 * (garbage from a buggy driver should not spam a long generation).
 *
 * The sensor files are discovered once, at creation (directory scans are the
 * expensive part); each read then opens a fixed list of small files. Rates (CPU
 * utilisation, RAPL watts) are deltas between two reads, so the first read leaves
 * them unavailable. Depends on libc only (NVML through dlopen, no link). */
#ifndef FRUGAL_MONITOR_H
#define FRUGAL_MONITOR_H

#include <stdint.h>

/* One snapshot. NaN (doubles) or -1 (integers): unavailable. */
typedef struct fr_readings {
    double cpu_temp_c;        /* hottest CPU sensor (hwmon CPU chips, else thermal zones) */
    double cpu_freq_mhz;      /* mean scaling_cur_freq over the CPUs */
    double cpu_util_pct;      /* whole machine, since the previous read (/proc/stat) */
    double cpu_watts;         /* RAPL package energy, since the previous read */
    double psi_some_avg10;    /* /proc/pressure/memory "some avg10" (percent) */
    int64_t throttle_count;   /* sum of the CPUs' thermal_throttle core counters */
    int64_t mem_available;    /* MemAvailable, bytes */
    int64_t cg_limit;         /* this process's memory cgroup limit (v1 or v2), bytes */
    int64_t cg_usage;         /* its usage less reclaimable page cache, bytes */
    double gpu_temp_c;        /* NVML device 0 */
    double gpu_util_pct;
    double gpu_watts;
    int64_t gpu_mem_used, gpu_mem_total;
} fr_readings;

/* Called with a one-line message (no newline) for a garbage file or, when verbose,
 * for an unavailable GPU monitor. */
typedef void (*fr_monitor_log_fn)(void *user, const char *msg);

/* Format a message and hand it to log(user, msg), or print it to stderr as
 * "frugal: msg" when log is NULL (the monitor's and the safety policy's one sink). */
void fr_monitor_logf(fr_monitor_log_fn log, void *user, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

typedef struct fr_monitor fr_monitor;

/* A monitor reading below root (NULL: $FRUGAL_SYSFS_ROOT, else "/"). The NVML
 * library is $FRUGAL_NVML_LIB, else libnvidia-ml.so.1; absent, the GPU readings stay
 * unavailable and (verbose only) one line says so. log may be NULL (stderr).
 * Returns NULL only when out of memory. */
fr_monitor *fr_monitor_new(const char *root, int verbose, fr_monitor_log_fn log, void *log_user);

/* Fill r with fresh readings. Thread-compatible (one reader at a time). */
void fr_monitor_read(fr_monitor *m, fr_readings *r);

/* 1 when NVML was loaded and found a device. */
int fr_monitor_has_gpu(const fr_monitor *m);

/* Room left for this process: MemAvailable lowered to the cgroup's room; -1 when
 * neither is known. */
int64_t fr_readings_mem_room(const fr_readings *r);

/* Close NVML and free. NULL is fine. */
void fr_monitor_free(fr_monitor *m);

/* ---- internals shared with nvml.c */
typedef struct fr_nvml fr_nvml;
fr_nvml *fr_nvml_open(const char *lib_path);                /* NULL: unavailable */
void fr_nvml_read(fr_nvml *g, fr_readings *r);
void fr_nvml_close(fr_nvml *g);

#endif
