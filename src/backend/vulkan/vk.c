/* vk.c - the Vulkan runtime of vk.h: instance, device pick, queue, buffers, pipelines,
 * command streams. Kept to what compute needs: no surfaces, no layers, no extensions. */
/* FR_VK_ASAN: an AddressSanitizer build (GCC's macro, clang's feature test) */
#if defined(__SANITIZE_ADDRESS__)
#define FR_VK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FR_VK_ASAN 1
#endif
#endif
#if defined(FR_VK_ASAN) && !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* dl_iterate_phdr (pin_drivers) */
#endif
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vulkan/vulkan.h>
#if defined(FR_VK_ASAN)
#include <dlfcn.h>
#include <link.h>
#endif

#include "core/fault.h"
#include "backend/vulkan/vk.h"
#include "backend/vulkan/vk_shaders.h"

enum { MAX_SHADERS = 64, MAX_SETS = 1024, STAGING_BYTES = 8 << 20 };

struct fr_vk_buf {
    VkBuffer buf;
    VkDeviceMemory mem;
    void *map;      /* persistently mapped when the memory is host-visible, else NULL */
    size_t size;
    int staging;    /* the runtime's own host-side buffer: not charged to the device */
};

struct fr_vk {
    VkInstance inst;
    VkPhysicalDevice phys;
    VkDevice dev;
    VkQueue queue;
    uint32_t qfam;
    VkPhysicalDeviceProperties props;
    VkPhysicalDeviceMemoryProperties memprops;
    VkCommandPool cpool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout layout;
    VkDescriptorPool dpool;
    VkPipelineCache pcache;
    VkPipeline pipes[MAX_SHADERS]; /* by index in fr_vk_shaders, built on first use */
    int recording, n_sets;
    int force_staging;             /* FRUGAL_VK_STAGING=1: never map device buffers (tests the copy path) */
    fr_vk_buf *staging;            /* for buffers the host cannot map */
    _Atomic uint64_t cur, peak;
    uint64_t budget;
    int has_mem_budget;            /* the device offers VK_EXT_memory_budget */
};

static int buf_alloc(fr_vk *vk, size_t n, int host, fr_vk_buf **out, fr_err *err);

static int vk_fail(fr_err *err, VkResult r, const char *what) {
    return fr_err_set(err, FRUGAL_E_INTERNAL, "vulkan: %s failed (VkResult %d)", what, (int)r);
}

/* Rank for the default pick: discrete GPU, integrated, virtual, CPU, other. */
/* 1 when physical device d offers device extension `name`. */
static int has_extension(VkPhysicalDevice d, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(d, NULL, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkExtensionProperties *ext = fr_calloc(n, sizeof *ext);
    int found = 0;
    if (ext && vkEnumerateDeviceExtensionProperties(d, NULL, &n, ext) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(ext[i].extensionName, name) == 0;
    free(ext);
    return found;
}

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static int compute_family(VkPhysicalDevice p, uint32_t *fam) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(p, &n, NULL);
    VkQueueFamilyProperties qf[32];
    if (n > 32) n = 32;
    vkGetPhysicalDeviceQueueFamilyProperties(p, &n, qf);
    for (uint32_t i = 0; i < n; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            *fam = i;
            return 1;
        }
    return 0;
}

static int pick_device(fr_vk *vk, int index, fr_err *err) {
    uint32_t n = 0;
    VkResult r = vkEnumeratePhysicalDevices(vk->inst, &n, NULL);
    if (r != VK_SUCCESS || n == 0)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "vulkan: no Vulkan device found");
    VkPhysicalDevice devs[16];
    if (n > 16) n = 16;
    vkEnumeratePhysicalDevices(vk->inst, &n, devs);
    const char *env = getenv("FRUGAL_VK_DEVICE");
    if (index < 0 && env && *env) index = atoi(env);
    int best = -1, best_rank = 99;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties pr;
        vkGetPhysicalDeviceProperties(devs[i], &pr);
        uint32_t fam;
        if (!compute_family(devs[i], &fam) || pr.apiVersion < VK_API_VERSION_1_1) continue;
        if (index >= 0 ? (int)i == index : type_rank(pr.deviceType) < best_rank) {
            best = (int)i;
            best_rank = type_rank(pr.deviceType);
        }
    }
    if (best < 0)
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                          index >= 0 ? "vulkan: device %d does not exist or has no Vulkan 1.1 compute queue"
                                     : "vulkan: no device with a Vulkan 1.1 compute queue (of %d)",
                          index >= 0 ? index : (int)n);
    vk->phys = devs[best];
    vkGetPhysicalDeviceProperties(vk->phys, &vk->props);
    vkGetPhysicalDeviceMemoryProperties(vk->phys, &vk->memprops);
    compute_family(vk->phys, &vk->qfam);
    vk->has_mem_budget = has_extension(vk->phys, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    return FRUGAL_OK;
}

static int make_device(fr_vk *vk, fr_err *err) {
    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = vk->qfam, .queueCount = 1, .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO, .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi};
    VkResult r = vkCreateDevice(vk->phys, &di, NULL, &vk->dev);
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkCreateDevice");
    vkGetDeviceQueue(vk->dev, vk->qfam, 0, &vk->queue);
    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = vk->qfam};
    if ((r = vkCreateCommandPool(vk->dev, &pi, NULL, &vk->cpool)) != VK_SUCCESS) return vk_fail(err, r, "command pool");
    VkCommandBufferAllocateInfo ci = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO, .commandPool = vk->cpool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY, .commandBufferCount = 1};
    if ((r = vkAllocateCommandBuffers(vk->dev, &ci, &vk->cmd)) != VK_SUCCESS) return vk_fail(err, r, "command buffer");
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    if ((r = vkCreateFence(vk->dev, &fi, NULL, &vk->fence)) != VK_SUCCESS) return vk_fail(err, r, "fence");
    return FRUGAL_OK;
}

/* One layout for every shader: FR_VK_MAX_BINDINGS storage buffers + push constants. */
static int make_layouts(fr_vk *vk, fr_err *err) {
    VkDescriptorSetLayoutBinding b[FR_VK_MAX_BINDINGS];
    for (int i = 0; i < FR_VK_MAX_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = (uint32_t)i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .bindingCount = FR_VK_MAX_BINDINGS, .pBindings = b};
    VkResult r = vkCreateDescriptorSetLayout(vk->dev, &li, NULL, &vk->dsl);
    if (r != VK_SUCCESS) return vk_fail(err, r, "descriptor set layout");
    VkPushConstantRange pc = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = FR_VK_PUSH_BYTES};
    VkPipelineLayoutCreateInfo pli = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO, .setLayoutCount = 1,
                                      .pSetLayouts = &vk->dsl, .pushConstantRangeCount = 1, .pPushConstantRanges = &pc};
    if ((r = vkCreatePipelineLayout(vk->dev, &pli, NULL, &vk->layout)) != VK_SUCCESS)
        return vk_fail(err, r, "pipeline layout");
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = MAX_SETS * FR_VK_MAX_BINDINGS};
    VkDescriptorPoolCreateInfo dpi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO, .maxSets = MAX_SETS,
                                      .poolSizeCount = 1, .pPoolSizes = &ps};
    if ((r = vkCreateDescriptorPool(vk->dev, &dpi, NULL, &vk->dpool)) != VK_SUCCESS)
        return vk_fail(err, r, "descriptor pool");
    VkPipelineCacheCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    if ((r = vkCreatePipelineCache(vk->dev, &pci, NULL, &vk->pcache)) != VK_SUCCESS)
        return vk_fail(err, r, "pipeline cache");
    return FRUGAL_OK;
}

#if defined(FR_VK_ASAN)
static int pin_one(struct dl_phdr_info *info, size_t size, void *user) {
    (void)size, (void)user;
    const char *slash = info->dlpi_name ? strrchr(info->dlpi_name, '/') : NULL;
    const char *base = slash ? slash + 1 : info->dlpi_name;
    if (base && strncmp(base, "libvulkan_", 10) == 0)
        (void)dlopen(info->dlpi_name, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE); /* marks it, adds nothing */
    return 0;
}

/* ASan builds only: keep the Vulkan drivers the loader opened (libvulkan_*.so) loaded
 * after vkDestroyInstance. Why: Mesa's lavapipe keeps a few global allocations for
 * the process's life; once the loader dlcloses it, LeakSanitizer finds them
 * unreachable and fails the test (seen on a Zen 3 host with Mesa 22.3 / LLVM 15, two
 * 128-byte blocks from an unloaded module; not on the Xeon hosts). With the driver
 * kept, they stay reachable from its data, as in any process that does not unload it. */
static void pin_drivers(void) { dl_iterate_phdr(pin_one, NULL); }
#else
static void pin_drivers(void) {}
#endif

int fr_vk_open(int index, fr_vk **out, fr_err *err) {
    *out = NULL;
    fr_vk *vk = fr_calloc(1, sizeof *vk);
    if (!vk) return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: out of memory");
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO, .pApplicationName = "frugal",
                             .pEngineName = "frugal", .apiVersion = VK_API_VERSION_1_1};
    VkInstanceCreateInfo ii = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    VkResult r = vkCreateInstance(&ii, NULL, &vk->inst);
    if (r == VK_SUCCESS) pin_drivers();
    int rc = FRUGAL_OK;
    if (r != VK_SUCCESS)
        rc = fr_err_set(err, FRUGAL_E_UNSUPPORTED, "vulkan: no Vulkan driver (vkCreateInstance: VkResult %d)", (int)r);
    const char *st = getenv("FRUGAL_VK_STAGING");
    vk->force_staging = st && strcmp(st, "1") == 0;
    if (rc == FRUGAL_OK) rc = pick_device(vk, index, err);
    if (rc == FRUGAL_OK) rc = make_device(vk, err);
    if (rc == FRUGAL_OK) rc = make_layouts(vk, err);
    if (rc != FRUGAL_OK) {
        fr_vk_close(vk);
        return rc;
    }
    *out = vk;
    return FRUGAL_OK;
}

void fr_vk_close(fr_vk *vk) {
    if (!vk) return;
    if (vk->dev) {
        vkDeviceWaitIdle(vk->dev);
        if (vk->staging) fr_vk_buf_free(vk, vk->staging);
        for (int i = 0; i < MAX_SHADERS; i++)
            if (vk->pipes[i]) vkDestroyPipeline(vk->dev, vk->pipes[i], NULL);
        if (vk->pcache) vkDestroyPipelineCache(vk->dev, vk->pcache, NULL);
        if (vk->dpool) vkDestroyDescriptorPool(vk->dev, vk->dpool, NULL);
        if (vk->layout) vkDestroyPipelineLayout(vk->dev, vk->layout, NULL);
        if (vk->dsl) vkDestroyDescriptorSetLayout(vk->dev, vk->dsl, NULL);
        if (vk->fence) vkDestroyFence(vk->dev, vk->fence, NULL);
        if (vk->cpool) vkDestroyCommandPool(vk->dev, vk->cpool, NULL);
        vkDestroyDevice(vk->dev, NULL);
    }
    if (vk->inst) vkDestroyInstance(vk->inst, NULL);
    free(vk);
}

const char *fr_vk_name(const fr_vk *vk) { return vk->props.deviceName; }
int fr_vk_is_cpu(const fr_vk *vk) { return vk->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU; }

/* Index of the device-local heap (the first), -1 when none. */
static int local_heap(const fr_vk *vk) {
    for (uint32_t i = 0; i < vk->memprops.memoryHeapCount; i++)
        if (vk->memprops.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) return (int)i;
    return -1;
}

int fr_vk_heap_budget(const fr_vk *vk, uint64_t *budget, uint64_t *usage) {
    const int h = local_heap(vk);
    if (!vk->has_mem_budget || h < 0) return 0;
    /* physical-device-level functionality of a device extension: usable when the
     * device offers it (Vulkan 1.1 core vkGetPhysicalDeviceMemoryProperties2) */
    VkPhysicalDeviceMemoryBudgetPropertiesEXT bp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mp = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2, .pNext = &bp};
    vkGetPhysicalDeviceMemoryProperties2(vk->phys, &mp);
    *budget = bp.heapBudget[h];
    *usage = bp.heapUsage[h];
    return 1;
}

uint64_t fr_vk_vram(const fr_vk *vk) {
    const int h = local_heap(vk);
    return h < 0 ? 0 : vk->memprops.memoryHeaps[h].size;
}

uint64_t fr_vk_mem_current(const fr_vk *vk) { return atomic_load(&vk->cur); }
uint64_t fr_vk_mem_peak(const fr_vk *vk) { return atomic_load(&vk->peak); }
void fr_vk_set_budget(fr_vk *vk, uint64_t bytes) { vk->budget = bytes; }
size_t fr_vk_buf_size(const fr_vk_buf *b) { return b->size; }
void *fr_vk_buf_host(const fr_vk_buf *b) { return b->map; }

/* Memory type for a buffer: the first of `want` (in order of preference) the buffer
 * allows; -1 when none. */
static int mem_type(const fr_vk *vk, uint32_t allowed, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < vk->memprops.memoryTypeCount; i++)
        if ((allowed & (1u << i)) && (vk->memprops.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

int fr_vk_buf_new(fr_vk *vk, size_t n, fr_vk_buf **out, fr_err *err) { return buf_alloc(vk, n, 0, out, err); }

/* host 1: the staging buffer, host-visible memory first (device-local only as a last resort). */
static int buf_alloc(fr_vk *vk, size_t n, int host, fr_vk_buf **out, fr_err *err) {
    *out = NULL;
    n = (n + 3) & ~(size_t)3; /* shaders read whole 32-bit words: the last one must exist */
    if (n == 0) n = 16;
    if (!host && vk->budget && atomic_load(&vk->cur) + n > vk->budget)
        return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: %zu bytes of device memory would exceed the budget of %llu",
                          n, (unsigned long long)vk->budget);
    fr_vk_buf *b = fr_calloc(1, sizeof *b);
    if (!b) return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: out of memory");
    b->size = n;
    b->staging = host;
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .size = n,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    VkResult r = vkCreateBuffer(vk->dev, &bi, NULL, &b->buf);
    if (r != VK_SUCCESS) {
        free(b);
        return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: cannot create a buffer of %zu bytes (VkResult %d)", n, (int)r);
    }
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(vk->dev, b->buf, &req);
    /* device-local and mappable (UMA, resizable BAR, lavapipe) first: no staging copy */
    const VkMemoryPropertyFlags prefs[3] = {
        VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT,
        VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
        VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT};
    r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    for (int p = 0; p < 3 && r != VK_SUCCESS; p++) {
        const int t = mem_type(vk, req.memoryTypeBits, prefs[host ? 2 - p : p]);
        if (t < 0) continue;
        VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .allocationSize = req.size,
                                   .memoryTypeIndex = (uint32_t)t};
        r = vkAllocateMemory(vk->dev, &ai, NULL, &b->mem);
        if (r == VK_SUCCESS && (vk->memprops.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
            (host || !vk->force_staging))
            if (vkMapMemory(vk->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map) != VK_SUCCESS) b->map = NULL;
    }
    if (r != VK_SUCCESS) {
        vkDestroyBuffer(vk->dev, b->buf, NULL);
        free(b);
        return fr_err_set(err, FRUGAL_E_NOMEM, "vulkan: out of device memory allocating %zu bytes (VkResult %d)", n,
                          (int)r);
    }
    vkBindBufferMemory(vk->dev, b->buf, b->mem, 0);
    *out = b;
    if (host) return FRUGAL_OK;
    const uint64_t now = atomic_fetch_add(&vk->cur, n) + n;
    uint64_t pk = atomic_load(&vk->peak);
    while (now > pk && !atomic_compare_exchange_weak(&vk->peak, &pk, now)) {
    }
    return FRUGAL_OK;
}

void fr_vk_buf_free(fr_vk *vk, fr_vk_buf *b) {
    if (!b) return;
    if (b->map) vkUnmapMemory(vk->dev, b->mem);
    vkDestroyBuffer(vk->dev, b->buf, NULL);
    vkFreeMemory(vk->dev, b->mem, NULL);
    if (!b->staging) atomic_fetch_sub(&vk->cur, b->size);
    free(b);
}

static int begin_stream(fr_vk *vk, fr_err *err) {
    if (vk->recording) return FRUGAL_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    VkResult r = vkBeginCommandBuffer(vk->cmd, &bi);
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkBeginCommandBuffer");
    vk->recording = 1;
    return FRUGAL_OK;
}

/* Make everything written so far visible to the next command of kind dst. */
static void barrier(fr_vk *vk, VkPipelineStageFlags dst_stage, VkAccessFlags dst_access) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = dst_access};
    vkCmdPipelineBarrier(vk->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, dst_stage, 0,
                         1, &mb, 0, NULL, 0, NULL);
}

int fr_vk_run(fr_vk *vk, fr_err *err) {
    if (!vk->recording) return FRUGAL_OK;
    barrier(vk, VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT);
    vk->recording = 0;
    VkResult r = vkEndCommandBuffer(vk->cmd);
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkEndCommandBuffer");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &vk->cmd};
    if ((r = vkQueueSubmit(vk->queue, 1, &si, vk->fence)) != VK_SUCCESS) return vk_fail(err, r, "vkQueueSubmit");
    r = vkWaitForFences(vk->dev, 1, &vk->fence, VK_TRUE, UINT64_MAX);
    vkResetFences(vk->dev, 1, &vk->fence);
    vkResetCommandBuffer(vk->cmd, 0);
    vkResetDescriptorPool(vk->dev, vk->dpool, 0);
    vk->n_sets = 0;
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkWaitForFences (device lost?)");
    return FRUGAL_OK;
}

/* Copy through the staging buffer: to_dev 1 host -> b, 0 b -> host. */
static int staged_copy(fr_vk *vk, fr_vk_buf *b, size_t off, void *host, size_t n, int to_dev, fr_err *err) {
    if (!vk->staging) { /* made on first use: devices whose memory the host maps never need it */
        int rc = buf_alloc(vk, STAGING_BYTES, 1, &vk->staging, err);
        if (rc) return rc;
        if (!vk->staging->map)
            return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "vulkan: %s has no host-visible memory", vk->props.deviceName);
    }
    for (size_t done = 0; done < n;) {
        const size_t len = n - done < STAGING_BYTES ? n - done : STAGING_BYTES;
        if (to_dev) memcpy(vk->staging->map, (const char *)host + done, len);
        int rc = begin_stream(vk, err);
        if (rc) return rc;
        VkBufferCopy c = {.srcOffset = to_dev ? 0 : off + done, .dstOffset = to_dev ? off + done : 0, .size = len};
        vkCmdCopyBuffer(vk->cmd, to_dev ? vk->staging->buf : b->buf, to_dev ? b->buf : vk->staging->buf, 1, &c);
        if ((rc = fr_vk_run(vk, err))) return rc;
        if (!to_dev) memcpy((char *)host + done, vk->staging->map, len);
        done += len;
    }
    return FRUGAL_OK;
}

int fr_vk_upload(fr_vk *vk, fr_vk_buf *b, size_t off, const void *src, size_t n, fr_err *err) {
    if (off > b->size || n > b->size - off)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: upload of %zu bytes at %zu past a %zu-byte buffer", n, off,
                          b->size);
    int rc = fr_vk_run(vk, err); /* the device may still read what is overwritten */
    if (rc) return rc;
    if (b->map) {
        memcpy((char *)b->map + off, src, n);
        return FRUGAL_OK;
    }
    return staged_copy(vk, b, off, (void *)src, n, 1, err);
}

int fr_vk_download(fr_vk *vk, fr_vk_buf *b, size_t off, void *dst, size_t n, fr_err *err) {
    if (off > b->size || n > b->size - off)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "vulkan: download of %zu bytes at %zu past a %zu-byte buffer", n,
                          off, b->size);
    int rc = fr_vk_run(vk, err);
    if (rc) return rc;
    if (b->map) {
        memcpy(dst, (const char *)b->map + off, n);
        return FRUGAL_OK;
    }
    return staged_copy(vk, b, off, dst, n, 0, err);
}

static int pipeline(fr_vk *vk, const char *name, VkPipeline *out, fr_err *err) {
    int idx = -1;
    for (int i = 0; i < fr_vk_n_shaders && i < MAX_SHADERS; i++)
        if (strcmp(fr_vk_shaders[i].name, name) == 0) idx = i;
    if (idx < 0) return fr_err_set(err, FRUGAL_E_INTERNAL, "vulkan: no shader named '%s'", name);
    if (vk->pipes[idx]) {
        *out = vk->pipes[idx];
        return FRUGAL_OK;
    }
    VkShaderModuleCreateInfo mi = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
                                   .codeSize = fr_vk_shaders[idx].size, .pCode = fr_vk_shaders[idx].code};
    VkShaderModule mod;
    VkResult r = vkCreateShaderModule(vk->dev, &mi, NULL, &mod);
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkCreateShaderModule");
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO, .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod, .pName = "main"},
        .layout = vk->layout};
    r = vkCreateComputePipelines(vk->dev, vk->pcache, 1, &ci, NULL, &vk->pipes[idx]);
    vkDestroyShaderModule(vk->dev, mod, NULL);
    if (r != VK_SUCCESS) {
        vk->pipes[idx] = VK_NULL_HANDLE;
        return fr_err_set(err, FRUGAL_E_UNSUPPORTED, "vulkan: %s cannot build shader '%s' (VkResult %d)",
                          vk->props.deviceName, name, (int)r);
    }
    *out = vk->pipes[idx];
    return FRUGAL_OK;
}

int fr_vk_dispatch(fr_vk *vk, const char *name, int n_bufs, fr_vk_buf *const *bufs, const void *pc, size_t pc_size,
                   uint32_t gx, uint32_t gy, uint32_t gz, fr_err *err) {
    if (n_bufs < 1 || n_bufs > FR_VK_MAX_BINDINGS || pc_size > FR_VK_PUSH_BYTES)
        return fr_err_set(err, FRUGAL_E_INTERNAL, "vulkan: dispatch of '%s' with %d buffers, %zu push bytes", name,
                          n_bufs, pc_size);
    VkPipeline pipe = VK_NULL_HANDLE;
    int rc = pipeline(vk, name, &pipe, err);
    if (rc) return rc;
    if (vk->n_sets == MAX_SETS && (rc = fr_vk_run(vk, err))) return rc; /* pool full: flush */
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = vk->dpool, .descriptorSetCount = 1, .pSetLayouts = &vk->dsl};
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(vk->dev, &ai, &set);
    if (r != VK_SUCCESS) return vk_fail(err, r, "vkAllocateDescriptorSets");
    vk->n_sets++;
    /* unused bindings get the first buffer: every binding of the layout stays valid */
    VkDescriptorBufferInfo bi[FR_VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[FR_VK_MAX_BINDINGS];
    for (int i = 0; i < FR_VK_MAX_BINDINGS; i++) {
        bi[i] = (VkDescriptorBufferInfo){.buffer = bufs[i < n_bufs ? i : 0]->buf, .offset = 0, .range = VK_WHOLE_SIZE};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = set,
                                      .dstBinding = (uint32_t)i, .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .pBufferInfo = &bi[i]};
    }
    vkUpdateDescriptorSets(vk->dev, FR_VK_MAX_BINDINGS, w, 0, NULL);
    if ((rc = begin_stream(vk, err))) return rc;
    barrier(vk, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    vkCmdBindPipeline(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);
    vkCmdBindDescriptorSets(vk->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, vk->layout, 0, 1, &set, 0, NULL);
    uint8_t pcb[FR_VK_PUSH_BYTES] = {0};
    if (pc_size) memcpy(pcb, pc, pc_size);
    vkCmdPushConstants(vk->cmd, vk->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, FR_VK_PUSH_BYTES, pcb);
    vkCmdDispatch(vk->cmd, gx, gy, gz);
    return FRUGAL_OK;
}
