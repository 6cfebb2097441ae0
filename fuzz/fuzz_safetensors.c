/* fuzz_safetensors.c - libFuzzer target: bytes as a safetensors file (u64 header
 * length, JSON header, data) -> st_parse_header (src/convert/safetensors.h).
 *
 * Checked on success: every tensor has a dtype of F32/F16/BF16, at most 4 dims, a
 * byte range inside the data section whose size is elements * element size, names
 * unique and sorted, and no two ranges overlapping. On failure: a message. The same
 * bytes are also parsed as a bare header (no length prefix) against a data section
 * of the input's size. Seeds: fuzz/seeds.sh (small files in every dtype, the shared
 * HF folders' headers). */
#include "fuzz_util.h"

#include <string.h>

#include "convert/safetensors.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    return 0;
}

static void check(const char *json, size_t len, uint64_t data_len) {
    st_tensor *t = NULL;
    size_t n = 0;
    fr_err err = FRUGAL_ERROR_INIT;
    int rc = st_parse_header(json, len, data_len, &t, &n, &err);
    if (rc) {
        if (!err.message[0]) abort();
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t el = 1;
        if (t[i].n_dims < 0 || t[i].n_dims > ST_MAX_DIMS) abort();
        if (t[i].dtype != FR_TYPE_F32 && t[i].dtype != FR_TYPE_F16 && t[i].dtype != FR_TYPE_BF16) abort();
        for (int d = 0; d < t[i].n_dims; d++) el *= (uint64_t)t[i].shape[d];
        if (el * st_elem_size(t[i].dtype) != t[i].nbytes) abort();
        if (t[i].begin > data_len || t[i].nbytes > data_len - t[i].begin) abort();
        if (i && strcmp(t[i - 1].name, t[i].name) >= 0) abort();
        for (size_t j = 0; j < i; j++)
            if (t[i].nbytes && t[j].nbytes && t[i].begin < t[j].begin + t[j].nbytes && t[j].begin < t[i].begin + t[i].nbytes)
                abort();
    }
    st_tensors_free(t, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size >= 8) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | data[i];
        if (hl <= size - 8) check((const char *)data + 8, (size_t)hl, size - 8 - hl);
    }
    check((const char *)data, size, size);
    return 0;
}
