/* test_kv_release.c - the safety policy's degrade step 2 on a RAM KV pool:
 * fr_kv_pool_release_free gives the pages of the blocks no sequence uses back to the
 * kernel (mincore says they are no longer resident, the count of bytes is what those
 * blocks' whole OS pages hold), the rows of the blocks in use are untouched, and a
 * sequence that grows into released blocks afterwards stores and reads its rows as
 * before. A pool with nothing free releases nothing. Needs nothing from ../shared. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "frugal.h"
#include "kv/kv_cache.h"
#include "testutil.h"

enum { N_LAYER = 2, ROW = 256, HEAD_DIM = 64, N_TOKENS = 4096, USED = 100 };

/* Resident OS pages among those wholly inside [a, a + n). */
static long resident_pages(const uint8_t *a, size_t n) {
    const uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = ((uintptr_t)a + pg - 1) & ~(pg - 1), hi = ((uintptr_t)a + n) & ~(pg - 1);
    if (hi <= lo) return 0;
    const size_t np = (hi - lo) / pg;
    unsigned char *v = tu_malloc(np);
    long r = 0;
    if (mincore((void *)lo, hi - lo, v) == 0)
        for (size_t i = 0; i < np; i++) r += v[i] & 1;
    else
        r = -1;
    free(v);
    return r;
}

static void row_of(int il, int pos, int kv, float *out) {
    for (int i = 0; i < ROW; i++) out[i] = (float)(il * 1000 + pos) + (float)i / 1024.0f + (float)kv * 0.5f;
}

/* 1 when every stored row of positions [from, to) reads back as written. */
static int rows_ok(const fr_kv_cache *kv, int from, int to) {
    float want[ROW], got[ROW];
    for (int il = 0; il < N_LAYER; il++)
        for (int pos = from; pos < to; pos++) {
            row_of(il, pos, 0, want);
            fr_kv_k_get(kv, il, pos, got);
            if (memcmp(want, got, sizeof want)) return 0;
            row_of(il, pos, 1, want);
            fr_kv_v_get(kv, il, pos, got);
            if (memcmp(want, got, sizeof want)) return 0;
        }
    return 1;
}

static void store_rows(fr_kv_cache *kv, int from, int to) {
    float k[ROW], v[ROW];
    for (int il = 0; il < N_LAYER; il++)
        for (int pos = from; pos < to; pos++) {
            row_of(il, pos, 0, k);
            row_of(il, pos, 1, v);
            fr_kv_store(kv, il, pos, k, v);
        }
}

int main(void) {
    fr_kv_pool pool;
    fr_err err = {0};
    CHECK(fr_kv_pool_init(&pool, FRUGAL_KV_F32, N_LAYER, N_TOKENS, ROW, HEAD_DIM, NULL, 0, NULL, &err) == FRUGAL_OK);
    fr_kv_cache kv;
    fr_kv_seq_init(&kv, &pool, N_TOKENS);
    CHECK(fr_kv_reserve(&kv, USED, &err) == FRUGAL_OK);
    store_rows(&kv, 0, USED);
    kv.n = USED; /* as the forward pass does once a batch's rows are stored */
    const size_t frames = (size_t)N_LAYER * (size_t)pool.n_blocks * pool.page_bytes;
    /* make every free block's pages resident, as a long conversation would have */
    const int used_blocks = (USED + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    for (int il = 0; il < N_LAYER; il++)
        memset(pool.frames + ((size_t)il * pool.n_blocks + used_blocks) * pool.page_bytes, 0x5a,
               (size_t)(pool.n_blocks - used_blocks) * pool.page_bytes);
    const long before = resident_pages(pool.frames, frames);
    const uint64_t released = fr_kv_pool_release_free(&pool);
    const long after = resident_pages(pool.frames, frames);
    const uint64_t free_bytes = (uint64_t)N_LAYER * (uint64_t)(pool.n_blocks - used_blocks) * pool.page_bytes;
    const long pg = sysconf(_SC_PAGESIZE);
    printf("KV pool %zu MiB, %d of %d blocks used: released %.2f MiB; resident pages %ld -> %ld\n",
           frames >> 20, used_blocks, pool.n_blocks, released / 1048576.0, before, after);
    /* each layer's run of free blocks loses at most one partial OS page at each end */
    CHECKF(released <= free_bytes && released + (uint64_t)(2 * N_LAYER * pg) >= free_bytes,
           "released %llu of %llu free bytes", (unsigned long long)released, (unsigned long long)free_bytes);
    CHECKF(before >= 0 && after >= 0 && before - after >= (long)(released / (uint64_t)pg),
           "resident pages %ld -> %ld, released %llu bytes", before, after, (unsigned long long)released);
    CHECK(rows_ok(&kv, 0, USED)); /* the blocks in use keep their rows */
    /* grow into released blocks: rows written there read back */
    CHECK(fr_kv_reserve(&kv, 3 * USED, &err) == FRUGAL_OK);
    store_rows(&kv, USED, 4 * USED);
    kv.n = 4 * USED;
    CHECK(rows_ok(&kv, 0, 4 * USED));
    /* nothing free: nothing released */
    CHECK(fr_kv_reserve(&kv, N_TOKENS - 4 * USED, &err) == FRUGAL_OK);
    CHECK(pool.n_free == 0 && fr_kv_pool_release_free(&pool) == 0);
    CHECK(rows_ok(&kv, 0, 4 * USED));
    fr_kv_seq_clear(&kv);
    free(kv.blocks); /* the block table is the owner's (the context frees it likewise) */
    fr_kv_pool_free(&pool);
    return tu_finish("test_kv_release");
}
