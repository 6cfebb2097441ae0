#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int fr_err_set(fr_err *err, int code, const char *fmt, ...) {
    if (!err || err->code != FRUGAL_OK) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

void fr_err_prefix(fr_err *err, const char *prefix) {
    if (!err || !prefix) return;
    /* shift the message right by "prefix: " (truncating its tail if needed) */
    size_t cap = sizeof err->message, pl = strlen(prefix) + 2, ml = strlen(err->message);
    if (pl >= cap) pl = cap - 1;
    if (pl + ml >= cap) ml = cap - 1 - pl;
    memmove(err->message + pl, err->message, ml);
    err->message[pl + ml] = '\0';
    memcpy(err->message, prefix, pl - 2);
    err->message[pl - 2] = ':';
    err->message[pl - 1] = ' ';
}

void fr_err_clear(fr_err *err) {
    if (!err) return;
    err->code = FRUGAL_OK;
    err->message[0] = '\0';
}

const char *frugal_status_str(int code) {
    switch (code) {
    case FRUGAL_OK: return "ok";
    case FRUGAL_E_IO: return "I/O error";
    case FRUGAL_E_FORMAT: return "malformed file";
    case FRUGAL_E_UNSUPPORTED: return "unsupported";
    case FRUGAL_E_NOMEM: return "out of memory";
    case FRUGAL_E_INVALID_ARG: return "invalid argument";
    case FRUGAL_E_CONTEXT_FULL: return "context full";
    case FRUGAL_E_INTERNAL: return "internal error";
    default: return "unknown error";
    }
}
