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

#define FR_LAYER_MATRICES 7 /* wq wk wv wo w_gate w_up w_down */

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
    void *il_block;                  /* the IL16 copies of the matrices, one buffer (NULL: none) */
    size_t il_block_bytes;
    int n_threads;
    int verbose;
    bool vocab_only;
    uint64_t mem_budget;             /* default budget of contexts (0: none) */
};

/* Where the forward pass gets a layer's weights. NULL in the context: straight from
 * the model (mapped file). The memory planner installs a streaming source whose
 * acquire() blocks until the layer has been read into a buffer and release() hands
 * the buffer back for the next prefetch. */
typedef struct fr_layer_source {
    void *user;
    const fr_layer *(*acquire)(void *user, int il);
    void (*release)(void *user, int il);
    /* Optional (may be NULL). check: FRUGAL_OK, or the source's error (an I/O error
     * during a forward pass: acquire() never fails, it returns a layer with valid
     * pointers and meaningless contents), which frugal_eval returns after the pass.
     * destroy: called by frugal_context_free; the context owns the source. */
    int (*check)(void *user, fr_err *err);
    void (*destroy)(void *user);
} fr_layer_source;

/* One sequence of a context: its KV block table and policy state. */
typedef struct fr_seq {
    fr_kv_cache kv;
    int n_summary;                   /* summary slots at the start (summary policy) */
} fr_seq;

struct frugal_context {
    frugal_model *model;
    fr_pool *pool;
    fr_kv_pool kv_pool;              /* blocks shared by all sequences */
    fr_seq *seqs;
    int n_seq_max;
    int n_ctx;                       /* per-sequence capacity */
    int n_ubatch;                    /* tokens per forward pass */
    int kv_window, kv_sinks;         /* StreamingLLM policy (window 0: off) */
    int kv_chunk, kv_keep;           /* chunk-summary policy (chunk 0: off) */
    fr_layer_source *layer_src;      /* NULL: layers straight from the model */
    /* Optional observer of every matmul input (calibration statistics for the
     * quantization policy): weight data pointer, n_tok rows of n_in floats. */
    void (*act_hook)(void *user, const void *wdata, const float *x, int n_tok, int64_t n_in);
    void *act_user;
    /* scratch for n_ubatch tokens (one accounted block) */
    void *scratch;
    size_t scratch_bytes;
    float *x, *xb, *q, *k, *v, *att, *hg, *hu, *att_scores, *out_rows;
    void *qbuf;
    /* per-token batch bookkeeping for n_ubatch tokens */
    fr_kv_cache **b_kv;
    int *b_pos, *b_out;
    /* logits of the last eval: n_logits rows of n_vocab */
    float *logits;
    size_t logits_cap;               /* floats allocated */
    int n_logits;
};

/* A micro-batch for the forward pass: n tokens, each appended to its own sequence
 * at its own position (positions already reserved), with an optional logits row. */
typedef struct fr_batch {
    int n;
    const int32_t *tokens;
    fr_kv_cache *const *kv;          /* per token: its sequence's cache */
    const int *pos;                  /* per token: its position */
    const int *out;                  /* per token: row of `logits`, or -1 */
    int n_out;
    float *logits;                   /* n_out rows of n_vocab */
} fr_batch;


/* Read hyper-parameters and bind every tensor of the model, validating names,
 * shapes and types. On failure returns an error with err naming the tensor/key. */
int fr_model_bind(frugal_model *m, fr_err *err);
/* Repack the layer matrices and the output head into the IL16 layout where the
 * active kernels have a GEMM for it (kernels/interleave.h): each becomes an accounted
 * copy of the same size, and its mapped pages are dropped. Bit-exact weights, only
 * reordered. Done at load for models without a memory budget; streamed models keep
 * the file layout (stream.c repacks its resident layers itself). */
/* reserve: bytes the caller will still allocate (a context) beside the copies;
 * when copies + reserve do not fit in 90 % of the memory left (mem/sysmem.h) the
 * weights stay zero-copy in the mapping instead (no OOM kill for a faster prefill). */
int fr_model_repack(frugal_model *m, uint64_t reserve, fr_err *err);
void fr_model_unbind(frugal_model *m);

/* Forward pass over a micro-batch (b->n <= ctx->n_ubatch). Every token is stored
 * in its sequence's cache and attends causally to positions 0..pos of it; logits
 * are computed only for tokens with an output row. */
void fr_llama_forward(frugal_context *ctx, const fr_batch *b);

/* Evict n cached positions of kv after the first `sinks` ones and re-rotate the keys
 * that move down, so positions stay contiguous (StreamingLLM context shift). */
void fr_llama_kv_shift(frugal_context *ctx, fr_kv_cache *kv, int sinks, int n);
/* Replace positions [first, first + n) of kv by one slot holding their mean K and V;
 * later keys are re-rotated down by n - 1 positions. */
void fr_llama_kv_summarize(frugal_context *ctx, fr_kv_cache *kv, int first, int n);

#endif
