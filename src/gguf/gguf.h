/* gguf.h - GGUF v2/v3 reader (mmap, validated, zero-copy) and writer.
 *
 * Reader contract: gguf_open() maps the file read-only and validates everything
 * before returning: magic, version (2 or 3), counts, every string and array length,
 * value types, duplicate keys, general.alignment (power of two), tensor names
 * (unique), dims (1..4, each >= 1, product fits in int64), types (known, with the
 * row length a multiple of the block size), and each tensor's data range lies
 * inside the file's data section, aligned. All arithmetic on sizes read from the
 * file is overflow-checked; no allocation is larger than what the file's size can
 * justify. On any failure it returns a FRUGAL_E_* code with err naming the problem
 * (without the file name: callers prefix it) and *out is NULL.
 *
 * Pointers handed out (strings, arrays, tensor data) point into the mapping and stay
 * valid until gguf_close(). Strings are NOT NUL-terminated: use gguf_str. */
#ifndef FRUGAL_GGUF_H
#define FRUGAL_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef enum gguf_vtype {
    GGUF_VT_UINT8 = 0, GGUF_VT_INT8 = 1, GGUF_VT_UINT16 = 2, GGUF_VT_INT16 = 3,
    GGUF_VT_UINT32 = 4, GGUF_VT_INT32 = 5, GGUF_VT_FLOAT32 = 6, GGUF_VT_BOOL = 7,
    GGUF_VT_STRING = 8, GGUF_VT_ARRAY = 9, GGUF_VT_UINT64 = 10, GGUF_VT_INT64 = 11,
    GGUF_VT_FLOAT64 = 12, GGUF_VT_COUNT
} gguf_vtype;

typedef struct gguf_str {
    const char *ptr;   /* into the mapping, not NUL-terminated */
    uint64_t len;
} gguf_str;

typedef struct gguf_kv {
    gguf_str key;
    gguf_vtype type;
    /* scalars (type != ARRAY): the value, widened */
    union {
        uint64_t u64;   /* UINT8/16/32/64, BOOL */
        int64_t i64;    /* INT8/16/32/64 */
        double f64;     /* FLOAT32/64 */
        gguf_str str;   /* STRING */
    } v;
    /* arrays (type == ARRAY) */
    gguf_vtype arr_type;     /* element type (never ARRAY: nested arrays are rejected) */
    uint64_t arr_n;
    const void *arr_data;    /* numeric arrays: the raw little-endian elements (may be unaligned) */
    gguf_str *arr_strs;      /* string arrays: arr_n decoded strings (owned by the file) */
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[4];          /* ne[0] = row length (contiguous); unused dims are 1 */
    uint32_t type;          /* fr_type id */
    uint64_t offset;        /* relative to the data section */
    uint64_t nbytes;
    const void *data;       /* into the mapping */
} gguf_tensor;

typedef struct gguf_file {
    const char *path;       /* copy owned by the file */
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;   /* start of the data section in the file */
    const uint8_t *map;
    uint64_t size;          /* file size */
} gguf_file;

int gguf_open(const char *path, gguf_file **out, fr_err *err);
void gguf_close(gguf_file *f);
/* FRUGAL_OK while the file is as it was mapped; FRUGAL_E_IO naming it when it was
 * truncated (a read of the mapping hit SIGBUS and got zeros: io/mapguard.h) or
 * modified in place (size or mtime changed) since gguf_open. Anything computed
 * from the mapping since then must be thrown away. */
int gguf_check_intact(const gguf_file *f, fr_err *err);

/* Lookup; NULL if absent. */
const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name);
bool gguf_str_eq(gguf_str s, const char *cstr);

/* Typed getters. Return FRUGAL_OK, or FRUGAL_E_FORMAT when the key is absent
 * (unless a default is documented) or holds an incompatible type/value. Integer
 * getters accept any integer type whose value fits. */
int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, fr_err *err);
int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, fr_err *err);
int gguf_get_f32(const gguf_file *f, const char *key, float *out, fr_err *err);
int gguf_get_bool(const gguf_file *f, const char *key, bool *out, fr_err *err);
int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, fr_err *err);
/* Optional variants: absent key -> *out = def, FRUGAL_OK. Wrong type is still an error. */
int gguf_get_u32_opt(const gguf_file *f, const char *key, uint32_t def, uint32_t *out, fr_err *err);
int gguf_get_f32_opt(const gguf_file *f, const char *key, float def, float *out, fr_err *err);
int gguf_get_bool_opt(const gguf_file *f, const char *key, bool def, bool *out, fr_err *err);

/* Element i of a numeric array converted to double / int64 (caller checks bounds). */
double gguf_arr_f64(const gguf_kv *kv, uint64_t i);
int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i);

const char *gguf_vtype_name(gguf_vtype t);

/* ------------------------------------------------------------------ writer
 * Build metadata and a tensor table in memory, then write the file in one pass
 * to "<path>.tmp" and rename it over path, so a failed write never leaves a
 * half-written file under the final name. Tensor data is either given as a
 * pointer (not copied; must stay valid until gguf_writer_write) or produced on
 * demand by the fill callback, so multi-GB models need not be held in memory. */
typedef struct gguf_writer gguf_writer;

/* Fill dst (nbytes) with the data of tensor number `index` (order of addition).
 * Return FRUGAL_OK or an error code (with err set). */
typedef int (*gguf_fill_fn)(void *user, size_t index, void *dst, size_t nbytes, fr_err *err);

gguf_writer *gguf_writer_new(void);   /* NULL on OOM; alignment 32, version 3 */
void gguf_writer_free(gguf_writer *w);
int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
/* (Setting a key that already exists replaces its value.) */
/* Numeric array: n elements of type t, raw little-endian data copied. */
int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data, uint64_t n);
int gguf_writer_set_str_arr(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n);
/* Copy a key/value pair read from another file (any type). */
int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv);
/* Add a tensor; data may be NULL when a fill callback is given to write(). */
int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data);
int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *user, fr_err *err);

#endif
