/* cv_internal.h - what the parts of the converter share: the plan of output tensors,
 * the family descriptions, and the tokenizer writer. */
#ifndef FRUGAL_CV_INTERNAL_H
#define FRUGAL_CV_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "convert/safetensors.h"
#include "core/error.h"
#include "core/types.h"
#include "gguf/gguf.h"

/* How an output tensor's rows are made from its source(s). */
enum {
    CV_X_NONE = 0,
    CV_X_PERMUTE = 1,   /* llama Q/K rows: rotate-half order -> interleaved (per head) */
    CV_X_TRANSPOSE = 2, /* GPT-2 Conv1D [in, out] -> [out, in] */
    CV_X_ADD1 = 4,      /* Gemma RMSNorm weights: w + 1 */
};

#define CV_MAX_SRC 512   /* experts stacked into one tensor */

typedef struct cv_tensor {
    char name[96];
    fr_type type;                /* output type */
    int n_dims;
    int64_t ne[4];               /* GGUF order */
    int n_src;                   /* 0: generated (gen) */
    const st_tensor *src[CV_MAX_SRC];
    int64_t rows;                /* rows taken from each source (Gemma3 trims token_embd) */
    unsigned xform;
    int perm_heads;              /* CV_X_PERMUTE: heads of this tensor */
    float *gen;                  /* generated F32 data (owned) */
} cv_tensor;

typedef struct cv_ctx cv_ctx;

/* A model family: its HF architecture names and how to describe it in GGUF. */
typedef struct cv_family {
    const char *hf_arch[6];
    const char *gguf_arch;
    unsigned flags;
    /* write the <arch>.* keys from config.json */
    int (*hparams)(cv_ctx *c, fr_err *err);
} cv_family;

enum {
    CV_F_PERMUTE_QK = 1,    /* llama: Q/K rows permuted */
    CV_F_NORM_PLUS1 = 2,    /* gemma: norm weights + 1 */
    CV_F_GEMMA_NORMS = 4,   /* gemma2/3: post-attention / pre/post-FFN norms */
    CV_F_SKIP_LM_HEAD = 8,  /* gemma 1/2: lm_head.weight is ignored */
    CV_F_TRIM_VOCAB = 16,   /* gemma3: token_embd rows cut to the tokenizer's size */
    CV_F_SPM_FIRST = 32,    /* tokenizer.model preferred over tokenizer.json */
    CV_F_LLAMA_HF = 64,     /* a SentencePiece-style tokenizer.json is read as such */
};

struct cv_ctx {
    const char *dir;
    cJSON *config;               /* config.json (text_config merged in when present) */
    const cv_family *fam;
    st_model *st;
    gguf_writer *w;
    fr_type float_type;          /* type of the matrices in the float file */
    cv_tensor *t;
    int n_t, cap_t;
    int64_t n_vocab_tok;         /* tokens the tokenizer wrote (for CV_F_TRIM_VOCAB) */
    char key[128];               /* scratch for cv_key */
};

/* "<arch>.<suffix>" in c->key. */
const char *cv_key(cv_ctx *c, const char *suffix);

/* The family whose table lists config.json's architectures[0] (or model_type), or
 * NULL. */
const cv_family *cv_family_find(const cJSON *config);

/* Plan every output tensor from the safetensors (cv_tensors.c). */
int cv_plan(cv_ctx *c, fr_err *err);
/* Produce tensor i's bytes into dst (nbytes): the gguf_writer fill callback. */
int cv_fill(cv_ctx *c, int i, void *dst, size_t nbytes, fr_err *err);

/* Write the tokenizer.* keys (cv_vocab.c). */
int cv_vocab(cv_ctx *c, fr_err *err);

/* config.json lookups with transformers' defaults. */
bool cv_cfg_int(const cv_ctx *c, const char *key, int64_t *v);
bool cv_cfg_num(const cv_ctx *c, const char *key, double *v);

#endif
