/* vk_backend.c - the Vulkan runtime and ops (vk.h, vk_ops.h) behind backend.h: an fr_bbuf
 * is an fr_vk_buf, and each op records its dispatch into the device's stream. */
#include <stdio.h>
#include <stdlib.h>

#include "core/fault.h"
#include "backend/backend.h"
#include "backend/vulkan/vk.h"
#include "backend/vulkan/vk_ops.h"

#define VK(b) ((fr_vk *)(b)->impl)
#define VB(x) ((fr_vk_buf *)(void *)(x))

static void v_close(fr_backend *b) {
    fr_vk_close(VK(b));
    free(b);
}
static int v_buf_new(fr_backend *b, size_t n, fr_bbuf **out, fr_err *err) {
    return fr_vk_buf_new(VK(b), n, (fr_vk_buf **)(void *)out, err);
}
static void v_buf_free(fr_backend *b, fr_bbuf *x) { fr_vk_buf_free(VK(b), VB(x)); }
static int v_upload(fr_backend *b, fr_bbuf *x, size_t off, const void *src, size_t n, fr_err *err) {
    return fr_vk_upload(VK(b), VB(x), off, src, n, err);
}
static int v_download(fr_backend *b, fr_bbuf *x, size_t off, void *dst, size_t n, fr_err *err) {
    return fr_vk_download(VK(b), VB(x), off, dst, n, err);
}
static int v_sync(fr_backend *b, fr_err *err) { return fr_vk_run(VK(b), err); }
static uint64_t v_cur(const fr_backend *b) { return fr_vk_mem_current(VK(b)); }
static uint64_t v_peak(const fr_backend *b) { return fr_vk_mem_peak(VK(b)); }
static void v_budget(fr_backend *b, uint64_t bytes) { fr_vk_set_budget(VK(b), bytes); }

static int v_matmul(fr_backend *b, fr_type type, fr_bbuf *w, size_t w_off, int64_t n_in, int64_t n_out, fr_bbuf *x,
                    size_t x_off, int n_tok, fr_bbuf *y, size_t y_off, fr_err *err) {
    return fr_vk_matmul(VK(b), type, VB(w), w_off, n_in, n_out, VB(x), x_off, n_tok, VB(y), y_off, err);
}
static int v_norm(fr_backend *b, int layer, int n, int n_rows, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off,
                  fr_bbuf *w, size_t w_off, fr_bbuf *bias, size_t b_off, float eps, fr_err *err) {
    return fr_vk_norm(VK(b), layer, n, n_rows, VB(x), x_off, VB(o), o_off, VB(w), w_off, VB(bias), b_off, eps, err);
}
static int v_rope(fr_backend *b, fr_bbuf *x, size_t x_off, int x_stride, int n_tok, int n_head, int head_dim,
                  int n_rot, int neox, fr_bbuf *pos, const fr_rope_cfg *cfg, fr_bbuf *factors, fr_err *err) {
    return fr_vk_rope(VK(b), VB(x), x_off, x_stride, n_tok, n_head, head_dim, n_rot, neox, VB(pos), cfg, VB(factors),
                      err);
}
static int v_act(fr_backend *b, int mode, fr_bbuf *g, size_t g_off, fr_bbuf *u, size_t u_off, fr_bbuf *o,
                 size_t o_off, int64_t n, fr_err *err) {
    return fr_vk_act(VK(b), mode, VB(g), g_off, VB(u), u_off, VB(o), o_off, n, err);
}
static int v_add(fr_backend *b, fr_bbuf *a, size_t a_off, fr_bbuf *bb, size_t b_off, int b_mod, fr_bbuf *o,
                 size_t o_off, int64_t n, fr_err *err) {
    return fr_vk_add(VK(b), VB(a), a_off, VB(bb), b_off, b_mod, VB(o), o_off, n, err);
}
static int v_softmax(fr_backend *b, fr_bbuf *x, size_t x_off, int n, int n_rows, fr_err *err) {
    return fr_vk_softmax(VK(b), VB(x), x_off, n, n_rows, err);
}
static int v_attn(fr_backend *b, fr_bbuf *q, size_t q_off, fr_bbuf *k, fr_bbuf *v, int n_kv, int kv_stride,
                  int n_head, int n_head_kv, int head_dim, float scale, float softcap, fr_bbuf *o, size_t o_off,
                  fr_bbuf *scratch, fr_err *err) {
    return fr_vk_attn_decode(VK(b), VB(q), q_off, VB(k), VB(v), n_kv, kv_stride, n_head, n_head_kv, head_dim, scale,
                             softcap, VB(o), o_off, VB(scratch), err);
}

static int v_read_bw(fr_backend *b, size_t bytes, double *gbs, size_t *probed, fr_err *err) {
    return fr_vk_read_bandwidth(VK(b), bytes, gbs, probed, err);
}

static int v_heap_budget(const fr_backend *b, uint64_t *budget, uint64_t *usage) {
    return fr_vk_heap_budget(VK(b), budget, usage);
}

static int v_round(fr_backend *b, int mode, fr_bbuf *x, size_t x_off, fr_bbuf *o, size_t o_off, int64_t n,
                   int n_rows, fr_err *err) {
    return fr_vk_act_round(VK(b), mode, VB(x), x_off, VB(o), o_off, n, n_rows, err);
}
static int v_kv_store(fr_backend *b, fr_bbuf *k, size_t k_off, fr_bbuf *v, size_t v_off, int src_stride, int n_tok,
                      int row_len, fr_bbuf *pos, fr_bbuf *kc, fr_bbuf *vc, fr_err *err) {
    return fr_vk_kv_store(VK(b), VB(k), k_off, VB(v), v_off, src_stride, n_tok, row_len, VB(pos), VB(kc), VB(vc), err);
}
static int v_attn16(fr_backend *b, fr_bbuf *q, size_t q_off, int q_stride, int n_tok, fr_bbuf *kc, fr_bbuf *vc,
                    fr_bbuf *pos, int n_head, int n_head_kv, int head_dim, int window, float q_scale, float scale,
                    float softcap, fr_bbuf *o, size_t o_off, int o_stride, fr_err *err) {
    return fr_vk_attn_kv16(VK(b), VB(q), q_off, q_stride, n_tok, VB(kc), VB(vc), VB(pos), n_head, n_head_kv, head_dim,
                           window, q_scale, scale, softcap, VB(o), o_off, o_stride, err);
}

static void *v_buf_host(fr_backend *b, fr_bbuf *x) {
    (void)b;
    return fr_vk_buf_host(VB(x));
}

static const fr_backend_ops vk_backend_ops = {
    v_close, v_buf_new, v_buf_free, v_upload, v_download, v_sync, v_cur, v_peak, v_budget,
    fr_vk_type_ok, v_matmul, v_norm, v_rope, v_act, v_add, v_softmax, v_attn, v_read_bw, v_heap_budget,
    v_round, v_kv_store, v_attn16, v_buf_host,
};

int fr_backend_vulkan_open(int device, fr_backend **out, fr_err *err) {
    *out = NULL;
    fr_vk *vk = NULL;
    int rc = fr_vk_open(device, &vk, err);
    if (rc) return rc;
    fr_backend *b = fr_calloc(1, sizeof *b);
    if (!b) {
        fr_vk_close(vk);
        return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: out of memory");
    }
    b->ops = &vk_backend_ops;
    b->kind = "vulkan";
    snprintf(b->name, sizeof b->name, "%s", fr_vk_name(vk));
    b->mem_total = fr_vk_vram(vk);
    b->is_cpu_device = fr_vk_is_cpu(vk);
    b->impl = vk;
    *out = b;
    return FRUGAL_OK;
}
