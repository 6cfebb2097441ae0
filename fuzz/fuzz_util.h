/* fuzz_util.h - helpers shared by the libFuzzer targets in fuzz/ (header-only). */
#ifndef FRUGAL_FUZZ_UTIL_H
#define FRUGAL_FUZZ_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frugal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The shared test data folder: $FRUGAL_SHARED_DIR, else the one CMake saw. */
static inline const char *fz_shared(void) {
    const char *s = getenv("FRUGAL_SHARED_DIR");
#ifdef FRUGAL_SHARED_DIR_DEFAULT
    if (!s) s = FRUGAL_SHARED_DIR_DEFAULT;
#endif
    return s ? s : "../shared";
}

/* A vocabulary-only model from the shared folder, or exit(1) with a message
 * (a fuzz target without its data would only fuzz the error path). */
static inline frugal_model *fz_vocab(const char *rel) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", fz_shared(), rel);
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.vocab_only = 1;
    frugal_model *m = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(path, &mp, &m, &err) != FRUGAL_OK) {
        fprintf(stderr, "fuzz: cannot load %s: %s (set FRUGAL_SHARED_DIR)\n", path, err.message);
        exit(1);
    }
    return m;
}

/* Write data into a memfd (created once per target) and return its /proc path:
 * the readers work on files and mappings, and a memfd costs no disk I/O. */
static inline const char *fz_memfile(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("frugal-fuzz", 0);
        if (fd < 0) return NULL;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0) return NULL;
    if (size && pwrite(fd, data, size, 0) != (ssize_t)size) return NULL;
    return path;
}

#endif
