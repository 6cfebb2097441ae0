/* fuzz_gguf.c - libFuzzer target for the GGUF reader (not built by default).
 * Build: clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc \
 *          tests/fuzz_gguf.c src/gguf/gguf_read.c src/core/error.c src/core/types.c \
 *          src/core/quant*.c -lm -o fuzz_gguf
 * The reader works on mapped files, so each input goes through a memfd (no disk I/O).
 * Any successful open is checked the same way test_gguf_fuzz does: every pointer
 * handed out lies inside the mapping. */
#include "gguf/gguf.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Abort (a finding for libFuzzer) when an opened file hands out an out-of-range range. */
static void check_inside(const gguf_file *f, const void *p, uint64_t n) {
    const uint8_t *b = p;
    if (b < f->map || b > f->map + f->size || n > (uint64_t)(f->map + f->size - b)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("gguf-fuzz", 0);
        if (fd < 0) return 0;
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) return 0;
    fr_err err = FRUGAL_ERROR_INIT;
    gguf_file *f = NULL;
    if (gguf_open(path, &f, &err) != FRUGAL_OK) {
        if (f || err.message[0] == '\0') abort();
        return 0;
    }
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        check_inside(f, f->tensors[i].data, f->tensors[i].nbytes);
        check_inside(f, f->tensors[i].name.ptr, f->tensors[i].name.len);
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        check_inside(f, kv->key.ptr, kv->key.len);
        if (kv->type == GGUF_VT_STRING) check_inside(f, kv->v.str.ptr, kv->v.str.len);
        if (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING)
            for (uint64_t j = 0; j < kv->arr_n; j++) check_inside(f, kv->arr_strs[j].ptr, kv->arr_strs[j].len);
    }
    gguf_close(f);
    return 0;
}
