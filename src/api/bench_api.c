/* bench_api.c - public API for benchmarks: the bytes of weights one decode step
 * reads, and a STREAM-like read-bandwidth probe, so `frugal bench` can put the
 * measured generation speed next to the memory roofline (decode reads every
 * weight once per token, so tok/s <= bandwidth / bytes_per_token). */
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "api/bench_sum.h"
#include "frugal.h"
#include "kernels/il_drive.h"
#include "mem/alloc.h"
#include "model/model.h"

/* ------------------------------------------------------------------ bytes per token */

static uint64_t matrix_bytes(const fr_weight *w) {
    if (!w->data) return 0;
    return (uint64_t)fr_row_size(w->type, w->n_in) * (uint64_t)w->n_out;
}

uint64_t frugal_model_decode_bytes(const frugal_model *m) {
    if (!m || m->vocab_only || !m->layers) return 0;
    const fr_hparams *hp = &m->hp;
    uint64_t total = 0;
    for (int il = 0; il < hp->n_layer; il++) {
        const fr_layer *L = &m->layers[il];
        for (int j = 0; j < FR_LAYER_MATRICES; j++) {
            if (!fr_layer_mat(L, j)) continue;
            const bool stack = j >= FR_WGATE_EXPS && j <= FR_WDOWN_EXPS && hp->n_expert > 0;
            /* a token runs n_expert_used of a stack's n_expert experts */
            total += stack ? matrix_bytes(&L->mat[j]) / (uint64_t)hp->n_expert * (uint64_t)hp->n_expert_used
                           : matrix_bytes(&L->mat[j]);
        }
        /* norms and biases are read as the engine's F32 copies */
        for (const fr_tensor_spec *s = hp->arch->tensors; s->name; s++)
            if (s->slot >= FR_N_LMAT && s->slot < FR_N_LSLOT && L->vec[s->slot])
                total += (uint64_t)fr_dim_value(hp, s->d0) * 4;
    }
    const float *global_vecs[] = {m->output_norm, m->output_norm_b, m->rope_freqs, m->rope_long, m->rope_short};
    const int global_dims[] = {FR_D_EMBD, FR_D_EMBD, FR_D_ROT2, FR_D_ROT2, FR_D_ROT2};
    for (size_t i = 0; i < sizeof global_vecs / sizeof *global_vecs; i++)
        if (global_vecs[i]) total += (uint64_t)fr_dim_value(hp, global_dims[i]) * 4;
    if (m->pos_embd.data) total += fr_row_size(m->pos_embd.type, m->pos_embd.n_in); /* one row per token */
    total += matrix_bytes(&m->output);
    /* The embedding lookup reads one row. With tied embeddings that row lies inside
     * the output matrix, which the head reads whole anyway: count it once. */
    if (m->output.data != m->tok_embd.data) total += fr_row_size(m->tok_embd.type, m->tok_embd.n_in);
    return total;
}

int frugal_context_n_threads(const frugal_context *ctx) {
    return ctx ? fr_pool_size(ctx->pool) : 0;
}

/* ------------------------------------------------------------------ bandwidth probe */

/* Sum of n uint64 words. A plain loop the compiler vectorises (integer addition is
 * associative, so it may reorder the reduction); the result is checked by the
 * caller, so the loads cannot be dropped. On x86-64 the same body is also compiled
 * for AVX2 and AVX-512 and picked at run time, so the probe issues the widest loads
 * the machine has without intrinsics, and the library still builds for any CPU.
 * Two loops: one leaves the stream to the hardware prefetchers, the other also asks
 * for each line FR_IL_PREFETCH_AHEAD bytes early, as the decode kernels do
 * (kernels/il_drive.h). On the 2-vCPU VM the second read ~5-10 % faster in most
 * passes (and the Q8_0 decode beat a plain-loop-only probe by up to 7 %):
 * a roofline must bound what the engine can reach, so the probe keeps the best pass
 * of either loop. */
#define SUM_BODY                                             \
    uint64_t s = 0;                                          \
    for (size_t i = 0; i < n; i++) s += p[i];                \
    return s;
#define SUM_PF_BODY(VEC, LANES)                                                            \
    enum { PARTS = 64 / sizeof(VEC) }; /* vectors per 64-byte line */                      \
    VEC acc[PARTS];                                                                        \
    memset(acc, 0, sizeof acc);                                                            \
    size_t i = 0;                                                                          \
    for (; i + 8 <= n; i += 8) { /* one 64-byte line per step */                           \
        __builtin_prefetch((const void *)((uintptr_t)(p + i) + FR_IL_PREFETCH_AHEAD), 0, 3); \
        for (int k = 0; k < PARTS; k++) {                                                  \
            VEC v;                                                                         \
            memcpy(&v, (const uint8_t *)(p + i) + k * sizeof v, sizeof v);                 \
            acc[k] += v;                                                                   \
        }                                                                                  \
    }                                                                                      \
    uint64_t s = 0;                                                                        \
    for (int k = 0; k < PARTS; k++)                                                        \
        for (int l = 0; l < (LANES); l++) s += acc[k][l];                                  \
    for (; i < n; i++) s += p[i];                                                          \
    return s;

/* GCC/clang vector types. Each target gets the widest register it has: a 64-byte
 * vector built for AVX2 is not split into two registers but kept on the stack and
 * moved through it (store-forwarding stalls on every add: the AVX2 probe read ~half
 * the rate it should on a Zen 3 VM), so AVX2 sums a line as two 32-byte halves. */
typedef uint64_t v8u64 __attribute__((vector_size(64)));
typedef uint64_t v4u64 __attribute__((vector_size(32)));
typedef uint64_t v2u64 __attribute__((vector_size(16)));

static uint64_t sum_generic(const uint64_t *p, size_t n) { SUM_BODY }
static uint64_t sum_pf_generic(const uint64_t *p, size_t n) { SUM_PF_BODY(v2u64, 2) }

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n) { SUM_BODY }
__attribute__((target("avx512f"))) static uint64_t sum_avx512(const uint64_t *p, size_t n) { SUM_BODY }
__attribute__((target("avx2"))) static uint64_t sum_pf_avx2(const uint64_t *p, size_t n) { SUM_PF_BODY(v4u64, 4) }
__attribute__((target("avx512f"))) static uint64_t sum_pf_avx512(const uint64_t *p, size_t n) { SUM_PF_BODY(v8u64, 8) }
#endif

fr_sum_fn fr_bench_sum(int pf) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return pf ? sum_pf_avx512 : sum_avx512;
    if (__builtin_cpu_supports("avx2")) return pf ? sum_pf_avx2 : sum_avx2;
#endif
    return pf ? sum_pf_generic : sum_generic;
}

enum { PAD_WORDS = 8 }; /* one 64-byte line per thread's partial sum: no false sharing */

typedef struct probe {
    uint64_t *buf;
    size_t n_words;
    fr_sum_fn sum;     /* the loop of the current pass */
    uint64_t *partial; /* nth * PAD_WORDS */
} probe;

/* Each thread writes its own share (so its pages are really backed, and placed
 * near it on NUMA machines): word i holds i, whose total is known in closed form. */
static void fill_task(void *arg, int ith, int nth) {
    probe *pr = arg;
    long a, b;
    fr_split((long)pr->n_words, ith, nth, &a, &b);
    for (long i = a; i < b; i++) pr->buf[i] = (uint64_t)i;
}

static void sum_task(void *arg, int ith, int nth) {
    probe *pr = arg;
    long a, b;
    fr_split((long)pr->n_words, ith, nth, &a, &b);
    pr->partial[(size_t)ith * PAD_WORDS] = pr->sum(pr->buf + a, (size_t)(b - a));
}

size_t frugal_bandwidth_probe_default_bytes(void) {
    /* 1 GiB is far past any last-level cache we expect (>= 4x a 256 MiB LLC), but a
     * small machine gets a quarter of its RAM instead. */
    size_t want = (size_t)1 << 30;
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages > 0 && psz > 0) {
        uint64_t quarter = (uint64_t)pages * (uint64_t)psz / 4;
        if (quarter < want) want = (size_t)quarter;
    }
    return want;
}

double frugal_measure_read_bandwidth(int n_threads, size_t bytes) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN); /* the same default as model loading */
        n_threads = n < 1 ? 1 : (n > 64 ? 64 : (int)n);
    }
    if (bytes == 0) bytes = frugal_bandwidth_probe_default_bytes();
    probe pr = {.n_words = bytes / sizeof(uint64_t)};
    if (pr.n_words < (size_t)n_threads * PAD_WORDS) return -1.0;
    fr_pool *pool = fr_pool_new(n_threads);
    if (!pool) return -1.0;
    int nth = fr_pool_size(pool);
    size_t buf_bytes = pr.n_words * sizeof(uint64_t);
    size_t part_bytes = (size_t)nth * PAD_WORDS * sizeof(uint64_t);
    pr.buf = fr_mem_alloc(FR_MEM_SCRATCH, buf_bytes);
    pr.partial = fr_mem_alloc(FR_MEM_SCRATCH, part_bytes);
    double best = -1.0;
    if (pr.buf && pr.partial) {
        fr_pool_run(pool, fill_task, &pr);
        uint64_t n = pr.n_words; /* sum of 0..n-1, mod 2^64 */
        uint64_t expect = (n % 2 == 0) ? (n / 2) * (n - 1) : n * ((n - 1) / 2);
        /* one untimed pass to settle threads and the TLB, then the best of the timed
         * ones, the two loops taking turns: the best pass is the one least disturbed
         * by other processes */
        enum { PASSES = 8 };
        double best_t = 0.0;
        int ok = 1;
        for (int pass = 0; pass <= PASSES && ok; pass++) {
            pr.sum = fr_bench_sum(pass & 1);
            double t0 = fr_now_s();
            fr_pool_run(pool, sum_task, &pr);
            double t = fr_now_s() - t0;
            uint64_t s = 0;
            for (int i = 0; i < nth; i++) s += pr.partial[(size_t)i * PAD_WORDS];
            ok = s == expect; /* every word was read, and read right */
            if (pass > 0 && (best_t == 0.0 || t < best_t)) best_t = t;
        }
        if (ok && best_t > 0.0) best = (double)buf_bytes / best_t / 1e9;
    }
    fr_mem_free(FR_MEM_SCRATCH, pr.partial, part_bytes);
    fr_mem_free(FR_MEM_SCRATCH, pr.buf, buf_bytes);
    fr_pool_free(pool);
    return best;
}
