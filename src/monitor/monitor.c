/* monitor.c - the sysfs/procfs readers (see monitor.h). */
#include "core/fault.h"
#include "monitor/monitor.h"

#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_FILES 64   /* per kind; a 256-CPU box reads the first 64 cpufreq files */
#define PATH_LEN 512

typedef struct file_list {
    int n;
    char *path[MAX_FILES];
} file_list;

/* A path we warned about (garbage), so each is reported once. */
typedef struct warned {
    int n;
    char *path[MAX_FILES];
} warned;

struct fr_monitor {
    char root[256];
    int verbose;
    fr_monitor_log_fn log;
    void *log_user;
    file_list temps, freqs, throttles, rapl;
    char psi[PATH_LEN], meminfo[PATH_LEN], stat[PATH_LEN];
    warned warned;
    /* previous samples for the rates */
    double t_prev;                 /* seconds, CLOCK_MONOTONIC; 0: none */
    double rapl_prev_uj;           /* NAN: none */
    double rapl_range_uj;          /* wrap-around of energy_uj (max_energy_range_uj) */
    unsigned long long cpu_busy_prev, cpu_total_prev;
    fr_nvml *nvml;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void list_add(file_list *l, const char *path) {
    if (l->n < MAX_FILES && (l->path[l->n] = fr_strdup(path))) l->n++;
}

static void list_free(file_list *l) {
    for (int i = 0; i < l->n; i++) free(l->path[i]);
    l->n = 0;
}


/* Warn once per path that its contents did not parse. */
static void garbage(fr_monitor *m, const char *path) {
    for (int i = 0; i < m->warned.n; i++)
        if (!strcmp(m->warned.path[i], path)) return;
    if (m->warned.n < MAX_FILES) m->warned.path[m->warned.n++] = fr_strdup(path);
    fr_monitor_logf(m->log, m->log_user, "warning: monitor: %s: unreadable contents, ignored", path);
}

/* Read a small file into buf (NUL-terminated). 0: missing/unreadable/empty. */
static int slurp(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return n > 0;
}

/* One integer file (sysfs style: a decimal and a newline). false when missing;
 * garbage is warned about and false. */
static bool read_ll(fr_monitor *m, const char *path, long long *out) {
    char buf[64], *end;
    if (!slurp(path, buf, sizeof buf)) return false;
    long long v = strtoll(buf, &end, 10);
    while (*end == '\n' || *end == ' ') end++;
    if (end == buf || *end) {
        garbage(m, path);
        return false;
    }
    *out = v;
    return true;
}

static void rooted(const fr_monitor *m, char *out, size_t cap, const char *rel) {
    snprintf(out, cap, "%s%s", m->root, rel);
}

/* The chips whose temperatures are the CPU's (hwmon "name"). */
static bool cpu_chip(const char *name) {
    static const char *k[] = {"coretemp", "k10temp", "zenpower", "cpu_thermal", "soc_thermal", "cpu-thermal"};
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (!strncmp(name, k[i], strlen(k[i]))) return true;
    return false;
}

/* Temperature sources: temp*_input of CPU hwmon chips; when there is none, the
 * thermal zones (CPU-looking types first, else all of them). */
static void find_temps(fr_monitor *m) {
    char dir[PATH_LEN], path[PATH_LEN + 300], name[64];
    rooted(m, dir, sizeof dir, "/sys/class/hwmon");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "hwmon", 5)) continue;
        snprintf(path, sizeof path, "%s/%s/name", dir, e->d_name);
        if (!slurp(path, name, sizeof name) || !cpu_chip(name)) continue;
        for (int t = 1; t <= 64; t++) {
            snprintf(path, sizeof path, "%s/%s/temp%d_input", dir, e->d_name, t);
            FILE *f = fopen(path, "r");
            if (!f) continue;
            fclose(f);
            list_add(&m->temps, path);
        }
    }
    if (d) closedir(d);
    if (m->temps.n) return;
    rooted(m, dir, sizeof dir, "/sys/class/thermal");
    for (int pass = 0; pass < 2 && !m->temps.n; pass++) {
        d = opendir(dir);
        while (d && (e = readdir(d))) {
            if (strncmp(e->d_name, "thermal_zone", 12)) continue;
            snprintf(path, sizeof path, "%s/%s/type", dir, e->d_name);
            if (!slurp(path, name, sizeof name)) continue;
            bool cpuish = strstr(name, "pkg") || strstr(name, "cpu") || strstr(name, "x86") || strstr(name, "soc");
            if (pass == 0 && !cpuish) continue;
            snprintf(path, sizeof path, "%s/%s/temp", dir, e->d_name);
            list_add(&m->temps, path);
        }
        if (d) closedir(d);
    }
}

/* Per-CPU files: cpufreq's scaling_cur_freq and the core throttle counters. */
static void find_cpu_files(fr_monitor *m) {
    char path[PATH_LEN];
    for (int cpu = 0; cpu < MAX_FILES; cpu++) {
        char rel[128];
        snprintf(rel, sizeof rel, "/sys/devices/system/cpu/cpu%d/cpufreq/scaling_cur_freq", cpu);
        rooted(m, path, sizeof path, rel);
        FILE *f = fopen(path, "r");
        if (f) { fclose(f); list_add(&m->freqs, path); }
        snprintf(rel, sizeof rel, "/sys/devices/system/cpu/cpu%d/thermal_throttle/core_throttle_count", cpu);
        rooted(m, path, sizeof path, rel);
        if ((f = fopen(path, "r"))) { fclose(f); list_add(&m->throttles, path); }
    }
}

/* RAPL: the top-level package domains (intel-rapl:N, not the sub-zones N:M). */
static void find_rapl(fr_monitor *m) {
    char dir[PATH_LEN], path[PATH_LEN + 300];
    rooted(m, dir, sizeof dir, "/sys/class/powercap");
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strncmp(e->d_name, "intel-rapl:", 11) || strchr(e->d_name + 11, ':')) continue;
        snprintf(path, sizeof path, "%s/%s/energy_uj", dir, e->d_name);
        list_add(&m->rapl, path);
        long long range;
        snprintf(path, sizeof path, "%s/%s/max_energy_range_uj", dir, e->d_name);
        if (read_ll(m, path, &range) && range > 0) m->rapl_range_uj = (double)range;
    }
    if (d) closedir(d);
}

fr_monitor *fr_monitor_new(const char *root, int verbose, fr_monitor_log_fn log, void *log_user) {
    fr_monitor *m = fr_calloc(1, sizeof *m);
    if (!m) return NULL;
    if (!root) root = getenv("FRUGAL_SYSFS_ROOT");
    if (!root || !*root) root = "/";
    snprintf(m->root, sizeof m->root, "%s", root);
    size_t n = strlen(m->root);
    while (n > 0 && m->root[n - 1] == '/') m->root[--n] = 0; /* "/" becomes "" */
    m->verbose = verbose;
    m->log = log;
    m->log_user = log_user;
    m->rapl_prev_uj = NAN;
    find_temps(m);
    find_cpu_files(m);
    find_rapl(m);
    rooted(m, m->psi, sizeof m->psi, "/proc/pressure/memory");
    rooted(m, m->meminfo, sizeof m->meminfo, "/proc/meminfo");
    rooted(m, m->stat, sizeof m->stat, "/proc/stat");
    const char *lib = getenv("FRUGAL_NVML_LIB");
    m->nvml = fr_nvml_open(lib && *lib ? lib : "libnvidia-ml.so.1");
    if (!m->nvml && verbose) fr_monitor_logf(m->log, m->log_user, "GPU monitor unavailable (no NVML library or device)");
    return m;
}

int fr_monitor_has_gpu(const fr_monitor *m) { return m && m->nvml; }

static double read_temp(fr_monitor *m) {
    double best = NAN;
    for (int i = 0; i < m->temps.n; i++) {
        long long v;
        /* millidegrees; a sensor that reads below -50 C or above 200 C is broken */
        if (read_ll(m, m->temps.path[i], &v) && v > -50000 && v < 200000 && !(v / 1000.0 <= best))
            best = v / 1000.0;
    }
    return best;
}

static double read_freq(fr_monitor *m) {
    double sum = 0;
    int n = 0;
    for (int i = 0; i < m->freqs.n; i++) {
        long long v;
        if (read_ll(m, m->freqs.path[i], &v) && v > 0) { sum += v / 1000.0; n++; }
    }
    return n ? sum / n : NAN;
}

static int64_t read_throttles(fr_monitor *m) {
    int64_t sum = -1;
    for (int i = 0; i < m->throttles.n; i++) {
        long long v;
        if (read_ll(m, m->throttles.path[i], &v) && v >= 0) sum = (sum < 0 ? 0 : sum) + v;
    }
    return sum;
}

/* Watts from the energy counters' delta (wrap-around handled). */
static double read_watts(fr_monitor *m, double t, double dt) {
    (void)t;
    if (!m->rapl.n) return NAN;
    double uj = 0;
    for (int i = 0; i < m->rapl.n; i++) {
        long long v;
        if (!read_ll(m, m->rapl.path[i], &v) || v < 0) return m->rapl_prev_uj = NAN, NAN;
        uj += (double)v;
    }
    double prev = m->rapl_prev_uj, w = NAN;
    m->rapl_prev_uj = uj;
    if (isnan(prev) || dt <= 0) return NAN;
    double d = uj - prev;
    if (d < 0 && m->rapl_range_uj > 0) d += m->rapl_range_uj;
    if (d >= 0) w = d * 1e-6 / dt;
    return w;
}

/* Busy percentage of all CPUs since the previous read (/proc/stat "cpu" line). */
static double read_util(fr_monitor *m) {
    char buf[512];
    if (!slurp(m->stat, buf, sizeof buf)) return NAN;
    unsigned long long v[8] = {0};
    if (sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
               &v[6], &v[7]) < 4) {
        garbage(m, m->stat);
        return NAN;
    }
    unsigned long long idle = v[3] + v[4], total = 0;
    for (int i = 0; i < 8; i++) total += v[i];
    unsigned long long busy = total - idle;
    double u = NAN;
    if (m->cpu_total_prev && total > m->cpu_total_prev && busy >= m->cpu_busy_prev)
        u = 100.0 * (double)(busy - m->cpu_busy_prev) / (double)(total - m->cpu_total_prev);
    m->cpu_busy_prev = busy;
    m->cpu_total_prev = total;
    return u;
}

static double read_psi(fr_monitor *m) {
    char buf[256];
    double v;
    if (!slurp(m->psi, buf, sizeof buf)) return NAN;
    if (sscanf(buf, "some avg10=%lf", &v) != 1 || !(v >= 0 && v <= 100)) {
        garbage(m, m->psi);
        return NAN;
    }
    return v;
}

static int64_t read_memavail(fr_monitor *m) {
    char buf[4096];
    if (!slurp(m->meminfo, buf, sizeof buf)) return -1;
    const char *p = strstr(buf, "MemAvailable:");
    unsigned long long kb;
    if (!p || sscanf(p, "MemAvailable: %llu kB", &kb) != 1) {
        garbage(m, m->meminfo);
        return -1;
    }
    return (int64_t)kb * 1024;
}

/* This process's memory cgroup (v1 line "N:memory:/path", else v2 "0::/path"):
 * its limit and its usage less page cache (reclaimed under the limit, so not in the
 * way). "max" or v1's huge no-limit value: no limit (-1). */
static void read_cgroup(fr_monitor *m, fr_readings *r) {
    char path[PATH_LEN], buf[2048];
    rooted(m, path, sizeof path, "/proc/self/cgroup");
    if (!slurp(path, buf, sizeof buf)) return;
    char lim[PATH_LEN + 64] = "", use[PATH_LEN + 64] = "", st[PATH_LEN + 64] = "";
    const char *key = "total_cache ";
    for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
        char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;
        if (!b) continue;
        *b = 0;
        const char *ctrl = a + 1, *cg = b + 1;
        if (!strcmp(cg, "/")) cg = "";
        if (strstr(ctrl, "memory")) {
            snprintf(lim, sizeof lim, "%s/sys/fs/cgroup/memory%s/memory.limit_in_bytes", m->root, cg);
            snprintf(use, sizeof use, "%s/sys/fs/cgroup/memory%s/memory.usage_in_bytes", m->root, cg);
            snprintf(st, sizeof st, "%s/sys/fs/cgroup/memory%s/memory.stat", m->root, cg);
            key = "total_cache ";
            break;
        }
        if (!*ctrl && !*lim) {
            snprintf(lim, sizeof lim, "%s/sys/fs/cgroup%s/memory.max", m->root, cg);
            snprintf(use, sizeof use, "%s/sys/fs/cgroup%s/memory.current", m->root, cg);
            snprintf(st, sizeof st, "%s/sys/fs/cgroup%s/memory.stat", m->root, cg);
            key = "file ";
        }
    }
    if (!*lim) return;
    char v[64];
    long long l, u;
    if (slurp(lim, v, sizeof v) && strncmp(v, "max", 3) && read_ll(m, lim, &l) && l > 0 && l < (1LL << 60))
        r->cg_limit = l;
    if (!read_ll(m, use, &u) || u < 0) return;
    FILE *f = fopen(st, "r");
    char line[256];
    long long cache = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, strlen(key))) cache = strtoll(line + strlen(key), NULL, 10);
    if (f) fclose(f);
    r->cg_usage = u > cache ? u - cache : 0;
}

void fr_monitor_read(fr_monitor *m, fr_readings *r) {
    const double t = now_s(), dt = m->t_prev > 0 ? t - m->t_prev : 0;
    *r = (fr_readings){.cpu_temp_c = NAN, .cpu_freq_mhz = NAN, .cpu_util_pct = NAN, .cpu_watts = NAN,
                       .psi_some_avg10 = NAN, .throttle_count = -1, .mem_available = -1, .cg_limit = -1,
                       .cg_usage = -1, .gpu_temp_c = NAN, .gpu_util_pct = NAN, .gpu_watts = NAN,
                       .gpu_mem_used = -1, .gpu_mem_total = -1};
    r->cpu_temp_c = read_temp(m);
    r->cpu_freq_mhz = read_freq(m);
    r->throttle_count = read_throttles(m);
    r->cpu_watts = read_watts(m, t, dt);
    r->cpu_util_pct = read_util(m);
    r->psi_some_avg10 = read_psi(m);
    r->mem_available = read_memavail(m);
    read_cgroup(m, r);
    if (m->nvml) fr_nvml_read(m->nvml, r);
    m->t_prev = t;
}

int64_t fr_readings_mem_room(const fr_readings *r) {
    int64_t room = r->mem_available;
    if (r->cg_limit > 0 && r->cg_usage >= 0) {
        int64_t cg = r->cg_limit > r->cg_usage ? r->cg_limit - r->cg_usage : 0;
        if (room < 0 || cg < room) room = cg;
    }
    return room;
}

void fr_monitor_free(fr_monitor *m) {
    if (!m) return;
    list_free(&m->temps);
    list_free(&m->freqs);
    list_free(&m->throttles);
    list_free(&m->rapl);
    for (int i = 0; i < m->warned.n; i++) free(m->warned.path[i]);
    fr_nvml_close(m->nvml);
    free(m);
}

void fr_monitor_logf(fr_monitor_log_fn log, void *user, const char *fmt, ...) {
    char msg[PATH_LEN + 256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (log) log(user, msg);
    else fprintf(stderr, "frugal: %s\n", msg);
}
