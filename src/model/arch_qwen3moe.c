/* arch_qwen3moe.c - Qwen3-MoE: Qwen3's attention (per-head Q/K RMSNorm, NeoX RoPE,
 * head_dim from key_length) over a mixture of experts: softmax over every expert's
 * router logit, the top expert_used_count, their weights renormalised to sum 1; the
 * experts' size is expert_feed_forward_length. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    FR_TENSORS_EMBD_OUT,
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.attn_q_norm.weight", FR_Q_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_k_norm.weight", FR_K_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_norm.weight", FR_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_gate_inp.weight", FR_WGATE_INP, FR_D_EMBD, FR_D_EXPERT, 0, 0},
    {"blk.%d.ffn_gate_exps.weight", FR_WGATE_EXPS, FR_D_EMBD, FR_D_FF, 0, FR_D_EXPERT},
    {"blk.%d.ffn_up_exps.weight", FR_WUP_EXPS, FR_D_EMBD, FR_D_FF, 0, FR_D_EXPERT},
    {"blk.%d.ffn_down_exps.weight", FR_WDOWN_EXPS, FR_D_FF, FR_D_EMBD, 0, FR_D_EXPERT},
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_qwen3moe = {
    .name = "qwen3moe", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_SILU_GLU, .rope_neox = true, .rope_base = 10000.0f,
    .rope_base_typical = 1e6f, .norm_eps = 1e-6f, .moe = true, .expert_ff_key = true,
};
