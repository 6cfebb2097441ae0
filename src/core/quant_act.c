/* quant_act.c - activation quantizers that reproduce llama.cpp's x86 rounding.
 * The difference to the file quantizers is tiny (the reciprocal is computed as
 * 127/amax rather than 1/(amax/127), ties go to even), but a single activation
 * rounded the other way shifts logits by ~0.05 on small models, so it is worth
 * matching exactly. */
#include "core/quant_act.h"

#include <math.h>

#include "core/quant.h"

static float block_amax(const float *x) {
    float m = 0.0f;
    for (int j = 0; j < FR_QK; j++) m = fmaxf(m, fabsf(x[j]));
    return m;
}

void fr_act_quantize_q8_0(const float *x, void *vy, int64_t n) {
    fr_block_q8_0 *y = vy;
    for (int64_t i = 0; i < n / FR_QK; i++, x += FR_QK) {
        float amax = block_amax(x);
        float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        y[i].d = fr_f32_to_f16(d);
        for (int j = 0; j < FR_QK; j++) y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
    }
}

void fr_act_quantize_q8_1(const float *x, void *vy, int64_t n) {
    fr_block_q8_1 *y = vy;
    for (int64_t i = 0; i < n / FR_QK; i++, x += FR_QK) {
        float amax = block_amax(x);
        float d = amax / 127.f, id = amax != 0.0f ? 127.f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < FR_QK; j++) {
            y[i].qs[j] = (int8_t)nearbyintf(x[j] * id);
            sum += y[i].qs[j];
        }
        y[i].d = fr_f32_to_f16(d);
        y[i].s = fr_f32_to_f16((float)sum * d);
    }
}
