/* planner.h - the memory planner: given a budget, decide which transformer layers
 * stay resident and which are streamed from disk per token, and forecast the peak
 * RSS and the speed limit that follows.
 *
 * The model of memory (what the forecast adds up):
 *   overhead     binary, libc, thread stacks, tokenizer tables, the file's metadata
 *                pages (measured; see fr_plan_overhead_bytes)
 *   always       bytes every token needs and that are never streamed: the output
 *                head and the embedding rows (left in the read-only mapping: clean
 *                page cache the kernel can always drop, so they never cause an OOM
 *                kill, but they do count in RSS) plus the owned F32 norms/biases
 *   kv, scratch  the context's KV cache and activation buffers (accounted)
 *   resident     layers read once into accounted RAM (FR_MEM_WEIGHTS). We copy
 *                instead of keeping them mapped+locked: a copy is charged exactly
 *                once, cannot be evicted behind our back, and leaves the mapping of
 *                the layer untouched (mlock would need RLIMIT_MEMLOCK and still
 *                charges page cache of the whole file we read through)
 *   io           n_io_buf ring buffers, each big enough for the largest streamed
 *                layer (accounted, FR_MEM_IO); 0 when nothing is streamed
 * When everything fits (or there is no budget) nothing is copied: the model runs
 * from the mapping as without a budget, and the forecast counts every layer.
 *
 * Pure functions: no I/O, no allocation; unit-tested on synthetic configurations. */
#ifndef FRUGAL_PLANNER_H
#define FRUGAL_PLANNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define FR_PLAN_MAX_IO_BUF 3

typedef struct fr_plan_in {
    uint64_t budget;              /* bytes the process may use; 0 = unlimited */
    int n_layer;
    const uint64_t *layer_bytes;  /* [n_layer]: bytes to hold layer il (as read, padded) */
    uint64_t always_bytes;        /* output head, embeddings read per token, norms */
    uint64_t kv_bytes;            /* KV cache at this n_ctx and type */
    uint64_t scratch_bytes;       /* activations + logits */
    uint64_t overhead_bytes;      /* binary, libc, stacks, tokenizer, metadata */
    int n_io_buf;                 /* ring buffers when streaming (2..3; <=0: 2) */
    double mem_bw;                /* bytes/s (0: unknown, no speed forecast) */
    double disk_bw;               /* bytes/s (0: unknown) */
    /* for the "what would fit" advice when even the minimum does not fit */
    int n_ctx;
    const char *kv_type_name;
    double kv_bytes_per_token;    /* at the chosen type */
    double kv_q4_bytes_per_token; /* at q4_0 (0: the model cannot use it) */
    /* mixture of experts (n_expert 0: none): experts are planned one by one */
    int n_expert, n_expert_used;
    const uint64_t *dense_bytes;  /* [n_layer]: layer il without its experts, as held */
    uint64_t expert_slot_bytes;   /* one expert cache slot (accounted) */
    uint64_t expert_read_bytes;   /* bytes one expert load reads from the file */
    uint64_t expert_bytes;        /* bytes of one expert's weights (compute reads them) */
} fr_plan_in;

typedef struct fr_plan {
    bool streaming;               /* false: everything resident (mapped, as without a budget) */
    int n_resident;               /* layers 0..n_resident-1 resident */
    int n_streamed;               /* layers n_resident..n_layer-1 streamed */
    int n_io_buf;
    uint64_t resident_bytes;      /* layer weights held in RAM (or mapped) */
    uint64_t streamed_bytes;      /* layer weights read from disk per token */
    uint64_t io_bytes;            /* ring buffers */
    uint64_t always_bytes, kv_bytes, scratch_bytes, overhead_bytes;
    uint64_t min_bytes;           /* smallest working set: stream every layer */
    uint64_t forecast_peak_bytes; /* forecast peak RSS */
    double tok_s_bound;           /* 1 / (resident/mem_bw + streamed/disk_bw); 0 unknown */
    double tok_s_overlap;         /* with perfect overlap: 1 / max(all/mem_bw, streamed/disk_bw) */
    /* mixture of experts under a budget: the dense parts of layers [0, n_resident)
     * resident, the others streamed (n_streamed, n_io_buf), experts through a cache */
    bool expert_streaming;
    int n_experts;                /* n_layer x n_expert */
    int n_expert_slots;           /* cache slots (filled at start: the resident experts) */
    uint64_t dense_bytes;         /* every layer's dense part (in resident_bytes) */
    uint64_t expert_cache_bytes;  /* the slots (in io_bytes) */
    uint64_t expert_slot_bytes;   /* one slot */
    double expert_hit_uniform;    /* forecast hit rate with uniform routing: slots / experts */
    double expert_read_per_token; /* forecast bytes read per token, uniform routing (streamed_bytes) */
} fr_plan;

/* Compute a plan. Layers are made resident in order 0, 1, ... while they fit (the
 * streamed ones then form one contiguous run the I/O thread reads in order). With
 * experts (in->n_expert > 0) the dense parts (attention, router, norms) of as many
 * layers as fit with one cache slot are resident, the others stream through a ring
 * as whole layers do, and the rest of the budget becomes expert cache slots (at
 * least one: the minimum working set is the cheapest such split + one slot); the forecast then assumes uniform routing, the worst case for a
 * cache: each of the n_layer x n_expert_used picks of a token is cached with
 * probability slots / experts.
 * Errors: FRUGAL_E_INVALID_ARG for an inconsistent input; FRUGAL_E_NOMEM when
 * the budget is below min_bytes, with a message naming the minimum, its parts and
 * what would fit (a shorter context and/or a smaller KV type). *out is filled in
 * both cases (min_bytes is valid after a NOMEM). */
int fr_plan_compute(const fr_plan_in *in, fr_plan *out, fr_err *err);

/* Parse "123", "64K", "256M", "2G", "1.5G" (powers of 1024; optional trailing
 * "B"/"iB", case-insensitive) into bytes. 0 ok, -1 malformed, zero or overflowing. */
int fr_parse_size(const char *s, uint64_t *out);

/* Fixed process overhead beyond what the planner counts elsewhere: binary, libc,
 * the main and pool thread stacks' touched pages, allocator slack. Measured on
 * x86-64 Linux with the frugal CLI (see planner.c); tokenizer and metadata come
 * on top. */
uint64_t fr_plan_base_overhead(int n_threads);

/* Bytes of a context's scratch block (activations, attention scores, quantized
 * activations) for n_ctx tokens and n_threads threads: the formula the context
 * allocates with (implemented in src/api/context_api.c, next to the layout). */
size_t fr_context_scratch_bytes(const frugal_model *m, int n_ctx, int n_threads);

#endif
