/* safetensors.h - reading Hugging Face .safetensors files (one file or the shards of
 * a model.safetensors.index.json), memory-mapped, zero-copy, validated before use.
 *
 * A file is: u64 little-endian header length N, N bytes of JSON (an object mapping
 * tensor names to {"dtype", "shape", "data_offsets": [begin, end]}, plus an optional
 * "__metadata__" object of strings), then the data section; offsets are relative to
 * its start. Validation: N inside the file, the JSON an object, each entry's dtype one
 * of F32/F16/BF16 (anything else is an error naming it), shape a list of at most 4
 * non-negative integers, offsets integers with begin <= end <= data length and
 * end - begin == elements * element size, no two tensors' byte ranges overlapping,
 * names unique. Errors are FRUGAL_E_FORMAT with a message naming the tensor and the
 * problem (callers prefix the file name). */
#ifndef FRUGAL_SAFETENSORS_H
#define FRUGAL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/types.h"

#define ST_MAX_DIMS 4

typedef struct st_tensor {
    char *name;                /* owned */
    fr_type dtype;             /* FR_TYPE_F32, FR_TYPE_F16 or FR_TYPE_BF16 */
    int n_dims;
    int64_t shape[ST_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] is contiguous */
    uint64_t begin, nbytes;    /* in the data section */
    const uint8_t *data;       /* into the mapping (NULL from st_parse_header) */
    int shard;                 /* index of the file in its st_model */
} st_tensor;

/* Parse and validate a header (the JSON bytes, not NUL-terminated) for a data section
 * of data_len bytes. On success *out is an array of *n tensors (free with
 * st_tensors_free), in no particular order. Touches no file: the fuzz target's entry. */
int st_parse_header(const char *json, size_t len, uint64_t data_len, st_tensor **out, size_t *n, fr_err *err);
void st_tensors_free(st_tensor *t, size_t n);

/* A model folder's weights: every shard mapped, all tensors in one table. */
typedef struct st_model {
    int n_files;
    char **paths;              /* owned */
    const uint8_t **maps;
    uint64_t *sizes;
    st_tensor *tensors;        /* all shards, sorted by name */
    size_t n_tensors;
} st_model;

/* Open dir/model.safetensors.index.json's shards (each file once, in file-name order)
 * or else dir/model.safetensors. Every tensor the index names must be in the shard it
 * names. Errors name the file. */
int st_model_open(const char *dir, st_model **out, fr_err *err);
void st_model_close(st_model *m);
/* The tensor named name, or NULL. */
const st_tensor *st_model_find(const st_model *m, const char *name);
/* Tell the kernel the pages of t are no longer needed (keeps peak RSS to about one
 * tensor while streaming; a failure only costs memory). */
void st_release(const st_model *m, const st_tensor *t);
/* The same for bytes [p, p + n) of shard `shard`'s mapping (whole pages inside it). */
void st_release_range(const st_model *m, int shard, const uint8_t *p, size_t n);
/* Bytes per element of dtype. */
size_t st_elem_size(fr_type t);

#endif
