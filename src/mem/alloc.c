#include "mem/alloc.h"

#include "frugal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic uint64_t g_cur[FR_MEM_COUNT + 1];
static _Atomic uint64_t g_peak[FR_MEM_COUNT + 1];
static _Atomic uint64_t g_budget;

static void bump_peak(int i, uint64_t now) {
    uint64_t p = atomic_load(&g_peak[i]);
    while (now > p && !atomic_compare_exchange_weak(&g_peak[i], &p, now)) {
    }
}

void *fr_mem_alloc(fr_mem_cat cat, size_t n) {
    if ((unsigned)cat >= FR_MEM_COUNT) cat = FR_MEM_OTHER;
    if (n == 0) n = 1;
    uint64_t budget = atomic_load(&g_budget);
    uint64_t total = atomic_fetch_add(&g_cur[FR_MEM_COUNT], n) + n;
    if (budget && total > budget) {
        atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
        return NULL;
    }
    size_t rounded = (n + 63) & ~(size_t)63;
    if (rounded < n) { atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n); return NULL; }
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
        return NULL;
    }
    memset(p, 0, rounded);
    uint64_t c = atomic_fetch_add(&g_cur[cat], n) + n;
    bump_peak(cat, c);
    bump_peak(FR_MEM_COUNT, total);
    return p;
}

void fr_mem_free(fr_mem_cat cat, void *p, size_t n) {
    if (!p) return;
    if ((unsigned)cat >= FR_MEM_COUNT) cat = FR_MEM_OTHER;
    if (n == 0) n = 1;
    free(p);
    atomic_fetch_sub(&g_cur[cat], n);
    atomic_fetch_sub(&g_cur[FR_MEM_COUNT], n);
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
