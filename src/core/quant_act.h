/* quant_act.h - activation quantizers (see fr_type_traits.act_from_float). */
#ifndef FRUGAL_QUANT_ACT_H
#define FRUGAL_QUANT_ACT_H
#include <stdint.h>
/* x: n floats (n % 32 == 0) -> Q8_0 / Q8_1 blocks, scaled by 127/amax and rounded
 * half-to-even, as llama.cpp's x86 CPU backend quantizes activations. */
void fr_act_quantize_q8_0(const float *x, void *y, int64_t n);
void fr_act_quantize_q8_1(const float *x, void *y, int64_t n);
#endif
