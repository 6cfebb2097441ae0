/* safety.h - the safety policy's state machine and its monitor thread.
 *
 * The thread polls a fr_monitor every interval and decides two things from the
 * readings: whether decode is throttled (with hysteresis), and how many memory
 * degrade steps the context should be at (one step per poll under pressure, one
 * step back after three calm polls with room to undo it). It decides only: the
 * decoding thread applies the steps at a step boundary (fr_safety_want /
 * fr_safety_applied), where no layer is in flight, and pauses for the duty cycle
 * (fr_safety_after_step). All state is under one mutex; the decode path takes it
 * once per step. */
#ifndef FRUGAL_SAFETY_H
#define FRUGAL_SAFETY_H

#include <stdint.h>

#include "core/error.h"
#include "monitor/monitor.h"

#define FR_DEGRADE_MAX 4

typedef struct fr_safety fr_safety;

/* Validate p and create the state; the monitor reads below root (NULL: env or
 * "/"). start_thread 0 (tests): nothing polls until fr_safety_poll is called. log
 * NULL: stderr. Errors: FRUGAL_E_INVALID_ARG naming the bad field, FRUGAL_E_NOMEM. */
int fr_safety_new(const frugal_safety_policy *p, const char *root, int start_thread, fr_monitor_log_fn log,
                  void *log_user, fr_safety **out, fr_err *err);

/* Stop the thread, free everything. NULL is fine. */
void fr_safety_free(fr_safety *s);

/* Take one reading now and update the decisions (the thread does this each
 * interval; tests call it directly). */
void fr_safety_poll(fr_safety *s);

/* Account a decode step of step_s seconds; returns the pause (seconds) the duty
 * cycle asks for now (0 when not throttled). The caller sleeps, then reports the
 * time it really slept with fr_safety_slept (the next pause corrects the error). */
double fr_safety_after_step(fr_safety *s, double step_s);
void fr_safety_slept(fr_safety *s, double slept_s);

/* Degrade steps wanted now (0..FR_DEGRADE_MAX) and steps applied. */
int fr_safety_want(fr_safety *s);
int fr_safety_level(fr_safety *s);

/* The applier took step `level` (up: level = old + 1) or undid it (down: level =
 * the step undone), freeing (up) bytes; what: a short phrase for the log. Logs one
 * line with the reading that asked for it and counts it. */
void fr_safety_applied(fr_safety *s, int level, int up, int64_t bytes, const char *what);

/* 1 while throttled. */
int fr_safety_throttling(fr_safety *s);
double fr_safety_duty(const fr_safety *s);

/* Readings and summaries (public layout). */
void fr_safety_get(fr_safety *s, frugal_readings *r);

/* Convert one monitor snapshot to the public layout (summaries NaN/0). */
void fr_readings_to_public(const fr_readings *in, frugal_readings *out);

#endif
