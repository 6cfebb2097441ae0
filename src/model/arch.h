/* arch.h - a model family as a description, not as code.
 *
 * A family (one GGUF `general.architecture`) is one small file, src/model/arch_<name>.c,
 * holding one fr_arch_desc: its fixed traits (norm kind, FFN kind, RoPE mode, ...), the
 * metadata keys that differ from the common ones (with defaults), the tensors it binds
 * (name, shape in symbolic dimensions, required or optional) and its layer recipe: the
 * sequence of shared ops one layer runs. One loader (loader.c) binds every description,
 * one forward pass (forward.c) runs every recipe; nothing outside arch_*.c and the
 * registry (arch_registry.c) names a family.
 *
 * The ops are backend-neutral: a recipe says "attention block", "feed-forward block",
 * "norm", "residual add"; how they are computed (repacked weights, thread splits,
 * SIMD) stays inside the CPU ops, so a GPU backend can run the same recipe. */
#ifndef FRUGAL_ARCH_H
#define FRUGAL_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"

/* Where a bound tensor goes. Layer slots index fr_layer.mat (2-D) / fr_layer.vec (1-D);
 * global slots name fields of frugal_model. */
typedef enum fr_slot {
    /* per-layer matrices */
    FR_WQ, FR_WK, FR_WV, FR_WQKV, FR_WO, FR_WGATE, FR_WUP, FR_WDOWN,
    FR_WGATE_INP,                         /* MoE router [n_embd, n_expert] */
    FR_WGATE_EXPS, FR_WUP_EXPS, FR_WDOWN_EXPS, /* MoE experts, 3-D: n_expert matrices stacked */
    FR_N_LMAT,
    /* per-layer vectors (owned F32 copies) */
    FR_ATTN_NORM = FR_N_LMAT, FR_ATTN_NORM_B, FR_BQ, FR_BK, FR_BV, FR_BQKV, FR_BO,
    FR_Q_NORM, FR_K_NORM, FR_POST_ATTN_NORM,
    FR_FFN_NORM, FR_FFN_NORM_B, FR_BUP, FR_BDOWN, FR_POST_FFN_NORM,
    FR_N_LSLOT,
    /* global tensors */
    FR_TOK_EMBD = FR_N_LSLOT, FR_POS_EMBD, FR_OUTPUT, FR_OUTPUT_NORM, FR_OUTPUT_NORM_B,
    FR_ROPE_FREQS, FR_ROPE_LONG, FR_ROPE_SHORT,
    FR_N_SLOT
} fr_slot;

/* Symbolic dimensions of a tensor shape, resolved from the hyper-parameters. */
typedef enum fr_dim {
    FR_D_NONE = 0,  /* (second dimension of a 1-D tensor) */
    FR_D_EMBD,      /* n_embd */
    FR_D_Q,         /* n_head * head_dim */
    FR_D_KV,        /* n_head_kv * head_dim */
    FR_D_QKV,       /* Q + 2 KV (fused attention input) */
    FR_D_FF,        /* n_ff */
    FR_D_FF2,       /* 2 n_ff (fused gate + up) */
    FR_D_HEAD,      /* head_dim */
    FR_D_ROT2,      /* n_rot / 2 (RoPE frequency factors) */
    FR_D_VOCAB,     /* n_vocab */
    FR_D_CTX,       /* n_ctx_train (learned positions) */
    FR_D_EXPERT,    /* n_expert */
} fr_dim;

/* FR_T_OPTIONAL: may be absent. FR_T_DENSE / FR_T_MOE: required when the model has no
 * experts / has experts (expert_count > 0), refused otherwise. */
enum { FR_T_OPTIONAL = 1, FR_T_DENSE = 2, FR_T_MOE = 4 };

typedef struct fr_tensor_spec {
    const char *name;   /* GGUF name; per-layer names carry "%d" for the layer */
    uint8_t slot;       /* fr_slot */
    uint8_t d0, d1;     /* ne[0] (input dimension), ne[1] (FR_D_NONE: 1-D) */
    uint8_t flags;      /* FR_T_* */
    uint8_t d2;         /* ne[2] of a 3-D tensor (experts), else FR_D_NONE */
} fr_tensor_spec;

/* The shared ops a layer recipe is made of. x is the residual stream, h the normed
 * input of a block, y a block's output. */
typedef enum fr_op_kind {
    FR_OP_END = 0,
    FR_OP_NORM,        /* h = norm(x [+ pending y]) * w [+ b]      (w, b: vector slots) */
    FR_OP_ATTN,        /* y = attention block(h)   (QKV, Q/K norm, RoPE, cache, attention, out) */
    FR_OP_FFN,         /* y = feed-forward block(h) (gated or plain, by the family's ffn kind) */
    FR_OP_POST_NORM,   /* y = norm(y) * w                           (w: vector slot) */
    FR_OP_ADD,         /* x += y  (folded into the next NORM: no pass of its own) */
} fr_op_kind;

typedef struct fr_op {
    uint8_t kind;      /* fr_op_kind */
    uint8_t w, b;      /* vector slots of a norm's weight and bias (b: 0 = none) */
} fr_op;

typedef enum fr_norm_kind { FR_NORM_RMS, FR_NORM_LAYER } fr_norm_kind;
typedef enum fr_ffn_kind { FR_FFN_SILU_GLU, FR_FFN_GELU_GLU, FR_FFN_GELU } fr_ffn_kind;

typedef struct fr_hparams fr_hparams;

/* One family. Keys read by every family (context_length, embedding_length, block_count,
 * feed_forward_length, attention.head_count[_kv], attention.key_length/value_length,
 * rope.dimension_count, rope.freq_base, rope.scaling.*, attention.sliding_window, ...)
 * are read by the common loader with the defaults below. */
typedef struct fr_arch_desc {
    const char *name;              /* general.architecture */
    const fr_tensor_spec *tensors; /* globals then per-layer; ends with a NULL name */
    const fr_op *recipe;           /* one layer; ends with FR_OP_END */
    fr_norm_kind norm;             /* every norm of the model */
    fr_ffn_kind ffn;
    bool rope_neox;                /* rotate (i, i + n_rot/2) rather than (2i, 2i+1) */
    bool no_rope;                  /* learned positions instead (GPT-2) */
    bool emb_scale;                /* x = embedding * sqrt(n_embd) (Gemma) */
    bool q_prescale;               /* Q scaled before attention, scores unscaled (Gemma, Phi-3) */
    bool always_tied;              /* output = token_embd even if output.weight exists */
    bool rope_factors_by_ctx;      /* LongRoPE: long factors when n_ctx > original context */
    bool layer_norm_eps;           /* eps key attention.layer_norm_epsilon (else _rms_) */
    bool moe;                      /* experts required (else optional: expert_count decides) */
    bool expert_ff_key;            /* experts' size from expert_feed_forward_length */
    float rope_base;               /* default of rope.freq_base (the reference engine's) */
    float rope_base_typical;       /* what the family's models use, for mkmodel (0: rope_base) */
    float norm_eps;                /* default epsilon */
    /* sliding window: period of the local/global pattern when the file has no
     * sliding_window_pattern key (layer il local when il % period < period - 1; 0: the
     * family never uses a window, even if the key is present) and the window when the
     * file has no sliding_window key (0: no window unless the key says so) */
    int swa_period, swa_default;
    float attn_softcap, final_softcap; /* defaults of the soft-cap keys (0: none) */
    /* Family rules beyond keys and defaults (NULL: none): runs after the common
     * hyper-parameters are read, may read more keys or adjust hp. */
    int (*fixup)(fr_hparams *hp, const gguf_file *f, const char *arch, fr_err *err);
} fr_arch_desc;

/* The description of architecture `name` (length len), or NULL. */
const fr_arch_desc *fr_arch_find(const char *name, size_t len);
/* Writes "llama, qwen2, ..." (every supported architecture, for messages) into buf. */
void fr_arch_list(char *buf, size_t n);

extern const fr_arch_desc fr_arch_llama, fr_arch_qwen2, fr_arch_qwen3, fr_arch_qwen3moe, fr_arch_gemma,
    fr_arch_gemma2, fr_arch_gemma3, fr_arch_phi3, fr_arch_gpt2;

/* Layer recipes and tensor rows several families share (arch_common.c). */
extern const fr_op fr_recipe_pre_norm[];  /* norm, attn, add, norm, ffn, add */
extern const fr_op fr_recipe_sandwich[];  /* as pre_norm plus a post-norm on each block output */
#define FR_TENSORS_EMBD_OUT \
    {"token_embd.weight", FR_TOK_EMBD, FR_D_EMBD, FR_D_VOCAB, 0, 0}, \
    {"output_norm.weight", FR_OUTPUT_NORM, FR_D_EMBD, FR_D_NONE, 0, 0}, \
    {"output.weight", FR_OUTPUT, FR_D_EMBD, FR_D_VOCAB, FR_T_OPTIONAL, 0}
#define FR_TENSORS_ATTN_QKVO \
    {"blk.%d.attn_norm.weight", FR_ATTN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0}, \
    {"blk.%d.attn_q.weight", FR_WQ, FR_D_EMBD, FR_D_Q, 0, 0}, \
    {"blk.%d.attn_k.weight", FR_WK, FR_D_EMBD, FR_D_KV, 0, 0}, \
    {"blk.%d.attn_v.weight", FR_WV, FR_D_EMBD, FR_D_KV, 0, 0}, \
    {"blk.%d.attn_output.weight", FR_WO, FR_D_Q, FR_D_EMBD, 0, 0}
#define FR_TENSORS_FFN_GLU \
    {"blk.%d.ffn_norm.weight", FR_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0}, \
    {"blk.%d.ffn_gate.weight", FR_WGATE, FR_D_EMBD, FR_D_FF, 0, 0}, \
    {"blk.%d.ffn_up.weight", FR_WUP, FR_D_EMBD, FR_D_FF, 0, 0}, \
    {"blk.%d.ffn_down.weight", FR_WDOWN, FR_D_FF, FR_D_EMBD, 0, 0}
/* A feed-forward block that is dense without experts and a mixture with them. */
#define FR_TENSORS_FFN_GLU_OR_MOE \
    {"blk.%d.ffn_norm.weight", FR_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0}, \
    {"blk.%d.ffn_gate.weight", FR_WGATE, FR_D_EMBD, FR_D_FF, FR_T_DENSE, 0}, \
    {"blk.%d.ffn_up.weight", FR_WUP, FR_D_EMBD, FR_D_FF, FR_T_DENSE, 0}, \
    {"blk.%d.ffn_down.weight", FR_WDOWN, FR_D_FF, FR_D_EMBD, FR_T_DENSE, 0}, \
    {"blk.%d.ffn_gate_inp.weight", FR_WGATE_INP, FR_D_EMBD, FR_D_EXPERT, FR_T_MOE, 0}, \
    {"blk.%d.ffn_gate_exps.weight", FR_WGATE_EXPS, FR_D_EMBD, FR_D_FF, FR_T_MOE, FR_D_EXPERT}, \
    {"blk.%d.ffn_up_exps.weight", FR_WUP_EXPS, FR_D_EMBD, FR_D_FF, FR_T_MOE, FR_D_EXPERT}, \
    {"blk.%d.ffn_down_exps.weight", FR_WDOWN_EXPS, FR_D_FF, FR_D_EMBD, FR_T_MOE, FR_D_EXPERT}
#define FR_TENSORS_END {0, 0, 0, 0, 0, 0}

#endif
