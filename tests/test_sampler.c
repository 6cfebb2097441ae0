/* test_sampler.c - the frugal_sampler_* API: greedy, top-k/top-p/min-p filtering,
 * penalties, determinism of the seeded RNG, the distribution it draws from, and
 * that the caller's logits are left alone. */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frugal.h"

/* Sampler with defaults changed by the caller after this returns. */
static frugal_sampler_params base(float temp) {
    frugal_sampler_params p;
    frugal_sampler_params_default(&p);
    p.temp = temp;
    return p;
}

static int32_t sample_once(const frugal_sampler_params *p, const float *l, int n) {
    frugal_sampler *s = frugal_sampler_new(p);
    int32_t t = frugal_sampler_sample(s, l, n);
    frugal_sampler_free(s);
    return t;
}

static void test_defaults(void) {
    frugal_sampler_params p;
    frugal_sampler_params_default(&p);
    CHECK(fabsf(p.temp - 0.8f) < 1e-6f);
    CHECK(p.top_k == 40);
    CHECK(fabsf(p.top_p - 0.95f) < 1e-6f);
    CHECK(fabsf(p.min_p - 0.05f) < 1e-6f);
    CHECK(p.repeat_penalty == 1.0f && p.repeat_last_n == 64);
    CHECK(p.freq_penalty == 0.0f && p.presence_penalty == 0.0f && p.seed == 42);
}

static void test_greedy(void) {
    uint64_t st = 7;
    enum { N = 1000 };
    float l[N];
    for (int trial = 0; trial < 20; trial++) {
        int arg = 0;
        for (int i = 0; i < N; i++) {
            l[i] = tu_rand_normal(&st) * 3.0f;
            if (l[i] > l[arg]) arg = i;
        }
        frugal_sampler_params p = base(0.0f);
        CHECK(sample_once(&p, l, N) == arg);
        p.temp = -1.0f;
        CHECK(sample_once(&p, l, N) == arg);
        /* top-k = 1 leaves only the argmax, whatever the temperature */
        p = base(5.0f);
        p.top_k = 1;
        p.seed = (uint64_t)trial;
        int all_arg = 1;
        for (int k = 0; k < 5; k++) all_arg &= sample_once(&p, l, N) == arg;
        CHECK(all_arg);
        /* a tiny top-p keeps only the most likely token */
        p = base(2.0f);
        p.top_k = 0;
        p.top_p = 1e-6f;
        p.min_p = 0.0f;
        p.seed = (uint64_t)trial + 100;
        CHECK(sample_once(&p, l, N) == arg);
    }
    /* ties: the lowest id wins */
    float t[5] = {1.0f, 3.0f, 2.0f, 3.0f, 3.0f};
    frugal_sampler_params p = base(0.0f);
    CHECK(sample_once(&p, t, 5) == 1);
    /* NaN is never chosen; invalid arguments give -1 */
    float nan_l[3] = {NAN, 0.5f, NAN};
    CHECK(sample_once(&p, nan_l, 3) == 1);
    CHECK(sample_once(&p, t, 0) == -1);
    CHECK(sample_once(&p, NULL, 5) == -1);
}

/* min-p keeps only tokens whose probability is >= min_p * p_max. */
static void test_min_p(void) {
    /* probabilities relative to the max: 1, e^-1 (0.37), e^-3 (0.05), e^-5 (0.007) */
    float l[4] = {0.0f, -1.0f, -3.0f, -5.0f};
    int seen[4] = {0};
    frugal_sampler_params p = base(1.0f);
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.2f; /* only ids 0 and 1 pass */
    frugal_sampler *s = frugal_sampler_new(&p);
    int in_range = 1;
    for (int i = 0; i < 5000; i++) {
        int32_t t = frugal_sampler_sample(s, l, 4);
        in_range &= t >= 0 && t < 4;
        if (t >= 0 && t < 4) seen[t]++;
    }
    frugal_sampler_free(s);
    CHECK(in_range);
    CHECK(seen[2] == 0 && seen[3] == 0);
    CHECK(seen[0] > 0 && seen[1] > 0);
    /* without min-p the small ones do show up in 5000 draws (p(id 3) ~ 0.5%) */
    p.min_p = 0.0f;
    memset(seen, 0, sizeof seen);
    s = frugal_sampler_new(&p);
    for (int i = 0; i < 5000; i++) {
        int32_t t = frugal_sampler_sample(s, l, 4);
        if (t >= 0 && t < 4) seen[t]++;
    }
    frugal_sampler_free(s);
    CHECK(seen[2] > 0 && seen[3] > 0);
}

/* top-p = 0.7 over probs {0.5, 0.3, 0.15, 0.05} keeps ids 0 and 1 only. */
static void test_top_p(void) {
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    frugal_sampler_params p = base(1.0f);
    p.top_k = 0;
    p.min_p = 0.0f;
    p.top_p = 0.7f;
    int seen[4] = {0};
    frugal_sampler *s = frugal_sampler_new(&p);
    for (int i = 0; i < 4000; i++) {
        int32_t t = frugal_sampler_sample(s, l, 4);
        if (t >= 0 && t < 4) seen[t]++;
    }
    frugal_sampler_free(s);
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] == 0 && seen[3] == 0);
    /* top-k = 3 excludes id 3 and nothing else */
    p.top_p = 1.0f;
    p.top_k = 3;
    memset(seen, 0, sizeof seen);
    s = frugal_sampler_new(&p);
    for (int i = 0; i < 4000; i++) {
        int32_t t = frugal_sampler_sample(s, l, 4);
        if (t >= 0 && t < 4) seen[t]++;
    }
    frugal_sampler_free(s);
    CHECK(seen[0] > 0 && seen[1] > 0 && seen[2] > 0 && seen[3] == 0);
}

static void test_penalties(void) {
    float l[4] = {2.0f, 1.9f, -1.0f, -1.2f};
    frugal_sampler_params p = base(0.0f);
    p.repeat_penalty = 1.1f; /* 2.0 / 1.1 = 1.82 < 1.9 */
    frugal_sampler *s = frugal_sampler_new(&p);
    CHECK(frugal_sampler_sample(s, l, 4) == 0); /* nothing accepted yet */
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, l, 4) == 1);
    frugal_sampler_reset(s);
    CHECK(frugal_sampler_sample(s, l, 4) == 0);
    frugal_sampler_free(s);

    /* negative logits are multiplied: -1.0 * 1.5 = -1.5 < -1.2 */
    float n[2] = {-1.0f, -1.2f};
    p.repeat_penalty = 1.5f;
    s = frugal_sampler_new(&p);
    CHECK(frugal_sampler_sample(s, n, 2) == 0);
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, n, 2) == 1);
    frugal_sampler_free(s);

    /* the window: with repeat_last_n = 2, an old token stops being penalised */
    p.repeat_penalty = 1.1f;
    p.repeat_last_n = 2;
    s = frugal_sampler_new(&p);
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, l, 4) == 1);
    frugal_sampler_accept(s, 3);
    frugal_sampler_accept(s, 3);
    CHECK(frugal_sampler_sample(s, l, 4) == 0);
    frugal_sampler_accept(s, 99); /* out-of-range ids are ignored, no crash */
    CHECK(frugal_sampler_sample(s, l, 4) == 0);
    frugal_sampler_free(s);

    /* frequency: 0.06 * count; one occurrence of id 0 is not enough (2.0-0.06 > 1.9),
     * two are (2.0 - 0.12 < 1.9) */
    p = base(0.0f);
    p.freq_penalty = 0.06f;
    s = frugal_sampler_new(&p);
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, l, 4) == 0);
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, l, 4) == 1);
    frugal_sampler_free(s);

    /* presence: flat, independent of the count */
    p = base(0.0f);
    p.presence_penalty = 0.2f;
    s = frugal_sampler_new(&p);
    frugal_sampler_accept(s, 0);
    CHECK(frugal_sampler_sample(s, l, 4) == 1); /* 1.8 vs 1.9 */
    frugal_sampler_accept(s, 0);
    frugal_sampler_accept(s, 0);
    frugal_sampler_accept(s, 1);
    CHECK(frugal_sampler_sample(s, l, 4) == 0); /* both -0.2 whatever the count: 1.8 vs 1.7 */
    frugal_sampler_free(s);
}

static void draw_seq(uint64_t seed, const float *l, int n, int32_t *out, int count) {
    frugal_sampler_params p = base(1.0f);
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.seed = seed;
    frugal_sampler *s = frugal_sampler_new(&p);
    for (int i = 0; i < count; i++) out[i] = frugal_sampler_sample(s, l, n);
    frugal_sampler_free(s);
}

static void test_determinism(void) {
    enum { N = 64, D = 1000 };
    float l[N];
    uint64_t st = 99;
    for (int i = 0; i < N; i++) l[i] = tu_rand_normal(&st);
    static int32_t a[D], b[D], c[D];
    draw_seq(1234, l, N, a, D);
    draw_seq(1234, l, N, b, D);
    draw_seq(1235, l, N, c, D);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    int distinct = 0, seen[N] = {0};
    for (int i = 0; i < D; i++)
        if (a[i] >= 0 && a[i] < N && !seen[a[i]]++) distinct++;
    CHECK(distinct > 20); /* really random, not stuck on the max */

    /* reset restarts the RNG from the seed */
    frugal_sampler_params p = base(1.0f);
    p.top_k = 0; p.top_p = 1.0f; p.min_p = 0.0f; p.seed = 1234;
    frugal_sampler *s = frugal_sampler_new(&p);
    for (int i = 0; i < 10; i++) frugal_sampler_sample(s, l, N);
    frugal_sampler_reset(s);
    int same = 1;
    for (int i = 0; i < D; i++) same &= frugal_sampler_sample(s, l, N) == a[i];
    CHECK(same);
    frugal_sampler_free(s);
}

/* 200k draws at temp 1 with every filter off must follow the softmax: Pearson's
 * chi-square over 10 categories (9 dof) must stay under 40 (p ~ 5e-6). Also checks
 * temperature 2 against softmax(l/2). */
static void test_distribution(void) {
    enum { N = 10, D = 200000 };
    float l[N] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f, 1.5f, -1.0f, 0.2f, 0.8f, -2.0f};
    const float temps[2] = {1.0f, 2.0f};
    for (int ti = 0; ti < 2; ti++) {
        frugal_sampler_params p = base(temps[ti]);
        p.top_k = 0;
        p.top_p = 1.0f;
        p.min_p = 0.0f;
        p.seed = 777;
        frugal_sampler *s = frugal_sampler_new(&p);
        long cnt[N] = {0};
        for (int i = 0; i < D; i++) {
            int32_t t = frugal_sampler_sample(s, l, N);
            if (t >= 0 && t < N) cnt[t]++;
        }
        frugal_sampler_free(s);
        double z = 0, pr[N];
        for (int i = 0; i < N; i++) z += exp(l[i] / temps[ti]);
        double chi2 = 0;
        for (int i = 0; i < N; i++) {
            pr[i] = exp(l[i] / temps[ti]) / z;
            double e = pr[i] * D;
            chi2 += (cnt[i] - e) * (cnt[i] - e) / e;
        }
        CHECKF(chi2 < 40.0, "temp %.1f: chi2 = %.2f", temps[ti], chi2);
        /* and a wrong hypothesis (temp 1 vs 2) must be rejected, so the bound bites */
        double z2 = 0, chi2_wrong = 0;
        double other = temps[ti] == 1.0f ? 2.0 : 1.0;
        for (int i = 0; i < N; i++) z2 += exp(l[i] / other);
        for (int i = 0; i < N; i++) {
            double e = exp(l[i] / other) / z2 * D;
            chi2_wrong += (cnt[i] - e) * (cnt[i] - e) / e;
        }
        CHECKF(chi2_wrong > 1000.0, "wrong temp chi2 = %.2f", chi2_wrong);
    }
}

/* The caller's logits stay bit-identical through every path, and a change of n_vocab
 * between calls (bigger, then smaller) works. */
static void test_logits_untouched(void) {
    enum { N = 5000 };
    float *l = tu_malloc(N * sizeof *l), *copy = tu_malloc(N * sizeof *copy);
    uint64_t st = 5;
    for (int i = 0; i < N; i++) l[i] = tu_rand_normal(&st) * 4.0f;
    memcpy(copy, l, N * sizeof *l);
    frugal_sampler_params p = base(0.7f);
    p.repeat_penalty = 1.3f;
    p.freq_penalty = 0.5f;
    p.presence_penalty = 0.5f;
    frugal_sampler *s = frugal_sampler_new(&p);
    for (int i = 0; i < 50; i++) frugal_sampler_accept(s, i * 37 % N);
    int ok = 1;
    for (int i = 0; i < 20; i++) {
        int n = i % 2 ? N : 100 + i; /* vocab sizes change between calls */
        int32_t t = frugal_sampler_sample(s, l, n);
        ok &= t >= 0 && t < n;
        frugal_sampler_accept(s, t);
    }
    CHECK(ok);
    CHECK(memcmp(l, copy, N * sizeof *l) == 0);
    frugal_sampler_free(s);
    free(l);
    free(copy);
    /* NULL params mean defaults; free(NULL) is fine */
    s = frugal_sampler_new(NULL);
    CHECK(s != NULL);
    frugal_sampler_free(s);
    frugal_sampler_free(NULL);
}

int main(void) {
    test_defaults();
    test_greedy();
    test_min_p();
    test_top_p();
    test_penalties();
    test_determinism();
    test_distribution();
    test_logits_untouched();
    return tu_finish("test_sampler");
}
