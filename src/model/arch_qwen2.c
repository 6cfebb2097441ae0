/* arch_qwen2.c - Qwen2 / Qwen2.5: Llama's layer with Q/K/V biases and NeoX RoPE. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    FR_TENSORS_EMBD_OUT,
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.attn_q.bias", FR_BQ, FR_D_Q, FR_D_NONE, 0, 0},
    {"blk.%d.attn_k.bias", FR_BK, FR_D_KV, FR_D_NONE, 0, 0},
    {"blk.%d.attn_v.bias", FR_BV, FR_D_KV, FR_D_NONE, 0, 0},
    FR_TENSORS_FFN_GLU,
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_qwen2 = {
    .name = "qwen2", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_SILU_GLU, .rope_neox = true, .rope_base = 10000.0f,
    .rope_base_typical = 1e6f, .norm_eps = 1e-6f,
};
