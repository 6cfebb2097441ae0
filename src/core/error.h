/* error.h - how errors travel inside frugal.
 *
 * Every fallible internal function returns an int status (FRUGAL_OK == 0, else a
 * FRUGAL_E_* code from include/frugal.h) and, on failure, fills the caller's
 * fr_err with a one-line message that names the problem ("tensor 'blk.0.attn_q.weight':
 * offset past end of file"). The first error set wins: later calls to fr_err_set on an
 * already-failed fr_err keep the original message, so low-level detail is not
 * overwritten by generic wrappers. A NULL fr_err is allowed (message dropped). */
#ifndef FRUGAL_ERROR_H
#define FRUGAL_ERROR_H

#include "frugal.h"

typedef frugal_error fr_err;

/* Set code+message (printf-style) unless err already holds an error. Returns code. */
int fr_err_set(fr_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the existing message with "prefix: " (used to add a file name). */
void fr_err_prefix(fr_err *err, const char *prefix);
void fr_err_clear(fr_err *err);

#endif
