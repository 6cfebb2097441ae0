/* arch_gemma3.c - Gemma 3 (text): Gemma 2's sandwich layer without soft-caps, plus
 * per-head Q/K RMSNorm; 5 local (sliding-window) layers per global one unless the
 * file gives a pattern; local layers use rope.freq_base_swa (default 10000) without
 * scaling, global ones rope.freq_base with the file's scaling. Vision tensors (the
 * multimodal files) are not bound and therefore refused by name. */
#include <math.h>
#include <stdio.h>

#include "model/arch.h"
#include "model/model.h"

static const fr_tensor_spec tensors[] = {
    FR_TENSORS_EMBD_OUT,
    FR_TENSORS_ATTN_QKVO,
    {"blk.%d.attn_q_norm.weight", FR_Q_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    {"blk.%d.attn_k_norm.weight", FR_K_NORM, FR_D_HEAD, FR_D_NONE, 0, 0},
    {"blk.%d.post_attention_norm.weight", FR_POST_ATTN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_FFN_GLU,
    {"blk.%d.post_ffw_norm.weight", FR_POST_FFN_NORM, FR_D_EMBD, FR_D_NONE, 0, 0},
    FR_TENSORS_END,
};

/* Gemma-3 27B (62 layers) scales queries by 1/sqrt(n_embd / n_head), as Gemma-2 27B. */
static int fixup(fr_hparams *hp, const gguf_file *f, const char *arch, fr_err *err) {
    char key[64];
    snprintf(key, sizeof key, "%s.rope.freq_base_swa", arch);
    int rc = gguf_get_f32_opt(f, key, 10000.0f, &hp->rope_swa.base, err);
    if (rc) return rc;
    if (!(hp->rope_swa.base > 0.0f)) return fr_err_set(err, FRUGAL_E_FORMAT, "bad %s", key);
    if (hp->n_layer == 62) hp->attn_scale = 1.0f / sqrtf((float)(hp->n_embd / hp->n_head));
    hp->rope_swa.freq_scale = 1.0f; /* local layers are never scaled */
    return FRUGAL_OK;
}

const fr_arch_desc fr_arch_gemma3 = {
    .name = "gemma3", .tensors = tensors, .recipe = fr_recipe_sandwich,
    .norm = FR_NORM_RMS, .ffn = FR_FFN_GELU_GLU, .rope_neox = true, .emb_scale = true, .q_prescale = true,
    .rope_base = 10000.0f, .norm_eps = 1e-6f, .swa_period = 6, .fixup = fixup,
};
