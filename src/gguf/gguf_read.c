/* gguf_read.c - validating, zero-copy GGUF v2/v3 reader.
 *
 * The whole file is mapped read-only and parsed with a bounds-checked cursor.
 * Every length or count read from the file is checked against the bytes that
 * remain before it is used, so a hostile file can neither make us read past the
 * mapping nor allocate more than a small multiple of its own size. Tables grow
 * as entries actually parse, instead of trusting the header counts. */
#include "gguf/gguf.h"

#include "core/fault.h"
#include "io/mapguard.h"

#include "core/types.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_DEFAULT_ALIGNMENT 32u

/* The public gguf_file plus private lookup tables (sorted by name so lookups are
 * O(log n) and duplicates are found in one sort). */
typedef struct gguf_file_priv {
    gguf_file pub;
    uint64_t *kv_sorted;   /* indices into pub.kv, sorted by key */
    uint64_t *t_sorted;    /* indices into pub.tensors, sorted by name */
    int fd;                /* kept open: fstat tells whether the file changed under the map */
    int guard;             /* io/mapguard slot of the mapping, or -1 */
    struct stat st;        /* the file as it was mapped */
} gguf_file_priv;

/* ------------------------------------------------------------ helpers */

/* Write a printable, truncated rendering of s into buf (always NUL-terminated):
 * non-printable bytes become \xHH so messages never carry control characters. */
static const char *esc(char *buf, size_t cap, const char *s, uint64_t len) {
    size_t o = 0;
    const size_t limit = 48;
    for (uint64_t i = 0; i < len; i++) {
        if (i >= limit) {
            if (o + 4 <= cap) { memcpy(buf + o, "...", 3); o += 3; }
            break;
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '\'') {
            if (o + 2 > cap) break;
            buf[o++] = (char)c;
        } else {
            if (o + 5 > cap) break;
            snprintf(buf + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* Byte size of a scalar value type; 0 for STRING/ARRAY/unknown. */
static uint64_t vtype_size(uint32_t t) {
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

const char *gguf_vtype_name(gguf_vtype t) {
    static const char *names[GGUF_VT_COUNT] = {
        "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
        "u64", "i64", "f64",
    };
    if ((unsigned)t >= GGUF_VT_COUNT) return "unknown";
    return names[t];
}

bool gguf_str_eq(gguf_str s, const char *cstr) {
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

static int str_cmp(gguf_str a, gguf_str b) {
    uint64_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, (size_t)n) : 0;
    if (c) return c;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

/* ------------------------------------------------------------ cursor */

typedef struct cursor {
    const uint8_t *base;
    uint64_t pos, size;
    fr_err *err;
    char what[320];        /* what is being parsed, for "truncated" messages */
} cursor;

static uint64_t remaining(const cursor *c) { return c->size - c->pos; }

/* Ensure n more bytes exist; otherwise set a "truncated" error naming c->what. */
static int need(cursor *c, uint64_t n) {
    if (n <= remaining(c)) return FRUGAL_OK;
    return fr_err_set(c->err, FRUGAL_E_FORMAT, "truncated: %s needs %llu more bytes",
                      c->what, (unsigned long long)(n - remaining(c)));
}

static int get_u32(cursor *c, uint32_t *v) {
    int rc = need(c, 4);
    if (rc) return rc;
    *v = (uint32_t)rd_le(c->base + c->pos, 4);
    c->pos += 4;
    return FRUGAL_OK;
}

static int get_u64(cursor *c, uint64_t *v) {
    int rc = need(c, 8);
    if (rc) return rc;
    *v = rd_le(c->base + c->pos, 8);
    c->pos += 8;
    return FRUGAL_OK;
}

/* Read a length-prefixed string pointing into the mapping. */
static int get_str(cursor *c, gguf_str *s) {
    uint64_t len;
    int rc = get_u64(c, &len);
    if (rc) return rc;
    if ((rc = need(c, len))) return rc;
    s->ptr = (const char *)(c->base + c->pos);
    s->len = len;
    c->pos += len;
    return FRUGAL_OK;
}

/* Keys and tensor names are identifiers: non-empty and free of control bytes,
 * so they can be printed and looked up with C strings. */
static bool name_ok(gguf_str s) {
    if (s.len == 0) return false;
    for (uint64_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch < 0x20 || ch == 0x7f) return false;
    }
    return true;
}

/* ------------------------------------------------------------ metadata */

/* Parse one value of type t (already read) into kv. Nested arrays are rejected. */
static int parse_value(cursor *c, gguf_kv *kv, uint32_t t, const char *key) {
    int rc;
    if (t >= GGUF_VT_COUNT)
        return fr_err_set(c->err, FRUGAL_E_FORMAT, "metadata key '%s': unknown value type %u", key, t);
    kv->type = (gguf_vtype)t;
    if (t == GGUF_VT_STRING) return get_str(c, &kv->v.str);
    if (t != GGUF_VT_ARRAY) {
        uint64_t sz = vtype_size(t);
        if ((rc = need(c, sz))) return rc;
        uint64_t raw = rd_le(c->base + c->pos, (int)sz);
        c->pos += sz;
        switch (t) {
        case GGUF_VT_UINT8: case GGUF_VT_UINT16: case GGUF_VT_UINT32: case GGUF_VT_UINT64:
            kv->v.u64 = raw; break;
        case GGUF_VT_BOOL:
            if (raw > 1)
                return fr_err_set(c->err, FRUGAL_E_FORMAT, "metadata key '%s': bool byte %llu is not 0 or 1",
                                  key, (unsigned long long)raw);
            kv->v.u64 = raw; break;
        case GGUF_VT_INT8: kv->v.i64 = (int8_t)(uint8_t)raw; break;
        case GGUF_VT_INT16: kv->v.i64 = (int16_t)(uint16_t)raw; break;
        case GGUF_VT_INT32: kv->v.i64 = (int32_t)(uint32_t)raw; break;
        case GGUF_VT_INT64: kv->v.i64 = (int64_t)raw; break;
        case GGUF_VT_FLOAT32: { uint32_t b = (uint32_t)raw; float f; memcpy(&f, &b, 4); kv->v.f64 = f; break; }
        case GGUF_VT_FLOAT64: { double d; memcpy(&d, &raw, 8); kv->v.f64 = d; break; }
        default: break;
        }
        return FRUGAL_OK;
    }
    /* array */
    uint32_t et;
    uint64_t n;
    if ((rc = get_u32(c, &et)) || (rc = get_u64(c, &n))) return rc;
    if (et == GGUF_VT_ARRAY)
        return fr_err_set(c->err, FRUGAL_E_FORMAT, "metadata key '%s': nested arrays are not allowed", key);
    if (et >= GGUF_VT_COUNT)
        return fr_err_set(c->err, FRUGAL_E_FORMAT, "metadata key '%s': unknown array element type %u", key, et);
    kv->arr_type = (gguf_vtype)et;
    kv->arr_n = n;
    if (et != GGUF_VT_STRING) {
        uint64_t es = vtype_size(et);
        if (n > remaining(c) / es)
            return fr_err_set(c->err, FRUGAL_E_FORMAT,
                              "truncated: metadata key '%s': array of %llu %s needs more bytes than the file has",
                              key, (unsigned long long)n, gguf_vtype_name((gguf_vtype)et));
        kv->arr_data = c->base + c->pos;
        if (et == GGUF_VT_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (c->base[c->pos + i] > 1)
                    return fr_err_set(c->err, FRUGAL_E_FORMAT,
                                      "metadata key '%s': bool element %llu is not 0 or 1", key,
                                      (unsigned long long)i);
        }
        c->pos += n * es;
        return FRUGAL_OK;
    }
    /* String array: each element takes at least its 8-byte length, which bounds n
     * (and the allocation below) by the file size. Validate all lengths in a first
     * pass, then decode into an exactly-sized table. */
    if (n > remaining(c) / 8)
        return fr_err_set(c->err, FRUGAL_E_FORMAT,
                          "truncated: metadata key '%s': array of %llu strings needs more bytes than the file has",
                          key, (unsigned long long)n);
    uint64_t start = c->pos;
    for (uint64_t i = 0; i < n; i++) {
        gguf_str s;
        snprintf(c->what, sizeof c->what, "metadata key '%s' string %llu", key, (unsigned long long)i);
        if ((rc = get_str(c, &s))) return rc;
    }
    kv->arr_data = c->base + start;
    if (n == 0) return FRUGAL_OK;
    kv->arr_strs = fr_malloc((size_t)n * sizeof *kv->arr_strs);
    if (!kv->arr_strs)
        return fr_err_set(c->err, FRUGAL_E_NOMEM, "metadata key '%s': out of memory for %llu strings", key,
                          (unsigned long long)n);
    uint64_t p = start;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = rd_le(c->base + p, 8);
        kv->arr_strs[i].ptr = (const char *)(c->base + p + 8);
        kv->arr_strs[i].len = len;
        p += 8 + len;
    }
    return FRUGAL_OK;
}

/* Grow *arr (of elem-size es, capacity *cap) so it holds at least need entries. */
static int grow(void **arr, uint64_t *cap, uint64_t want, size_t es) {
    if (want <= *cap) return FRUGAL_OK;
    uint64_t nc = *cap ? *cap * 2 : 16;
    if (nc < want) nc = want;
    void *p = fr_realloc(*arr, (size_t)nc * es);
    if (!p) return FRUGAL_E_NOMEM;
    memset((char *)p + (size_t)*cap * es, 0, (size_t)(nc - *cap) * es);
    *arr = p;
    *cap = nc;
    return FRUGAL_OK;
}

/* qsort context: the C library's qsort has no user pointer, and the parser is
 * re-entrant otherwise, so the sort keys are gathered into pairs instead. */
typedef struct name_idx { gguf_str s; uint64_t i; } name_idx;

static int name_idx_cmp(const void *a, const void *b) {
    const name_idx *x = a, *y = b;
    int c = str_cmp(x->s, y->s);
    if (c) return c;
    return x->i < y->i ? -1 : x->i > y->i;
}

/* Sort n names into an index table; if two are equal, report the duplicate via
 * *dup (index of the later one) and return FRUGAL_E_FORMAT (message left to caller). */
static int sort_names(const gguf_str *(*get)(const gguf_file *, uint64_t), const gguf_file *f, uint64_t n,
                      uint64_t **out, uint64_t *dup) {
    *out = NULL;
    if (n == 0) return FRUGAL_OK;
    name_idx *tmp = fr_malloc((size_t)n * sizeof *tmp);
    uint64_t *idx = fr_malloc((size_t)n * sizeof *idx);
    if (!tmp || !idx) { free(tmp); free(idx); return FRUGAL_E_NOMEM; }
    for (uint64_t i = 0; i < n; i++) { tmp[i].s = *get(f, i); tmp[i].i = i; }
    qsort(tmp, (size_t)n, sizeof *tmp, name_idx_cmp);
    for (uint64_t i = 0; i < n; i++) {
        if (i > 0 && str_cmp(tmp[i - 1].s, tmp[i].s) == 0) {
            *dup = tmp[i].i;
            free(tmp); free(idx);
            return FRUGAL_E_FORMAT;
        }
        idx[i] = tmp[i].i;
    }
    free(tmp);
    *out = idx;
    return FRUGAL_OK;
}

static const gguf_str *kv_name(const gguf_file *f, uint64_t i) { return &f->kv[i].key; }
static const gguf_str *t_name(const gguf_file *f, uint64_t i) { return &f->tensors[i].name; }

/* ------------------------------------------------------------ open/close */

void gguf_close(gguf_file *f) {
    if (!f) return;
    gguf_file_priv *p = (gguf_file_priv *)f;
    if (f->kv)
        for (uint64_t i = 0; i < f->n_kv; i++) free(f->kv[i].arr_strs);
    free(f->kv);
    free(f->tensors);
    free(p->kv_sorted);
    free(p->t_sorted);
    fr_mapguard_remove(p->guard);
    if (f->map) munmap((void *)f->map, (size_t)f->size);
    if (p->fd >= 0) close(p->fd);
    free((void *)f->path);
    free(p);
}

/* Parse the header, metadata and tensor table of the mapped file f. */
static int parse(gguf_file_priv *p, fr_err *err) {
    gguf_file *f = &p->pub;
    cursor c = {.base = f->map, .pos = 0, .size = f->size, .err = err};
    char kb[200], nb[200];
    int rc;

    if (f->size < 4 || memcmp(f->map, "GGUF", 4) != 0) {
        if (f->size < 4 && memcmp(f->map, "GGUF", (size_t)f->size) == 0)
            return fr_err_set(err, FRUGAL_E_FORMAT, "truncated: file is %llu bytes, too short for a GGUF header",
                              (unsigned long long)f->size);
        return fr_err_set(err, FRUGAL_E_FORMAT, "bad magic (not a GGUF file)");
    }
    c.pos = 4;
    snprintf(c.what, sizeof c.what, "header");
    uint64_t n_kv, n_t;
    if ((rc = get_u32(&c, &f->version))) return rc;
    if (f->version != 2 && f->version != 3)
        return fr_err_set(err, FRUGAL_E_FORMAT, "unsupported GGUF version %u%s", f->version,
                          f->version == 1 ? " (v1 is obsolete; reconvert the model)" : "");
    if ((rc = get_u64(&c, &n_t)) || (rc = get_u64(&c, &n_kv))) return rc;
    /* Every kv takes >= 13 bytes (key length, type, 1-byte value) and every tensor
     * >= 32 (name length, n_dims, one dim, type, offset): counts beyond that are lies. */
    if (n_kv > remaining(&c) / 13)
        return fr_err_set(err, FRUGAL_E_FORMAT, "truncated: header claims %llu metadata keys, file has room for at most %llu",
                          (unsigned long long)n_kv, (unsigned long long)(remaining(&c) / 13));
    if (n_t > remaining(&c) / 32 || n_kv * 13 + n_t * 32 > remaining(&c))
        return fr_err_set(err, FRUGAL_E_FORMAT, "truncated: header claims %llu tensors, file has room for at most %llu",
                          (unsigned long long)n_t, (unsigned long long)((remaining(&c) - n_kv * 13) / 32));

    uint64_t cap = 0;
    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow((void **)&f->kv, &cap, i + 1, sizeof *f->kv))
            return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for metadata");
        gguf_kv *kv = &f->kv[i];
        f->n_kv = i + 1;   /* so gguf_close frees what this entry may allocate */
        snprintf(c.what, sizeof c.what, "metadata key %llu", (unsigned long long)i);
        if ((rc = get_str(&c, &kv->key))) return rc;
        esc(kb, sizeof kb, kv->key.ptr, kv->key.len);
        if (!name_ok(kv->key))
            return fr_err_set(err, FRUGAL_E_FORMAT, "metadata key %llu ('%s') is empty or has control characters",
                              (unsigned long long)i, kb);
        snprintf(c.what, sizeof c.what, "metadata key %llu ('%s')", (unsigned long long)i, kb);
        uint32_t t;
        if ((rc = get_u32(&c, &t))) return rc;
        if ((rc = parse_value(&c, kv, t, kb))) return rc;
        if (gguf_str_eq(kv->key, "general.alignment")) {
            if (kv->type != GGUF_VT_UINT32)
                return fr_err_set(err, FRUGAL_E_FORMAT, "general.alignment has type %s, expected u32",
                                  gguf_vtype_name(kv->type));
            uint64_t a = kv->v.u64;
            if (a == 0 || (a & (a - 1)) != 0)
                return fr_err_set(err, FRUGAL_E_FORMAT, "general.alignment %llu is not a power of two",
                                  (unsigned long long)a);
            f->alignment = a;
        }
    }
    uint64_t dup = 0;
    rc = sort_names(kv_name, f, f->n_kv, &p->kv_sorted, &dup);
    if (rc == FRUGAL_E_FORMAT)
        return fr_err_set(err, rc, "duplicate metadata key '%s'",
                          esc(kb, sizeof kb, f->kv[dup].key.ptr, f->kv[dup].key.len));
    if (rc) return fr_err_set(err, rc, "out of memory for metadata index");

    cap = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        if (grow((void **)&f->tensors, &cap, i + 1, sizeof *f->tensors))
            return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for tensor table");
        gguf_tensor *t = &f->tensors[i];
        f->n_tensors = i + 1;
        snprintf(c.what, sizeof c.what, "tensor %llu", (unsigned long long)i);
        if ((rc = get_str(&c, &t->name))) return rc;
        esc(nb, sizeof nb, t->name.ptr, t->name.len);
        if (!name_ok(t->name))
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor %llu name ('%s') is empty or has control characters",
                              (unsigned long long)i, nb);
        snprintf(c.what, sizeof c.what, "tensor %llu ('%s')", (unsigned long long)i, nb);
        if ((rc = get_u32(&c, &t->n_dims))) return rc;
        if (t->n_dims < 1 || t->n_dims > 4)
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': n_dims %u not in 1..4", nb, t->n_dims);
        uint64_t nel = 1;
        for (uint32_t d = 0; d < 4; d++) {
            uint64_t ne = 1;
            if (d < t->n_dims && (rc = get_u64(&c, &ne))) return rc;
            if (ne < 1 || ne > (uint64_t)INT64_MAX)
                return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': dimension %u is %llu, must be 1..2^63-1", nb, d,
                                  (unsigned long long)ne);
            if (__builtin_mul_overflow(nel, ne, &nel) || nel > (uint64_t)INT64_MAX)
                return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': element count overflows int64", nb);
            t->ne[d] = (int64_t)ne;
        }
        if ((rc = get_u32(&c, &t->type)) || (rc = get_u64(&c, &t->offset))) return rc;
        const fr_type_traits *tr = fr_type_traits_scalar(t->type);
        if (!tr) {
            const char *tn = fr_type_name(t->type);
            if (tn)
                return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "tensor '%s': type %s (id %u) has no known layout",
                                  nb, tn, t->type);
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': unknown type id %u", nb, t->type);
        }
        if (t->ne[0] % tr->blck_size != 0)
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': row length %lld is not a multiple of %s block size %d",
                              nb, (long long)t->ne[0], tr->name, tr->blck_size);
        uint64_t row;
        if (__builtin_mul_overflow((uint64_t)(t->ne[0] / tr->blck_size), (uint64_t)tr->type_size, &row) ||
            __builtin_add_overflow(row, (uint64_t)tr->row_overhead, &row) || /* per-row header */
            __builtin_mul_overflow(row, nel / (uint64_t)t->ne[0], &t->nbytes))
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': byte size overflows", nb);
        if (t->offset % f->alignment != 0)
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': offset %llu is not a multiple of the alignment %llu",
                              nb, (unsigned long long)t->offset, (unsigned long long)f->alignment);
    }
    rc = sort_names(t_name, f, f->n_tensors, &p->t_sorted, &dup);
    if (rc == FRUGAL_E_FORMAT)
        return fr_err_set(err, rc, "duplicate tensor name '%s'",
                          esc(nb, sizeof nb, f->tensors[dup].name.ptr, f->tensors[dup].name.len));
    if (rc) return fr_err_set(err, rc, "out of memory for tensor index");

    /* The data section starts at the next multiple of the alignment. A file with
     * no tensors may end before that padding, which is harmless. */
    uint64_t a = f->alignment;
    uint64_t pad = (a - c.pos % a) % a;
    f->data_offset = c.pos + pad;   /* c.pos <= size < 2^63, no overflow */
    uint64_t data_size = f->data_offset <= f->size ? f->size - f->data_offset : 0;
    if (f->n_tensors > 0 && f->data_offset > f->size)
        return fr_err_set(err, FRUGAL_E_FORMAT, "truncated: data section starts at %llu, past the end of the file (%llu bytes)",
                          (unsigned long long)f->data_offset, (unsigned long long)f->size);
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset > data_size || t->nbytes > data_size - t->offset)
            return fr_err_set(err, FRUGAL_E_FORMAT,
                              "truncated: tensor '%s' data (offset %llu, %llu bytes) extends past the end of the file",
                              esc(nb, sizeof nb, t->name.ptr, t->name.len), (unsigned long long)t->offset,
                              (unsigned long long)t->nbytes);
        t->data = f->map + f->data_offset + t->offset;
    }
    return FRUGAL_OK;
}

int gguf_open(const char *path, gguf_file **out, fr_err *err) {
    if (out) *out = NULL;
    if (!path || !out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "gguf_open: NULL argument");
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer
     * forever; with it the open returns and the type check below refuses it */
    int fd = fr_fault_hit(FR_FAULT_IO) ? (errno = EIO, -1) : open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return fr_err_set(err, FRUGAL_E_IO, "cannot open: %s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return fr_err_set(err, FRUGAL_E_IO, "cannot stat: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) { close(fd); return fr_err_set(err, FRUGAL_E_IO, "is a directory, not a GGUF file"); }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fr_err_set(err, FRUGAL_E_IO, "not a regular file (%s)", S_ISFIFO(st.st_mode) ? "a FIFO"
                          : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device" : "a socket or other special file");
    }
    if (st.st_size == 0) { close(fd); return fr_err_set(err, FRUGAL_E_FORMAT, "truncated: file is empty"); }

    gguf_file_priv *p = fr_calloc(1, sizeof *p);
    char *pc = p ? fr_strdup(path) : NULL;
    if (!p || !pc) {
        free(p);
        close(fd);
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    }
    p->pub.path = pc;
    p->fd = fd;
    p->guard = -1;
    p->st = st;
    void *m = fr_fault_hit(FR_FAULT_IO) ? (errno = ENOMEM, MAP_FAILED)
                                        : mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
        int e = errno;
        gguf_close(&p->pub);
        return fr_err_set(err, FRUGAL_E_IO, "cannot mmap: %s", strerror(e));
    }
    p->pub.map = m;
    p->pub.size = (uint64_t)st.st_size;
    p->guard = fr_mapguard_add(m, (size_t)st.st_size);
    int rc = parse(p, err);
    if (rc) {
        gguf_close(&p->pub);
        return rc;
    }
    *out = &p->pub;
    return FRUGAL_OK;
}

int gguf_check_intact(const gguf_file *f, fr_err *err) {
    if (!f) return FRUGAL_OK;
    const gguf_file_priv *p = (const gguf_file_priv *)f;
    struct stat st;
    int shrunk = fr_mapguard_faulted(p->guard);
    int changed = p->fd >= 0 && fstat(p->fd, &st) == 0 &&
                  (st.st_size != p->st.st_size || st.st_mtim.tv_sec != p->st.st_mtim.tv_sec ||
                   st.st_mtim.tv_nsec != p->st.st_mtim.tv_nsec);
    if (!shrunk && !changed) return FRUGAL_OK;
    return fr_err_set(err, FRUGAL_E_IO, "the model file was %s while in use (it is mapped, not copied); "
                      "replace a model by writing a new file and renaming it over the old one",
                      shrunk || (changed && st.st_size < p->st.st_size) ? "truncated" : "modified");
}

/* ------------------------------------------------------------ lookup */

/* Binary search over a sorted index table; NULL-safe for empty tables. */
static int64_t bsearch_name(const gguf_file *f, const uint64_t *idx, uint64_t n,
                            const gguf_str *(*get)(const gguf_file *, uint64_t), const char *name) {
    if (!idx || !name) return -1;
    gguf_str key = {name, strlen(name)};
    uint64_t lo = 0, hi = n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int c = str_cmp(*get(f, idx[mid]), key);
        if (c == 0) return (int64_t)idx[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -1;
}

const gguf_kv *gguf_find_kv(const gguf_file *f, const char *key) {
    if (!f) return NULL;
    const gguf_file_priv *p = (const gguf_file_priv *)f;
    int64_t i = bsearch_name(f, p->kv_sorted, f->n_kv, kv_name, key);
    return i < 0 ? NULL : &f->kv[i];
}

const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    if (!f) return NULL;
    const gguf_file_priv *p = (const gguf_file_priv *)f;
    int64_t i = bsearch_name(f, p->t_sorted, f->n_tensors, t_name, name);
    return i < 0 ? NULL : &f->tensors[i];
}

/* ------------------------------------------------------------ getters */

static bool is_uint(gguf_vtype t) {
    return t == GGUF_VT_UINT8 || t == GGUF_VT_UINT16 || t == GGUF_VT_UINT32 || t == GGUF_VT_UINT64;
}
static bool is_sint(gguf_vtype t) {
    return t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64;
}

/* Find key or fail with "missing". The error code is returned as a constant, not
 * through fr_err_set's return value: gcc -fanalyzer cannot see across translation
 * units that the latter is non-zero, and would report the getters' use of kv. */
static int find_req(const gguf_file *f, const char *key, const gguf_kv **kv, fr_err *err) {
    *kv = gguf_find_kv(f, key);
    if (!*kv) {
        fr_err_set(err, FRUGAL_E_FORMAT, "missing metadata key '%s'", key);
        return FRUGAL_E_FORMAT;
    }
    return FRUGAL_OK;
}

static int wrong_type(const gguf_kv *kv, const char *key, const char *want, fr_err *err) {
    const char *tn = gguf_vtype_name(kv->type);
    if (kv->type == GGUF_VT_ARRAY)
        return fr_err_set(err, FRUGAL_E_FORMAT, "metadata key '%s' is an array of %s, expected %s", key,
                          gguf_vtype_name(kv->arr_type), want);
    return fr_err_set(err, FRUGAL_E_FORMAT, "metadata key '%s' has type %s, expected %s", key, tn, want);
}

/* Integer value of kv within [lo, hi] (as int64 / uint64 semantics). */
static int get_int_range(const gguf_kv *kv, const char *key, int64_t lo, uint64_t hi, int64_t *out, fr_err *err) {
    if (is_uint(kv->type)) {
        if (kv->v.u64 > hi) goto range;
        *out = (int64_t)kv->v.u64;
        return FRUGAL_OK;
    }
    if (is_sint(kv->type)) {
        if (kv->v.i64 < lo || (kv->v.i64 >= 0 && (uint64_t)kv->v.i64 > hi)) goto range;
        *out = kv->v.i64;
        return FRUGAL_OK;
    }
    return wrong_type(kv, key, "an integer", err);
range:
    if (is_uint(kv->type))
        return fr_err_set(err, FRUGAL_E_FORMAT, "metadata key '%s' value %llu out of range", key,
                          (unsigned long long)kv->v.u64);
    return fr_err_set(err, FRUGAL_E_FORMAT, "metadata key '%s' value %lld out of range", key, (long long)kv->v.i64);
}

int gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out, fr_err *err) {
    const gguf_kv *kv;
    int64_t v = 0;
    int rc = find_req(f, key, &kv, err);
    if (rc || (rc = get_int_range(kv, key, 0, UINT32_MAX, &v, err))) return rc;
    *out = (uint32_t)v;
    return FRUGAL_OK;
}

int gguf_get_i32(const gguf_file *f, const char *key, int32_t *out, fr_err *err) {
    const gguf_kv *kv;
    int64_t v = 0;
    int rc = find_req(f, key, &kv, err);
    if (rc || (rc = get_int_range(kv, key, INT32_MIN, INT32_MAX, &v, err))) return rc;
    *out = (int32_t)v;
    return FRUGAL_OK;
}

/* Floats accept float types and, for convenience, integers (exactly representable
 * ones are what writers emit for things like rope scales). */
static int kv_f32(const gguf_kv *kv, const char *key, float *out, fr_err *err) {
    if (kv->type == GGUF_VT_FLOAT32 || kv->type == GGUF_VT_FLOAT64) { *out = (float)kv->v.f64; return FRUGAL_OK; }
    if (is_uint(kv->type)) { *out = (float)kv->v.u64; return FRUGAL_OK; }
    if (is_sint(kv->type)) { *out = (float)kv->v.i64; return FRUGAL_OK; }
    return wrong_type(kv, key, "a number", err);
}

int gguf_get_f32(const gguf_file *f, const char *key, float *out, fr_err *err) {
    const gguf_kv *kv;
    int rc = find_req(f, key, &kv, err);
    return rc ? rc : kv_f32(kv, key, out, err);
}

int gguf_get_bool(const gguf_file *f, const char *key, bool *out, fr_err *err) {
    const gguf_kv *kv;
    int rc = find_req(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_VT_BOOL) return wrong_type(kv, key, "bool", err);
    *out = kv->v.u64 != 0;
    return FRUGAL_OK;
}

int gguf_get_str(const gguf_file *f, const char *key, gguf_str *out, fr_err *err) {
    const gguf_kv *kv;
    int rc = find_req(f, key, &kv, err);
    if (rc) return rc;
    if (kv->type != GGUF_VT_STRING) return wrong_type(kv, key, "string", err);
    *out = kv->v.str;
    return FRUGAL_OK;
}

int gguf_get_u32_opt(const gguf_file *f, const char *key, uint32_t def, uint32_t *out, fr_err *err) {
    if (!gguf_find_kv(f, key)) { *out = def; return FRUGAL_OK; }
    return gguf_get_u32(f, key, out, err);
}

int gguf_get_f32_opt(const gguf_file *f, const char *key, float def, float *out, fr_err *err) {
    if (!gguf_find_kv(f, key)) { *out = def; return FRUGAL_OK; }
    return gguf_get_f32(f, key, out, err);
}

int gguf_get_bool_opt(const gguf_file *f, const char *key, bool def, bool *out, fr_err *err) {
    if (!gguf_find_kv(f, key)) { *out = def; return FRUGAL_OK; }
    return gguf_get_bool(f, key, out, err);
}

double gguf_arr_f64(const gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != GGUF_VT_ARRAY || i >= kv->arr_n) return 0.0;
    const uint8_t *p = kv->arr_data;
    uint64_t es = vtype_size(kv->arr_type);
    if (!es) return 0.0;
    uint64_t raw = rd_le(p + i * es, (int)es);
    switch (kv->arr_type) {
    case GGUF_VT_FLOAT32: { uint32_t b = (uint32_t)raw; float f; memcpy(&f, &b, 4); return f; }
    case GGUF_VT_FLOAT64: { double d; memcpy(&d, &raw, 8); return d; }
    case GGUF_VT_INT8: return (int8_t)(uint8_t)raw;
    case GGUF_VT_INT16: return (int16_t)(uint16_t)raw;
    case GGUF_VT_INT32: return (int32_t)(uint32_t)raw;
    case GGUF_VT_INT64: return (double)(int64_t)raw;
    default: return (double)raw;
    }
}

int64_t gguf_arr_i64(const gguf_kv *kv, uint64_t i) {
    if (!kv || kv->type != GGUF_VT_ARRAY || i >= kv->arr_n) return 0;
    const uint8_t *p = kv->arr_data;
    uint64_t es = vtype_size(kv->arr_type);
    if (!es) return 0;
    uint64_t raw = rd_le(p + i * es, (int)es);
    switch (kv->arr_type) {
    case GGUF_VT_FLOAT32: case GGUF_VT_FLOAT64: {
        /* out-of-range or NaN floats would be undefined to convert: give 0 */
        double d = gguf_arr_f64(kv, i);
        return (d > -9.2e18 && d < 9.2e18) ? (int64_t)d : 0;
    }
    case GGUF_VT_INT8: return (int8_t)(uint8_t)raw;
    case GGUF_VT_INT16: return (int16_t)(uint16_t)raw;
    case GGUF_VT_INT32: return (int32_t)(uint32_t)raw;
    default: return (int64_t)raw;
    }
}
