/* experts.h - expert-granular memory for mixtures of experts: a fr_layer_source
 * whose dense weights are resident and whose experts live in a fixed-size cache,
 * read from the file on demand when the router picks them.
 *
 * Layout. The dense parts (attention, norms, router) of the first n_dense_resident
 * layers are read once into accounted RAM, the others are streamed through
 * n_io_buf ring buffers every token, as whole layers are (fr_stream_new_dense;
 * the planner streams them only when they do not all fit beside one slot). The experts go through n_slots cache slots
 * (FR_MEM_IO, one block in transparent huge pages: on a virtio disk an O_DIRECT read
 * into 4 KiB pages goes as one descriptor per page and ran ~40 % slower), each big
 * enough for one expert's gate, up and down rows of any layer.
 * At creation the slots are filled with experts spread evenly over the layers (the
 * plan's "resident experts"); after that the cache decides what stays.
 *
 * Flow of one MoE layer. The forward pass routes the batch and calls route(): the
 * distinct picked experts that are cached are pinned and listed first, the others are
 * queued for the I/O thread, which submits their reads at once through Linux AIO
 * (io/aread.h; 4 in flight, FRUGAL_EXPERT_DEPTH; a whole matrix each: on a
 * virtio disk a 128 KiB read ran at about half the rate of a 864 KiB one, so a layer's
 * last bytes are cut into pieces only with FRUGAL_EXPERT_SPLIT=1). Where AIO is not
 * available (no O_DIRECT, FRUGAL_EXPERT_DEPTH=0) four threads issue blocking reads
 * instead. The I/O threads ask for a short scheduler slice so that they run at once
 * while compute holds the CPUs. Compute meanwhile runs the cached experts; get() waits
 * for an expert's read, put() unpins it. So the reads of a layer's missing experts
 * overlap the compute of its cached ones.
 *
 * Prediction. Before a MoE layer's attention, the forward pass applies the layer's
 * router to the attention's normalised input and hands its picks to prefetch(): the
 * I/O threads start reading those experts (unpinned, marked "predicted": evicted
 * last, never by another prediction) while the attention computes. route() then pins
 * the predicted experts it picks (counted as misses: they were read for this pick,
 * early) and unmarks the rest (mispredictions:
 * their bytes are read for nothing; stats: prefetched, prefetch_used). Every guess
 * is scored against the picks, read or not, per confidence bucket (the guess's margin
 * over the best expert not guessed); reads ahead start only for the buckets whose
 * recent uncached guesses, pooled from the surest down, were >= 40 % right, surest
 * first. They fill the disk's idle time while the attention computes, so a wrong one
 * costs bytes rather than time; the bytes are capped: reads ahead spend a credit that
 * grows by 10 % of each layer's need (FRUGAL_EXPERT_WASTE) and is given back for each
 * one that is picked, so the wrong ones read at most ~10 % more than the picks need.
 * A mispredicted expert still loading when route() runs is abandoned: its unread
 * parts are not read.
 *
 * Eviction: frequency-aware LRU. Each expert (layer, id) has a pick count, halved
 * for every expert each time as many picks as there are experts have been counted
 * (aging, so yesterday's favourites fade). The victim is the unpinned slot whose
 * expert has the lowest count, the least recently used among equals. Skewed routing
 * keeps its hot experts; uniform routing degrades to LRU.
 *
 * Works with any number of slots >= 1: a batch that picks more experts than there are
 * slots is run expert by expert as slots free up (hits first, then the reads in the
 * order they were queued, so neither side can wait on the other forever).
 *
 * Reads are page-aligned O_DIRECT (buffered pread + POSIX_FADV_DONTNEED where the
 * filesystem refuses it), so the page cache is neither filled nor charged to a
 * memory cgroup. I/O errors never hang: get() returns a slot with valid pointers,
 * the source's check() reports the error. */
#ifndef FRUGAL_EXPERTS_H
#define FRUGAL_EXPERTS_H

#include <stdint.h>

#include "model/model.h"

/* Counters of an expert cache, since creation (the warm-up's reads excluded). A
 * request is one distinct expert of one layer in one forward pass. */
typedef struct fr_expert_stats {
    uint64_t hits, misses;    /* requests found cached / read from the file */
    uint64_t bytes_read;      /* bytes read from the file for the misses (page-aligned) */
    uint64_t expert_bytes;    /* exact bytes of one expert's three matrices (largest layer) */
    uint64_t prefetched;      /* reads started on a prediction (bytes in bytes_read) */
    uint64_t prefetch_used;   /* of those, picked by their layer (counted as misses) */
    uint64_t guesses, guesses_right; /* predicted experts and those picked, recent (decayed) */
    double io_busy_s;         /* seconds with at least one read in flight (the disk's busy time) */
    double wait_s;            /* seconds get() waited for a read (the forward pass stalled) */
    int n_slots, n_total;     /* cache slots; experts in the model (layers x experts) */
    int io_depth;             /* reads in flight at most */
    int io_async;             /* 1: Linux AIO (one thread); 0: blocking reads on FR_EXPERTS_IO_THREADS threads */
} fr_expert_stats;

/* I/O threads of an expert cache without AIO: four ~1 MiB reads in flight keep a
 * virtio disk busier than two (the planner counts their stacks in its overhead; with
 * AIO one thread reads). */
#define FR_EXPERTS_IO_THREADS 4

/* Accounted bytes of one cache slot for model m (0 without experts). */
uint64_t fr_experts_slot_bytes(const frugal_model *m);

/* Bytes one expert load reads at most (page-aligned extents; 0 without experts). */
uint64_t fr_experts_read_bytes(const frugal_model *m);

/* Start expert streaming for m (a MoE model loaded with a budget, so its matrices
 * are not repacked) with n_slots >= 1 cache slots: the dense parts of layers
 * [0, n_dense_resident) resident, the others streamed through n_io_buf (1..3) ring
 * buffers, the slots filled, the I/O threads started. *out is installed as a context's layer source (the
 * context owns it through destroy). Errors: FRUGAL_E_INVALID_ARG (no experts, bad
 * slot count), FRUGAL_E_IO, FRUGAL_E_NOMEM (over the accounting budget). */
int fr_experts_new(frugal_model *m, int n_slots, int n_dense_resident, int n_io_buf, fr_layer_source **out,
                   fr_err *err);

/* The counters of src if it is an expert cache: 1 and *out filled; else 0. */
int fr_experts_stats(const fr_layer_source *src, fr_expert_stats *out);

#endif
