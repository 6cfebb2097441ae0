/* progress.c - the process-wide progress callback (frugal_set_progress).
 * Process-wide rather than per model because the steps it reports run inside
 * model loading and context creation, before the caller holds a handle; an atomic
 * pair would still tear, so the contract is: set it before loading, not while a
 * load runs on another thread. */
#include "core/progress.h"

#include <stddef.h>

#include "frugal.h"

static frugal_progress_cb g_cb;
static void *g_user;

void frugal_set_progress(frugal_progress_cb cb, void *user) {
    g_cb = cb;
    g_user = user;
}

void fr_progress(const char *stage, uint64_t done, uint64_t total) {
    if (g_cb) g_cb(g_user, stage, done, total);
}
