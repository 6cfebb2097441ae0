/* arch_gemma.c - Gemma 1: embeddings scaled by sqrt(n_embd), GELU-gated FFN, NeoX
 * RoPE, Q scaled by 1/sqrt(head_dim) before attention, output always tied to the
 * embeddings. GGUF stores the norm weights as final multipliers (the converter has
 * added HF's 1 + w), so the norm is a plain RMSNorm here. */
#include "model/arch.h"

static const fr_tensor_spec tensors[] = {
    {"token_embd.weight", FR_TOK_EMBD, FR_D_EMBD, FR_D_VOCAB, 0, 0},
    {"output_norm.weight", FR_OUTPUT_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_ATTN_QKVO,
    FR_TENSORS_FFN_GLU,
    FR_TENSORS_END,
};

const fr_arch_desc fr_arch_gemma = {
    .name = "gemma", .tensors = tensors, .recipe = fr_recipe_pre_norm,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_GELU_GLU, .rope_neox = true, .emb_scale = true, .q_prescale = true,
    .always_tied = true, .rope_base = 10000.0f, .norm_eps = 1e-6f,
};
