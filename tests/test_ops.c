/* test_ops.c - the shared ops the model families added (kernels/ops.h) against
 * straightforward double-precision formulas on random inputs:
 *   - fr_rope_ext: plain, frequency factors (Llama-3 rope_freqs, LongRoPE), linear
 *     scaling, attn_factor, YaRN (ramp between the correction dims, magnitude), NeoX
 *     and adjacent pairs, n_rot < head_dim; rel. error 1e-4 of the vector's scale
 *     (theta is accumulated in float, as the reference engine does);
 *   - fr_rope_ext by -p undoes +p (what KV shifts rely on);
 *   - fr_layernorm with and without bias: 1e-5;
 *   - fr_gelu / fr_geglu: within F16 rounding (2e-3 relative + 1e-4) of the tanh GELU;
 *     exact 0 and x beyond -10 / 10;
 *   - fr_softcap: 1e-6 relative. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ops.h"
#include "testutil.h"

static double urand(unsigned *s) { *s = *s * 1103515245u + 12345u; return ((*s >> 8) & 0xFFFF) / 65536.0 * 2 - 1; }

/* theta of dim pair i at position p, as YaRN / ggml's rope_ext define it */
static void ref_angle(const fr_rope_cfg *c, const float *ff, int n_rot, int i, int p, double *theta, double *mscale) {
    const double extrap = p * pow(c->base, -2.0 * i / n_rot) / (ff ? ff[i] : 1.0);
    double th = c->freq_scale * extrap, ms = c->attn_factor;
    if (c->ext_factor != 0.0f) {
        const double lo = fmax(0, floor(n_rot * log(c->n_ctx_orig / (c->beta_fast * 2 * M_PI)) / (2 * log(c->base))));
        const double hi = fmin(n_rot - 1, ceil(n_rot * log(c->n_ctx_orig / (c->beta_slow * 2 * M_PI)) / (2 * log(c->base))));
        const double ramp = (1 - fmin(1, fmax(0, (i - lo) / fmax(0.001, hi - lo)))) * c->ext_factor;
        th = th * (1 - ramp) + extrap * ramp;
        ms *= 1 + 0.1 * log(1 / c->freq_scale);
    }
    *theta = th;
    *mscale = ms;
}

static void check_rope(const char *what, const fr_rope_cfg *c, const float *ff, int neox, int n_rot) {
    enum { H = 3, D = 64 };
    unsigned seed = 7;
    for (int p = 0; p < 3000; p += 373) {
        float x[H * D], y[H * D];
        for (int k = 0; k < H * D; k++) x[k] = (float)urand(&seed);
        memcpy(y, x, sizeof x);
        fr_rope_ext(y, H, D, n_rot, p, c, ff, neox);
        double worst = 0;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D / 2; i++) {
                const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                double want_a = x[h * D + a], want_b = x[h * D + b];
                if (i < n_rot / 2) {
                    double th, ms;
                    ref_angle(c, ff, n_rot, i, p, &th, &ms);
                    want_a = (x[h * D + a] * cos(th) - x[h * D + b] * sin(th)) * ms;
                    want_b = (x[h * D + a] * sin(th) + x[h * D + b] * cos(th)) * ms;
                } else if (neox) {
                    continue; /* pairs past n_rot/2 of a NeoX head are not pairs */
                }
                worst = fmax(worst, fmax(fabs(y[h * D + a] - want_a), fabs(y[h * D + b] - want_b)));
            }
        CHECKF(worst < 1e-4 * (1 + p / 1000.0), "%s at position %d: deviation %.3g", what, p, worst);
    }
}

static void rope_cases(void) {
    float ff[32];
    for (int i = 0; i < 32; i++) ff[i] = 1.0f + 0.5f * (float)i; /* growing divisors, as rope_freqs */
    fr_rope_cfg plain = {.base = 10000, .freq_scale = 1, .attn_factor = 1, .beta_fast = 32, .beta_slow = 1,
                         .n_ctx_orig = 4096};
    check_rope("plain, adjacent pairs", &plain, NULL, 0, 64);
    check_rope("plain, NeoX", &plain, NULL, 1, 64);
    check_rope("partial rotation (n_rot 32)", &plain, NULL, 0, 32);
    check_rope("frequency factors", &plain, ff, 0, 64);
    fr_rope_cfg lin = plain;
    lin.freq_scale = 0.125f, lin.attn_factor = 1.1339f;
    check_rope("linear x8 + attn_factor, NeoX, factors", &lin, ff, 1, 64);
    fr_rope_cfg yarn = plain;
    yarn.base = 500000, yarn.freq_scale = 0.25f, yarn.ext_factor = 1, yarn.n_ctx_orig = 8192;
    check_rope("YaRN x4", &yarn, NULL, 0, 64);
    check_rope("YaRN x4, NeoX", &yarn, NULL, 1, 64);

    /* a rotation by -p undoes one by +p (magnitude 1) */
    float x[128], y[128];
    unsigned seed = 3;
    for (int k = 0; k < 128; k++) x[k] = y[k] = (float)urand(&seed);
    lin.attn_factor = 1;
    fr_rope_ext(y, 2, 64, 64, 1234, &lin, ff, 1);
    fr_rope_ext(y, 2, 64, 64, -1234, &lin, ff, 1);
    double worst = 0;
    for (int k = 0; k < 128; k++) worst = fmax(worst, fabs(y[k] - x[k]));
    CHECKF(worst < 1e-3, "rotation by -p does not undo +p: %.3g", worst);
}

static void norm_cases(void) {
    unsigned seed = 11;
    for (int n = 1; n < 300; n += 37) {
        float x[300], w[300], b[300], y[300];
        for (int i = 0; i < n; i++) x[i] = (float)(3 * urand(&seed) + 1), w[i] = (float)urand(&seed), b[i] = (float)urand(&seed);
        for (int with_b = 0; with_b < 2; with_b++) {
            fr_layernorm(y, x, w, with_b ? b : NULL, n, 1e-5f);
            double mean = 0, var = 0;
            for (int i = 0; i < n; i++) mean += x[i];
            mean /= n;
            for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
            var /= n;
            double worst = 0;
            for (int i = 0; i < n; i++) {
                double want = (x[i] - mean) / sqrt(var + 1e-5) * w[i] + (with_b ? b[i] : 0);
                worst = fmax(worst, fabs(y[i] - want));
            }
            CHECKF(worst < 1e-5 * (1 + n / 64.0), "layernorm n=%d bias=%d: %.3g", n, with_b, worst);
        }
    }
}

static double gelu_ref(double x) { return 0.5 * x * (1 + tanh(0.7978845608028654 * x * (1 + 0.044715 * x * x))); }

static void gelu_cases(void) {
    unsigned seed = 5;
    float x[1000], u[1000], y[1000], z[1000];
    for (int i = 0; i < 1000; i++) x[i] = (float)(12 * urand(&seed)), u[i] = (float)urand(&seed);
    x[0] = -10.5f, x[1] = 10.5f, x[2] = 0.0f;
    fr_gelu(y, x, 1000);
    fr_geglu(z, x, u, 1000);
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        const double want = x[i] <= -10 ? 0 : x[i] >= 10 ? x[i] : gelu_ref(x[i]);
        const double tol = 2e-3 * fabs(want) + 1e-4 + 2e-3 * fabs(x[i]); /* input and output rounded to F16 */
        bad += fabs(y[i] - want) > tol || fabs(z[i] - y[i] * u[i]) > 1e-6 * fabs(y[i]) + 1e-7;
    }
    CHECKF(bad == 0, "gelu/geglu: %d of 1000 outside the F16 rounding", bad);
    CHECK(y[0] == 0.0f && y[1] == 10.5f && y[2] == 0.0f);
}

static void softcap_cases(void) {
    float x[5] = {-100, -3, 0, 2.5f, 1000};
    fr_softcap(x, 5, 30.0f);
    const double in[5] = {-100, -3, 0, 2.5, 1000};
    for (int i = 0; i < 5; i++) CHECKF(fabs(x[i] - 30 * tanh(in[i] / 30)) < 1e-5 * 30, "softcap(%g)", in[i]);
}

int main(void) {
    rope_cases();
    norm_cases();
    gelu_cases();
    softcap_cases();
    return tu_finish("test_ops");
}
