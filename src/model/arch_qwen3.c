/* arch_qwen3.c - Qwen3: no biases; Q and K of every head RMS-normed (one weight
 * vector over head_dim, shared by the heads) before NeoX RoPE; head_dim from
 * attention.key_length, often not n_embd / n_head. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    FR_TENSORS_EMBD_OUT,
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.attn_q_norm.weight", FR_Q_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_k_norm.weight", FR_K_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    FR_TENSORS_FFN_GLU,
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_qwen3 = {
    .name = "qwen3", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_SILU_GLU, .rope_neox = true, .rope_base = 10000.0f,
    .rope_base_typical = 1e6f, .norm_eps = 1e-6f,
};
