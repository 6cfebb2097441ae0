/* fault.c - see fault.h. */
#include "core/fault.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <execinfo.h>
#endif

static _Atomic uint64_t g_calls[FR_FAULT_KINDS];
static _Atomic uint64_t g_fail_at[FR_FAULT_KINDS];
static atomic_int g_env_read;
static atomic_int g_count_report;

static const char *const k_names[FR_FAULT_KINDS] = {"alloc", "io"};

static void report_counts(void) {
    fprintf(stderr, "frugal: fault calls: alloc %llu io %llu\n",
            (unsigned long long)atomic_load(&g_calls[FR_FAULT_ALLOC]),
            (unsigned long long)atomic_load(&g_calls[FR_FAULT_IO]));
}

/* FRUGAL_FAULT="kind:N": read once, before the first counted call. */
static void read_env(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_env_read, &expected, 1)) return;
    const char *s = getenv("FRUGAL_FAULT");
    for (int k = 0; s && k < FR_FAULT_KINDS; k++) {
        size_t l = strlen(k_names[k]);
        if (strncmp(s, k_names[k], l) == 0 && s[l] == ':') atomic_store(&g_fail_at[k], strtoull(s + l + 1, NULL, 10));
    }
    const char *c = getenv("FRUGAL_FAULT_COUNT");
    if (c && *c == '1') {
        atomic_store(&g_count_report, 1);
        atexit(report_counts);
    }
}

int fr_fault_hit(fr_fault_kind kind) {
    if ((unsigned)kind >= FR_FAULT_KINDS) return 0;
    if (!atomic_load_explicit(&g_env_read, memory_order_relaxed)) read_env();
    uint64_t n = atomic_fetch_add_explicit(&g_calls[kind], 1, memory_order_relaxed) + 1;
    uint64_t at = atomic_load_explicit(&g_fail_at[kind], memory_order_relaxed);
    if (at == 0 || n != at) return 0;
#ifdef __GLIBC__
    /* FRUGAL_FAULT_TRACE=1: where the injected failure lands (addresses for addr2line) */
    const char *tr = getenv("FRUGAL_FAULT_TRACE");
    if (tr && *tr == '1') {
        void *frames[24];
        fprintf(stderr, "frugal: injected %s fault #%llu at:\n", k_names[kind], (unsigned long long)n);
        backtrace_symbols_fd(frames, backtrace(frames, 24), 2);
    }
#endif
    return 1;
}

void fr_fault_arm(fr_fault_kind kind, uint64_t n) {
    if ((unsigned)kind >= FR_FAULT_KINDS) return;
    atomic_store(&g_env_read, 1); /* an explicit arm overrides the environment */
    atomic_store(&g_fail_at[kind], n);
    atomic_store(&g_calls[kind], 0);
}

uint64_t fr_fault_calls(fr_fault_kind kind) {
    return (unsigned)kind < FR_FAULT_KINDS ? atomic_load(&g_calls[kind]) : 0;
}

void *fr_malloc(size_t n) { return fr_fault_hit(FR_FAULT_ALLOC) ? NULL : malloc(n); }

void *fr_calloc(size_t count, size_t n) { return fr_fault_hit(FR_FAULT_ALLOC) ? NULL : calloc(count, n); }

void *fr_realloc(void *p, size_t n) { return fr_fault_hit(FR_FAULT_ALLOC) ? NULL : realloc(p, n); }

char *fr_strdup(const char *s) { return fr_fault_hit(FR_FAULT_ALLOC) ? NULL : strdup(s); }
