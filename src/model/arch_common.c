/* arch_common.c - the layer recipes several families share. */
#include "model/arch.h"

/* Llama, Qwen, Phi-3, GPT-2: x += attn(norm(x)); x += ffn(norm(x)) */
const fr_op fr_recipe_pre_norm[] = {
    {FR_OP_NORM, FR_ATTN_NORM, FR_ATTN_NORM_B}, {FR_OP_ATTN, 0, 0}, {FR_OP_ADD, 0, 0},
    {FR_OP_NORM, FR_FFN_NORM, FR_FFN_NORM_B},   {FR_OP_FFN, 0, 0},  {FR_OP_ADD, 0, 0},
    {FR_OP_END, 0, 0},
};

/* Gemma 2/3: each block's output is normed again before it joins the residual */
const fr_op fr_recipe_sandwich[] = {
    {FR_OP_NORM, FR_ATTN_NORM, 0}, {FR_OP_ATTN, 0, 0}, {FR_OP_POST_NORM, FR_POST_ATTN_NORM, 0}, {FR_OP_ADD, 0, 0},
    {FR_OP_NORM, FR_FFN_NORM, 0},  {FR_OP_FFN, 0, 0},  {FR_OP_POST_NORM, FR_POST_FFN_NORM, 0},  {FR_OP_ADD, 0, 0},
    {FR_OP_END, 0, 0},
};
