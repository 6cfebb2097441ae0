/* arch_gemma2.c - Gemma 2: Gemma's layer with a norm on each block's output,
 * attention-logit and final-logit soft-capping (always on: 50 and 30 unless the
 * file says otherwise), and sliding-window layers (window 4096 unless the file
 * says otherwise) alternating with global ones (period 2: even layers local). */
#include <math.h>

#include "model/arch.h"
#include "model/model.h"

static const fr_tensor_spec tensors[] = {
    {"token_embd.weight", FR_TOK_EMBD, FR_D_EMBD, FR_D_VOCAB, 0, 0},
    {"output_norm.weight", FR_OUTPUT_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.post_attention_norm.weight", FR_POST_ATTN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_FFN_GLU,
    {"blk.%d.post_ffw_norm.weight", FR_POST_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_END,
};

/* Gemma-2 27B (46 layers) scales queries by 1/sqrt(n_embd / n_head) (its
 * query_pre_attn_scalar); the others by 1/sqrt(head_dim). No GGUF key says so. */
static int fixup(fr_hparams *hp, const gguf_file *f, const char *arch, fr_err *err) {
    (void)f, (void)arch, (void)err;
    if (hp->n_layer == 46) hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    return FRUGAL_OK;
}

const fr_arch_desc fr_arch_gemma2 = {
    .name = "gemma2", .tensors = tensors, .recipe = fr_recipe_sandwich,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_GELU_GLU, .rope_neox = true, .emb_scale = true, .q_prescale = true,
    .always_tied = true, .rope_base = 10000.0f, .norm_eps = 1e-6f,
    .swa_period = 2, .swa_default = 4096, .attn_softcap = 50.0f, .final_softcap = 30.0f, .fixup = fixup,
};
