/* test_tokenizer.c - tokenizer against llama.cpp's vocab test vectors and golden prompts.
 *
 * 1. A small synthetic SPM vocabulary written with the GGUF writer (runs without
 *    ../shared): merges by score, byte fallback, special tokens, BOS, buffers, errors.
 * 2. Every ../shared/vocab/ggml-vocab-*.gguf with .inp/.out: ids must match exactly
 *    (add_special = false, parse_special = false), plus decode round trips.
 * 3. Every ../shared/golden/<name>.json: tokenize(prompt, add_special, parse_special) must
 *    equal prompt_tokens. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

#ifdef FRUGAL_HAVE_CJSON
#include <cjson/cJSON.h>
#endif


static int32_t ids_buf[65536];

/* tokenize into ids_buf; returns count (or the negative/error value) */
static int tok(const fr_tokenizer *t, const char *s, size_t n, bool add, bool parse) {
    return fr_tokenize(t, s, n, add, parse, ids_buf, (int)(sizeof ids_buf / sizeof ids_buf[0]));
}

static fr_tokenizer *load_vocab(const char *path, fr_err *err) {
    gguf_file *f = NULL;
    fr_err_clear(err);
    if (gguf_open(path, &f, err) != FRUGAL_OK) return NULL;
    fr_tokenizer *t = NULL;
    fr_tokenizer_load(f, &t, err);
    gguf_close(f);   /* the tokenizer must not keep pointers into the file */
    return t;
}

/* ---------------------------------------------------------------- synthetic */

#define SP "\xe2\x96\x81"

static void test_synthetic(void) {
    const char *tmp = tu_tmpdir();
    char path[4096];
    snprintf(path, sizeof path, "%s/spm_vocab.gguf", tmp);

    /* ids: 0 <unk>, 1 <s>, 2 </s>, 3..5 bytes 0x41 'A', 0xC3, 0xA9, then pieces */
    const char *texts[] = { "<unk>", "<s>", "</s>", "<0x41>", "<0xC3>", "<0xA9>", SP, "a", "b", "c",
                            "ab", "bc", SP "a", SP "ab", "abc", "<tool>", "<|endoftext|>" };
    float scores[] = { 0, 0, 0, 0, 0, 0, -1, -2, -2, -2, -3, -1, -4, -5, -6, 0, 0 };
    int32_t types[] = { 2, 3, 3, 6, 6, 6, 1, 1, 1, 1, 1, 1, 1, 1, 1, 4, 4 };
    enum { N = sizeof texts / sizeof texts[0] };
    gguf_str strs[N];
    for (int i = 0; i < N; i++) strs[i] = (gguf_str){ texts[i], strlen(texts[i]) };

    gguf_writer *w = gguf_writer_new();
    CHECK(w != NULL);
    if (!w) return;
    gguf_writer_set_str(w, "general.architecture", "llama");
    gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
    gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", strs, N);
    gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, N);
    gguf_writer_set_arr(w, "tokenizer.ggml.token_type", GGUF_VT_INT32, types, N);
    gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    fr_err err = { 0 };
    int rc = gguf_writer_write(w, path, NULL, NULL, &err);
    CHECKF(rc == FRUGAL_OK, "write: %s", err.message);
    gguf_writer_free(w);

    fr_tokenizer *t = load_vocab(path, &err);
    CHECKF(t != NULL, "load synthetic: %s", err.message);
    if (t) {
        CHECK(fr_tokenizer_n_vocab(t) == N);
        CHECK(fr_tokenizer_bos(t) == 1 && fr_tokenizer_eos(t) == 2 && fr_tokenizer_add_bos(t));
        CHECK(fr_tokenizer_is_eog(t, 2) && fr_tokenizer_is_eog(t, 16) && !fr_tokenizer_is_eog(t, 7));
        /* " ab": ▁a (-4) vs ab (-3) vs ▁ab... the best pair first is "ab" (score -3 beats
         * ▁a's -4), then "▁"+"ab" = ▁ab */
        int n = tok(t, "ab", 2, false, false);
        CHECK(n == 1 && ids_buf[0] == 13);
        /* "abc": "bc" (-1) merges first; then ▁a (-4) beats "abc" (-6) */
        n = tok(t, "abc", 3, false, false);
        CHECKF(n == 2 && ids_buf[0] == 12 && ids_buf[1] == 11, "abc: n=%d %d %d", n, ids_buf[0], ids_buf[1]);
        /* byte fallback: 'A' -> <0x41>; "é" (C3 A9) -> two byte tokens */
        n = tok(t, "A\xc3\xa9", 3, false, false);
        CHECKF(n == 4 && ids_buf[0] == 6 && ids_buf[1] == 3 && ids_buf[2] == 4 && ids_buf[3] == 5, "bytes n=%d", n);
        /* add_special puts BOS first */
        n = tok(t, "ab", 2, true, false);
        CHECK(n == 2 && ids_buf[0] == 1 && ids_buf[1] == 13);
        CHECK(tok(t, "", 0, true, false) == 1 && ids_buf[0] == 1);
        CHECK(tok(t, "", 0, false, false) == 0);
        /* control text is only recognised with parse_special; user-defined always is */
        n = tok(t, "a</s>", 5, false, true);
        CHECK(n == 2 && ids_buf[0] == 12 && ids_buf[1] == 2);
        n = tok(t, "a</s>", 5, false, false);
        CHECK(n > 2);
        for (int i = 0; i < n; i++) CHECK(ids_buf[i] != 2);
        /* user-defined token split out; the text after it gets a space prefix again */
        n = tok(t, "a<tool>a", 8, false, false);
        CHECKF(n == 3 && ids_buf[0] == 12 && ids_buf[1] == 15 && ids_buf[2] == 12, "udef n=%d", n);
        /* buffer too small: negative count, nothing else changes */
        int32_t small[1];
        CHECK(fr_tokenize(t, "abc", 3, true, false, small, 1) == -3);
        CHECK(fr_tokenize(t, "abc", 3, true, false, NULL, 0) == -3);
        /* pieces */
        char buf[64];
        CHECK(fr_token_to_piece(t, 13, buf, sizeof buf, false) == 3 && memcmp(buf, " ab", 3) == 0);
        CHECK(fr_token_to_piece(t, 3, buf, sizeof buf, false) == 1 && buf[0] == 'A');
        CHECK(fr_token_to_piece(t, 1, buf, sizeof buf, false) == 0);
        CHECK(fr_token_to_piece(t, 1, buf, sizeof buf, true) == 3 && memcmp(buf, "<s>", 3) == 0);
        CHECK(fr_token_to_piece(t, 15, buf, sizeof buf, false) == 6);
        CHECK(fr_token_to_piece(t, 13, buf, 2, false) == -3);
        CHECK(fr_token_to_piece(t, 9999, buf, sizeof buf, false) == 0);
        /* detokenize: with remove_special the BOS goes, and (as in llama.cpp) the
         * leading space is then kept; without it, the first piece loses its space */
        int32_t seq[] = { 1, 13, 12, 2 };
        n = fr_detokenize(t, seq, 4, buf, sizeof buf, true, false);
        CHECKF(n == 5 && memcmp(buf, " ab a", 5) == 0 && buf[5] == '\0', "detok n=%d '%.*s'", n, n > 0 ? n : 0, buf);
        n = fr_detokenize(t, seq + 1, 2, buf, sizeof buf, false, false);
        CHECKF(n == 4 && memcmp(buf, "ab a", 4) == 0, "detok1 n=%d '%.*s'", n, n > 0 ? n : 0, buf);
        n = fr_detokenize(t, seq, 4, buf, sizeof buf, false, true);
        CHECKF(n == 12 && memcmp(buf, "<s> ab a</s>", 12) == 0, "detok2 n=%d '%.*s'", n, n > 0 ? n : 0, buf);
        CHECK(fr_detokenize(t, seq, 4, buf, 3, false, true) == -12);
        fr_tokenizer_free(t);
    }

    /* an unknown tokenizer model is refused, naming it */
    w = gguf_writer_new();
    if (w) {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "wordpiece-x");
        gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", strs, N);
        fr_err_clear(&err);
        gguf_writer_write(w, path, NULL, NULL, &err);
        gguf_writer_free(w);
        t = load_vocab(path, &err);
        CHECK(t == NULL && err.code == FRUGAL_E_UNSUPPORTED && strstr(err.message, "wordpiece-x"));
        fr_tokenizer_free(t);
    }
    /* missing token list, or a score array that is too short: format errors */
    w = gguf_writer_new();
    if (w) {
        gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
        fr_err_clear(&err);
        gguf_writer_write(w, path, NULL, NULL, &err);
        t = load_vocab(path, &err);
        CHECK(t == NULL && err.code == FRUGAL_E_FORMAT);
        gguf_writer_set_str_arr(w, "tokenizer.ggml.tokens", strs, N);
        gguf_writer_set_arr(w, "tokenizer.ggml.scores", GGUF_VT_FLOAT32, scores, 3);
        fr_err_clear(&err);
        gguf_writer_write(w, path, NULL, NULL, &err);
        t = load_vocab(path, &err);
        CHECK(t == NULL && err.code == FRUGAL_E_FORMAT);
        gguf_writer_free(w);
    }
}

/* ---------------------------------------------------------------- vocab vectors */

static const char SEP[] = "\n__ggml_vocab_test__\n";

static void print_escaped(const char *s, size_t n) {
    for (size_t i = 0; i < n && i < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else if (c < 32) fprintf(stderr, "\\x%02x", c);
        else fputc(c, stderr);
    }
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s:", label);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, " %d", ids[i]);
    fputc('\n', stderr);
}

static void test_vocab_file(const char *dir, const char *name) {
    char path[4096], pin[4200], pout[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    snprintf(pin, sizeof pin, "%s.inp", path);
    snprintf(pout, sizeof pout, "%s.out", path);
    size_t in_len = 0, out_len = 0;
    char *inp = tu_read_file(pin, &in_len), *outp = tu_read_file(pout, &out_len);
    if (!inp || !outp) {
        printf("%s: no .inp/.out, skipped\n", name);
        free(inp); free(outp);
        return;
    }
    fr_err err = { 0 };
    fr_tokenizer *t = load_vocab(path, &err);
    CHECKF(t != NULL, "%s: load failed: %s", name, err.message);
    if (!t) { free(inp); free(outp); return; }

    int n_cases = 0, n_pass = 0, n_shown = 0, n_rt = 0, n_rt_ok = 0;
    size_t pos = 0;
    char *oline = outp;
    int32_t *got = ids_buf;
    int32_t expect[4096];
    char *dec = tu_malloc(1 << 20);
    while (pos < in_len) {
        const char *next = memmem(inp + pos, in_len - pos, SEP, sizeof SEP - 1);
        size_t clen = next ? (size_t)(next - (inp + pos)) : in_len - pos;
        const char *cs = inp + pos;
        pos = next ? pos + clen + sizeof SEP - 1 : in_len;

        /* expected ids: the next line of .out */
        int ne = 0;
        char *eol = oline ? strchr(oline, '\n') : NULL;
        if (eol) *eol = '\0';
        for (char *p = oline; p && *p && ne < 4096;) {
            char *endp;
            long v = strtol(p, &endp, 10);
            if (endp == p) break;
            expect[ne++] = (int32_t)v;
            p = endp;
        }
        CHECKF(oline != NULL, "%s: .out has fewer lines than cases", name);
        oline = eol ? eol + 1 : NULL;
        n_cases++;

        int n = tok(t, cs, clen, false, false);
        bool ok = n == ne && (n <= 0 || memcmp(got, expect, (size_t)n * sizeof *got) == 0);
        if (ok) n_pass++;
        else if (n_shown++ < 3) {
            fprintf(stderr, "  %s case %d: input '", name, n_cases - 1);
            print_escaped(cs, clen);
            fputs("'\n", stderr);
            print_ids("expected", expect, ne);
            print_ids("got     ", got, n > 0 ? n : 0);
        }
        /* round trip: the concatenated pieces give back the input (SPM: after the
         * added leading space is dropped by detokenize) */
        if (n > 0) {
            int d = fr_detokenize(t, got, n, dec, 1 << 20, false, false);
            size_t pl = 0;
            char piece[1024];
            for (int i = 0; i < n; i++) {
                int r = fr_token_to_piece(t, got[i], piece, sizeof piece, false);
                if (r > 0 && pl + (size_t)r < (1 << 19)) { memcpy(dec + (1 << 19) + pl, piece, (size_t)r); pl += (size_t)r; }
            }
            const char *cat = dec + (1 << 19);
            bool spm_prefix = fr_tok_add_space_prefix(t);
            bool rt = d >= 0 && (size_t)d == clen && memcmp(dec, cs, clen) == 0;
            bool cat_ok = spm_prefix ? (pl == clen + 1 && cat[0] == ' ' && memcmp(cat + 1, cs, clen) == 0)
                                     : (pl == clen && memcmp(cat, cs, clen) == 0);
            n_rt++;
            if (rt || cat_ok) n_rt_ok++;
            else if (n_shown++ < 3) {
                fprintf(stderr, "  %s case %d: round trip differs: '", name, n_cases - 1);
                print_escaped(dec, d > 0 ? (size_t)d : 0);
                fputs("'\n", stderr);
            }
        }
    }
    printf("%s: pass %d/%d, round trip %d/%d\n", name, n_pass, n_cases, n_rt_ok, n_rt);
    CHECKF(n_cases > 0 && n_pass == n_cases, "%s: %d/%d cases match llama.cpp", name, n_pass, n_cases);
    CHECKF(n_rt_ok == n_rt, "%s: %d/%d round trips", name, n_rt_ok, n_rt);

    if (strstr(name, "llama-spm")) {
        /* parse_special: "<s>" is BOS; without it the text is tokenized literally */
        CHECK(tok(t, "<s>", 3, false, true) == 1 && ids_buf[0] == 1);
        int n = tok(t, "<s>", 3, false, false);
        CHECK(n > 1 && ids_buf[0] != 1);
        n = tok(t, "Hello", 5, true, false);
        int32_t first = n > 0 ? ids_buf[0] : -1;
        int m = tok(t, "Hello", 5, false, false);
        CHECK(first == 1 && n == m + 1);
        CHECK(fr_tokenize(t, "Hello world", 11, true, false, NULL, 0) == -(tok(t, "Hello world", 11, true, false)));
        CHECK(fr_tokenizer_is_eog(t, fr_tokenizer_eos(t)));
        /* random bytes, invalid UTF-8 included, survive encode -> decode exactly thanks
         * to byte fallback. Left out: 0xE2 (a literal "▁" decodes as a space) and ' '
         * (after a truncated lead byte, the escaped space's bytes are swallowed into
         * that symbol and come back as "▁" bytes - llama.cpp does the same) */
        uint64_t rng = 42;
        int n_bad = 0;
        for (int it = 0; it < 300; it++) {
            char s[96];
            size_t sl = (size_t)(tu_rand_u64(&rng) % sizeof s);
            for (size_t i = 0; i < sl; i++) {
                s[i] = (char)(tu_rand_u64(&rng) & 0xFF);
                if ((uint8_t)s[i] == 0xE2 || s[i] == ' ') s[i] = 'x';
            }
            n = tok(t, s, sl, false, false);
            int d = n >= 0 ? fr_detokenize(t, ids_buf, n, dec, 1 << 20, false, false) : -1;
            if (d != (int)sl || memcmp(dec, s, sl) != 0) {
                if (n_bad++ < 2) {
                    fprintf(stderr, "  random bytes: '");
                    print_escaped(s, sl);
                    fprintf(stderr, "' -> '");
                    print_escaped(dec, d > 0 ? (size_t)d : 0);
                    fprintf(stderr, "'\n");
                    print_ids("ids", ids_buf, n > 0 ? n : 0);
                }
            }
        }
        CHECKF(n_bad == 0, "random bytes: %d/300 round trips failed", n_bad);
    }
    if (strstr(name, "gpt-2")) {
        /* clean_up_tokenization_spaces on decode: " ," loses its space */
        int n = tok(t, "Hello , world", 13, false, false);
        int d = n > 0 ? fr_detokenize(t, ids_buf, n, dec, 1 << 20, false, false) : -1;
        CHECKF(d == 12 && memcmp(dec, "Hello, world", 12) == 0, "gpt-2 clean spaces: %d", d);
    }
    free(dec);
    fr_tokenizer_free(t);
    free(inp);
    free(outp);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_vocab_dir(void) {
    const char *dir = tu_shared("vocab");
    if (!dir) {
        printf("SKIP part: ../shared/vocab absent\n");
        return;
    }
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    if (!d) return;
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, "ggml-vocab-", 11) == 0 && l > 5 && strcmp(e->d_name + l - 5, ".gguf") == 0)
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    CHECK(n > 0);
    for (int i = 0; i < n; i++) {
        test_vocab_file(dir, names[i]);
        free(names[i]);
    }
}

/* ---------------------------------------------------------------- bytes without a token */

/* fuzz_tokenizer's finding (session 2): starcoder's byte-level vocabulary has no token
 * for the byte 0xF1 (nor 0xC0, 0xC1, 0xF5..0xFF), so valid UTF-8 holding U+5F32B
 * (f1 9f 8c ab) cannot come back byte for byte. Like llama.cpp (a symbol missing from
 * the vocabulary falls back to its single bytes, and a byte without a token is
 * dropped) frugal drops exactly that byte: every other byte round-trips, nothing
 * crashes, the ids stay inside the vocabulary. */
static void test_uncovered_byte(void) {
    const char *dir = tu_shared("vocab");
    if (!dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/ggml-vocab-starcoder.gguf", dir);
    fr_err err = { 0 };
    fr_tokenizer *t = load_vocab(path, &err);
    if (!t) { printf("SKIP part: %s: %s\n", path, err.message); return; }
    uint8_t has[256] = { 0 };
    char piece[8];
    for (int i = 0; i < fr_tokenizer_n_vocab(t); i++)
        if (fr_token_to_piece(t, i, piece, sizeof piece, false) == 1) has[(uint8_t)piece[0]] = 1;
    CHECK(!has[0xF1] && has[0x9F] && has[0x07] && has[0xF0]);
    static const char in[] = "\x09\x0a  \x0a   \x07    w   @  \x0a\xf0\x9f\x9a\x82nmal) \xf0\x9f\x98\xb6"
                             "\xe2\x80\x8d\xf1\x9f\x8c\xab\xef\xb8\x8f (multipl";
    const size_t len = sizeof in - 1;
    CHECK(len == 54);
    int n = tok(t, in, len, false, false);
    CHECKF(n > 0, "starcoder: tokenize gave %d", n);
    for (int i = 0; i < n; i++) CHECK(ids_buf[i] >= 0 && ids_buf[i] < fr_tokenizer_n_vocab(t));
    char out[256], want[256];
    int d = fr_detokenize(t, ids_buf, n > 0 ? n : 0, out, sizeof out, false, false);
    size_t w = 0;
    for (size_t i = 0; i < len; i++) if (has[(uint8_t)in[i]]) want[w++] = in[i];
    CHECK(w == len - 1);
    CHECKF(d == (int)w && memcmp(out, want, w) == 0, "starcoder: %d bytes back, want the input less 0xF1 (%zu)", d, w);
    /* the same text without that code point round-trips whole */
    static const char ok_in[] = "\x09\x0a  \x0a   \x07    w   @  \x0a\xf0\x9f\x9a\x82nmal) \xf0\x9f\x98\xb6"
                                "\xe2\x80\x8d\xef\xb8\x8f (multipl";
    n = tok(t, ok_in, sizeof ok_in - 1, false, false);
    d = fr_detokenize(t, ids_buf, n > 0 ? n : 0, out, sizeof out, false, false);
    CHECK(n > 0 && d == (int)(sizeof ok_in - 1) && memcmp(out, ok_in, sizeof ok_in - 1) == 0);
    fr_tokenizer_free(t);
}

/* ---------------------------------------------------------------- golden prompts */

static void test_golden(void) {
#ifndef FRUGAL_HAVE_CJSON
    printf("SKIP part: golden prompts need cJSON\n");
#else
    const char *gdir = tu_shared("golden");
    const char *mdir = tu_shared("models");
    if (!gdir || !mdir) {
        printf("SKIP part: ../shared/golden or models absent\n");
        return;
    }
    char gdir_c[4096], mdir_c[4096];
    snprintf(gdir_c, sizeof gdir_c, "%s", gdir);
    snprintf(mdir_c, sizeof mdir_c, "%s", mdir);
    DIR *d = opendir(gdir_c);
    CHECK(d != NULL);
    if (!d) return;
    struct dirent *e;
    int n_files = 0, n_ok = 0;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json") != 0) continue;
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", gdir_c, e->d_name);
        char *js = tu_read_file(path, NULL);
        cJSON *root = js ? cJSON_Parse(js) : NULL;
        free(js);
        CHECKF(root != NULL, "%s: bad JSON", e->d_name);
        if (!root) continue;
        const cJSON *jm = cJSON_GetObjectItemCaseSensitive(root, "model");
        const cJSON *jp = cJSON_GetObjectItemCaseSensitive(root, "prompt");
        const cJSON *jt = cJSON_GetObjectItemCaseSensitive(root, "prompt_tokens");
        CHECKF(cJSON_IsString(jm) && cJSON_IsString(jp) && cJSON_IsArray(jt), "%s: fields", e->d_name);
        if (!cJSON_IsString(jm) || !cJSON_IsString(jp) || !cJSON_IsArray(jt)) { cJSON_Delete(root); continue; }
        snprintf(path, sizeof path, "%s/%s", mdir_c, jm->valuestring);
        fr_err err = { 0 };
        fr_tokenizer *t = load_vocab(path, &err);
        n_files++;
        CHECKF(t != NULL, "%s: load %s: %s", e->d_name, jm->valuestring, err.message);
        if (t) {
            const char *prompt = jp->valuestring;
            int n = tok(t, prompt, strlen(prompt), true, true);
            int ne = cJSON_GetArraySize(jt);
            bool ok = n == ne;
            for (int i = 0; ok && i < ne; i++)
                ok = cJSON_GetArrayItem(jt, i)->valueint == ids_buf[i];
            if (ok) n_ok++;
            else {
                fprintf(stderr, "  golden %s: prompt '", e->d_name);
                print_escaped(prompt, strlen(prompt));
                fputs("'\n", stderr);
                int32_t ex[512];
                for (int i = 0; i < ne && i < 512; i++) ex[i] = cJSON_GetArrayItem(jt, i)->valueint;
                print_ids("expected", ex, ne < 512 ? ne : 512);
                print_ids("got     ", ids_buf, n > 0 ? n : 0);
            }
            CHECKF(ok, "%s: prompt tokens differ", e->d_name);
            fr_tokenizer_free(t);
        }
        cJSON_Delete(root);
    }
    closedir(d);
    printf("golden prompts: pass %d/%d\n", n_ok, n_files);
#endif
}

int main(void) {
    test_synthetic();
    if (!tu_shared("vocab") && !tu_shared("golden")) {
        if (tu_failures) return tu_finish("test_tokenizer");
        printf("note: ../shared absent, only the synthetic vocabulary was tested\n");
    }
    test_vocab_dir();
    test_uncovered_byte();
    test_golden();
    return tu_finish("test_tokenizer");
}
