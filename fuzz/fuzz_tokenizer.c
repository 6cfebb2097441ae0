/* fuzz_tokenizer.c - libFuzzer target: arbitrary bytes -> token ids -> text, for
 * every tokenizer kind on the shared vocabularies (SentencePiece: llama-spm,
 * phi-3; byte-level BPE with the pre-tokenizers of gpt-2, deepseek-coder, mpt,
 * starcoder).
 *
 * The first input byte picks the vocabulary and the special-token flags; the rest
 * is the text. Checked: tokenization returns ids inside the vocabulary and
 * agrees with itself when asked for the exact count; every piece renders;
 * detokenizing succeeds. For byte-level BPE, text that is valid UTF-8 must come
 * back byte for byte (those tokenizers are lossless; SentencePiece normalizes
 * spaces, so only the first checks apply to it), unless it holds a space before
 * ? ! . , or ' (llama.cpp's clean_up_tokenization_spaces, which frugal follows,
 * removes those spaces when detokenizing for most BPE vocabularies), or a byte that no token of
 * the vocabulary holds (starcoder and mpt have none for 0xF1 or 0xF5..0xFF: such a byte is
 * dropped, as llama.cpp drops it; found by this target). Seeds: fuzz/seeds.sh (the
 * shared *.inp test inputs and lines of the shared texts). */
#include "fuzz_util.h"

#include <string.h>

static const char *const k_vocabs[] = {
    "vocab/ggml-vocab-llama-spm.gguf", "vocab/ggml-vocab-phi-3.gguf",   "vocab/ggml-vocab-gpt-2.gguf",
    "vocab/ggml-vocab-deepseek-coder.gguf", "vocab/ggml-vocab-mpt.gguf", "vocab/ggml-vocab-starcoder.gguf",
};
#define N_VOCABS ((int)(sizeof k_vocabs / sizeof k_vocabs[0]))
static frugal_model *g_m[N_VOCABS];
static int g_lossless[N_VOCABS] = {0, 0, 1, 1, 1, 1};
static uint8_t g_has_byte[N_VOCABS][256]; /* 1: some token's piece is exactly this byte */

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    for (int i = 0; i < N_VOCABS; i++) {
        g_m[i] = fz_vocab(k_vocabs[i]);
        frugal_model_info info;
        frugal_model_get_info(g_m[i], &info);
        for (int t = 0; t < info.n_vocab; t++) {
            char piece[8];
            if (frugal_token_to_piece(g_m[i], t, piece, (int)sizeof piece, 0) == 1)
                g_has_byte[i][(uint8_t)piece[0]] = 1;
        }
    }
    return 0;
}

/* 1 when every byte of s[0..n) has a token of its own in vocabulary v. */
static int bytes_covered(int v, const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n; i++) if (!g_has_byte[v][s[i]]) return 0;
    return 1;
}

/* 1 when s[0..n) has a space that detokenizing may clean up. */
static int cleanable(const uint8_t *s, size_t n) {
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == ' ' && strchr("?!.,'", s[i + 1]) && s[i + 1]) return 1;
    return 0;
}

/* 1 when s[0..n) is valid UTF-8 without NUL bytes. */
static int utf8_ok(const uint8_t *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint8_t c = s[i];
        size_t l = c == 0 ? 0 : c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++) if ((s[i + k] & 0xC0) != 0x80) return 0;
        if (l == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F))) return 0;
        if (l == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || (c == 0xF4 && s[i + 1] > 0x8F))) return 0;
        i += l;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1 || size > 4096) return 0;
    const int v = data[0] % N_VOCABS, add_special = (data[0] >> 4) & 1, parse_special = (data[0] >> 5) & 1;
    const frugal_model *m = g_m[v];
    const char *text = (const char *)data + 1;
    const size_t len = size - 1;
    frugal_model_info info;
    frugal_model_get_info(m, &info);

    int cap = (int)len + 8;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return 0;
    int n = frugal_tokenize(m, text, len, add_special, parse_special, ids, cap);
    if (n < 0) abort(); /* len + 8 ids always suffice: each id covers at least one byte */
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= info.n_vocab) abort();
        char piece[512];
        int pl = frugal_token_to_piece(m, ids[i], piece, (int)sizeof piece, 1);
        if (pl < -(int)1e6 || pl > (int)sizeof piece) abort();
    }
    /* asked with exactly n slots it must give the same ids; with n - 1, say "n" */
    if (n > 0) {
        int32_t *again = malloc((size_t)n * sizeof *again);
        if (again) {
            if (frugal_tokenize(m, text, len, add_special, parse_special, again, n) != n) abort();
            if (memcmp(again, ids, (size_t)n * sizeof *ids) != 0) abort();
            if (frugal_tokenize(m, text, len, add_special, parse_special, again, n - 1) != -n) abort();
            free(again);
        }
    }
    size_t ocap = len * 4 + 64;
    char *out = malloc(ocap);
    if (out) {
        int ol = frugal_detokenize(m, ids, n, out, (int)ocap, 0, 0);
        if (ol < 0 && -ol > (int)(64 * 1024 * 1024)) abort();
        if (g_lossless[v] && !add_special && !parse_special && ol >= 0 && utf8_ok(data + 1, len) && !cleanable(data + 1, len) &&
            bytes_covered(v, data + 1, len) &&
            ((size_t)ol != len || memcmp(out, text, len) != 0))
            abort();
        free(out);
    }
    free(ids);
    return 0;
}
