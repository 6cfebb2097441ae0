/* outfile_api.c - the public face of io/outfile.h (frugal.h: output files). */
#include "core/fault.h"
#include "frugal.h"

#include "io/outfile.h"

#include <stdlib.h>

struct frugal_outfile {
    fr_outfile o;
};

frugal_outfile *frugal_outfile_open(const char *path, frugal_error *err) {
    if (err) fr_err_clear(err);
    if (!path) {
        fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_outfile_open: NULL path");
        return NULL;
    }
    frugal_outfile *f = fr_malloc(sizeof *f);
    if (!f) {
        fr_err_set(err, FRUGAL_E_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (fr_outfile_open(&f->o, path, err) != FRUGAL_OK) {
        free(f);
        return NULL;
    }
    return f;
}

int frugal_outfile_write(frugal_outfile *f, const void *p, size_t n, frugal_error *err) {
    if (!f) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_outfile_write: NULL file");
    return fr_outfile_write(&f->o, p, n, err);
}

int frugal_outfile_commit(frugal_outfile *f, frugal_error *err) {
    if (!f) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_outfile_commit: NULL file");
    int rc = fr_outfile_commit(&f->o, err);
    free(f);
    return rc;
}

void frugal_outfile_abort(frugal_outfile *f) {
    if (!f) return;
    fr_outfile_abort(&f->o);
    free(f);
}
