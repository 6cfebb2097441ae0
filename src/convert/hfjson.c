/* hfjson.c - reading JSON files of a Hugging Face folder (see hfjson.h). */
#include "core/fault.h"
#include "convert/hfjson.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The largest JSON file read whole: tokenizer.json of a 256k vocabulary is ~20 MB. */
#define HJ_MAX_BYTES ((long)512 << 20)

bool hj_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *hj_path(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *p = fr_malloc(a + b + 2);
    if (!p) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

static int read_all(const char *path, char **buf, size_t *len, fr_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fr_err_set(err, FRUGAL_E_IO, "%s: %s", path, errno == ENOENT ? "missing" : strerror(errno));
    char *p = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n < 0 || n > HJ_MAX_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fr_err_set(err, FRUGAL_E_IO, "%s: not a readable file of at most 512 MiB", path);
    }
    if (!(p = fr_malloc((size_t)n + 1))) {
        fclose(f);
        return fr_err_set(err, FRUGAL_E_NOMEM, "%s: out of memory reading %ld bytes", path, n);
    }
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(p);
        return fr_err_set(err, FRUGAL_E_IO, "%s: short read", path);
    }
    p[n] = 0;
    *buf = p;
    *len = (size_t)n;
    return FRUGAL_OK;
}

int hj_load(const char *path, cJSON **out, fr_err *err) {
    char *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = read_all(path, &buf, &len, err);
    if (rc) return rc;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
    if (!j) {
        long at = end ? (long)(end - buf) : -1;
        free(buf);
        return fr_err_set(err, FRUGAL_E_FORMAT, "%s: not valid JSON (near byte %ld)", path, at);
    }
    free(buf);
    *out = j;
    return FRUGAL_OK;
}

bool hj_num(const cJSON *o, const char *key, double *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(x)) return false;
    *v = x->valuedouble;
    return true;
}

bool hj_int(const cJSON *o, const char *key, int64_t *v) {
    double d;
    if (!hj_num(o, key, &d) || d != floor(d) || fabs(d) > 9007199254740992.0) return false;
    *v = (int64_t)d;
    return true;
}

bool hj_bool(const cJSON *o, const char *key, bool *v) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(x)) return false;
    *v = cJSON_IsTrue(x);
    return true;
}

const char *hj_str(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

const cJSON *hj_obj(const cJSON *o, const char *key) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsObject(x) ? x : NULL;
}
