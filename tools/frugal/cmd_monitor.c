/* cmd_monitor.c - `frugal monitor`: the live readings the safety policy acts on,
 * one line a second (or one JSON object per line), so a user can see what frugal
 * sees before choosing limits. Rates (CPU utilisation, watts) need two reads: the
 * first line leaves them as n/a. */
#include <math.h>
#include <stdio.h>
#include <time.h>

#include "args.h"
#include "frugal.h"
#include "safety_cli.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal monitor [--count N] [--interval MS] [--json] [-v]\n\n"
            "Print the readings the safety policy uses, once per interval: CPU temperature,\n"
            "frequency, utilisation, throttle count, RAPL watts, memory PSI, memory room\n"
            "(MemAvailable and the cgroup), and the GPU's through NVML when present.\n"
            "FRUGAL_SYSFS_ROOT replaces '/' for every file read.\n\n"
            "  --count N        stop after N lines (default 0: until interrupted)\n"
            "  --interval MS    period in milliseconds (default 1000)\n"
            "  --json           one JSON object per line\n"
            "  -v, --verbose    say which monitors are unavailable\n");
}

static void field(const char *name, double v, const char *fmt) {
    printf(" %s=", name);
    if (isfinite(v)) printf(fmt, v);
    else printf("n/a");
}

static void print_line(const frugal_readings *r) {
    field("cpu_temp", r->cpu_temp_c, "%.1fC");
    field("freq", r->cpu_freq_mhz, "%.0fMHz");
    field("util", r->cpu_util_pct, "%.1f%%");
    field("power", r->cpu_watts, "%.1fW");
    field("psi10", r->psi_some_avg10, "%.2f");
    field("room", r->mem_room >= 0 ? r->mem_room / 1048576.0 : NAN, "%.0fMiB");
    field("cg_limit", r->cgroup_limit >= 0 ? r->cgroup_limit / 1048576.0 : NAN, "%.0fMiB");
    field("throttles", r->throttle_count >= 0 ? (double)r->throttle_count : NAN, "%.0f");
    field("gpu_temp", r->gpu_temp_c, "%.0fC");
    field("gpu_util", r->gpu_util_pct, "%.0f%%");
    field("gpu_power", r->gpu_watts, "%.1fW");
    field("gpu_mem", r->gpu_mem_used >= 0 ? r->gpu_mem_used / 1048576.0 : NAN, "%.0fMiB");
    putchar('\n');
}

int cmd_monitor(int argc, char **argv) {
    int count = 0, interval = 1000, json = 0, verbose = 0;
    const opt opts[] = {
        {NULL, "--count", OPT_INT, &count, 0, 1 << 30},
        {NULL, "--interval", OPT_INT, &interval, 10, 60000},
        {NULL, "--json", OPT_FLAG, &json, 0, 0},
        {"-v", "--verbose", OPT_FLAG, &verbose, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    frugal_monitor *m = frugal_monitor_new(verbose);
    if (!m) { cli_error("monitor: out of memory"); return 1; }
    frugal_readings rd;
    for (int i = 0; count == 0 || i < count; i++) {
        if (i > 0) {
            struct timespec ts = {interval / 1000, (long)(interval % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0) {}
        }
        frugal_monitor_read(m, &rd);
        if (json) { safety_print_json(stdout, &rd); putchar('\n'); }
        else print_line(&rd);
        if (fflush(stdout) != 0) { frugal_monitor_free(m); cli_error("stdout: write failed"); return 1; }
    }
    frugal_monitor_free(m);
    return 0;
}
