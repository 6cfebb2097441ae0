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
} fr_kv_pool;

/* One sequence: its block table and length. The type fields are copies of the
 * pool's, for the attention code's convenience. */
typedef struct fr_kv_cache {
    fr_kv_pool *pool;
    int *blocks, n_blocks, cap_blocks;
    int n;                       /* positions filled */
    int n_max;                   /* positions this sequence may hold */
    fr_type k_type, v_type;
    int n_layer, row;
} fr_kv_cache;

/* kv_type: FRUGAL_KV_*. head_dim: for the block-size check of quantized types.
 * n_tokens: capacity of the pool in tokens (rounded up to whole blocks). */
/* disk_dir: NULL for an all-RAM pool; else pages spill to a file created (and at once
 * unlinked, so it never outlives the process) in that directory, with ram_bytes of
 * RAM for cached pages (at least one layer's pages + 2, else an error naming it). */
int fr_kv_pool_init(fr_kv_pool *p, int kv_type, int n_layer, int n_tokens, int row, int head_dim,
                    const char *disk_dir, uint64_t ram_bytes, fr_err *err);
void fr_kv_pool_free(fr_kv_pool *p);
/* Tokens the pool's free blocks can hold. */
int fr_kv_pool_free_tokens(const fr_kv_pool *p);

void fr_kv_seq_init(fr_kv_cache *kv, fr_kv_pool *pool, int n_max);
/* Give every block back (the sequence becomes empty). */
void fr_kv_seq_clear(fr_kv_cache *kv);
/* dst (cleared first) becomes a copy of src sharing its blocks. */
int fr_kv_seq_fork(fr_kv_cache *dst, const fr_kv_cache *src, fr_err *err);
/* Make positions [n, n + count) writable: allocate blocks, un-share a shared last
 * block. FRUGAL_E_CONTEXT_FULL if the pool or n_max has no room (nothing changes). */
int fr_kv_reserve(fr_kv_cache *kv, int count, fr_err *err);

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
