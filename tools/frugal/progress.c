/* progress.c - the bar / 10 %-lines progress of the CLI (see progress.h). */
#include "progress.h"

#include "frugal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_init(cli_progress *p, const char *label, uint64_t total, int lines) {
    memset(p, 0, sizeof *p);
    const char *env = getenv("FRUGAL_PROGRESS");
    if (lines || (env && strcmp(env, "1") == 0)) p->mode = PROGRESS_LINES;
    else if (isatty(2)) p->mode = PROGRESS_BAR;
    p->label = label;
    p->total = total ? total : 1;
    p->t0 = now_s();
    p->last_draw = -1.0;
}

double progress_elapsed(const cli_progress *p) { return now_s() - p->t0; }

void progress_update(cli_progress *p, uint64_t done, const char *what) {
    if (p->mode == PROGRESS_OFF) return;
    if (done > p->total) done = p->total;
    double frac = (double)done / (double)p->total, el = progress_elapsed(p);
    double eta = done ? el * (double)(p->total - done) / (double)done : 0.0;
    if (p->mode == PROGRESS_LINES) {
        int decile = (int)(frac * 10.0 + 1e-9);
        if (decile <= p->last_decile) return;
        p->last_decile = decile;
        fprintf(stderr, "%s: %3d%% (%llu/%llu) %.1fs, ETA %.1fs\n", p->label, decile * 10,
                (unsigned long long)done, (unsigned long long)p->total, el, eta);
        return;
    }
    double t = now_s();
    if (done < p->total && p->last_draw >= 0 && t - p->last_draw < 0.1) return;
    p->last_draw = t;
    char bar[31];
    int fill = (int)(frac * 30.0);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3.0f%% %5.1fs ETA %5.1fs %-24.24s", p->label, bar, frac * 100.0, el, eta,
            what ? what : "");
    fflush(stderr);
}

void progress_finish(cli_progress *p) {
    if (p->mode == PROGRESS_BAR && p->last_draw >= 0) fputs("\r\033[K", stderr), fflush(stderr);
}

/* The library's progress (frugal_set_progress): one display per stage. */
static cli_progress g_lib;
static char g_stage[32];
static int g_lines;

static void on_library_progress(void *user, const char *stage, uint64_t done, uint64_t total) {
    (void)user;
    if (strncmp(g_stage, stage, sizeof g_stage - 1) != 0) {
        if (g_stage[0]) progress_finish(&g_lib);
        snprintf(g_stage, sizeof g_stage, "%s", stage);
        progress_init(&g_lib, g_stage, total, g_lines);
    }
    progress_update(&g_lib, done, NULL);
    if (done >= total) {
        progress_finish(&g_lib);
        g_stage[0] = '\0';
    }
}

void progress_library(int lines) {
    g_lines = lines;
    frugal_set_progress(on_library_progress, NULL);
}
