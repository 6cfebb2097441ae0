/* forward.h - internal to the forward pass (forward.c, attention.c). */
#ifndef FRUGAL_FORWARD_H
#define FRUGAL_FORWARD_H

#include "model/model.h"

/* ctx->att[i] = attention of the batch's token i over its cache in layer il (queries
 * in ctx->q, already rotated and scaled; the batch's K/V already stored), with the
 * layer's window and the model's soft-cap. */
void fr_attention(frugal_context *ctx, const fr_batch *b, int il);

#endif
