/* ops.h - the operations of a transformer forward pass, scalar reference versions.
 *
 * Layout conventions: a batch of activations is row-major [n_tok][n]; a weight
 * matrix W has n_out rows of n_in values in its own (possibly quantized) type, as
 * GGUF stores it (ne[0] = n_in). Matmul computes y[t][o] = dot(W[o], x[t]).
 * SIMD variants of the per-row kernels plug in through the type traits (core/types.h);
 * the drivers here split work across the thread pool. */
#ifndef FRUGAL_OPS_H
#define FRUGAL_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/types.h"
#include "kernels/dispatch.h"

typedef struct fr_weight {
    const void *data;   /* n_out rows, each fr_row_size(type, n_in) bytes */
    fr_type type;
    int64_t n_in, n_out;
    int layout;         /* FR_LAYOUT_ROWS, or FR_LAYOUT_IL16 (kernels/interleave.h) */
    const void *src;    /* the tensor in the mapped file (row-major), or NULL */
    int drop_pages;     /* 1: fr_weight_row gives the mapped pages of a row back after
                           reading it (under a memory budget; see fr_weight_row) */
} fr_weight;

enum { FR_LAYOUT_ROWS = 0, FR_LAYOUT_IL16 = 1 };

/* Bytes of scratch fr_matmul needs to hold n_tok activation rows converted to
 * the weight type's vec_dot_type. */
size_t fr_matmul_scratch(const fr_weight *w, int n_tok);

/* y[n_tok][n_out] = x[n_tok][n_in] * W^T. qbuf: fr_matmul_scratch bytes. */
void fr_matmul(fr_pool *pool, const fr_weight *w, const float *x, int n_tok, float *y, void *qbuf);

/* y_k = x * W_k^T for n_w matrices with the same input length (e.g. Wq, Wk, Wv):
 * the input is converted once and all rows are split across the pool in one pass.
 * Matrices whose vec_dot_type differs are handled one by one. */
void fr_matmul_multi(fr_pool *pool, int n_w, const fr_weight *const *ws, float *const *ys,
                     const float *x, int n_tok, void *qbuf);

/* Row r of W as floats (embedding lookup). */
/* Row r of w as floats. With w->drop_pages the pages of the file mapping around it
 * are released right after (MADV_DONTNEED): a read fault maps the neighbouring
 * cached pages too (fault-around, 64 KiB), so an embedding table read a row per
 * token would otherwise grow RSS by up to 64 KiB per distinct token, past a
 * --mem budget that counted one row. */
void fr_weight_row(const fr_weight *w, int64_t r, float *out);

/* out = x / rms(x) * w, n values (out may alias x). */
void fr_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* Rotary position embedding in place on n_head heads of head_dim values (the first
 * n_rot dims of each head rotate; neox = 0: pairs (2i, 2i+1) as in Llama, neox = 1:
 * pairs (i, i + n_rot/2) as in Qwen2/GPT-NeoX), with scaling as ggml's rope_ext: theta_i = pos * base^(-2i/n_rot) / factor_i
 * (factors NULL: 1), interpolated by freq_scale; with ext_factor != 0 (YaRN) blended
 * back towards the unscaled theta over the dims below the correction range and the
 * magnitude raised by 1 + 0.1 ln(1/freq_scale); cos and sin multiplied by attn_factor. */
typedef struct fr_rope_cfg {
    float base;
    float freq_scale;   /* 1 / rope.scaling.factor (linear, YaRN); 1: none */
    float ext_factor;   /* YaRN: 1; else 0 */
    float attn_factor;  /* magnitude scale of cos/sin */
    float beta_fast, beta_slow;
    int n_ctx_orig;     /* YaRN correction range; LongRoPE's long/short switch */
} fr_rope_cfg;
void fr_rope_ext(float *x, int n_head, int head_dim, int n_rot, int pos, const fr_rope_cfg *cfg,
                 const float *factors, int neox);

/* out = (x - mean) / sqrt(var + eps) * w (+ b when b != NULL), n values (out may alias x). */
void fr_layernorm(float *out, const float *x, const float *w, const float *b, int n, float eps);

/* GELU (tanh approximation) as the reference CPU engine evaluates it: the input rounded
 * to F16 and looked up in a table of F16 results; exact 0 / x beyond -10 / 10.
 * fr_gelu: out = gelu(x); fr_geglu: out = gelu(g) * u. out may alias the input. */
void fr_gelu(float *out, const float *x, int n);
void fr_geglu(float *out, const float *g, const float *u, int n);

/* x = cap * tanh(x / cap) in place (soft-capping of attention or output logits). */
void fr_softcap(float *x, int n, float cap);

/* In-place softmax over n values. */
void fr_softmax(float *x, int n);

/* out[i] = silu(g[i]) * u[i] */
void fr_swiglu(float *out, const float *g, const float *u, int n);

#endif
