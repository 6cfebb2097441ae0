/* bench_gpu.h - bench's device figures with -ngl: the device's name and memory, its read
 * bandwidth (a shader summing a buffer in device memory) and the split roofline of
 * generation: per token, the device's bytes at the device's bandwidth plus the CPU's
 * bytes (weights left on the CPU, cached K/V) at the CPU's bandwidth, plus with
 * --gpu-stream the streamed bytes at the measured copy bandwidth. */
#ifndef FRUGAL_BENCH_GPU_H
#define FRUGAL_BENCH_GPU_H

#include <stdio.h>

#include "frugal.h"

typedef struct bench_gpu {
    int on;              /* the model has a device */
    frugal_gpu_info gi;
    double bw_gbs;       /* device read bandwidth (<= 0: the probe failed) */
    size_t probed;       /* bytes of the probe's buffer */
    uint64_t h2d0;       /* --gpu-stream: copied bytes / seconds when the tg test began */
    double h2d0_s;
    double h2d_per_token; /* bytes copied to the device per generated token (tg test) */
    double h2d_gbs;       /* and the copies' bandwidth in GB/s (0: no copies) */
} bench_gpu;

/* --gpu-stream: mark the copy counters before the tg test, and after it turn them into
 * bytes per token over its tokens (warm-up included) and the copy bandwidth. */
void bench_gpu_stream_start(const frugal_model *model, bench_gpu *g);
void bench_gpu_stream_end(const frugal_model *model, bench_gpu *g, double tokens);

/* Fill g's memory figures from the model (keeping the stream figures) and probe the device (buffer of up to mib MiB; 0: 256,
 * 32 on a software device). g->on stays 0 without a device. A failed probe warns. */
void bench_gpu_probe(frugal_model *model, int mib, bench_gpu *g);

/* The generation roofline in tok/s: bytes_per_token are all weights read per token,
 * kv_read the K/V bytes (on the CPU), cpu_gbs the CPU's bandwidth; 0 when unknown. */
double bench_gpu_roofline(const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs);

/* The device lines of the text summary; tps: generation's median (0: no tg test). */
void bench_gpu_print_text(FILE *out, const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs,
                          const char *test, double tps);
/* The device fields of one test's JSON object (each followed by ", "). */
void bench_gpu_print_json(FILE *out, const bench_gpu *g, double bytes_per_token, double kv_read, double cpu_gbs,
                          double tps);

#endif
