/* progress.h - progress reporting of the long-running subcommands (stderr).
 *
 * On a terminal: one bar redrawn in place ("\r"), at most every 100 ms. With
 * --progress (or FRUGAL_PROGRESS=1): one line per 10 % instead, whatever stderr is,
 * so logs and pipes get a readable trace. Otherwise nothing. */
#ifndef FRUGAL_CLI_PROGRESS_H
#define FRUGAL_CLI_PROGRESS_H

#include <stdint.h>

enum { PROGRESS_OFF = 0, PROGRESS_BAR = 1, PROGRESS_LINES = 2 };

typedef struct cli_progress {
    int mode;
    const char *label;
    uint64_t total;
    double t0, last_draw;
    int last_decile;      /* lines mode: the last 10 % step printed */
} cli_progress;

/* Choose the mode (lines when `lines` was asked for, a bar when stderr is a
 * terminal, else off) and start the clock. */
void progress_init(cli_progress *p, const char *label, uint64_t total, int lines);
/* done of total units finished; what (may be NULL) names the current item. */
void progress_update(cli_progress *p, uint64_t done, const char *what);
/* Clear the bar (the caller prints its one line of statistics after). */
void progress_finish(cli_progress *p);
/* Show the library's own long steps (weights repacked at load, resident layers
 * read for a --mem plan) the same way, one display per stage (frugal_set_progress). */
void progress_library(int lines);
/* Seconds since progress_init. */
double progress_elapsed(const cli_progress *p);

#endif
