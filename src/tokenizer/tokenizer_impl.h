/* tokenizer_impl.h - what the tokenizer's parts share (not public).
 *
 * tokenizer.c owns the vocabulary (loaded from GGUF), the lookups below, special
 * token handling and detokenization; spm.c and bpe.c encode one fragment of plain
 * text (special tokens already split out) and append ids to a growable vector. */
#ifndef FRUGAL_TOKENIZER_IMPL_H
#define FRUGAL_TOKENIZER_IMPL_H

#include "tokenizer/tokenizer.h"

/* llama.cpp token types as stored in tokenizer.ggml.token_type */
enum {
    FR_TOKTYPE_UNDEFINED = 0, FR_TOKTYPE_NORMAL = 1, FR_TOKTYPE_UNKNOWN = 2,
    FR_TOKTYPE_CONTROL = 3, FR_TOKTYPE_USER_DEFINED = 4, FR_TOKTYPE_UNUSED = 5,
    FR_TOKTYPE_BYTE = 6,
};

typedef struct fr_tokvec {
    int32_t *ids;
    size_t n, cap;
} fr_tokvec;

/* Append one id; FRUGAL_OK or FRUGAL_E_NOMEM. */
int fr_tokvec_push(fr_tokvec *v, int32_t id);

/* Id of the token whose text is exactly s[0..len), or -1. */
int32_t fr_tok_find(const fr_tokenizer *t, const char *s, size_t len);
/* Rank of the merge "a b" (tokenizer.ggml.merges index), or -1 if no such merge. */
int fr_tok_merge_rank(const fr_tokenizer *t, const char *a, size_t alen, const char *b, size_t blen);
/* Text and score of a token (id must be valid). */
const char *fr_tok_text(const fr_tokenizer *t, int32_t id, size_t *len);
float fr_tok_score(const fr_tokenizer *t, int32_t id);
int fr_tok_type(const fr_tokenizer *t, int32_t id);
/* The pre-tokenizer chosen from tokenizer.ggml.pre (bpe.c's enum; 0 = default). */
int fr_tok_pre(const fr_tokenizer *t);
bool fr_tok_add_space_prefix(const fr_tokenizer *t);
int32_t fr_tok_unk(const fr_tokenizer *t);

/* Map a tokenizer.ggml.pre value to bpe.c's pre-tokenizer id; -1 if unknown. */
int fr_bpe_pre_from_name(const char *name, size_t len);

/* Encode a plain-text fragment, appending ids. FRUGAL_OK or an error code. */
int fr_spm_encode(const fr_tokenizer *t, const char *text, size_t len, fr_tokvec *out);
int fr_bpe_encode(const fr_tokenizer *t, const char *text, size_t len, fr_tokvec *out);

/* GPT-2 byte-level mapping: the UTF-8 text (1-2 bytes) of the code point standing for
 * byte b, and the inverse (decode a token's text back to bytes; returns bytes written
 * or -1 if a code point is not part of the mapping). */
size_t fr_bpe_byte_to_utf8(uint8_t b, char out[4]);
int fr_bpe_text_to_bytes(const char *s, size_t len, char *out, size_t out_cap);

#endif
