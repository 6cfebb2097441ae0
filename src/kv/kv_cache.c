#include "kv/kv_cache.h"

#include <string.h>

#include "mem/alloc.h"

int fr_kv_init(fr_kv_cache *kv, fr_type type, int n_layer, int n_ctx, int row, fr_err *err) {
    memset(kv, 0, sizeof *kv);
    if (type != FR_TYPE_F32 && type != FR_TYPE_F16)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "KV cache type must be f32 or f16");
    kv->type = type;
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->row = row;
    kv->row_bytes = fr_row_size(type, row);
    size_t half = (size_t)n_layer * (size_t)n_ctx * kv->row_bytes;
    kv->bytes = 2 * half;
    kv->k = fr_mem_alloc(FR_MEM_KV, half);
    kv->v = fr_mem_alloc(FR_MEM_KV, half);
    if (!kv->k || !kv->v) {
        fr_kv_free(kv);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate KV cache (%zu MiB for %d tokens)",
                          2 * half >> 20, n_ctx);
    }
    return FRUGAL_OK;
}

void fr_kv_free(fr_kv_cache *kv) {
    size_t half = (size_t)kv->n_layer * (size_t)kv->n_ctx * kv->row_bytes;
    fr_mem_free(FR_MEM_KV, kv->k, half);
    fr_mem_free(FR_MEM_KV, kv->v, half);
    kv->k = kv->v = NULL;
}

static uint8_t *slot(uint8_t *base, const fr_kv_cache *kv, int il, int pos) {
    return base + ((size_t)il * kv->n_ctx + (size_t)pos) * kv->row_bytes;
}

void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v) {
    uint8_t *dk = slot(kv->k, kv, il, pos), *dv = slot(kv->v, kv, il, pos);
    if (kv->type == FR_TYPE_F32) {
        memcpy(dk, k, kv->row_bytes);
        memcpy(dv, v, kv->row_bytes);
    } else {
        uint16_t *hk = (uint16_t *)dk, *hv = (uint16_t *)dv;
        for (int i = 0; i < kv->row; i++) {
            hk[i] = fr_f32_to_f16(k[i]);
            hv[i] = fr_f32_to_f16(v[i]);
        }
    }
}

const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos) { return slot(kv->k, kv, il, pos); }
const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos) { return slot(kv->v, kv, il, pos); }
