/* nvml.c - GPU readings through NVML, loaded at run time with dlopen: frugal has no
 * link-time dependency on the NVIDIA driver, and a machine without it simply has no
 * GPU readings. Only the handful of entry points we read are resolved; their
 * signatures are NVML's stable C ABI (nvml.h): every call returns 0 on success. */
#include "core/fault.h"
#include "monitor/monitor.h"

#include <dlfcn.h>
#include <stdlib.h>

typedef void *nv_dev;
typedef struct nv_util { unsigned int gpu, memory; } nv_util;
typedef struct nv_mem { unsigned long long total, free, used; } nv_mem;

struct fr_nvml {
    void *lib;
    nv_dev dev;
    int (*shutdown)(void);
    int (*temp)(nv_dev, int sensor, unsigned int *);
    int (*util)(nv_dev, nv_util *);
    int (*mem)(nv_dev, nv_mem *);
    int (*power)(nv_dev, unsigned int *);
};

/* Resolve one symbol into a function pointer without an object/function cast. */
#define SYM(g, field, name) (*(void **)(&(g)->field) = dlsym((g)->lib, name))

fr_nvml *fr_nvml_open(const char *lib_path) {
    void *lib = dlopen(lib_path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) return NULL;
    fr_nvml *g = fr_calloc(1, sizeof *g);
    if (!g) { dlclose(lib); return NULL; }
    g->lib = lib;
    int (*init)(void);
    int (*count)(unsigned int *);
    int (*handle)(unsigned int, nv_dev *);
    *(void **)(&init) = dlsym(lib, "nvmlInit_v2");
    *(void **)(&count) = dlsym(lib, "nvmlDeviceGetCount_v2");
    *(void **)(&handle) = dlsym(lib, "nvmlDeviceGetHandleByIndex_v2");
    SYM(g, shutdown, "nvmlShutdown");
    SYM(g, temp, "nvmlDeviceGetTemperature");
    SYM(g, util, "nvmlDeviceGetUtilizationRates");
    SYM(g, mem, "nvmlDeviceGetMemoryInfo");
    SYM(g, power, "nvmlDeviceGetPowerUsage");
    unsigned int n = 0;
    if (!init || !count || !handle || !g->shutdown || init() != 0) {
        dlclose(lib);
        free(g);
        return NULL;
    }
    if (count(&n) != 0 || n == 0 || handle(0, &g->dev) != 0) {
        g->shutdown();
        dlclose(lib);
        free(g);
        return NULL;
    }
    return g;
}

void fr_nvml_read(fr_nvml *g, fr_readings *r) {
    unsigned int v;
    nv_util u;
    nv_mem mm;
    if (g->temp && g->temp(g->dev, 0 /* NVML_TEMPERATURE_GPU */, &v) == 0) r->gpu_temp_c = v;
    if (g->util && g->util(g->dev, &u) == 0) r->gpu_util_pct = u.gpu;
    if (g->power && g->power(g->dev, &v) == 0) r->gpu_watts = v / 1000.0; /* milliwatts */
    if (g->mem && g->mem(g->dev, &mm) == 0) {
        r->gpu_mem_used = (int64_t)mm.used;
        r->gpu_mem_total = (int64_t)mm.total;
    }
}

void fr_nvml_close(fr_nvml *g) {
    if (!g) return;
    g->shutdown();
    dlclose(g->lib);
    free(g);
}
