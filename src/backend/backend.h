/* backend.h - one interface for the devices the forward pass can run ops on.
 *
 * A backend owns buffers in its memory (host RAM for the CPU, device memory for a GPU),
 * copies between them and the host, and runs the ops of the shared forward pass
 * (model/arch.h's op list) on them: matrix products over GGUF-typed weights, norms,
 * RoPE, activations, residual adds, softmax and decode attention. Ops may be queued:
 * a download, an upload or sync waits for everything before it. Activations are float32;
 * offsets of activations are in floats, of weights in bytes; argument meanings are
 * those of the Vulkan ops (backend/vulkan/vk_ops.h), which the CPU backend mirrors
 * with the scalar kernels of kernels/ops.h.
 *
 * Implementations: "cpu" (always) and "vulkan" (when built with FRUGAL_VULKAN). */
#ifndef FRUGAL_BACKEND_H
#define FRUGAL_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/types.h"
#include "kernels/ops.h"

typedef struct fr_backend fr_backend;
typedef struct fr_bbuf fr_bbuf; /* a buffer in a backend's memory (opaque) */

typedef struct fr_backend_ops {
    void (*close)(fr_backend *b);
    int (*buf_new)(fr_backend *b, size_t n, fr_bbuf **out, fr_err *err);
    void (*buf_free)(fr_backend *b, fr_bbuf *buf);
    int (*upload)(fr_backend *b, fr_bbuf *buf, size_t off, const void *src, size_t n, fr_err *err);
    int (*download)(fr_backend *b, fr_bbuf *buf, size_t off, void *dst, size_t n, fr_err *err);
    int (*sync)(fr_backend *b, fr_err *err);
    uint64_t (*mem_current)(const fr_backend *b);
    uint64_t (*mem_peak)(const fr_backend *b);
    void (*set_budget)(fr_backend *b, uint64_t bytes);
    int (*type_ok)(fr_type t);
    int (*matmul)(fr_backend *b, fr_type type, fr_bbuf *w, size_t w_off, int64_t n_in, int64_t n_out, fr_bbuf *x,
                  size_t x_off, int n_tok, fr_bbuf *y, size_t y_off, fr_err *err);
    int (*norm)(fr_backend *b, int layer, int n, int n_rows, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off,
                fr_bbuf *w, size_t w_off, fr_bbuf *bias, size_t b_off, float eps, fr_err *err);
    int (*rope)(fr_backend *b, fr_bbuf *x, size_t x_off, int x_stride, int n_tok, int n_head, int head_dim, int n_rot,
                int neox, fr_bbuf *pos, const fr_rope_cfg *cfg, fr_bbuf *factors, fr_err *err);
    int (*act)(fr_backend *b, int mode, fr_bbuf *g, size_t g_off, fr_bbuf *u, size_t u_off, fr_bbuf *o, size_t o_off,
               int64_t n, fr_err *err);
    int (*add)(fr_backend *b, fr_bbuf *a, size_t a_off, fr_bbuf *bb, size_t b_off, int b_mod, fr_bbuf *o,
               size_t o_off, int64_t n, fr_err *err);
    int (*softmax)(fr_backend *b, fr_bbuf *x, size_t x_off, int n, int n_rows, fr_err *err);
    int (*attn_decode)(fr_backend *b, fr_bbuf *q, size_t q_off, fr_bbuf *k, fr_bbuf *v, int n_kv, int kv_stride,
                       int n_head, int n_head_kv, int head_dim, float scale, float softcap, fr_bbuf *o, size_t o_off,
                       fr_bbuf *scratch, fr_err *err);
    /* the device's read bandwidth (GB/s) over a buffer of up to `bytes` (*probed: the
     * size that fitted); NULL where the backend has no probe (the CPU: bench has its own) */
    int (*read_bandwidth)(fr_backend *b, size_t bytes, double *gbs, size_t *probed, fr_err *err);
    /* the driver's budget and this process's usage of the device-local heap (Vulkan:
     * VK_EXT_memory_budget): 1 and both set, 0 where the driver does not say; NULL: none */
    int (*heap_budget)(const fr_backend *b, uint64_t *budget, uint64_t *usage);
    /* Whole layers on the device (model/offload_layer.c); NULL where the backend lacks
     * them (then only matrix products go there). act_round: a product's input rounded
     * as the CPU kernels round it (FR_ROUND_*); kv_store / attn_kv16: the F16 KV cache
     * and causal attention over it (vk_ops.h's fr_vk_kv_store / fr_vk_attn_kv16). */
    int (*act_round)(fr_backend *b, int mode, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off, int64_t n,
                     int n_rows, fr_err *err);
    int (*kv_store)(fr_backend *b, fr_bbuf *k, size_t k_off, fr_bbuf *v, size_t v_off, int src_stride, int n_tok,
                    int row_len, fr_bbuf *pos, fr_bbuf *kc, fr_bbuf *vc, fr_err *err);
    int (*attn_kv16)(fr_backend *b, fr_bbuf *q, size_t q_off, int q_stride, int n_tok, fr_bbuf *kc, fr_bbuf *vc,
                     fr_bbuf *pos, int n_head, int n_head_kv, int head_dim, int window, float q_scale, float scale,
                     float softcap, fr_bbuf *o, size_t o_off, int o_stride, fr_err *err);
    /* The host address of a buffer the host may write directly (the CPU's, host-visible
     * device memory), or NULL (reach it only through upload/download). A write there is
     * the caller's to order against the ops that read the buffer. NULL op: none. */
    void *(*buf_host)(fr_backend *b, fr_bbuf *buf);
} fr_backend_ops;

struct fr_backend {
    const fr_backend_ops *ops;
    const char *kind;   /* "cpu", "vulkan" */
    char name[256];     /* the device's name */
    uint64_t mem_total; /* device memory in bytes (0: unknown / host RAM) */
    int is_cpu_device;  /* 1: a software device (lavapipe) or the CPU itself */
    void *impl;
};

/* Activation modes of ops->act. */
enum { FR_ACT_SWIGLU = 0, FR_ACT_GEGLU = 1, FR_ACT_GELU = 2 };
/* Rounding modes of ops->act_round: Q8_0 blocks, Q8_K blocks, F16 (as vk_ops.h). */
enum { FR_ROUND_Q8_0 = 0, FR_ROUND_Q8_K = 1, FR_ROUND_F16 = 2 };

/* Open a backend: kind "cpu" or "vulkan" (device: index, -1 the best one). NULL kind:
 * the first GPU backend that opens. FRUGAL_E_UNSUPPORTED with a message naming what is
 * missing ("vulkan: no Vulkan device found", "built without the Vulkan backend"). */
int fr_backend_open(const char *kind, int device, fr_backend **out, fr_err *err);
void fr_backend_close(fr_backend *b);

/* The implementations' constructors (backend_cpu.c, vulkan/vk_backend.c). */
int fr_backend_cpu_open(fr_backend **out, fr_err *err);
int fr_backend_vulkan_open(int device, fr_backend **out, fr_err *err);

#endif
