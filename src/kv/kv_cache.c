#include "kv/kv_cache.h"

#include <stdlib.h>
#include <string.h>

#include "frugal.h"
#include "mem/alloc.h"

int frugal_kv_type_parse(const char *name) {
    static const char *names[] = {"f32", "f16", "q8_0", "q4_0", "k8v4"};
    for (int i = 0; name && i < 5; i++)
        if (!strcmp(name, names[i])) return i;
    return -1;
}

const char *frugal_kv_type_name(int kv_type) {
    static const char *names[] = {"f32", "f16", "q8_0", "q4_0", "k8v4"};
    return kv_type >= 0 && kv_type < 5 ? names[kv_type] : "unknown";
}

int fr_kv_init(fr_kv_cache *kv, int kv_type, int n_layer, int n_ctx, int row, int head_dim, fr_err *err) {
    memset(kv, 0, sizeof *kv);
    static const fr_type k_of[] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_Q8_0, FR_TYPE_Q4_0, FR_TYPE_Q8_0};
    static const fr_type v_of[] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_Q8_0, FR_TYPE_Q4_0, FR_TYPE_Q4_0};
    if (kv_type < 0 || kv_type > 4)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "unknown KV cache type %d", kv_type);
    kv->k_type = k_of[kv_type];
    kv->v_type = v_of[kv_type];
    if (kv_type >= 2 && head_dim % 32)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                          "KV cache type %s needs a head dimension that is a multiple of 32 (this model's is %d)",
                          frugal_kv_type_name(kv_type), head_dim);
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->row = row;
    kv->k_row_bytes = fr_row_size(kv->k_type, row);
    kv->v_row_bytes = fr_row_size(kv->v_type, row);
    size_t nk = (size_t)n_layer * (size_t)n_ctx * kv->k_row_bytes;
    size_t nv = (size_t)n_layer * (size_t)n_ctx * kv->v_row_bytes;
    kv->bytes = nk + nv;
    kv->k = fr_mem_alloc(FR_MEM_KV, nk);
    kv->v = fr_mem_alloc(FR_MEM_KV, nv);
    if (!kv->k || !kv->v) {
        fr_kv_free(kv);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate KV cache (%zu MiB for %d tokens)",
                          (nk + nv) >> 20, n_ctx);
    }
    return FRUGAL_OK;
}

void fr_kv_free(fr_kv_cache *kv) {
    fr_mem_free(FR_MEM_KV, kv->k, (size_t)kv->n_layer * (size_t)kv->n_ctx * kv->k_row_bytes);
    fr_mem_free(FR_MEM_KV, kv->v, (size_t)kv->n_layer * (size_t)kv->n_ctx * kv->v_row_bytes);
    kv->k = kv->v = NULL;
}

/* Convert one F32 row to the cache type. Q8_0 uses the activation quantizer, as
 * llama.cpp's CPU copy into a Q8_0 cache does; the others the file quantizers. */
static void put_row(fr_type type, const float *src, uint8_t *dst, int n) {
    const fr_type_traits *t = fr_type_traits_get(type);
    if (type == FR_TYPE_F32) memcpy(dst, src, (size_t)n * sizeof(float));
    else (t->act_from_float ? t->act_from_float : t->from_float)(src, dst, n);
}

void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v) {
    size_t slot = (size_t)il * kv->n_ctx + (size_t)pos;
    put_row(kv->k_type, k, kv->k + slot * kv->k_row_bytes, kv->row);
    put_row(kv->v_type, v, kv->v + slot * kv->v_row_bytes, kv->row);
}

const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos) {
    return kv->k + ((size_t)il * kv->n_ctx + (size_t)pos) * kv->k_row_bytes;
}
const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos) {
    return kv->v + ((size_t)il * kv->n_ctx + (size_t)pos) * kv->v_row_bytes;
}

void fr_kv_k_get(const fr_kv_cache *kv, int il, int pos, float *out) {
    const uint8_t *src = fr_kv_k(kv, il, pos);
    if (kv->k_type == FR_TYPE_F32) memcpy(out, src, (size_t)kv->row * sizeof(float));
    else fr_type_traits_get(kv->k_type)->to_float(src, out, kv->row);
}

void fr_kv_v_get(const fr_kv_cache *kv, int il, int pos, float *out) {
    const uint8_t *src = fr_kv_v(kv, il, pos);
    if (kv->v_type == FR_TYPE_F32) memcpy(out, src, (size_t)kv->row * sizeof(float));
    else fr_type_traits_get(kv->v_type)->to_float(src, out, kv->row);
}

void fr_kv_v_put(fr_kv_cache *kv, int il, int pos, const float *v) {
    put_row(kv->v_type, v, kv->v + ((size_t)il * kv->n_ctx + (size_t)pos) * kv->v_row_bytes, kv->row);
}

void fr_kv_k_put(fr_kv_cache *kv, int il, int pos, const float *k) {
    put_row(kv->k_type, k, kv->k + ((size_t)il * kv->n_ctx + (size_t)pos) * kv->k_row_bytes, kv->row);
}

void fr_kv_remove(fr_kv_cache *kv, int first, int n) {
    if (n <= 0 || first < 0 || first + n > kv->n) return;
    int tail = kv->n - first - n;
    for (int il = 0; il < kv->n_layer; il++) {
        uint8_t *kb = kv->k + (size_t)il * kv->n_ctx * kv->k_row_bytes;
        uint8_t *vb = kv->v + (size_t)il * kv->n_ctx * kv->v_row_bytes;
        memmove(kb + (size_t)first * kv->k_row_bytes, kb + (size_t)(first + n) * kv->k_row_bytes,
                (size_t)tail * kv->k_row_bytes);
        memmove(vb + (size_t)first * kv->v_row_bytes, vb + (size_t)(first + n) * kv->v_row_bytes,
                (size_t)tail * kv->v_row_bytes);
    }
    kv->n -= n;
}

int frugal_kv_policy_parse(const char *text, frugal_context_params *out) {
    /* key:value pairs; the first key names the policy */
    int window = 0, sinks = 4, chunk = 0, keep = 64, seen_sinks = 0, seen_keep = 0;
    if (!text || !out) return -1;
    const char *p = text;
    while (*p) {
        static const char *keys[] = {"window:", "sinks:", "summary:", "keep:"};
        int *dst[] = {&window, &sinks, &chunk, &keep};
        int k = 0;
        while (k < 4 && strncmp(p, keys[k], strlen(keys[k]))) k++;
        if (k == 4) return -1;
        p += strlen(keys[k]);
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > (1 << 24)) return -1;
        *dst[k] = (int)v;
        seen_sinks |= k == 1;
        seen_keep |= k == 3;
        p = end;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    if ((window > 0) == (chunk > 0)) return -1;      /* exactly one policy */
    if ((window && seen_keep) || (chunk && seen_sinks)) return -1;
    if (chunk && chunk < 2) return -1;
    out->kv_window = window;
    out->kv_sinks = window ? sinks : 0;
    out->kv_chunk = chunk;
    out->kv_keep = chunk ? keep : 0;
    return 0;
}
