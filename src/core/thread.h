/* thread.h - the library's one way to start a thread.
 *
 * Threads the library starts (the pool's workers, I/O threads, the safety poller)
 * must not take the application's asynchronous signals: a Ctrl-C handled by a
 * worker instead of the thread blocked in read() or readline() is a lost
 * interrupt (frugal chat read it as end of input and left). So each thread starts
 * with SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1/2, SIGCHLD,
 * SIGWINCH and the other asynchronous signals blocked. The synchronous ones
 * (SIGBUS, SIGSEGV, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS) stay open: a
 * truncated model file raises SIGBUS in the thread that reads it, and a blocked
 * synchronous signal would kill the process instead of reaching io/mapguard. */
#ifndef FRUGAL_THREAD_H
#define FRUGAL_THREAD_H

#include <pthread.h>

/* pthread_create(t, NULL, fn, arg) with the mask above in the new thread; the
 * caller's own mask is unchanged. Returns pthread_create's result (0 = started). */
int fr_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
