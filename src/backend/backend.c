/* backend.c - picking and closing backends (backend.h). */
#include <string.h>

#include "backend/backend.h"

int fr_backend_open(const char *kind, int device, fr_backend **out, fr_err *err) {
    *out = NULL;
    if (kind && strcmp(kind, "cpu") == 0) return fr_backend_cpu_open(out, err);
    if (!kind || strcmp(kind, "vulkan") == 0) return fr_backend_vulkan_open(device, out, err);
    return fr_err_set(err, FRUGAL_E_INVALID_ARG, "unknown backend '%s' (cpu, vulkan)", kind);
}

void fr_backend_close(fr_backend *b) {
    if (b) b->ops->close(b);
}

#ifndef FRUGAL_HAVE_VULKAN
int fr_backend_vulkan_open(int device, fr_backend **out, fr_err *err) {
    (void)device;
    *out = NULL;
    return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                      "this frugal was built without the Vulkan backend (FRUGAL_VULKAN=OFF: needs libvulkan-dev and glslc)");
}
#endif
