/* planner.c - memory plan arithmetic (see planner.h for the model of memory). */
#include "mem/planner.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double mib(uint64_t b) { return (double)b / 1048576.0; }

/* Explain why the minimum does not fit and what would: the KV cache is the one part
 * the user can shrink without changing the model (shorter context, smaller type). */
static int too_small(const fr_plan_in *in, const fr_plan *p, fr_err *err) {
    uint64_t rest = p->min_bytes - p->kv_bytes; /* minimum without any KV cache */
    char advice[256] = "";
    if (in->budget > rest && in->kv_bytes_per_token > 0) {
        double room = (double)(in->budget - rest);
        long ctx_fit = (long)(room / in->kv_bytes_per_token) / 16 * 16;
        long ctx_q4 = in->kv_q4_bytes_per_token > 0 ? (long)(room / in->kv_q4_bytes_per_token) / 16 * 16 : 0;
        int n = 0;
        if (ctx_fit >= 16)
            n = snprintf(advice, sizeof advice, "; would fit: -c %ld with --kv-type %s", ctx_fit,
                         in->kv_type_name ? in->kv_type_name : "(this type)");
        if (ctx_q4 >= 16 && ctx_q4 > ctx_fit && n >= 0 && (size_t)n < sizeof advice)
            snprintf(advice + n, sizeof advice - (size_t)n, "%s -c %ld with --kv-type q4_0",
                     n ? ", or" : "; would fit:", ctx_q4);
        if (!advice[0])
            snprintf(advice, sizeof advice, "; not even a 16-token context fits: raise the budget");
    } else {
        snprintf(advice, sizeof advice,
                 "; even without a KV cache %.1f MiB are needed: raise the budget or use a smaller model",
                 mib(rest));
    }
    return fr_err_set(err, FRUGAL_E_NOMEM,
                      "memory budget %.1f MiB is below the minimum working set of %.1f MiB "
                      "(%d of %d layers streamed through %d I/O buffers of %.1f MiB + KV cache %.1f MiB for %d tokens + "
                      "scratch %.1f MiB + output head/norms %.1f MiB + overhead %.1f MiB)%s",
                      mib(in->budget), mib(p->min_bytes), p->n_streamed, in->n_layer, p->n_io_buf, mib(p->io_bytes), mib(p->kv_bytes),
                      in->n_ctx, mib(p->scratch_bytes), mib(p->always_bytes), mib(p->overhead_bytes), advice);
}

static void speed(const fr_plan_in *in, fr_plan *p) {
    double ram = (double)(p->always_bytes + p->resident_bytes);
    double disk = (double)p->streamed_bytes;
    p->tok_s_bound = p->tok_s_overlap = 0.0;
    if (in->mem_bw <= 0 || (disk > 0 && in->disk_bw <= 0)) return;
    double t_ser = ram / in->mem_bw + (disk > 0 ? disk / in->disk_bw : 0.0);
    double t_mem = (ram + disk) / in->mem_bw; /* streamed bytes are read from RAM by compute too */
    double t_disk = disk > 0 ? disk / in->disk_bw : 0.0;
    double t_ovl = t_mem > t_disk ? t_mem : t_disk;
    p->tok_s_bound = t_ser > 0 ? 1.0 / t_ser : 0.0;
    p->tok_s_overlap = t_ovl > 0 ? 1.0 / t_ovl : 0.0;
}

static int too_small_moe(const fr_plan_in *in, const fr_plan *p, fr_err *err) {
    return fr_err_set(err, FRUGAL_E_NOMEM,
                      "memory budget %.1f MiB is below the minimum working set of %.1f MiB for a mixture of experts "
                      "(dense weights of %d layers %.1f MiB streamed through %d buffers of %.1f MiB + one expert cache "
                      "slot %.1f MiB + KV cache %.1f MiB for %d tokens + scratch %.1f MiB + output head/norms %.1f MiB "
                      "+ overhead %.1f MiB)",
                      mib(in->budget), mib(p->min_bytes), in->n_layer, mib(p->dense_bytes), p->n_io_buf,
                      p->n_io_buf ? mib((p->min_bytes - p->resident_bytes - in->expert_slot_bytes - p->always_bytes -
                                         p->kv_bytes - p->scratch_bytes - p->overhead_bytes) / (uint64_t)p->n_io_buf)
                                  : 0.0,
                      mib(in->expert_slot_bytes), mib(p->kv_bytes), in->n_ctx, mib(p->scratch_bytes),
                      mib(p->always_bytes), mib(p->overhead_bytes));
}

/* Ring bytes for streaming the dense parts of layers [r, n_layer) through nbuf
 * buffers sized for the largest of them (0 when r == n_layer). */
static uint64_t dense_ring(const fr_plan_in *in, int r, int nbuf) {
    uint64_t big = 0;
    for (int i = r; i < in->n_layer; i++)
        if (in->dense_bytes[i] > big) big = in->dense_bytes[i];
    const int ns = in->n_layer - r;
    return (uint64_t)(ns < nbuf ? ns : nbuf) * big;
}

/* The smallest working set of a mixture of experts: fixed + the cheapest split of
 * the dense parts into a resident prefix and a ring + one cache slot. */
static uint64_t moe_min_bytes(const fr_plan_in *in, uint64_t fixed, int nbuf) {
    uint64_t prefix = 0, best = UINT64_MAX;
    for (int k = 0; k <= in->n_layer; k++) {
        const uint64_t cost = fixed + prefix + dense_ring(in, k, nbuf) + in->expert_slot_bytes;
        if (cost < best) best = cost;
        if (k < in->n_layer) prefix += in->dense_bytes[k];
    }
    return best;
}

/* Experts under a budget that does not hold the whole model (see fr_plan_compute).
 * Memory goes to the dense parts first: a resident dense byte saves a read of it
 * every token, a cache slot's byte only when its expert is picked (n_used / n_expert
 * of the tokens with uniform routing). So the dense parts of layers [0, r) are
 * resident for the largest r that leaves room for one cache slot, the others stream
 * through a ring like whole layers do, and the rest of the budget becomes slots. */
static int plan_experts(const fr_plan_in *in, fr_plan *p, uint64_t fixed, int nbuf, fr_err *err) {
    const int n_exp = in->n_layer * in->n_expert;
    uint64_t dense = 0;
    for (int i = 0; i < in->n_layer; i++) dense += in->dense_bytes[i];
    p->n_experts = n_exp;
    p->dense_bytes = dense;
    int r = -1;
    uint64_t prefix = 0, min_cost = UINT64_MAX, prefix_r = 0, ring_r = 0;
    for (int k = 0; k <= in->n_layer; k++) {
        const uint64_t ring = dense_ring(in, k, nbuf), cost = fixed + prefix + ring + in->expert_slot_bytes;
        if (cost < min_cost) {
            min_cost = cost;
            p->resident_bytes = prefix; /* the minimum's split, for the message */
            p->n_io_buf = k < in->n_layer ? (in->n_layer - k < nbuf ? in->n_layer - k : nbuf) : 0;
        }
        if (cost <= in->budget) r = k, prefix_r = prefix, ring_r = ring;
        if (k < in->n_layer) prefix += in->dense_bytes[k];
    }
    p->min_bytes = min_cost;
    if (r < 0) {
        p->forecast_peak_bytes = p->min_bytes;
        return too_small_moe(in, p, err);
    }
    uint64_t slots = (in->budget - fixed - prefix_r - ring_r) / in->expert_slot_bytes;
    if (slots > (uint64_t)n_exp) slots = (uint64_t)n_exp;
    p->streaming = p->expert_streaming = true;
    p->n_resident = r; /* layers whose dense part is resident */
    p->n_streamed = in->n_layer - r;
    p->n_io_buf = p->n_streamed < nbuf ? p->n_streamed : nbuf;
    p->n_expert_slots = (int)slots;
    p->expert_cache_bytes = slots * in->expert_slot_bytes;
    p->resident_bytes = prefix_r;
    p->io_bytes = ring_r + p->expert_cache_bytes;
    p->expert_hit_uniform = (double)slots / n_exp;
    p->expert_read_per_token = (double)in->n_layer * in->n_expert_used * (1.0 - p->expert_hit_uniform) *
                               (double)in->expert_read_bytes;
    p->streamed_bytes = (uint64_t)p->expert_read_per_token + (dense - prefix_r);
    p->forecast_peak_bytes = fixed + prefix_r + p->io_bytes;
    /* speed: compute reads dense + the picked experts from RAM, the misses (and the
     * streamed dense parts) from disk */
    p->tok_s_bound = p->tok_s_overlap = 0.0;
    const double ram = (double)(p->always_bytes + dense) + (double)in->n_layer * in->n_expert_used * in->expert_bytes;
    const double disk = (double)p->streamed_bytes;
    if (in->mem_bw <= 0 || (disk > 0 && in->disk_bw <= 0)) return FRUGAL_OK;
    const double t_disk = disk > 0 ? disk / in->disk_bw : 0.0, t_mem = ram / in->mem_bw;
    p->tok_s_bound = 1.0 / (t_mem + t_disk);
    p->tok_s_overlap = 1.0 / (t_mem > t_disk ? t_mem : t_disk);
    return FRUGAL_OK;
}

int fr_plan_compute(const fr_plan_in *in, fr_plan *p, fr_err *err) {
    memset(p, 0, sizeof *p);
    if (!in || in->n_layer <= 0 || !in->layer_bytes)
        return fr_err_set(err, FRUGAL_E_INVALID_ARG, "planner: no layers");
    int nbuf = in->n_io_buf <= 0 ? 2 : in->n_io_buf;
    if (nbuf > FR_PLAN_MAX_IO_BUF) nbuf = FR_PLAN_MAX_IO_BUF;
    p->always_bytes = in->always_bytes;
    p->kv_bytes = in->kv_bytes;
    p->scratch_bytes = in->scratch_bytes;
    p->overhead_bytes = in->overhead_bytes;
    const uint64_t fixed = in->always_bytes + in->kv_bytes + in->scratch_bytes + in->overhead_bytes;
    uint64_t all = 0;
    for (int i = 0; i < in->n_layer; i++) all += in->layer_bytes[i];
    p->n_io_buf = nbuf;

    /* cost(r): layers [0, r) resident, the rest streamed through a ring sized for
     * the largest of them. Usually cost(0) is the minimum; with uneven layers a
     * larger r can be cheaper (a big layer kept out of the ring). */
    int best = -1, arg_min = 0;
    uint64_t prefix = 0, min_cost = UINT64_MAX;
    for (int r = 0; r < in->n_layer; r++) {
        uint64_t ring_max = 0;
        for (int i = r; i < in->n_layer; i++)
            if (in->layer_bytes[i] > ring_max) ring_max = in->layer_bytes[i];
        int ns = in->n_layer - r;
        uint64_t cost = fixed + prefix + (uint64_t)(ns < nbuf ? ns : nbuf) * ring_max;
        if (cost < min_cost) { min_cost = cost; arg_min = r; }
        if (in->budget && cost <= in->budget) best = r; /* largest prefix that fits */
        prefix += in->layer_bytes[r];
    }
    p->min_bytes = min_cost < fixed + all ? min_cost : fixed + all;
    if (in->n_expert > 0 && in->dense_bytes) { /* experts: dense parts + one cache slot */
        uint64_t dense = 0;
        for (int i = 0; i < in->n_layer; i++) dense += in->dense_bytes[i];
        const uint64_t moe_min = moe_min_bytes(in, fixed, nbuf);
        if (moe_min < p->min_bytes) p->min_bytes = moe_min;
        p->n_experts = in->n_layer * in->n_expert;
        p->dense_bytes = dense;
        p->expert_slot_bytes = in->expert_slot_bytes;
    }

    if (!in->budget || fixed + all <= in->budget) {
        /* everything fits: no streaming, no ring */
        p->n_io_buf = 0;
        p->n_resident = in->n_layer;
        p->resident_bytes = all;
        p->forecast_peak_bytes = fixed + all;
        speed(in, p);
        return FRUGAL_OK;
    }
    if (in->n_expert > 0) {
        if (!in->dense_bytes || in->n_expert_used < 1 || in->n_expert_used > in->n_expert || !in->expert_slot_bytes)
            return fr_err_set(err, FRUGAL_E_INVALID_ARG, "planner: inconsistent expert figures");
        return plan_experts(in, p, fixed, nbuf, err);
    }
    if (best < 0) {
        p->n_resident = arg_min;
        p->n_streamed = in->n_layer - arg_min;
        for (int i = 0; i < in->n_layer; i++) {
            if (i < arg_min) p->resident_bytes += in->layer_bytes[i];
            else p->streamed_bytes += in->layer_bytes[i];
        }
        p->io_bytes = min_cost - fixed - p->resident_bytes;
        p->forecast_peak_bytes = p->min_bytes;
        return too_small(in, p, err);
    }

    p->n_resident = best;
    p->n_streamed = in->n_layer - best;
    p->streaming = true;
    uint64_t ring_max = 0;
    for (int i = 0; i < in->n_layer; i++) {
        if (i < best) p->resident_bytes += in->layer_bytes[i];
        else {
            p->streamed_bytes += in->layer_bytes[i];
            if (in->layer_bytes[i] > ring_max) ring_max = in->layer_bytes[i];
        }
    }
    p->n_io_buf = p->n_streamed < nbuf ? p->n_streamed : nbuf;
    p->io_bytes = (uint64_t)p->n_io_buf * ring_max;
    p->forecast_peak_bytes = fixed + p->resident_bytes + p->io_bytes;
    speed(in, p);
    return FRUGAL_OK;
}

int fr_parse_size(const char *s, uint64_t *out) {
    if (!s || !out || !isdigit((unsigned char)*s)) return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v <= 0) return -1;
    double mul = 1;
    switch (toupper((unsigned char)*end)) {
    case 'K': mul = 1024.0; end++; break;
    case 'M': mul = 1048576.0; end++; break;
    case 'G': mul = 1073741824.0; end++; break;
    case 'T': mul = 1099511627776.0; end++; break;
    default: break;
    }
    if (mul > 1 && (end[0] == 'i' || end[0] == 'I') && (end[1] == 'B' || end[1] == 'b')) end += 2;
    else if (*end == 'B' || *end == 'b') end++;
    if (*end) return -1;
    double bytes = v * mul;
    if (bytes < 1 || bytes >= 9.2e18) return -1;
    *out = (uint64_t)bytes;
    return 0;
}

/* Measured with `frugal run --stats` on the shared models (x86-64, glibc, static
 * libfrugal): peak RSS minus accounted bytes minus the model's mapped pages was
 * about 4-5 MiB for the CLI (text, data, libc, locale, stdio buffers) plus well
 * under 100 KiB of touched stack per pool thread. We reserve 8 MiB + 256 KiB per
 * thread: a forecast that errs high keeps a hard cap safe. */
uint64_t fr_plan_base_overhead(int n_threads) {
    if (n_threads < 1) n_threads = 1;
    return (8ull << 20) + (uint64_t)n_threads * (256ull << 10);
}
