/* vk.h - a small Vulkan compute runtime: one device, one compute queue, buffers in
 * device memory (accounted), one pipeline per embedded shader (built on first use and
 * kept), and a command stream of dispatches submitted together.
 *
 * Every shader reads and writes storage buffers only (bound whole; element offsets
 * travel in its push constants), so a buffer never needs an aligned sub-range.
 * Between two dispatches of one stream the runtime inserts a full compute barrier:
 * ops run in the order recorded, each seeing the previous one's writes. */
#ifndef FRUGAL_VK_H
#define FRUGAL_VK_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct fr_vk fr_vk;
typedef struct fr_vk_buf fr_vk_buf;

enum { FR_VK_MAX_BINDINGS = 6, FR_VK_PUSH_BYTES = 128 };

/* Open Vulkan device `index` (-1: the first discrete GPU, else integrated, else any,
 * in that order; FRUGAL_VK_DEVICE=N in the environment overrides -1). FRUGAL_E_UNSUPPORTED
 * with a message when there is no loader, no device or no compute queue. */
int fr_vk_open(int index, fr_vk **out, fr_err *err);
void fr_vk_close(fr_vk *vk);

/* The device's name ("llvmpipe (LLVM 15.0.6, 256 bits)"), its size of device-local
 * memory in bytes (heap 0 of its local heaps) and whether it is a CPU (software) device. */
const char *fr_vk_name(const fr_vk *vk);
uint64_t fr_vk_vram(const fr_vk *vk);
int fr_vk_is_cpu(const fr_vk *vk);

/* A buffer of n bytes in device memory, charged to the device accounting below.
 * FRUGAL_E_NOMEM naming the size when the driver has no room (or the budget set with
 * fr_vk_set_budget would be exceeded). */
int fr_vk_buf_new(fr_vk *vk, size_t n, fr_vk_buf **out, fr_err *err);
void fr_vk_buf_free(fr_vk *vk, fr_vk_buf *b);
size_t fr_vk_buf_size(const fr_vk_buf *b);
/* The buffer's persistent host mapping (host-visible memory; not in staging mode), or
 * NULL. Writing there bypasses the stream: the caller makes sure no recorded or running
 * dispatch reads the bytes it writes. */
void *fr_vk_buf_host(const fr_vk_buf *b);

/* Copy n bytes between host memory and the buffer at byte offset off. They wait for
 * the device (call them outside a recorded stream). FRUGAL_E_INTERNAL on a driver error. */
int fr_vk_upload(fr_vk *vk, fr_vk_buf *b, size_t off, const void *src, size_t n, fr_err *err);
int fr_vk_download(fr_vk *vk, fr_vk_buf *b, size_t off, void *dst, size_t n, fr_err *err);

/* Device memory accounting: bytes held now, peak since open, budget (0: none). */
uint64_t fr_vk_mem_current(const fr_vk *vk);
uint64_t fr_vk_mem_peak(const fr_vk *vk);
void fr_vk_set_budget(fr_vk *vk, uint64_t bytes);
/* The driver's budget for this process on the device-local heap and its usage there
 * (VK_EXT_memory_budget: other processes' allocations lower the budget): 1 and both
 * set; 0 where the device does not offer the extension. */
int fr_vk_heap_budget(const fr_vk *vk, uint64_t *budget, uint64_t *usage);

/* Record one dispatch of shader `name` (a variant of vk_shaders.h) with n_bufs buffers
 * at bindings 0..n_bufs-1, pc_size bytes of push constants and gx*gy*gz workgroups.
 * Starts a stream when none is open. FRUGAL_E_INTERNAL for an unknown shader or a
 * pipeline the driver refuses. */
int fr_vk_dispatch(fr_vk *vk, const char *name, int n_bufs, fr_vk_buf *const *bufs, const void *pc,
                   size_t pc_size, uint32_t gx, uint32_t gy, uint32_t gz, fr_err *err);
/* Submit the recorded stream and wait until the device has run it (no-op when empty). */
int fr_vk_run(fr_vk *vk, fr_err *err);

#endif
