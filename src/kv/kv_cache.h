/* kv_cache.h - a paged key/value cache: one pool of fixed-size blocks (FR_KV_BLOCK
 * tokens each, for every layer) shared by many sequences, each with its own block
 * table. Sequences grow block by block, so a server's many streams share one pool
 * without fragmentation; forks share blocks (reference counts, copy on write).
 *
 * A stored row is n_head_kv * head_dim values of one position in one layer, in the
 * K or V storage type: F32, F16, or a 32-value block format (Q8_0, Q4_0) whose blocks
 * run along the head dimension, so every head's slice is whole blocks and attention
 * takes dot products with it directly. Rows are written once, when a token is
 * appended (reserve first, then store). */
#ifndef FRUGAL_KV_CACHE_H
#define FRUGAL_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/types.h"

#define FR_KV_BLOCK 16  /* tokens per block */

typedef struct fr_kv_disk fr_kv_disk;

/* Storage is in pages: one page = one (layer, block): the K rows of the block's
 * FR_KV_BLOCK positions, then their V rows, each head-major: KV head 0's piece of
 * every position, then head 1's, ... - so attention, which reads one head's pieces
 * position after position, reads whole contiguous runs (a position-major row would
 * give it head_dim values out of every n_head_kv * head_dim, a pattern the hardware
 * prefetchers follow poorly once the cache is larger than the last-level cache). Without a disk tier every page has its own frame in RAM
 * (frame = layer * n_blocks + block). With one (kv_disk.c), pages live in a spill
 * file and only n_frames of them are cached in RAM, least recently used evicted;
 * the forward pass pins the pages of the layer it works on. */
typedef struct fr_kv_pool {
    fr_type k_type, v_type;
    int n_layer;
    int row;                     /* values per position per layer */
    int head_dim, n_head;        /* row = n_head * head_dim */
    size_t k_row_bytes, v_row_bytes;
    size_t k_head_bytes, v_head_bytes; /* one head's piece of a row */
    size_t page_bytes;
    int n_blocks;
    int *refs;                   /* per block: sequences using it (0 = free) */
    int *free_list, n_free;
    size_t bytes;                /* logical K + V storage (every page) */
    uint8_t *frames;             /* n_frames * page_bytes, accounted as KV */
    int n_frames;
    uint8_t *tmp;                /* one page of scratch for copies */
    fr_kv_disk *disk;            /* NULL: everything in RAM */
    /* Sliding-window layers (RAM pools given a fr_kv_swa_cfg): a local layer only ever
     * reads the last `swa_window` positions, so it keeps pages only for the blocks still
     * inside some sequence's window. Those pages live in swa_frames, one slot (a page
     * per local layer) per block that has one; a block that falls out of the window of
     * the one sequence using it gives its slot back. Global layers keep every block, in
     * `frames`, indexed by their rank among the global layers. */
    uint8_t *swa_local;          /* [n_layer] 1: a sliding-window layer; NULL: none */
    int *layer_rank;             /* [n_layer] index among the layers of its kind */
    int swa_window, n_slots, n_local;
    int *slot_of;                /* [n_blocks] the block's slot, or -1 */
    int *free_slots, n_free_slots;
    uint8_t *swa_frames;         /* n_local * n_slots pages, accounted as KV */
} fr_kv_pool;

/* What a pool needs to know of sliding-window layers. */
typedef struct fr_kv_swa_cfg {
    const uint8_t *local;        /* [n_layer] 1: the layer attends to a window */
    int window;                  /* the widest window of those layers, in positions */
    int n_slots;                 /* blocks of pages they keep at most (fr_kv_swa_slots) */
} fr_kv_swa_cfg;

/* One sequence: its block table and length. The type fields are copies of the
 * pool's, for the attention code's convenience. */
typedef struct fr_kv_cache {
    fr_kv_pool *pool;
    int *blocks, n_blocks, cap_blocks;
    int n;                       /* positions filled */
    int n_max;                   /* positions this sequence may hold */
    fr_type k_type, v_type;
    int n_layer, row;
    int swa_done;                /* leading blocks whose local-layer pages were given back */
} fr_kv_cache;

/* kv_type: FRUGAL_KV_*. head_dim: for the block-size check of quantized types.
 * n_tokens: capacity of the pool in tokens (rounded up to whole blocks). */
/* disk_dir: NULL for an all-RAM pool; else pages spill to a file created (and at once
 * unlinked, so it never outlives the process) in that directory, with ram_bytes of
 * RAM for cached pages (at least one layer's pages + 2, else an error naming it). */
/* swa: NULL, or the sliding-window layers (RAM pools only: with disk_dir it must be
 * NULL), whose pages then need only swa->n_slots blocks instead of every block. */
int fr_kv_pool_init(fr_kv_pool *p, int kv_type, int n_layer, int n_tokens, int row, int head_dim,
                    const char *disk_dir, uint64_t ram_bytes, const fr_kv_swa_cfg *swa, fr_err *err);
/* Blocks of pages the sliding-window layers of a pool need at most: each of n_seq
 * sequences holds the window behind its newest position plus the at most n_ubatch
 * positions one reservation adds, in whole blocks (one more for a partial block at
 * each end); capped at n_blocks. */
int fr_kv_swa_slots(int window, int n_seq, int n_ubatch, int n_blocks);
/* Bytes of a pool's pages: n_global layers with n_blocks blocks each and n_local
 * sliding-window layers with n_slots each (the one formula of the pool and the planner). */
uint64_t fr_kv_pool_bytes(int kv_type, int row, int n_global, int n_blocks, int n_local, int n_slots);
void fr_kv_pool_free(fr_kv_pool *p);
/* Tokens the pool's free blocks can hold. */
int fr_kv_pool_free_tokens(const fr_kv_pool *p);
/* Memory pressure (the safety policy's degrade step 2): the RAM pages of the blocks no
 * sequence uses go back to the kernel (madvise DONTNEED; whole OS pages only). They
 * read as zeros when a block is taken again, which is fine: a position's rows are
 * written before attention reads them. The accounting is unchanged (the pool keeps its
 * reservation); the resident set shrinks. RAM pools only (a disk tier's frames are its
 * cache). Returns the bytes released. */
uint64_t fr_kv_pool_release_free(fr_kv_pool *p);

void fr_kv_seq_init(fr_kv_cache *kv, fr_kv_pool *pool, int n_max);
/* Give every block back (the sequence becomes empty). */
void fr_kv_seq_clear(fr_kv_cache *kv);
/* dst (cleared first) becomes a copy of src sharing its blocks. */
int fr_kv_seq_fork(fr_kv_cache *dst, const fr_kv_cache *src, fr_err *err);
/* Make positions [n, n + count) writable: allocate blocks, un-share a shared last
 * block. FRUGAL_E_CONTEXT_FULL if the pool or n_max has no room (nothing changes). */
int fr_kv_reserve(fr_kv_cache *kv, int count, fr_err *err);

/* The page of (layer il, block) of a RAM pool. */
static inline uint8_t *fr_kv_ram_page(const fr_kv_pool *p, int il, int block) {
    if (!p->swa_local) return p->frames + ((size_t)il * (size_t)p->n_blocks + (size_t)block) * p->page_bytes;
    const size_t k = (size_t)p->layer_rank[il];
    if (p->swa_local[il]) return p->swa_frames + (k * (size_t)p->n_slots + (size_t)p->slot_of[block]) * p->page_bytes;
    return p->frames + (k * (size_t)p->n_blocks + (size_t)block) * p->page_bytes;
}

/* Disk tier (no-ops for an all-RAM pool; kv_disk.c). Main thread only. */
/* Page (il, block), resident; write marks it dirty. */
uint8_t *fr_kv_page(fr_kv_pool *p, int il, int block, int write);
/* Make layer il's pages of these sequences resident and pinned until the next call
 * or fr_kv_unpin: worker threads may then read them through fr_kv_k / fr_kv_v. */
void fr_kv_layer_pin(fr_kv_pool *p, int il, fr_kv_cache *const *seqs, int n);
/* The page of a position without paging in: RAM pool, or pinned (any thread). */
uint8_t *fr_kv_page_fast(const fr_kv_cache *kv, int il, int pos);
void fr_kv_unpin(fr_kv_pool *p);
/* A spill I/O error since the last call: fills err and returns its code (then clears). */
int fr_kv_io_error(fr_kv_pool *p, fr_err *err);
int fr_kv_disk_open(fr_kv_pool *p, const char *dir, uint64_t ram_bytes, fr_err *err);
void fr_kv_disk_close(fr_kv_pool *p);
/* Pages read from / written to the spill file so far. */
void fr_kv_disk_stats(const fr_kv_pool *p, uint64_t *reads, uint64_t *writes);
/* The spill file's descriptor, or -1 without a disk tier (for tests and fuzzing,
 * which corrupt or shorten the file under a running context). */
int fr_kv_disk_fd(const fr_kv_pool *p);

/* Store the K and V rows (F32) of position pos (reserved) in layer il. */
void fr_kv_store(fr_kv_cache *kv, int il, int pos, const float *k, const float *v);
/* Pointers to KV head g's piece (head_dim values) of the stored rows of layer il
 * (pages must be resident: RAM pool, or pinned). Consecutive positions of one block
 * are adjacent. */
const void *fr_kv_k(const fr_kv_cache *kv, int il, int pos, int g);
const void *fr_kv_v(const fr_kv_cache *kv, int il, int pos, int g);
/* Decode / re-encode one stored row (F32 <-> the cache type). */
void fr_kv_k_get(const fr_kv_cache *kv, int il, int pos, float *out);
void fr_kv_k_put(fr_kv_cache *kv, int il, int pos, const float *k);
void fr_kv_v_get(const fr_kv_cache *kv, int il, int pos, float *out);
void fr_kv_v_put(fr_kv_cache *kv, int il, int pos, const float *v);
/* Drop positions [first, first + n): later rows move down by n, freed blocks go
 * back to the pool. (Keys then need re-rotation by the caller, who knows RoPE.) */
void fr_kv_remove(fr_kv_cache *kv, int first, int n);

#endif
