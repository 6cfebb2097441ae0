/* bench_sum.h - the bandwidth probe's sum loops (bench_api.c), for the benchmarks that
 * must read memory exactly as the probe does (bench/stream_ab.c). */
#ifndef FRUGAL_BENCH_SUM_H
#define FRUGAL_BENCH_SUM_H

#include <stddef.h>
#include <stdint.h>

/* Sum of the n words at p (8-byte aligned). */
typedef uint64_t (*fr_sum_fn)(const uint64_t *p, size_t n);

/* The widest build this CPU runs of the plain loop (pf = 0) or of the one that also
 * prefetches FR_IL_PREFETCH_AHEAD bytes ahead as the decode kernels do (pf = 1). */
fr_sum_fn fr_bench_sum(int pf);

#endif
