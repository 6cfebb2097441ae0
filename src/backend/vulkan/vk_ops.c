/* vk_ops.c - host side of the ops in vk_ops.h: push constants and grid sizes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "backend/vulkan/vk_ops.h"

/* Grid for n independent elements in workgroups of wg: x at most 65535 wide (the
 * minimum every device allows), the rest in y; shaders rebuild the index the same way. */
static void grid1d(int64_t n, uint32_t wg, uint32_t *gx, uint32_t *gy) {
    const uint64_t groups = (uint64_t)(n + wg - 1) / wg;
    *gx = groups < 65535 ? (uint32_t)(groups ? groups : 1) : 65535u;
    *gy = (uint32_t)((groups + *gx - 1) / *gx);
    if (*gy == 0) *gy = 1;
}

int fr_vk_type_ok(fr_type t) {
    return t == FR_TYPE_F32 || t == FR_TYPE_F16 || t == FR_TYPE_Q8_0 || t == FR_TYPE_Q4_0 || t == FR_TYPE_Q4_K ||
           t == FR_TYPE_Q6_K;
}

static const char *type_suffix(fr_type t) {
    switch (t) {
    case FR_TYPE_F32: return "f32";
    case FR_TYPE_F16: return "f16";
    case FR_TYPE_Q8_0: return "q8_0";
    case FR_TYPE_Q4_0: return "q4_0";
    case FR_TYPE_Q4_K: return "q4_k";
    case FR_TYPE_Q6_K: return "q6_k";
    default: return NULL;
    }
}

int fr_vk_matmul(fr_vk *vk, fr_type type, fr_vk_buf *w, size_t w_off, int64_t n_in, int64_t n_out, fr_vk_buf *x,
                 size_t x_off, int n_tok, fr_vk_buf *y, size_t y_off, fr_err *err) {
    const char *sfx = type_suffix(type);
    if (!sfx) return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "vulkan: no matrix kernel for type %d", (int)type);
    if (n_in % fr_type_traits_scalar(type)->blck_size)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: row of %lld values is not whole blocks", (long long)n_in);
    const uint32_t pc[9] = {(uint32_t)n_in, (uint32_t)n_out, (uint32_t)n_tok, (uint32_t)w_off,
                            (uint32_t)fr_row_size(type, n_in), (uint32_t)x_off, (uint32_t)n_in, (uint32_t)y_off,
                            (uint32_t)n_out};
    fr_vk_buf *bufs[3] = {w, x, y};
    char name[16];
    if (n_tok <= 4) { /* decode: one workgroup per row and token */
        snprintf(name, sizeof name, "mv_%s", sfx);
        const uint32_t gx = n_out < 32768 ? (uint32_t)n_out : 32768u, gy = (uint32_t)((n_out + 32767) / 32768);
        return fr_vk_dispatch(vk, name, 3, bufs, pc, sizeof pc, gx, gy, (uint32_t)n_tok, err);
    }
    snprintf(name, sizeof name, "mm_%s", sfx);
    return fr_vk_dispatch(vk, name, 3, bufs, pc, sizeof pc, (uint32_t)((n_out + 31) / 32), (uint32_t)((n_tok + 31) / 32),
                          1, err);
}

int fr_vk_norm(fr_vk *vk, int layer, int n, int n_rows, fr_vk_buf *x, size_t x_off, fr_vk_buf *o, size_t o_off,
               fr_vk_buf *w, size_t w_off, fr_vk_buf *b, size_t b_off, float eps, fr_err *err) {
    struct {
        uint32_t n, mode, flags, x_off, x_stride, o_off, o_stride, w_off, b_off;
        float eps;
    } pc = {(uint32_t)n, layer ? 1u : 0u, (w ? 1u : 0u) | (b ? 2u : 0u), (uint32_t)x_off, (uint32_t)n,
            (uint32_t)o_off, (uint32_t)n, (uint32_t)w_off, (uint32_t)b_off, eps};
    fr_vk_buf *bufs[4] = {x, o, w ? w : x, b ? b : x};
    return fr_vk_dispatch(vk, "norm", 4, bufs, &pc, sizeof pc, (uint32_t)n_rows, 1, 1, err);
}

/* YaRN's correction range, as the CPU (kernels/ops.c, ggml's rope_yarn_corr_dims). */
static void corr_dims(int n_rot, const fr_rope_cfg *c, float d[2]) {
    const float pi = 3.14159265358979323846f;
    const float lo = floorf(n_rot * logf(c->n_ctx_orig / (c->beta_fast * 2 * pi)) / (2 * logf(c->base)));
    const float hi = ceilf(n_rot * logf(c->n_ctx_orig / (c->beta_slow * 2 * pi)) / (2 * logf(c->base)));
    d[0] = lo > 0 ? lo : 0;
    d[1] = hi < n_rot - 1 ? hi : (float)(n_rot - 1);
}

int fr_vk_rope(fr_vk *vk, fr_vk_buf *x, size_t x_off, int x_stride, int n_tok, int n_head, int head_dim, int n_rot,
               int neox, fr_vk_buf *pos, const fr_rope_cfg *cfg, fr_vk_buf *factors, fr_err *err) {
    float corr[2] = {0, 0};
    if (cfg->ext_factor != 0.0f) corr_dims(n_rot, cfg, corr);
    struct {
        uint32_t n_head, head_dim, n_rot, neox, n_tok, x_off, x_stride, flags;
        float base, freq_scale, ext_factor, attn_factor, corr0, corr1;
    } pc = {(uint32_t)n_head, (uint32_t)head_dim, (uint32_t)n_rot, neox ? 1u : 0u, (uint32_t)n_tok, (uint32_t)x_off,
            (uint32_t)x_stride, factors ? 1u : 0u, cfg->base, cfg->freq_scale, cfg->ext_factor, cfg->attn_factor,
            corr[0], corr[1]};
    fr_vk_buf *bufs[3] = {x, pos, factors ? factors : pos};
    const int64_t n = (int64_t)n_tok * n_head * (n_rot / 2);
    return fr_vk_dispatch(vk, "rope", 3, bufs, &pc, sizeof pc, (uint32_t)((n + 63) / 64), 1, 1, err);
}

int fr_vk_act(fr_vk *vk, int mode, fr_vk_buf *g, size_t g_off, fr_vk_buf *u, size_t u_off, fr_vk_buf *o,
              size_t o_off, int64_t n, fr_err *err) {
    const uint32_t pc[5] = {(uint32_t)n, (uint32_t)mode, (uint32_t)g_off, (uint32_t)u_off, (uint32_t)o_off};
    fr_vk_buf *bufs[3] = {g, u ? u : g, o};
    uint32_t gx, gy;
    grid1d(n, 256, &gx, &gy);
    return fr_vk_dispatch(vk, "act", 3, bufs, pc, sizeof pc, gx, gy, 1, err);
}

int fr_vk_add(fr_vk *vk, fr_vk_buf *a, size_t a_off, fr_vk_buf *b, size_t b_off, int b_mod, fr_vk_buf *o,
              size_t o_off, int64_t n, fr_err *err) {
    const uint32_t pc[5] = {(uint32_t)n, (uint32_t)a_off, (uint32_t)b_off, (uint32_t)o_off, (uint32_t)b_mod};
    fr_vk_buf *bufs[3] = {a, b, o};
    uint32_t gx, gy;
    grid1d(n, 256, &gx, &gy);
    return fr_vk_dispatch(vk, "add", 3, bufs, pc, sizeof pc, gx, gy, 1, err);
}

int fr_vk_softmax(fr_vk *vk, fr_vk_buf *x, size_t x_off, int n, int n_rows, fr_err *err) {
    const uint32_t pc[3] = {(uint32_t)n, (uint32_t)x_off, (uint32_t)n};
    return fr_vk_dispatch(vk, "softmax", 1, &x, pc, sizeof pc, (uint32_t)n_rows, 1, 1, err);
}

int fr_vk_attn_decode(fr_vk *vk, fr_vk_buf *q, size_t q_off, fr_vk_buf *k, fr_vk_buf *v, int n_kv, int kv_stride,
                      int n_head, int n_head_kv, int head_dim, float scale, float softcap, fr_vk_buf *o,
                      size_t o_off, fr_vk_buf *scratch, fr_err *err) {
    if (n_head_kv <= 0 || n_head % n_head_kv)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: %d query heads over %d KV heads", n_head, n_head_kv);
    if (fr_vk_buf_size(scratch) < (size_t)n_head * n_kv * sizeof(float))
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: attention scratch too small");
    struct {
        uint32_t n_head, n_head_kv, head_dim, n_kv, kv_stride, q_off, o_off;
        float scale, softcap;
    } pc = {(uint32_t)n_head, (uint32_t)n_head_kv, (uint32_t)head_dim, (uint32_t)n_kv, (uint32_t)kv_stride,
            (uint32_t)q_off, (uint32_t)o_off, scale, softcap};
    fr_vk_buf *bufs[5] = {q, k, v, o, scratch};
    return fr_vk_dispatch(vk, "attn", 5, bufs, &pc, sizeof pc, (uint32_t)n_head, 1, 1, err);
}

int fr_vk_act_round(fr_vk *vk, int mode, fr_vk_buf *x, size_t x_off, fr_vk_buf *o, size_t o_off, int64_t n,
                    int n_rows, fr_err *err) {
    const int64_t blk = mode == FR_VK_ROUND_Q8_0 ? 32 : mode == FR_VK_ROUND_Q8_K ? 256 : 1;
    if (n % blk) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: row of %lld values is not whole blocks", (long long)n);
    const int64_t n_blocks = n / blk * n_rows;
    const uint32_t pc[4] = {(uint32_t)n_blocks, (uint32_t)mode, (uint32_t)x_off, (uint32_t)o_off};
    fr_vk_buf *bufs[2] = {x, o};
    uint32_t gx, gy;
    grid1d(n_blocks, 64, &gx, &gy);
    return fr_vk_dispatch(vk, "act_round", 2, bufs, pc, sizeof pc, gx, gy, 1, err);
}

int fr_vk_kv_store(fr_vk *vk, fr_vk_buf *k, size_t k_off, fr_vk_buf *v, size_t v_off, int src_stride, int n_tok,
                   int row_len, fr_vk_buf *pos, fr_vk_buf *kc, fr_vk_buf *vc, fr_err *err) {
    if (row_len % 2) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: KV row of %d values is odd", row_len);
    const uint32_t pc[5] = {(uint32_t)n_tok, (uint32_t)row_len, (uint32_t)k_off, (uint32_t)v_off, (uint32_t)src_stride};
    fr_vk_buf *bufs[5] = {k, v, kc, vc, pos};
    const int64_t n = (int64_t)n_tok * (row_len / 2);
    return fr_vk_dispatch(vk, "kv_store", 5, bufs, pc, sizeof pc, (uint32_t)((n + 63) / 64), 1, 1, err);
}

int fr_vk_attn_kv16(fr_vk *vk, fr_vk_buf *q, size_t q_off, int q_stride, int n_tok, fr_vk_buf *kc, fr_vk_buf *vc,
                    fr_vk_buf *pos, int n_head, int n_head_kv, int head_dim, int window, float q_scale, float scale,
                    float softcap, fr_vk_buf *o, size_t o_off, int o_stride, fr_err *err) {
    if (n_head_kv <= 0 || n_head % n_head_kv || head_dim % 2 || head_dim > 256)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: attention of %d heads over %d KV heads of %d values",
                          n_head, n_head_kv, head_dim);
    struct {
        uint32_t n_head, n_head_kv, head_dim, q_off, q_stride, o_off, o_stride, window;
        float scale, softcap, q_scale;
    } pc = {(uint32_t)n_head, (uint32_t)n_head_kv, (uint32_t)head_dim, (uint32_t)q_off, (uint32_t)q_stride,
            (uint32_t)o_off, (uint32_t)o_stride, (uint32_t)(window > 0 ? window : 0), scale, softcap, q_scale};
    fr_vk_buf *bufs[5] = {q, kc, vc, o, pos};
    return fr_vk_dispatch(vk, "attn_kv16", 5, bufs, &pc, sizeof pc, (uint32_t)n_head, (uint32_t)n_tok, 1, err);
}
