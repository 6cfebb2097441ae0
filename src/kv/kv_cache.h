/* kv_cache.h - the key/value cache of one sequence: for each layer, K and V rows
 * of n_head_kv * head_dim values per position, stored as F32 or F16.
 * (Quantized, paged, windowed and disk-tiered caches come with the KV issue; they
 * keep this interface: write a position, read rows back for attention.) */
#ifndef FRUGAL_KV_CACHE_H
#define FRUGAL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/types.h"

typedef struct fr_kv_cache {
    fr_type type;        /* FR_TYPE_F32 or FR_TYPE_F16 */
    int n_layer;
    int n_ctx;
    int row;             /* values per position per layer (n_head_kv * head_dim) */
    size_t row_bytes;
    uint8_t *k, *v;      /* [n_layer][n_ctx][row] each */
    size_t bytes;        /* total bytes of k + v */
    int n;               /* positions filled */
} fr_kv_cache;

int fr_kv_init(fr_kv_cache *kv, fr_type type, int n_layer, int n_ctx, int row, fr_err *err);
void fr_kv_free(fr_kv_cache *kv);
/* Store the K and V rows (F32) of position pos in layer il. */
void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v);
/* Pointers to the stored rows of layer il (row_bytes apart, type kv->type). */
const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos);
const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos);

#endif
