/* bpe.c - GPT-2 style byte-level BPE (llama.cpp's llm_tokenizer_bpe).
 *
 * Encoding a fragment:
 *   1. pre-tokenize: the text is split into pieces by the regex list of the model's
 *      pre-tokenizer (tokenizer.ggml.pre). Each regex splits every piece produced by the
 *      previous one; text a regex does not match stays as a piece of its own. The GPT-2
 *      and llama3 patterns run through hand-written splitters equivalent to llama.cpp's
 *      (including their small deviations from the regex), the others through regex.c
 *      with llama.cpp's "collapsed" category emulation;
 *   2. each piece's UTF-8 bytes are mapped to GPT-2's printable code points;
 *   3. BPE: adjacent symbols are merged by merge rank (lowest first, left-most on ties);
 *   4. every final symbol is looked up; one that is not a token falls back to tokens for
 *      its single raw bytes, silently skipping bytes without one (as llama.cpp does). */
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

/* ---------- pre-tokenizer table ---------- */

enum {
    PRE_DEFAULT = 0, PRE_LLAMA3, PRE_DEEPSEEK_LLM, PRE_DEEPSEEK_CODER, PRE_DEEPSEEK3,
    PRE_FALCON, PRE_MPT, PRE_STARCODER, PRE_GPT2, PRE_REFACT, PRE_COMMAND_R, PRE_STABLELM2,
    PRE_QWEN2, PRE_OLMO, PRE_DBRX, PRE_SMAUG, PRE_PORO, PRE_CHATGLM4, PRE_VIKING, PRE_JAIS,
    PRE_TEKKEN, PRE_SMOLLM, PRE_CODESHELL, PRE_BLOOM, PRE_GPT3_FINNISH, PRE_EXAONE,
    PRE_CHAMELEON, PRE_MINERVA, PRE_GPT4O, PRE_SUPERBPE, PRE_TRILLION, PRE_GRANITE_DOCLING,
    PRE_BAILINGMOE, PRE_SEED_CODER, PRE_HUNYUAN, PRE_HUNYUAN_DENSE, PRE_GROK2, PRE_MINIMAX_M2,
    PRE_COUNT
};

/* tokenizer.ggml.pre names, as llama.cpp's vocab loader maps them. */
static const struct { const char *name; int pre; } k_names[] = {
    {"default", PRE_DEFAULT},
    {"llama3", PRE_LLAMA3}, {"llama-v3", PRE_LLAMA3}, {"llama-bpe", PRE_LLAMA3},
    {"falcon3", PRE_LLAMA3}, {"falcon-h1", PRE_LLAMA3}, {"pixtral", PRE_LLAMA3},
    {"midm-2.0", PRE_LLAMA3}, {"lfm2", PRE_LLAMA3},
    {"deepseek-llm", PRE_DEEPSEEK_LLM}, {"deepseek-coder", PRE_DEEPSEEK_CODER},
    {"deepseek-v3", PRE_DEEPSEEK3}, {"falcon", PRE_FALCON}, {"mpt", PRE_MPT},
    {"starcoder", PRE_STARCODER},
    {"gpt-2", PRE_GPT2}, {"phi-2", PRE_GPT2}, {"jina-es", PRE_GPT2}, {"jina-de", PRE_GPT2},
    {"gigachat", PRE_GPT2}, {"jina-v2-es", PRE_GPT2}, {"jina-v2-de", PRE_GPT2},
    {"a.x-4.0", PRE_GPT2}, {"mellum", PRE_GPT2}, {"jina-v1-en", PRE_GPT2},
    {"jina-v2-code", PRE_GPT2}, {"roberta-bpe", PRE_GPT2}, {"exaone4", PRE_GPT2},
    {"refact", PRE_REFACT}, {"command-r", PRE_COMMAND_R},
    {"qwen2", PRE_QWEN2}, {"deepseek-r1-qwen", PRE_QWEN2}, {"kormo", PRE_QWEN2},
    {"megrez", PRE_QWEN2}, {"stablelm2", PRE_STABLELM2}, {"olmo", PRE_OLMO},
    {"dbrx", PRE_DBRX}, {"smaug-bpe", PRE_SMAUG}, {"poro-chat", PRE_PORO},
    {"glm4", PRE_CHATGLM4}, {"chatglm-bpe", PRE_CHATGLM4}, {"viking", PRE_VIKING},
    {"jais", PRE_JAIS}, {"tekken", PRE_TEKKEN}, {"smollm", PRE_SMOLLM},
    {"codeshell", PRE_CODESHELL}, {"bloom", PRE_BLOOM}, {"gpt3-finnish", PRE_GPT3_FINNISH},
    {"exaone", PRE_EXAONE}, {"chameleon", PRE_CHAMELEON}, {"minerva-7b", PRE_MINERVA},
    {"gpt-4o", PRE_GPT4O}, {"llama4", PRE_GPT4O}, {"superbpe", PRE_SUPERBPE},
    {"trillion", PRE_TRILLION}, {"granite-docling", PRE_GRANITE_DOCLING},
    {"bailingmoe", PRE_BAILINGMOE}, {"bailingmoe2", PRE_BAILINGMOE}, {"llada-moe", PRE_BAILINGMOE},
    {"seed-coder", PRE_SEED_CODER}, {"hunyuan", PRE_HUNYUAN},
    {"hunyuan-dense", PRE_HUNYUAN_DENSE}, {"grok-2", PRE_GROK2}, {"minimax-m2", PRE_MINIMAX_M2},
};

/* The two patterns llama.cpp runs through hand-written splitters (matched by string). */
#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)"
#define RE_LLAMA3 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

#define RE_QWEN2 "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* CJK ideographs, U+0800..U+4E00 and Hangul: [一-龥ࠀ-一가-퟿]+ */
#define RE_DEEPSEEK_CJK "[\\u4E00-\\u9FA5\\u0800-\\u4E00\\uAC00-\\uD7FF]+"
#define RE_PORO " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+"
/* The upper- then lower-case runs of tekken / gpt-4o: llama.cpp's rewrite of
 * [\p{Lu}...]*[\p{Ll}...]+ as "letters that are not a-z" / "not A-Z". */
#define RE_UPPER_LOWER "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))*((?=[\\p{L}])([^A-Z]))+"
#define RE_UPPER_LOWER2 "[^\\r\\n\\p{L}\\p{N}]?((?=[\\p{L}])([^a-z]))+((?=[\\p{L}])([^A-Z]))*"
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

/* deepseek-llm's list of cased letters, written with escapes because several of its
 * members (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) are canonical singletons
 * that any NFC-normalizing tool would silently replace. */
#define RE_DEEPSEEK_LLM_LETTERS \
    "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293" \
    "\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C" \
    "\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5" \
    "\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77" \
    "\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59" \
    "\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC" \
    "\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107" \
    "\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139" \
    "\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE" \
    "\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E" \
    "\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F" \
    "\U000104B0-\U000104D3\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2" \
    "\U000118A0-\U000118DF\U0001E900-\U0001E943]+"

#define MAX_REGEXES 6
static const char *const k_regexes[PRE_COUNT][MAX_REGEXES] = {
    [PRE_DEFAULT] = {"[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]"},
    [PRE_LLAMA3] = {RE_LLAMA3},
    [PRE_DBRX] = {RE_LLAMA3},
    [PRE_SMAUG] = {RE_LLAMA3},
    [PRE_CHATGLM4] = {RE_LLAMA3},
    [PRE_DEEPSEEK_LLM] = {"[\r\n]", RE_DEEPSEEK_LLM_LETTERS,
                          /* \s?[!-/:-~！-／：-～‘-‟　-。]+ */
                          "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+",
                          "\\s+$", RE_DEEPSEEK_CJK, "\\p{N}+"},
    [PRE_DEEPSEEK3] = {"\\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
                       "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_HUNYUAN_DENSE] = {"\\p{N}{1,3}", "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+",
                           "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_DEEPSEEK_CODER] = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", RE_DEEPSEEK_CJK, "\\p{N}"},
    [PRE_FALCON] = {"[\\p{P}\\$\\+<=>\\^~\\|`]+", RE_GPT2, "[0-9][0-9][0-9]"},
    [PRE_STARCODER] = {"\\p{N}", RE_GPT2},
    [PRE_REFACT] = {"\\p{N}", RE_GPT2},
    [PRE_COMMAND_R] = {"\\p{N}", RE_GPT2},
    [PRE_SMOLLM] = {"\\p{N}", RE_GPT2},
    [PRE_CODESHELL] = {"\\p{N}", RE_GPT2},
    [PRE_EXAONE] = {"\\p{N}", RE_GPT2},
    [PRE_MINERVA] = {"\\p{N}", RE_GPT2},
    [PRE_GPT2] = {RE_GPT2},
    [PRE_MPT] = {RE_GPT2},
    [PRE_OLMO] = {RE_GPT2},
    [PRE_JAIS] = {RE_GPT2},
    [PRE_TRILLION] = {RE_GPT2},
    [PRE_GRANITE_DOCLING] = {RE_GPT2},
    [PRE_STABLELM2] = {RE_QWEN2},
    [PRE_QWEN2] = {RE_QWEN2},
    [PRE_HUNYUAN] = {RE_QWEN2},
    [PRE_GROK2] = {RE_QWEN2},
    [PRE_PORO] = {RE_PORO},
    [PRE_BLOOM] = {RE_PORO},
    [PRE_GPT3_FINNISH] = {RE_PORO},
    [PRE_VIKING] = {RE_PORO, "\\p{N}"},
    [PRE_TEKKEN] = {RE_UPPER_LOWER "|" RE_UPPER_LOWER2 "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_CHAMELEON] = {"<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                       "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", RE_GPT2},
    [PRE_GPT4O] = {RE_UPPER_LOWER RE_CONTRACTIONS "?|" RE_UPPER_LOWER2 RE_CONTRACTIONS
                   "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_MINIMAX_M2] = {RE_UPPER_LOWER RE_CONTRACTIONS "?|" RE_UPPER_LOWER2 RE_CONTRACTIONS
                        "?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
    [PRE_SUPERBPE] = {"\\p{N}+", "(?=(\\d{3})+(?!\\d))"},
    [PRE_BAILINGMOE] = {"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"},
    [PRE_SEED_CODER] = {"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"},
};

int fr_bpe_pre_from_name(const char *name, size_t len) {
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++)
        if (strlen(k_names[i].name) == len && memcmp(k_names[i].name, name, len) == 0)
            return k_names[i].pre;
    return -1;
}

/* llama.cpp sets ignore_merges (a piece that is itself a token skips BPE) for these. */
static bool pre_ignores_merges(int pre) { return pre == PRE_LLAMA3 || pre == PRE_TEKKEN; }

/* ---------- piece list ---------- */

typedef struct { size_t *len; size_t n, cap; } pieces;

static int pieces_push(pieces *p, size_t len) {
    if (len == 0) return FRUGAL_OK;  /* empty pieces encode to nothing: drop them */
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 64;
        size_t *nv = fr_realloc(p->len, nc * sizeof *nv);
        if (!nv) return FRUGAL_E_NOMEM;
        p->len = nv;
        p->cap = nc;
    }
    p->len[p->n++] = len;
    return FRUGAL_OK;
}

/* ---------- hand-written splitters (llama.cpp's unicode_regex_split_custom_*) ---------- */

#define OUT_OF_RANGE 0xFFFFFFFFu

typedef struct {
    const uint32_t *cp;
    size_t ini, end, prev;  /* the piece [ini, end) and the end of the last token */
    pieces *out;
    int rc;
} splitter;

static uint32_t sp_cpt(const splitter *s, size_t pos) {
    return (pos >= s->ini && pos < s->end) ? s->cp[pos] : OUT_OF_RANGE;
}
/* Flags of the code point at pos, 0 (no flags at all) outside the piece. */
static unsigned sp_flags(const splitter *s, size_t pos) {
    return (pos >= s->ini && pos < s->end) ? fr_unicode_flags(s->cp[pos]) : 0;
}
static bool f_letter(unsigned f) { return (f & FR_UCAT_MASK) == FR_UCAT_L; }
static bool f_number(unsigned f) { return (f & FR_UCAT_MASK) == FR_UCAT_N; }
static bool f_ws(unsigned f) { return (f & FR_UFLAG_WS) != 0; }

/* End the current token at `end`; returns its length (0 adds nothing). */
static size_t sp_add(splitter *s, size_t end) {
    size_t len = end - s->prev;
    if (len > 0 && s->rc == FRUGAL_OK) s->rc = pieces_push(s->out, len);
    s->prev = end;
    return len;
}

/* Contractions 's 't 'm 'd 're 've 'll at pos; returns their length or 0. With
 * `fold` the letters are compared case-insensitively (llama3). */
static size_t sp_contraction(const splitter *s, size_t pos, bool fold) {
    if (sp_cpt(s, pos) != '\'' || pos + 1 >= s->end) return 0;
    uint32_t a = sp_cpt(s, pos + 1);
    if (fold) a = fr_unicode_lower_ascii(a);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (pos + 2 >= s->end) return 0;
    uint32_t b = sp_cpt(s, pos + 2);
    if (fold) b = fr_unicode_lower_ascii(b);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

/* 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ */
static void split_gpt2(splitter *s) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = sp_cpt(s, pos);
        unsigned flags = sp_flags(s, pos);
        size_t c = sp_contraction(s, pos, false);
        if (c) { pos += sp_add(s, pos + c); continue; }
        unsigned f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
        if (f_letter(f2)) {
            pos += cpt == ' ';
            while (f_letter(f2)) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        if (f_number(f2)) {
            pos += cpt == ' ';
            while (f_number(f2)) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        /* "other" needs f2 != 0: a space at the very end of the piece falls through */
        if (!(f_ws(f2) || f_letter(f2) || f_number(f2)) && f2) {
            pos += cpt == ' ';
            while (!(f_ws(f2) || f_letter(f2) || f_number(f2)) && f2) f2 = sp_flags(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        size_t nws = 0;
        while (f_ws(sp_flags(s, pos + nws))) nws++;
        if (nws > 1 && sp_cpt(s, pos + nws) != OUT_OF_RANGE) {
            /* \s+(?!\S): leave the last space to prefix the next word */
            pos += nws - 1;
            sp_add(s, pos);
            continue;
        }
        if (nws > 0) { pos += nws; sp_add(s, pos); continue; }
        sp_add(s, ++pos);
    }
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*
 * |\s*[\r\n]+|\s+(?!\S)|\s+ */
static void split_llama3(splitter *s) {
    for (size_t pos = s->ini; pos < s->end;) {
        uint32_t cpt = sp_cpt(s, pos);
        unsigned flags = sp_flags(s, pos);
        size_t c = sp_contraction(s, pos, true);
        if (c) { pos += sp_add(s, pos + c); continue; }
        if (!(cpt == '\r' || cpt == '\n' || f_number(flags))) {
            if (f_letter(flags) || f_letter(sp_flags(s, pos + 1))) {
                pos++;
                while (f_letter(sp_flags(s, pos))) pos++;
                sp_add(s, pos);
                continue;
            }
        }
        if (f_number(flags)) {
            size_t ini = pos;
            while (f_number(sp_flags(s, pos))) {
                if (++pos - ini >= 3) { sp_add(s, pos); ini = pos; }
            }
            sp_add(s, pos);
            continue;
        }
        unsigned f2 = cpt == ' ' ? sp_flags(s, pos + 1) : flags;
        /* llama.cpp tests `flags` (not f2) for non-emptiness here, so a lone trailing
         * space is taken by this branch; the result is the same one-space token. */
        if (!(f_ws(f2) || f_letter(f2) || f_number(f2)) && flags) {
            pos += cpt == ' ';
            while (!(f_ws(f2) || f_letter(f2) || f_number(f2)) && f2) f2 = sp_flags(s, ++pos);
            uint32_t c2 = sp_cpt(s, pos);
            while (c2 == '\r' || c2 == '\n') c2 = sp_cpt(s, ++pos);
            sp_add(s, pos);
            continue;
        }
        size_t nws = 0, last_rn = 0;
        while (f_ws(sp_flags(s, pos + nws))) {
            uint32_t c2 = sp_cpt(s, pos + nws);
            if (c2 == '\r' || c2 == '\n') last_rn = pos + nws + 1;
            nws++;
        }
        if (last_rn > 0) { pos = last_rn; sp_add(s, pos); continue; }
        if (nws > 1 && sp_cpt(s, pos + nws) != OUT_OF_RANGE) {
            pos += nws - 1;
            sp_add(s, pos);
            continue;
        }
        if (nws > 0) { pos += nws; sp_add(s, pos); continue; }
        sp_add(s, ++pos);
    }
}

/* ---------- generic regex split (llama.cpp's unicode_regex_split_stl) ---------- */

/* Split one piece txt[0..n) like std::regex_iterator: every match is a piece, and so is
 * every stretch between matches; after an empty match the iterator first retries at
 * the same place demanding a non-empty match, then moves on by one. */
static int split_regex_piece(const fr_regex *re, const uint32_t *txt, size_t n, pieces *out) {
    size_t from = 0, last = 0, ms, me;
    bool retry = false;
    int rc = FRUGAL_OK;
    for (;;) {
        int r = fr_regex_search(re, txt, n, from, retry, &ms, &me);
        if (r < 0) return FRUGAL_E_UNSUPPORTED;
        if (r == 0 && retry) {
            /* no non-empty match right here: plain search from the next position */
            retry = false;
            from++;
            continue;
        }
        if (r == 0) break;
        if (ms > last && (rc = pieces_push(out, ms - last)) != FRUGAL_OK) return rc;
        if ((rc = pieces_push(out, me - ms)) != FRUGAL_OK) return rc;
        last = me;
        if (ms == me) {
            if (me == n) break;
            retry = true;
            from = me;
        } else {
            retry = false;
            from = me;
        }
    }
    if (last < n) rc = pieces_push(out, n - last);
    return rc;
}

/* Run the pre-tokenizer `pre` over cpts[0..n); *out gets piece lengths (in code points). */
static int pre_split(int pre, const uint32_t *cpts, size_t n, pieces *out, fr_err *err) {
    pieces cur = {0}, next = {0};
    uint32_t *txt = NULL;
    int txt_mode = -1;  /* which preparation txt holds: 0 wide, 1 collapsed */
    int rc = pieces_push(&cur, n);
    for (int i = 0; rc == FRUGAL_OK && i < MAX_REGEXES && k_regexes[pre][i]; i++) {
        const char *pat = k_regexes[pre][i];
        next.n = 0;
        bool gpt2 = !strcmp(pat, RE_GPT2), llama3 = !strcmp(pat, RE_LLAMA3);
        fr_regex *re = NULL;
        bool collapsed = false;
        if (!gpt2 && !llama3) {
            collapsed = fr_regex_wants_collapsed(pat);
            if ((rc = fr_regex_compile(pat, collapsed, &re, err)) != FRUGAL_OK) break;
            if (txt_mode != (int)collapsed) {
                if (!txt && !(txt = fr_malloc((n ? n : 1) * sizeof *txt))) {
                    rc = FRUGAL_E_NOMEM;
                    fr_regex_free(re);
                    break;
                }
                fr_regex_prepare_text(collapsed, cpts, txt, n);
                txt_mode = collapsed;
            }
        }
        size_t start = 0;
        for (size_t k = 0; rc == FRUGAL_OK && k < cur.n; k++) {
            size_t len = cur.len[k];
            if (re) {
                rc = split_regex_piece(re, txt + start, len, &next);
            } else {
                splitter s = {cpts, start, start + len, start, &next, FRUGAL_OK};
                if (gpt2) split_gpt2(&s); else split_llama3(&s);
                rc = s.rc;
            }
            start += len;
        }
        fr_regex_free(re);
        pieces t = cur; cur = next; next = t;
        if (rc == FRUGAL_E_UNSUPPORTED) fr_err_set(err, rc, "pre-tokenizer: input too complex for regex '%s'", pat);
    }
    free(txt);
    free(next.len);
    if (rc != FRUGAL_OK) { free(cur.len); return rc; }
    *out = cur;
    return FRUGAL_OK;
}

/* ---------- BPE merges ---------- */

typedef struct { int prev, next; size_t off, n; } bsym;
typedef struct { int rank, left, right; size_t ln, rn; } bigram;
typedef struct { bigram *v; size_t n, cap; } bheap;

/* lower rank first; equal ranks: left-most first (llama.cpp's comparator) */
static bool bg_less(const bigram *a, const bigram *b) {
    return a->rank != b->rank ? a->rank < b->rank : a->left < b->left;
}

static int bheap_push(bheap *h, bigram b) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        bigram *nv = fr_realloc(h->v, nc * sizeof *nv);
        if (!nv) return FRUGAL_E_NOMEM;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    h->v[i] = b;
    while (i > 0 && bg_less(&h->v[i], &h->v[(i - 1) / 2])) {
        bigram t = h->v[i]; h->v[i] = h->v[(i - 1) / 2]; h->v[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
    return FRUGAL_OK;
}

static bigram bheap_pop(bheap *h) {
    bigram top = h->v[0];
    h->v[0] = h->v[--h->n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && bg_less(&h->v[l], &h->v[m])) m = l;
        if (r < h->n && bg_less(&h->v[r], &h->v[m])) m = r;
        if (m == i) break;
        bigram t = h->v[i]; h->v[i] = h->v[m]; h->v[m] = t;
        i = m;
    }
    return top;
}

static int add_bigram(const fr_tokenizer *t, const char *w, const bsym *sy, int l, int r, bheap *h) {
    if (l < 0 || r < 0) return FRUGAL_OK;
    int rank = fr_tok_merge_rank(t, w + sy[l].off, sy[l].n, w + sy[r].off, sy[r].n);
    if (rank < 0) return FRUGAL_OK;
    bigram b = {rank, l, r, sy[l].n, sy[r].n};
    return bheap_push(h, b);
}

/* BPE-encode one byte-mapped word w[0..wn) and append its ids. */
static int bpe_word(const fr_tokenizer *t, const char *w, size_t wn, bool ignore_merges,
                    bsym **sym_buf, size_t *sym_cap, bheap *h, fr_tokvec *out) {
    int rc;
    if (ignore_merges) {
        int32_t id = fr_tok_find(t, w, wn);
        if (id >= 0) return fr_tokvec_push(out, id);
    }
    if (*sym_cap < wn) {
        bsym *ns = fr_realloc(*sym_buf, wn * sizeof *ns);
        if (!ns) return FRUGAL_E_NOMEM;
        *sym_buf = ns;
        *sym_cap = wn;
    }
    bsym *sy = *sym_buf;
    int ns = 0;
    for (size_t off = 0; off < wn;) {
        size_t cl = fr_utf8_len((uint8_t)w[off]);
        if (cl > wn - off) cl = wn - off;
        sy[ns].off = off;
        sy[ns].n = cl;
        sy[ns].prev = ns - 1;
        off += cl;
        sy[ns].next = off == wn ? -1 : ns + 1;
        ns++;
    }
    h->n = 0;
    for (int i = 1; i < ns; i++)
        if ((rc = add_bigram(t, w, sy, i - 1, i, h)) != FRUGAL_OK) return rc;
    while (h->n > 0) {
        bigram b = bheap_pop(h);
        bsym *L = &sy[b.left], *R = &sy[b.right];
        /* stale: one side was merged since this pair was queued */
        if (L->n == 0 || R->n == 0 || L->n != b.ln || R->n != b.rn) continue;
        L->n += R->n;
        R->n = 0;
        L->next = R->next;
        if (R->next >= 0) sy[R->next].prev = b.left;
        if ((rc = add_bigram(t, w, sy, L->prev, b.left, h)) != FRUGAL_OK) return rc;
        if ((rc = add_bigram(t, w, sy, b.left, L->next, h)) != FRUGAL_OK) return rc;
    }
    for (int i = 0; i >= 0 && i < ns; i = sy[i].next) {
        int32_t id = fr_tok_find(t, w + sy[i].off, sy[i].n);
        if (id >= 0) {
            if ((rc = fr_tokvec_push(out, id)) != FRUGAL_OK) return rc;
            continue;
        }
        /* llama.cpp's fallback: tokens for the symbol's raw single bytes, if any */
        for (size_t k = 0; k < sy[i].n; k++) {
            int32_t bid = fr_tok_find(t, w + sy[i].off + k, 1);
            if (bid >= 0 && (rc = fr_tokvec_push(out, bid)) != FRUGAL_OK) return rc;
        }
    }
    return FRUGAL_OK;
}

int fr_bpe_encode(const fr_tokenizer *t, const char *text, size_t len, fr_tokvec *out) {
    int pre = fr_tok_pre(t);
    if (pre < 0 || pre >= PRE_COUNT) return FRUGAL_E_UNSUPPORTED;
    if (len == 0) return FRUGAL_OK;
    uint32_t *cpts = NULL;
    size_t n = 0;
    if (fr_utf8_to_cpts(text, len, &cpts, &n) != 0) return FRUGAL_E_NOMEM;
    pieces pc = {0};
    int rc = pre_split(pre, cpts, n, &pc, NULL);
    /* Each code point re-encodes to at most 4 bytes, each mapped byte to at most 2. */
    char *w = NULL;
    bsym *sym = NULL;
    size_t sym_cap = 0;
    bheap h = {0};
    if (rc == FRUGAL_OK) {
        size_t maxp = 0;
        for (size_t k = 0; k < pc.n; k++) if (pc.len[k] > maxp) maxp = pc.len[k];
        if (!(w = fr_malloc(maxp * 8 + 1))) rc = FRUGAL_E_NOMEM;
    }
    size_t start = 0;
    for (size_t k = 0; rc == FRUGAL_OK && k < pc.n; k++) {
        size_t wn = 0;
        for (size_t i = start; i < start + pc.len[k]; i++) {
            char u[4];
            size_t ul = fr_utf8_encode(cpts[i], u);
            for (size_t j = 0; j < ul; j++) wn += fr_bpe_byte_to_utf8((uint8_t)u[j], w + wn);
        }
        start += pc.len[k];
        rc = bpe_word(t, w, wn, pre_ignores_merges(pre), &sym, &sym_cap, &h, out);
    }
    free(h.v);
    free(sym);
    free(w);
    free(pc.len);
    free(cpts);
    return rc;
}

size_t fr_bpe_byte_to_utf8(uint8_t b, char out[4]) {
    return fr_utf8_encode(fr_gpt2_byte_to_cpt(b), out);
}

int fr_bpe_text_to_bytes(const char *s, size_t len, char *out, size_t out_cap) {
    size_t off = 0, k = 0;
    while (off < len) {
        /* a malformed sequence decodes to U+FFFD, which maps to no byte */
        uint32_t cp = fr_utf8_decode(s, len, &off);
        int b = fr_gpt2_cpt_to_byte(cp);
        if (b < 0 || k >= out_cap) return -1;
        out[k++] = (char)b;
    }
    return (int)k;
}

/* Test hook: the i-th regex of pre-tokenizer `pre`, or NULL past the last one. */
const char *fr_bpe_pre_regex(int pre, int i);
const char *fr_bpe_pre_regex(int pre, int i) {
    if (pre < 0 || pre >= PRE_COUNT || i < 0 || i >= MAX_REGEXES) return NULL;
    return k_regexes[pre][i];
}

/* Test hook: pre-tokenize text with pre-tokenizer `pre` and return the piece lengths in
 * bytes of the re-encoded text (malloc'd in *lens, count in *n). Not part of the
 * tokenizer interface; used by tests/test_bpe.c. */
int fr_bpe_pre_split_bytes(int pre, const char *text, size_t len, size_t **lens, size_t *n, fr_err *err);
int fr_bpe_pre_split_bytes(int pre, const char *text, size_t len, size_t **lens, size_t *n, fr_err *err) {
    *lens = NULL;
    *n = 0;
    if (pre < 0 || pre >= PRE_COUNT) return fr_err_set(err, FRUGAL_E_INVALID_ARG, "bad pre-tokenizer id %d", pre);
    uint32_t *cpts;
    size_t nc;
    if (fr_utf8_to_cpts(text, len, &cpts, &nc) != 0) return fr_err_set(err, FRUGAL_E_NOMEM, "out of memory");
    pieces pc = {0};
    int rc = nc ? pre_split(pre, cpts, nc, &pc, err) : FRUGAL_OK;
    if (rc == FRUGAL_OK) {
        size_t start = 0;
        for (size_t k = 0; k < pc.n; k++) {
            size_t bytes = 0;
            for (size_t i = start; i < start + pc.len[k]; i++) {
                char u[4];
                bytes += fr_utf8_encode(cpts[i], u);
            }
            start += pc.len[k];
            pc.len[k] = bytes;
        }
        *lens = pc.len;
        *n = pc.n;
    } else {
        free(pc.len);
    }
    free(cpts);
    return rc;
}
