/* arch_gpt2.c - GPT-2: learned position embeddings added to the token embeddings,
 * LayerNorm with bias, fused QKV with bias, a plain GELU MLP with biases, no RoPE. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    {"token_embd.weight", FR_TOK_EMBD, FR_D_EMBD, FR_D_VOCAB, 0, 0},
    {"position_embd.weight", FR_POS_EMBD, FR_D_EMBD, FR_D_CTX, 0, 0},
    {"output_norm.weight", FR_OUTPUT_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"output_norm.bias", FR_OUTPUT_NORM_B, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"output.weight", FR_OUTPUT, FR_D_EMBD, FR_D_VOCAB, FR_T_OPTIONAL, 0},
    {"blk.%d.attn_norm.weight", FR_ATTN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_norm.bias", FR_ATTN_NORM_B, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_qkv.weight", FR_WQKV, FR_D_EMBD, FR_D_QKV, 0, 0},
    {"blk.%d.attn_qkv.bias", FR_BQKV, FR_D_QKV, FR_D_NONE, 0, 0},
    {"blk.%d.attn_output.weight", FR_WO, FR_D_Q, FR_D_EMBD, 0, 0},
    {"blk.%d.attn_output.bias", FR_BO, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_norm.weight", FR_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_norm.bias", FR_FFN_NORM_B, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_up.weight", FR_WUP, FR_D_EMBD, FR_D_FF, 0, 0},
    {"blk.%d.ffn_up.bias", FR_BUP, FR_D_FF, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_down.weight", FR_WDOWN, FR_D_FF, FR_D_EMBD, 0, 0},
    {"blk.%d.ffn_down.bias", FR_BDOWN, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_gpt2 = {
    .name = "gpt2", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_LAYER, .ffn = FR_FFN_GELU, .no_rope = true, .layer_norm_eps = true, .rope_base = 10000.0f, .norm_eps = 1e-5f,
};
