/* test_planner.c - the memory planner's arithmetic on synthetic configurations:
 * which layers stay resident, ring size, forecast, the minimum and its advice,
 * speed bounds, size parsing. */
#include <math.h>
#include <string.h>

#include "mem/planner.h"
#include "testutil.h"

#define MiB (1ull << 20)

static fr_plan_in base(const uint64_t *layers, int n) {
    fr_plan_in in;
    memset(&in, 0, sizeof in);
    in.n_layer = n;
    in.layer_bytes = layers;
    in.always_bytes = 50 * MiB;
    in.kv_bytes = 30 * MiB;
    in.scratch_bytes = 10 * MiB;
    in.overhead_bytes = 10 * MiB; /* fixed = 100 MiB */
    in.n_io_buf = 2;
    in.n_ctx = 1024;
    in.kv_type_name = "f16";
    in.kv_bytes_per_token = 30.0 * MiB / 1024; /* 30720 */
    in.kv_q4_bytes_per_token = 8640;
    return in;
}

static void test_uniform(void) {
    uint64_t L[10];
    for (int i = 0; i < 10; i++) L[i] = 40 * MiB;
    fr_plan p;
    fr_err e = FRUGAL_ERROR_INIT;

    fr_plan_in in = base(L, 10); /* no budget: everything resident, no ring */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECK(!p.streaming && p.n_resident == 10 && p.n_streamed == 0 && p.io_bytes == 0);
    CHECK(p.forecast_peak_bytes == 500 * MiB);
    CHECK(p.min_bytes == 180 * MiB);

    in.budget = 500 * MiB; /* exactly fits */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECK(!p.streaming && p.forecast_peak_bytes == 500 * MiB);

    in.budget = 499 * MiB; /* 100 fixed + 2 x 40 ring leaves 319: 7 layers */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECK(p.streaming);
    CHECKF(p.n_resident == 7 && p.n_streamed == 3, "resident %d streamed %d", p.n_resident, p.n_streamed);
    CHECK(p.io_bytes == 80 * MiB && p.n_io_buf == 2);
    CHECK(p.resident_bytes == 280 * MiB && p.streamed_bytes == 120 * MiB);
    CHECK(p.forecast_peak_bytes == 460 * MiB);
    CHECK(p.forecast_peak_bytes <= in.budget);

    in.budget = 180 * MiB; /* exactly the minimum: stream everything */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECK(p.streaming && p.n_resident == 0 && p.n_streamed == 10);
    CHECK(p.forecast_peak_bytes == 180 * MiB);

    in.budget = 179 * MiB; /* below: error naming the minimum and what fits */
    fr_err e2 = FRUGAL_ERROR_INIT;
    CHECK(fr_plan_compute(&in, &p, &e2) == FRUGAL_E_NOMEM);
    CHECK(e2.code == FRUGAL_E_NOMEM);
    CHECKF(strstr(e2.message, "180.0 MiB") != NULL, "%s", e2.message);
    CHECK(p.min_bytes == 180 * MiB);
    /* 179 - 150 = 29 MiB for KV: 29 MiB / 30720 = 989 -> 976 tokens; q4_0: 3519 -> 3504 */
    CHECKF(strstr(e2.message, "-c 976 with --kv-type f16") != NULL, "%s", e2.message);
    CHECKF(strstr(e2.message, "-c 3504 with --kv-type q4_0") != NULL, "%s", e2.message);

    in.budget = 140 * MiB; /* below even the KV-less minimum */
    fr_err e3 = FRUGAL_ERROR_INIT;
    CHECK(fr_plan_compute(&in, &p, &e3) == FRUGAL_E_NOMEM);
    CHECKF(strstr(e3.message, "even without a KV cache 150.0 MiB") != NULL, "%s", e3.message);
}

static void test_nonuniform(void) {
    /* a big layer near the front: keeping it resident beats streaming it through
     * a ring sized for it. cost(r) = prefix + ring: 200, 210, 130, 140, 150, 150 */
    uint64_t L[6] = {10 * MiB, 100 * MiB, 10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB};
    fr_plan_in in = base(L, 6);
    in.always_bytes = in.kv_bytes = in.scratch_bytes = in.overhead_bytes = 0;
    fr_plan p;
    fr_err e = FRUGAL_ERROR_INIT;
    in.budget = 150 * MiB; /* all fit */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK && !p.streaming);
    in.budget = 145 * MiB;
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECKF(p.n_resident == 3 && p.io_bytes == 20 * MiB && p.forecast_peak_bytes == 140 * MiB,
           "resident %d io %llu", p.n_resident, (unsigned long long)p.io_bytes);
    CHECK(p.min_bytes == 130 * MiB);
    in.budget = 129 * MiB;
    fr_err e2 = FRUGAL_ERROR_INIT;
    CHECK(fr_plan_compute(&in, &p, &e2) == FRUGAL_E_NOMEM);
    CHECK(p.min_bytes == 130 * MiB);
    CHECKF(strstr(e2.message, "130.0 MiB") != NULL, "%s", e2.message);
    /* three ring buffers when asked for: 4 x 10 MiB layers, 35 MiB: ring 30 + nothing */
    uint64_t M[4] = {10 * MiB, 10 * MiB, 10 * MiB, 10 * MiB};
    fr_plan_in in2 = base(M, 4);
    in2.always_bytes = in2.kv_bytes = in2.scratch_bytes = in2.overhead_bytes = 0;
    in2.n_io_buf = 3;
    in2.budget = 35 * MiB;
    CHECK(fr_plan_compute(&in2, &p, &e) == FRUGAL_OK);
    CHECKF(p.n_resident == 0 && p.n_streamed == 4 && p.n_io_buf == 3 && p.io_bytes == 30 * MiB,
           "r %d s %d b %d", p.n_resident, p.n_streamed, p.n_io_buf);
}

static void test_speed(void) {
    uint64_t L[4] = {100 * MiB, 100 * MiB, 100 * MiB, 100 * MiB};
    fr_plan_in in = base(L, 4);
    in.always_bytes = 100 * MiB;
    in.kv_bytes = in.scratch_bytes = in.overhead_bytes = 0;
    in.mem_bw = 1000.0 * MiB; /* bytes/s */
    in.disk_bw = 100.0 * MiB;
    in.budget = 400 * MiB; /* 100 + 2 x 100 ring + 1 resident = 400 */
    fr_plan p;
    fr_err e = FRUGAL_ERROR_INIT;
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECK(p.n_resident == 1 && p.n_streamed == 3);
    /* serial: 200 MiB / 1000 + 300 MiB / 100 = 3.2 s; overlap: max(0.5, 3.0) = 3.0 s */
    CHECKF(fabs(p.tok_s_bound - 1.0 / 3.2) < 1e-9, "%g", p.tok_s_bound);
    CHECKF(fabs(p.tok_s_overlap - 1.0 / 3.0) < 1e-9, "%g", p.tok_s_overlap);
    in.disk_bw = 0; /* unknown disk speed: no forecast */
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK && p.tok_s_bound == 0);
    in.budget = 0; /* resident only: memory bound */
    in.disk_bw = 0;
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_OK);
    CHECKF(fabs(p.tok_s_bound - 2.0) < 1e-9, "%g", p.tok_s_bound);
}

static void test_bad_input(void) {
    fr_plan_in in;
    memset(&in, 0, sizeof in);
    fr_plan p;
    fr_err e = FRUGAL_ERROR_INIT;
    CHECK(fr_plan_compute(&in, &p, &e) == FRUGAL_E_INVALID_ARG);
}

static void test_parse_size(void) {
    uint64_t v = 0;
    CHECK(fr_parse_size("256M", &v) == 0 && v == 256 * MiB);
    CHECK(fr_parse_size("2G", &v) == 0 && v == 2048 * MiB);
    CHECK(fr_parse_size("2g", &v) == 0 && v == 2048 * MiB);
    CHECK(fr_parse_size("1.5K", &v) == 0 && v == 1536);
    CHECK(fr_parse_size("64KiB", &v) == 0 && v == 65536);
    CHECK(fr_parse_size("300MB", &v) == 0 && v == 300 * MiB);
    CHECK(fr_parse_size("12345", &v) == 0 && v == 12345);
    CHECK(fr_parse_size("12x", &v) == -1);
    CHECK(fr_parse_size("0", &v) == -1);
    CHECK(fr_parse_size("-1G", &v) == -1);
    CHECK(fr_parse_size("", &v) == -1);
    CHECK(fr_parse_size("G", &v) == -1);
    CHECK(fr_parse_size("99999999999T", &v) == -1);
}

/* Experts: 4 layers of 10 MiB dense + 16 experts of 2 MiB (a 3 MiB slot, 2.5 MiB read
 * per load), 2 used per token; fixed 100 MiB. */
static void test_experts(void) {
    uint64_t L[4], D[4];
    for (int i = 0; i < 4; i++) L[i] = 10 * MiB + 16 * 2 * MiB, D[i] = 10 * MiB;
    fr_plan_in in = base(L, 4);
    in.n_expert = 16;
    in.n_expert_used = 2;
    in.dense_bytes = D;
    in.expert_slot_bytes = 3 * MiB;
    in.expert_read_bytes = 5 * MiB / 2;
    in.expert_bytes = 2 * MiB;
    fr_plan p;
    fr_err err = FRUGAL_ERROR_INIT;
    in.budget = 200 * MiB; /* 100 fixed + 40 dense + 20 slots (60 MiB) */
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_OK);
    CHECKF(p.expert_streaming && p.n_expert_slots == 20 && p.n_experts == 64, "slots %d", p.n_expert_slots);
    CHECK(p.dense_bytes == 40 * MiB && p.expert_cache_bytes == 60 * MiB && p.forecast_peak_bytes == 200 * MiB);
    CHECK(p.min_bytes == 123 * MiB); /* fixed + every dense part through 2 ring buffers + one slot */
    /* uniform routing: 4 layers x 2 picks x (1 - 20/64) misses x 2.5 MiB */
    CHECKF(fabs(p.expert_read_per_token - 4 * 2 * (44.0 / 64) * 2.5 * MiB) < 1.0, "%.0f", p.expert_read_per_token);
    in.budget = 143 * MiB; /* fixed + dense + one slot: every dense part resident */
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_OK && p.n_expert_slots == 1 && p.n_resident == 4 &&
          p.n_streamed == 0 && p.forecast_peak_bytes == 143 * MiB);
    /* less: the dense parts go first (a resident dense byte saves a read every token):
     * layer 0's resident, layers 1-3's through 2 ring buffers, the rest (12 MiB) slots */
    in.budget = 142 * MiB;
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_OK);
    CHECKF(p.expert_streaming && p.n_resident == 1 && p.n_streamed == 3 && p.n_io_buf == 2 && p.n_expert_slots == 4,
           "resident %d, streamed %d, buffers %d, slots %d", p.n_resident, p.n_streamed, p.n_io_buf, p.n_expert_slots);
    CHECK(p.resident_bytes == 10 * MiB && p.io_bytes == 20 * MiB + 12 * MiB && p.forecast_peak_bytes == 142 * MiB);
    CHECKF(fabs((double)p.streamed_bytes - (30 * MiB + p.expert_read_per_token)) < 2.0, "%llu",
           (unsigned long long)p.streamed_bytes);
    in.budget = 123 * MiB; /* the minimum: every dense part streamed, one slot */
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_OK && p.n_expert_slots == 1 && p.n_resident == 0 &&
          p.n_streamed == 4 && p.forecast_peak_bytes == 123 * MiB);
    in.budget = 123 * MiB - 1;
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_E_NOMEM);
    CHECKF(strstr(err.message, "123.0 MiB") && strstr(err.message, "one expert cache slot") &&
               strstr(err.message, "2 buffers of 10.0 MiB"), "%s", err.message);
    in.budget = 100 * MiB + 4 * L[0]; /* the whole model fits: no streaming */
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_OK && !p.streaming && !p.expert_streaming);
    in.n_expert_used = 17; /* more used than there are */
    in.budget = 200 * MiB;
    CHECK(fr_plan_compute(&in, &p, &err) == FRUGAL_E_INVALID_ARG);
}

int main(void) {
    test_experts();
    test_uniform();
    test_nonuniform();
    test_speed();
    test_bad_input();
    test_parse_size();
    return tu_finish("test_planner");
}
