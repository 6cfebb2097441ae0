/* quant_policy.c - per-tensor type choice under a size budget (see quant_policy.h). */
#include "core/fault.h"
#include "kernels/dispatch.h"
#include "api/quant_policy.h"
#include "core/quant_lowbit.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Candidate types, largest first (the order only matters for ties in the table). The
 * 256-value K / IQ types only enter where the rows are a multiple of 256; the 32-value
 * ones (Q8_0, Q5_0, IQ4_NL, Q4_0) cover the other row lengths. */
static const fr_type k_cands[] = {FR_TYPE_F16,  FR_TYPE_FP8O,   FR_TYPE_Q8_0,   FR_TYPE_I8C,  FR_TYPE_Q6_K,
                                  FR_TYPE_Q5_K, FR_TYPE_Q5_0,   FR_TYPE_Q4_K,   FR_TYPE_IQ4_XS, FR_TYPE_IQ4_NL,
                                  FR_TYPE_Q4_0, FR_TYPE_NF4,    FR_TYPE_Q3_K,   FR_TYPE_IQ3_S, FR_TYPE_Q2_K};
_Static_assert(sizeof k_cands / sizeof k_cands[0] <= FR_POLICY_MAX_CAND, "candidate table");

typedef struct {
    fr_policy_item *items;
    size_t n;
    bool nomem;
} measure_job;

/* Relative squared error of one type on the sampled rows of it, in double, with the
 * writer quantize.c will use (the importance-weighted one where the type has it and
 * imp is set). Buffers: w, d: ne0 floats; q: a row of any candidate. */
static double type_error(const fr_policy_item *it, fr_type ty, const fr_type_traits *in, float *w, float *d,
                         uint8_t *q) {
    const fr_type_traits *tr = fr_type_traits_get(ty);
    const size_t in_row = fr_row_size(it->in_type, it->ne0);
    /* rows: FR_POLICY_SAMPLE_ELEMS values' worth, at least FR_POLICY_MIN_ROWS, at most
     * FR_POLICY_SAMPLE_ROWS (the search-based writers, IQ3_S/IQ4, cost ~1-2 us a value) */
    int64_t ns = FR_POLICY_SAMPLE_ELEMS / (it->ne0 > 0 ? it->ne0 : 1);
    if (ns < FR_POLICY_MIN_ROWS) ns = FR_POLICY_MIN_ROWS;
    if (ns > FR_POLICY_SAMPLE_ROWS) ns = FR_POLICY_SAMPLE_ROWS;
    if (ns > it->nrows) ns = it->nrows;
    double num = 0.0, den = 0.0;
    for (int64_t k = 0; k < ns; k++) {
        int64_t r = k * it->nrows / ns; /* evenly spaced, first row included */
        in->to_float((const uint8_t *)it->data + (size_t)r * in_row, w, it->ne0);
        if (!it->imp || !fr_quantize_weighted_ok(ty) || fr_quantize_weighted(ty, w, q, it->ne0, it->imp) != 0)
            tr->from_float(w, q, it->ne0);
        tr->to_float(q, d, it->ne0);
        fr_policy_err_add(w, d, it->imp, it->ne0, &num, &den);
    }
    double rel = den > 0.0 ? num / den : num;
    return isfinite(rel) ? rel : HUGE_VAL;
}

/* Candidate type ty can hold rows of ne0 values (its traits, if any, in *tr). */
static bool cand_ok(fr_type ty, int64_t ne0, const fr_type_traits **tr) {
    *tr = fr_type_traits_get(ty);
    return *tr && (*tr)->from_float && ne0 % (*tr)->blck_size == 0;
}

static int too_small(uint64_t budget, uint64_t total, fr_err *err) {
    return fr_err_set(err, FRUGAL_E_INVALID_ARG,
                      "quantize: budget of %" PRIu64 " bytes is below the smallest possible size, %" PRIu64
                      " bytes of tensor data",
                      budget, total);
}

int fr_policy_check_budget(const fr_policy_item *items, size_t n, uint64_t fixed_bytes, uint64_t budget,
                           fr_err *err) {
    uint64_t total = fixed_bytes;
    for (size_t i = 0; i < n; i++) {
        uint64_t best = 0;
        for (size_t c = 0; c < sizeof k_cands / sizeof k_cands[0]; c++) {
            const fr_type_traits *tr;
            if (!cand_ok(k_cands[c], items[i].ne0, &tr)) continue;
            const uint64_t b = (uint64_t)fr_row_size(k_cands[c], items[i].ne0) * (uint64_t)items[i].nrows;
            if (best == 0 || b < best) best = b;
        }
        total += best;
    }
    return total > budget ? too_small(budget, total, err) : FRUGAL_OK;
}

static void measure_worker(void *arg, int ith, int nth) {
    measure_job *j = arg;
    for (size_t i = (size_t)ith; i < j->n; i += (size_t)nth) {
        fr_policy_item *it = &j->items[i];
        const fr_type_traits *in = fr_type_traits_get(it->in_type);
        it->n_cand = 0;
        it->choice = 0;
        float *w = fr_malloc((size_t)it->ne0 * 2 * sizeof(float));
        uint8_t *q = fr_malloc((size_t)it->ne0 * 4 + 64); /* >= a row of any candidate */
        if (!w || !q || !in || !in->to_float) {
            j->nomem = true;
            free(w);
            free(q);
            continue;
        }
        for (size_t c = 0; c < sizeof k_cands / sizeof k_cands[0]; c++) {
            const fr_type_traits *tr;
            if (!cand_ok(k_cands[c], it->ne0, &tr)) continue;
            int k = it->n_cand++;
            it->cand[k] = k_cands[c];
            it->bytes[k] = (uint64_t)fr_row_size(k_cands[c], it->ne0) * (uint64_t)it->nrows;
            it->rel[k] = type_error(it, k_cands[c], in, w, w + it->ne0, q);
            it->err[k] = it->rel[k] * (it->sens > 0.0 ? it->sens : 1.0); /* predicted KL */
        }
        free(w);
        free(q);
    }
}

int fr_policy_measure(fr_policy_item *items, size_t n, fr_pool *pool, fr_err *err) {
    measure_job j = {items, n, false};
    if (pool) fr_pool_run(pool, measure_worker, &j);
    else measure_worker(&j, 0, 1);
    return j.nomem ? fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory measuring errors") : FRUGAL_OK;
}

/* Lower convex hull of an item's (bytes, error) points, as candidate indices with
 * bytes increasing and error strictly decreasing; returns its length (>= 1). */
static int item_hull(const fr_policy_item *it, int *hull) {
    int ord[FR_POLICY_MAX_CAND];
    for (int k = 0; k < it->n_cand; k++) ord[k] = k;
    for (int a = 1; a < it->n_cand; a++) /* insertion sort: bytes, then error */
        for (int b = a; b > 0; b--) {
            int x = ord[b - 1], y = ord[b];
            if (it->bytes[x] < it->bytes[y] || (it->bytes[x] == it->bytes[y] && it->err[x] <= it->err[y])) break;
            ord[b - 1] = y;
            ord[b] = x;
        }
    int h = 0;
    for (int k = 0; k < it->n_cand; k++) {
        int p = ord[k];
        if (h && !(it->err[p] < it->err[hull[h - 1]])) continue;       /* dominated */
        if (h && it->bytes[p] == it->bytes[hull[h - 1]]) { hull[h - 1] = p; continue; }
        while (h >= 2) { /* drop the last point when going straight past it saves more per byte */
            int a = hull[h - 2], b = hull[h - 1];
            double r_ab = (it->err[a] - it->err[b]) / (double)(it->bytes[b] - it->bytes[a]);
            double r_ap = (it->err[a] - it->err[p]) / (double)(it->bytes[p] - it->bytes[a]);
            if (r_ap >= r_ab) h--;
            else break;
        }
        hull[h++] = p;
    }
    return h;
}

static void print_table(const fr_policy_item *items, size_t n, uint64_t fixed, uint64_t budget, uint64_t total,
                        FILE *log) {
    if (!log) return;
    fprintf(log, "policy auto: budget %" PRIu64 " bytes of tensor data, %" PRIu64 " fixed (tensors kept as they are)\n",
            budget, fixed);
    fprintf(log, "  %-32s %-14s %-6s %12s %6s %10s %10s %10s\n", "tensor", "shape", "type", "bytes", "bpw", "rel.err",
            "KL/rel", "pred.KL");
    double sum_err = 0.0;
    for (size_t i = 0; i < n; i++) {
        const fr_policy_item *it = &items[i];
        int c = it->choice;
        char shape[40];
        snprintf(shape, sizeof shape, "%lldx%lld", (long long)it->ne0, (long long)it->nrows);
        double bpw = 8.0 * (double)it->bytes[c] / ((double)it->ne0 * (double)it->nrows);
        fprintf(log, "  %-32s %-14s %-6s %12" PRIu64 " %6.3f %10.3e %10.3e %10.3e\n", it->name, shape,
                fr_type_name(it->cand[c]), it->bytes[c], bpw, it->rel[c], it->sens > 0.0 ? it->sens : 1.0, it->err[c]);
        sum_err += it->err[c];
    }
    fprintf(log, "policy auto: %" PRIu64 " of %" PRIu64 " bytes used, predicted KL (sum over tensors) %.4e\n", total,
            budget, sum_err);
}

int fr_policy_choose(fr_policy_item *items, size_t n, uint64_t fixed_bytes, uint64_t budget, FILE *log,
                     fr_err *err) {
    int(*hull)[FR_POLICY_MAX_CAND] = fr_calloc(n ? n : 1, sizeof *hull);
    int *hn = fr_calloc(n ? n : 1, sizeof *hn), *pos = fr_calloc(n ? n : 1, sizeof *pos);
    if (!hull || !hn || !pos) {
        free(hull); free(hn); free(pos);
        return fr_err_set(err, FRUGAL_E_NOMEM, "quantize: out of memory choosing types");
    }
    uint64_t total = fixed_bytes, all_f16 = fixed_bytes;
    bool f16_everywhere = true;
    for (size_t i = 0; i < n; i++) {
        int f16 = -1;
        for (int k = 0; k < items[i].n_cand; k++) if (items[i].cand[k] == FR_TYPE_F16) f16 = k;
        if (f16 < 0) f16_everywhere = false;
        else all_f16 += items[i].bytes[f16];
        hn[i] = item_hull(&items[i], hull[i]);
        items[i].choice = hull[i][0];
        total += items[i].bytes[items[i].choice];
    }
    int rc = FRUGAL_OK;
    if (f16_everywhere && all_f16 <= budget) {
        /* the budget holds the largest candidate everywhere: no trade-off to make */
        total = all_f16;
        for (size_t i = 0; i < n; i++)
            for (int k = 0; k < items[i].n_cand; k++) if (items[i].cand[k] == FR_TYPE_F16) items[i].choice = k;
    } else if (total > budget) {
        rc = too_small(budget, total, err);
    } else {
        for (;;) {
            size_t best = n;
            double best_rate = -1.0;
            for (size_t i = 0; i < n; i++) {
                if (pos[i] + 1 >= hn[i]) continue;
                const fr_policy_item *it = &items[i];
                int a = hull[i][pos[i]], b = hull[i][pos[i] + 1];
                double rate = (it->err[a] - it->err[b]) / (double)(it->bytes[b] - it->bytes[a]);
                if (rate > best_rate) { best_rate = rate; best = i; }
            }
            if (best == n) break;
            fr_policy_item *it = &items[best];
            int a = hull[best][pos[best]], b = hull[best][pos[best] + 1];
            uint64_t delta = it->bytes[b] - it->bytes[a];
            if (total + delta > budget) break; /* prefix rule: keeps sizes monotone in the budget */
            total += delta;
            pos[best]++;
            it->choice = b;
        }
    }
    if (rc == FRUGAL_OK) print_table(items, n, fixed_bytes, budget, total, log);
    free(hull);
    free(hn);
    free(pos);
    return rc;
}
