/* stream.h - out-of-core execution: a fr_layer_source whose layers come from the
 * model file through explicit reads instead of the memory mapping.
 *
 * Layers 0..n_resident-1 are read once, at creation, into accounted RAM
 * (FR_MEM_WEIGHTS). The other layers are streamed: an I/O thread reads them, in
 * the order the forward pass uses them, into a ring of n_io_buf accounted buffers
 * (FR_MEM_IO) and runs ahead of compute, so the matmuls of layer i overlap the read
 * of layer i+1 (and, across tokens, the reads of the first streamed layers overlap
 * the resident layers' compute). Reads are large, 4 KiB-aligned requests with
 * O_DIRECT, so the file's page cache is neither filled nor charged to our memory
 * cgroup; where the filesystem refuses O_DIRECT (tmpfs, some FUSE), plain pread
 * followed by POSIX_FADV_DONTNEED on the range read. The layer mappings are never
 * touched, and the pages the loader touched are dropped when the stream starts.
 *
 * A streamed layer's fr_layer is a copy of the model's with the seven matrix
 * pointers redirected into the buffer (norms and biases are owned F32 copies
 * already). The output head and embedding rows stay in the mapping: read every
 * token, they are clean page cache the kernel can reclaim, never an OOM kill.
 *
 * I/O errors (file truncated or unreadable after load) never hang or crash the
 * forward pass: acquire() still returns a layer whose pointers lie inside a valid
 * buffer (its contents are then meaningless), the stream stays failed, and
 * check() reports the error, which frugal_eval returns. */
#ifndef FRUGAL_STREAM_H
#define FRUGAL_STREAM_H

#include <stdint.h>

#include "model/model.h"

typedef struct fr_stream fr_stream;

/* Bytes a buffer needs to hold layer il as the stream reads it (page-aligned
 * extents of its matrices, plus alignment slack). 0 if il is out of range. */
uint64_t fr_stream_layer_bytes(const frugal_model *m, int il);

/* Bytes of layer il without its stacked experts, as fr_stream_new_dense holds it
 * (the dense part a mixture-of-experts plan keeps resident). 0 if out of range. */
uint64_t fr_stream_dense_bytes(const frugal_model *m, int il);

/* Start streaming for model m: read layers [0, n_resident) into RAM, allocate
 * n_io_buf ring buffers (1..3) for the rest and start the I/O thread (none when
 * n_resident == n_layer). Errors: FRUGAL_E_IO (cannot open or read the file),
 * FRUGAL_E_NOMEM (over the accounting budget or out of memory). */
int fr_stream_new(frugal_model *m, int n_resident, int n_io_buf, fr_stream **out, fr_err *err);

/* As fr_stream_new, but every layer without its stacked experts (their matrices
 * keep pointing into the mapping, which the caller must not touch: budget/experts.c
 * reads them per expert): the dense parts of layers [0, n_resident) resident, the
 * others streamed through n_io_buf ring buffers (ignored when all are resident). */
int fr_stream_new_dense(frugal_model *m, int n_resident, int n_io_buf, fr_stream **out, fr_err *err);

/* The layer source to install in a context (valid until fr_stream_free). Its
 * check() and destroy() hooks report the stream's error and free it. */
fr_layer_source *fr_stream_source(fr_stream *s);

/* FRUGAL_OK, or the first I/O error (code + message into err). Thread-safe. */
int fr_stream_check(fr_stream *s, fr_err *err);

/* Ring buffers the I/O thread may fill ahead of compute (0: nothing streamed). */
int fr_stream_window(fr_stream *s);

/* Change the read-ahead window to n_buf ring buffers (clamped to 1..3 and to the
 * streamed layers), freeing or allocating the difference; *freed: bytes released
 * (0 when growing). Call only between evaluations (no layer acquired); what was
 * read ahead is discarded and read again. Nothing streamed: no-op. Growing may fail
 * with FRUGAL_E_NOMEM and keep the smaller window. */
int fr_stream_set_window(fr_stream *s, int n_buf, int64_t *freed, fr_err *err);

/* Layers kept in RAM (0 when s is NULL). */
int fr_stream_resident(fr_stream *s);

/* Keep only layers [0, n_res) in RAM (0 <= n_res < n_layer): evicted layers are
 * streamed from then on and their buffers freed (*freed bytes); a larger n_res
 * reads layers back (stopping at the first failure, FRUGAL_E_NOMEM or _IO, with
 * what was reached kept). Only between evaluations; nothing streamed: no-op.
 * FRUGAL_E_UNSUPPORTED when a layer would not fit the read-ahead buffers. */
int fr_stream_set_resident(fr_stream *s, int n_res, int64_t *freed, fr_err *err);

/* The stream behind a layer source, or NULL when src is not one. */
fr_stream *fr_stream_of(fr_layer_source *src);

/* Stop the I/O thread and free every buffer. NULL is fine. */
void fr_stream_free(fr_stream *s);

/* Apply a memory budget to a freshly created context (KV cache and scratch already
 * allocated): plan with budget (0: the model's mem_budget; both 0: nothing to do)
 * and, when not everything fits, install a stream as c->layer_src. Errors: those
 * of fr_plan_compute (FRUGAL_E_NOMEM naming the minimum) and fr_stream_new. */
int fr_context_apply_budget(frugal_context *c, uint64_t budget, int kv_type, fr_err *err);

#endif
