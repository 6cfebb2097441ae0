/* progress.h - reporting the progress of long steps inside the library (repacking
 * weights at load, reading the resident layers of a memory plan) to the callback
 * the application set with frugal_set_progress. */
#ifndef FRUGAL_PROGRESS_H
#define FRUGAL_PROGRESS_H

#include <stdint.h>

/* Tell the application that `done` of `total` units of `stage` are finished
 * (a no-op without a callback). Call with done == total when the stage ends. */
void fr_progress(const char *stage, uint64_t done, uint64_t total);

#endif
