#include "core/fault.h"
#include "core/strmap.h"

#include <stdlib.h>
#include <string.h>

#include "frugal.h"

/* FNV-1a, 64-bit. Token texts are short, so a byte-at-a-time hash is cheap, and it
 * can be computed incrementally, which get2 needs to hash "a sep b" in pieces. */
#define FNV_OFFSET 0xcbf29ce484222325ull
#define FNV_PRIME 0x100000001b3ull

static uint64_t fnv_add(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* Final avalanche so that the low bits used for the slot index are well mixed. */
static uint64_t mix(uint64_t h) {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

int fr_strmap_init(fr_strmap *m, size_t n_expected) {
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    /* keep the load factor at or below 1/2 so probe chains stay short */
    while (cap < n_expected * 2) {
        if (cap > SIZE_MAX / 4) return FRUGAL_E_NOMEM;
        cap *= 2;
    }
    m->slots = fr_calloc(cap, sizeof *m->slots);
    if (!m->slots) return FRUGAL_E_NOMEM;
    m->cap = cap;
    return FRUGAL_OK;
}

void fr_strmap_free(fr_strmap *m) {
    if (!m) return;
    free(m->slots);
    memset(m, 0, sizeof *m);
}

/* Double the table, re-inserting every entry by its stored hash. */
static int grow(fr_strmap *m) {
    if (m->cap > SIZE_MAX / (2 * sizeof *m->slots)) return FRUGAL_E_NOMEM;
    size_t ncap = m->cap * 2;
    fr_strmap_entry *ns = fr_calloc(ncap, sizeof *ns);
    if (!ns) return FRUGAL_E_NOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].key) continue;
        size_t j = (size_t)m->slots[i].hash & (ncap - 1);
        while (ns[j].key) j = (j + 1) & (ncap - 1);
        ns[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return FRUGAL_OK;
}

int fr_strmap_put(fr_strmap *m, const char *key, size_t len, int32_t val, int32_t *existing) {
    if (!key || len > UINT32_MAX) return FRUGAL_E_INVALID_ARG;
    if (m->cap == 0 || (m->n + 1) * 2 > m->cap) {
        int rc = m->cap == 0 ? fr_strmap_init(m, 8) : grow(m);
        if (rc != FRUGAL_OK) return rc;
    }
    uint64_t h = mix(fnv_add(FNV_OFFSET, key, len));
    size_t j = (size_t)h & (m->cap - 1);
    while (m->slots[j].key) {
        fr_strmap_entry *e = &m->slots[j];
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0) {
            if (existing) *existing = e->val;
            return FRUGAL_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j] = (fr_strmap_entry){ .key = key, .len = (uint32_t)len, .val = val, .hash = h };
    m->n++;
    if (existing) *existing = -1;
    return FRUGAL_OK;
}

int32_t fr_strmap_get(const fr_strmap *m, const char *key, size_t len) {
    if (!m->cap || (!key && len)) return -1;
    uint64_t h = mix(fnv_add(FNV_OFFSET, key, len));
    for (size_t j = (size_t)h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const fr_strmap_entry *e = &m->slots[j];
        if (!e->key) return -1;
        if (e->hash == h && e->len == len && (len == 0 || memcmp(e->key, key, len) == 0))
            return e->val;
    }
}

int32_t fr_strmap_get2(const fr_strmap *m, const char *a, size_t alen, char sep,
                       const char *b, size_t blen) {
    if (!m->cap || (!a && alen) || (!b && blen)) return -1;
    uint64_t h = fnv_add(FNV_OFFSET, a, alen);
    h = fnv_add(h, &sep, 1);
    h = mix(fnv_add(h, b, blen));
    size_t len = alen + 1 + blen;
    for (size_t j = (size_t)h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const fr_strmap_entry *e = &m->slots[j];
        if (!e->key) return -1;
        if (e->hash == h && e->len == len && (alen == 0 || memcmp(e->key, a, alen) == 0) &&
            e->key[alen] == sep && (blen == 0 || memcmp(e->key + alen + 1, b, blen) == 0))
            return e->val;
    }
}
