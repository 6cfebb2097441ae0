/* offload_impl.h - the state behind offload.h, shared by offload.c (placement, matrix
 * products, --gpu-stream) and offload_layer.c (whole layers on the device). Private to
 * src/model/. */
#ifndef FRUGAL_OFFLOAD_IMPL_H
#define FRUGAL_OFFLOAD_IMPL_H

#include <pthread.h>
#include <stdbool.h>

#include "backend/backend.h"
#include "model/model.h"
#include "model/offload.h"

/* Tokens per device product: a batch is sent in pieces of this many (the tiled
 * kernel's tile), so the activation buffers have a fixed size, allocated at load
 * and counted against the budget. */
enum { CHUNK = 32 };

/* Whole layers on the device (offload_layer.c): per placed layer its vectors (norm
 * weights, biases) and its F16 KV cache of kv_ctx positions; activation buffers of
 * CHUNK tokens; the context whose sequence the device cache holds. */
typedef struct {
    fr_bbuf *vec[FR_N_LSLOT]; /* device copies of the layer's vectors (NULL: absent) */
    fr_bbuf *kc, *vc;         /* F16 K and V rows [kv_ctx][n_head_kv * head_dim] */
} fr_dev_layer;

typedef struct {
    bool on;                  /* the model qualifies and the buffers are allocated */
    int kv_ctx;               /* positions each layer's device cache holds */
    int n_layer;              /* of the model (entries of layers) */
    fr_dev_layer *layers;     /* [n_layer]; only the placed ones are filled */
    fr_bbuf *x, *h, *q, *k, *v, *att, *g, *u, *r, *pos, *fac; /* CHUNK tokens */
    const void *owner;        /* the context using the device caches (NULL: none) */
    const float *fac_src;     /* the RoPE factors last uploaded */
    bool noted;               /* the one-line fallback note was printed */
    uint64_t kv_bytes, vec_bytes, act_bytes; /* device memory of each kind */
} fr_offload_whole;

typedef struct {
    const void *key; /* the fr_weight's data pointer, as the forward pass holds it */
    fr_bbuf *buf;
    fr_type type;
    int64_t n_in, n_out;
    size_t off; /* byte offset in buf (a stream slot: the matrix's place in its layer) */
} resident;

/* A matrix of a layer that did not fit (--gpu-stream): copied into a slot before use. */
typedef struct {
    const void *key, *src;
    int layer;
    size_t off, bytes; /* place in the slot, row-major bytes */
    fr_type type;
    int64_t n_in, n_out;
} streamed;

struct fr_offload {
    fr_backend *be;
    resident *res;
    int n_res, cap_res;
    int first_layer, n_layers;
    uint64_t budget;                 /* --vram (0: none) */
    uint64_t res_dev, res_host;      /* residents' bytes on the device / their host copies */
    fr_bbuf *xb, *yb; /* activations in and out, grown on demand */
    size_t xb_n, yb_n; /* bytes: CHUNK tokens of the widest input and output */
    float *xr;        /* host: the input rounded as the CPU rounds it */
    void *xq;         /* host: the input in the weight type's vec_dot_type */
    size_t xr_n, xq_n;
    streamed *st; /* --gpu-stream: the matrices of the layers that did not fit */
    int n_st, cap_st;
    fr_bbuf *slot[2];   /* two rotating layer buffers (double buffering) */
    int slot_layer[2];  /* the layer each holds (-1: none) */
    int next_slot;      /* the one the next copy overwrites */
    size_t slot_n;      /* bytes of each: the largest streamed layer */
    uint64_t h2d_bytes; /* copied into the slots since load, and the seconds it took */
    double h2d_s;
    bool failed;
    pthread_mutex_t mu; /* one stream per device: one product at a time */
    fr_offload_whole whole; /* whole layers on the device (offload_layer.c) */
    /* --gpu-stream copy-ahead (offload_stream.c): slot_layer, h2d_* and these under pf_mu */
    pthread_mutex_t pf_mu;
    pthread_cond_t pf_cv;
    pthread_t pf_thread;
    bool pf_on, pf_quit;
    int pf_layer, pf_slot; /* the copy asked of the worker (pf_layer -1: none) */
    uint64_t pf_done;      /* layers copied ahead of their use */
    uint64_t ahead_bytes[2]; /* a slot's copy ahead, counted in h2d_* once its layer is used */
    double ahead_s[2];
};


/* Bytes a buffer of n takes on the device (the Vulkan runtime rounds to words). */
static inline uint64_t fr_dev_bytes(uint64_t n) { return (n + 3) & ~(uint64_t)3; }

/* offload_stream.c: start / stop the copy-ahead worker of the two slots (nothing when
 * the backend cannot map them or FRUGAL_GPU_PREFETCH=0); the slot holding streamed
 * layer il, copied now unless the worker already has (called under o->mu, which keeps
 * every device op synchronous: a slot is never read while the worker fills it). */
void fr_stream_start(fr_offload *o);
void fr_stream_stop(fr_offload *o);
int fr_stream_load(fr_offload *o, int il, fr_bbuf **out, fr_err *err);

/* offload_layer.c: whether the model's layers can run whole on this backend (env
 * FRUGAL_GPU_WHOLE=0 turns it off); allocate the activation buffers (before the
 * layers, so the budget counts them; no room: off, with a message); place layer il's
 * vectors and KV cache (FRUGAL_E_NOMEM: the caller drops the layer); free it all. */
bool fr_whole_supported(const fr_offload *o, const frugal_model *m); /* o NULL: planning */
int fr_whole_open(fr_offload *o, const frugal_model *m, fr_err *err);
int fr_whole_place_layer(fr_offload *o, const frugal_model *m, int il, fr_err *err);
void fr_whole_drop_layer(fr_offload *o, int il);
void fr_whole_free(fr_offload *o);
/* The device bytes fr_whole_* would take: activations, and per layer (vectors + KV). */
uint64_t fr_whole_act_bytes(const frugal_model *m);
uint64_t fr_whole_layer_bytes(const frugal_model *m, int il);

#endif
