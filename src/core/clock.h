/* clock.h - the monotonic clock, in seconds, for timing work (never the wall clock:
 * an NTP step or a suspend must not make a duration negative or huge). */
#ifndef FRUGAL_CLOCK_H
#define FRUGAL_CLOCK_H

#include <time.h>

/* Seconds on CLOCK_MONOTONIC (an arbitrary origin: only differences mean something). */
static inline double fr_now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
