/* mapguard.c - see mapguard.h. */
#include "io/mapguard.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_MAPS 64

/* The handler reads these lock-free: a slot is live when its length is non-zero;
 * add publishes start before length, remove clears length first. */
static _Atomic uintptr_t g_start[MAX_MAPS];
static _Atomic size_t g_len[MAX_MAPS];
static atomic_int g_faulted[MAX_MAPS];
static atomic_flag g_slot_lock = ATOMIC_FLAG_INIT;
static atomic_int g_installed;
static struct sigaction g_prev;

static void on_sigbus(int sig, siginfo_t *si, void *uctx) {
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; i < MAX_MAPS; i++) {
        size_t len = atomic_load(&g_len[i]);
        uintptr_t s = atomic_load(&g_start[i]);
        if (!len || a < s || a - s >= len) continue;
        uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
        void *page = (void *)(a & ~(pg - 1));
        /* a private zero page in place of the vanished file page: the faulting
         * load is restarted and now succeeds */
        if (mmap(page, (size_t)pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
            atomic_store(&g_faulted[i], 1);
            return;
        }
        break;
    }
    /* not ours (or no zero page): behave as if we were never installed */
    if (g_prev.sa_flags & SA_SIGINFO) {
        if (g_prev.sa_sigaction) { g_prev.sa_sigaction(sig, si, uctx); return; }
    } else if (g_prev.sa_handler != SIG_DFL && g_prev.sa_handler != SIG_IGN) {
        g_prev.sa_handler(sig);
        return;
    }
    signal(SIGBUS, SIG_DFL); /* returning re-executes the load, which now kills */
}

static void install(void) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&g_installed, &expected, 1)) return;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_prev);
}

int fr_mapguard_add(const void *addr, size_t len) {
    if (!addr || !len) return -1;
    install();
    while (atomic_flag_test_and_set(&g_slot_lock)) {
    }
    int slot = -1;
    for (int i = 0; i < MAX_MAPS && slot < 0; i++) {
        if (atomic_load(&g_len[i]) != 0) continue;
        atomic_store(&g_faulted[i], 0);
        atomic_store(&g_start[i], (uintptr_t)addr);
        atomic_store(&g_len[i], len);
        slot = i;
    }
    atomic_flag_clear(&g_slot_lock);
    return slot;
}

void fr_mapguard_remove(int slot) {
    if (slot < 0 || slot >= MAX_MAPS) return;
    atomic_store(&g_len[slot], 0);
}

int fr_mapguard_faulted(int slot) {
    return slot >= 0 && slot < MAX_MAPS && atomic_load(&g_faulted[slot]);
}
