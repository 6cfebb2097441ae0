/* safety_cli.h - the safety-policy flags shared by run, bench, serve and chat, the
 * policy file (JSON, read with cJSON here at the edge: the core stays libc-only) and
 * the readings' text and JSON forms. */
#ifndef FRUGAL_CLI_SAFETY_H
#define FRUGAL_CLI_SAFETY_H

#include <stdio.h>

#include "args.h"
#include "frugal.h"

/* Flags as parsed; doubles start at -1 ("not given": the options' minimum is 0). */
typedef struct safety_flags {
    float max_temp, max_gpu_temp, max_util, max_gpu_util, max_power, max_psi, duty;
    const char *min_free, *policy_file;
    int interval_ms;   /* 0: not given */
    int verbose;
} safety_flags;

#define SAFETY_FLAGS_INIT {-1, -1, -1, -1, -1, -1, -1, NULL, NULL, 0, 0}

/* The option-table rows for f (append them to a subcommand's table). */
#define SAFETY_OPTS(f)                                                            \
    {NULL, "--max-temp", OPT_FLOAT, &(f).max_temp, 0, 1000},                      \
    {NULL, "--max-gpu-temp", OPT_FLOAT, &(f).max_gpu_temp, 0, 1000},              \
    {NULL, "--max-util", OPT_FLOAT, &(f).max_util, 0, 100},                       \
    {NULL, "--max-gpu-util", OPT_FLOAT, &(f).max_gpu_util, 0, 100},               \
    {NULL, "--max-power", OPT_FLOAT, &(f).max_power, 0, 1e6},                     \
    {NULL, "--max-psi", OPT_FLOAT, &(f).max_psi, 0, 100},                         \
    {NULL, "--duty", OPT_FLOAT, &(f).duty, 0.01, 1},                              \
    {NULL, "--min-free", OPT_STR, &(f).min_free, 0, 0},                           \
    {NULL, "--policy-file", OPT_STR, &(f).policy_file, 0, 0},                     \
    {NULL, "--monitor-interval", OPT_INT, &(f).interval_ms, 10, 60000},           \
    {NULL, "--monitor-verbose", OPT_FLAG, &(f).verbose, 0, 0}

/* The help lines for those flags. */
#define SAFETY_HELP                                                                                  \
    "  --max-temp C           throttle decode above this CPU temperature (hwmon/thermal)\n"           \
    "  --max-gpu-temp C       ... above this GPU temperature (NVML)\n"                                \
    "  --max-util PCT         ... above this whole-machine CPU utilisation\n"                         \
    "  --max-gpu-util PCT     ... above this GPU utilisation (NVML)\n"                                \
    "  --max-power W          ... above this power (RAPL package + GPU)\n"                            \
    "  --duty F               share of time computing while throttled (default 0.5)\n"                \
    "  --min-free SIZE        degrade (drop read-ahead, ...) when less memory than SIZE is left\n"    \
    "  --max-psi PCT          ... or when memory PSI 'some avg10' is above PCT\n"                     \
    "  --policy-file F.json   the same limits as a JSON object (keys: max_temp, max_gpu_temp,\n"     \
    "                         max_util, max_gpu_util, max_power, min_free, max_psi, duty,\n"          \
    "                         interval_ms); flags override it\n"                                      \
    "  --monitor-interval MS  monitor poll period (default 1000)\n"                                  \
    "  --monitor-verbose      say which monitors are unavailable\n"

/* Build the policy from the file (if any) and the flags. *any: whether any limit or
 * file was given (no policy otherwise). Returns 0, or the exit code after printing
 * the error (EXIT_USAGE for a bad flag, 1 for a bad or unreadable file). */
int safety_flags_policy(const safety_flags *f, frugal_safety_policy *p, int *any);

/* The summary line(s) for --stats. */
void safety_print_text(FILE *out, const frugal_readings *r);

/* A JSON object (no trailing newline) of the readings and summaries; NaN and -1
 * ("unavailable") print as null. */
void safety_print_json(FILE *out, const frugal_readings *r);

#endif
