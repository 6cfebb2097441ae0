/* sampler.h - token samplers (implementation of the frugal_sampler_* public API).
 *
 * Order, as llama.cpp's common sampler chain: repetition/frequency/presence penalties
 * over the last repeat_last_n accepted tokens -> top-k -> top-p -> min-p ->
 * temperature -> draw from the softmax with the seeded RNG. temp <= 0 is greedy
 * (argmax after penalties; lowest id wins ties). Same seed + same inputs -> same
 * tokens on every platform (the RNG is our own, not rand()). */
#ifndef FRUGAL_SAMPLER_H
#define FRUGAL_SAMPLER_H
#include "frugal.h"
#endif
