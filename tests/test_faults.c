/* test_faults.c - fault injection over the load, eval, KV-spill and quantize paths
 * (core/fault.h), SQLite style: run a path once to count its hooked allocation and
 * I/O calls, then again with the N-th call failing, for every N up to that count.
 * Each run must end in success or in a clean error with a message; quantize must
 * leave neither the output nor a temp file behind when it fails; nothing may
 * crash (and under the ASan stage of CI, nothing may leak). Prints the counts per
 * path. Needs the shared models (skips otherwise). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frugal.h"
#include "core/fault.h"
#include "testutil.h"

static const char *g_q8, *g_f32;

/* One run of a path: FRUGAL_OK, or an error code with err filled. */
typedef int (*path_fn)(frugal_error *err);

static int load_free(const char *path, uint64_t budget, int no_repack, int eval_n, const char *kv_dir,
                     frugal_error *err) {
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = 2;
    mp.mem_budget = budget;
    mp.no_repack = no_repack;
    frugal_model *m = NULL;
    int rc = frugal_model_load(path, &mp, &m, err);
    if (rc) return rc;
    if (eval_n > 0) {
        frugal_context_params cp;
        frugal_context_params_default(&cp);
        cp.n_ctx = 64;
        if (kv_dir) {
            cp.kv_disk_dir = kv_dir;
            cp.kv_ram_bytes = 24 * 1024; /* 6 pages of 4 KiB: the tier's minimum, so pages spill */
        }
        frugal_context *c = NULL;
        rc = frugal_context_new(m, &cp, &c, err);
        if (!rc) {
            int32_t toks[48];
            for (int i = 0; i < eval_n; i++) toks[i] = 1 + (i * 29) % 500;
            rc = frugal_eval(c, toks, eval_n, 0, err);
            if (!rc) rc = frugal_eval(c, toks, 4, 1, err); /* pages back in from the spill file */
            frugal_context_free(c);
        }
    }
    frugal_model_free(m);
    return rc;
}

static int p_load(frugal_error *err) { return load_free(g_q8, 0, 0, 0, NULL, err); }
static int p_eval(frugal_error *err) { return load_free(g_q8, 0, 0, 16, NULL, err); }
/* 12 MiB: just above the minimum working set, so all 4 layers are streamed */
static int p_stream(frugal_error *err) { return load_free(g_q8, (uint64_t)12 << 20, 0, 16, NULL, err); }
static int p_spill(frugal_error *err) { return load_free(g_q8, 0, 1, 40, tu_tmpdir(), err); }

static char g_out[1024];
static int p_quantize(frugal_error *err) {
    frugal_quantize_params qp;
    frugal_quantize_params_default(&qp);
    qp.type = "q4_k";
    qp.n_threads = 2;
    FILE *devnull = fopen("/dev/null", "w");
    qp.log = devnull;
    int rc = frugal_quantize(g_f32, g_out, &qp, NULL, err);
    if (devnull) fclose(devnull);
    return rc;
}

/* Fail the N-th call of `kind` for N = 1..calls of a clean run. */
static void sweep(const char *name, path_fn fn, fr_fault_kind kind, int check_output) {
    frugal_error err = FRUGAL_ERROR_INIT;
    fr_fault_arm(kind, 0);
    int rc = fn(&err);
    CHECKF(rc == FRUGAL_OK, "%s: clean run failed: %s", name, err.message);
    uint64_t calls = fr_fault_calls(kind);
    if (check_output) unlink(g_out);
    int failed = 0, recovered = 0;
    for (uint64_t n = 1; n <= calls; n++) {
        memset(&err, 0, sizeof err);
        fr_fault_arm(kind, n);
        rc = fn(&err);
        if (rc != FRUGAL_OK) {
            failed++;
            CHECKF(err.message[0] != '\0', "%s: %s call %llu failed without a message", name,
                   kind == FR_FAULT_ALLOC ? "alloc" : "io", (unsigned long long)n);
        } else {
            recovered++;
        }
        if (check_output) {
            CHECKF(!tu_temp_left(g_out), "%s: call %llu left a temp file", name, (unsigned long long)n);
            CHECKF((access(g_out, F_OK) == 0) == (rc == FRUGAL_OK), "%s: call %llu: output %s after rc %d", name,
                   (unsigned long long)n, access(g_out, F_OK) == 0 ? "present" : "absent", rc);
            unlink(g_out);
        }
    }
    fr_fault_arm(kind, 0);
    printf("%-9s %-5s: %4llu calls; failing each: %d clean errors, %d runs that recovered\n", name,
           kind == FR_FAULT_ALLOC ? "alloc" : "io", (unsigned long long)calls, failed, recovered);
}

int main(void) {
    g_q8 = tu_shared("models/fortune-3m-q8_0.gguf");
    g_f32 = tu_shared("models/fortune-3m-f32.gguf");
    if (!g_q8 || !g_f32) tu_skip("shared models absent");
    snprintf(g_out, sizeof g_out, "%s/faults-q.gguf", tu_tmpdir());
    static const struct { const char *name; path_fn fn; int out; } paths[] = {
        {"load", p_load, 0}, {"eval", p_eval, 0}, {"stream", p_stream, 0}, {"kv-spill", p_spill, 0},
        {"quantize", p_quantize, 1},
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        sweep(paths[i].name, paths[i].fn, FR_FAULT_ALLOC, paths[i].out);
        sweep(paths[i].name, paths[i].fn, FR_FAULT_IO, paths[i].out);
    }
    return tu_finish("test_faults");
}
