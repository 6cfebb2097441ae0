/* vk_ops.h - the forward pass's ops on a Vulkan device (shaders in shaders/).
 *
 * Activations are float32 arrays in device buffers, addressed by element offsets;
 * weights keep their GGUF bytes (row-major rows of fr_row_size bytes) at a byte offset.
 * Each call records its dispatch into the device's stream (vk.h): nothing runs until
 * fr_vk_run or a download. Results match the CPU scalar reference within float
 * rounding (the tolerances are in tests/test_vulkan_ops.c). */
#ifndef FRUGAL_VK_OPS_H
#define FRUGAL_VK_OPS_H

#include "backend/vulkan/vk.h"
#include "core/types.h"
#include "kernels/ops.h"

/* 1 when weights of type t run on the device (F32, F16, Q8_0, Q4_0, Q4_K, Q6_K). */
int fr_vk_type_ok(fr_type t);

/* y[t][r] = dot(W[r], x[t]) for t < n_tok, r < n_out; W: n_out rows of type t at byte
 * w_off of w; x: n_tok rows of n_in floats at x_off; y: n_tok rows of n_out at y_off.
 * Decode-sized batches use the matrix-vector kernel, larger ones the tiled kernel. */
int fr_vk_matmul(fr_vk *vk, fr_type type, fr_vk_buf *w, size_t w_off, int64_t n_in, int64_t n_out, fr_vk_buf *x,
                 size_t x_off, int n_tok, fr_vk_buf *y, size_t y_off, fr_err *err);

/* n_rows rows of n values: o = norm(x) * w [+ b]; layer 0 RMSNorm, 1 LayerNorm; w and b
 * may be NULL (no scale / no bias). o may be x. */
int fr_vk_norm(fr_vk *vk, int layer, int n, int n_rows, fr_vk_buf *x, size_t x_off, fr_vk_buf *o, size_t o_off,
               fr_vk_buf *w, size_t w_off, fr_vk_buf *b, size_t b_off, float eps, fr_err *err);

/* RoPE in place on n_tok rows (stride x_stride) of n_head heads, each token at the
 * position pos[t] (int32 in buffer pos); factors: n_rot/2 divisors or NULL. */
int fr_vk_rope(fr_vk *vk, fr_vk_buf *x, size_t x_off, int x_stride, int n_tok, int n_head, int head_dim, int n_rot,
               int neox, fr_vk_buf *pos, const fr_rope_cfg *cfg, fr_vk_buf *factors, fr_err *err);

enum { FR_VK_SWIGLU = 0, FR_VK_GEGLU = 1, FR_VK_GELU = 2 };
/* o = act(g) [* u] over n elements (u unused for FR_VK_GELU; o may be g). */
int fr_vk_act(fr_vk *vk, int mode, fr_vk_buf *g, size_t g_off, fr_vk_buf *u, size_t u_off, fr_vk_buf *o,
              size_t o_off, int64_t n, fr_err *err);

/* o = a + b over n elements; b_mod != 0: b read at i % b_mod (a bias over rows). */
int fr_vk_add(fr_vk *vk, fr_vk_buf *a, size_t a_off, fr_vk_buf *b, size_t b_off, int b_mod, fr_vk_buf *o,
              size_t o_off, int64_t n, fr_err *err);

/* In-place softmax of n_rows rows of n values. */
int fr_vk_softmax(fr_vk *vk, fr_vk_buf *x, size_t x_off, int n, int n_rows, fr_err *err);

/* Decode attention of one token: o[h] = softmax(q[h] . K[j] * scale [soft-capped by
 * softcap > 0]) . V over j < n_kv, for n_head query heads over n_head_kv KV heads of
 * head_dim; K/V rows of kv_stride floats (position j at j * kv_stride); scratch holds
 * n_head * n_kv floats. */
int fr_vk_attn_decode(fr_vk *vk, fr_vk_buf *q, size_t q_off, fr_vk_buf *k, fr_vk_buf *v, int n_kv, int kv_stride,
                      int n_head, int n_head_kv, int head_dim, float scale, float softcap, fr_vk_buf *o,
                      size_t o_off, fr_vk_buf *scratch, fr_err *err);

/* A matrix product's input rounded as the CPU rounds it: n_rows rows of n values at x_off
 * to o_off (o may be x); mode FR_VK_ROUND_Q8_0 (n a multiple of 32), _Q8_K (of 256), _F16. */
enum { FR_VK_ROUND_Q8_0 = 0, FR_VK_ROUND_Q8_K = 1, FR_VK_ROUND_F16 = 2 };
int fr_vk_act_round(fr_vk *vk, int mode, fr_vk_buf *x, size_t x_off, fr_vk_buf *o, size_t o_off, int64_t n,
                    int n_rows, fr_err *err);

/* F16 KV cache append: token t < n_tok's K and V rows (row_len floats, even, at k_off /
 * v_off + t * src_stride of k and v) stored at row pos[t] of kc and vc (F16, row_len
 * halves per row). */
int fr_vk_kv_store(fr_vk *vk, fr_vk_buf *k, size_t k_off, fr_vk_buf *v, size_t v_off, int src_stride, int n_tok,
                   int row_len, fr_vk_buf *pos, fr_vk_buf *kc, fr_vk_buf *vc, fr_err *err);

/* Causal attention of n_tok query tokens over an F16 cache (rows of n_head_kv * head_dim
 * halves): token t (queries at q_off + t * q_stride) attends to rows lo..pos[t] (lo =
 * pos[t] - window + 1 with a window, else 0); scores = softcap(q * q_scale . k) * scale;
 * output at o_off + t * o_stride. head_dim even and <= 256. */
int fr_vk_attn_kv16(fr_vk *vk, fr_vk_buf *q, size_t q_off, int q_stride, int n_tok, fr_vk_buf *kc, fr_vk_buf *vc,
                    fr_vk_buf *pos, int n_head, int n_head_kv, int head_dim, int window, float q_scale, float scale,
                    float softcap, fr_vk_buf *o, size_t o_off, int o_stride, fr_err *err);

/* The device's read bandwidth in GB/s (*gbs): a buffer of `bytes` in device memory (halved
 * until it fits the memory or budget, down to 64 KiB; *probed: the size used) summed by a
 * shader, best of four timed passes; the buffer is freed before return (vk_probe.c). */
int fr_vk_read_bandwidth(fr_vk *vk, size_t bytes, double *gbs, size_t *probed, fr_err *err);

#endif
