/* test_quant_lowbit.c - our Q2_K / Q3_K / IQ4_NL / IQ4_XS writers against the
 * reference engine's files.
 *
 * ../shared/quant/models holds fortune-3m quantized by llama-quantize without an
 * importance matrix (q2_k, q3_k_s, q3_k_m, iq4_nl, iq4_xs); ../shared/models holds
 * the F32 original. For every tensor of those files in a type we write, quantize
 * the F32 tensor with our scalar from_float and compare the bytes: every block must
 * be identical (same algorithm, same rounding). Also on synthetic rows: quantize
 * then dequantize stays within a per-type RMS error bound relative to the data's
 * RMS (a writer that drops a bit fails it), and all-zero rows give all-zero values.
 * Then the whole mixes: frugal_quantize --type q2_k / q3_k_s / q3_k_m / iq4_nl /
 * iq4_xs of the F32 model must give every tensor the reference file's type and
 * bytes (llama-quantize's per-tensor rules, api/quant_mix.c).
 * The file part skips (exit 77 at the end) when ../shared is absent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal.h"
#include "core/error.h"
#include "core/quant_lowbit.h"
#include "gguf/gguf.h"
#include "kernels/dispatch.h"
#include "testutil.h"

static const char *const k_mixes[] = {"q2_k", "q3_k_s", "q3_k_m", "iq4_nl", "iq4_xs"};

static int writes(uint32_t t) {
    return t == FR_TYPE_Q2_K || t == FR_TYPE_Q3_K || t == FR_TYPE_IQ4_NL || t == FR_TYPE_IQ4_XS;
}

/* Compare one reference file's tensors of our types with our quantization of the
 * F32 tensors. Returns the number of tensors compared. */
static int compare_file(const gguf_file *f32, const char *mix) {
    char rel[128];
    snprintf(rel, sizeof rel, "quant/models/fortune-3m-%s.gguf", mix);
    const char *path = tu_shared(rel);
    CHECKF(path != NULL, "%s missing", rel);
    if (!path) return 0;
    gguf_file *q = NULL;
    fr_err err = FRUGAL_ERROR_INIT;
    CHECKF(gguf_open(path, &q, &err) == FRUGAL_OK, "%s: %s", path, err.message);
    if (!q) return 0;
    int compared = 0;
    for (uint64_t i = 0; i < q->n_tensors; i++) {
        const gguf_tensor *t = &q->tensors[i];
        if (!writes(t->type)) continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        const gguf_tensor *src = gguf_find_tensor(f32, name);
        CHECKF(src && src->type == FR_TYPE_F32 && src->ne[0] == t->ne[0], "%s: no F32 twin", name);
        if (!src) continue;
        const fr_type_traits *tr = fr_type_traits_scalar(t->type);
        const size_t rs = fr_row_size((fr_type)t->type, t->ne[0]);
        const int64_t rows = t->ne[1] * t->ne[2] * t->ne[3];
        uint8_t *out = tu_malloc(rs);
        int64_t bad_blocks = 0, blocks = 0;
        for (int64_t r = 0; r < rows; r++) {
            tr->from_float((const float *)src->data + r * t->ne[0], out, t->ne[0]);
            const uint8_t *ref = (const uint8_t *)t->data + r * rs;
            for (size_t b = 0; b < rs / tr->type_size; b++, blocks++)
                bad_blocks += memcmp(out + b * tr->type_size, ref + b * tr->type_size, tr->type_size) != 0;
        }
        CHECKF(bad_blocks == 0, "%s %s (%s): %lld of %lld blocks differ from llama-quantize's", mix, name, tr->name,
               (long long)bad_blocks, (long long)blocks);
        free(out);
        compared++;
    }
    printf("%-7s: %d tensors compared byte for byte\n", mix, compared);
    gguf_close(q);
    return compared;
}

/* Our whole mix vs the reference file: same tensors, types and data. */
static void compare_mix(const char *f32_path, const char *mix) {
    char rel[128], out[512];
    snprintf(rel, sizeof rel, "quant/models/fortune-3m-%s.gguf", mix);
    const char *ref_path = tu_shared(rel);
    if (!ref_path) return;
    snprintf(out, sizeof out, "%s/mix-%s.gguf", tu_tmpdir(), mix);
    frugal_quantize_params p;
    frugal_quantize_params_default(&p);
    p.type = mix;
    p.n_threads = 2;
    frugal_error ferr = FRUGAL_ERROR_INIT;
    CHECKF(frugal_quantize(f32_path, out, &p, NULL, &ferr) == FRUGAL_OK, "quantize %s: %s", mix, ferr.message);
    gguf_file *a = NULL, *b = NULL;
    fr_err err = FRUGAL_ERROR_INIT;
    ref_path = tu_shared(rel);
    if (gguf_open(out, &a, &err) != FRUGAL_OK || gguf_open(ref_path, &b, &err) != FRUGAL_OK) {
        CHECKF(0, "%s: cannot open the outputs: %s", mix, err.message);
        gguf_close(a);
        return;
    }
    CHECK(a->n_tensors == b->n_tensors);
    int same = 0;
    for (uint64_t i = 0; i < b->n_tensors && i < a->n_tensors; i++) {
        const gguf_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        const int ok = x->name.len == y->name.len && !memcmp(x->name.ptr, y->name.ptr, x->name.len) &&
                       x->type == y->type && x->nbytes == y->nbytes && !memcmp(x->data, y->data, x->nbytes);
        CHECKF(ok, "%s: tensor %.*s (ours %s, reference %s) differs", mix, (int)y->name.len, y->name.ptr,
               fr_type_name(x->type), fr_type_name(y->type));
        same += ok;
    }
    printf("%-7s mix: %d of %llu tensors identical to llama-quantize's (name, type, bytes)\n", mix, same,
           (unsigned long long)b->n_tensors);
    gguf_close(a);
    gguf_close(b);
    remove(out);
}

/* RMS of (dequantize(quantize(x)) - x) / RMS(x) on normal data, and zeros. */
static void check_roundtrip(uint32_t type, double bound, uint64_t *rng) {
    const fr_type_traits *tr = fr_type_traits_scalar(type);
    enum { N = 4096 };
    float *x = tu_malloc(sizeof(float) * N), *z = tu_malloc(sizeof(float) * N);
    uint8_t *q = tu_malloc(fr_row_size((fr_type)type, N));
    for (int i = 0; i < N; i++) x[i] = tu_rand_normal(rng);
    tr->from_float(x, q, N);
    tr->to_float(q, z, N);
    double e = 0, s = 0;
    for (int i = 0; i < N; i++) {
        e += (double)(z[i] - x[i]) * (z[i] - x[i]);
        s += (double)x[i] * x[i];
    }
    CHECKF(sqrt(e / s) <= bound, "%s: relative RMS error %.4f > %.4f", tr->name, sqrt(e / s), bound);
    printf("%-7s: relative RMS round-trip error %.4f (bound %.2f)\n", tr->name, sqrt(e / s), bound);
    memset(x, 0, sizeof(float) * N);
    tr->from_float(x, q, N);
    tr->to_float(q, z, N);
    int nonzero = 0;
    for (int i = 0; i < N; i++) nonzero += z[i] != 0;
    CHECKF(nonzero == 0, "%s: zeros come back as %d non-zero values", tr->name, nonzero);
    free(x), free(z), free(q);
}

/* Importance-weighted writer: with imp NULL byte-identical to from_float; with an
 * uneven importance its imp-weighted squared error is below from_float's. */
static void check_weighted(uint32_t type, uint64_t *rng) {
    const fr_type_traits *tr = fr_type_traits_scalar(type);
    enum { N = 8192 };
    float *x = tu_malloc(sizeof(float) * N), *z = tu_malloc(sizeof(float) * N), *imp = tu_malloc(sizeof(float) * N);
    const size_t rs = fr_row_size((fr_type)type, N);
    uint8_t *a = tu_malloc(rs), *b = tu_malloc(rs);
    for (int i = 0; i < N; i++) {
        x[i] = tu_rand_normal(rng);
        imp[i] = expf(4.0f * (tu_rand_uniform(rng) - 0.5f)); /* 0.14 .. 7.4 */
    }
    CHECK(fr_quantize_weighted_ok((fr_type)type));
    tr->from_float(x, a, N);
    CHECK(fr_quantize_weighted((fr_type)type, x, b, N, NULL) == 0);
    CHECKF(!memcmp(a, b, rs), "%s: weighted writer without importance differs from from_float", tr->name);
    CHECK(fr_quantize_weighted((fr_type)type, x, b, N, imp) == 0);
    double e[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        tr->to_float(k ? b : a, z, N);
        for (int i = 0; i < N; i++) e[k] += imp[i] * (double)(z[i] - x[i]) * (z[i] - x[i]);
    }
    CHECKF(e[1] < 0.97 * e[0], "%s: weighted error %.4g not below plain %.4g", tr->name, e[1], e[0]);
    printf("%-7s: importance-weighted error %.1f %% of the plain writer's\n", tr->name, 100.0 * e[1] / e[0]);
    CHECK(fr_quantize_weighted(FR_TYPE_Q8_0, x, b, 32, imp) == -1);
    free(x), free(z), free(imp), free(a), free(b);
}

int main(void) {
    uint64_t rng = 0x9a17;
    /* bounds: about 1.3x the error of a 2/3/4-bit fit of N(0,1) data */
    check_roundtrip(FR_TYPE_Q2_K, 0.40, &rng);
    check_roundtrip(FR_TYPE_Q3_K, 0.22, &rng);
    check_roundtrip(FR_TYPE_IQ4_NL, 0.13, &rng);
    check_roundtrip(FR_TYPE_IQ4_XS, 0.13, &rng);
    check_weighted(FR_TYPE_Q2_K, &rng);
    check_weighted(FR_TYPE_Q3_K, &rng);
    check_weighted(FR_TYPE_IQ4_NL, &rng);
    check_weighted(FR_TYPE_IQ4_XS, &rng);
    const char *fp = tu_shared("models/fortune-3m-f32.gguf");
    char fpath[4096]; /* tu_shared's buffers are reused by later calls */
    snprintf(fpath, sizeof fpath, "%s", fp ? fp : "");
    if (!fp || !tu_shared("quant/models")) {
        tu_finish("test_quant_lowbit");
        tu_skip("../shared/quant not found: reference-file comparison skipped");
    }
    gguf_file *f32 = NULL;
    fr_err err = FRUGAL_ERROR_INIT;
    CHECKF(gguf_open(fpath, &f32, &err) == FRUGAL_OK, "%s: %s", fpath, err.message);
    if (f32) {
        int total = 0;
        for (size_t i = 0; i < sizeof k_mixes / sizeof *k_mixes; i++) total += compare_file(f32, k_mixes[i]);
        for (size_t i = 0; i < sizeof k_mixes / sizeof *k_mixes; i++) compare_mix(fpath, k_mixes[i]);
        CHECK(total > 0);
        gguf_close(f32);
    }
    return tu_finish("test_quant_lowbit");
}
