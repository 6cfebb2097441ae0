/* safetensors.c - the safetensors reader (see safetensors.h). */
#include "core/fault.h"
#include "convert/safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "convert/hfjson.h"

/* A header above this is not a model's (a 100k-tensor model's is ~10 MB). */
#define ST_MAX_HEADER ((uint64_t)100 << 20)

size_t st_elem_size(fr_type t) { return t == FR_TYPE_F32 ? 4 : 2; }

void st_tensors_free(st_tensor *t, size_t n) {
    if (!t) return;
    for (size_t i = 0; i < n; i++) free(t[i].name);
    free(t);
}

static int parse_dtype(const char *name, const char *s, fr_type *t, fr_err *err) {
    if (!s) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': no dtype string", name);
    if (!strcmp(s, "F32")) *t = FR_TYPE_F32;
    else if (!strcmp(s, "F16")) *t = FR_TYPE_F16;
    else if (!strcmp(s, "BF16")) *t = FR_TYPE_BF16;
    else return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': unsupported dtype '%.32s' (F32, F16 and BF16 are)", name, s);
    return FRUGAL_OK;
}

/* A JSON number that is an integer in [0, 2^53]. */
static bool as_u53(const cJSON *x, uint64_t *v) {
    if (!cJSON_IsNumber(x)) return false;
    double d = x->valuedouble;
    if (!(d >= 0.0) || d > 9007199254740992.0 || d != floor(d)) return false;
    *v = (uint64_t)d;
    return true;
}

static int parse_entry(const cJSON *e, uint64_t data_len, st_tensor *t, fr_err *err) {
    const char *name = t->name;
    if (!cJSON_IsObject(e)) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': entry is not an object", name);
    int rc = parse_dtype(name, hj_str(e, "dtype"), &t->dtype, err);
    if (rc) return rc;
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(sh)) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': shape is not a list", name);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': %d dimensions (at most %d)", name, nd, ST_MAX_DIMS);
    t->n_dims = nd;
    uint64_t n_el = 1;
    for (int i = 0; i < nd; i++) {
        uint64_t d;
        if (!as_u53(cJSON_GetArrayItem(sh, i), &d) || d > ((uint64_t)1 << 40))
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': shape[%d] is not a size", name, i);
        t->shape[i] = (int64_t)d;
        if (d && n_el > UINT64_MAX / 8 / d) return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': shape too large", name);
        n_el *= d;
    }
    uint64_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !as_u53(cJSON_GetArrayItem(off, 0), &b) ||
        !as_u53(cJSON_GetArrayItem(off, 1), &en) || b > en)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': data_offsets is not [begin, end] with begin <= end", name);
    if (en > data_len)
        return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': data_offsets [%llu, %llu] run past the end of the data (%llu bytes): file truncated?",
                          name, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (en - b != n_el * st_elem_size(t->dtype))
        return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s': %llu bytes for %llu elements of %s",
                          name, (unsigned long long)(en - b), (unsigned long long)n_el, hj_str(e, "dtype"));
    t->begin = b;
    t->nbytes = en - b;
    return FRUGAL_OK;
}

static int cmp_begin(const void *a, const void *b) {
    const st_tensor *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->nbytes < y->nbytes ? -1 : x->nbytes > y->nbytes;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

/* No two non-empty byte ranges overlap; names unique. Sorts t by name. */
static int check_layout(st_tensor *t, size_t n, fr_err *err) {
    qsort(t, n, sizeof *t, cmp_begin);
    for (size_t i = 1; i < n; i++)
        if (t[i - 1].nbytes && t[i].begin < t[i - 1].begin + t[i - 1].nbytes)
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensors '%s' and '%s': data ranges overlap", t[i - 1].name, t[i].name);
    qsort(t, n, sizeof *t, cmp_name);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(t[i - 1].name, t[i].name))
            return fr_err_set(err, FRUGAL_E_FORMAT, "tensor '%s' appears twice", t[i].name);
    return FRUGAL_OK;
}

int st_parse_header(const char *json, size_t len, uint64_t data_len, st_tensor **out, size_t *n, fr_err *err) {
    *out = NULL;
    *n = 0;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, NULL, 0);
    if (!root) return fr_err_set(err, FRUGAL_E_FORMAT, "header is not valid JSON");
    int rc = FRUGAL_OK;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fr_err_set(err, FRUGAL_E_FORMAT, "header is not a JSON object");
    }
    size_t cap = (size_t)cJSON_GetArraySize(root), k = 0;
    st_tensor *t = fr_calloc(cap ? cap : 1, sizeof *t);
    if (!t) {
        cJSON_Delete(root);
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory for %zu tensors", cap);
    }
    for (const cJSON *e = root->child; e && !rc; e = e->next) {
        if (!e->string) { rc = fr_err_set(err, FRUGAL_E_FORMAT, "header entry without a name"); break; }
        if (!strcmp(e->string, "__metadata__")) continue;
        if (!(t[k].name = fr_strdup(e->string))) { rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); break; }
        rc = parse_entry(e, data_len, &t[k++], err);
    }
    cJSON_Delete(root);
    if (!rc) rc = check_layout(t, k, err);
    if (rc) {
        st_tensors_free(t, k);
        return rc;
    }
    *out = t;
    *n = k;
    return FRUGAL_OK;
}

/* Map one file and parse its header; tensors get data pointers and shard index. */
static int open_file(const char *path, int shard, const uint8_t **map, uint64_t *size, st_tensor **t, size_t *n,
                     fr_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fr_err_set(err, FRUGAL_E_IO, "%s: %s", path, errno == ENOENT ? "missing" : strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fr_err_set(err, FRUGAL_E_IO, "%s: not a regular file", path);
    }
    uint64_t sz = (uint64_t)st.st_size;
    if (sz < 8) {
        close(fd);
        return fr_err_set(err, FRUGAL_E_FORMAT, "%s: %llu bytes, too short for a safetensors header (truncated?)", path,
                          (unsigned long long)sz);
    }
    void *p = mmap(NULL, (size_t)sz, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return fr_err_set(err, FRUGAL_E_IO, "%s: mmap: %s", path, strerror(errno));
    const uint8_t *m = p;
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | m[i];
    int rc;
    if (hl > ST_MAX_HEADER || hl > sz - 8)
        rc = fr_err_set(err, FRUGAL_E_FORMAT, "header length %llu runs past the end of the file (%llu bytes): truncated or not safetensors",
                        (unsigned long long)hl, (unsigned long long)sz);
    else
        rc = st_parse_header((const char *)m + 8, (size_t)hl, sz - 8 - hl, t, n, err);
    if (rc) {
        munmap(p, (size_t)sz);
        fr_err_prefix(err, path);
        return rc;
    }
    for (size_t i = 0; i < *n; i++) {
        (*t)[i].data = m + 8 + hl + (*t)[i].begin;
        (*t)[i].shard = shard;
    }
    *map = m;
    *size = sz;
    return FRUGAL_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The shard file names of an index (sorted, unique) into m->paths. */
static int index_files(const char *dir, const cJSON *wm, const char *ipath, st_model *m, fr_err *err) {
    int n = cJSON_GetArraySize(wm);
    char **names = fr_calloc(n ? (size_t)n : 1, sizeof *names);
    if (!names) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    int k = 0;
    for (const cJSON *e = wm->child; e; e = e->next) {
        if (!cJSON_IsString(e) || strchr(e->valuestring, '/') || !e->valuestring[0]) {
            free(names);
            return fr_err_set(err, FRUGAL_E_FORMAT, "%s: weight_map entry '%s' is not a file name in the folder", ipath,
                              e->string ? e->string : "?");
        }
        names[k++] = e->valuestring;
    }
    qsort(names, (size_t)k, sizeof *names, cmp_str);
    m->paths = fr_calloc(k ? (size_t)k : 1, sizeof *m->paths);
    if (!m->paths) { free(names); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
    for (int i = 0; i < k; i++) {
        if (i && !strcmp(names[i], names[i - 1])) continue;
        if (!(m->paths[m->n_files++] = hj_path(dir, names[i]))) { free(names); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
    }
    free(names);
    return FRUGAL_OK;
}

static int open_all(st_model *m, fr_err *err) {
    m->maps = fr_calloc((size_t)m->n_files, sizeof *m->maps);
    m->sizes = fr_calloc((size_t)m->n_files, sizeof *m->sizes);
    if (!m->maps || !m->sizes) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int i = 0; i < m->n_files; i++) {
        st_tensor *t;
        size_t n;
        int rc = open_file(m->paths[i], i, &m->maps[i], &m->sizes[i], &t, &n, err);
        if (rc) return rc;
        st_tensor *all = fr_realloc(m->tensors, (m->n_tensors + n + 1) * sizeof *all);
        if (!all) { st_tensors_free(t, n); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
        memcpy(all + m->n_tensors, t, n * sizeof *t);
        free(t);
        m->tensors = all;
        m->n_tensors += n;
    }
    qsort(m->tensors, m->n_tensors, sizeof *m->tensors, cmp_name);
    for (size_t i = 1; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i - 1].name, m->tensors[i].name))
            return fr_err_set(err, FRUGAL_E_FORMAT, "%s: tensor '%s' is also in %s", m->paths[m->tensors[i].shard],
                              m->tensors[i].name, m->paths[m->tensors[i - 1].shard]);
    return FRUGAL_OK;
}

/* Every index entry is in the shard the index names. */
static int check_index(const st_model *m, const cJSON *wm, const char *ipath, fr_err *err) {
    for (const cJSON *e = wm->child; e; e = e->next) {
        const st_tensor *t = st_model_find(m, e->string);
        const char *f = t ? strrchr(m->paths[t->shard], '/') + 1 : NULL;
        if (!t || strcmp(f, e->valuestring))
            return fr_err_set(err, FRUGAL_E_FORMAT, "%s: tensor '%s' is not in %s", ipath, e->string, e->valuestring);
    }
    return FRUGAL_OK;
}

int st_model_open(const char *dir, st_model **out, fr_err *err) {
    *out = NULL;
    st_model *m = fr_calloc(1, sizeof *m);
    char *ipath = hj_path(dir, "model.safetensors.index.json");
    if (!m || !ipath) { free(m); free(ipath); return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory"); }
    cJSON *idx = NULL;
    const cJSON *wm = NULL;
    int rc = FRUGAL_OK;
    if (hj_exists(ipath)) {
        if (!(rc = hj_load(ipath, &idx, err)) && !(wm = hj_obj(idx, "weight_map")))
            rc = fr_err_set(err, FRUGAL_E_FORMAT, "%s: no \"weight_map\" object", ipath);
        if (!rc) rc = index_files(dir, wm, ipath, m, err);
    } else {
        m->paths = fr_calloc(1, sizeof *m->paths);
        if (!m->paths || !(m->paths[0] = hj_path(dir, "model.safetensors")))
            rc = fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        else if (!hj_exists(m->paths[0]))
            rc = fr_err_set(err, FRUGAL_E_IO, "%s: missing (and no model.safetensors.index.json)", m->paths[0]);
        m->n_files = m->paths ? 1 : 0;
    }
    if (!rc) rc = open_all(m, err);
    if (!rc && wm) rc = check_index(m, wm, ipath, err);
    cJSON_Delete(idx);
    free(ipath);
    if (rc) { st_model_close(m); return rc; }
    *out = m;
    return FRUGAL_OK;
}

void st_model_close(st_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_files; i++) {
        if (m->maps && m->maps[i]) munmap((void *)m->maps[i], (size_t)m->sizes[i]);
        free(m->paths[i]);
    }
    free(m->paths);
    free(m->maps);
    free(m->sizes);
    st_tensors_free(m->tensors, m->n_tensors);
    free(m);
}

const st_tensor *st_model_find(const st_model *m, const char *name) {
    size_t lo = 0, hi = m->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->tensors[mid].name, name);
        if (!c) return &m->tensors[mid];
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return NULL;
}

void st_release_range(const st_model *m, int shard, const uint8_t *p, size_t n) {
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE), base = (uintptr_t)m->maps[shard];
    uintptr_t a = ((uintptr_t)p - base) / pg * pg + base, b = (uintptr_t)p + n;
    if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}

void st_release(const st_model *m, const st_tensor *t) { st_release_range(m, t->shard, t->data, t->nbytes); }
