/* arch_phi3.c - Phi-3 / Phi-3.5: fused QKV (rows Q, K, V) and fused gate+up (gate
 * first) matrices, NeoX RoPE with LongRoPE factors (the long ones when the context
 * is longer than rope.scaling.original_context_length) and rope.scaling.attn_factor,
 * Q scaled before attention. The sliding_window key of these files is ignored, as
 * the reference engine does. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    {"token_embd.weight", FR_TOK_EMBD, FR_D_EMBD, FR_D_VOCAB, 0, 0},
    {"output_norm.weight", FR_OUTPUT_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"output.weight", FR_OUTPUT, FR_D_EMBD, FR_D_VOCAB, 0, 0},
    {"rope_factors_long.weight", FR_ROPE_LONG, FR_D_ROT2, FR_D_NONE, FR_T_OPTIONAL, 0},
    {"rope_factors_short.weight", FR_ROPE_SHORT, FR_D_ROT2, FR_D_NONE, FR_T_OPTIONAL, 0},
    {"blk.%d.attn_norm.weight", FR_ATTN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_qkv.weight", FR_WQKV, FR_D_EMBD, FR_D_QKV, 0, 0},
    {"blk.%d.attn_output.weight", FR_WO, FR_D_Q, FR_D_EMBD, 0, 0},
    {"blk.%d.ffn_norm.weight", FR_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    {"blk.%d.ffn_up.weight", FR_WUP, FR_D_EMBD, FR_D_FF2, 0, 0},
    {"blk.%d.ffn_down.weight", FR_WDOWN, FR_D_FF, FR_D_EMBD, 0, 0},
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_phi3 = {
    .name = "phi3", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_SILU_GLU, .rope_neox = true, .q_prescale = true,
    .rope_factors_by_ctx = true, .rope_base = 10000.0f, .norm_eps = 1e-5f,
};
