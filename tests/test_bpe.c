/* test_bpe.c - byte-level BPE: GPT-2 byte mapping, pre-tokenizer splits, the regex
 * engine against the hand-written splitters, BPE merge order, and (when ../shared is
 * present) llama.cpp's vocab test vectors and golden prompts for GPT-2 vocabularies.
 *
 * The vocabulary lookups (fr_tok_find, fr_tok_merge_rank, ...) normally live in
 * tokenizer.c. This test provides its own weak versions over a small in-test
 * vocabulary (loaded from a GGUF's tokenizer.* arrays by a mini reader below), so the
 * BPE side can be checked on its own: tests/test_tokenizer.c covers the full path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

#ifdef FRUGAL_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

int fr_bpe_pre_split_bytes(int pre, const char *text, size_t len, size_t **lens, size_t *n, fr_err *err);

/* ---------- a tiny vocabulary standing in for tokenizer.c ---------- */

typedef struct { char *key; size_t klen; int32_t val; } hent;
typedef struct { hent *v; size_t cap, n; } hmap;

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static void hm_put(hmap *m, const char *k, size_t kl, int32_t val) {
    if ((m->n + 1) * 2 > m->cap) {
        hmap nm = {tu_calloc(m->cap ? m->cap * 2 : 1024, sizeof(hent)), m->cap ? m->cap * 2 : 1024, 0};
        for (size_t i = 0; i < m->cap; i++)
            if (m->v[i].key) {
                size_t j = fnv(m->v[i].key, m->v[i].klen) & (nm.cap - 1);
                while (nm.v[j].key) j = (j + 1) & (nm.cap - 1);
                nm.v[j] = m->v[i];
                nm.n++;
            }
        free(m->v);
        *m = nm;
    }
    size_t j = fnv(k, kl) & (m->cap - 1);
    while (m->v[j].key) {
        if (m->v[j].klen == kl && !memcmp(m->v[j].key, k, kl)) return;  /* first wins */
        j = (j + 1) & (m->cap - 1);
    }
    m->v[j].key = tu_malloc(kl + 1);
    memcpy(m->v[j].key, k, kl);
    m->v[j].klen = kl;
    m->v[j].val = val;
    m->n++;
}

static int32_t hm_get(const hmap *m, const char *k, size_t kl) {
    if (!m->cap) return -1;
    size_t j = fnv(k, kl) & (m->cap - 1);
    while (m->v[j].key) {
        if (m->v[j].klen == kl && !memcmp(m->v[j].key, k, kl)) return m->v[j].val;
        j = (j + 1) & (m->cap - 1);
    }
    return -1;
}

static void hm_free(hmap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->v[i].key);
    free(m->v);
    memset(m, 0, sizeof *m);
}

struct fr_tokenizer {
    hmap tokens, merges;
    int pre;
    /* user-defined tokens (type 4), longest first: llama.cpp splits them out of the
     * text before BPE even without parse_special (tokenizer.c's job; emulated here) */
    char **ud;
    size_t *ud_len, n_ud;
};

__attribute__((weak)) int32_t fr_tok_find(const fr_tokenizer *t, const char *s, size_t len) {
    return hm_get(&t->tokens, s, len);
}

__attribute__((weak)) int fr_tok_merge_rank(const fr_tokenizer *t, const char *a, size_t alen,
                                            const char *b, size_t blen) {
    char buf[512];
    if (alen + blen + 1 > sizeof buf) return -1;
    memcpy(buf, a, alen);
    buf[alen] = ' ';
    memcpy(buf + alen + 1, b, blen);
    return hm_get(&t->merges, buf, alen + blen + 1);
}

__attribute__((weak)) int fr_tok_pre(const fr_tokenizer *t) { return t->pre; }

__attribute__((weak)) int fr_tokvec_push(fr_tokvec *v, int32_t id) {
    if (v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 16;
        int32_t *ni = realloc(v->ids, nc * sizeof *ni);
        if (!ni) return FRUGAL_E_NOMEM;
        v->ids = ni;
        v->cap = nc;
    }
    v->ids[v->n++] = id;
    return FRUGAL_OK;
}

static void tok_add(fr_tokenizer *t, const char *s, int32_t id) { hm_put(&t->tokens, s, strlen(s), id); }
static void merge_add(fr_tokenizer *t, const char *s, int32_t rank) { hm_put(&t->merges, s, strlen(s), rank); }

/* ---------- byte mapping ---------- */

static void test_byte_mapping(void) {
    char seen[256][4];
    size_t seen_len[256];
    for (int b = 0; b < 256; b++) {
        char u[4];
        size_t n = fr_bpe_byte_to_utf8((uint8_t)b, u);
        CHECKF(n >= 1 && n <= 2, "byte %d -> %zu bytes", b, n);
        char back[4];
        int k = fr_bpe_text_to_bytes(u, n, back, sizeof back);
        CHECKF(k == 1 && (uint8_t)back[0] == b, "byte %d does not round-trip", b);
        for (int o = 0; o < b; o++)
            CHECKF(!(seen_len[o] == n && !memcmp(seen[o], u, n)), "bytes %d and %d share a glyph", o, b);
        memcpy(seen[b], u, n);
        seen_len[b] = n;
    }
    /* GPT-2's table: printable Latin-1 maps to itself; the 68 others take U+0100.. in
     * byte order, so ' ' (the 33rd) is U+0120 'Ġ', '\n' U+010A 'Ċ', 0xAD (the last) U+0143. */
    CHECK(fr_gpt2_byte_to_cpt(' ') == 0x120);
    CHECK(fr_gpt2_byte_to_cpt('\n') == 0x10A);
    CHECK(fr_gpt2_byte_to_cpt(0) == 0x100);
    CHECK(fr_gpt2_byte_to_cpt(0x7F) == 0x121);
    CHECK(fr_gpt2_byte_to_cpt(0xAD) == 0x143);
    CHECK(fr_gpt2_byte_to_cpt('A') == 'A' && fr_gpt2_byte_to_cpt(0xE9) == 0xE9);
    /* inverse rejects code points outside the mapping */
    char out[8];
    CHECK(fr_bpe_text_to_bytes("\xc4\xa0" "a", 3, out, sizeof out) == 2 && out[0] == ' ' && out[1] == 'a');
    CHECK(fr_bpe_text_to_bytes("\xe2\x96\x81", 3, out, sizeof out) == -1);   /* U+2581 */
    CHECK(fr_bpe_text_to_bytes(" ", 1, out, sizeof out) == -1);              /* raw space */
    CHECK(fr_bpe_text_to_bytes("\xff", 1, out, sizeof out) == -1);           /* bad UTF-8 */
    CHECK(fr_bpe_text_to_bytes("ab", 2, out, 1) == -1);                      /* no room */
}

/* ---------- pre-tokenizer splits ---------- */

/* Split text with pre-tokenizer `name` and compare with the expected pieces (a
 * NULL-terminated list). */
static void expect_split(const char *name, const char *text, const char *const *want) {
    int pre = fr_bpe_pre_from_name(name, strlen(name));
    CHECKF(pre >= 0, "pre %s unknown", name);
    size_t *lens = NULL, n = 0;
    fr_err err = {0};
    int rc = fr_bpe_pre_split_bytes(pre, text, strlen(text), &lens, &n, &err);
    CHECKF(rc == FRUGAL_OK, "%s: split failed", name);
    size_t nw = 0;
    while (want[nw]) nw++;
    bool ok = rc == FRUGAL_OK && n == nw;
    size_t off = 0;
    for (size_t i = 0; ok && i < n; i++) {
        ok = lens[i] == strlen(want[i]) && !memcmp(text + off, want[i], lens[i]);
        off += lens[i];
    }
    if (!ok) {
        fprintf(stderr, "  %s split of \"%s\": got", name, text);
        off = 0;
        for (size_t i = 0; i < n; i++) { fprintf(stderr, " [%.*s]", (int)lens[i], text + off); off += lens[i]; }
        fputc('\n', stderr);
    }
    CHECKF(ok, "%s split of \"%s\"", name, text);
    free(lens);
}

#define SPLIT(name, text, ...) do { static const char *const w_[] = {__VA_ARGS__, NULL}; \
    expect_split(name, text, w_); } while (0)

static void test_splits(void) {
    /* GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
     * A single space joins the following word/number/symbol run; a whitespace run
     * followed by more text leaves its last character for the next piece. */
    SPLIT("gpt-2", "Hello world", "Hello", " world");
    SPLIT("gpt-2", "  \n\n  x", "  \n\n ", " x");          /* 6 spaces: 5 + " x" */
    SPLIT("gpt-2", "I'm 12345 ok", "I", "'m", " 12345", " ok");
    SPLIT("gpt-2", "I'M", "I", "'", "M");                  /* contractions are case-sensitive */
    SPLIT("gpt-2", "hi \xf0\x9f\x99\x82\xf0\x9f\x99\x82!", "hi", " \xf0\x9f\x99\x82\xf0\x9f\x99\x82!"); /* emoji = So */
    SPLIT("gpt-2", "\xe4\xbd\xa0\xe5\xa5\xbd \xe4\xb8\x96\xe7\x95\x8c", "\xe4\xbd\xa0\xe5\xa5\xbd", " \xe4\xb8\x96\xe7\x95\x8c");
    SPLIT("gpt-2", "e\xcc\x81x", "e", "\xcc\x81", "x");     /* U+0301 is Mn: neither L nor N */
    SPLIT("gpt-2", "a  ", "a", "  ");                      /* trailing run: \s+ takes it all */
    SPLIT("gpt-2", "x\t y", "x", "\t", " y");
    /* llama3: (?i:'s|...)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
     *         |\s*[\r\n]+|\s+(?!\S)|\s+
     * Any one non-letter/digit/newline may lead a letter run; digits go in threes;
     * whitespace up to the last newline is one piece. */
    SPLIT("llama3", "Hello world", "Hello", " world");
    SPLIT("llama3", "  \n\n  x", "  \n\n", " ", " x");
    SPLIT("llama3", "I'm 12345 ok", "I", "'m", " ", "123", "45", " ok");
    SPLIT("llama3", "I'M", "I", "'M");                     /* case-insensitive */
    SPLIT("llama3", "hi \xf0\x9f\x99\x82\xf0\x9f\x99\x82!", "hi", " \xf0\x9f\x99\x82\xf0\x9f\x99\x82!");
    SPLIT("llama3", "\xe4\xbd\xa0\xe5\xa5\xbd \xe4\xb8\x96\xe7\x95\x8c", "\xe4\xbd\xa0\xe5\xa5\xbd", " \xe4\xb8\x96\xe7\x95\x8c");
    SPLIT("llama3", "e\xcc\x81x", "e", "\xcc\x81x");        /* the mark leads the next letters */
    SPLIT("llama3", "a.\n\nb", "a", ".\n\n", "b");
    SPLIT("llama3", "(x", "(x");
    /* qwen2 runs its pattern through the regex engine: like llama3 but single digits */
    SPLIT("qwen2", "I'm 12345 ok", "I", "'m", " ", "1", "2", "3", "4", "5", " ok");
    SPLIT("qwen2", "  \n\n  x", "  \n\n", " ", " x");
    /* starcoder: digits split off first ("\p{N}"), then GPT-2 on every piece */
    SPLIT("starcoder", "ab 12c", "ab", " ", "1", "2", "c");
    /* deepseek-coder: [\r\n] | \s?\p{L}+ | \s?\p{P}+ | CJK runs | \p{N}, each on the
     * pieces of the previous one; unmatched stretches stay as they are */
    SPLIT("deepseek-coder", "a\nb 12!?", "a", "\n", "b", " ", "1", "2", "!?");
    /* CJK letters first join the space (\s?\p{L}+), then the CJK regex splits the run
     * out of that piece, leaving the space alone */
    SPLIT("deepseek-coder", "x \xe4\xbd\xa0\xe5\xa5\xbd", "x", " ", "\xe4\xbd\xa0\xe5\xa5\xbd");
    /* default: punctuation runs split out first, then GPT-2, then \p{N}+ takes the
     * digits from " 1234", then [0-9][0-9][0-9] splits "1234" into "123" "4" */
    SPLIT("default", "a,b 1234", "a", ",", "b", " ", "123", "4");
    /* empty input gives no pieces */
    size_t *lens = NULL, n = 7;
    CHECK(fr_bpe_pre_split_bytes(0, "", 0, &lens, &n, NULL) == FRUGAL_OK && n == 0);
    free(lens);
    CHECK(fr_bpe_pre_from_name("no-such-pre", 11) == -1);
}

/* Long inputs must neither overflow the stack nor fail for ordinary text; a
 * pathological one may fail cleanly (superbpe's (\d{3})+ lookahead on 20000 digits). */
static void test_long_inputs(void) {
    static const char *names[] = {"default", "llama3", "deepseek-llm", "deepseek-coder", "deepseek-v3",
        "falcon", "gpt-2", "qwen2", "poro-chat", "viking", "tekken", "chameleon", "gpt-4o",
        "superbpe", "bailingmoe", "seed-coder"};
    const size_t n = 20000;
    char *letters = tu_malloc(n + 1), *digits = tu_malloc(n + 1), *spaces = tu_malloc(n + 2);
    for (size_t i = 0; i < n; i++) { letters[i] = (char)('a' + (i % 7 == 3 ? 'B' - 'b' : 0)); digits[i] = '7'; spaces[i] = ' '; }
    letters[n] = digits[n] = 0;
    spaces[n] = 'x';
    spaces[n + 1] = 0;
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        int pre = fr_bpe_pre_from_name(names[k], strlen(names[k]));
        size_t *lens = NULL, np = 0, total = 0;
        int rc = fr_bpe_pre_split_bytes(pre, letters, n, &lens, &np, NULL);
        for (size_t i = 0; i < np; i++) total += lens[i];
        CHECKF(rc == FRUGAL_OK && total == n, "%s: long word rc=%d", names[k], rc);
        free(lens);
        rc = fr_bpe_pre_split_bytes(pre, spaces, n + 1, &lens, &np, NULL);
        CHECKF(rc == FRUGAL_OK, "%s: long space run rc=%d", names[k], rc);
        free(lens);
        rc = fr_bpe_pre_split_bytes(pre, digits, n, &lens, &np, NULL);
        CHECKF(rc == FRUGAL_OK || (rc == FRUGAL_E_UNSUPPORTED && !strcmp(names[k], "superbpe")),
               "%s: long number rc=%d", names[k], rc);
        free(lens);
    }
    free(letters);
    free(digits);
    free(spaces);
}

/* ---------- regex engine vs. the hand-written splitters ---------- */

/* Split with a regex the way std::regex_iterator does (no empty matches here). */
static size_t regex_split(const fr_regex *re, const uint32_t *txt, size_t n, size_t *lens) {
    size_t k = 0, last = 0, from = 0, ms, me;
    while (fr_regex_search(re, txt, n, from, false, &ms, &me) == 1 && me > ms) {
        if (ms > last) lens[k++] = ms - last;
        lens[k++] = me - ms;
        last = from = me;
    }
    if (last < n) lens[k++] = n - last;
    return k;
}

static void test_regex_vs_custom(void) {
    static const uint32_t alphabet[] = {
        'a', 'Z', 's', 'S', 'e', 'l', 'm', '1', '\'', ' ', ' ', '\n', '\r', '\t', '.', '!',
        0xE9, 0x663 /* Arabic-Indic 3 */, 0x1F642, 0x301, 0x3000, 0xA0, 0x85, 0x4F60, 0x1C, 0x378,
    };
    const size_t na = sizeof alphabet / sizeof alphabet[0];
    static const struct { const char *pre, *pattern; } cases[] = {
        {"gpt-2", "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"},
        {"llama3", "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    };
    uint64_t rng = 12345;
    for (size_t c = 0; c < 2; c++) {
        fr_regex *re = NULL;
        CHECK(fr_regex_compile(cases[c].pattern, true, &re, NULL) == FRUGAL_OK);
        if (!re) continue;
        int pre = fr_bpe_pre_from_name(cases[c].pre, strlen(cases[c].pre));
        int mismatches = 0;
        for (int iter = 0; iter < 3000; iter++) {
            uint32_t cp[24], txt[24];
            size_t n = 1 + tu_rand_u64(&rng) % 20;
            char utf8[24 * 4];
            size_t ul = 0;
            for (size_t i = 0; i < n; i++) {
                cp[i] = alphabet[tu_rand_u64(&rng) % na];
                ul += fr_utf8_encode(cp[i], utf8 + ul);
            }
            fr_regex_prepare_text(true, cp, txt, n);
            size_t want[48];
            size_t nw = regex_split(re, txt, n, want);
            /* convert code-point lengths to byte lengths */
            size_t off = 0;
            for (size_t i = 0; i < nw; i++) {
                size_t b = 0;
                char tmp[4];
                for (size_t j = off; j < off + want[i]; j++) b += fr_utf8_encode(cp[j], tmp);
                off += want[i];
                want[i] = b;
            }
            size_t *got = NULL, ng = 0;
            fr_bpe_pre_split_bytes(pre, utf8, ul, &got, &ng, NULL);
            if (ng != nw || (nw && memcmp(got, want, nw * sizeof *got))) mismatches++;
            free(got);
        }
        CHECKF(mismatches == 0, "%s: %d random strings split differently by regex and splitter",
               cases[c].pre, mismatches);
        fr_regex_free(re);
    }
}

/* ---------- regex engine details ---------- */

static void test_regex_engine(void) {
    fr_regex *re = NULL;
    uint32_t txt[16];
    size_t ms, me;
    /* ordered alternation: first alternative that matches wins, not the longest */
    CHECK(fr_regex_compile("a|ab", false, &re, NULL) == FRUGAL_OK);
    const uint32_t ab[] = {'a', 'b'};
    CHECK(fr_regex_search(re, ab, 2, 0, false, &ms, &me) == 1 && ms == 0 && me == 1);
    fr_regex_free(re);
    /* backtracking through a greedy repeat and a negative lookahead */
    CHECK(fr_regex_compile("\\s+(?!\\S)", false, &re, NULL) == FRUGAL_OK);
    const uint32_t sp[] = {' ', ' ', ' ', 'x'};
    CHECK(fr_regex_search(re, sp, 4, 0, false, &ms, &me) == 1 && ms == 0 && me == 2);
    fr_regex_free(re);
    /* {n,m}, $ and a positive lookahead inside a repeated group */
    CHECK(fr_regex_compile("(?=(\\d{3})+(?!\\d))", false, &re, NULL) == FRUGAL_OK);
    const uint32_t dg[] = {'1', '2', '3', '4'};
    CHECK(fr_regex_search(re, dg, 4, 0, false, &ms, &me) == 1 && ms == 1 && me == 1);
    CHECK(fr_regex_search(re, dg, 4, 1, true, &ms, &me) == 0);   /* empty only */
    fr_regex_free(re);
    CHECK(fr_regex_compile("\\s+$", false, &re, NULL) == FRUGAL_OK);
    const uint32_t tr[] = {' ', 'a', ' ', ' '};
    CHECK(fr_regex_search(re, tr, 4, 0, false, &ms, &me) == 1 && ms == 2 && me == 4);
    fr_regex_free(re);
    /* collapsed mode: \p{S} lacks '~' (llama.cpp's table), \p{L} covers é via 0xD2 */
    CHECK(fr_regex_compile("\\p{S}", true, &re, NULL) == FRUGAL_OK);
    const uint32_t sy[] = {'~', '+'};
    fr_regex_prepare_text(true, sy, txt, 2);
    CHECK(fr_regex_search(re, txt, 2, 0, false, &ms, &me) == 1 && ms == 1);
    fr_regex_free(re);
    CHECK(fr_regex_compile("[^\\s\\p{L}]+", true, &re, NULL) == FRUGAL_OK);
    const uint32_t mix[] = {0xE9, 0x3000, '1', 0x1F642, 'b'};
    fr_regex_prepare_text(true, mix, txt, 5);
    CHECK(fr_regex_search(re, txt, 5, 0, false, &ms, &me) == 1 && ms == 2 && me == 4);
    fr_regex_free(re);
    /* errors, never crashes */
    CHECK(fr_regex_compile("(a", false, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_compile("a)", false, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_compile("[a", false, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_compile("\\p{Han}", true, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_compile("\\p{L}\xc3\xa9", true, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_compile("a{3,1}", false, &re, NULL) == FRUGAL_E_UNSUPPORTED && !re);
    CHECK(fr_regex_wants_collapsed("x\\p{Lu}") && !fr_regex_wants_collapsed("[0-9]"));
}

/* ---------- BPE merges on a hand-made vocabulary ---------- */

static int encode(fr_tokenizer *t, const char *s, int32_t *ids, int max) {
    fr_tokvec v = {0};
    int rc = fr_bpe_encode(t, s, strlen(s), &v);
    int n = rc == FRUGAL_OK ? (int)v.n : -1;
    for (int i = 0; i < n && i < max; i++) ids[i] = v.ids[i];
    free(v.ids);
    return n;
}

static void test_merges(void) {
    fr_tokenizer t = {0};
    t.pre = fr_bpe_pre_from_name("gpt-2", 5);
    tok_add(&t, "a", 0); tok_add(&t, "b", 1); tok_add(&t, "c", 2);
    tok_add(&t, "ab", 3); tok_add(&t, "bc", 4); tok_add(&t, "abc", 5);
    tok_add(&t, "aa", 6); tok_add(&t, "\xc4\xa0", 7); tok_add(&t, "\xc4\xa0" "a", 8);
    tok_add(&t, "x", 9);  /* stands in for a raw byte token of 'x' */
    merge_add(&t, "b c", 0); merge_add(&t, "a b", 1); merge_add(&t, "a bc", 2);
    merge_add(&t, "a a", 3); merge_add(&t, "\xc4\xa0 a", 4);
    int32_t ids[16];
    /* lowest rank first: (b c) before (a b), then (a bc) */
    CHECK(encode(&t, "abc", ids, 16) == 1 && ids[0] == 5);
    /* equal ranks: left-most first, so "aaa" -> "aa" "a" */
    CHECK(encode(&t, "aaa", ids, 16) == 2 && ids[0] == 6 && ids[1] == 0);
    CHECK(encode(&t, "aaaa", ids, 16) == 2 && ids[0] == 6 && ids[1] == 6);
    /* a space is byte-mapped to U+0120 and joins the word */
    CHECK(encode(&t, " a", ids, 16) == 1 && ids[0] == 8);
    /* a symbol that is no token falls back to its raw single bytes' tokens; 'y' has
     * none and is dropped, as llama.cpp does */
    CHECK(encode(&t, "xy", ids, 16) == 1 && ids[0] == 9);
    CHECK(encode(&t, "", ids, 16) == 0);
    hm_free(&t.tokens);
    hm_free(&t.merges);
    /* rank order flipped: (a b) first, then nothing joins "ab" and "c" */
    fr_tokenizer t2 = {0};
    t2.pre = t.pre;
    tok_add(&t2, "a", 0); tok_add(&t2, "b", 1); tok_add(&t2, "c", 2);
    tok_add(&t2, "ab", 3); tok_add(&t2, "bc", 4);
    merge_add(&t2, "a b", 0); merge_add(&t2, "b c", 1);
    CHECK(encode(&t2, "abc", ids, 16) == 2 && ids[0] == 3 && ids[1] == 2);
    hm_free(&t2.tokens);
    hm_free(&t2.merges);
}

/* ---------- real vocabularies from ../shared ---------- */

typedef struct { FILE *f; bool bad; } rd;

static uint64_t rd_u(rd *r, int bytes) {
    uint8_t b[8] = {0};
    if (fread(b, 1, (size_t)bytes, r->f) != (size_t)bytes) r->bad = true;
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | b[i];
    return v;
}

static char *rd_str(rd *r, size_t *len) {
    uint64_t n = rd_u(r, 8);
    if (r->bad || n > (1u << 20)) { r->bad = true; return NULL; }
    char *s = tu_malloc(n + 1);
    if (fread(s, 1, n, r->f) != n) r->bad = true;
    s[n] = 0;
    *len = n;
    return s;
}

static void rd_skip(rd *r, uint32_t type) {
    static const int sz[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) { size_t l; free(rd_str(r, &l)); return; }
    if (type == 9) {
        uint32_t et = (uint32_t)rd_u(r, 4);
        uint64_t n = rd_u(r, 8);
        for (uint64_t i = 0; i < n && !r->bad; i++) rd_skip(r, et);
        return;
    }
    if (type > 12) { r->bad = true; return; }
    fseek(r->f, sz[type], SEEK_CUR);
}

static int by_len_desc(const void *a, const void *b) {
    size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static bool load_vocab_kv(const char *path, fr_tokenizer *t, int32_t *bos, char ***texts,
                          size_t **tlens, size_t *ntext, int32_t **types, size_t *ntypes);

/* Load tokens, merges, pre, BOS and the user-defined tokens from a GGUF into t. */
static bool load_vocab(const char *path, fr_tokenizer *t, int32_t *bos) {
    char **texts = NULL;
    size_t *tlens = NULL, ntext = 0, ntypes = 0;
    int32_t *types = NULL;
    bool ok = load_vocab_kv(path, t, bos, &texts, &tlens, &ntext, &types, &ntypes);
    if (ok && types && ntypes == ntext) {
        t->ud = tu_calloc(ntext + 1, sizeof *t->ud);
        for (size_t i = 0; i < ntext; i++)
            if (types[i] == FR_TOKTYPE_USER_DEFINED && texts[i] && tlens[i] == strlen(texts[i])) {
                t->ud[t->n_ud++] = texts[i];
                texts[i] = NULL;
            }
        qsort(t->ud, t->n_ud, sizeof *t->ud, by_len_desc);
        t->ud_len = tu_calloc(t->n_ud + 1, sizeof *t->ud_len);
        for (size_t i = 0; i < t->n_ud; i++) t->ud_len[i] = strlen(t->ud[i]);
    }
    for (size_t i = 0; i < ntext; i++) free(texts[i]);
    free(texts);
    free(tlens);
    free(types);
    return ok;
}

static void vocab_free(fr_tokenizer *t) {
    hm_free(&t->tokens);
    hm_free(&t->merges);
    for (size_t i = 0; i < t->n_ud; i++) free(t->ud[i]);
    free(t->ud);
    free(t->ud_len);
}

/* Encode like llama_tokenize(parse_special=false): user-defined tokens are cut out of
 * the text first (longest first, left to right), BPE runs on the rest. */
static int encode_with_ud(const fr_tokenizer *t, const char *s, size_t len, size_t ud_from, fr_tokvec *out) {
    for (size_t u = ud_from; u < t->n_ud; u++) {
        const char *hit = t->ud_len[u] ? memmem(s, len, t->ud[u], t->ud_len[u]) : NULL;
        if (!hit) continue;
        size_t pre = (size_t)(hit - s);
        int rc = encode_with_ud(t, s, pre, u + 1, out);
        if (rc == FRUGAL_OK) rc = fr_tokvec_push(out, fr_tok_find(t, t->ud[u], t->ud_len[u]));
        if (rc == FRUGAL_OK) rc = encode_with_ud(t, hit + t->ud_len[u], len - pre - t->ud_len[u], u, out);
        return rc;
    }
    return len ? fr_bpe_encode(t, s, len, out) : FRUGAL_OK;
}

static bool load_vocab_kv(const char *path, fr_tokenizer *t, int32_t *bos, char ***texts,
                          size_t **tlens, size_t *ntext, int32_t **types, size_t *ntypes) {
    rd r = {fopen(path, "rb"), false};
    if (!r.f) return false;
    *bos = -1;
    t->pre = -2;
    uint32_t magic = (uint32_t)rd_u(&r, 4);
    rd_u(&r, 4);
    rd_u(&r, 8);
    uint64_t nkv = rd_u(&r, 8);
    for (uint64_t i = 0; i < nkv && !r.bad && magic == 0x46554747u; i++) {
        size_t kl;
        char *key = rd_str(&r, &kl);
        uint32_t type = (uint32_t)rd_u(&r, 4);
        if (!key) break;
        bool toks = !strcmp(key, "tokenizer.ggml.tokens"), merges = !strcmp(key, "tokenizer.ggml.merges");
        if ((toks || merges) && type == 9) {
            uint32_t et = (uint32_t)rd_u(&r, 4);
            uint64_t n = rd_u(&r, 8);
            if (toks && n < (1u << 24)) {
                *texts = tu_calloc(n, sizeof **texts);
                *tlens = tu_calloc(n, sizeof **tlens);
                *ntext = n;
            }
            for (uint64_t j = 0; j < n && !r.bad && et == 8; j++) {
                size_t sl;
                char *s = rd_str(&r, &sl);
                if (s) hm_put(toks ? &t->tokens : &t->merges, s, sl, (int32_t)j);
                if (s && toks && *texts) { (*texts)[j] = s; (*tlens)[j] = sl; s = NULL; }
                free(s);
            }
        } else if (!strcmp(key, "tokenizer.ggml.token_type") && type == 9) {
            uint32_t et = (uint32_t)rd_u(&r, 4);
            uint64_t n = rd_u(&r, 8);
            if (et != 5 || n >= (1u << 24)) { r.bad = true; break; }
            *types = tu_calloc(n, sizeof **types);
            *ntypes = n;
            for (uint64_t j = 0; j < n && !r.bad; j++) (*types)[j] = (int32_t)rd_u(&r, 4);
        } else if (!strcmp(key, "tokenizer.ggml.pre") && type == 8) {
            size_t sl;
            char *s = rd_str(&r, &sl);
            if (s) t->pre = fr_bpe_pre_from_name(s, sl);
            free(s);
        } else if (!strcmp(key, "tokenizer.ggml.bos_token_id") && type == 4) {
            *bos = (int32_t)rd_u(&r, 4);
        } else {
            rd_skip(&r, type);
        }
        free(key);
    }
    fclose(r.f);
    return !r.bad && t->pre >= 0 && t->tokens.n > 0;
}

static void test_vocab_file(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", name);
    const char *p = tu_shared(rel);
    if (!p) { fprintf(stderr, "note: %s absent, skipped\n", rel); return; }
    char gguf[1024], inp[1040], outp[1040];
    snprintf(gguf, sizeof gguf, "%s", p);
    snprintf(inp, sizeof inp, "%s.inp", gguf);
    snprintf(outp, sizeof outp, "%s.out", gguf);
    fr_tokenizer t = {0};
    int32_t bos;
    bool ok = load_vocab(gguf, &t, &bos);
    CHECKF(ok, "cannot load %s", gguf);
    size_t il, ol;
    char *in = tu_read_file(inp, &il), *ex = tu_read_file(outp, &ol);
    CHECK(in && ex);
    int pass = 0, total = 0;
    if (ok && in && ex) {
        const char *sep = "\n__ggml_vocab_test__\n";
        char *s = in, *line = ex;
        for (;;) {
            char *e = strstr(s, sep);
            if (!e) break;
            *e = 0;
            char *nl = strchr(line, '\n');
            if (!nl) break;
            *nl = 0;
            int32_t want[4096];
            int nw = 0;
            for (char *q = line; *q && nw < 4096;) {
                char *end;
                long v = strtol(q, &end, 10);
                if (end == q) break;
                want[nw++] = (int32_t)v;
                q = end;
            }
            fr_tokvec v = {0};
            int rc = encode_with_ud(&t, s, strlen(s), 0, &v);
            bool same = rc == FRUGAL_OK && (int)v.n == nw && (nw == 0 || !memcmp(v.ids, want, (size_t)nw * 4));
            total++;
            pass += same;
            if (!same) {
                fprintf(stderr, "  %s: \"%s\"\n    want:", name, s);
                for (int i = 0; i < nw; i++) fprintf(stderr, " %d", want[i]);
                fprintf(stderr, "\n    got: ");
                for (size_t i = 0; i < v.n; i++) fprintf(stderr, " %d", v.ids[i]);
                fputc('\n', stderr);
            }
            free(v.ids);
            s = e + strlen(sep);
            line = nl + 1;
        }
    }
    fprintf(stderr, "vocab %s: %d/%d strings match\n", name, pass, total);
    CHECKF(total > 0 && pass == total, "vocab %s: %d/%d", name, pass, total);
    free(in);
    free(ex);
    vocab_free(&t);
}

static void test_golden(const char *model) {
#ifdef FRUGAL_HAVE_CJSON
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s.gguf", model);
    const char *p = tu_shared(rel);
    if (!p) { fprintf(stderr, "note: %s absent, skipped\n", rel); return; }
    fr_tokenizer t = {0};
    int32_t bos;
    CHECKF(load_vocab(p, &t, &bos), "cannot load %s", rel);
    for (int k = 1; k <= 3; k++) {
        snprintf(rel, sizeof rel, "golden/%s.p%d.json", model, k);
        const char *jp = tu_shared(rel);
        if (!jp) continue;
        size_t jl;
        char *js = tu_read_file(jp, &jl);
        cJSON *root = js ? cJSON_Parse(js) : NULL;
        const cJSON *prompt = cJSON_GetObjectItem(root, "prompt");
        const cJSON *toks = cJSON_GetObjectItem(root, "prompt_tokens");
        CHECKF(cJSON_IsString(prompt) && cJSON_IsArray(toks), "%s: bad json", rel);
        if (cJSON_IsString(prompt) && cJSON_IsArray(toks)) {
            int n = cJSON_GetArraySize(toks), first = 0;
            if (n > 0 && cJSON_GetArrayItem(toks, 0)->valueint == bos) first = 1;  /* BOS is not ours */
            fr_tokvec v = {0};
            int rc = encode_with_ud(&t, prompt->valuestring, strlen(prompt->valuestring), 0, &v);
            bool same = rc == FRUGAL_OK && (int)v.n == n - first;
            for (int i = 0; same && i < n - first; i++)
                same = v.ids[i] == cJSON_GetArrayItem(toks, i + first)->valueint;
            CHECKF(same, "%s: prompt tokens differ", rel);
            free(v.ids);
        }
        cJSON_Delete(root);
        free(js);
    }
    vocab_free(&t);
#else
    fprintf(stderr, "note: built without cJSON, golden prompts for %s skipped\n", model);
#endif
}

int main(void) {
    test_byte_mapping();
    test_splits();
    test_regex_engine();
    test_regex_vs_custom();
    test_long_inputs();
    test_merges();
    if (!tu_shared("vocab")) {
        fprintf(stderr, "note: ../shared absent: vocab vectors and golden prompts skipped\n");
    } else {
        test_vocab_file("gpt-2");
        test_vocab_file("starcoder");
        test_vocab_file("deepseek-coder");
        test_vocab_file("mpt");
        test_golden("synth-qwen2-q8_0");
        test_golden("synth-gpt2-tied-q8_0");
    }
    return tu_finish("test_bpe");
}
