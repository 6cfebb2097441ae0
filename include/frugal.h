/* frugal.h - the public C API of frugal, an LLM inference engine for modest machines.
 *
 * Conventions
 *  - Handles are opaque. Every function that can fail returns an int status
 *    (FRUGAL_OK == 0) and, when given a non-NULL frugal_error*, fills it with a
 *    one-line message naming the problem. Initialise a frugal_error with
 *    FRUGAL_ERROR_INIT (or zero it) before passing it in.
 *  - Token ids are int32_t. Text is UTF-8, passed as (pointer, length).
 *  - A model is read-only once loaded and may be shared by several contexts;
 *    a context (KV cache + scratch) is used by one thread at a time.
 */
#ifndef FRUGAL_H
#define FRUGAL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FRUGAL_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

enum {
    FRUGAL_OK = 0,
    FRUGAL_E_IO = 1,            /* open/read/write/mmap failed */
    FRUGAL_E_FORMAT = 2,        /* the file is truncated, corrupted or inconsistent */
    FRUGAL_E_UNSUPPORTED = 3,   /* valid, but not something frugal runs (arch, tensor type) */
    FRUGAL_E_NOMEM = 4,         /* allocation failed or over budget */
    FRUGAL_E_INVALID_ARG = 5,   /* caller passed a bad value */
    FRUGAL_E_CONTEXT_FULL = 6,  /* no room left in the KV cache */
    FRUGAL_E_INTERNAL = 7,
};

typedef struct frugal_error {
    int code;
    char message[512];
} frugal_error;

#define FRUGAL_ERROR_INIT {0, {0}}

const char *frugal_status_str(int code);

/* CPUs this process may run on (its affinity mask; at least 1). Thread counts
 * above it are lowered to it by frugal_model_load / frugal_context_new /
 * frugal_quantize: more threads than CPUs only wait on each other. */
int frugal_cpu_count(void);

/* ---------------------------------------------------------------- models */

typedef struct frugal_model frugal_model;
typedef struct frugal_context frugal_context;

typedef struct frugal_model_params {
    int n_threads;     /* threads used by contexts created on this model (<=0: all cores) */
    int verbose;       /* print load information to stderr */
    int vocab_only;    /* load only the tokenizer (works on vocabulary-only GGUFs);
                          such a model cannot create contexts */
    uint64_t mem_budget; /* bytes the process may use for this model (0: no cap): the
                            default budget of its contexts (see frugal_plan_memory) */
    int no_repack;     /* 1: keep every weight in the file mapping (zero-copy, page cache
                          shared between processes). 0 (default): without a budget, the
                          matrices the CPU has an interleaved GEMM for are copied at load
                          into that layout (same size; prefill 2-4x faster), if they fit
                          in the memory available, and when all of them fit the other
                          matrices are copied as they are (decode streams huge pages
                          faster than a file mapping's 4 KiB pages). FRUGAL_REPACK=0 in
                          the environment forces 1. */
    int n_gpu_layers;  /* layers on the GPU (Vulkan), as llama.cpp's -ngl: the last N
                          layers' matrices are uploaded at load, N > n_layer also the
                          output matrix. 0 (default): CPU only. < 0: all of them when a
                          device opens, else the CPU with a message. > 0 without a device:
                          frugal_model_load fails (FRUGAL_E_UNSUPPORTED naming why). */
    uint64_t vram_budget; /* device memory the upload may use (0: what the driver gives);
                          layers past it run on the CPU */
    int gpu_stream;       /* 1: layers past vram_budget are copied to the device before
                          use, into two rotating buffers inside the budget (--gpu-stream) */
} frugal_model_params;

void frugal_model_params_default(frugal_model_params *p);

/* Maps and validates a GGUF file. On failure *out is NULL and err names the file
 * and the problem. */
int frugal_model_load(const char *path, const frugal_model_params *params,
                      frugal_model **out, frugal_error *err);
void frugal_model_free(frugal_model *model);

typedef struct frugal_model_info {
    const char *arch;        /* general.architecture: "llama", "qwen2", "gemma2", ... */
    const char *name;        /* general.name or "" */
    int n_vocab;
    int n_ctx_train;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int n_ff;
    uint64_t n_params;
    uint64_t weight_bytes;   /* bytes of tensor data */
    const char *type_name;   /* dominant weight type, e.g. "Q4_0" */
} frugal_model_info;

void frugal_model_get_info(const frugal_model *model, frugal_model_info *info);

/* The string value of a GGUF metadata key (e.g. "tokenizer.chat_template"), as a
 * NUL-terminated copy, or NULL when the key is absent or not a string. The copy
 * is made once per key and stays valid while the process runs. Thread-safe. */
const char *frugal_model_meta_str(const frugal_model *model, const char *key);

/* ---------------------------------------------------------------- tokens */

/* Tokenize text. add_special: add BOS/EOS as the model's metadata says.
 * parse_special: recognise special/control token text such as "<s>".
 * Returns the number of tokens written, -(number needed) when n_max is too small, or
 * INT32_MIN when it failed (invalid arguments, out of memory). */
int frugal_tokenize(const frugal_model *model, const char *text, size_t len,
                    int add_special, int parse_special, int32_t *out, int n_max);

/* Write the text of one token into buf (not NUL-terminated). special: render
 * control tokens' text too. Returns bytes written or -(bytes needed). */
int frugal_token_to_piece(const frugal_model *model, int32_t token, char *buf, int len,
                          int special);

/* Detokenize a sequence with the family's leading-space rules. Returns bytes written
 * (a NUL is added when room allows) or -(bytes needed). */
int frugal_detokenize(const frugal_model *model, const int32_t *tokens, int n, char *buf,
                      int len, int remove_special, int unparse_special);

int32_t frugal_token_bos(const frugal_model *model);
int32_t frugal_token_eos(const frugal_model *model);
int frugal_token_is_eog(const frugal_model *model, int32_t token); /* end of generation */
int frugal_add_bos(const frugal_model *model);

/* ---------------------------------------------------------------- contexts */

/* KV cache storage. The quantized types keep 32-value blocks along the head
 * dimension (which must then be a multiple of 32); K8V4 = keys Q8_0, values Q4_0. */
enum { FRUGAL_KV_F32 = 0, FRUGAL_KV_F16 = 1, FRUGAL_KV_Q8_0 = 2, FRUGAL_KV_Q4_0 = 3, FRUGAL_KV_K8V4 = 4 };

/* "f32", "f16", "q8_0", "q4_0", "k8v4" -> FRUGAL_KV_*, or -1. */
int frugal_kv_type_parse(const char *name);
const char *frugal_kv_type_name(int kv_type);

typedef struct frugal_context_params {
    int n_ctx;      /* <=0: the model's training context, capped at 4096 */
    int n_threads;  /* <=0: the model's n_threads */
    int kv_type;    /* FRUGAL_KV_* (default FRUGAL_KV_F16) */
    /* Sliding window with attention sinks (StreamingLLM): when > 0, the cache keeps
     * the first kv_sinks tokens and a window of the most recent ones, so generation
     * goes on past n_ctx. The cache then holds kv_sinks + kv_window tokens (n_ctx is
     * set to that); when it is full, the oldest eighth of the window is evicted at
     * once and the remaining keys are re-rotated to their new, contiguous positions. */
    int kv_window;
    int kv_sinks;
    /* Chunk summaries: when > 0, beyond the most recent kv_keep tokens every old chunk
     * of kv_chunk tokens is replaced by one slot holding its mean-pooled K and V; the
     * cache holds n_ctx slots (summaries + recent tokens), generation goes on past it;
     * when summaries alone would fill it, the oldest summary is dropped. */
    int kv_chunk;
    int kv_keep;
    int kv_slots;   /* summary policy: cache slots (<= 0: n_ctx) */
    /* Several sequences in one context share one paged KV pool (blocks of 16 tokens):
     * n_seq_max sequences (default 1), each holding up to n_ctx tokens. The pool holds
     * n_ctx_pool tokens (<= 0: n_ctx, or n_seq_max * n_ctx with a window/summary policy). */
    int n_seq_max;
    int n_ctx_pool;
    /* Memory budget in bytes for the whole process (0: the model's mem_budget; both
     * 0: no cap, weights mapped as usual). When the model, KV cache and scratch do not
     * fit, the first layers that fit are read into RAM and the rest are streamed from
     * the file per token (see frugal_plan_memory); when even streaming every layer
     * does not fit, frugal_context_new fails with FRUGAL_E_NOMEM naming the minimum. */
    uint64_t mem_budget;
    /* Disk tier: when kv_disk_dir is set, KV pages (one layer x 16 tokens) spill to a
     * file there (removed on exit) and only kv_ram_bytes of them stay in RAM, least
     * recently used evicted; the minimum is one layer's pages. */
    const char *kv_disk_dir;
    uint64_t kv_ram_bytes;
} frugal_context_params;

/* Parse a --kv-policy value into p: "window:W[,sinks:S]" (sinks default 4) or
 * "summary:CHUNK[,keep:N][,slots:S]" (keep default 64; slots: cache size, default
 * n_ctx). 0 ok, -1 malformed. */
int frugal_kv_policy_parse(const char *text, frugal_context_params *p);

void frugal_context_params_default(frugal_context_params *p);
int frugal_context_new(frugal_model *model, const frugal_context_params *params,
                       frugal_context **out, frugal_error *err);
void frugal_context_free(frugal_context *ctx);

int frugal_context_n_ctx(const frugal_context *ctx);
int frugal_context_pos(const frugal_context *ctx);       /* tokens in the KV cache */
void frugal_context_reset(frugal_context *ctx);           /* empty the KV cache */

/* Run the model on n tokens appended at the current position.
 * logits_all: keep logits for every token of the batch (else only the last).
 * Fails with FRUGAL_E_CONTEXT_FULL (nothing evaluated) if pos + n > n_ctx. */
int frugal_eval(frugal_context *ctx, const int32_t *tokens, int n, int logits_all,
                frugal_error *err);

/* ---- several sequences: continuous batching
 * frugal_eval_batch appends each item's token to its sequence (in order), running
 * all of them through one forward pass per micro-batch, so the weights are read
 * once for every sequence. Logits are kept for the items with logits != 0, in order:
 * frugal_get_logits(ctx, j) is the j-th of them. Fails without evaluating anything
 * on a bad token/sequence id or a sequence over n_ctx; FRUGAL_E_CONTEXT_FULL when
 * the shared pool runs out of blocks (earlier micro-batches stay evaluated). */
typedef struct frugal_batch_item {
    int32_t token;
    int seq;        /* 0 .. n_seq_max - 1 */
    int logits;     /* keep this token's logits */
} frugal_batch_item;
int frugal_eval_batch(frugal_context *ctx, const frugal_batch_item *items, int n, frugal_error *err);
int frugal_seq_len(const frugal_context *ctx, int seq);          /* -1: no such sequence */
void frugal_seq_clear(frugal_context *ctx, int seq);             /* frees its blocks */
/* dst becomes a copy of src that shares its KV blocks (copy on write). */
int frugal_seq_fork(frugal_context *ctx, int src, int dst, frugal_error *err);
/* KV pool usage in tokens: used by sequences, allocated in blocks (waste =
 * allocated - used), capacity. */
void frugal_kv_usage(const frugal_context *ctx, uint64_t *used, uint64_t *allocated, uint64_t *capacity);
/* Pages read from / written to the KV spill file (0 without a disk tier). */
void frugal_kv_disk_stats(const frugal_context *ctx, uint64_t *pages_read, uint64_t *pages_written);

/* Logits (n_vocab floats) of token i of the last batch; i = -1 means the last token.
 * NULL if not available. Valid until the next frugal_eval. */
const float *frugal_get_logits(const frugal_context *ctx, int i);

/* ---------------------------------------------------------------- sampling */

typedef struct frugal_sampler frugal_sampler;

typedef struct frugal_sampler_params {
    float temp;            /* <= 0: greedy */
    int top_k;             /* <= 0: off */
    float top_p;           /* >= 1: off */
    float min_p;           /* <= 0: off */
    float repeat_penalty;  /* 1: off */
    int repeat_last_n;     /* window for the penalties */
    float freq_penalty;    /* 0: off */
    float presence_penalty;/* 0: off */
    uint64_t seed;
} frugal_sampler_params;

void frugal_sampler_params_default(frugal_sampler_params *p);
frugal_sampler *frugal_sampler_new(const frugal_sampler_params *p);
void frugal_sampler_free(frugal_sampler *s);
/* Pick a token from logits (n_vocab floats; not modified). */
int32_t frugal_sampler_sample(frugal_sampler *s, const float *logits, int n_vocab);
/* Record a token (prompt or generated) for the repetition penalties. */
void frugal_sampler_accept(frugal_sampler *s, int32_t token);
void frugal_sampler_reset(frugal_sampler *s);

/* ---------------------------------------------------------------- generation */

typedef struct frugal_timings {
    int n_prompt;
    int n_gen;
    double prompt_ms;
    double gen_ms;
    double ttft_ms;        /* start of prompt processing -> first generated token */
    uint64_t peak_rss_bytes;
} frugal_timings;

/* Called for each generated token with its text piece. Return non-zero to stop. */
typedef int (*frugal_token_cb)(void *user, int32_t token, const char *piece, size_t len);

/* Evaluate the prompt (appended to the context), then sample up to n_predict tokens,
 * stopping early at an end-of-generation token or when the callback says so.
 * The sampler sees the prompt tokens (for penalties). timings may be NULL. */
int frugal_generate(frugal_context *ctx, frugal_sampler *smpl, const int32_t *prompt,
                    int n_prompt, int n_predict, frugal_token_cb cb, void *user,
                    frugal_timings *timings, frugal_error *err);

/* Progress of the long steps inside the library: stage "repack" (copying weights
 * into the interleaved layout at load, units: bytes) and "warm-up" (reading the
 * resident layers of a memory budget's plan at context creation, units: layers).
 * Called on the loading thread with done of total units, last with done == total.
 * Process-wide: set it (NULL: off) before loading, not while another thread loads. */
typedef void (*frugal_progress_cb)(void *user, const char *stage, uint64_t done, uint64_t total);
void frugal_set_progress(frugal_progress_cb cb, void *user);

/* Peak resident set size of this process in bytes (0 if unknown). */
uint64_t frugal_peak_rss(void);

/* Memory accounted by category (every large buffer goes through one layer):
 * names[i] is "weights", "kv", "scratch", "io", "tokenizer", "other"; the last row
 * (index n - 1) is the total. Memory-mapped weights are page cache: see peak_rss. */
#define FRUGAL_MEM_ROWS 7
typedef struct frugal_mem_stats {
    int n;
    const char *names[FRUGAL_MEM_ROWS];
    uint64_t current[FRUGAL_MEM_ROWS];
    uint64_t peak[FRUGAL_MEM_ROWS];
    uint64_t peak_rss;
} frugal_mem_stats;
void frugal_get_mem_stats(frugal_mem_stats *s);

/* Bytes of the context's KV cache, in total and per cached token (all layers, K+V). */
uint64_t frugal_context_kv_bytes(const frugal_context *ctx);
double frugal_context_kv_bytes_per_token(const frugal_context *ctx);

/* ---------------------------------------------------------------- chat templates */

/* The chat formats frugal renders (recognised from a model's Jinja template by
 * markers only that family's template contains; Jinja itself is not interpreted). */
enum {
    FRUGAL_TMPL_CHATML = 0, FRUGAL_TMPL_LLAMA2, FRUGAL_TMPL_LLAMA3, FRUGAL_TMPL_MISTRAL,
    FRUGAL_TMPL_PHI3, FRUGAL_TMPL_GEMMA, FRUGAL_TMPL_ZEPHYR, FRUGAL_TMPL_COUNT
};

typedef struct frugal_chat_msg {
    const char *role;     /* "system", "user", "assistant" (others are rendered as user) */
    const char *content;  /* NUL-terminated */
} frugal_chat_msg;

/* "chatml" (also "qwen"), "llama2", "llama3", "mistral", "phi3", "gemma", "zephyr"
 * -> FRUGAL_TMPL_*, or -1. */
int frugal_chat_template_parse(const char *name);
const char *frugal_chat_template_name(int tmpl);   /* "?" when out of range */
/* The format of a Jinja chat template, or -1 when unknown (or jinja is NULL). */
int frugal_chat_template_detect(const char *jinja);
/* The format of the model's tokenizer.chat_template; for a file without one, its
 * family's format (gemma* -> gemma, phi3 -> phi3, qwen* -> chatml); -1 when the
 * template is not one frugal knows or the family has none of its own (callers then
 * usually fall back to FRUGAL_TMPL_CHATML). */
int frugal_chat_template_of(const frugal_model *model);
/* Render msgs[0..n) in format tmpl, followed by the assistant's turn header when
 * add_generation_prompt (a no-op for llama2/mistral, whose "[/INST]" is the header).
 * BOS is not written: the tokenizer adds it as the model's metadata says. Writes at
 * most len bytes including a NUL (snprintf-like) and returns the full length, or
 * -FRUGAL_E_INVALID_ARG (bad tmpl, NULL role/content) / -FRUGAL_E_NOMEM. */
int frugal_chat_render(int tmpl, const frugal_chat_msg *msgs, int n, int add_generation_prompt,
                       char *buf, size_t len);
/* The text that ends an assistant turn in this format (a stop string when the
 * model does not have it as a control token), or NULL when turns end with EOS. */
const char *frugal_chat_end_marker(int tmpl);

/* ---------------------------------------------------------------- memory budget */

/* How a model runs inside a memory budget. Layers 0..resident_layers-1 are read
 * into RAM, the others are streamed from the file into io_buffers ring buffers by an
 * I/O thread running ahead of compute. The forecast peak RSS is the sum of:
 * overhead (binary, libc, stacks, tokenizer, file metadata), always (output head and
 * embedding rows, left in the read-only mapping, plus norms), kv, scratch, resident
 * layers and the I/O buffers. Speed: tok_s_bound = 1 / ((always + resident bytes) /
 * memory bandwidth + streamed bytes / disk bandwidth); tok_s_overlap assumes reads
 * fully overlap compute: 1 / max(all bytes / memory bw, streamed / disk bw). Both 0
 * when the bandwidths were not given. */
typedef struct frugal_plan {
    uint64_t budget_bytes;      /* 0: no cap */
    int n_layer, n_ctx;
    int streaming;              /* 0: everything resident (runs from the mapping) */
    int resident_layers, streamed_layers, io_buffers;
    uint64_t resident_bytes, streamed_bytes, io_bytes;
    uint64_t always_bytes, kv_bytes, scratch_bytes, overhead_bytes;
    uint64_t min_bytes;         /* smallest working set (every layer streamed) */
    uint64_t forecast_peak_bytes;
    double mem_bw_gbs, disk_bw_gbs;
    double tok_s_bound, tok_s_overlap;
    /* A mixture of experts that does not fit: every layer's dense part resident
     * (dense_bytes, in resident_bytes), the experts through a cache of expert_slots
     * slots (expert_cache_bytes, in io_bytes; filled at start: the resident experts),
     * the others read from the file when picked. Forecast with uniform routing (the
     * worst case): hit rate expert_slots / experts, expert_read_per_token bytes read
     * per token (also in streamed_bytes); min_bytes = dense + one slot + the rest. */
    int expert_streaming;
    int experts, expert_slots;
    uint64_t dense_bytes, expert_cache_bytes, expert_slot_bytes;
    double expert_hit_uniform, expert_read_per_token;
} frugal_plan;

/* Counters of a context's expert cache (see frugal_plan): requests (one distinct
 * expert of one layer per evaluated batch) found cached / read from the file, the
 * bytes read (page-aligned; reads on a prediction included), the exact bytes of one
 * expert, slots, experts; experts read ahead on a guess of a layer's
 * picks, and how many of those the layer picked (counted in misses); the recent
 * (decayed) count of predicted experts and of those picked, read ahead or not (reads
 * ahead start while >= 80 % are right). */
typedef struct frugal_expert_stats {
    uint64_t hits, misses, bytes_read, expert_bytes;
    int slots, experts;
    uint64_t prefetched, prefetch_used;
    uint64_t guesses, guesses_right;
    double io_busy_s;  /* seconds with at least one expert read in flight */
    double wait_s;     /* seconds the forward pass waited for an expert's read */
    int io_threads;    /* reads the cache keeps in flight at most (AIO depth, or its I/O threads) */
    int io_async;      /* 1: Linux AIO from one thread; 0: blocking reads, one per I/O thread */
} frugal_expert_stats;

/* 1 and *out filled when ctx streams experts (a MoE model under a budget that does
 * not hold it); else 0 and *out zeroed. */
int frugal_context_expert_stats(const frugal_context *ctx, frugal_expert_stats *out);
/* The GPU split that -ngl n_gpu_layers / --vram vram_bytes would give on this model
 * (model/offload.h's rule, computed without a device): the last layers up to the
 * count, as many as fit the budget after the activation buffers; device bytes of
 * their matrices (types the device has no kernel for stay on the CPU and count 0). */
typedef struct frugal_gpu_plan {
    int n_layer;          /* layers of the model */
    int first_layer;      /* first layer on the device */
    int n_gpu_layers;     /* layers on the device: [first_layer, first_layer + n_gpu_layers) */
    int output_on_gpu;    /* the output matrix too */
    uint64_t weight_bytes;   /* device memory of the placed matrices */
    uint64_t act_bytes;      /* device memory of the activation buffers */
    uint64_t cpu_weight_bytes; /* the matrices left on the CPU */
    uint64_t kv_bytes;    /* whole layers: device memory of their F16 KV caches (the default
                             context, min(n_ctx_train, 4096) positions) and norm/bias vectors */
    int whole;            /* 1: the placed layers run whole on the device (act_bytes includes
                             their activation buffers); 0: only their matrix products */
} frugal_gpu_plan;
void frugal_plan_gpu(const frugal_model *model, int n_gpu_layers, uint64_t vram_bytes, frugal_gpu_plan *out);

/* The device a loaded model's layers run on (-ngl): its name, the placed layers, device
 * memory now / peak since load / budget (--vram, else the device's memory), and the
 * bytes one decode step reads on the device versus the host bytes of those matrices
 * (frugal_model_decode_bytes minus host_weight_bytes is what the CPU still reads). */
typedef struct frugal_gpu_info {
    char device[256];
    int software; /* 1: a software device (lavapipe), the CPU's own memory */
    int first_layer, n_gpu_layers;
    uint64_t mem_used, mem_peak, mem_budget;
    uint64_t device_weight_bytes, host_weight_bytes;
    int n_stream_layers;    /* --gpu-stream: layers copied to the device before use */
    uint64_t h2d_bytes;     /* bytes those copies moved since load */
    double h2d_seconds;     /* and the seconds they took */
} frugal_gpu_info;
/* 1 and *out filled when the model has a device (even with 0 layers placed), else 0. */
int frugal_model_gpu_info(const frugal_model *model, frugal_gpu_info *out);
/* The device's read bandwidth in GB/s over a buffer of up to max_bytes of device memory
 * (halved until it fits the budget; *probed_bytes: the size used), or a negative value
 * with err set (no device, driver error). Frees its buffer before returning. */
double frugal_model_gpu_read_bandwidth(frugal_model *model, size_t max_bytes, size_t *probed_bytes,
                                       frugal_error *err);

/* Plan model for a budget (0: none), context n_ctx (<= 0: the default a context
 * gets), KV type (FRUGAL_KV_*) and threads (<= 0: the model's), with measured
 * bandwidths in GB/s (0: unknown). FRUGAL_E_NOMEM when the budget is below the
 * minimum working set: the message names the minimum and what would fit; *out
 * still holds the figures (min_bytes). */
int frugal_plan_memory(const frugal_model *model, uint64_t budget, int n_ctx, int kv_type,
                       int n_threads, double mem_bw_gbs, double disk_bw_gbs, frugal_plan *out,
                       frugal_error *err);

/* Sequential read bandwidth of the file's device in GB/s: reads up to max_bytes
 * (0: 512 MiB) from the start of path in 8 MiB requests with O_DIRECT (buffered
 * reads after dropping the file's page cache where O_DIRECT is refused). < 0 on
 * failure. */
double frugal_measure_disk_bandwidth(const char *path, uint64_t max_bytes);

/* Random-read bandwidth of path's device in GB/s, as expert streaming reads it:
 * n_threads threads (1..64; the expert cache runs 4 I/O threads, each request one of an
 * expert's three matrices) each reading req_bytes (rounded up to 4 KiB) at random
 * aligned offsets with O_DIRECT, max_bytes (0: 512 MiB) in all. < 0 on failure or
 * where O_DIRECT is refused. */
double frugal_measure_random_read_bandwidth(const char *path, uint64_t req_bytes, int n_threads,
                                            uint64_t max_bytes);

/* "123", "64K", "256M", "2G", "1.5G" (powers of 1024, optional B/iB) -> bytes.
 * 0 ok, -1 malformed or zero. */
int frugal_parse_size(const char *text, uint64_t *bytes);

/* ---------------------------------------------------------------- benchmarking */

/* Bytes of weights one decode step (one token) reads: every layer matrix (of a
 * mixture of experts' stacks, the n_expert_used experts a token runs), the norms
 * and biases (as the F32 copies the engine reads), the output matrix and one
 * embedding row; with tied embeddings the shared matrix counts once, as the output.
 * Decode reads each of these once per token, so memory bandwidth / this number is
 * the speed limit ("roofline") of generation. 0 for a vocabulary-only model. */
uint64_t frugal_model_decode_bytes(const frugal_model *model);

/* Threads the context evaluates with (after defaults were applied). */
int frugal_context_n_threads(const frugal_context *ctx);

/* Measured memory read bandwidth in GB/s (1e9 bytes/s): n_threads threads of the
 * engine's pool sum a buffer of `bytes` bytes of uint64 words with the widest vector
 * loads the CPU has, in passes with and without software prefetch; the best of
 * several passes after one warm-up pass. n_threads
 * <= 0: all cores; bytes == 0: frugal_bandwidth_probe_default_bytes(). Allocates
 * the buffer for the call's duration. Returns < 0 on failure (no memory). */
double frugal_measure_read_bandwidth(int n_threads, size_t bytes);
/* min(1 GiB, RAM / 4): far larger than the last-level cache of the machines we run on. */
size_t frugal_bandwidth_probe_default_bytes(void);

/* ---------------------------------------------------------------- files */

/* Print a GGUF file's metadata and tensor table with a size summary by type. */
int frugal_inspect(const char *path, FILE *out, frugal_error *err);

typedef struct frugal_mkmodel_params {
    const char *arch;        /* any supported architecture: llama, qwen2, qwen3, qwen3moe, gemma,
                                gemma2, gemma3, phi3, gpt2 */
    int dim, n_layers, n_heads, n_kv_heads, ffn;
    int head_dim;            /* 0: dim / n_heads (Qwen3 and Gemma often differ) */
    int window;              /* sliding window of the local layers (gemma2/3; 0: the family's default) */
    int n_expert, n_expert_used; /* mixture of experts (qwen3moe; llama: Mixtral); ffn is then
                                    each expert's size */
    int ctx;                 /* context_length written to metadata (0: 4096) */
    const char *vocab_path;  /* GGUF whose tokenizer.* metadata is copied */
    const char *type;        /* "f32", "f16", "q8_0", "q4_0" */
    uint64_t seed;
    int tied;                /* omit output.weight (tied embeddings) */
    float rope_base;         /* 0: the family's default (10000; 1e6 for qwen3) */
    float expert_skew;       /* 0: uniform routing; S > 0: router rows scaled from 1 down to
                                exp(-S), so each layer favours a few experts (0..20) */
} frugal_mkmodel_params;

void frugal_mkmodel_params_default(frugal_mkmodel_params *p);
/* Write a random-weight model (written to a temp file, then renamed). */
int frugal_mkmodel(const frugal_mkmodel_params *p, const char *out_path, frugal_error *err);

/* ---------------------------------------------------------------- quantize */

typedef struct frugal_quantize_params {
    const char *type;   /* target: "q8_0", "q4_0", "q4_k" (llama.cpp's Q4_K_M mix),
                           "q6_k", "q2_k", "q3_k_s", "q3_k_m" (= "q3_k"), "q3_k_l",
                           "iq4_nl", "iq4_xs" (llama.cpp's mixes of those names),
                           "f16" or "f32" */
    int keep_first;     /* keep the matrices of layers 0..keep_first-1 in their input type */
    int keep_output;    /* keep output.weight (token_embd.weight when tied) in its input type */
    int n_threads;      /* <=0: all cores */
    int progress;       /* print "tensor i/n, ETA" lines to stderr while working */
    FILE *log;          /* notes and warnings (re-quantized input, kept rows); NULL: stderr */
    /* frugal's own types: type "i8c", "nf4" or "fp8o" (core/quant_private.h) writes
     * files only frugal reads. policy "auto" ignores type and picks each weight
     * matrix's type (F16, Q8_0, Q6_K, Q4_K, Q4_0, I8C, NF4, FP8O) to minimise the
     * total quantization error within budget_bytes of tensor data (or, when that is
     * 0, budget_bpw bits per weight over all tensors); the choice table goes to log. */
    const char *policy; /* NULL or "": llama-quantize's rules for type; "auto" */
    uint64_t budget_bytes;
    double budget_bpw;
    const char *calib;  /* policy auto: text to weight each input channel's error by its
                           mean squared activation (runs the input model over it) */
    /* Called after each tensor is written (instead of the progress lines): done and
     * total in bytes of input tensor data, what = the tensor's name. NULL: none. */
    void (*on_progress)(void *user, uint64_t done, uint64_t total, const char *what);
    void *progress_user;
} frugal_quantize_params;

typedef struct frugal_quantize_stats {
    uint64_t n_params;     /* elements of all tensors */
    uint64_t bytes_in;     /* tensor data bytes in the input */
    uint64_t bytes_out;    /* tensor data bytes in the output */
    int n_tensors;
    int n_quantized;       /* tensors whose type changed */
} frugal_quantize_stats;

void frugal_quantize_params_default(frugal_quantize_params *p);
/* Quantize in_path into out_path following llama-quantize's tensor rules (same
 * tensor order, types and bytes for the types both support). The output is written
 * to a temp file beside out_path (created exclusively, synced) and renamed; an
 * out_path that exists and is not a regular file (device, FIFO) is refused; the input is never modified, and out_path naming
 * the input file is refused (FRUGAL_E_INVALID_ARG, as is an unknown type).
 * stats may be NULL. */
int frugal_quantize(const char *in_path, const char *out_path, const frugal_quantize_params *p,
                    frugal_quantize_stats *stats, frugal_error *err);

/* ---------------------------------------------------------------- output files */

/* An output file written the way frugal writes its own: to a temp file beside
 * `path` created with O_EXCL|O_NOFOLLOW under a unique name, fsync'ed, then renamed
 * over `path` by frugal_outfile_commit. A `path` that exists and is not a regular
 * file (a device, FIFO or directory) is refused. On an error, on
 * frugal_outfile_abort, and on SIGINT/SIGTERM/SIGHUP while open (where the
 * program left those signals at their default action) the temp file is removed. */
typedef struct frugal_outfile frugal_outfile;

/* NULL with err set (FRUGAL_E_IO naming the file and the reason, FRUGAL_E_NOMEM). */
frugal_outfile *frugal_outfile_open(const char *path, frugal_error *err);
/* Append n bytes; FRUGAL_E_IO naming the temp file on failure (then abort it). */
int frugal_outfile_write(frugal_outfile *f, const void *p, size_t n, frugal_error *err);
/* Sync, close and rename into place; frees f whatever the outcome (on failure
 * nothing is left behind). */
int frugal_outfile_commit(frugal_outfile *f, frugal_error *err);
/* Remove the temp file and free f (NULL is fine). */
void frugal_outfile_abort(frugal_outfile *f);

/* IEEE half <-> float rows (round to nearest even), for tools storing compact floats. */
void frugal_f32_to_f16_row(const float *x, uint16_t *y, size_t n);
void frugal_f16_to_f32_row(const uint16_t *x, float *y, size_t n);

/* ---------------------------------------------------------------- safety policy */

/* Limits that protect a weak machine (0 everywhere: no limit). Above a temperature,
 * utilisation or power limit generation is throttled: after each decode step it
 * pauses so that computing takes `duty` of the time; the throttle lifts when every
 * reading is back below its limit less a hysteresis margin (5 C, 5 points, 10 %).
 * Short of memory (room below min_free, or PSI above max_psi) the context degrades
 * one step per poll, in this order, and undoes the steps in reverse when the room
 * has recovered: 1 drop the layer streamer's prefetch window, 2 shrink idle
 * sequences' KV cache, 3 stream more layers (a lower resident budget), 4 reduce the
 * batch. A step that has nothing to act on in a context is still taken and logged
 * ("nothing to do") so the order stays fixed. Each step and each throttle change is
 * logged once on stderr with the reading that caused it. */
typedef struct frugal_safety_policy {
    double max_temp;       /* CPU temperature, degrees C */
    double max_gpu_temp;   /* GPU temperature (NVML), degrees C */
    double max_util;       /* whole-machine CPU utilisation, percent */
    double max_gpu_util;   /* GPU utilisation (NVML), percent */
    double max_power;      /* watts: RAPL CPU package + GPU */
    uint64_t min_free;     /* bytes of memory room to keep (MemAvailable, cgroup room) */
    double max_psi;        /* memory pressure, PSI "some avg10" percent */
    double duty;           /* share of time spent computing while throttled, (0, 1]; default 0.5 */
    int interval_ms;       /* poll period of the monitor thread, 10..60000; default 1000 */
    int verbose;           /* also say which monitors are unavailable (one line each) */
} frugal_safety_policy;

void frugal_safety_policy_default(frugal_safety_policy *p);

/* Readings (NaN or -1: unavailable) and what the policy did since it was set. */
typedef struct frugal_readings {
    double cpu_temp_c, cpu_freq_mhz, cpu_util_pct, cpu_watts, psi_some_avg10;
    int64_t throttle_count;              /* CPU thermal throttle events (counter) */
    int64_t mem_available, cgroup_limit, cgroup_usage, mem_room;  /* bytes */
    double gpu_temp_c, gpu_util_pct, gpu_watts;
    int64_t gpu_mem_used, gpu_mem_total;
    /* summaries */
    double peak_cpu_temp_c, peak_gpu_temp_c;  /* NaN: never read */
    double avg_watts;                    /* mean of the power readings (CPU + GPU) */
    double throttled_s;                  /* time spent paused by the throttle */
    double throttled_step_s;             /* decode time while throttled */
    int throttling;                      /* 1 while the throttle is on */
    int degrade_level;                   /* 0..4, steps applied now */
    uint64_t n_throttle_on;              /* times the throttle engaged */
    uint64_t n_degrade;                  /* degrade steps taken */
    uint64_t n_recover;                  /* degrade steps undone */
    uint64_t n_polls;
    double poll_cpu_s, poll_wall_s;      /* monitor thread CPU time, and its lifetime */
    /* the Vulkan device while layers run there (-ngl), -1 otherwise: device memory frugal
     * holds and its budget (--vram, else the device's memory); the driver's budget for
     * this process on the device-local heap and its usage there (VK_EXT_memory_budget,
     * which counts other processes' allocations; -1 where the driver lacks it) */
    int64_t vk_mem_used, vk_mem_budget, vk_heap_budget, vk_heap_usage;
} frugal_readings;

/* Watch the machine while ctx generates (frugal_generate, the server's batches):
 * starts a monitor thread polling every p->interval_ms. p NULL: stop watching (the
 * degrade steps are undone). FRUGAL_SYSFS_ROOT replaces "/" for every file read.
 * Errors: FRUGAL_E_INVALID_ARG (a negative limit, duty outside (0, 1], interval
 * out of range), FRUGAL_E_NOMEM. */
int frugal_set_safety_policy(frugal_context *ctx, const frugal_safety_policy *p, frugal_error *err);

/* The latest readings of ctx's policy; FRUGAL_E_INVALID_ARG when none is set. */
int frugal_get_readings(frugal_context *ctx, frugal_readings *r, frugal_error *err);

/* Called by the decode loop between steps: applies pending degrade steps and
 * pauses when throttled. step_s: how long the step just taken lasted. Returns the
 * seconds paused. No policy: returns 0 at once. */
double frugal_safety_step(frugal_context *ctx, double step_s);

/* Concurrent sequences the server should admit now, out of n_slots: all of them
 * unless throttled (then ceil(n_slots * duty)) or degraded to step 4 (then half). */
int frugal_safety_admit(frugal_context *ctx, int n_slots);

/* A standalone monitor (no context), for `frugal monitor`: read() fills r with
 * fresh readings each call (rates are since the previous call). */
typedef struct frugal_monitor frugal_monitor;
frugal_monitor *frugal_monitor_new(int verbose);
void frugal_monitor_read(frugal_monitor *m, frugal_readings *r);
void frugal_monitor_free(frugal_monitor *m);

#ifdef __cplusplus
}
#endif
#endif
