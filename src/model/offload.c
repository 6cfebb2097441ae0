/* offload.c - the device layers of offload.h: weights uploaded once, matrix products
 * sent to the backend one at a time (input up, product, output down). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/fault.h"
#include "backend/backend.h"
#include "frugal.h"
#include "kernels/dispatch.h"
#include "model/model.h"
#include "model/offload.h"
#include "model/offload_impl.h"

/* The activation buffers' sizes: CHUNK tokens of the widest input and output. */
static void act_sizes(const frugal_model *m, size_t *xn, size_t *yn) {
    const int64_t d = m->hp.n_embd > m->hp.n_ff ? m->hp.n_embd : m->hp.n_ff;
    const int64_t qkv = (m->hp.n_head + 2 * m->hp.n_head_kv) * (int64_t)m->hp.head_dim;
    const int64_t dmax = qkv > d ? qkv : d;
    *xn = sizeof(float) * CHUNK * (size_t)dmax;
    *yn = sizeof(float) * CHUNK * (size_t)(2 * dmax > m->hp.n_vocab ? 2 * dmax : m->hp.n_vocab);
}

/* Row-major bytes of w on the host, or NULL (repacked without its mapped copy). */
static const void *row_major(const fr_weight *w) { return w->layout == FR_LAYOUT_ROWS ? w->data : w->src; }

static int upload_weight(fr_offload *o, const fr_weight *w, fr_err *err) {
    const void *src = row_major(w);
    if (!w->data || !src || !o->be->ops->type_ok(w->type)) return FRUGAL_OK; /* stays on the CPU */
    if (o->n_res == o->cap_res) {
        const int cap = o->cap_res ? 2 * o->cap_res : 64;
        resident *r = fr_realloc(o->res, sizeof *r * (size_t)cap);
        if (!r) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        o->res = r, o->cap_res = cap;
    }
    const size_t bytes = fr_row_size(w->type, w->n_in) * (size_t)w->n_out;
    fr_bbuf *b = NULL;
    int rc = o->be->ops->buf_new(o->be, bytes, &b, err);
    if (!rc) rc = o->be->ops->upload(o->be, b, 0, src, bytes, err);
    if (rc) {
        if (b) o->be->ops->buf_free(o->be, b);
        return rc;
    }
    o->res[o->n_res++] = (resident){w->data, b, w->type, w->n_in, w->n_out, 0};
    o->res_dev += fr_dev_bytes(bytes), o->res_host += bytes;
    return FRUGAL_OK;
}

/* Free the residents from index `from` on (a layer that did not fit entirely). */
static void drop_from(fr_offload *o, int from) {
    while (o->n_res > from) {
        const resident *r = &o->res[--o->n_res];
        const uint64_t bytes = fr_row_size(r->type, r->n_in) * (uint64_t)r->n_out;
        o->res_dev -= fr_dev_bytes(bytes), o->res_host -= bytes;
        o->be->ops->buf_free(o->be, r->buf);
    }
}

/* ---- --gpu-stream: the layers past the budget, copied into two rotating slots */

static size_t align16(size_t n) { return (n + 15) & ~(size_t)15; } /* any shader's word alignment */

static bool on_device(const fr_offload *o, const fr_weight *w) {
    return w->data && row_major(w) && o->be->ops->type_ok(w->type);
}

/* Slot bytes of layer il: its device-typed matrices, each at a 16-byte aligned offset. */
static size_t slot_bytes(const fr_offload *o, const frugal_model *m, int il) {
    size_t n = 0;
    for (int j = 0; j < FR_LAYER_MATRICES; j++) {
        const fr_weight *w = &m->layers[il].mat[j];
        if (fr_layer_mat_repackable(j) && on_device(o, w)) n = align16(n) + fr_row_size(w->type, w->n_in) * w->n_out;
    }
    return align16(n);
}

static int add_streamed_layer(fr_offload *o, const frugal_model *m, int il, fr_err *err) {
    size_t off = 0;
    for (int j = 0; j < FR_LAYER_MATRICES; j++) {
        const fr_weight *w = &m->layers[il].mat[j];
        if (!fr_layer_mat_repackable(j) || !on_device(o, w)) continue;
        if (o->n_st == o->cap_st) {
            const int cap = o->cap_st ? 2 * o->cap_st : 32;
            streamed *t = fr_realloc(o->st, sizeof *t * (size_t)cap);
            if (!t) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
            o->st = t, o->cap_st = cap;
        }
        const size_t bytes = fr_row_size(w->type, w->n_in) * (size_t)w->n_out;
        o->st[o->n_st++] = (streamed){w->data, row_major(w), il, off, bytes, w->type, w->n_in, w->n_out};
        off = align16(off + bytes);
    }
    return FRUGAL_OK;
}

static void free_slots(fr_offload *o) {
    fr_stream_stop(o);
    for (int k = 0; k < 2; k++)
        if (o->slot[k]) o->be->ops->buf_free(o->be, o->slot[k]), o->slot[k] = NULL;
}

/* The two slots, sized for the largest layer that might stream, taken from the budget
 * before any layer is placed (so resident layers + slots stay within it). No room: a
 * message, and the layers past the budget run on the CPU as without the flag. */
static int open_slots(fr_offload *o, const frugal_model *m, fr_err *err) {
    size_t mx = 0;
    for (int il = o->first_layer; il < m->hp.n_layer; il++) {
        const size_t n = slot_bytes(o, m, il);
        mx = n > mx ? n : mx;
    }
    if (!mx) return FRUGAL_OK;
    int rc = FRUGAL_OK;
    for (int k = 0; k < 2 && !rc; k++) rc = o->be->ops->buf_new(o->be, mx, &o->slot[k], err);
    if (rc == FRUGAL_E_NOMEM) {
        free_slots(o);
        fprintf(stderr, "frugal: %s: %s: no room for two stream buffers of %.2f MiB, --gpu-stream off\n", o->be->name,
                err->message, mx / 1048576.0);
        fr_err_clear(err);
        return FRUGAL_OK;
    }
    o->slot_n = mx, o->slot_layer[0] = o->slot_layer[1] = -1;
    fr_stream_start(o); /* the copy-ahead worker, where the slots are host-mapped */
    return rc;
}

static const streamed *find_st(const fr_offload *o, const void *key) {
    for (int i = 0; i < o->n_st; i++)
        if (o->st[i].key == key) return &o->st[i];
    return NULL;
}

static int place_layers(fr_offload *o, frugal_model *m, int n_gpu_layers, fr_err *err) {
    const int n_layer = m->hp.n_layer;
    const int n = n_gpu_layers < 0 || n_gpu_layers > n_layer ? n_layer : n_gpu_layers;
    o->first_layer = n_layer - n;
    for (int il = o->first_layer; il < n_layer; il++) {
        const int mark = o->n_res;
        int rc = FRUGAL_OK;
        for (int j = 0; j < FR_LAYER_MATRICES && !rc; j++)
            if (fr_layer_mat_repackable(j)) rc = upload_weight(o, &m->layers[il].mat[j], err);
        if (!rc) rc = fr_whole_place_layer(o, m, il, err); /* its vectors and KV cache */
        if (rc == FRUGAL_E_NOMEM) { /* keep what fits, the rest runs on the CPU or streams */
            drop_from(o, mark);
            fr_whole_drop_layer(o, il);
            if (o->slot[0]) {
                fr_err_clear(err);
                rc = FRUGAL_OK;
                for (int k = il; k < n_layer && !rc; k++) rc = add_streamed_layer(o, m, k, err);
                if (rc == FRUGAL_E_NOMEM) return rc;
                fprintf(stderr, "frugal: %s: layers %d-%d past the budget are streamed (2 buffers of %.2f MiB)\n",
                        o->be->name, il, n_layer - 1, o->slot_n / 1048576.0);
            } else {
                fprintf(stderr, "frugal: %s: %s: layers %d-%d run on the CPU\n", o->be->name, err->message, il,
                        n_layer - 1);
                fr_err_clear(err);
            }
            return FRUGAL_OK;
        }
        if (rc) return rc;
        o->n_layers++;
    }
    if (n_gpu_layers < 0 || n_gpu_layers > n_layer) {
        const int mark = o->n_res;
        const int rc = upload_weight(o, &m->output, err);
        if (rc == FRUGAL_E_NOMEM) {
            drop_from(o, mark);
            fprintf(stderr, "frugal: %s: %s: the output matrix runs on the CPU\n", o->be->name, err->message);
            fr_err_clear(err);
        } else if (rc) {
            return rc;
        }
    }
    return FRUGAL_OK;
}

int fr_offload_new(frugal_model *m, int n_gpu_layers, uint64_t vram_budget, int stream, fr_offload **out,
                   fr_err *err) {
    *out = NULL;
    fr_offload *o = fr_calloc(1, sizeof *o);
    if (!o) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    pthread_mutex_init(&o->mu, NULL);
    pthread_mutex_init(&o->pf_mu, NULL);
    pthread_cond_init(&o->pf_cv, NULL);
    const char *kind = getenv("FRUGAL_BACKEND");
    int rc = fr_backend_open(kind && *kind ? kind : "vulkan", -1, &o->be, err);
    if (!rc) {
        if (vram_budget) o->be->ops->set_budget(o->be, vram_budget);
        o->budget = vram_budget;
        /* the activation buffers first (CHUNK tokens), so the budget counts them too */
        size_t xn, yn;
        act_sizes(m, &xn, &yn);
        rc = o->be->ops->buf_new(o->be, xn, &o->xb, err);
        if (!rc) rc = o->be->ops->buf_new(o->be, yn, &o->yb, err);
        o->xb_n = o->xb ? xn : 0, o->yb_n = o->yb ? yn : 0;
        if (rc == FRUGAL_E_NOMEM) { /* not even the activations fit: every layer on the CPU */
            fprintf(stderr, "frugal: %s: %s: every layer runs on the CPU\n", o->be->name, err->message);
            fr_err_clear(err);
            *out = o;
            return FRUGAL_OK;
        }
        /* whole layers: their activation buffers before any layer, as above */
        if (!rc && fr_whole_supported(o, m)) rc = fr_whole_open(o, m, err);
        if (!rc && stream) {
            const int n = n_gpu_layers < 0 || n_gpu_layers > m->hp.n_layer ? m->hp.n_layer : n_gpu_layers;
            o->first_layer = m->hp.n_layer - n;
            rc = open_slots(o, m, err);
        }
        if (!rc) rc = place_layers(o, m, n_gpu_layers, err);
        if (!rc && !o->n_st) free_slots(o); /* everything fitted: the slots are not needed */
    }
    if (rc) {
        fr_offload_free(o);
        return rc;
    }
    *out = o;
    return FRUGAL_OK;
}

void fr_offload_free(fr_offload *o) {
    if (!o) return;
    if (o->be) {
        drop_from(o, 0);
        fr_whole_free(o);
        free_slots(o);
        if (o->xb) o->be->ops->buf_free(o->be, o->xb);
        if (o->yb) o->be->ops->buf_free(o->be, o->yb);
        fr_backend_close(o->be);
    }
    free(o->res);
    free(o->st);
    free(o->xr);
    free(o->xq);
    pthread_mutex_destroy(&o->mu);
    pthread_mutex_destroy(&o->pf_mu);
    pthread_cond_destroy(&o->pf_cv);
    free(o);
}

static const resident *find(const fr_offload *o, const void *key) {
    for (int i = 0; i < o->n_res; i++)
        if (o->res[i].key == key) return &o->res[i];
    return NULL;
}

bool fr_offload_has(const fr_offload *o, const fr_weight *w) {
    return o && !o->failed && (find(o, w->data) || find_st(o, w->data));
}

/* *p holds at least n bytes of host memory. */
static int host_room(void **p, size_t *have, size_t n) {
    if (*have >= n) return 1;
    void *q = fr_realloc(*p, n);
    if (!q) return 0;
    *p = q, *have = n;
    return 1;
}

/* The input as the CPU's matrix kernels see it: converted to the weight type's
 * vec_dot_type (8-bit blocks for Q4_0/Q8_0, Q8_K for K-quants, F16 for F16) and back,
 * so device and CPU multiply the same values and differ only in summation order.
 * Without it a golden run with every layer on the device drifts past the tolerances
 * (a rounding flip in one activation block persists through the KV cache). Returns
 * x itself when the type keeps floats. */
static const float *round_like_cpu(fr_offload *o, const resident *r, const float *x, int n_tok) {
    const fr_type vdt = fr_type_traits_get(r->type)->vec_dot_type;
    const fr_type_traits *vt = fr_type_traits_get(vdt);
    fr_from_float_fn conv = vt->act_from_float ? vt->act_from_float : vt->from_float;
    if (vdt == FR_TYPE_F32 || !conv || !vt->to_float) return x;
    const size_t qrow = fr_row_size(vdt, r->n_in), frow = sizeof(float) * (size_t)r->n_in;
    if (!host_room(&o->xq, &o->xq_n, qrow) || !host_room((void **)&o->xr, &o->xr_n, frow * n_tok)) return NULL;
    for (int t = 0; t < n_tok; t++) {
        conv(x + (size_t)t * r->n_in, o->xq, r->n_in);
        vt->to_float(o->xq, o->xr + (size_t)t * r->n_in, r->n_in);
    }
    return o->xr;
}

/* ys[k] = x * W_k^T for the n residents r[k], all of one vec_dot_type: per chunk of
 * tokens one upload of x, the products queued together, one wait. */
static int run_products(fr_offload *o, int n, const resident *const *r, const float *x, int n_tok, float *const *ys,
                        fr_err *err) {
    const fr_backend_ops *op = o->be->ops;
    size_t out_floats = 0;
    for (int k = 0; k < n; k++) out_floats += (size_t)r[k]->n_out;
    if (sizeof(float) * (size_t)r[0]->n_in * CHUNK > o->xb_n || sizeof(float) * out_floats * CHUNK > o->yb_n)
        return fr_err_set(err, FRUGAL_E_INTERNAL, "activation buffers smaller than the products of %d matrices", n);
    for (int t0 = 0; t0 < n_tok; t0 += CHUNK) {
        const int nt = n_tok - t0 < CHUNK ? n_tok - t0 : CHUNK;
        const float *xc = round_like_cpu(o, r[0], x + (size_t)t0 * r[0]->n_in, nt);
        if (!xc) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
        int rc = op->upload(o->be, o->xb, 0, xc, sizeof(float) * (size_t)r[0]->n_in * nt, err);
        size_t off = 0;
        for (int k = 0; k < n && !rc; k++) {
            rc = op->matmul(o->be, r[k]->type, r[k]->buf, r[k]->off, r[k]->n_in, r[k]->n_out, o->xb, 0, nt, o->yb, off, err);
            off += (size_t)r[k]->n_out * nt;
        }
        off = 0;
        for (int k = 0; k < n && !rc; k++) { /* the first download waits for all of them */
            const size_t yn = (size_t)r[k]->n_out * nt;
            rc = op->download(o->be, o->yb, sizeof(float) * off, ys[k] + (size_t)t0 * r[k]->n_out, sizeof(float) * yn,
                              err);
            off += yn;
        }
        if (rc) return rc;
    }
    return FRUGAL_OK;
}

static fr_type vdt_of(fr_type t) { return fr_type_traits_get(t)->vec_dot_type; }

bool fr_offload_matmul_multi(fr_offload *o, int n_w, const fr_weight *const *ws, float *const *ys, const float *x,
                             int n_tok) {
    enum { MAX_W = 4 };
    if (!o || o->failed || n_w < 1 || n_w > MAX_W) return false;
    const resident *r[MAX_W];
    resident tmp[MAX_W]; /* streamed matrices: their place in the slot holding their layer */
    const streamed *s[MAX_W];
    for (int k = 0; k < n_w; k++) {
        r[k] = find(o, ws[k]->data);
        s[k] = r[k] ? NULL : find_st(o, ws[k]->data);
        if (s[k]) tmp[k] = (resident){s[k]->key, NULL, s[k]->type, s[k]->n_in, s[k]->n_out, s[k]->off}, r[k] = &tmp[k];
        if (!r[k] || r[k]->n_in != r[0]->n_in || vdt_of(r[k]->type) != vdt_of(r[0]->type)) return false;
        if (s[k] && s[0] && s[k]->layer != s[0]->layer) return false; /* one layer's slot at a time */
        if (!s[k] != !s[0]) return false;
    }
    pthread_mutex_lock(&o->mu);
    fr_err err = FRUGAL_ERROR_INIT;
    int rc = o->failed ? -1 : FRUGAL_OK;
    if (!rc && s[0]) {
        fr_bbuf *slot = NULL;
        rc = fr_stream_load(o, s[0]->layer, &slot, &err);
        for (int k = 0; k < n_w; k++) tmp[k].buf = slot;
    }
    if (!rc) rc = run_products(o, n_w, r, x, n_tok, ys, &err);
    if (rc > 0) { /* no way to fail a forward pass here: say so once, go on on the CPU */
        fprintf(stderr, "frugal: %s: %s: continuing on the CPU\n", o->be->name, err.message);
        o->failed = true;
    }
    pthread_mutex_unlock(&o->mu);
    return rc == 0;
}

bool fr_offload_matmul(fr_offload *o, const fr_weight *w, const float *x, int n_tok, float *y) {
    return fr_offload_matmul_multi(o, 1, &w, &y, x, n_tok);
}

bool fr_offload_failed(const fr_offload *o) { return o && o->failed; }

int fr_offload_n_layers(const fr_offload *o) { return o ? o->n_layers : 0; }
int fr_offload_first_layer(const fr_offload *o) { return o ? o->first_layer : 0; }
const char *fr_offload_device(const fr_offload *o) { return o ? o->be->name : "CPU"; }
uint64_t fr_offload_mem_current(const fr_offload *o) { return o ? o->be->ops->mem_current(o->be) : 0; }
uint64_t fr_offload_mem_peak(const fr_offload *o) { return o ? o->be->ops->mem_peak(o->be) : 0; }

int fr_offload_software(const fr_offload *o) { return o ? o->be->is_cpu_device : 0; }
int fr_offload_stream_stats(const fr_offload *o, uint64_t *bytes, double *seconds) {
    *bytes = 0, *seconds = 0;
    if (!o || !o->n_st) return 0;
    pthread_mutex_t *mu = (pthread_mutex_t *)&o->pf_mu; /* the counters move under it */
    pthread_mutex_lock(mu);
    *bytes = o->h2d_bytes, *seconds = o->h2d_s;
    pthread_mutex_unlock(mu);
    int n = 0;
    for (int i = 0; i < o->n_st; i++) n += i == 0 || o->st[i].layer != o->st[i - 1].layer;
    return n;
}
uint64_t fr_offload_mem_budget(const fr_offload *o) { return !o ? 0 : o->budget ? o->budget : o->be->mem_total; }
int fr_offload_heap_budget(const fr_offload *o, uint64_t *budget, uint64_t *usage) {
    return o && o->be->ops->heap_budget ? o->be->ops->heap_budget(o->be, budget, usage) : 0;
}
uint64_t fr_offload_resident_bytes(const fr_offload *o, uint64_t *host_bytes) {
    if (host_bytes) *host_bytes = o ? o->res_host : 0;
    return o ? o->res_dev : 0;
}

int fr_offload_read_bandwidth(fr_offload *o, size_t bytes, double *gbs, size_t *probed, fr_err *err) {
    *gbs = 0, *probed = 0;
    if (!o || !o->be->ops->read_bandwidth)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "no device bandwidth probe (no device layers)");
    pthread_mutex_lock(&o->mu); /* the probe's submissions between products, never inside one */
    const int rc = o->be->ops->read_bandwidth(o->be, bytes, gbs, probed, err);
    pthread_mutex_unlock(&o->mu);
    return rc;
}

/* Device bytes of w when it would be placed (0: it stays on the CPU). type_ok: the
 * Vulkan kernels' types (the backend the CLI opens). */
static uint64_t plan_bytes(const fr_weight *w) {
    if (!w->data || !row_major(w)) return 0;
    const fr_type t = w->type;
    if (!(t == FR_TYPE_F32 || t == FR_TYPE_F16 || t == FR_TYPE_Q8_0 || t == FR_TYPE_Q4_0 || t == FR_TYPE_Q4_K ||
          t == FR_TYPE_Q6_K))
        return 0;
    return fr_dev_bytes(fr_row_size(t, w->n_in) * (uint64_t)w->n_out);
}

static uint64_t mat_bytes(const fr_weight *w) { return w->data ? fr_row_size(w->type, w->n_in) * (uint64_t)w->n_out : 0; }

void frugal_plan_gpu(const frugal_model *m, int n_gpu_layers, uint64_t vram, frugal_gpu_plan *p) {
    memset(p, 0, sizeof *p);
    const int n_layer = m->hp.n_layer;
    p->n_layer = n_layer;
    uint64_t all = 0;
    for (int il = 0; il < n_layer; il++)
        for (int j = 0; j < FR_LAYER_MATRICES; j++)
            if (fr_layer_mat_repackable(j)) all += mat_bytes(&m->layers[il].mat[j]);
    all += mat_bytes(&m->output);
    p->cpu_weight_bytes = all;
    if (n_gpu_layers == 0 || !m->layers) return;
    size_t xn, yn;
    act_sizes(m, &xn, &yn);
    uint64_t used = fr_dev_bytes(xn) + fr_dev_bytes(yn);
    if (vram && used > vram) return;
    /* whole layers: their activation buffers next (no room: products only, as at load) */
    bool whole = fr_whole_supported(NULL, m);
    if (whole && vram && used + fr_whole_act_bytes(m) > vram) whole = false;
    if (whole) used += fr_whole_act_bytes(m);
    p->act_bytes = used;
    const int n = n_gpu_layers < 0 || n_gpu_layers > n_layer ? n_layer : n_gpu_layers;
    p->first_layer = n_layer - n;
    for (int il = p->first_layer; il < n_layer; il++) {
        uint64_t layer = 0, host = 0;
        for (int j = 0; j < FR_LAYER_MATRICES; j++)
            if (fr_layer_mat_repackable(j)) {
                layer += plan_bytes(&m->layers[il].mat[j]);
                host += plan_bytes(&m->layers[il].mat[j]) ? mat_bytes(&m->layers[il].mat[j]) : 0;
            }
        const uint64_t kv = whole ? fr_whole_layer_bytes(m, il) : 0; /* its vectors and KV cache */
        if (vram && used + layer + kv > vram) return; /* the rest stays on the CPU, as at load */
        used += layer + kv;
        p->kv_bytes += kv;
        p->whole = whole;
        p->weight_bytes += layer;
        p->cpu_weight_bytes -= host;
        p->n_gpu_layers++;
    }
    if (n_gpu_layers < 0 || n_gpu_layers > n_layer) {
        const uint64_t out = plan_bytes(&m->output);
        if (out && (!vram || used + out <= vram)) {
            p->output_on_gpu = 1;
            p->weight_bytes += out;
            p->cpu_weight_bytes -= mat_bytes(&m->output);
        }
    }
}
