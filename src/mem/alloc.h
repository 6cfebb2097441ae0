/* alloc.h - the one accounting layer every large buffer goes through.
 *
 * Each allocation names a category; the layer keeps current and peak bytes per
 * category and in total (atomics, so any thread may allocate). The planner's
 * forecast (memory-budget issue) is checked against these numbers and against the
 * process's peak RSS. A budget, when set, makes allocations that would exceed it
 * fail with NULL instead of growing the process. Memory-mapped weights are not
 * counted here (they are page cache, measured through RSS). */
#ifndef FRUGAL_ALLOC_H
#define FRUGAL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

typedef enum fr_mem_cat {
    FR_MEM_WEIGHTS = 0,  /* weights copied/dequantized into RAM (norms, biases, repacks) */
    FR_MEM_KV,           /* KV cache */
    FR_MEM_SCRATCH,      /* activations, logits, quantized activations */
    FR_MEM_IO,           /* streaming / I/O buffers */
    FR_MEM_TOKENIZER,    /* vocabulary tables */
    FR_MEM_OTHER,
    FR_MEM_COUNT
} fr_mem_cat;

/* 64-byte aligned, zeroed memory of n bytes charged to cat; NULL on failure
 * (out of memory or over the budget). fr_mem_free must get the same cat and n. */
void *fr_mem_alloc(fr_mem_cat cat, size_t n);
void fr_mem_free(fr_mem_cat cat, void *p, size_t n);

/* A transient measurement buffer (the disk probe's read buffer): n bytes rounded up to
 * whole 2 MiB in their own mapping, 2 MiB-aligned and advised for transparent huge
 * pages whatever n is (it must read the way the expert cache's huge-page slots do),
 * the rounded size charged to FR_MEM_IO and counted in the peaks like any buffer, but
 * never refused by the budget: a probe runs between generations, while a budget at
 * its limit is held by the cache it measures for. Not for anything that lives during
 * generation. NULL when out of memory.
 * fr_mem_free_probe must get the same n. */
void *fr_mem_alloc_probe(size_t n);
void fr_mem_free_probe(void *p, size_t n);

/* Bytes currently charged / peak since start (cat = FR_MEM_COUNT: all together). */
uint64_t fr_mem_current(fr_mem_cat cat);
uint64_t fr_mem_peak(fr_mem_cat cat);
const char *fr_mem_cat_name(fr_mem_cat cat);

/* Budget for all accounted memory together; 0 = unlimited. */
void fr_mem_set_budget(uint64_t bytes);

#endif
