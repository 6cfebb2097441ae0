/* tokenizer.h - text <-> token ids, bit-exact with llama.cpp's tokenizers.
 *
 * Two families, chosen by tokenizer.ggml.model:
 *   "llama": SentencePiece-style BPE over scores, "▁" for spaces, byte fallback
 *            (<0xNN> tokens), optional add_space_prefix.            -> spm.c
 *   "gpt2":  byte-level BPE over merge ranks, with a pre-tokenizer (regex split)
 *            chosen by tokenizer.ggml.pre.                           -> bpe.c
 * Shared parts (vocab loading from GGUF, special-token partitioning, detokenizing,
 * BOS/EOS handling) live in tokenizer.c. */
#ifndef FRUGAL_TOKENIZER_H
#define FRUGAL_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "gguf/gguf.h"

typedef struct fr_tokenizer fr_tokenizer;

/* Build from a file's tokenizer.* metadata. The tokenizer copies what it needs
 * (the file may be closed afterwards). Unknown tokenizer.ggml.model or .pre values
 * are FRUGAL_E_UNSUPPORTED errors that name the value. */
int fr_tokenizer_load(const gguf_file *f, fr_tokenizer **out, fr_err *err);
void fr_tokenizer_free(fr_tokenizer *t);

/* Same contract as frugal_tokenize / frugal_token_to_piece / frugal_detokenize. */
int fr_tokenize(const fr_tokenizer *t, const char *text, size_t len, bool add_special,
                bool parse_special, int32_t *out, int n_max);
int fr_token_to_piece(const fr_tokenizer *t, int32_t token, char *buf, int len, bool special);
int fr_detokenize(const fr_tokenizer *t, const int32_t *tokens, int n, char *buf, int len,
                  bool remove_special, bool unparse_special);

int fr_tokenizer_n_vocab(const fr_tokenizer *t);
int32_t fr_tokenizer_bos(const fr_tokenizer *t);  /* -1 if none */
int32_t fr_tokenizer_eos(const fr_tokenizer *t);
bool fr_tokenizer_add_bos(const fr_tokenizer *t);
bool fr_tokenizer_is_eog(const fr_tokenizer *t, int32_t token);

#endif
