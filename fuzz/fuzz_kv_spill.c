/* fuzz_kv_spill.c - libFuzzer target: the KV cache's disk tier reading back a
 * spill file that holds anything at all (any length, any bytes).
 *
 * A context of the smallest shared model (stories260K: 5 layers, so 2 blocks of
 * 16 tokens make 10 pages for 4 RAM frames) with a disk tier whose RAM share is the
 * minimum evaluates a prompt, so pages are written to the spill file; the input
 * then replaces the file's contents (byte 0 and 1 choose how much of it is kept
 * and whether it is truncated, simulating a shortened or corrupted file), and
 * more tokens are evaluated, paging everything back in. The evaluation must either
 * succeed (the values are whatever the file held) or fail with a message (a
 * short read is an I/O error); never crash or read past a frame (ASan).
 * Seeds: fuzz/seeds.sh (runs of the shared text's bytes). */
#include "fuzz_util.h"

#include <string.h>

#include "model/model.h"

static frugal_model *g_m;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/stories260K.gguf", fz_shared());
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 1;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(path, &mp, &g_m, &err) != FRUGAL_OK) {
        fprintf(stderr, "fuzz: %s (set FRUGAL_SHARED_DIR)\n", err.message);
        exit(1);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    cp.n_ctx = 32;
    cp.kv_disk_dir = "/tmp";
    cp.kv_ram_bytes = 1; /* raised to the minimum the tier accepts below */
    frugal_context *c = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_context_new(g_m, &cp, &c, &err) != FRUGAL_OK) {
        /* the message names the minimum: parse "needs at least N KiB" */
        const char *at = strstr(err.message, "at least ");
        if (!at) abort();
        cp.kv_ram_bytes = (uint64_t)(strtod(at + 9, NULL) * 1024.0) + 1024;
        memset(&err, 0, sizeof err);
        if (frugal_context_new(g_m, &cp, &c, &err) != FRUGAL_OK) abort();
    }
    int32_t toks[28];
    for (int i = 0; i < 28; i++) toks[i] = (int32_t)(1 + (i * 37) % 500);
    if (frugal_eval(c, toks, 24, 0, &err) != FRUGAL_OK) abort();
    int fd = fr_kv_disk_fd(&c->kv_pool);
    if (fd < 0) abort();
    /* lay the input over the spill file from offset 0, then (byte 0 odd) cut the
     * file to a fraction of the input's length that byte 1 chooses */
    size_t n = size - 2;
    if (n && pwrite(fd, data + 2, n, 0) != (ssize_t)n) abort();
    if ((data[0] & 1) && ftruncate(fd, (off_t)(n * data[1] / 255)) != 0) abort();
    int rc = frugal_eval(c, toks + 24, 4, 1, &err);
    if (rc != FRUGAL_OK && err.message[0] == '\0') abort();
    frugal_context_free(c);
    return 0;
}
