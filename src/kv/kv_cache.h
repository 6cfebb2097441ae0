/* kv_cache.h - the key/value cache of one sequence: for each layer, K and V rows
 * of n_head_kv * head_dim values per position. K and V each have their own storage
 * type: F32, F16, or a 32-value block format (Q8_0, Q4_0) whose blocks run along
 * the head dimension, so every head's slice is whole blocks and attention can take
 * dot products with it directly. Rows are written once, when a token is appended.
 * (Paged, windowed and disk-tiered caches come with the KV issue; they keep this
 * interface: store a position, read rows back for attention.) */
#ifndef FRUGAL_KV_CACHE_H
#define FRUGAL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/types.h"

typedef struct fr_kv_cache {
    fr_type k_type, v_type;
    int n_layer;
    int n_ctx;
    int row;             /* values per position per layer (n_head_kv * head_dim) */
    size_t k_row_bytes, v_row_bytes;
    uint8_t *k, *v;      /* [n_layer][n_ctx][row] each */
    size_t bytes;        /* total bytes of k + v */
    int n;               /* positions filled */
} fr_kv_cache;

/* kv_type: FRUGAL_KV_*. head_dim: for the block-size check of quantized types. */
int fr_kv_init(fr_kv_cache *kv, int kv_type, int n_layer, int n_ctx, int row, int head_dim, fr_err *err);
void fr_kv_free(fr_kv_cache *kv);
/* Store the K and V rows (F32) of position pos in layer il. */
void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v);
/* Pointers to the stored rows of layer il. */
const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos);
/* Decode / re-encode one stored K row (F32 <-> the cache type). */
void fr_kv_k_get(const fr_kv_cache *kv, int il, int pos, float *out);
void fr_kv_k_put(fr_kv_cache *kv, int il, int pos, const float *k);
void fr_kv_v_get(const fr_kv_cache *kv, int il, int pos, float *out);
void fr_kv_v_put(fr_kv_cache *kv, int il, int pos, const float *v);
/* Drop positions [first, first + n) of every layer: later rows move down by n.
 * (Keys then need re-rotation by the caller, who knows the RoPE parameters.) */
void fr_kv_remove(fr_kv_cache *kv, int first, int n);
const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos);

#endif
