/* vk_probe.c - the device's read bandwidth (vk_ops.h): a buffer in device memory summed
 * by readsum.comp, timed on the host around whole submissions (best of a few passes, so
 * a pass that waited for the scheduler or warmed caches does not count). */
#include <time.h>

#include "backend/vulkan/vk_ops.h"

/* 1024 workgroups of 256 invocations: enough reads in flight to fill a GPU's memory bus */
enum { PROBE_GROUPS = 1024, PROBE_PASSES = 4 };

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One probe over a buffer of exactly n bytes (whole 16-byte words). */
static int probe(fr_vk *vk, size_t n, double *gbs, fr_err *err) {
    fr_vk_buf *src = NULL, *dst = NULL;
    int rc = fr_vk_buf_new(vk, n, &src, err);
    if (!rc) rc = fr_vk_buf_new(vk, 16, &dst, err);
    double best = 0;
    const uint32_t n_vec4 = (uint32_t)(n / 16);
    fr_vk_buf *bufs[2] = {src, dst};
    for (int pass = 0; pass <= PROBE_PASSES && !rc; pass++) { /* pass 0 builds the pipeline */
        const double t0 = now_s();
        rc = fr_vk_dispatch(vk, "readsum", 2, bufs, &n_vec4, sizeof n_vec4, PROBE_GROUPS, 1, 1, err);
        if (!rc) rc = fr_vk_run(vk, err);
        const double dt = now_s() - t0;
        if (!rc && pass > 0 && dt > 0 && (double)n / dt > best) best = (double)n / dt;
    }
    if (dst) fr_vk_buf_free(vk, dst);
    if (src) fr_vk_buf_free(vk, src);
    *gbs = best / 1e9;
    return rc;
}

int fr_vk_read_bandwidth(fr_vk *vk, size_t bytes, double *gbs, size_t *probed, fr_err *err) {
    *gbs = 0, *probed = 0;
    size_t n = bytes & ~(size_t)15;
    if (n > ((size_t)UINT32_MAX / 2) * 16) n = ((size_t)UINT32_MAX / 2) * 16; /* the shader's uint index */
    const size_t min = 64u << 10; /* a tight --vram leaves little room */
    if (n < min) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: bandwidth probe of %zu bytes is too small", bytes);
    for (;;) {
        int rc = probe(vk, n, gbs, err);
        if (rc != FRUGAL_E_NOMEM || n / 2 < min) {
            if (!rc) *probed = n;
            return rc;
        }
        fr_err_clear(err); /* no room for this size (budget or driver): half of it */
        n = (n / 2) & ~(size_t)15;
    }
}
