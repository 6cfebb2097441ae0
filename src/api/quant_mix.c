/* quant_mix.c - the low-bit mixes' tensor rules, as llama.cpp's
 * llama_tensor_get_type_impl applies them to a dense (non-MoE, non-Falcon) model.
 * Output matrix (Q6_K) and token embeddings (the default type) need no rule here:
 * quantize.c's common rule already gives them what these mixes give them. */
#include "api/quant_mix.h"

bool fr_mix_lowbit(uint32_t ftype) {
    return ftype == FR_FTYPE_Q2_K || ftype == FR_FTYPE_Q3_K_S || ftype == FR_FTYPE_Q3_K_M ||
           ftype == FR_FTYPE_Q3_K_L || ftype == FR_FTYPE_IQ4_NL || ftype == FR_FTYPE_IQ4_XS ||
           ftype == FR_FTYPE_IQ3_S || ftype == FR_FTYPE_IQ3_M || fr_mix_needs_calib(ftype);
}

bool fr_mix_needs_calib(uint32_t ftype) {
    return ftype == FR_FTYPE_IQ2_XXS || ftype == FR_FTYPE_IQ2_XS || ftype == FR_FTYPE_IQ2_S || ftype == FR_FTYPE_IQ2_M ||
           ftype == FR_FTYPE_IQ3_XXS || ftype == FR_FTYPE_IQ1_S || ftype == FR_FTYPE_IQ1_M;
}

/* IQ2_S and IQ2_M: llama.cpp gives them IQ3_S where the other IQ2 mixes take Q2_K */
static bool iq2_sm(uint32_t ftype) { return ftype == FR_FTYPE_IQ2_S || ftype == FR_FTYPE_IQ2_M; }

fr_type fr_mix_output(uint32_t ftype) { return fr_mix_needs_calib(ftype) ? FR_TYPE_Q5_K : FR_TYPE_Q6_K; }

fr_type fr_mix_embd(uint32_t ftype, fr_type def) {
    return iq2_sm(ftype) || ftype == FR_FTYPE_IQ3_XXS ? FR_TYPE_IQ3_S : fr_mix_needs_calib(ftype) ? FR_TYPE_Q2_K : def;
}

static fr_type attn_v(uint32_t ftype, fr_type def, int i, int n_gqa) {
    switch (ftype) {
    case FR_FTYPE_Q2_K: return n_gqa >= 4 ? FR_TYPE_Q4_K : FR_TYPE_Q3_K;
    case FR_FTYPE_Q3_K_M: return i < 2 ? FR_TYPE_Q5_K : FR_TYPE_Q4_K;
    case FR_FTYPE_Q3_K_L: return FR_TYPE_Q5_K;
    case FR_FTYPE_IQ4_NL:
    case FR_FTYPE_IQ4_XS: return n_gqa >= 4 ? FR_TYPE_Q5_K : def;
    case FR_FTYPE_IQ3_S:
    case FR_FTYPE_IQ3_XXS: return n_gqa >= 4 ? FR_TYPE_Q4_K : def;
    case FR_FTYPE_IQ3_M: return FR_TYPE_Q4_K;
    case FR_FTYPE_IQ2_XXS:
    case FR_FTYPE_IQ2_XS:
    case FR_FTYPE_IQ2_S:
    case FR_FTYPE_IQ1_S:
    case FR_FTYPE_IQ1_M:
    case FR_FTYPE_IQ2_M: return n_gqa >= 4 ? FR_TYPE_Q4_K : iq2_sm(ftype) ? FR_TYPE_IQ3_S : FR_TYPE_Q2_K;
    default: return def;
    }
}

static fr_type ffn_down(uint32_t ftype, fr_type def, int i, int n) {
    switch (ftype) {
    case FR_FTYPE_Q2_K: return FR_TYPE_Q3_K;
    /* for llama (not Falcon) every ffn_down past the first 1/16 is Q4_K */
    case FR_FTYPE_Q3_K_M: return i < n / 16 ? FR_TYPE_Q5_K : FR_TYPE_Q4_K;
    case FR_FTYPE_Q3_K_L: return FR_TYPE_Q5_K;
    /* without an importance matrix the first eighth gets Q5_K */
    case FR_FTYPE_IQ4_NL:
    case FR_FTYPE_IQ4_XS: return i < n / 8 ? FR_TYPE_Q5_K : def;
    /* IQ3_M: the first eighth (dense models) gets Q4_K; IQ3_S keeps its type */
    case FR_FTYPE_IQ3_M: return i < n / 8 ? FR_TYPE_Q4_K : def;
    case FR_FTYPE_IQ2_XXS:
    case FR_FTYPE_IQ2_XS:
    case FR_FTYPE_IQ2_S:
    case FR_FTYPE_IQ1_S:
    case FR_FTYPE_IQ1_M:
    case FR_FTYPE_IQ2_M: return i >= n / 8 ? def : iq2_sm(ftype) ? FR_TYPE_IQ3_S : FR_TYPE_Q2_K;
    default: return def;
    }
}

fr_type fr_mix_rule(uint32_t ftype, fr_mix_role role, fr_type def, int i, int n, int n_gqa) {
    switch (role) {
    case FR_MIX_ATTN_V: return attn_v(ftype, def, i, n_gqa);
    case FR_MIX_FFN_DOWN: return ffn_down(ftype, def, i, n);
    /* IQ3_XXS: attn_q / attn_k drop to IQ2_S */
    case FR_MIX_ATTN_QK: return ftype == FR_FTYPE_IQ3_XXS ? FR_TYPE_IQ2_S : def;
    case FR_MIX_ATTN_OUT:
        if (iq2_sm(ftype) || ftype == FR_FTYPE_IQ3_XXS) return FR_TYPE_IQ3_S;
        if (ftype == FR_FTYPE_IQ1_S || ftype == FR_FTYPE_IQ1_M) return FR_TYPE_IQ2_XXS;
        return ftype == FR_FTYPE_Q2_K                                  ? FR_TYPE_Q3_K
               : ftype == FR_FTYPE_Q3_K_M || ftype == FR_FTYPE_IQ3_M ? FR_TYPE_Q4_K
               : ftype == FR_FTYPE_Q3_K_L                              ? FR_TYPE_Q5_K
                                                                       : def;
    case FR_MIX_ATTN_QKV:
        return ftype == FR_FTYPE_Q3_K_M || ftype == FR_FTYPE_Q3_K_L || ftype == FR_FTYPE_IQ3_M ? FR_TYPE_Q4_K : def;
    }
    return def;
}

fr_type fr_mix_fallback(fr_type t) {
    switch (t) {
    case FR_TYPE_Q2_K:
    case FR_TYPE_Q3_K: return FR_TYPE_Q4_0;
    case FR_TYPE_IQ4_XS:
    case FR_TYPE_IQ3_S:
    case FR_TYPE_IQ2_XXS:
    case FR_TYPE_IQ2_XS:
    case FR_TYPE_IQ2_S:
    case FR_TYPE_IQ3_XXS:
    case FR_TYPE_IQ1_S:
    case FR_TYPE_IQ1_M: return FR_TYPE_IQ4_NL;
    case FR_TYPE_Q4_K: return FR_TYPE_Q5_0;
    case FR_TYPE_Q5_K: return FR_TYPE_Q5_1;
    case FR_TYPE_Q6_K: return FR_TYPE_Q8_0;
    default: return t;
    }
}
