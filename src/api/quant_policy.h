/* quant_policy.h - the `--policy auto` type chooser of frugal_quantize.
 *
 * Each candidate tensor gets the type that minimises the predicted KL-divergence of
 * the model's output under a byte budget:
 *  - relative error of a type for a tensor: sum (w - q(w))^2 / sum w^2 of quantize ->
 *    dequantize (with the importance-weighted writer where the type has one and
 *    --calib gave importance), on evenly spaced rows (FR_POLICY_SAMPLE_ELEMS values'
 *    worth, FR_POLICY_MIN_ROWS .. FR_POLICY_SAMPLE_ROWS rows), each column's squared
 *    error weighted by its input channel's importance (mean squared activation over
 *    the calibration text with --calib, else uniform);
 *  - predicted KL of that choice: relative error x the tensor's sensitivity, the KL
 *    per unit of relative error measured by quantizing that tensor alone and running
 *    the model (fr_policy_sensitivity). KL is quadratic in small perturbations, so to
 *    first order the tensors' contributions add up: the total is their sum. The
 *    sensitivity is what gives the output head, value and down projections more bits
 *    than keys and queries, as llama-quantize's fixed mixes do by role, but measured
 *    for the model at hand;
 *  - candidates: F16, FP8O, Q8_0, I8C, Q6_K, Q5_K, Q5_0, Q4_K, IQ4_XS, IQ4_NL, Q4_0,
 *    NF4, Q3_K, IQ3_S, Q2_K, those whose block fits the row length (the 256-value K
 *    and IQ types need rows that are a multiple of 256; the others fill in). F16 is
 *    the largest: an F32 input never stays F32 (use --type f32 for that); its F16
 *    error is below that of every quantized type;
 *  - choice: per tensor, the lower convex hull of (bytes, error) over the candidates
 *    (dominated types dropped); everything starts on its smallest hull point, then
 *    hull steps are taken in order of error saved per byte, as long as the next step
 *    fits the budget. Stopping at the first step that does not fit (instead of
 *    skipping it) makes the plan for a budget a prefix of the plan for any larger
 *    budget, so a smaller budget never gives a larger file. A budget at or above the
 *    all-F16 size gives F16 everywhere.
 * The budget counts tensor data bytes (what frugal_quantize_stats.bytes_out counts,
 * not GGUF metadata or padding); tensors that are not candidates (norms, kept
 * tensors) count at their fixed size. */
#ifndef FRUGAL_QUANT_POLICY_H
#define FRUGAL_QUANT_POLICY_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "core/pool.h"
#include "core/types.h"

#define FR_POLICY_MAX_CAND 16
#define FR_POLICY_SAMPLE_ROWS 512
#define FR_POLICY_MIN_ROWS 32
#define FR_POLICY_SAMPLE_ELEMS 65536

typedef struct fr_policy_item {
    /* in */
    const char *name;
    const void *data;  /* nrows rows of in_type */
    fr_type in_type;
    int64_t ne0, nrows;
    const float *imp;  /* ne0 per-input-channel importance (owned), or NULL: uniform */
    double sens;       /* KL per unit of relative error (fr_policy_sensitivity; <= 0: 1) */
    /* filled by fr_policy_measure */
    int n_cand;
    fr_type cand[FR_POLICY_MAX_CAND];
    uint64_t bytes[FR_POLICY_MAX_CAND];
    double rel[FR_POLICY_MAX_CAND]; /* relative (importance-weighted) squared error */
    double err[FR_POLICY_MAX_CAND]; /* rel x sens: the predicted KL the chooser sums */
    /* filled by fr_policy_choose */
    int choice;        /* index into cand */
} fr_policy_item;

/* Measure every candidate type of every item (in parallel over items on pool).
 * Returns FRUGAL_OK or FRUGAL_E_NOMEM. */
int fr_policy_measure(fr_policy_item *items, size_t n, fr_pool *pool, fr_err *err);

/* Whether budget can hold fixed_bytes and every item at its smallest candidate type
 * (known from the shapes alone, before anything is measured): FRUGAL_OK, or
 * FRUGAL_E_INVALID_ARG naming the smallest possible size. */
int fr_policy_check_budget(const fr_policy_item *items, size_t n, uint64_t fixed_bytes, uint64_t budget,
                           fr_err *err);

/* Run the model at model_path over text_path (up to 4096 tokens) and set each item's
 * imp to the mean squared input of its matrix per channel, normalised to mean 1
 * (quant_calib.c). Items the model never multiplies by keep imp = NULL. */
int fr_calib_importance(const char *model_path, const char *text_path, fr_policy_item *items, size_t n,
                        FILE *log, fr_err *err);

/* Measure each item's sensitivity (quant_sens.c): the mean KL-divergence of the
 * model's output over text_path (NULL: text sampled from the model itself) when only
 * that matrix is quantized to Q4_0, divided by its relative error at Q4_0 (weighted
 * by imp when set, as fr_policy_measure weighs it). Items that cannot be measured
 * get the median of the others. When the model cannot run and text_path is NULL,
 * every sens is 1 and a note goes to log. FRUGAL_POLICY_SENS=0 in the environment
 * skips the measurement (every sens 1: the plain sum of relative errors). */
int fr_policy_sensitivity(const char *model_path, const char *text_path, fr_policy_item *items, size_t n,
                          FILE *log, fr_err *err);

/* Choose a type per item so that fixed_bytes + sum of chosen bytes <= budget, as
 * described above. Fails with FRUGAL_E_INVALID_ARG (saying the minimum) when even
 * the smallest types do not fit. Writes the choice table to log (may be NULL). */
int fr_policy_choose(fr_policy_item *items, size_t n, uint64_t fixed_bytes, uint64_t budget, FILE *log,
                     fr_err *err);

/* Adds to *num the importance-weighted squared error of d against w (n values; imp
 * NULL: weight 1) and to *den the weighted squared size of w: num / den is the
 * relative error the chooser and the sensitivity runs compare. */
static inline void fr_policy_err_add(const float *w, const float *d, const float *imp, int64_t n, double *num,
                                     double *den) {
    for (int64_t i = 0; i < n; i++) {
        const double e = (double)w[i] - (double)d[i], im = imp ? imp[i] : 1.0;
        *num += im * e * e;
        *den += im * (double)w[i] * (double)w[i];
    }
}

#endif
