/* offload.h - layers placed on a device (backend/backend.h): their matrices are copied
 * to device memory once at load, and the forward pass (forward.c) sends the matrix
 * products over them to the device; everything else runs on the CPU.
 *
 * Placement follows llama.cpp's -ngl: the last n_gpu_layers layers go to the device,
 * and the output matrix too when n_gpu_layers exceeds the layer count. Matrices of a
 * type the device has no kernel for, or without a row-major copy, stay on the CPU. */
#ifndef FRUGAL_OFFLOAD_H
#define FRUGAL_OFFLOAD_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "kernels/ops.h"

typedef struct fr_offload fr_offload;
struct frugal_model;

/* Open the device (FRUGAL_BACKEND=cpu|vulkan picks the backend, default vulkan) and
 * upload the matrices of the placed layers (n_gpu_layers < 0: all layers and the
 * output). vram_budget > 0 caps the device memory used. When the device runs out of
 * memory (or budget) the layers uploaded so far stay, the rest run on the CPU, with a
 * message on stderr; with stream != 0 (--gpu-stream) those layers are copied instead,
 * one layer at a time before its products, into two rotating device buffers sized for
 * the largest layer and reserved from the budget first; each layer is copied one layer
 * ahead by a worker thread where the slots are host-mapped (offload_stream.c), so the
 * copies overlap compute, else synchronously before its first product. Errors:
 * FRUGAL_E_UNSUPPORTED when no device opens (the caller decides between an error and
 * the CPU path). */
int fr_offload_new(struct frugal_model *m, int n_gpu_layers, uint64_t vram_budget, int stream, fr_offload **out,
                   fr_err *err);
void fr_offload_free(fr_offload *o);

/* y[n_tok][n_out] = x * W^T on the device when W is resident there: returns true
 * after computing y, false when the caller must compute it (W not resident, or the
 * device failed: then the offload stops, with one message, and the CPU takes over). */
bool fr_offload_matmul(fr_offload *o, const fr_weight *w, const float *x, int n_tok, float *y);
/* ys[k] = x * W_k^T for n_w (<= 4) matrices over one input (Q/K/V, gate/up), all
 * resident with one input length: the input goes up once and the products run in one
 * submission. False (nothing computed) when one is not resident or the device failed. */
bool fr_offload_matmul_multi(fr_offload *o, int n_w, const fr_weight *const *ws, float *const *ys, const float *x,
                             int n_tok);
/* W is resident on the device. */
bool fr_offload_has(const fr_offload *o, const fr_weight *w);

/* The device failed during a forward pass (the CPU took over). */
bool fr_offload_failed(const fr_offload *o);

/* Layers placed, first placed layer, the device's name and device memory in use / peak. */
int fr_offload_n_layers(const fr_offload *o);
int fr_offload_first_layer(const fr_offload *o);
const char *fr_offload_device(const fr_offload *o);
uint64_t fr_offload_mem_current(const fr_offload *o);
uint64_t fr_offload_mem_peak(const fr_offload *o);
/* 1: the device is a software one (lavapipe) running on the CPU. */
int fr_offload_software(const fr_offload *o);
/* --gpu-stream: layers streamed (0: none), bytes copied into the slots since load and
 * the seconds those copies took (a copy ahead counts once its layer is used). */
int fr_offload_stream_stats(const fr_offload *o, uint64_t *bytes, double *seconds);
/* --gpu-stream: layers copied into their slot ahead of use, by the worker that overlaps
 * the copies with compute (0 where the slots cannot be mapped: synchronous copies). */
uint64_t fr_offload_stream_prefetched(const fr_offload *o);
/* The device memory budget: --vram, else the device's memory (0: unknown or no offload). */
uint64_t fr_offload_mem_budget(const fr_offload *o);
/* The driver's heap budget and usage for this process (see fr_backend_ops.heap_budget):
 * 1 and both set, else 0. */
int fr_offload_heap_budget(const fr_offload *o, uint64_t *budget, uint64_t *usage);
/* Device bytes of the resident matrices (what one decode step reads there); *host_bytes:
 * the same matrices' bytes on the host (what the CPU no longer reads per token). */
uint64_t fr_offload_resident_bytes(const fr_offload *o, uint64_t *host_bytes);
/* The device's read bandwidth in GB/s (backend.h's read_bandwidth), serialised with the
 * products. FRUGAL_E_UNSUPPORTED when o is NULL or the backend has no probe. */
int fr_offload_read_bandwidth(fr_offload *o, size_t bytes, double *gbs, size_t *probed, fr_err *err);

/* --- whole layers on the device (offload_layer.c) ---
 * When the backend has the layer ops (backend.h: act_round, kv_store, attn_kv16) and
 * every layer is a dense one of device types, each placed layer also gets its vectors
 * and an F16 KV cache of min(n_ctx_train, 4096) positions in device memory, counted
 * against the budget with its matrices (a layer that does not fit with them runs on
 * the CPU or streams). FRUGAL_GPU_WHOLE=0 keeps the matrix-products-only path.
 *
 * Run the device layers [il, il + n) on batch b when il is the first of them and ctx
 * can use the device caches (one sequence, F16 KV, no eviction policy, n_ctx within
 * the device cache, no streaming source or observer; the first context that runs holds
 * the caches until fr_offload_release): *pending is added into ctx->x, x goes up, the
 * layers run, x comes down. Returns n (the caller continues at il + n), or 0 when the
 * caller must run layer il itself (a one-line note says why, once). */
struct frugal_context;
struct fr_batch;
int fr_offload_run_layers(struct frugal_context *ctx, const struct fr_batch *b, int il, const float **pending);
/* ctx no longer uses the device caches (context freed). */
void fr_offload_release(fr_offload *o, const void *ctx);
/* Layers that run whole on the device (0: none, or only their products). */
int fr_offload_whole_layers(const fr_offload *o);

#endif
