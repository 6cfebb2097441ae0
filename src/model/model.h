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
#include "model/arch.h"
#include "tokenizer/tokenizer.h"

struct fr_hparams {
    const fr_arch_desc *arch;
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;       /* attention.key_length, default n_embd / n_head */
    int n_ff;
    int n_rot;          /* rotary dims per head (0: no RoPE) */
    float norm_eps;
    bool rope_neox;     /* rotate halves (NeoX) rather than adjacent pairs */
    fr_rope_cfg rope;      /* global layers */
    fr_rope_cfg rope_swa;  /* sliding-window layers */
    float emb_scale;    /* embeddings multiplied by it (0: not) */
    float attn_scale;   /* 1/sqrt(head_dim) unless the family says otherwise */
    float attn_softcap, final_softcap; /* 0: none */
    int n_expert, n_expert_used; /* mixture of experts (0: a dense FFN) */
    int n_swa;          /* window of the local layers (0: none) */
    int swa_period;     /* layer il is local when il % period < period - 1 */
};

/* Attention window of layer il: positions p - window + 1 .. p (0: the whole context). */
static inline int fr_layer_window(const fr_hparams *hp, int il) {
    if (hp->n_swa <= 0) return 0;
    if (hp->swa_period == 0) return hp->n_swa; /* every layer local */
    return il % hp->swa_period < hp->swa_period - 1 ? hp->n_swa : 0;
}

#define FR_LAYER_MATRICES FR_N_LMAT

/* One layer's weights, indexed by fr_slot: matrices are views into the mapping (or
 * repacked copies), vectors owned F32 copies; absent ones have data / pointer NULL. */
typedef struct fr_layer {
    fr_weight mat[FR_N_LMAT];
    float *vec[FR_N_LSLOT];
} fr_layer;

/* Whether matrix j may be repacked to IL16: not the router (F32, tiny) nor the stacked
 * experts, which are read one expert (a slice of rows) at a time. */
static inline bool fr_layer_mat_repackable(int j) { return j < FR_WGATE_INP; }

/* Matrix j (< FR_LAYER_MATRICES) of a layer, or NULL when the family has none there. */
static inline const fr_weight *fr_layer_mat(const fr_layer *L, int j) { return L->mat[j].data ? &L->mat[j] : NULL; }

struct frugal_model {
    char *path;
    gguf_file *file;
    fr_tokenizer *tok;
    fr_hparams hp;
    char arch_name[24];
    char name[128];
    fr_weight tok_embd, output;      /* output == tok_embd when tied */
    fr_weight pos_embd;              /* learned positions (GPT-2), else data NULL */
    float *output_norm, *output_norm_b;
    float *rope_freqs;               /* per-frequency divisors (Llama 3.1), or NULL */
    float *rope_long, *rope_short;   /* LongRoPE factors (Phi-3), or NULL */
    fr_layer *layers;
    size_t owned_bytes;              /* bytes of the F32 copies above (accounted) */
    void *il_block;                  /* the IL16 copies of the matrices, one buffer (NULL: none) */
    size_t il_block_bytes;
    int n_threads;
    int verbose;
    bool vocab_only;
    uint64_t mem_budget;             /* default budget of contexts (0: none) */
    struct fr_offload *offload;      /* layers on a device (model/offload.h), or NULL */
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
    /* Optional expert streaming (budget/experts.h; NULL: the layer's stacked expert
     * tensors are read in place). route: the batch's picks of layer il (n_sel ids)
     * are known; returns how many distinct experts to run and their order in *order
     * (cached ones first, so compute overlaps the reads of the others). get: blocks
     * until expert e of layer il is in memory and returns its gate, up and down
     * matrices (pinned until put). */
    int (*expert_route)(void *user, int il, const int *sel, int n_sel, const int **order);
    const fr_weight *(*expert_get)(void *user, int il, int e);
    void (*expert_put)(void *user, int il, int e);
    /* Optional (NULL: none). ready: 1 when expert e of layer il is in memory (get()
     * will not block). prefetch: a hint, before route(), that layer il will likely
     * pick sel[0..n_sel), conf[i] the guess's margin (the best logit not guessed
     * below it, in standard deviations of the logits): the source may start reading
     * those experts now. */
    int (*expert_ready)(void *user, int il, int e);
    void (*expert_prefetch)(void *user, int il, const int *sel, const float *conf, int n_sel);
} fr_layer_source;

#define FR_MAX_UBATCH 512 /* most tokens one forward pass takes */

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
    float *fused;                    /* output of a fused QKV or gate+up matrix (NULL: none) */
    /* mixture of experts (NULL without): router logits [B][n_expert], the picked
     * experts' outputs [B][n_used][n_embd] and weights [B][n_used], a gathered input
     * and output [B][n_embd]; picks [B][n_used], gathered token ids [B] and the next
     * layer's predicted picks [B][n_used] */
    float *moe_logits, *moe_out, *moe_w, *moe_in, *moe_y;
    int *moe_sel, *moe_rows, *moe_pred;
    bool expert_solo;                /* experts run on one thread while their layer's reads are pending */
    const float *rope_factors;       /* frequency divisors for this context (NULL: none) */
    void *qbuf;
    /* per-token batch bookkeeping for n_ubatch tokens */
    fr_kv_cache **b_kv;
    int *b_pos, *b_out;
    /* logits of the last eval: n_logits rows of n_vocab */
    float *logits;
    size_t logits_cap;               /* floats allocated */
    int n_logits;
    struct fr_safety_ctx *safety;    /* safety policy (api/safety_api.c); NULL: none */
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


/* Read the hyper-parameters of family d from f (hparams.c): common keys with the
 * family's defaults, then its fixup. Errors name the key or the implausible value. */
int fr_hparams_read(fr_hparams *hp, const gguf_file *f, const fr_arch_desc *d, int n_vocab, fr_err *err);
/* The size a symbolic dimension (fr_dim) has for these hyper-parameters. */
int64_t fr_dim_value(const fr_hparams *hp, int dim);

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
void fr_forward(frugal_context *ctx, const fr_batch *b);
/* The RoPE frequency divisors a context of n_ctx tokens uses (Llama-3 rope_freqs, or
 * LongRoPE's long factors beyond the original context and short ones within), or NULL. */
const float *fr_model_rope_factors(const frugal_model *m, int n_ctx);

/* The sliding-window KV layout of a pool of n_tokens tokens for n_seq sequences that
 * reserve at most n_ubatch tokens at a time: fills local[n_layer] and *cfg and returns
 * 1 when the model has sliding-window layers and keeping only their windows saves
 * blocks; else 0 (a plain pool). */
int fr_model_kv_swa(const frugal_model *m, long n_tokens, int n_seq, int n_ubatch, uint8_t *local,
                    fr_kv_swa_cfg *cfg);

/* Evict n cached positions of kv after the first `sinks` ones and re-rotate the keys
 * that move down, so positions stay contiguous (StreamingLLM context shift). */
void fr_model_kv_shift(frugal_context *ctx, fr_kv_cache *kv, int sinks, int n);
/* Replace positions [first, first + n) of kv by one slot holding their mean K and V;
 * later keys are re-rotated down by n - 1 positions. */
void fr_model_kv_summarize(frugal_context *ctx, fr_kv_cache *kv, int first, int n);

#endif
