/* arch_llama.c - Llama 1/2/3 (Mistral, TinyLlama, SmolLM): pre-norm, SwiGLU, RoPE on
 * adjacent pairs. Llama-3.1/3.2 files carry `rope_freqs.weight` (each rotary frequency
 * divided by its factor); a few fine-tunes carry Q/K/V/O biases. Mixtral is llama with
 * expert_count > 0: a router and stacked experts instead of the dense FFN. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    FR_TENSORS_EMBD_OUT,
    {"rope_freqs.weight", FR_ROPE_FREQS, FR_D_ROT2, FR_D_NONE, FR_T_OPTIONAL, 0},
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.attn_q.bias", FR_BQ, FR_D_Q, FR_D_NONE, FR_T_OPTIONAL, 0},
    {"blk.%d.attn_k.bias", FR_BK, FR_D_KV, FR_D_NONE, FR_T_OPTIONAL, 0},
    {"blk.%d.attn_v.bias", FR_BV, FR_D_KV, FR_D_NONE, FR_T_OPTIONAL, 0},
    {"blk.%d.attn_output.bias", FR_BO, FR_D_EMBD, FR_D_NONE, FR_T_OPTIONAL, 0},
    FR_TENSORS_FFN_GLU_OR_MOE, /* Mixtral: llama with experts */
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_llama = {
    .name = "llama", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_SILU_GLU, .rope_base = 10000.0f, .norm_eps = 1e-5f,
};
