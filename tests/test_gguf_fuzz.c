/* test_gguf_fuzz.c - the GGUF reader on bad input: truncations at every offset,
 * byte corruptions everywhere in the header/metadata/tensor table, and hand-made
 * hostile headers. The reader must fail cleanly with a specific message, or open
 * a file whose every pointer lies inside the mapping; never crash or allocate
 * absurd amounts (RLIMIT_AS enforces that outside sanitizer builds). */
#include "testutil.h"

#include "core/types.h"
#include "gguf/gguf.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_path[512];

static bool write_bytes(const char *path, const uint8_t *b, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return false;
    bool ok = n == 0 || write(fd, b, n) == (ssize_t)n;
    close(fd);
    return ok;
}

/* A successfully opened file must only hand out pointers inside its mapping, and
 * its sizes must be self-consistent. Returns false (after CHECK output) if not. */
static bool sane(const gguf_file *f) {
    bool ok = true;
    const uint8_t *lo = f->map, *hi = f->map + f->size;
    for (uint64_t i = 0; i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        const uint8_t *d = t->data;
        ok &= d >= lo + f->data_offset && t->nbytes <= (uint64_t)(hi - d);
        ok &= t->n_dims >= 1 && t->n_dims <= 4;
        int64_t rows = 1;
        for (int k = 0; k < 4; k++) ok &= t->ne[k] >= 1;
        for (int k = 1; k < 4; k++) rows *= t->ne[k];
        ok &= t->nbytes == fr_row_size((fr_type)t->type, t->ne[0]) * (uint64_t)rows;
        ok &= t->offset % f->alignment == 0;
        ok &= (const uint8_t *)t->name.ptr >= lo && t->name.len <= (uint64_t)(hi - (const uint8_t *)t->name.ptr);
    }
    for (uint64_t i = 0; i < f->n_kv; i++) {
        const gguf_kv *kv = &f->kv[i];
        ok &= (const uint8_t *)kv->key.ptr >= lo && kv->key.len <= (uint64_t)(hi - (const uint8_t *)kv->key.ptr);
        if (kv->type == GGUF_VT_STRING)
            ok &= (const uint8_t *)kv->v.str.ptr >= lo &&
                  kv->v.str.len <= (uint64_t)(hi - (const uint8_t *)kv->v.str.ptr);
        if (kv->type == GGUF_VT_ARRAY && kv->arr_type == GGUF_VT_STRING)
            for (uint64_t j = 0; j < kv->arr_n; j++)
                ok &= (const uint8_t *)kv->arr_strs[j].ptr >= lo &&
                      kv->arr_strs[j].len <= (uint64_t)(hi - (const uint8_t *)kv->arr_strs[j].ptr);
        if (kv->type == GGUF_VT_ARRAY && kv->arr_n) {   /* exercise element access */
            volatile double x = gguf_arr_f64(kv, kv->arr_n - 1);
            volatile int64_t y = gguf_arr_i64(kv, 0);
            (void)x; (void)y;
        }
    }
    CHECK(ok);
    return ok;
}

/* Open bytes b[0..n) as a file; returns the status and checks the failure contract. */
static int open_bytes(const uint8_t *b, size_t n, fr_err *err) {
    fr_err_clear(err);
    if (!write_bytes(g_path, b, n)) { CHECK(!"write failed"); return -1; }
    gguf_file *f = (gguf_file *)1;
    int rc = gguf_open(g_path, &f, err);
    if (rc == FRUGAL_OK) {
        CHECK(f != NULL);
        if (f) { sane(f); gguf_close(f); }
    } else {
        CHECK(f == NULL);
        CHECK(err->code == rc && err->message[0] != '\0');
    }
    return rc;
}

/* ------------------------------------------------------------ valid base file */

static uint8_t *build_valid(size_t *len, uint64_t *data_offset, uint64_t *data_end) {
    gguf_writer *w = gguf_writer_new();
    CHECK(gguf_writer_set_str(w, "general.architecture", "llama") == FRUGAL_OK);
    CHECK(gguf_writer_set_u32(w, "llama.block_count", 2) == FRUGAL_OK);
    CHECK(gguf_writer_set_f32(w, "llama.rope.freq_base", 10000.0f) == FRUGAL_OK);
    CHECK(gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true) == FRUGAL_OK);
    gguf_str toks[5] = {{"<s>", 3}, {"</s>", 4}, {"a", 1}, {"bc", 2}, {"", 0}};
    CHECK(gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", toks, 5) == FRUGAL_OK);
    int32_t types[5] = {3, 3, 1, 1, 1};
    CHECK(gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, 5) == FRUGAL_OK);
    static uint8_t data[4096];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 13 + 1);
    int64_t ne0[2] = {8, 2}, ne1[2] = {32, 2}, ne2[1] = {6};
    CHECK(gguf_writer_add_tensor(w, "a.weight", FR_TYPE_F32, 2, ne0, data) == FRUGAL_OK);
    CHECK(gguf_writer_add_tensor(w, "b.weight", FR_TYPE_Q8_0, 2, ne1, data) == FRUGAL_OK);
    CHECK(gguf_writer_add_tensor(w, "c.norm", FR_TYPE_F16, 1, ne2, data) == FRUGAL_OK);
    fr_err err = FRUGAL_ERROR_INIT;
    char p[600];
    snprintf(p, sizeof p, "%s/base.gguf", tu_tmpdir());
    CHECKF(gguf_writer_write(w, p, NULL, NULL, &err) == FRUGAL_OK, "%s", err.message);
    gguf_writer_free(w);
    uint8_t *b = (uint8_t *)tu_read_file(p, len);
    gguf_file *f = NULL;
    CHECKF(gguf_open(p, &f, &err) == FRUGAL_OK, "%s", err.message);
    if (!b || !f) { free(b); gguf_close(f); return NULL; }
    *data_offset = f->data_offset;
    const gguf_tensor *last = &f->tensors[f->n_tensors - 1];
    *data_end = f->data_offset + last->offset + last->nbytes;
    gguf_close(f);
    return b;
}

static void test_truncations(const uint8_t *b, uint64_t data_offset, uint64_t data_end) {
    fr_err err = FRUGAL_ERROR_INIT;
    int bad = 0;
    for (uint64_t n = 0; n <= data_offset; n++) {
        int rc = open_bytes(b, (size_t)n, &err);
        if (rc != FRUGAL_E_FORMAT) { bad++; if (bad < 5) CHECKF(0, "truncated at %llu: rc %d", (unsigned long long)n, rc); }
        else if (!strstr(err.message, "truncated")) {
            bad++;
            if (bad < 5) CHECKF(0, "truncated at %llu: message '%s'", (unsigned long long)n, err.message);
        }
    }
    CHECK(bad == 0);
    /* inside the data section: every tensor that extends past the cut is caught */
    for (uint64_t n = data_offset + 1; n < data_end; n += 7) {
        int rc = open_bytes(b, (size_t)n, &err);
        CHECKF(rc == FRUGAL_E_FORMAT && strstr(err.message, "past the end"), "cut at %llu: %d %s",
               (unsigned long long)n, rc, err.message);
    }
    CHECK(open_bytes(b, (size_t)data_end - 1, &err) == FRUGAL_E_FORMAT);
    CHECK(open_bytes(b, (size_t)data_end, &err) == FRUGAL_OK);
}

static void test_corruptions(const uint8_t *base, size_t len, uint64_t data_offset) {
    uint8_t *b = tu_malloc(len);
    fr_err err = FRUGAL_ERROR_INIT;
    int n_ok = 0, n_fail = 0, bad_code = 0;
    static const int modes = 4;
    for (uint64_t off = 0; off < data_offset; off++) {
        for (int m = 0; m < modes; m++) {
            memcpy(b, base, len);
            switch (m) {
            case 0: b[off] ^= 0x01; break;
            case 1: b[off] ^= 0x80; break;
            case 2: b[off] = 0xFF; break;
            default: b[off] = 0x00; break;
            }
            int rc = open_bytes(b, len, &err);
            if (rc == FRUGAL_OK) n_ok++;
            else n_fail++;
            /* corrupt input is a format problem (or a valid-but-unsupported type id) */
            if (rc != FRUGAL_OK && rc != FRUGAL_E_FORMAT && rc != FRUGAL_E_UNSUPPORTED) {
                if (++bad_code < 5) CHECKF(0, "offset %llu mode %d: rc %d %s", (unsigned long long)off, m, rc, err.message);
            }
        }
    }
    CHECK(bad_code == 0);
    CHECK(n_fail > 0);   /* e.g. the magic bytes */
    /* random multi-byte corruptions with fixed seeds */
    uint64_t rng = 12345;
    for (int iter = 0; iter < 400; iter++) {
        memcpy(b, base, len);
        int k = 2 + (int)(tu_rand_u64(&rng) % 6);
        for (int j = 0; j < k; j++) {
            uint64_t off = tu_rand_u64(&rng) % data_offset;
            b[off] = (uint8_t)tu_rand_u64(&rng);
        }
        int rc = open_bytes(b, len, &err);
        CHECKF(rc == FRUGAL_OK || rc == FRUGAL_E_FORMAT || rc == FRUGAL_E_UNSUPPORTED, "iter %d rc %d", iter, rc);
    }
    printf("corruptions: %d opened, %d rejected\n", n_ok, n_fail);
    free(b);
}

/* ------------------------------------------------------------ hostile headers */

typedef struct hb { uint8_t b[8192]; size_t n; } hb;

static void u32(hb *h, uint32_t v) { for (int i = 0; i < 4; i++) h->b[h->n++] = (uint8_t)(v >> 8 * i); }
static void u64(hb *h, uint64_t v) { for (int i = 0; i < 8; i++) h->b[h->n++] = (uint8_t)(v >> 8 * i); }
static void str(hb *h, const char *s) {
    size_t l = strlen(s);
    u64(h, l);
    memcpy(h->b + h->n, s, l);
    h->n += l;
}
static void header(hb *h, uint32_t version, uint64_t n_t, uint64_t n_kv) {
    h->n = 0;
    memcpy(h->b, "GGUF", 4);
    h->n = 4;
    u32(h, version);
    u64(h, n_t);
    u64(h, n_kv);
}
static void kv_u32(hb *h, const char *k, uint32_t v) { str(h, k); u32(h, GGUF_VT_UINT32); u32(h, v); }
static void tinfo(hb *h, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    str(h, name);
    u32(h, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) u64(h, ne[i]);
    u32(h, type);
    u64(h, off);
}
/* Pad to 32 and append `n` data bytes. */
static void data(hb *h, size_t n) {
    while (h->n % 32) h->b[h->n++] = 0;
    memset(h->b + h->n, 0x11, n);
    h->n += n;
}

static void expect(hb *h, int code, const char *needle, const char *label) {
    fr_err err = FRUGAL_ERROR_INIT;
    int rc = open_bytes(h->b, h->n, &err);
    CHECKF(rc == code, "%s: rc %d (want %d): %s", label, rc, code, err.message);
    if (needle) CHECKF(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", label, err.message, needle);
}

static void test_hostile(void) {
    hb h;
    uint64_t ne[5] = {4, 1, 1, 1, 1};

    header(&h, 3, 0, 1ull << 63); expect(&h, FRUGAL_E_FORMAT, "metadata keys", "n_kv 2^63");
    header(&h, 3, 1ull << 60, 0); expect(&h, FRUGAL_E_FORMAT, "tensors", "n_tensors 2^60");
    header(&h, 3, 0, 1); u64(&h, UINT64_MAX); u32(&h, 4); u32(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "metadata key 0", "key length 2^64-1");
    header(&h, 3, 0, 1); str(&h, "k.str"); u32(&h, GGUF_VT_STRING); u64(&h, UINT64_MAX); u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "k.str", "string value length 2^64-1");
    header(&h, 3, 0, 1); str(&h, "big.array"); u32(&h, GGUF_VT_ARRAY); u32(&h, GGUF_VT_UINT32); u64(&h, 1ull << 62);
    u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "big.array", "array count huge");
    header(&h, 3, 0, 1); str(&h, "big.strs"); u32(&h, GGUF_VT_ARRAY); u32(&h, GGUF_VT_STRING); u64(&h, UINT64_MAX);
    u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "big.strs", "string array count huge");
    header(&h, 3, 0, 1); str(&h, "nest"); u32(&h, GGUF_VT_ARRAY); u32(&h, GGUF_VT_ARRAY); u64(&h, 1); u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "nested", "nested array");
    header(&h, 3, 0, 1); str(&h, "vt13"); u32(&h, 13); u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "unknown value type 13", "value type 13");
    header(&h, 3, 0, 1); str(&h, "arr13"); u32(&h, GGUF_VT_ARRAY); u32(&h, 13); u64(&h, 1); u64(&h, 0);
    expect(&h, FRUGAL_E_FORMAT, "arr13", "array element type 13");
    header(&h, 3, 0, 1); str(&h, "b"); u32(&h, GGUF_VT_BOOL); h.b[h.n++] = 2;
    expect(&h, FRUGAL_E_FORMAT, "bool", "bool byte 2");
    header(&h, 3, 0, 2); kv_u32(&h, "dup.key", 1); kv_u32(&h, "dup.key", 2);
    expect(&h, FRUGAL_E_FORMAT, "duplicate metadata key 'dup.key'", "duplicate key");
    header(&h, 3, 0, 1); str(&h, "bad\x01key"); u32(&h, GGUF_VT_UINT8); h.b[h.n++] = 0;
    expect(&h, FRUGAL_E_FORMAT, "bad\\x01key", "control byte in key");
    /* a long key is quoted truncated in a truncation message */
    header(&h, 3, 0, 1);
    char longkey[301];
    memset(longkey, 'k', 300); longkey[300] = 0;
    str(&h, longkey); u32(&h, GGUF_VT_UINT32);
    expect(&h, FRUGAL_E_FORMAT, "kkk...') needs 4 more bytes", "long key truncated");

    header(&h, 3, 0, 1); kv_u32(&h, "general.alignment", 0); expect(&h, FRUGAL_E_FORMAT, "alignment", "alignment 0");
    header(&h, 3, 0, 1); kv_u32(&h, "general.alignment", 3); expect(&h, FRUGAL_E_FORMAT, "alignment", "alignment 3");
    header(&h, 3, 0, 1); str(&h, "general.alignment"); u32(&h, GGUF_VT_UINT64); u64(&h, 32);
    expect(&h, FRUGAL_E_FORMAT, "alignment", "alignment u64");

    header(&h, 1, 0, 0); expect(&h, FRUGAL_E_FORMAT, "version 1", "v1");
    header(&h, 4, 0, 0); expect(&h, FRUGAL_E_FORMAT, "version 4", "v4");
    header(&h, 3, 0, 0); h.b[0] = 'X'; expect(&h, FRUGAL_E_FORMAT, "magic", "bad magic");
    memcpy(h.b, "GGML", 4); h.n = 4; expect(&h, FRUGAL_E_FORMAT, "magic", "ggml magic");
    h.n = 0; expect(&h, FRUGAL_E_FORMAT, "empty", "empty file");
    memcpy(h.b, "GG", 2); h.n = 2; expect(&h, FRUGAL_E_FORMAT, "truncated", "2-byte file");
    /* vocab-only file ending right after the metadata (no padding): fine */
    header(&h, 3, 0, 1); kv_u32(&h, "x", 1); expect(&h, FRUGAL_OK, NULL, "no tensors, no padding");
    header(&h, 2, 0, 0); expect(&h, FRUGAL_OK, NULL, "v2 empty");

    /* tensor table */
    header(&h, 3, 1, 0); tinfo(&h, "w.dims", 5, ne, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "n_dims", "n_dims 5");
    header(&h, 3, 1, 0); tinfo(&h, "w.dims0", 0, ne, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "n_dims", "n_dims 0");
    uint64_t big[2] = {1ull << 32, 1ull << 32};
    header(&h, 3, 1, 0); tinfo(&h, "w.big", 2, big, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "overflow", "ne product 2^64");
    uint64_t big2[2] = {1ull << 62, 4};
    header(&h, 3, 1, 0); tinfo(&h, "w.big2", 2, big2, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "overflow", "ne product 2^64 (int64)");
    uint64_t big3[1] = {1ull << 61};
    header(&h, 3, 1, 0); tinfo(&h, "w.big3", 1, big3, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "'w.big3'", "byte size 2^63");
    uint64_t neg[1] = {1ull << 63};
    header(&h, 3, 1, 0); tinfo(&h, "w.neg", 1, neg, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "dimension", "ne 2^63");
    uint64_t zero[2] = {4, 0};
    header(&h, 3, 1, 0); tinfo(&h, "w.zero", 2, zero, FR_TYPE_F32, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "dimension 1", "ne 0");
    header(&h, 3, 1, 0); tinfo(&h, "w.far", 1, ne, FR_TYPE_F32, UINT64_MAX - 31); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "'w.far'", "offset near UINT64_MAX");
    header(&h, 3, 1, 0); tinfo(&h, "w.mis", 1, ne, FR_TYPE_F32, 4); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "alignment", "misaligned offset");
    header(&h, 3, 1, 0); tinfo(&h, "w.t99", 1, ne, 99, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "unknown type id 99", "type 99");
    header(&h, 3, 1, 0); tinfo(&h, "w.t4", 1, ne, 4, 0); data(&h, 64);
    expect(&h, FRUGAL_E_UNSUPPORTED, "Q4_2", "removed type 4");
    uint64_t q33[1] = {33};
    header(&h, 3, 1, 0); tinfo(&h, "w.q4", 1, q33, FR_TYPE_Q4_0, 0); data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "block size", "Q4_0 row 33");
    header(&h, 3, 2, 0); tinfo(&h, "w.dup", 1, ne, FR_TYPE_F32, 0); tinfo(&h, "w.dup", 1, ne, FR_TYPE_F32, 32);
    data(&h, 64);
    expect(&h, FRUGAL_E_FORMAT, "duplicate tensor name 'w.dup'", "duplicate tensor");
    header(&h, 3, 1, 0); tinfo(&h, "w.short", 1, ne, FR_TYPE_F32, 0); data(&h, 15);
    expect(&h, FRUGAL_E_FORMAT, "'w.short'", "data 1 byte short");
    header(&h, 3, 1, 0); tinfo(&h, "w.ok", 1, ne, FR_TYPE_F32, 0); data(&h, 16);
    expect(&h, FRUGAL_OK, NULL, "exact fit");
    /* a known layout we cannot compute with is listed, not rejected (inspect needs it) */
    uint64_t n256[1] = {256};
    header(&h, 3, 1, 0); tinfo(&h, "w.iq2", 1, n256, 16, 0); data(&h, 66);
    expect(&h, FRUGAL_OK, NULL, "IQ2_XXS listed");
    header(&h, 3, 1, 1); kv_u32(&h, "general.alignment", 64); tinfo(&h, "w.a64", 1, ne, FR_TYPE_F32, 32); data(&h, 128);
    expect(&h, FRUGAL_E_FORMAT, "alignment 64", "offset 32 with alignment 64");

    /* paths */
    fr_err err = FRUGAL_ERROR_INIT;
    gguf_file *f = NULL;
    CHECK(gguf_open(tu_tmpdir(), &f, &err) == FRUGAL_E_IO && f == NULL && strstr(err.message, "directory"));
    fr_err_clear(&err);
    char p[600];
    snprintf(p, sizeof p, "%s/nonexistent.gguf", tu_tmpdir());
    CHECK(gguf_open(p, &f, &err) == FRUGAL_E_IO && f == NULL && strstr(err.message, "No such file"));
}

int main(void) {
#if !TU_SANITIZED /* the sanitizers reserve terabytes of address space */
    /* A reader that trusted a corrupted count would try a multi-GB allocation:
     * make that fail loudly (NOMEM, which the checks reject) instead of swapping. */
    struct rlimit rl = {1ull << 30, 1ull << 30};
    setrlimit(RLIMIT_AS, &rl);
#endif
    snprintf(g_path, sizeof g_path, "%s/fuzz.gguf", tu_tmpdir());
    size_t len = 0;
    uint64_t data_offset = 0, data_end = 0;
    uint8_t *base = build_valid(&len, &data_offset, &data_end);
    CHECK(base != NULL);
    if (base) {
        printf("base file: %zu bytes, data at %llu\n", len, (unsigned long long)data_offset);
        test_truncations(base, data_offset, data_end);
        test_corruptions(base, len, data_offset);
    }
    free(base);
    test_hostile();
    unlink(g_path);
    char p[600];
    snprintf(p, sizeof p, "%s/base.gguf", tu_tmpdir());
    unlink(p);
    rmdir(tu_tmpdir());
    return tu_finish("test_gguf_fuzz");
}
