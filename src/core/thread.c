/* thread.c - see thread.h. */
#include "core/thread.h"

#include <signal.h>

int fr_thread_create(pthread_t *t, void *(*fn)(void *), void *arg) {
    sigset_t block, old;
    sigfillset(&block);
    static const int k_sync[] = {SIGBUS, SIGSEGV, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (unsigned i = 0; i < sizeof k_sync / sizeof k_sync[0]; i++) sigdelset(&block, k_sync[i]);
    /* the new thread inherits the mask in force at pthread_create */
    if (pthread_sigmask(SIG_BLOCK, &block, &old) != 0) return pthread_create(t, NULL, fn, arg);
    int rc = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc;
}
