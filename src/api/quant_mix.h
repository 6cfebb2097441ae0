/* quant_mix.h - llama-quantize's per-tensor type rules for the low-bit mixes frugal
 * writes (Q2_K, Q3_K_S/M/L, IQ4_NL, IQ4_XS, IQ3_S, IQ3_M), used by quantize.c's plan. */
#ifndef FRUGAL_QUANT_MIX_H
#define FRUGAL_QUANT_MIX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/types.h"

/* llama_ftype numbers of those mixes (general.file_type). */
enum { FR_FTYPE_IQ2_XXS = 19, FR_FTYPE_IQ2_XS = 20, FR_FTYPE_IQ2_S = 28, FR_FTYPE_IQ2_M = 29, FR_FTYPE_IQ3_XXS = 23, FR_FTYPE_IQ1_S = 24, FR_FTYPE_IQ1_M = 31, FR_FTYPE_Q2_K = 10, FR_FTYPE_Q3_K_S = 11, FR_FTYPE_Q3_K_M = 12, FR_FTYPE_Q3_K_L = 13,
       FR_FTYPE_IQ4_NL = 25, FR_FTYPE_IQ3_S = 26, FR_FTYPE_IQ3_M = 27, FR_FTYPE_IQ4_XS = 30 };

/* Tensor roles the rules distinguish. */
typedef enum { FR_MIX_ATTN_V, FR_MIX_FFN_DOWN, FR_MIX_ATTN_OUT, FR_MIX_ATTN_QKV, FR_MIX_ATTN_QK } fr_mix_role;

/* True when ftype is one of the mixes above. */
bool fr_mix_lowbit(uint32_t ftype);
/* Type for a tensor of `role` in mix `ftype` whose default is `def`: i is the
 * tensor's index among its role's tensors (attn_v, ffn_down), n their count,
 * n_gqa the model's heads per KV head. Returns def when the mix keeps it. */
fr_type fr_mix_rule(uint32_t ftype, fr_mix_role role, fr_type def, int i, int n, int n_gqa);
/* llama.cpp's fallback when rows do not fit a type's block (Q2_K/Q3_K -> Q4_0,
 * IQ4_XS / IQ3_S -> IQ4_NL, Q5_K -> Q5_1, Q4_K -> Q5_0, Q6_K -> Q8_0), or t itself. */
fr_type fr_mix_fallback(fr_type t);
/* Type of the output matrix (Q6_K, Q5_K for the IQ2 mixes) and of the token
 * embeddings (def; Q2_K for IQ2_XXS/XS and IQ1, IQ3_S for IQ2_S/M and IQ3_XXS) of mix ftype. */
fr_type fr_mix_output(uint32_t ftype);
fr_type fr_mix_embd(uint32_t ftype, fr_type def);
/* True for the mixes whose writer needs --calib (IQ2_*, IQ3_XXS, IQ1_S, IQ1_M). */
bool fr_mix_needs_calib(uint32_t ftype);

#endif
