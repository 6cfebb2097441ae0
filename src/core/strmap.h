/* strmap.h - open-addressing hash map from byte strings to int32 values.
 *
 * Keys are NOT copied: the map stores pointers to caller-owned bytes, which must
 * outlive it (the tokenizer keeps all token texts in one pool). Built once and
 * then only read, so there is no deletion. Lookups can also be made on a key
 * given in two parts joined by one separator byte (a + sep + b) without building
 * the concatenation, which is how BPE merge pairs "a b" are found. */
#ifndef FRUGAL_STRMAP_H
#define FRUGAL_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct fr_strmap_entry {
    const char *key;   /* NULL marks an empty slot */
    uint32_t len;
    int32_t val;
    uint64_t hash;
} fr_strmap_entry;

typedef struct fr_strmap {
    fr_strmap_entry *slots;
    size_t cap;   /* power of two, or 0 */
    size_t n;
} fr_strmap;

/* Prepare an empty map sized for about n_expected keys. FRUGAL_OK or FRUGAL_E_NOMEM. */
int fr_strmap_init(fr_strmap *m, size_t n_expected);
void fr_strmap_free(fr_strmap *m);

/* Insert key -> val unless key is already present (then the first value is kept and
 * *existing, if non-NULL, receives it). Returns FRUGAL_OK or FRUGAL_E_NOMEM. The
 * key bytes must stay valid for the map's lifetime. */
int fr_strmap_put(fr_strmap *m, const char *key, size_t len, int32_t val, int32_t *existing);

/* Value stored for key, or -1 when absent. */
int32_t fr_strmap_get(const fr_strmap *m, const char *key, size_t len);

/* Value stored for the key a + sep + b (one separator byte), or -1. */
int32_t fr_strmap_get2(const fr_strmap *m, const char *a, size_t alen, char sep,
                       const char *b, size_t blen);

#endif
