/* gpu_api.c - the public view of a model's device (frugal.h: frugal_model_gpu_info,
 * frugal_model_gpu_read_bandwidth) over model/offload.h. */
#include <stdio.h>
#include <string.h>

#include "frugal.h"
#include "model/model.h"
#include "model/offload.h"

int frugal_model_gpu_info(const frugal_model *model, frugal_gpu_info *out) {
    memset(out, 0, sizeof *out);
    const fr_offload *o = model ? model->offload : NULL;
    if (!o) return 0;
    snprintf(out->device, sizeof out->device, "%s", fr_offload_device(o));
    out->software = fr_offload_software(o);
    out->first_layer = fr_offload_first_layer(o);
    out->n_gpu_layers = fr_offload_n_layers(o);
    out->mem_used = fr_offload_mem_current(o);
    out->mem_peak = fr_offload_mem_peak(o);
    out->mem_budget = fr_offload_mem_budget(o);
    out->device_weight_bytes = fr_offload_resident_bytes(o, &out->host_weight_bytes);
    out->n_stream_layers = fr_offload_stream_stats(o, &out->h2d_bytes, &out->h2d_seconds);
    return 1;
}

double frugal_model_gpu_read_bandwidth(frugal_model *model, size_t max_bytes, size_t *probed_bytes,
                                       frugal_error *err) {
    size_t probed = 0;
    double gbs = 0;
    const int rc = fr_offload_read_bandwidth(model ? model->offload : NULL, max_bytes, &gbs, &probed, err);
    if (probed_bytes) *probed_bytes = probed;
    return rc ? -1.0 : gbs;
}
