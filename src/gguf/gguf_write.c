/* gguf_write.c - GGUF v3 writer.
 *
 * Each key/value is serialized (type id + value, exactly as it will appear in the
 * file) as soon as it is set, so replacing a key is just swapping a buffer and
 * writing is a straight copy. Tensor offsets are computed at write time because
 * general.alignment may still change after tensors are added. The file goes to a
 * temp file beside the target first and is renamed into place only after
 * everything succeeded (io/outfile.h: created exclusively, synced, removed on
 * errors and signals; a target that is a device or FIFO is refused). */
#include "core/fault.h"
#include "gguf/gguf.h"

#include "core/types.h"
#include "io/outfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct wkv {
    char *key;
    uint8_t *val;     /* u32 type + encoded value */
    size_t val_len;
} wkv;

typedef struct wtensor {
    char *name;
    uint32_t type, n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    const void *data;
} wtensor;

struct gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
    uint64_t alignment;
};

/* ------------------------------------------------------------ byte buffer */

typedef struct bbuf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
} bbuf;

/* Append n bytes (sticky OOM flag instead of a status per call). */
static void bb_put(bbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 64;
        while (nc < b->len + n) nc *= 2;
        uint8_t *np = fr_realloc(b->p, nc);
        if (!np) { b->oom = true; return; }
        b->p = np;
        b->cap = nc;
    }
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
}

/* Append v as n little-endian bytes. */
static void bb_le(bbuf *b, uint64_t v, int n) {
    uint8_t tmp[8];
    for (int i = 0; i < n; i++) tmp[i] = (uint8_t)(v >> (8 * i));
    bb_put(b, tmp, (size_t)n);
}

static void bb_str(bbuf *b, const char *s, uint64_t len) {
    bb_le(b, len, 8);
    bb_put(b, s, (size_t)len);
}

/* ------------------------------------------------------------ writer */

gguf_writer *gguf_writer_new(void) {
    gguf_writer *w = fr_calloc(1, sizeof *w);
    if (w) w->alignment = 32;
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) { free(w->kv[i].key); free(w->kv[i].val); }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Install key -> encoded value (takes ownership of b->p); replaces an existing key.
 * general.alignment (u32, power of two) also sets the writer's alignment. */
static int put_kv(gguf_writer *w, const char *key, bbuf *b) {
    if (b->oom) { free(b->p); return FRUGAL_E_NOMEM; }
    if (strcmp(key, "general.alignment") == 0) {
        uint32_t t = b->len >= 4 ? (uint32_t)(b->p[0] | b->p[1] << 8 | b->p[2] << 16 | (uint32_t)b->p[3] << 24) : 99;
        uint64_t a = 0;
        if (t == GGUF_VT_UINT32 && b->len == 8)
            a = (uint64_t)b->p[4] | (uint64_t)b->p[5] << 8 | (uint64_t)b->p[6] << 16 | (uint64_t)b->p[7] << 24;
        if (a == 0 || (a & (a - 1)) != 0) { free(b->p); return FRUGAL_E_INVALID_ARG; }
        w->alignment = a;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].val_len = b->len;
            return FRUGAL_OK;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t nc = w->cap_kv ? w->cap_kv * 2 : 16;
        wkv *nk = fr_realloc(w->kv, nc * sizeof *nk);
        if (!nk) { free(b->p); return FRUGAL_E_NOMEM; }
        w->kv = nk;
        w->cap_kv = nc;
    }
    char *k = fr_strdup(key);
    if (!k) { free(b->p); return FRUGAL_E_NOMEM; }
    w->kv[w->n_kv++] = (wkv){k, b->p, b->len};
    return FRUGAL_OK;
}

/* Keys and tensor names must be non-empty and free of control bytes: the reader
 * rejects anything else, so refusing it here keeps every written file readable. */
static bool ident_ok(const char *s) {
    if (!s || !*s) return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return false;
    return true;
}

static bool key_ok(const gguf_writer *w, const char *key) { return w && ident_ok(key); }

/* Set a scalar of type t from its raw little-endian bits. */
static int set_scalar(gguf_writer *w, const char *key, gguf_vtype t, uint64_t bits, int size) {
    if (!key_ok(w, key)) return FRUGAL_E_INVALID_ARG;
    bbuf b = {0};
    bb_le(&b, (uint32_t)t, 4);
    bb_le(&b, bits, size);
    return put_kv(w, key, &b);
}

int gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, GGUF_VT_UINT32, v, 4); }
int gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) {
    return set_scalar(w, key, GGUF_VT_INT32, (uint32_t)v, 4);
}
int gguf_writer_set_u64(gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, GGUF_VT_UINT64, v, 8); }
int gguf_writer_set_f32(gguf_writer *w, const char *key, float v) {
    uint32_t bits;
    memcpy(&bits, &v, 4);
    return set_scalar(w, key, GGUF_VT_FLOAT32, bits, 4);
}
int gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) { return set_scalar(w, key, GGUF_VT_BOOL, v ? 1 : 0, 1); }

int gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!key_ok(w, key) || !v) return FRUGAL_E_INVALID_ARG;
    bbuf b = {0};
    bb_le(&b, GGUF_VT_STRING, 4);
    bb_str(&b, v, strlen(v));
    return put_kv(w, key, &b);
}

/* Element size of a numeric type, 0 for string/array/unknown. */
static size_t elem_size(gguf_vtype t) {
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

int gguf_writer_set_arr(gguf_writer *w, const char *key, gguf_vtype t, const void *data, uint64_t n) {
    size_t es = elem_size(t);
    if (!key_ok(w, key) || !es || (n && !data) || n > SIZE_MAX / es) return FRUGAL_E_INVALID_ARG;
    bbuf b = {0};
    bb_le(&b, GGUF_VT_ARRAY, 4);
    bb_le(&b, (uint32_t)t, 4);
    bb_le(&b, n, 8);
    bb_put(&b, data, (size_t)n * es);
    return put_kv(w, key, &b);
}

int gguf_writer_set_str_arr(gguf_writer *w, const char *key, const gguf_str *strs, uint64_t n) {
    if (!key_ok(w, key) || (n && !strs)) return FRUGAL_E_INVALID_ARG;
    bbuf b = {0};
    bb_le(&b, GGUF_VT_ARRAY, 4);
    bb_le(&b, GGUF_VT_STRING, 4);
    bb_le(&b, n, 8);
    for (uint64_t i = 0; i < n; i++) {
        if (strs[i].len && !strs[i].ptr) { free(b.p); return FRUGAL_E_INVALID_ARG; }
        bb_str(&b, strs[i].ptr, strs[i].len);
    }
    return put_kv(w, key, &b);
}

int gguf_writer_copy_kv(gguf_writer *w, const gguf_kv *kv) {
    if (!w || !kv || !kv->key.len || (!kv->key.ptr)) return FRUGAL_E_INVALID_ARG;
    /* the reader's keys are not NUL-terminated; writer keys are C strings */
    if (memchr(kv->key.ptr, 0, (size_t)kv->key.len)) return FRUGAL_E_INVALID_ARG;
    char *key = strndup(kv->key.ptr, (size_t)kv->key.len);
    if (!key) return FRUGAL_E_NOMEM;
    int rc;
    bbuf b = {0};
    if (kv->type == GGUF_VT_ARRAY) {
        if (kv->arr_type == GGUF_VT_STRING) {
            if (kv->arr_n && !kv->arr_strs) { rc = FRUGAL_E_INVALID_ARG; goto out; }
            rc = gguf_writer_set_str_arr(w, key, kv->arr_strs, kv->arr_n);
        } else {
            rc = gguf_writer_set_arr(w, key, kv->arr_type, kv->arr_data, kv->arr_n);
        }
        goto out;
    }
    size_t es = elem_size(kv->type);
    bb_le(&b, (uint32_t)kv->type, 4);
    if (kv->type == GGUF_VT_STRING) {
        bb_str(&b, kv->v.str.ptr, kv->v.str.len);
    } else if (kv->type == GGUF_VT_FLOAT32) {
        float f = (float)kv->v.f64;
        uint32_t bits;
        memcpy(&bits, &f, 4);
        bb_le(&b, bits, 4);
    } else if (kv->type == GGUF_VT_FLOAT64) {
        uint64_t bits;
        memcpy(&bits, &kv->v.f64, 8);
        bb_le(&b, bits, 8);
    } else if (es) {
        /* integers: truncating the widened value to its width restores the raw bits
         * (two's complement for signed types) */
        bb_le(&b, kv->v.u64, (int)es);
    } else {
        free(b.p);
        rc = FRUGAL_E_INVALID_ARG;
        goto out;
    }
    rc = put_kv(w, key, &b);
out:
    free(key);
    return rc;
}

int gguf_writer_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                           const int64_t *ne, const void *data) {
    if (!w || !ident_ok(name) || !ne || n_dims < 1 || n_dims > 4) return FRUGAL_E_INVALID_ARG;
    const fr_type_traits *tr = fr_type_traits_scalar(type);
    if (!tr) return FRUGAL_E_INVALID_ARG;
    wtensor t = {.type = type, .n_dims = n_dims, .ne = {1, 1, 1, 1}, .data = data};
    uint64_t nel = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        if (ne[d] < 1 || __builtin_mul_overflow(nel, (uint64_t)ne[d], &nel) || nel > (uint64_t)INT64_MAX)
            return FRUGAL_E_INVALID_ARG;
        t.ne[d] = ne[d];
    }
    if (t.ne[0] % tr->blck_size) return FRUGAL_E_INVALID_ARG;
    uint64_t row;
    if (__builtin_mul_overflow((uint64_t)(t.ne[0] / tr->blck_size), (uint64_t)tr->type_size, &row) ||
        __builtin_add_overflow(row, (uint64_t)tr->row_overhead, &row) || /* per-row header */
        __builtin_mul_overflow(row, nel / (uint64_t)t.ne[0], &t.nbytes) || t.nbytes > SIZE_MAX)
        return FRUGAL_E_INVALID_ARG;
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) return FRUGAL_E_INVALID_ARG;
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 16;
        wtensor *nt = fr_realloc(w->t, nc * sizeof *nt);
        if (!nt) return FRUGAL_E_NOMEM;
        w->t = nt;
        w->cap_t = nc;
    }
    t.name = fr_strdup(name);
    if (!t.name) return FRUGAL_E_NOMEM;
    w->t[w->n_t++] = t; /* owns t.name now (gcc -fanalyzer's "leak of t.name" misses this) */
    return FRUGAL_OK;
}

/* ------------------------------------------------------------ output */

static int out_pad(fr_outfile *o, uint64_t pos, uint64_t align, fr_err *err) {
    static const uint8_t zeros[256];
    uint64_t pad = (align - pos % align) % align;
    while (pad) {
        size_t n = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
        int rc = fr_outfile_write(o, zeros, n, err);
        if (rc) return rc;
        pad -= n;
    }
    return FRUGAL_OK;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int gguf_writer_write(gguf_writer *w, const char *path, gguf_fill_fn fill, void *user, fr_err *err) {
    if (!w || !path) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "gguf_writer_write: NULL argument");
    /* Check inputs and lay out offsets before touching the file system. */
    uint64_t max_fill = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        if (!t->data && !fill)
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "tensor '%s' has no data and no fill callback", t->name);
        if (!t->data && t->nbytes > max_fill) max_fill = t->nbytes;
    }

    bbuf hdr = {0};
    bb_put(&hdr, "GGUF", 4);
    bb_le(&hdr, 3, 4);
    bb_le(&hdr, w->n_t, 8);
    bb_le(&hdr, w->n_kv, 8);
    for (size_t i = 0; i < w->n_kv; i++) {
        bb_str(&hdr, w->kv[i].key, strlen(w->kv[i].key));
        bb_put(&hdr, w->kv[i].val, w->kv[i].val_len);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        bb_str(&hdr, t->name, strlen(t->name));
        bb_le(&hdr, t->n_dims, 4);
        for (uint32_t d = 0; d < t->n_dims; d++) bb_le(&hdr, (uint64_t)t->ne[d], 8);
        bb_le(&hdr, t->type, 4);
        off = align_up(off, w->alignment);
        bb_le(&hdr, off, 8);
        off += t->nbytes;
    }
    if (hdr.oom) { free(hdr.p); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory building GGUF header"); }

    uint8_t *fbuf = max_fill ? fr_malloc((size_t)max_fill) : NULL;
    if (max_fill && !fbuf) {
        free(hdr.p);
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for a %llu-byte write buffer",
                          (unsigned long long)max_fill);
    }
    fr_outfile o;
    int rc = fr_outfile_open(&o, path, err);
    if (rc) goto done;
    if ((rc = fr_outfile_write(&o, hdr.p, hdr.len, err))) goto fail;
    if ((rc = out_pad(&o, hdr.len, w->alignment, err))) goto fail;
    for (size_t i = 0; i < w->n_t; i++) {
        const wtensor *t = &w->t[i];
        const void *src = t->data;
        if (!src) {
            rc = fill(user, i, fbuf, (size_t)t->nbytes, err);
            if (rc) {
                fr_err_set(err, rc, "fill callback failed for tensor '%s'", t->name);
                goto fail;
            }
            src = fbuf;
        }
        if ((rc = fr_outfile_write(&o, src, (size_t)t->nbytes, err))) goto fail;
        /* pad after every tensor, as llama.cpp does, so the file ends aligned too */
        if ((rc = out_pad(&o, t->nbytes, w->alignment, err))) goto fail;
    }
    rc = fr_outfile_commit(&o, err);
    goto done;
fail:
    fr_outfile_abort(&o);
done:
    free(fbuf);
    free(hdr.p);
    return rc;
}
