#include "core/fault.h"
#include "kernels/dispatch.h"
#include "kv/kv_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

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

static const fr_type k_of[] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_Q8_0, FR_TYPE_Q4_0, FR_TYPE_Q8_0};
static const fr_type v_of[] = {FR_TYPE_F32, FR_TYPE_F16, FR_TYPE_Q8_0, FR_TYPE_Q4_0, FR_TYPE_Q4_0};

int fr_kv_swa_slots(int window, int n_seq, int n_ubatch, int n_blocks) {
    const long per_seq = ((long)window - 1 + n_ubatch + FR_KV_BLOCK - 1) / FR_KV_BLOCK + 1;
    const long n = per_seq * (n_seq > 0 ? n_seq : 1);
    return n < n_blocks ? (int)n : n_blocks;
}

uint64_t fr_kv_pool_bytes(int kv_type, int row, int n_global, int n_blocks, int n_local, int n_slots) {
    if (kv_type < 0 || kv_type > 4) return 0;
    const uint64_t page = FR_KV_BLOCK * (uint64_t)(fr_row_size(k_of[kv_type], row) + fr_row_size(v_of[kv_type], row));
    return page * ((uint64_t)n_global * (uint64_t)n_blocks + (uint64_t)n_local * (uint64_t)n_slots);
}

/* The sliding-window part of a RAM pool: which layers, their ranks, the slots. */
static int swa_init(fr_kv_pool *p, const fr_kv_swa_cfg *swa, fr_err *err) {
    p->swa_local = fr_malloc((size_t)p->n_layer);
    p->layer_rank = fr_malloc(sizeof(int) * (size_t)p->n_layer);
    p->slot_of = fr_malloc(sizeof(int) * (size_t)p->n_blocks);
    p->free_slots = fr_malloc(sizeof(int) * (size_t)(swa->n_slots > 0 ? swa->n_slots : 1));
    if (!p->swa_local || !p->layer_rank || !p->slot_of || !p->free_slots)
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory (KV pool tables)");
    int n_global = 0;
    for (int il = 0; il < p->n_layer; il++) {
        p->swa_local[il] = swa->local[il] ? 1 : 0;
        p->layer_rank[il] = p->swa_local[il] ? p->n_local++ : n_global++;
    }
    p->swa_window = swa->window;
    p->n_slots = swa->n_slots;
    for (int b = 0; b < p->n_blocks; b++) p->slot_of[b] = -1;
    for (int i = 0; i < p->n_slots; i++) p->free_slots[i] = p->n_slots - 1 - i;
    p->n_free_slots = p->n_slots;
    return FRUGAL_OK;
}

int fr_kv_pool_init(fr_kv_pool *p, int kv_type, int n_layer, int n_tokens, int row, int head_dim,
                    const char *disk_dir, uint64_t ram_bytes, const fr_kv_swa_cfg *swa, fr_err *err) {
    memset(p, 0, sizeof *p);
    if (kv_type < 0 || kv_type > 4)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "unknown KV cache type %d", kv_type);
    if (kv_type >= 2 && head_dim % 32)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                          "KV cache type %s needs a head dimension that is a multiple of 32 (this model's is %d)",
                          frugal_kv_type_name(kv_type), head_dim);
    p->k_type = k_of[kv_type];
    p->v_type = v_of[kv_type];
    p->n_layer = n_layer;
    if (head_dim <= 0 || row % head_dim)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "KV row of %d values is not whole heads of %d", row, head_dim);
    p->row = row;
    p->head_dim = head_dim;
    p->n_head = row / head_dim;
    p->k_head_bytes = fr_row_size(p->k_type, head_dim);
    p->v_head_bytes = fr_row_size(p->v_type, head_dim);
    p->k_row_bytes = p->k_head_bytes * (size_t)p->n_head;
    p->v_row_bytes = p->v_head_bytes * (size_t)p->n_head;
    p->page_bytes = FR_KV_BLOCK * (p->k_row_bytes + p->v_row_bytes);
    p->n_blocks = (n_tokens + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    p->bytes = (size_t)n_layer * (size_t)p->n_blocks * p->page_bytes;
    if (swa && (disk_dir || swa->n_slots <= 0 || swa->n_slots > p->n_blocks))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "sliding-window KV layout: needs a RAM pool and 1..%d slots",
                          p->n_blocks);
    p->refs = fr_calloc((size_t)p->n_blocks, sizeof(int));
    p->free_list = fr_malloc(sizeof(int) * (size_t)p->n_blocks);
    p->tmp = fr_malloc(p->page_bytes);
    if (!p->refs || !p->free_list || !p->tmp) {
        fr_kv_pool_free(p);
        return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory (KV pool tables)");
    }
    /* hand out low block numbers first: a single sequence then fills the pool in order */
    for (int i = 0; i < p->n_blocks; i++) p->free_list[i] = p->n_blocks - 1 - i;
    p->n_free = p->n_blocks;
    if (disk_dir) {
        int rc = fr_kv_disk_open(p, disk_dir, ram_bytes, err);
        if (rc) { fr_kv_pool_free(p); return rc; }
        return FRUGAL_OK;
    }
    int rc = swa ? swa_init(p, swa, err) : FRUGAL_OK;
    if (rc) { fr_kv_pool_free(p); return rc; }
    p->n_frames = (n_layer - p->n_local) * p->n_blocks;
    p->bytes = (size_t)p->n_frames * p->page_bytes + (size_t)p->n_local * (size_t)p->n_slots * p->page_bytes;
    p->frames = p->n_frames ? fr_mem_alloc(FR_MEM_KV, (size_t)p->n_frames * p->page_bytes) : NULL;
    if (p->n_local) p->swa_frames = fr_mem_alloc(FR_MEM_KV, (size_t)p->n_local * (size_t)p->n_slots * p->page_bytes);
    if ((p->n_frames && !p->frames) || (p->n_local && !p->swa_frames)) {
        size_t mib = p->bytes >> 20;
        fr_kv_pool_free(p);
        return fr_err_set(err, FRUGAL_E_NOMEM, "cannot allocate KV cache (%zu MiB for %d tokens)", mib, n_tokens);
    }
    return FRUGAL_OK;
}

void fr_kv_pool_free(fr_kv_pool *p) {
    if (p->disk) fr_kv_disk_close(p);
    else fr_mem_free(FR_MEM_KV, p->frames, (size_t)p->n_frames * p->page_bytes);
    fr_mem_free(FR_MEM_KV, p->swa_frames, (size_t)p->n_local * (size_t)p->n_slots * p->page_bytes);
    free(p->swa_local);
    free(p->layer_rank);
    free(p->slot_of);
    free(p->free_slots);
    free(p->refs);
    free(p->free_list);
    free(p->tmp);
    memset(p, 0, sizeof *p);
}

int fr_kv_pool_free_tokens(const fr_kv_pool *p) { return p->n_free * FR_KV_BLOCK; }

/* Give [a, a + n) back to the kernel: the whole OS pages inside it. Bytes released. */
static uint64_t release_range(uint8_t *a, size_t n) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)a + pg - 1) & ~(pg - 1), hi = ((uintptr_t)a + n) & ~(pg - 1);
    if (hi <= lo || madvise((void *)lo, hi - lo, MADV_DONTNEED) != 0) return 0;
    return hi - lo;
}

uint64_t fr_kv_pool_release_free(fr_kv_pool *p) {
    if (!p || !p->frames || p->disk) return 0;
    const int n_global = p->n_layer - p->n_local;
    uint64_t released = 0;
    for (int k = 0; k < n_global; k++)
        for (int b = 0; b < p->n_blocks;) {
            if (p->refs[b]) { b++; continue; }
            int e = b;
            while (e < p->n_blocks && !p->refs[e]) e++; /* a run of free blocks: one range */
            released += release_range(p->frames + ((size_t)k * (size_t)p->n_blocks + (size_t)b) * p->page_bytes,
                                      (size_t)(e - b) * p->page_bytes);
            b = e;
        }
    return released;
}

/* A block's local-layer pages go back to the slot list. */
static void slot_release(fr_kv_pool *p, int b) {
    if (!p->swa_local || p->slot_of[b] < 0) return;
    p->free_slots[p->n_free_slots++] = p->slot_of[b];
    p->slot_of[b] = -1;
}

static void block_unref(fr_kv_pool *p, int b) {
    if (--p->refs[b] > 0) return;
    slot_release(p, b);
    p->free_list[p->n_free++] = b;
}

/* A free block (with a slot when the pool has local layers), or -1. */
static int block_alloc(fr_kv_pool *p) {
    if (p->n_free == 0 || (p->swa_local && p->n_free_slots == 0)) return -1;
    int b = p->free_list[--p->n_free];
    p->refs[b] = 1;
    if (p->swa_local) p->slot_of[b] = p->free_slots[--p->n_free_slots];
    return b;
}

/* Give back the local-layer pages of this sequence's blocks that lie wholly before
 * the window of its next position (kv->n): no local layer reads them again. Blocks
 * shared with another sequence keep theirs until they are no longer shared. */
static void swa_trim(fr_kv_cache *kv) {
    fr_kv_pool *p = kv->pool;
    if (!p->swa_local) return;
    const int first_needed = kv->n - p->swa_window + 1; /* positions before it are out */
    const int n_out = first_needed > 0 ? first_needed / FR_KV_BLOCK : 0;
    bool contiguous = true;
    for (int i = kv->swa_done; i < n_out && i < kv->n_blocks; i++) {
        const int b = kv->blocks[i];
        if (p->refs[b] == 1) slot_release(p, b);
        else contiguous = false;
        if (contiguous) kv->swa_done = i + 1;
    }
}

/* Resident page -> head g's piece of the row in slot off (head-major pages). */
static uint8_t *k_in(const fr_kv_pool *p, uint8_t *page, int off, int g) {
    return page + ((size_t)g * FR_KV_BLOCK + (size_t)off) * p->k_head_bytes;
}
static uint8_t *v_in(const fr_kv_pool *p, uint8_t *page, int off, int g) {
    return page + FR_KV_BLOCK * p->k_row_bytes + ((size_t)g * FR_KV_BLOCK + (size_t)off) * p->v_head_bytes;
}

void fr_kv_seq_init(fr_kv_cache *kv, fr_kv_pool *pool, int n_max) {
    memset(kv, 0, sizeof *kv);
    kv->pool = pool;
    kv->n_max = n_max;
    kv->k_type = pool->k_type;
    kv->v_type = pool->v_type;
    kv->n_layer = pool->n_layer;
    kv->row = pool->row;
}

void fr_kv_seq_clear(fr_kv_cache *kv) {
    for (int i = 0; i < kv->n_blocks; i++) block_unref(kv->pool, kv->blocks[i]);
    kv->n_blocks = 0;
    kv->n = 0;
    kv->swa_done = 0;
}

static int grow_table(fr_kv_cache *kv, int need, fr_err *err) {
    if (need <= kv->cap_blocks) return FRUGAL_OK;
    int cap = kv->cap_blocks ? kv->cap_blocks * 2 : 8;
    while (cap < need) cap *= 2;
    int *nb = fr_realloc(kv->blocks, sizeof(int) * (size_t)cap);
    if (!nb) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory (KV block table)");
    kv->blocks = nb;
    kv->cap_blocks = cap;
    return FRUGAL_OK;
}

int fr_kv_seq_fork(fr_kv_cache *dst, const fr_kv_cache *src, fr_err *err) {
    fr_kv_seq_clear(dst);
    int rc = grow_table(dst, src->n_blocks, err);
    if (rc) return rc;
    for (int i = 0; i < src->n_blocks; i++) {
        dst->blocks[i] = src->blocks[i];
        src->pool->refs[src->blocks[i]]++;
    }
    dst->n_blocks = src->n_blocks;
    dst->n = src->n;
    dst->swa_done = src->swa_done;
    return FRUGAL_OK;
}

/* Give block table entry i a private copy if it is shared (copy on write). */
static int unshare(fr_kv_cache *kv, int i) {
    fr_kv_pool *p = kv->pool;
    int old = kv->blocks[i];
    if (p->refs[old] <= 1) return 0;
    int b = block_alloc(p);
    if (b < 0) return -1;
    for (int il = 0; il < p->n_layer; il++) { /* via tmp: both pages need not be resident at once */
        if (p->swa_local && p->swa_local[il] && p->slot_of[old] < 0) continue; /* out of every window */
        memcpy(p->tmp, fr_kv_page(p, il, old, 0), p->page_bytes);
        memcpy(fr_kv_page(p, il, b, 1), p->tmp, p->page_bytes);
    }
    block_unref(p, old);
    kv->blocks[i] = b;
    return 0;
}

int fr_kv_reserve(fr_kv_cache *kv, int count, fr_err *err) {
    if (count <= 0) return FRUGAL_OK;
    if (kv->n + count > kv->n_max)
        return fr_err_set(err, FRUGAL_E_CONTEXT_FULL,
                          "context full: %d tokens cached, %d more do not fit in %d", kv->n, count, kv->n_max);
    int need = (kv->n + count + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    bool partial = kv->n % FR_KV_BLOCK != 0;
    int new_blocks = need - kv->n_blocks;
    bool cow = partial && kv->pool->refs[kv->blocks[kv->n_blocks - 1]] > 1;
    swa_trim(kv);
    if (new_blocks + (cow ? 1 : 0) > kv->pool->n_free)
        return fr_err_set(err, FRUGAL_E_CONTEXT_FULL,
                          "KV pool full: %d more tokens need %d blocks, %d free", count,
                          new_blocks + (cow ? 1 : 0), kv->pool->n_free);
    if (kv->pool->swa_local && new_blocks + (cow ? 1 : 0) > kv->pool->n_free_slots)
        return fr_err_set(err, FRUGAL_E_CONTEXT_FULL,
                          "KV pool full: the sliding-window layers' pages of %d more tokens need %d blocks, %d free",
                          count, new_blocks + (cow ? 1 : 0), kv->pool->n_free_slots);
    int rc = grow_table(kv, need, err);
    if (rc) return rc;
    if (cow) unshare(kv, kv->n_blocks - 1);
    while (kv->n_blocks < need) kv->blocks[kv->n_blocks++] = block_alloc(kv->pool);
    return FRUGAL_OK;
}

/* Convert one F32 row to the cache type, head by head into its pieces. Q8_0 uses
 * the activation quantizer, as llama.cpp's CPU copy into a Q8_0 cache does; the
 * others the file quantizers. (Quantized blocks never straddle heads: head_dim is a
 * multiple of the block size, checked at init.) */
static void put_row(const fr_kv_pool *p, int is_k, const float *src, uint8_t *page, int off) {
    const fr_type type = is_k ? p->k_type : p->v_type;
    const fr_type_traits *t = fr_type_traits_get(type);
    for (int g = 0; g < p->n_head; g++) {
        uint8_t *dst = is_k ? k_in(p, page, off, g) : v_in(p, page, off, g);
        const float *h = src + (size_t)g * p->head_dim;
        if (type == FR_TYPE_F32) memcpy(dst, h, (size_t)p->head_dim * sizeof(float));
        else (t->act_from_float ? t->act_from_float : t->from_float)(h, dst, p->head_dim);
    }
}

static void get_row(const fr_kv_pool *p, int is_k, uint8_t *page, int off, float *dst) {
    const fr_type type = is_k ? p->k_type : p->v_type;
    for (int g = 0; g < p->n_head; g++) {
        const uint8_t *src = is_k ? k_in(p, page, off, g) : v_in(p, page, off, g);
        float *h = dst + (size_t)g * p->head_dim;
        if (type == FR_TYPE_F32) memcpy(h, src, (size_t)p->head_dim * sizeof(float));
        else fr_type_traits_get(type)->to_float(src, h, p->head_dim);
    }
}

const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos, int g) {
    return k_in(kv->pool, fr_kv_page_fast(kv, il, pos), pos % FR_KV_BLOCK, g);
}

const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos, int g) {
    return v_in(kv->pool, fr_kv_page_fast(kv, il, pos), pos % FR_KV_BLOCK, g);
}

static uint8_t *page_rw(fr_kv_cache *kv, int il, int pos, int write) {
    return fr_kv_page(kv->pool, il, kv->blocks[pos / FR_KV_BLOCK], write);
}

void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v) {
    uint8_t *pg = page_rw(kv, il, pos, 1);
    put_row(kv->pool, 1, k, pg, pos % FR_KV_BLOCK);
    put_row(kv->pool, 0, v, pg, pos % FR_KV_BLOCK);
}

void fr_kv_k_get(const fr_kv_cache *kv, int il, int pos, float *out) {
    get_row(kv->pool, 1, page_rw((fr_kv_cache *)kv, il, pos, 0), pos % FR_KV_BLOCK, out);
}
void fr_kv_v_get(const fr_kv_cache *kv, int il, int pos, float *out) {
    get_row(kv->pool, 0, page_rw((fr_kv_cache *)kv, il, pos, 0), pos % FR_KV_BLOCK, out);
}
void fr_kv_k_put(fr_kv_cache *kv, int il, int pos, const float *k) {
    put_row(kv->pool, 1, k, page_rw(kv, il, pos, 1), pos % FR_KV_BLOCK);
}
void fr_kv_v_put(fr_kv_cache *kv, int il, int pos, const float *v) {
    put_row(kv->pool, 0, v, page_rw(kv, il, pos, 1), pos % FR_KV_BLOCK);
}

/* Copy position from_pos's stored K and V rows (all heads) to position to_pos,
 * through tmp (the two pages need not be resident at once with a disk tier). */
static void move_row(fr_kv_cache *kv, int il, int from_pos, int to_pos) {
    fr_kv_pool *p = kv->pool;
    const int so = from_pos % FR_KV_BLOCK, d = to_pos % FR_KV_BLOCK;
    uint8_t *src = page_rw(kv, il, from_pos, 0), *t = p->tmp;
    for (int g = 0; g < p->n_head; g++, t += p->k_head_bytes) memcpy(t, k_in(p, src, so, g), p->k_head_bytes);
    for (int g = 0; g < p->n_head; g++, t += p->v_head_bytes) memcpy(t, v_in(p, src, so, g), p->v_head_bytes);
    uint8_t *dst = page_rw(kv, il, to_pos, 1);
    t = p->tmp;
    for (int g = 0; g < p->n_head; g++, t += p->k_head_bytes) memcpy(k_in(p, dst, d, g), t, p->k_head_bytes);
    for (int g = 0; g < p->n_head; g++, t += p->v_head_bytes) memcpy(v_in(p, dst, d, g), t, p->v_head_bytes);
}

void fr_kv_remove(fr_kv_cache *kv, int first, int n) {
    if (n <= 0 || first < 0 || first + n > kv->n) return;
    fr_kv_pool *p = kv->pool;
    /* rows from `first` on are rewritten: those blocks must be private */
    for (int i = first / FR_KV_BLOCK; i < kv->n_blocks; i++) unshare(kv, i);
    for (int il = 0; il < kv->n_layer; il++)
        for (int pos = first; pos + n < kv->n; pos++) move_row(kv, il, pos + n, pos);
    kv->n -= n;
    int need = (kv->n + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    while (kv->n_blocks > need) block_unref(p, kv->blocks[--kv->n_blocks]);
}

int frugal_kv_policy_parse(const char *text, frugal_context_params *out) {
    /* key:value pairs; the first key names the policy */
    int window = 0, sinks = 4, chunk = 0, keep = 64, slots = 0, seen_sinks = 0, seen_keep = 0;
    if (!text || !out) return -1;
    const char *p = text;
    while (*p) {
        static const char *keys[] = {"window:", "sinks:", "summary:", "keep:", "slots:"};
        int *dst[] = {&window, &sinks, &chunk, &keep, &slots};
        int k = 0;
        while (k < 5 && strncmp(p, keys[k], strlen(keys[k]))) k++;
        if (k == 5) return -1;
        p += strlen(keys[k]);
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > (1 << 24)) return -1;
        *dst[k] = (int)v;
        seen_sinks |= k == 1;
        seen_keep |= k == 3 || k == 4;
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
    out->kv_slots = chunk ? slots : 0;
    return 0;
}
