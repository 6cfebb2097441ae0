/* safety_api.h - the safety policy's glue inside the API (see frugal.h). */
#ifndef FRUGAL_SAFETY_API_H
#define FRUGAL_SAFETY_API_H

#include "frugal.h"

/* Free ctx's policy without undoing its degrade steps (the context is going away). */
void fr_api_safety_free(frugal_context *ctx);

#endif
