/* model.h - a loaded model (hyper-parameters + weight views into the mapped file)
 * and an inference context (KV cache + scratch). Internal to the library; the
 * public handles frugal_model / frugal_context are these structs. */
#ifndef FRUGAL_MODEL_H
#define FRUGAL_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "core/error.h"
#include "core/pool.h"
#include "gguf/gguf.h"
#include "kernels/ops.h"
#include "kv/kv_cache.h"
#include "tokenizer/tokenizer.h"

typedef enum fr_arch { FR_ARCH_LLAMA = 0, FR_ARCH_QWEN2 = 1 } fr_arch;

typedef struct fr_hparams {
    fr_arch arch;
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;     /* n_embd / n_head */
    int n_ff;
    int n_rot;        /* rotary dims per head */
    float rope_base;
    float norm_eps;
    bool rope_neox;   /* qwen2: rotate halves; llama: adjacent pairs */
} fr_hparams;

typedef struct fr_layer {
    float *attn_norm, *ffn_norm;     /* owned copies in F32 [n_embd] */
    float *bq, *bk, *bv;             /* qwen2 biases (owned, F32) or NULL */
    fr_weight wq, wk, wv, wo;        /* views into the mapping */
    fr_weight w_gate, w_up, w_down;
} fr_layer;

struct frugal_model {
    char *path;
    gguf_file *file;
    fr_tokenizer *tok;
    fr_hparams hp;
    char arch_name[16];
    char name[128];
    fr_weight tok_embd, output;      /* output == tok_embd when tied */
    float *output_norm;
    fr_layer *layers;
    size_t owned_bytes;              /* bytes of the F32 copies above (accounted) */
    int n_threads;
    int verbose;
    bool vocab_only;
};

/* Where the forward pass gets a layer's weights. NULL in the context: straight from
 * the model (mapped file). The memory planner installs a streaming source whose
 * acquire() blocks until the layer has been read into a buffer and release() hands
 * the buffer back for the next prefetch. */
typedef struct fr_layer_source {
    void *user;
    const fr_layer *(*acquire)(void *user, int il);
    void (*release)(void *user, int il);
} fr_layer_source;

struct frugal_context {
    frugal_model *model;
    fr_pool *pool;
    fr_kv_cache kv;
    int n_ctx;
    int n_ubatch;                    /* tokens per forward pass */
    int kv_window, kv_sinks;         /* StreamingLLM policy (window 0: off) */
    int kv_chunk, kv_keep;           /* chunk-summary policy (chunk 0: off) */
    int n_summary;                   /* summary slots at the start of the cache */
    fr_layer_source *layer_src;      /* NULL: layers straight from the model */
    /* scratch for n_ubatch tokens (one accounted block) */
    void *scratch;
    size_t scratch_bytes;
    float *x, *xb, *q, *k, *v, *att, *hg, *hu, *att_scores, *out_rows;
    void *qbuf;
    /* logits of the last eval: n_logits rows of n_vocab */
    float *logits;
    size_t logits_cap;               /* floats allocated */
    int n_logits;
    bool logits_all;
};

/* Read hyper-parameters and bind every tensor of the model, validating names,
 * shapes and types. On failure returns an error with err naming the tensor/key. */
int fr_model_bind(frugal_model *m, fr_err *err);
void fr_model_unbind(frugal_model *m);

/* Forward pass over n tokens (n <= ctx->n_ubatch) at positions pos..pos+n-1.
 * Writes logits for every token into `logits` (n rows) when all_logits, else only
 * for the last token (1 row); logits == NULL skips the output head. The KV cache
 * must have room (checked by the caller). */
/* Evict n cached positions after the first `sinks` ones and re-rotate the keys that
 * move down, so positions stay contiguous (StreamingLLM context shift). */
void fr_llama_kv_shift(frugal_context *ctx, int sinks, int n);
/* Replace cached positions [first, first + n) by one slot holding their mean K and V;
 * later keys are re-rotated down by n - 1 positions. */
void fr_llama_kv_summarize(frugal_context *ctx, int first, int n);

void fr_llama_forward(frugal_context *ctx, const int32_t *tokens, int n, int pos,
                      float *logits, bool all_logits);

#endif
