/* outfile.h - writing an output file safely: a temp file beside the target,
 * renamed over it only when everything was written and synced.
 *
 * - A target that exists and is not a regular file (a device such as /dev/full, a
 *   FIFO, a directory) is refused: renaming would replace the node itself.
 * - The temp file gets a unique name (<target>.tmp.<pid>.<n>) and is created with
 *   O_EXCL | O_NOFOLLOW, so a file or symlink planted at that name is never
 *   written through; it is fsync'ed before the rename (and the directory after),
 *   so a crash leaves the old file or the whole new one.
 * - On any error, and on SIGINT/SIGTERM while it is open, the temp file is
 *   removed. The signal handler is installed only where the signal's disposition
 *   is the default (a program with its own handler keeps it and should call
 *   fr_outfile_abort itself); it removes every open temp file and then lets the
 *   signal take its default course (the process ends as it would have).
 * Writes go through the fault layer (core/fault.h): an injected failure is EIO. */
#ifndef FRUGAL_OUTFILE_H
#define FRUGAL_OUTFILE_H

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

typedef struct fr_outfile {
    FILE *fp;
    char *path;   /* the target */
    char *tmp;    /* the temp file beside it */
    int slot;     /* index in the signal-cleanup table, or -1 */
} fr_outfile;

/* Create the temp file for `path`. FRUGAL_OK, or FRUGAL_E_IO naming the file and
 * the reason (target not a regular file, directory not writable, ...). On failure
 * *o needs no cleanup. */
int fr_outfile_open(fr_outfile *o, const char *path, fr_err *err);

/* Append n bytes. FRUGAL_E_IO naming the file on failure (then call abort). */
int fr_outfile_write(fr_outfile *o, const void *p, size_t n, fr_err *err);

/* Flush, fsync, close and rename over the target. On failure the temp file is
 * removed. Either way *o is released. */
int fr_outfile_commit(fr_outfile *o, fr_err *err);

/* Close and remove the temp file; releases *o. Safe on a released outfile. */
void fr_outfile_abort(fr_outfile *o);

/* FRUGAL_OK when `path` may be written as an output (absent, or a regular file),
 * else FRUGAL_E_IO naming it: for checking before hours of work. */
int fr_outfile_check_target(const char *path, fr_err *err);

#endif
