/* test_gguf.c - GGUF writer -> reader round trips, getters, real files, copy_kv,
 * and failing writes. */
#include "testutil.h"

#include "core/types.h"
#include "gguf/gguf.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_path[512];

static const char *tmp_path(const char *name) {
    snprintf(g_path, sizeof g_path, "%s/%s", tu_tmpdir(), name);
    return g_path;
}

static bool file_exists(const char *p) { return access(p, F_OK) == 0; }

/* Fill callback: deterministic bytes derived from the tensor index, counts calls. */
typedef struct fill_ctx { int calls; size_t last_index; size_t max_seen; int fail_at; } fill_ctx;

static uint8_t pattern(size_t index, size_t j) { return (uint8_t)(index * 31u + j * 7u + (j >> 8)); }

static int fill_cb(void *user, size_t index, void *dst, size_t nbytes, fr_err *err) {
    fill_ctx *c = user;
    c->calls++;
    c->last_index = index;
    if (nbytes > c->max_seen) c->max_seen = nbytes;
    if (c->fail_at >= 0 && (size_t)c->fail_at == index)
        return fr_err_set(err, FRUGAL_E_INTERNAL, "fill refused tensor %zu", index);
    for (size_t j = 0; j < nbytes; j++) ((uint8_t *)dst)[j] = pattern(index, j);
    return FRUGAL_OK;
}

/* Set a scalar of any numeric type through copy_kv (the writer has no direct
 * setter for u8/i8/u16/i16/i64/f64). */
static int set_via_copy(gguf_writer *w, const char *key, gguf_vtype t, uint64_t u, int64_t i, double f) {
    gguf_kv kv;
    memset(&kv, 0, sizeof kv);
    kv.key.ptr = key;
    kv.key.len = strlen(key);
    kv.type = t;
    if (t == GGUF_VT_FLOAT32 || t == GGUF_VT_FLOAT64) kv.v.f64 = f;
    else if (t == GGUF_VT_INT8 || t == GGUF_VT_INT16 || t == GGUF_VT_INT32 || t == GGUF_VT_INT64) kv.v.i64 = i;
    else kv.v.u64 = u;
    return gguf_writer_copy_kv(w, &kv);
}

typedef struct tspec { const char *name; uint32_t type; uint32_t n_dims; int64_t ne[4]; bool use_fill; } tspec;

static const tspec k_tensors[] = {
    {"f32.odd", FR_TYPE_F32, 2, {7, 3, 1, 1}, false},
    {"f16.vec", FR_TYPE_F16, 1, {5, 1, 1, 1}, false},
    {"q8_0.mat", FR_TYPE_Q8_0, 2, {64, 3, 1, 1}, true},
    {"q4_0.3d", FR_TYPE_Q4_0, 3, {32, 2, 3, 1}, false},
    {"f32.4d", FR_TYPE_F32, 4, {3, 1, 2, 5}, true},
};
#define N_T (sizeof k_tensors / sizeof k_tensors[0])

static void test_round_trip(uint32_t align) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return;
    if (align != 32) CHECK(gguf_writer_set_u32(w, "general.alignment", align) == FRUGAL_OK);
    CHECK(gguf_writer_set_str(w, "general.architecture", "testarch") == FRUGAL_OK);
    CHECK(gguf_writer_set_u32(w, "s.u32", 4000000000u) == FRUGAL_OK);
    CHECK(gguf_writer_set_i32(w, "s.i32", -123456) == FRUGAL_OK);
    CHECK(gguf_writer_set_u64(w, "s.u64", 0xFEDCBA9876543210ull) == FRUGAL_OK);
    CHECK(gguf_writer_set_f32(w, "s.f32", 0.1f) == FRUGAL_OK);
    CHECK(gguf_writer_set_bool(w, "s.bool_t", true) == FRUGAL_OK);
    CHECK(gguf_writer_set_bool(w, "s.bool_f", false) == FRUGAL_OK);
    CHECK(gguf_writer_set_str(w, "s.empty", "") == FRUGAL_OK);
    CHECK(gguf_writer_set_str(w, "s.replaced", "first") == FRUGAL_OK);
    CHECK(gguf_writer_set_str(w, "s.replaced", "second value") == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.u8", GGUF_VT_UINT8, 250, 0, 0) == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.i8", GGUF_VT_INT8, 0, -100, 0) == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.u16", GGUF_VT_UINT16, 65000, 0, 0) == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.i16", GGUF_VT_INT16, 0, -32000, 0) == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.i64", GGUF_VT_INT64, 0, INT64_MIN + 5, 0) == FRUGAL_OK);
    CHECK(set_via_copy(w, "s.f64", GGUF_VT_FLOAT64, 0, 0, 3.141592653589793) == FRUGAL_OK);

    /* one array of each numeric element type, with distinctive raw bytes */
    static const gguf_vtype num_types[] = {GGUF_VT_UINT8, GGUF_VT_INT8, GGUF_VT_UINT16, GGUF_VT_INT16,
                                           GGUF_VT_UINT32, GGUF_VT_INT32, GGUF_VT_FLOAT32, GGUF_VT_BOOL,
                                           GGUF_VT_UINT64, GGUF_VT_INT64, GGUF_VT_FLOAT64};
    static const size_t num_sizes[] = {1, 1, 2, 2, 4, 4, 4, 1, 8, 8, 8};
    uint8_t arr_bytes[11][8 * 9];
    uint64_t rng = 42;
    for (int a = 0; a < 11; a++) {
        for (size_t j = 0; j < sizeof arr_bytes[a]; j++) arr_bytes[a][j] = (uint8_t)tu_rand_u64(&rng);
        if (num_types[a] == GGUF_VT_BOOL)
            for (size_t j = 0; j < 9; j++) arr_bytes[a][j] &= 1;
        if (num_types[a] == GGUF_VT_FLOAT32 || num_types[a] == GGUF_VT_FLOAT64) {
            for (int j = 0; j < 9; j++) {   /* real floats so f64 conversion is testable */
                if (num_types[a] == GGUF_VT_FLOAT32) { float v = (float)j * 0.5f - 1.0f; memcpy(arr_bytes[a] + 4 * j, &v, 4); }
                else { double v = (double)j * 0.25 - 2.0; memcpy(arr_bytes[a] + 8 * j, &v, 8); }
            }
        }
        char key[32];
        snprintf(key, sizeof key, "a.%s", gguf_vtype_name(num_types[a]));
        CHECK(gguf_writer_set_arr(w, key, num_types[a], arr_bytes[a], 9) == FRUGAL_OK);
    }
    CHECK(gguf_writer_set_arr(w, "a.empty", GGUF_VT_INT32, NULL, 0) == FRUGAL_OK);
    gguf_str strs[4] = {{"hello", 5}, {"", 0}, {"with\0nul", 8}, {"\xe5\xb1\xb1", 3}};
    CHECK(gguf_writer_set_str_arr(w, "a.strings", strs, 4) == FRUGAL_OK);
    CHECK(gguf_writer_set_str_arr(w, "a.no_strings", NULL, 0) == FRUGAL_OK);
    /* bad arguments are refused */
    CHECK(gguf_writer_set_arr(w, "a.bad", GGUF_VT_STRING, "x", 1) == FRUGAL_E_INVALID_ARG);
    CHECK(gguf_writer_set_u32(w, "", 1) == FRUGAL_E_INVALID_ARG);
    CHECK(gguf_writer_set_u32(w, "bad\nkey", 1) == FRUGAL_E_INVALID_ARG);
    CHECK(gguf_writer_set_u32(w, "general.alignment", 3) == FRUGAL_E_INVALID_ARG);

    /* tensors: random bytes (exact round trip is what matters, not the values) */
    uint8_t *tdata[N_T];
    size_t tbytes[N_T];
    for (size_t i = 0; i < N_T; i++) {
        const tspec *s = &k_tensors[i];
        tbytes[i] = fr_row_size((fr_type)s->type, s->ne[0]) * (size_t)(s->ne[1] * s->ne[2] * s->ne[3]);
        tdata[i] = tu_malloc(tbytes[i]);
        for (size_t j = 0; j < tbytes[i]; j++) tdata[i][j] = s->use_fill ? pattern(i, j) : (uint8_t)tu_rand_u64(&rng);
        CHECK(gguf_writer_add_tensor(w, s->name, s->type, s->n_dims, s->ne, s->use_fill ? NULL : tdata[i]) == FRUGAL_OK);
    }
    int64_t bad_ne[2] = {33, 1};
    CHECK(gguf_writer_add_tensor(w, "bad.q4", FR_TYPE_Q4_0, 2, bad_ne, tdata[0]) == FRUGAL_E_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "f32.odd", FR_TYPE_F32, 1, bad_ne, tdata[0]) == FRUGAL_E_INVALID_ARG);
    CHECK(gguf_writer_add_tensor(w, "bad.type", 99, 1, bad_ne, tdata[0]) == FRUGAL_E_INVALID_ARG);

    char name[64];
    snprintf(name, sizeof name, "rt%u.gguf", align);
    char path[512];
    snprintf(path, sizeof path, "%s", tmp_path(name));
    fill_ctx fc = {0, 0, 0, -1};
    fr_err err = FRUGAL_ERROR_INIT;
    CHECKF(gguf_writer_write(w, path, fill_cb, &fc, &err) == FRUGAL_OK, "%s", err.message);
    CHECK(fc.calls == 2);                 /* once per tensor without data */
    CHECK(fc.last_index == 4);
    gguf_writer_free(w);
    CHECK(!tu_temp_left(path));

    gguf_file *f = NULL;
    fr_err_clear(&err);
    int rc = gguf_open(path, &f, &err);
    CHECKF(rc == FRUGAL_OK && f, "%s", err.message);
    if (!f) goto out;
    CHECK(f->version == 3);
    CHECK(f->alignment == align);
    CHECK(f->data_offset % align == 0);
    CHECK(strcmp(f->path, path) == 0);
    CHECK(f->n_kv == 15 + 11 + 3 + (align != 32));
    CHECK(f->size % align == 0);   /* the data of the last tensor is padded too */

    /* scalars */
    const gguf_kv *kv;
    kv = gguf_find_kv(f, "s.u32"); CHECK(kv && kv->type == GGUF_VT_UINT32 && kv->v.u64 == 4000000000u);
    kv = gguf_find_kv(f, "s.i32"); CHECK(kv && kv->type == GGUF_VT_INT32 && kv->v.i64 == -123456);
    kv = gguf_find_kv(f, "s.u64"); CHECK(kv && kv->type == GGUF_VT_UINT64 && kv->v.u64 == 0xFEDCBA9876543210ull);
    kv = gguf_find_kv(f, "s.f32"); CHECK(kv && kv->type == GGUF_VT_FLOAT32 && (float)kv->v.f64 == 0.1f);
    kv = gguf_find_kv(f, "s.u8"); CHECK(kv && kv->type == GGUF_VT_UINT8 && kv->v.u64 == 250);
    kv = gguf_find_kv(f, "s.i8"); CHECK(kv && kv->type == GGUF_VT_INT8 && kv->v.i64 == -100);
    kv = gguf_find_kv(f, "s.u16"); CHECK(kv && kv->type == GGUF_VT_UINT16 && kv->v.u64 == 65000);
    kv = gguf_find_kv(f, "s.i16"); CHECK(kv && kv->type == GGUF_VT_INT16 && kv->v.i64 == -32000);
    kv = gguf_find_kv(f, "s.i64"); CHECK(kv && kv->type == GGUF_VT_INT64 && kv->v.i64 == INT64_MIN + 5);
    kv = gguf_find_kv(f, "s.f64"); CHECK(kv && kv->type == GGUF_VT_FLOAT64 && kv->v.f64 == 3.141592653589793);
    kv = gguf_find_kv(f, "s.empty"); CHECK(kv && kv->type == GGUF_VT_STRING && kv->v.str.len == 0);
    kv = gguf_find_kv(f, "s.replaced"); CHECK(kv && gguf_str_eq(kv->v.str, "second value"));
    CHECK(gguf_find_kv(f, "s.missing") == NULL);
    CHECK(gguf_find_kv(f, "s.u3") == NULL);   /* prefix of a key is not a match */

    /* getters */
    uint32_t u32 = 0; int32_t i32 = 0; float f32 = 0; bool b = false; gguf_str s = {0};
    fr_err_clear(&err);
    CHECK(gguf_get_u32(f, "s.u8", &u32, &err) == FRUGAL_OK && u32 == 250);
    CHECK(gguf_get_u32(f, "s.u32", &u32, &err) == FRUGAL_OK && u32 == 4000000000u);
    CHECK(gguf_get_i32(f, "s.i16", &i32, &err) == FRUGAL_OK && i32 == -32000);
    CHECK(gguf_get_i32(f, "s.u16", &i32, &err) == FRUGAL_OK && i32 == 65000);
    CHECK(gguf_get_f32(f, "s.f64", &f32, &err) == FRUGAL_OK && f32 == (float)3.141592653589793);
    CHECK(gguf_get_bool(f, "s.bool_t", &b, &err) == FRUGAL_OK && b);
    CHECK(gguf_get_bool(f, "s.bool_f", &b, &err) == FRUGAL_OK && !b);
    CHECK(gguf_get_str(f, "general.architecture", &s, &err) == FRUGAL_OK && gguf_str_eq(s, "testarch"));
    CHECK(err.code == FRUGAL_OK);
    CHECK(gguf_get_i32(f, "s.u32", &i32, &err) == FRUGAL_E_FORMAT && strstr(err.message, "out of range"));
    fr_err_clear(&err);
    CHECK(gguf_get_u32(f, "s.i8", &u32, &err) == FRUGAL_E_FORMAT && strstr(err.message, "s.i8"));
    fr_err_clear(&err);
    CHECK(gguf_get_u32(f, "s.u64", &u32, &err) == FRUGAL_E_FORMAT);
    fr_err_clear(&err);
    CHECK(gguf_get_u32(f, "s.empty", &u32, &err) == FRUGAL_E_FORMAT && strstr(err.message, "string"));
    fr_err_clear(&err);
    CHECK(gguf_get_str(f, "s.u32", &s, &err) == FRUGAL_E_FORMAT);
    fr_err_clear(&err);
    CHECK(gguf_get_bool(f, "s.u8", &b, &err) == FRUGAL_E_FORMAT);
    fr_err_clear(&err);
    CHECK(gguf_get_u32(f, "nope", &u32, &err) == FRUGAL_E_FORMAT && strstr(err.message, "nope"));
    fr_err_clear(&err);
    CHECK(gguf_get_u32_opt(f, "nope", 7, &u32, &err) == FRUGAL_OK && u32 == 7);
    CHECK(gguf_get_f32_opt(f, "nope", 1.5f, &f32, &err) == FRUGAL_OK && f32 == 1.5f);
    CHECK(gguf_get_bool_opt(f, "nope", true, &b, &err) == FRUGAL_OK && b);
    CHECK(gguf_get_u32_opt(f, "s.u16", 7, &u32, &err) == FRUGAL_OK && u32 == 65000);
    CHECK(gguf_get_bool_opt(f, "s.empty", true, &b, &err) == FRUGAL_E_FORMAT);   /* wrong type still fails */
    fr_err_clear(&err);

    /* arrays */
    for (int a = 0; a < 11; a++) {
        char key[32];
        snprintf(key, sizeof key, "a.%s", gguf_vtype_name(num_types[a]));
        kv = gguf_find_kv(f, key);
        CHECKF(kv && kv->type == GGUF_VT_ARRAY && kv->arr_type == num_types[a] && kv->arr_n == 9, "%s", key);
        if (!kv || kv->arr_n != 9) continue;
        CHECKF(memcmp(kv->arr_data, arr_bytes[a], 9 * num_sizes[a]) == 0, "%s bytes", key);
    }
    kv = gguf_find_kv(f, "a.f32");
    CHECK(kv && gguf_arr_f64(kv, 3) == 0.5 && gguf_arr_i64(kv, 8) == 3);
    kv = gguf_find_kv(f, "a.f64");
    CHECK(kv && gguf_arr_f64(kv, 0) == -2.0 && gguf_arr_f64(kv, 9) == 0.0);
    kv = gguf_find_kv(f, "a.i16");
    if (kv) {
        int16_t v; memcpy(&v, arr_bytes[3] + 2 * 5, 2);
        CHECK(gguf_arr_i64(kv, 5) == v && gguf_arr_f64(kv, 5) == v);
    }
    kv = gguf_find_kv(f, "a.u64");
    if (kv) { uint64_t v; memcpy(&v, arr_bytes[8] + 8 * 2, 8); CHECK((uint64_t)gguf_arr_i64(kv, 2) == v); }
    kv = gguf_find_kv(f, "a.empty");
    CHECK(kv && kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_INT32 && kv->arr_n == 0);
    kv = gguf_find_kv(f, "a.no_strings");
    CHECK(kv && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 0);
    kv = gguf_find_kv(f, "a.strings");
    CHECK(kv && kv->arr_type == GGUF_VT_STRING && kv->arr_n == 4 && kv->arr_strs);
    if (kv && kv->arr_n == 4 && kv->arr_strs)
        for (int i = 0; i < 4; i++)
            CHECKF(kv->arr_strs[i].len == strs[i].len && memcmp(kv->arr_strs[i].ptr, strs[i].ptr, strs[i].len) == 0,
                   "string %d", i);

    /* tensors */
    CHECK(f->n_tensors == N_T);
    for (size_t i = 0; i < N_T && i < f->n_tensors; i++) {
        const tspec *sp = &k_tensors[i];
        const gguf_tensor *t = gguf_find_tensor(f, sp->name);
        CHECKF(t == &f->tensors[i], "%s", sp->name);   /* table order = addition order */
        if (!t) continue;
        CHECK(t->type == sp->type && t->n_dims == sp->n_dims);
        for (int d = 0; d < 4; d++) CHECK(t->ne[d] == sp->ne[d]);
        CHECK(t->nbytes == tbytes[i]);
        CHECK(t->offset % align == 0);
        CHECK((const uint8_t *)t->data == f->map + f->data_offset + t->offset);
        CHECKF(memcmp(t->data, tdata[i], tbytes[i]) == 0, "data of %s", sp->name);
    }
    CHECK(gguf_find_tensor(f, "nope") == NULL);
    /* padding between tensors is zero */
    if (f->n_tensors >= 2) {
        const gguf_tensor *t0 = &f->tensors[0], *t1 = &f->tensors[1];
        for (uint64_t o = t0->offset + t0->nbytes; o < t1->offset; o++) CHECK(f->map[f->data_offset + o] == 0);
    }
    gguf_close(f);
out:
    for (size_t i = 0; i < N_T; i++) free(tdata[i]);
}

static void test_write_failures(void) {
    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return;
    CHECK(gguf_writer_set_str(w, "general.architecture", "x") == FRUGAL_OK);
    int64_t ne[1] = {64};
    CHECK(gguf_writer_add_tensor(w, "t0", FR_TYPE_F32, 1, ne, NULL) == FRUGAL_OK);
    CHECK(gguf_writer_add_tensor(w, "t1", FR_TYPE_F32, 1, ne, NULL) == FRUGAL_OK);
    fr_err err = FRUGAL_ERROR_INIT;
    fill_ctx fc = {0, 0, 0, -1};

    /* no fill callback for a tensor without data */
    CHECK(gguf_writer_write(w, tmp_path("nofill.gguf"), NULL, NULL, &err) == FRUGAL_E_INVALID_ARG);
    CHECK(!file_exists(tmp_path("nofill.gguf")) && !tu_temp_left(tmp_path("nofill.gguf")));
    fr_err_clear(&err);

    /* missing directory */
    char p[800];
    snprintf(p, sizeof p, "%s/no/such/dir/x.gguf", tu_tmpdir());
    CHECK(gguf_writer_write(w, p, fill_cb, &fc, &err) == FRUGAL_E_IO);
    CHECK(err.message[0] != '\0' && strstr(err.message, "No such file"));
    fr_err_clear(&err);

    /* the fill callback fails half-way: error propagates, no temp file, no target */
    fc.fail_at = 1;
    CHECK(gguf_writer_write(w, tmp_path("failfill.gguf"), fill_cb, &fc, &err) == FRUGAL_E_INTERNAL);
    CHECK(strstr(err.message, "fill refused tensor 1") != NULL);
    CHECK(!file_exists(tmp_path("failfill.gguf")));
    CHECK(!tu_temp_left(tmp_path("failfill.gguf")));
    fr_err_clear(&err);

    /* read-only directory (root ignores permissions: skip that part then) */
    if (geteuid() != 0) {
        char dir[600];
        snprintf(dir, sizeof dir, "%s/ro", tu_tmpdir());
        CHECK(mkdir(dir, 0555) == 0);
        snprintf(p, sizeof p, "%s/x.gguf", dir);
        fc.fail_at = -1;
        CHECK(gguf_writer_write(w, p, fill_cb, &fc, &err) == FRUGAL_E_IO);
        CHECK(strstr(err.message, "ermission") != NULL);
        CHECK(!tu_temp_left(p) && !file_exists(p));
        rmdir(dir);
        fr_err_clear(&err);
    } else {
        printf("note: running as root, read-only directory case skipped\n");
    }

    /* the fill buffer is exactly nbytes and called in order */
    fc = (fill_ctx){0, 0, 0, -1};
    CHECK(gguf_writer_write(w, tmp_path("ok.gguf"), fill_cb, &fc, &err) == FRUGAL_OK);
    CHECK(fc.calls == 2 && fc.last_index == 1 && fc.max_seen == 256);
    gguf_writer_free(w);
}

/* Expected vocabulary size for the known shared files (from their documentation). */
static uint64_t expected_vocab(const char *name) {
    static const struct { const char *prefix; uint64_t n; } tab[] = {
        {"fortune-3m", 512}, {"stories260K", 512}, {"tinystories-xs", 512}, {"zh-poem", 1024},
        {"synth-spm", 32000}, {"synth-qwen2", 50257}, {"synth-gpt2", 50257},
        {"ggml-vocab-gpt-2", 50257}, {"ggml-vocab-llama-spm", 32000}, {"ggml-vocab-phi-3", 32064},
        {"ggml-vocab-deepseek-coder", 32256}, {"ggml-vocab-starcoder", 49152},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (strncmp(name, tab[i].prefix, strlen(tab[i].prefix)) == 0) return tab[i].n;
    return 0;
}

static int check_shared_dir(const char *sub, bool models) {
    const char *dirp = tu_shared(sub);
    if (!dirp) return 0;
    char dirbuf[4096];
    snprintf(dirbuf, sizeof dirbuf, "%s", dirp);
    DIR *d = opendir(dirbuf);
    if (!d) return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 5 || strcmp(de->d_name + l - 5, ".gguf") != 0) continue;
        char p[4400];
        snprintf(p, sizeof p, "%s/%s", dirbuf, de->d_name);
        gguf_file *f = NULL;
        fr_err err = FRUGAL_ERROR_INIT;
        int rc = gguf_open(p, &f, &err);
        CHECKF(rc == FRUGAL_OK, "%s: %s", de->d_name, err.message);
        if (rc) continue;
        n++;
        gguf_str arch = {0};
        CHECKF(gguf_get_str(f, "general.architecture", &arch, &err) == FRUGAL_OK && arch.len > 0, "%s", de->d_name);
        const gguf_kv *tok = gguf_find_kv(f, "tokenizer.ggml.tokens");
        CHECKF(tok && tok->type == GGUF_VT_ARRAY && tok->arr_type == GGUF_VT_STRING, "%s tokens", de->d_name);
        uint64_t want = expected_vocab(de->d_name);
        if (tok && want) CHECKF(tok->arr_n == want, "%s: %llu tokens", de->d_name, (unsigned long long)tok->arr_n);
        const gguf_kv *tt = gguf_find_kv(f, "tokenizer.ggml.token_type");
        if (tok && tt) CHECK(tt->type == GGUF_VT_ARRAY && tt->arr_n == tok->arr_n);
        /* every string of the vocabulary lies inside the mapping */
        if (tok && tok->arr_strs)
            for (uint64_t i = 0; i < tok->arr_n; i += 97)
                CHECK((const uint8_t *)tok->arr_strs[i].ptr >= f->map &&
                      (const uint8_t *)tok->arr_strs[i].ptr + tok->arr_strs[i].len <= f->map + f->size);
        if (models) {
            CHECKF(f->n_tensors > 0, "%s", de->d_name);
            uint64_t total = 0;
            for (uint64_t i = 0; i < f->n_tensors; i++) {
                const gguf_tensor *t = &f->tensors[i];
                CHECK((const uint8_t *)t->data >= f->map + f->data_offset);
                CHECK((const uint8_t *)t->data + t->nbytes <= f->map + f->size);
                CHECK(fr_type_name(t->type) != NULL);
                total += t->nbytes;
            }
            CHECK(total <= f->size - f->data_offset);
            const gguf_tensor *emb = gguf_find_tensor(f, "token_embd.weight");
            CHECKF(emb && tok && (uint64_t)emb->ne[1] == tok->arr_n, "%s token_embd", de->d_name);
            uint32_t n_embd = 0;
            char key[128];
            snprintf(key, sizeof key, "%.*s.embedding_length", (int)arch.len, arch.ptr);
            CHECKF(gguf_get_u32(f, key, &n_embd, &err) == FRUGAL_OK && emb && (int64_t)n_embd == emb->ne[0],
                   "%s: %s", de->d_name, err.message);
        } else {
            CHECK(f->n_tensors == 0);
        }
        gguf_close(f);
    }
    closedir(d);
    return n;
}

/* Copy every kv of a real vocab file into a new file; the re-read file must hold
 * identical keys, types and values, in the same order. */
static void test_copy_kv(void) {
    const char *src = tu_shared("vocab/ggml-vocab-llama-spm.gguf");
    if (!src) { printf("note: shared vocab absent, copy_kv test skipped\n"); return; }
    fr_err err = FRUGAL_ERROR_INIT;
    gguf_file *a = NULL, *b = NULL;
    CHECKF(gguf_open(src, &a, &err) == FRUGAL_OK, "%s", err.message);
    if (!a) return;
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < a->n_kv; i++) CHECK(gguf_writer_copy_kv(w, &a->kv[i]) == FRUGAL_OK);
    const char *out = tmp_path("copy.gguf");
    CHECKF(gguf_writer_write(w, out, NULL, NULL, &err) == FRUGAL_OK, "%s", err.message);
    gguf_writer_free(w);
    CHECKF(gguf_open(out, &b, &err) == FRUGAL_OK, "%s", err.message);
    if (b) {
        CHECK(b->n_kv == a->n_kv);
        for (uint64_t i = 0; i < a->n_kv && i < b->n_kv; i++) {
            const gguf_kv *x = &a->kv[i], *y = &b->kv[i];
            CHECK(x->key.len == y->key.len && memcmp(x->key.ptr, y->key.ptr, x->key.len) == 0);
            CHECK(x->type == y->type);
            if (x->type != y->type) continue;
            if (x->type == GGUF_VT_STRING) {
                CHECK(x->v.str.len == y->v.str.len && memcmp(x->v.str.ptr, y->v.str.ptr, x->v.str.len) == 0);
            } else if (x->type == GGUF_VT_ARRAY) {
                CHECK(x->arr_type == y->arr_type && x->arr_n == y->arr_n);
                if (x->arr_type != y->arr_type || x->arr_n != y->arr_n) continue;
                if (x->arr_type == GGUF_VT_STRING) {
                    uint64_t bad = 0;
                    for (uint64_t j = 0; j < x->arr_n; j++)
                        bad += x->arr_strs[j].len != y->arr_strs[j].len ||
                               memcmp(x->arr_strs[j].ptr, y->arr_strs[j].ptr, x->arr_strs[j].len) != 0;
                    CHECKF(bad == 0, "%llu strings differ", (unsigned long long)bad);
                } else {
                    static const size_t es[GGUF_VT_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
                    CHECK(memcmp(x->arr_data, y->arr_data, (size_t)x->arr_n * es[x->arr_type]) == 0);
                }
            } else {
                CHECK(memcmp(&x->v, &y->v, sizeof x->v.u64) == 0);
            }
        }
        gguf_close(b);
    }
    gguf_close(a);
}

/* Re-writing a llama.cpp-produced model (all kvs copied, tensors pointing into the
 * source mapping) must reproduce the file byte for byte: same layout, offsets,
 * padding. */
static void test_rewrite_identical(const char *rel) {
    const char *src = tu_shared(rel);
    if (!src) { printf("note: %s absent, rewrite test skipped\n", rel); return; }
    char srcp[4096];
    snprintf(srcp, sizeof srcp, "%s", src);
    fr_err err = FRUGAL_ERROR_INIT;
    gguf_file *a = NULL;
    CHECKF(gguf_open(srcp, &a, &err) == FRUGAL_OK, "%s", err.message);
    if (!a) return;
    gguf_writer *w = gguf_writer_new();
    for (uint64_t i = 0; i < a->n_kv; i++) CHECK(gguf_writer_copy_kv(w, &a->kv[i]) == FRUGAL_OK);
    for (uint64_t i = 0; i < a->n_tensors; i++) {
        const gguf_tensor *t = &a->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        CHECK(gguf_writer_add_tensor(w, name, t->type, t->n_dims, t->ne, t->data) == FRUGAL_OK);
    }
    const char *out = tmp_path("rewrite.gguf");
    CHECKF(gguf_writer_write(w, out, NULL, NULL, &err) == FRUGAL_OK, "%s", err.message);
    gguf_writer_free(w);
    size_t n = 0;
    char *bytes = tu_read_file(out, &n);
    CHECKF(bytes && n == a->size && memcmp(bytes, a->map, n) == 0, "%s: rewrite differs (%zu vs %llu bytes)", rel, n,
           (unsigned long long)a->size);
    free(bytes);
    unlink(out);
    gguf_close(a);
}

static void cleanup(void) {
    static const char *names[] = {"rt32.gguf", "rt64.gguf", "ok.gguf", "copy.gguf", "rewrite.gguf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
    rmdir(tu_tmpdir());
}

static void test_open_errors(void) {
    gguf_file *f = (gguf_file *)&f;   /* must be reset to NULL on failure */
    fr_err err = FRUGAL_ERROR_INIT;
    CHECK(gguf_open(tmp_path("does-not-exist.gguf"), &f, &err) == FRUGAL_E_IO && f == NULL);
    CHECK(err.message[0] != '\0');
}

int main(void) {
    test_round_trip(32);
    test_round_trip(64);
    test_write_failures();
    test_open_errors();
    int nm = check_shared_dir("models", true);
    int nv = check_shared_dir("vocab", false);
    if (!nm && !nv) printf("note: shared models/vocab absent, real-file checks skipped\n");
    else printf("opened %d model files and %d vocab files\n", nm, nv);
    test_copy_kv();
    test_rewrite_identical("models/tinystories-xs-q4_0.gguf");
    test_rewrite_identical("models/fortune-3m-q4_k_m.gguf");
    cleanup();
    return tu_finish("test_gguf");
}
