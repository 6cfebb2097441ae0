/* test_monitor.c - the monitors and the safety policy against a fake sysfs/procfs
 * tree: readings parsed from each kind of file, missing files unavailable without a
 * word, garbage ignored with one warning per file, no NVML silent unless verbose;
 * the throttle engages above the limit, pauses for the duty cycle (real pauses,
 * measured: the paused share of time within 10 % of the target), keeps on inside
 * the hysteresis band and lifts below it; memory pressure (PSI, room) asks for
 * degrade steps one at a time and gives them back after calm polls. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "monitor/monitor.h"
#include "monitor/safety.h"
#include "testutil.h"

static char g_root[512];
static int g_logs;
static char g_last[512];

static void log_hook(void *user, const char *msg) {
    (void)user;
    g_logs++;
    snprintf(g_last, sizeof g_last, "%s", msg);
}

/* Write text to root/rel, creating the directories on the way. */
static void put(const char *rel, const char *text) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_root, rel);
    for (char *p = path + strlen(g_root) + 1; *p; p++)
        if (*p == '/') { *p = 0; mkdir(path, 0755); *p = '/'; }
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); exit(1); }
    fputs(text, f);
    fclose(f);
}

static void fake_tree(void) {
    snprintf(g_root, sizeof g_root, "%s/sys_root", tu_tmpdir());
    mkdir(g_root, 0755);
    put("sys/class/hwmon/hwmon0/name", "coretemp\n");
    put("sys/class/hwmon/hwmon0/temp1_input", "45000\n");
    put("sys/class/hwmon/hwmon0/temp2_input", "50000\n");
    put("sys/class/hwmon/hwmon1/name", "nvme\n");          /* not the CPU: ignored */
    put("sys/class/hwmon/hwmon1/temp1_input", "99000\n");
    put("sys/class/thermal/thermal_zone0/type", "acpitz\n"); /* hwmon wins over zones */
    put("sys/class/thermal/thermal_zone0/temp", "70000\n");
    put("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "2000000\n");
    put("sys/devices/system/cpu/cpu1/cpufreq/scaling_cur_freq", "3000000\n");
    put("sys/devices/system/cpu/cpu0/thermal_throttle/core_throttle_count", "3\n");
    put("sys/devices/system/cpu/cpu1/thermal_throttle/core_throttle_count", "4\n");
    put("sys/class/powercap/intel-rapl:0/energy_uj", "1000000\n");
    put("sys/class/powercap/intel-rapl:0/max_energy_range_uj", "262143328850\n");
    put("sys/class/powercap/intel-rapl:0:0/energy_uj", "5\n");  /* a sub-zone: not added */
    put("proc/pressure/memory", "some avg10=1.50 avg60=0.80 avg300=0.10 total=12345\n"
                                "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
    put("proc/meminfo", "MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n");
    put("proc/stat", "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 1 2 3 4\n");
    put("proc/self/cgroup", "0::/job\n");
    put("sys/fs/cgroup/job/memory.max", "1000000000\n");
    put("sys/fs/cgroup/job/memory.current", "600000000\n");
    put("sys/fs/cgroup/job/memory.stat", "anon 500000000\nfile 100000000\n");
}

static void test_readings(void) {
    g_logs = 0;
    fr_monitor *m = fr_monitor_new(g_root, 0, log_hook, NULL);
    CHECK(m != NULL);
    fr_readings r;
    fr_monitor_read(m, &r);
    CHECKF(r.cpu_temp_c == 50.0, "temp %g", r.cpu_temp_c);
    CHECKF(r.cpu_freq_mhz == 2500.0, "freq %g", r.cpu_freq_mhz);
    CHECK(r.throttle_count == 7);
    CHECKF(r.psi_some_avg10 == 1.5, "psi %g", r.psi_some_avg10);
    CHECK(r.mem_available == 8000000LL * 1024);
    CHECK(r.cg_limit == 1000000000);
    CHECKF(r.cg_usage == 500000000, "usage %lld", (long long)r.cg_usage);
    CHECK(fr_readings_mem_room(&r) == 500000000);
    CHECK(isnan(r.cpu_watts) && isnan(r.cpu_util_pct)); /* rates need two reads */
    /* second read: 2 J more energy, 300 busy of 400 jiffies */
    put("sys/class/powercap/intel-rapl:0/energy_uj", "3000000\n");
    put("proc/stat", "cpu  300 0 200 900 0 0 0 0 0 0\n");
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
    fr_monitor_read(m, &r);
    CHECKF(r.cpu_watts > 0 && r.cpu_watts < 2.0 / 0.02 + 1, "watts %g", r.cpu_watts);
    CHECKF(fabs(r.cpu_util_pct - 75.0) < 1e-9, "util %g", r.cpu_util_pct);
    /* the energy counter wraps: still a positive rate */
    put("sys/class/powercap/intel-rapl:0/energy_uj", "1000\n");
    fr_monitor_read(m, &r);
    CHECKF(r.cpu_watts > 0, "watts after wrap %g", r.cpu_watts);
    CHECKF(g_logs == 0, "unexpected log: %s", g_last);
    CHECK(!fr_monitor_has_gpu(m));
    fr_monitor_free(m);
}

static void test_missing_and_garbage(void) {
    char empty[600];
    snprintf(empty, sizeof empty, "%s/empty_root", tu_tmpdir());
    mkdir(empty, 0755);
    g_logs = 0;
    fr_monitor *m = fr_monitor_new(empty, 0, log_hook, NULL);
    fr_readings r;
    fr_monitor_read(m, &r);
    fr_monitor_read(m, &r);
    CHECK(isnan(r.cpu_temp_c) && isnan(r.cpu_freq_mhz) && isnan(r.psi_some_avg10) && isnan(r.cpu_watts));
    CHECK(isnan(r.cpu_util_pct) && r.throttle_count == -1 && r.mem_available == -1 && r.cg_limit == -1);
    CHECK(fr_readings_mem_room(&r) == -1);
    CHECKF(g_logs == 0, "missing files logged: %s", g_last);
    fr_monitor_free(m);

    /* garbage: unavailable, one warning per file however often it is read */
    put("sys/class/hwmon/hwmon0/temp1_input", "hot\n");
    put("sys/class/hwmon/hwmon0/temp2_input", "12abc\n");
    put("proc/pressure/memory", "nonsense\n");
    put("sys/fs/cgroup/job/memory.max", "max\n"); /* v2 "no limit": not garbage */
    g_logs = 0;
    m = fr_monitor_new(g_root, 0, log_hook, NULL);
    for (int i = 0; i < 3; i++) fr_monitor_read(m, &r);
    CHECK(isnan(r.cpu_temp_c));
    CHECK(isnan(r.psi_some_avg10));
    CHECK(r.cg_limit == -1 && r.cg_usage == 500000000);
    CHECK(r.cpu_freq_mhz == 2500.0); /* the good files still read */
    CHECKF(g_logs == 3, "%d warnings, want 3 (one per garbage file); last: %s", g_logs, g_last);
    CHECK(strstr(g_last, "unreadable contents") != NULL);
    /* an unreadable file (a directory where a file should be) is just unavailable */
    fr_monitor_free(m);
    put("sys/class/hwmon/hwmon0/temp1_input", "45000\n");
    put("sys/class/hwmon/hwmon0/temp2_input", "50000\n");
    put("proc/pressure/memory", "some avg10=1.50 avg60=0.80 avg300=0.10 total=12345\n");
    put("sys/fs/cgroup/job/memory.max", "1000000000\n");
}

static void test_nvml_absent(void) {
    setenv("FRUGAL_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    g_logs = 0;
    fr_monitor *m = fr_monitor_new(g_root, 0, log_hook, NULL);
    CHECKF(g_logs == 0, "quiet mode printed: %s", g_last);
    fr_readings r;
    fr_monitor_read(m, &r);
    CHECK(isnan(r.gpu_temp_c) && isnan(r.gpu_util_pct) && r.gpu_mem_total == -1);
    fr_monitor_free(m);
    m = fr_monitor_new(g_root, 1, log_hook, NULL);
    CHECKF(g_logs == 1 && strstr(g_last, "GPU monitor unavailable"), "%d lines, last '%s'", g_logs, g_last);
    fr_monitor_free(m);
    unsetenv("FRUGAL_NVML_LIB");
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile double g_sink; /* keeps the spin loop from being optimised away */

/* A "decode step": spin for about ms milliseconds (real work time). */
static double fake_step(double ms) {
    double t0 = mono();
    while (mono() - t0 < ms / 1000) g_sink += 1;
    return mono() - t0;
}

/* Run n steps under s, sleeping the pauses; the paused share of wall time. */
static double run_steps(fr_safety *s, int n) {
    double step = 0, paused = 0;
    for (int i = 0; i < n; i++) {
        double st = fake_step(2.0);
        double p = fr_safety_after_step(s, st);
        double t0 = mono();
        if (p > 0) {
            struct timespec ts = {(time_t)p, (long)((p - floor(p)) * 1e9)};
            while (nanosleep(&ts, &ts) != 0) {}
        }
        double slept = p > 0 ? mono() - t0 : 0;
        fr_safety_slept(s, slept);
        paused += slept;
        step += st;
    }
    return paused / (paused + step);
}

static void test_throttle(void) {
    frugal_safety_policy p = {.max_temp = 80, .duty = 0.6, .interval_ms = 1000};
    fr_safety *s = NULL;
    g_logs = 0;
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, NULL) == FRUGAL_OK);
    CHECK(!fr_safety_throttling(s));
    CHECK(run_steps(s, 5) == 0);
    put("sys/class/hwmon/hwmon0/temp2_input", "91000\n"); /* rises past the limit */
    fr_safety_poll(s);
    CHECK(fr_safety_throttling(s));
    CHECKF(g_logs == 1 && strstr(g_last, "cpu temp 91.0"), "log '%s'", g_last);
    double share = run_steps(s, 30);
    CHECKF(fabs(share - (1 - p.duty)) <= 0.1 * (1 - p.duty), "paused share %.3f, target %.3f", share, 1 - p.duty);
    put("sys/class/hwmon/hwmon0/temp2_input", "77000\n"); /* under the limit, inside the margin */
    fr_safety_poll(s);
    CHECK(fr_safety_throttling(s));
    put("sys/class/hwmon/hwmon0/temp2_input", "60000\n"); /* falls back: lifted */
    fr_safety_poll(s);
    CHECK(!fr_safety_throttling(s));
    CHECK(run_steps(s, 5) == 0);
    frugal_readings r;
    fr_safety_get(s, &r);
    CHECK(r.n_throttle_on == 1 && r.peak_cpu_temp_c == 91.0 && r.throttled_s > 0);
    CHECKF(fabs(r.throttled_s / (r.throttled_s + r.throttled_step_s) - (1 - p.duty)) < 0.1 * (1 - p.duty),
           "accounted share %g", r.throttled_s / (r.throttled_s + r.throttled_step_s));
    CHECK(g_logs == 2);
    fr_safety_free(s);
}

static void test_memory_pressure(void) {
    frugal_safety_policy p = {.max_psi = 10, .duty = 0.5, .interval_ms = 1000};
    fr_safety *s = NULL;
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, NULL) == FRUGAL_OK);
    CHECK(fr_safety_want(s) == 0);
    put("proc/pressure/memory", "some avg10=25.00 avg60=3.00 avg300=1.00 total=99\n");
    fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 1);  /* the first step */
    fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 1);  /* not the next before the first is applied */
    g_logs = 0;
    fr_safety_applied(s, 1, 1, 1 << 20, "test action");
    CHECKF(g_logs == 1 && strstr(g_last, "degrade step 1") && strstr(g_last, "PSI some avg10 25.00"), "'%s'", g_last);
    fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 2);
    fr_safety_applied(s, 2, 1, 0, "test action 2");
    put("proc/pressure/memory", "some avg10=0.10 avg60=3.00 avg300=1.00 total=99\n");
    for (int i = 0; i < 2; i++) fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 2);  /* not before three calm polls */
    fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 1);
    fr_safety_applied(s, 2, 0, 0, "undo 2");
    for (int i = 0; i < 3; i++) fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 0);
    fr_safety_applied(s, 1, 0, 0, "undo 1");
    frugal_readings r;
    fr_safety_get(s, &r);
    CHECK(r.n_degrade == 2 && r.n_recover == 2 && r.degrade_level == 0);
    fr_safety_free(s);

    /* room below min_free (cgroup: 500 MB left of the limit) */
    p = (frugal_safety_policy){.min_free = 600000000, .duty = 0.5, .interval_ms = 1000};
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, NULL) == FRUGAL_OK);
    CHECK(fr_safety_want(s) == 1);
    fr_safety_applied(s, 1, 1, 200000000, "freed 200 MB");
    put("sys/fs/cgroup/job/memory.current", "300000000\n"); /* room 800 MB: not enough to undo 200 MB */
    for (int i = 0; i < 4; i++) fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 1);
    put("sys/fs/cgroup/job/memory.current", "110000000\n"); /* room 990 MB >= 1.25 * 600 + 200 */
    for (int i = 0; i < 3; i++) fr_safety_poll(s);
    CHECK(fr_safety_want(s) == 0);
    fr_safety_free(s);
    put("sys/fs/cgroup/job/memory.current", "600000000\n");
}

static void test_bad_policy(void) {
    fr_safety *s = NULL;
    fr_err e = FRUGAL_ERROR_INIT;
    frugal_safety_policy p = {.duty = 0, .interval_ms = 1000};
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, &e) == FRUGAL_E_INVALID_ARG && !s);
    CHECK(strstr(e.message, "duty") != NULL);
    fr_err_clear(&e);
    p = (frugal_safety_policy){.max_temp = -1, .duty = 0.5, .interval_ms = 1000};
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, &e) == FRUGAL_E_INVALID_ARG);
    CHECK(strstr(e.message, "max_temp") != NULL);
    fr_err_clear(&e);
    p = (frugal_safety_policy){.duty = 0.5, .interval_ms = 1};
    CHECK(fr_safety_new(&p, g_root, 0, log_hook, NULL, &s, &e) == FRUGAL_E_INVALID_ARG);
}

/* The monitor thread is cheap: CPU time per poll, and the share of a core at a
 * 50 ms interval (10 polls): printed, and bounded loosely (not a timing assertion:
 * 10 ms of CPU per poll would mean something is badly wrong). */
static void test_thread(void) {
    frugal_safety_policy p = {.max_temp = 80, .duty = 0.5, .interval_ms = 50};
    fr_safety *s = NULL;
    CHECK(fr_safety_new(&p, g_root, 1, log_hook, NULL, &s, NULL) == FRUGAL_OK);
    struct timespec ts = {0, 600 * 1000000L};
    nanosleep(&ts, NULL);
    frugal_readings r;
    fr_safety_get(s, &r);
    CHECKF(r.n_polls >= 3, "%llu polls", (unsigned long long)r.n_polls);
    printf("monitor thread: %llu polls in %.2f s, %.1f us CPU per poll\n", (unsigned long long)r.n_polls,
           r.poll_wall_s, 1e6 * r.poll_cpu_s / (double)(r.n_polls > 1 ? r.n_polls - 1 : 1));
    CHECK(r.poll_cpu_s < 0.01 * (double)r.n_polls);
    fr_safety_free(s);
}

int main(void) {
    fake_tree();
    test_readings();
    test_missing_and_garbage();
    test_nvml_absent();
    test_throttle();
    test_memory_pressure();
    test_bad_policy();
    test_thread();
    return tu_finish("test_monitor");
}
