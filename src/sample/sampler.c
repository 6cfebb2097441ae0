/* sampler.c - the frugal_sampler_* API: penalties, top-k, top-p, min-p, temperature
 * and a seeded draw (see sample/sampler.h for the order and the guarantees).
 *
 * The caller's logits are never written: each call copies them into an internal
 * buffer that grows with n_vocab. All filtering works on a candidate list of
 * (id, logit) pairs; the draw walks that list in a fixed order with our own
 * xoshiro256** generator, so a given seed gives the same tokens everywhere. */
#include "core/fault.h"
#include "sample/sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct cand {
    int32_t id;
    float logit;
} cand;

struct frugal_sampler {
    frugal_sampler_params p;
    uint64_t rng[4];
    /* ring buffer of the last repeat_last_n accepted tokens */
    int32_t *hist;
    int hist_cap, hist_n, hist_pos;
    /* scratch, sized for the largest n_vocab seen */
    int cap;
    cand *cands;
    int32_t *counts;   /* per-id occurrence counts; all zero between calls */
    double *probs;
};

/* ------------------------------------------------------------------ RNG */

/* splitmix64 step: expands one 64-bit seed into well-mixed state words. */
static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** next output (Blackman & Vigna); state must not be all zero, which
 * splitmix64 seeding guarantees in practice. */
static uint64_t rng_next(uint64_t s[4]) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(uint64_t s[4], uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s[i] = splitmix64(&x);
}

/* Uniform double in [0, 1) from the top 53 bits: exact, platform independent. */
static double rng_uniform(uint64_t s[4]) {
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* ------------------------------------------------------------------ lifecycle */

void frugal_sampler_params_default(frugal_sampler_params *p) {
    if (!p) return;
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->freq_penalty = 0.0f;
    p->presence_penalty = 0.0f;
    p->seed = 42;
}

/* Returns a sampler with a copy of *p (defaults when p is NULL), or NULL on OOM. */
frugal_sampler *frugal_sampler_new(const frugal_sampler_params *p) {
    frugal_sampler *s = fr_calloc(1, sizeof *s);
    if (!s) return NULL;
    if (p) s->p = *p;
    else frugal_sampler_params_default(&s->p);
    if (s->p.repeat_last_n < 0) s->p.repeat_last_n = 0;
    if (s->p.repeat_last_n > 0) {
        s->hist = fr_malloc((size_t)s->p.repeat_last_n * sizeof *s->hist);
        if (!s->hist) { free(s); return NULL; }
        s->hist_cap = s->p.repeat_last_n;
    }
    rng_seed(s->rng, s->p.seed);
    return s;
}

void frugal_sampler_free(frugal_sampler *s) {
    if (!s) return;
    free(s->hist);
    free(s->cands);
    free(s->counts);
    free(s->probs);
    free(s);
}

/* Forget the accepted tokens and restart the RNG from the seed, so a reset sampler
 * reproduces the same sequence as a fresh one. */
void frugal_sampler_reset(frugal_sampler *s) {
    if (!s) return;
    s->hist_n = 0;
    s->hist_pos = 0;
    rng_seed(s->rng, s->p.seed);
}

/* Remember token for the penalty window (oldest entries fall out). */
void frugal_sampler_accept(frugal_sampler *s, int32_t token) {
    if (!s || s->hist_cap == 0) return;
    s->hist[s->hist_pos] = token;
    s->hist_pos = (s->hist_pos + 1) % s->hist_cap;
    if (s->hist_n < s->hist_cap) s->hist_n++;
}

/* Grow scratch to n entries; false on OOM (old buffers kept intact). counts stays
 * all-zero, which apply_penalties relies on. */
static bool ensure_cap(frugal_sampler *s, int n) {
    if (n <= s->cap) return true;
    cand *c = fr_malloc((size_t)n * sizeof *c);
    int32_t *k = fr_calloc((size_t)n, sizeof *k);
    double *pr = fr_malloc((size_t)n * sizeof *pr);
    if (!c || !k || !pr) {
        free(c); free(k); free(pr);
        return false;
    }
    free(s->cands); free(s->counts); free(s->probs);
    s->cands = c; s->counts = k; s->probs = pr;
    s->cap = n;
    return true;
}

/* ------------------------------------------------------------------ filters */

/* Descending logit; ties broken by the lower id so every platform's qsort agrees. */
static int cand_cmp(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* True when a should rank before b (the order of cand_cmp). */
static inline bool cand_before(const cand *a, const cand *b) {
    return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Penalise every id seen in the window, once per distinct id (llama.cpp semantics:
 * repeat penalty divides positive logits and multiplies the others; then
 * logit -= count*freq + presence). c[i].id == i on entry. */
static void apply_penalties(frugal_sampler *s, cand *c, int n) {
    const frugal_sampler_params *p = &s->p;
    if (s->hist_n == 0) return;
    if (p->repeat_penalty == 1.0f && p->freq_penalty == 0.0f && p->presence_penalty == 0.0f)
        return;
    for (int i = 0; i < s->hist_n; i++) {
        int32_t t = s->hist[i];
        if (t >= 0 && t < n) s->counts[t]++;
    }
    for (int i = 0; i < s->hist_n; i++) {
        int32_t t = s->hist[i];
        if (t < 0 || t >= n || s->counts[t] == 0) continue;
        int cnt = s->counts[t];
        s->counts[t] = 0; /* applied once; also restores the all-zero invariant */
        float l = c[t].logit;
        if (p->repeat_penalty != 1.0f && p->repeat_penalty > 0.0f)
            l = l > 0.0f ? l / p->repeat_penalty : l * p->repeat_penalty;
        l -= (float)cnt * p->freq_penalty + p->presence_penalty;
        c[t].logit = l;
    }
}

/* Sift-down for a min-heap ordered so the "worst" candidate is at the root. */
static void heap_down(cand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && cand_before(&h[w], &h[l])) w = l;
        if (r < n && cand_before(&h[w], &h[r])) w = r;
        if (w == i) return;
        cand t = h[i]; h[i] = h[w]; h[w] = t;
        i = w;
    }
}

/* Keep the k best of c[0..n) in c[0..k), sorted best first. O(n log k). */
static int top_k_select(cand *c, int n, int k) {
    for (int i = k / 2 - 1; i >= 0; i--) heap_down(c, k, i);
    for (int i = k; i < n; i++) {
        if (cand_before(&c[i], &c[0])) {
            c[0] = c[i];
            heap_down(c, k, 0);
        }
    }
    qsort(c, (size_t)k, sizeof *c, cand_cmp);
    return k;
}

/* Index of the best candidate (highest logit, lowest id on ties). */
static int best_index(const cand *c, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (cand_before(&c[i], &c[b])) b = i;
    return b;
}

/* Softmax of c[0..n) at temperature 1/inv_t into probs (double, max-subtracted);
 * returns the sum of the unnormalised weights (>= 1 since the max contributes 1). */
static double softmax(const cand *c, int n, double inv_t, double *probs) {
    double mx = c[best_index(c, n)].logit;
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        probs[i] = exp(((double)c[i].logit - mx) * inv_t);
        sum += probs[i];
    }
    return sum;
}

/* ------------------------------------------------------------------ sample */

/* Picks a token from logits[0..n_vocab) (not modified). Returns -1 only for invalid
 * arguments (NULL, n_vocab <= 0). NaN logits count as -inf and +inf as the largest
 * finite float, so bad model output cannot make the arithmetic NaN. On OOM it
 * degrades to greedy over the raw logits rather than failing. */
int32_t frugal_sampler_sample(frugal_sampler *s, const float *logits, int n_vocab) {
    if (!s || !logits || n_vocab <= 0) return -1;
    if (!ensure_cap(s, n_vocab)) {
        int b = 0;
        for (int i = 1; i < n_vocab; i++)
            if (logits[i] > logits[b]) b = i;
        return b;
    }
    const frugal_sampler_params *p = &s->p;
    cand *c = s->cands;
    for (int i = 0; i < n_vocab; i++) {
        float l = logits[i];
        if (isnan(l)) l = -INFINITY;
        else if (l > FLT_MAX) l = FLT_MAX;
        c[i].id = i;
        c[i].logit = l;
    }
    apply_penalties(s, c, n_vocab);

    if (p->temp <= 0.0f) return c[best_index(c, n_vocab)].id;

    int n = n_vocab;
    bool sorted = false;
    if (p->top_k > 0 && p->top_k < n) {
        n = top_k_select(c, n, p->top_k);
        sorted = true;
    }
    if (p->top_p < 1.0f && n > 1) {
        if (!sorted) qsort(c, (size_t)n, sizeof *c, cand_cmp);
        sorted = true;
        double sum = softmax(c, n, 1.0, s->probs);
        double cum = 0.0, target = (double)p->top_p * sum;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += s->probs[i];
            if (cum >= target) { keep = i + 1; break; }
        }
        n = keep; /* at least 1: the first candidate is always kept */
    }
    if (p->min_p > 0.0f && n > 1) {
        /* p_i >= min_p * p_max  <=>  logit_i >= max_logit + log(min_p) */
        double mx = c[sorted ? 0 : best_index(c, n)].logit;
        double thr = mx + log((double)p->min_p);
        int m = 0;
        for (int i = 0; i < n; i++)
            if ((double)c[i].logit >= thr) c[m++] = c[i]; /* keeps order, keeps the max */
        n = m;
    }
    if (n == 1) return c[0].id;
    if (c[best_index(c, n)].logit == -INFINITY) return c[best_index(c, n)].id;

    double sum = softmax(c, n, 1.0 / (double)p->temp, s->probs);
    double u = rng_uniform(s->rng) * sum;
    double cum = 0.0;
    for (int i = 0; i < n; i++) {
        cum += s->probs[i];
        if (u < cum) return c[i].id;
    }
    /* rounding left u just past the total: the last candidate with weight wins */
    for (int i = n - 1; i > 0; i--)
        if (s->probs[i] > 0.0) return c[i].id;
    return c[0].id;
}
