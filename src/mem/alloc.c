#include "mem/alloc.h"

#include "core/fault.h"

#include "frugal.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Large buffers (weights, KV pool, I/O ring, probe) get their own mapping, aligned to
 * 2 MiB and advised for transparent huge pages: decoding streams every weight once
 * per token, and with 4 KiB pages a TLB miss every 4 KiB costs a measurable share of
 * the bandwidth. The mapping ends at the page after the last byte, so a huge page is
 * only ever used for whole 2 MiB ranges inside the buffer: RSS stays what we count. */
#define BIG_ALLOC ((size_t)4 << 20)
#define HUGE_ALIGN ((size_t)2 << 20)

static size_t page_round(size_t n) {
    const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    return (n + pg - 1) / pg * pg;
}

static void *big_alloc(size_t n) {
    const size_t len = page_round(n);
    uint8_t *raw = mmap(NULL, len + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + len + HUGE_ALIGN > p + len) munmap(p + len, (size_t)(raw + len + HUGE_ALIGN - (p + len)));
#ifdef MADV_HUGEPAGE
    madvise(p, len, MADV_HUGEPAGE); /* advice only: fine if THP is off */
#endif
    return p;
}

static _Atomic uint64_t g_cur[FR_MEM_COUNT + 1];
static _Atomic uint64_t g_peak[FR_MEM_COUNT + 1];
static _Atomic uint64_t g_budget;

static void bump_peak(int i, uint64_t now) {
    uint64_t p = atomic_load(&g_peak[i]);
    while (now > p && !atomic_compare_exchange_weak(&g_peak[i], &p, now)) {
    }
}

void *fr_mem_alloc(fr_mem_cat cat, size_t n) {
    if (fr_fault_hit(FR_FAULT_ALLOC)) return NULL; /* tests: core/fault.h */
    if ((unsigned)cat >= FR_MEM_COUNT) cat = FR_MEM_OTHER;
    if (n == 0) n = 1;
    uint64_t budget = atomic_load(&g_budget);
    uint64_t total = atomic_fetch_add(&g_cur[FR_MEM_COUNT], n) + n;
    if (budget && total > budget) {
        atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
        return NULL;
    }
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n || rounded > SIZE_MAX - 2 * HUGE_ALIGN) { atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n); return NULL; }
    void *p = n >= BIG_ALLOC ? big_alloc(n) : aligned_alloc(64, rounded);
    if (!p) {
        atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
        return NULL;
    }
    /* make every page resident now, so what we count is what the process holds: a
     * fresh mapping is zero already (the kernel clears each page as it is first
     * touched), so one write per page does it */
    if (n >= BIG_ALLOC) {
        const size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        for (size_t o = 0; o < n; o += pg) ((volatile uint8_t *)p)[o] = 0;
    } else {
        memset(p, 0, rounded);
    }
    uint64_t c = atomic_fetch_add(&g_cur[cat], n) + n;
    bump_peak(cat, c);
    bump_peak(FR_MEM_COUNT, total);
    return p;
}

void fr_mem_free(fr_mem_cat cat, void *p, size_t n) {
    if (!p) return;
    if ((unsigned)cat >= FR_MEM_COUNT) cat = FR_MEM_OTHER;
    if (n == 0) n = 1;
    if (n >= BIG_ALLOC) munmap(p, page_round(n));
    else free(p);
    atomic_fetch_sub(&g_cur[cat], n);
    atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
}

/* whole huge pages: a mapping shorter than 2 MiB never gets one (see big_alloc) */
static size_t huge_round(size_t n) { return (n + HUGE_ALIGN - 1) / HUGE_ALIGN * HUGE_ALIGN; }

void *fr_mem_alloc_probe(size_t n) {
    if (fr_fault_hit(FR_FAULT_ALLOC)) return NULL;
    if (n == 0 || n > SIZE_MAX - 3 * HUGE_ALIGN) return NULL;
    const size_t len = huge_round(n); /* what the process holds, so what is charged */
    void *p = big_alloc(len);
    if (!p) return NULL;
    bump_peak(FR_MEM_IO, atomic_fetch_add(&g_cur[FR_MEM_IO], len) + len);
    bump_peak(FR_MEM_COUNT, atomic_fetch_add(&g_cur[FR_MEM_COUNT], len) + len);
    return p;
}

void fr_mem_free_probe(void *p, size_t n) {
    if (!p) return;
    const size_t len = huge_round(n);
    munmap(p, len);
    atomic_fetch_sub(&g_cur[FR_MEM_IO], len);
    atomic_fetch_sub(&g_cur[FR_MEM_COUNT], len);
}

uint64_t fr_mem_current(fr_mem_cat cat) {
    return atomic_load(&g_cur[(unsigned)cat > FR_MEM_COUNT ? FR_MEM_COUNT : cat]);
}

uint64_t fr_mem_peak(fr_mem_cat cat) {
    return atomic_load(&g_peak[(unsigned)cat > FR_MEM_COUNT ? FR_MEM_COUNT : cat]);
}

const char *fr_mem_cat_name(fr_mem_cat cat) {
    static const char *names[FR_MEM_COUNT + 1] = {"weights", "kv", "scratch", "io",
                                                 "tokenizer", "other", "total"};
    return names[(unsigned)cat > FR_MEM_COUNT ? FR_MEM_COUNT : cat];
}

void fr_mem_set_budget(uint64_t bytes) { atomic_store(&g_budget, bytes); }

void frugal_get_mem_stats(frugal_mem_stats *s) {
    _Static_assert(FR_MEM_COUNT + 1 == FRUGAL_MEM_ROWS, "FRUGAL_MEM_ROWS must match the categories");
    s->n = FRUGAL_MEM_ROWS;
    for (int i = 0; i <= FR_MEM_COUNT; i++) {
        s->names[i] = fr_mem_cat_name((fr_mem_cat)i);
        s->current[i] = fr_mem_current((fr_mem_cat)i);
        s->peak[i] = fr_mem_peak((fr_mem_cat)i);
    }
    s->peak_rss = frugal_peak_rss();
}
