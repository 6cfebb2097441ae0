/* convert.h - `frugal convert`: a Hugging Face model folder (config.json,
 * *.safetensors, tokenizer files) to a GGUF file, the way llama.cpp's
 * convert_hf_to_gguf.py writes it, streaming one tensor at a time.
 *
 * Built as its own library (libfrugal_convert) because it reads JSON with cJSON,
 * which the core library does not depend on. */
#ifndef FRUGAL_CONVERT_H
#define FRUGAL_CONVERT_H

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

typedef struct fr_convert_params {
    const char *in_dir;     /* the HF folder */
    const char *out_path;   /* the GGUF to write (temp file beside it, renamed) */
    const char *type;       /* NULL: the source's float type (f32/f16/bf16); "f32", "f16",
                               "bf16"; or any frugal_quantize type (quantized on the way) */
    const char *policy;     /* "auto" with budget_bytes: frugal_quantize's policy */
    uint64_t budget_bytes;
    int n_threads;          /* quantization threads (<= 0: all cores) */
    /* called after each tensor: done/total bytes of output tensor data, what = name */
    void (*on_progress)(void *user, uint64_t done, uint64_t total, const char *what);
    void *progress_user;
    FILE *log;              /* notes (NULL: none) */
} fr_convert_params;

typedef struct fr_convert_stats {
    const char *arch;       /* GGUF architecture written (static string) */
    int n_tensors;
    uint64_t bytes_out;     /* tensor data bytes of the float file */
} fr_convert_stats;

/* Convert p->in_dir into p->out_path. Returns FRUGAL_OK, or an error with err naming
 * the file and the problem (missing config.json or tokenizer, an unsupported
 * architecture, a bad safetensors file, ...); then no output or temp file is left. */
int fr_convert(const fr_convert_params *p, fr_convert_stats *stats, fr_err *err);

#endif
