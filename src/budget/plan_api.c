/* plan_api.c - public API of the memory budget: measure a model's parts, run the
 * planner on them, and attach a layer stream to a context that needs one. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "core/clock.h"
#include "core/fault.h"
#include "core/thread.h"
#include "core/types.h"
#include "frugal.h"
#include "mem/alloc.h"
#include "mem/planner.h"
#include "budget/experts.h"
#include "budget/stream.h"
#include "model/model.h"

int frugal_parse_size(const char *text, uint64_t *bytes) { return fr_parse_size(text, bytes); }

/* KV bytes for n_ctx tokens, as the cache lays them out: K and V rows of
 * n_head_kv * head_dim values per layer per token, the token count rounded up to
 * whole 16-token blocks (the paged cache's unit; a slight over-estimate otherwise). */
static uint64_t kv_bytes_per_token(const frugal_model *m, int kv_type) {
    if (kv_type >= 2 && m->hp.head_dim % 32) return 0; /* the cache refuses this type */
    /* one block of every layer's pages, per token of the block */
    return fr_kv_pool_bytes(kv_type, m->hp.n_head_kv * m->hp.head_dim, m->hp.n_layer, 1, 0, 0) / FR_KV_BLOCK;
}

/* The KV pool of a one-sequence context of n_ctx tokens, as fr_kv_pool_init lays it
 * out: sliding-window layers keep only their window (fr_model_kv_swa). */
static uint64_t kv_pool_bytes(const frugal_model *m, int kv_type, int n_ctx) {
    const int row = m->hp.n_head_kv * m->hp.head_dim, n_blocks = (n_ctx + FR_KV_BLOCK - 1) / FR_KV_BLOCK;
    uint8_t *local = fr_malloc((size_t)m->hp.n_layer);
    fr_kv_swa_cfg swa;
    int n_local = 0;
    if (local && fr_model_kv_swa(m, n_ctx, 1, n_ctx < FR_MAX_UBATCH ? n_ctx : FR_MAX_UBATCH, local, &swa))
        for (int il = 0; il < m->hp.n_layer; il++) n_local += local[il];
    free(local);
    return fr_kv_pool_bytes(kv_type, row, m->hp.n_layer - n_local, n_blocks, n_local, n_local ? swa.n_slots : 0);
}

static int default_ctx(const frugal_model *m, int n_ctx) {
    if (n_ctx > 0) return n_ctx;
    return m->hp.n_ctx_train < 4096 ? m->hp.n_ctx_train : 4096;
}

/* Inputs every plan shares: layer sizes, always-resident bytes, overhead. */
static int fill_inputs(const frugal_model *m, uint64_t budget, int n_ctx, int kv_type, int n_threads,
                       uint64_t kv_bytes, uint64_t scratch, fr_plan_in *in, uint64_t **layer_bytes,
                       fr_err *err) {
    memset(in, 0, sizeof *in);
    if (!m || m->vocab_only || !m->layers)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "memory plan: the model has no layers loaded");
    uint64_t *lb = fr_malloc(sizeof *lb * 2 * (size_t)m->hp.n_layer); /* whole layers, then dense parts */
    if (!lb) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    for (int il = 0; il < m->hp.n_layer; il++) lb[il] = fr_stream_layer_bytes(m, il);
    *layer_bytes = lb;
    if (fr_experts_slot_bytes(m)) { /* a mixture of experts: planned expert by expert */
        for (int il = 0; il < m->hp.n_layer; il++) lb[m->hp.n_layer + il] = fr_stream_dense_bytes(m, il);
        fr_expert_stats st = {0};
        in->n_expert = m->hp.n_expert;
        in->n_expert_used = m->hp.n_expert_used;
        in->dense_bytes = lb + m->hp.n_layer;
        in->expert_slot_bytes = fr_experts_slot_bytes(m);
        in->expert_read_bytes = fr_experts_read_bytes(m);
        for (int il = 0; il < m->hp.n_layer; il++) { /* the largest layer's expert, as the cache counts */
            uint64_t b = 0;
            for (int j = 0; j < 3; j++) {
                const fr_weight *w = &m->layers[il].mat[FR_WGATE_EXPS + j];
                b += (uint64_t)fr_row_size(w->type, w->n_in) * (uint64_t)(w->n_out / m->hp.n_expert);
            }
            if (b > st.expert_bytes) st.expert_bytes = b;
        }
        in->expert_bytes = st.expert_bytes;
    }
    const fr_weight *out = &m->output;
    uint64_t head = (uint64_t)fr_row_size(out->type, out->n_in) * (uint64_t)out->n_out;
    uint64_t embd = 0;
    if (m->tok_embd.data != m->output.data) {
        /* untied: each token touches its embedding row's pages in the mapping */
        uint64_t row = (uint64_t)fr_row_size(m->tok_embd.type, m->tok_embd.n_in) + 4096;
        uint64_t all = (uint64_t)fr_row_size(m->tok_embd.type, m->tok_embd.n_in) * (uint64_t)m->tok_embd.n_out;
        embd = row * (uint64_t)n_ctx < all ? row * (uint64_t)n_ctx : all;
    }
    in->budget = budget;
    in->n_layer = m->hp.n_layer;
    in->layer_bytes = lb;
    in->always_bytes = head + embd + m->owned_bytes;
    in->kv_bytes = kv_bytes;
    in->scratch_bytes = scratch;
    /* tokenizer tables (accounted) and the metadata pages the tokenizer reads */
    /* a mixture of experts adds the cache's I/O threads and the dense stream's */
    const int n_io = fr_experts_slot_bytes(m) ? FR_EXPERTS_IO_THREADS + 1 : 0;
    in->overhead_bytes = fr_plan_base_overhead(n_threads + n_io) + fr_mem_current(FR_MEM_TOKENIZER) +
                         m->file->data_offset;
    in->n_io_buf = 2;
    in->n_ctx = n_ctx;
    in->kv_type_name = frugal_kv_type_name(kv_type);
    in->kv_bytes_per_token = (double)kv_bytes_per_token(m, kv_type);
    in->kv_q4_bytes_per_token = (double)kv_bytes_per_token(m, FRUGAL_KV_Q4_0);
    return FRUGAL_OK;
}

static void to_public(const fr_plan *p, uint64_t budget, int n_layer, int n_ctx, double mem_gbs,
                      double disk_gbs, frugal_plan *out) {
    memset(out, 0, sizeof *out);
    out->budget_bytes = budget;
    out->n_layer = n_layer;
    out->n_ctx = n_ctx;
    out->streaming = p->streaming;
    out->resident_layers = p->n_resident;
    out->streamed_layers = p->n_streamed;
    out->io_buffers = p->n_io_buf;
    out->resident_bytes = p->resident_bytes;
    out->streamed_bytes = p->streamed_bytes;
    out->io_bytes = p->io_bytes;
    out->always_bytes = p->always_bytes;
    out->kv_bytes = p->kv_bytes;
    out->scratch_bytes = p->scratch_bytes;
    out->overhead_bytes = p->overhead_bytes;
    out->min_bytes = p->min_bytes;
    out->forecast_peak_bytes = p->forecast_peak_bytes;
    out->mem_bw_gbs = mem_gbs;
    out->disk_bw_gbs = disk_gbs;
    out->tok_s_bound = p->tok_s_bound;
    out->tok_s_overlap = p->tok_s_overlap;
    out->expert_streaming = p->expert_streaming;
    out->experts = p->n_experts;
    out->expert_slots = p->n_expert_slots;
    out->dense_bytes = p->dense_bytes;
    out->expert_cache_bytes = p->expert_cache_bytes;
    out->expert_slot_bytes = p->expert_slot_bytes;
    out->expert_hit_uniform = p->expert_hit_uniform;
    out->expert_read_per_token = p->expert_read_per_token;
}

int frugal_plan_memory(const frugal_model *m, uint64_t budget, int n_ctx, int kv_type, int n_threads,
                       double mem_bw_gbs, double disk_bw_gbs, frugal_plan *out, frugal_error *err) {
    if (!out) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_plan_memory: NULL output");
    memset(out, 0, sizeof *out);
    if (!m) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_plan_memory: NULL model");
    if (kv_type < 0 || kv_type > 4 || n_ctx < 0)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "frugal_plan_memory: bad KV type or context");
    n_ctx = default_ctx(m, n_ctx);
    if (n_threads <= 0) n_threads = m->n_threads;
    uint64_t per_tok = kv_bytes_per_token(m, kv_type);
    if (!per_tok)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "KV cache type %s needs a head dimension that is a multiple of 32",
                          frugal_kv_type_name(kv_type));
    uint64_t kv = kv_pool_bytes(m, kv_type, n_ctx);
    fr_plan_in in;
    uint64_t *lb = NULL;
    int rc = fill_inputs(m, budget, n_ctx, kv_type, n_threads, kv,
                         fr_context_scratch_bytes(m, n_ctx, n_threads) + (uint64_t)m->hp.n_vocab * sizeof(float),
                         &in, &lb, err); /* + one logits row, as a context adds it */
    if (rc) return rc;
    in.mem_bw = mem_bw_gbs * 1e9;
    in.disk_bw = disk_bw_gbs * 1e9;
    fr_plan p;
    rc = fr_plan_compute(&in, &p, err);
    to_public(&p, budget, m->hp.n_layer, n_ctx, mem_bw_gbs, disk_bw_gbs, out);
    free(lb);
    return rc;
}

int fr_context_apply_budget(frugal_context *c, uint64_t budget, int kv_type, fr_err *err) {
    if (!budget) budget = c->model->mem_budget;
    if (!budget) return FRUGAL_OK;
    const frugal_model *m = c->model;
    int nt = fr_pool_size(c->pool);
    uint64_t scratch = (uint64_t)c->scratch_bytes + (uint64_t)m->hp.n_vocab * sizeof(float);
    fr_plan_in in;
    uint64_t *lb = NULL;
    int rc = fill_inputs(m, budget, c->n_ctx, kv_type, nt, frugal_context_kv_bytes(c), scratch, &in, &lb, err);
    if (rc) return rc;
    fr_plan p;
    rc = fr_plan_compute(&in, &p, err);
    free(lb);
    if (rc) return rc;
    /* untied embeddings are read a row per token from the mapping: give the pages
     * back after each row so they stay within the row-per-token the plan counted */
    if (m->tok_embd.data != m->output.data) ((frugal_model *)m)->tok_embd.drop_pages = 1;
    if (m->verbose && p.expert_streaming)
        fprintf(stderr, "frugal: memory plan for %.1f MiB: dense weights resident, %d of %d experts cached, "
                "forecast peak %.1f MiB\n", budget / 1048576.0, p.n_expert_slots, p.n_experts,
                p.forecast_peak_bytes / 1048576.0);
    else if (m->verbose)
        fprintf(stderr, "frugal: memory plan for %.1f MiB: %d layers resident, %d streamed, forecast peak %.1f MiB\n",
                budget / 1048576.0, p.n_resident, p.n_streamed, p.forecast_peak_bytes / 1048576.0);
    if (!p.streaming) return FRUGAL_OK; /* everything fits: run from the mapping */
    if (p.expert_streaming)
        return fr_experts_new(c->model, p.n_expert_slots, p.n_resident, p.n_io_buf, &c->layer_src, err);
    fr_stream *s;
    rc = fr_stream_new(c->model, p.n_resident, p.n_io_buf, &s, err);
    if (rc) return rc;
    c->layer_src = fr_stream_source(s);
    return FRUGAL_OK;
}

int frugal_context_expert_stats(const frugal_context *c, frugal_expert_stats *out) {
    if (!out) return 0;
    memset(out, 0, sizeof *out);
    fr_expert_stats st;
    if (!c || !fr_experts_stats(c->layer_src, &st)) return 0;
    out->hits = st.hits;
    out->misses = st.misses;
    out->bytes_read = st.bytes_read;
    out->expert_bytes = st.expert_bytes;
    out->slots = st.n_slots;
    out->experts = st.n_total;
    out->prefetched = st.prefetched;
    out->prefetch_used = st.prefetch_used;
    out->guesses = st.guesses;
    out->guesses_right = st.guesses_right;
    out->io_busy_s = st.io_busy_s;
    out->wait_s = st.wait_s;
    out->io_threads = st.io_depth;
    out->io_async = st.io_async;
    return 1;
}

double frugal_measure_disk_bandwidth(const char *path, uint64_t max_bytes) {
    const size_t chunk = 8u << 20;
    if (!path) return -1.0;
    if (!max_bytes) max_bytes = 512ull << 20;
    bool direct = true;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0) {
        direct = false;
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1.0;
    }
    /* cold reads only: what is cached would measure memory, not the disk */
    posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    void *raw = fr_mem_alloc(FR_MEM_IO, chunk + 4096);
    if (!raw) { close(fd); return -1.0; }
    uint8_t *buf = (uint8_t *)(((uintptr_t)raw + 4095) & ~(uintptr_t)4095);
    uint64_t done = 0;
    double t0 = fr_now_s();
    while (done < max_bytes) {
        ssize_t r = pread(fd, buf, chunk, (off_t)done);
        if (r < 0 && direct && done == 0) { /* O_DIRECT refused: buffered */
            close(fd);
            direct = false;
            fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) break;
            continue;
        }
        if (r <= 0) break;
        done += (uint64_t)r;
        if ((size_t)r < chunk) break;
    }
    double dt = fr_now_s() - t0;
    if (fd >= 0) {
        if (!direct) posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    fr_mem_free(FR_MEM_IO, raw, chunk + 4096);
    return done > 0 && dt > 0 ? (double)done / dt / 1e9 : -1.0;
}

/* Random reads for frugal_measure_random_read_bandwidth: a shared byte budget, each
 * thread its own request stream. */
typedef struct rr_job {
    int fd;
    uint64_t req, n_req;     /* request size; requests that fit in the file */
    uint64_t budget;         /* bytes still to read (under mu) */
    uint64_t done;
    int failed;
    pthread_mutex_t mu;
} rr_job;

static void *rr_main(void *arg) {
    rr_job *j = arg;
    /* huge pages, as the expert cache's slots: on a virtio disk a read into 4 KiB
     * pages goes as one descriptor per page, into huge pages as a few large ones, much
     * faster, and the probe must read the way the cache reads (mem/alloc.h) */
    uint8_t *buf = fr_mem_alloc_probe(j->req);
    uint64_t seed = (uint64_t)(uintptr_t)&buf ^ 0x9E3779B97F4A7C15ull;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        const bool go = buf && !j->failed && j->budget >= j->req;
        if (go) j->budget -= j->req;
        else if (!buf) j->failed = 1;
        pthread_mutex_unlock(&j->mu);
        if (!go) break;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const off_t off = (off_t)((seed >> 17) % j->n_req * j->req);
        ssize_t r;
        do r = pread(j->fd, buf, (size_t)j->req, off);
        while (r < 0 && errno == EINTR);
        pthread_mutex_lock(&j->mu);
        if (r != (ssize_t)j->req) j->failed = 1;
        else j->done += (uint64_t)r;
        pthread_mutex_unlock(&j->mu);
    }
    fr_mem_free_probe(buf, j->req);
    return NULL;
}

double frugal_measure_random_read_bandwidth(const char *path, uint64_t req_bytes, int n_threads, uint64_t max_bytes) {
    if (!path || n_threads < 1 || n_threads > 64) return -1.0;
    req_bytes = (req_bytes + 4095) & ~(uint64_t)4095;
    if (!req_bytes) req_bytes = 1u << 20;
    if (!max_bytes) max_bytes = 512ull << 20;
    rr_job j = {.fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT), .req = req_bytes, .budget = max_bytes};
    if (j.fd < 0) return -1.0; /* no O_DIRECT: random reads would measure the page cache */
    struct stat st;
    if (fstat(j.fd, &st) != 0 || (uint64_t)st.st_size < 2 * req_bytes) { close(j.fd); return -1.0; }
    j.n_req = (uint64_t)st.st_size / req_bytes;
    pthread_mutex_init(&j.mu, NULL);
    pthread_t t[64];
    int started = 0;
    const double t0 = fr_now_s();
    while (started < n_threads && fr_thread_create(&t[started], rr_main, &j) == 0) started++;
    for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
    const double dt = fr_now_s() - t0;
    pthread_mutex_destroy(&j.mu);
    close(j.fd);
    return started && !j.failed && j.done && dt > 0 ? (double)j.done / dt / 1e9 : -1.0;
}
