/* meta_api.c - frugal_model_meta_str: string metadata of a loaded model.
 *
 * GGUF strings live in the read-only mapping without a terminating NUL, so callers
 * get a NUL-terminated copy. The model struct is shared with other code and has no
 * room for a cache, so the copies live in a process-wide list keyed by the address
 * of the string in the mapping (verified by length and content on every hit, so a
 * later model mapped at the same address cannot be served a stale copy). Copies
 * are never freed: a handful of small strings per process, and a pointer handed out
 * must not dangle. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "frugal.h"
#include "gguf/gguf.h"
#include "model/model.h"

typedef struct meta_copy {
    const char *src;        /* where the string lives in the mapping */
    uint64_t len;
    char *copy;
    struct meta_copy *next;
} meta_copy;

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static meta_copy *g_copies;

const char *frugal_model_meta_str(const frugal_model *m, const char *key) {
    if (!m || !m->file || !key) return NULL;
    const gguf_kv *kv = gguf_find_kv(m->file, key);
    if (!kv || kv->type != GGUF_VT_STRING) return NULL;
    gguf_str s = kv->v.str;
    if (s.len >= SIZE_MAX) return NULL;
    const char *out = NULL;
    pthread_mutex_lock(&g_mu);
    for (meta_copy *c = g_copies; c && !out; c = c->next)
        if (c->src == s.ptr && c->len == s.len && memcmp(c->copy, s.ptr, (size_t)s.len) == 0) out = c->copy;
    if (!out) {
        meta_copy *c = fr_malloc(sizeof *c);
        char *copy = fr_malloc((size_t)s.len + 1);
        if (c && copy) {
            memcpy(copy, s.ptr, (size_t)s.len);
            copy[s.len] = '\0';
            *c = (meta_copy){s.ptr, s.len, copy, g_copies};
            g_copies = c;
            out = copy;
        } else {
            free(c);
            free(copy);
        }
    }
    pthread_mutex_unlock(&g_mu);
    return out;
}
