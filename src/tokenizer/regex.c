/* regex.c - backtracking matcher for the pre-tokenizer patterns (see regex.h).
 *
 * The pattern is parsed into a tree (alternations of sequences, character sets,
 * repeats, lookaheads, $). Matching is depth-first with explicit continuation frames
 * on the C stack: a node is matched at a position and, on success, calls "the rest of
 * the pattern" (the continuation); failure returns and the caller tries its next
 * choice. That reproduces ECMAScript's ordered choice exactly. Repeats of a node that
 * always consumes exactly one character (a set, or a group of lookaheads plus one set)
 * are run iteratively, so long words do not deepen the recursion. */
#include "core/fault.h"
#include "tokenizer/regex.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer/unicode.h"

enum { RX_SET, RX_ALT, RX_REP, RX_LOOK, RX_END };
/* negated built-in classes that can appear inside a bracket expression */
enum { RX_NOT_WS = 1, RX_NOT_DIGIT = 2, RX_NOT_WORD = 4 };

typedef struct { uint32_t lo, hi; } rx_range;

typedef struct rx_node rx_node;
typedef struct { rx_node **v; int n, cap; } rx_seq;

struct rx_node {
    int type;
    /* RX_SET */
    rx_range *r; int nr, rcap; bool negate; unsigned neg_items;
    /* RX_ALT */
    rx_seq *alts; int nalts, acap;
    /* RX_REP, RX_LOOK */
    rx_node *child; int min, max; bool lazy, neg, single;
};

struct fr_regex {
    rx_node *root;
    bool collapsed;
};

/* ---------- tree building ---------- */

static void node_free(rx_node *nd) {
    if (!nd) return;
    free(nd->r);
    for (int i = 0; i < nd->nalts; i++) {
        for (int j = 0; j < nd->alts[i].n; j++) node_free(nd->alts[i].v[j]);
        free(nd->alts[i].v);
    }
    free(nd->alts);
    node_free(nd->child);
    free(nd);
}

static rx_node *node_new(int type) {
    rx_node *nd = fr_calloc(1, sizeof *nd);
    if (nd) nd->type = type;
    return nd;
}

static bool set_add(rx_node *s, uint32_t lo, uint32_t hi) {
    if (s->nr == s->rcap) {
        int nc = s->rcap ? s->rcap * 2 : 8;
        rx_range *nr = fr_realloc(s->r, (size_t)nc * sizeof *nr);
        if (!nr) return false;
        s->r = nr;
        s->rcap = nc;
    }
    s->r[s->nr].lo = lo;
    s->r[s->nr].hi = hi;
    s->nr++;
    return true;
}

static bool seq_push(rx_seq *q, rx_node *nd) {
    if (q->n == q->cap) {
        int nc = q->cap ? q->cap * 2 : 4;
        rx_node **nv = fr_realloc(q->v, (size_t)nc * sizeof *nv);
        if (!nv) return false;
        q->v = nv;
        q->cap = nc;
    }
    q->v[q->n++] = nd;
    return true;
}

/* Append a new empty alternative; NULL on allocation failure. */
static rx_seq *alt_add(rx_node *a) {
    if (a->nalts == a->acap) {
        int nc = a->acap ? a->acap * 2 : 4;
        rx_seq *na = fr_realloc(a->alts, (size_t)nc * sizeof *na);
        if (!na) return NULL;
        a->alts = na;
        a->acap = nc;
    }
    rx_seq *q = &a->alts[a->nalts++];
    memset(q, 0, sizeof *q);
    return q;
}

/* ---------- parser ---------- */

typedef struct {
    const uint32_t *p;
    size_t n, i;
    bool collapsed;
    int code;          /* first error: FRUGAL_E_UNSUPPORTED or FRUGAL_E_NOMEM */
    const char *why;
} rx_parser;

static void perr(rx_parser *ps, int code, const char *why) {
    if (!ps->code) { ps->code = code; ps->why = why; }
}

static bool at_end(const rx_parser *ps) { return ps->i >= ps->n; }
static uint32_t peek(const rx_parser *ps) { return ps->i < ps->n ? ps->p[ps->i] : 0; }

static bool add_ws(rx_node *s) { return set_add(s, 9, 13) && set_add(s, ' ', ' '); }
static bool add_digit(rx_node *s) { return set_add(s, '0', '9'); }
static bool add_word(rx_node *s) {
    return set_add(s, '0', '9') && set_add(s, 'A', 'Z') && set_add(s, 'a', 'z') && set_add(s, '_', '_');
}

/* \p{name} in collapsed mode, exactly as llama.cpp rewrites it: the category's
 * stand-in byte plus the ASCII members it lists (\p{S} without '~', \p{M} empty). */
static bool add_category(rx_parser *ps, rx_node *s) {
    if (ps->i >= ps->n || ps->p[ps->i] != '{') { perr(ps, FRUGAL_E_UNSUPPORTED, "bad \\p"); return false; }
    size_t j = ps->i + 1;
    char name[8];
    size_t k = 0;
    while (j < ps->n && ps->p[j] != '}' && k < sizeof name - 1) name[k++] = (char)ps->p[j++];
    name[k] = 0;
    if (j >= ps->n || ps->p[j] != '}') { perr(ps, FRUGAL_E_UNSUPPORTED, "bad \\p{...}"); return false; }
    ps->i = j + 1;
    if (!ps->collapsed) { perr(ps, FRUGAL_E_UNSUPPORTED, "\\p outside collapsed mode"); return false; }
    bool ok = true;
    if (!strcmp(name, "N")) {
        ok = set_add(s, 0xD1, 0xD1) && set_add(s, '0', '9');
    } else if (!strcmp(name, "L") || !strcmp(name, "Lu") || !strcmp(name, "Ll") ||
               !strcmp(name, "Lt") || !strcmp(name, "Lm") || !strcmp(name, "Lo")) {
        ok = set_add(s, 0xD2, 0xD2) && set_add(s, 'A', 'Z') && set_add(s, 'a', 'z');
    } else if (!strcmp(name, "P")) {
        ok = set_add(s, 0xD3, 0xD3) && set_add(s, 0x21, 0x23) && set_add(s, 0x25, 0x2A) &&
             set_add(s, 0x2C, 0x2F) && set_add(s, 0x3A, 0x3B) && set_add(s, 0x3F, 0x40) &&
             set_add(s, 0x5B, 0x5D) && set_add(s, 0x5F, 0x5F) && set_add(s, 0x7B, 0x7B) &&
             set_add(s, 0x7D, 0x7D);
    } else if (!strcmp(name, "M")) {
        ok = set_add(s, 0xD4, 0xD4);
    } else if (!strcmp(name, "S")) {
        ok = set_add(s, 0xD5, 0xD5) && set_add(s, 0x24, 0x24) && set_add(s, 0x2B, 0x2B) &&
             set_add(s, 0x3C, 0x3E) && set_add(s, 0x5E, 0x5E) && set_add(s, 0x60, 0x60) &&
             set_add(s, 0x7C, 0x7C);
    } else {
        perr(ps, FRUGAL_E_UNSUPPORTED, "unknown \\p{} category");
        return false;
    }
    if (!ok) perr(ps, FRUGAL_E_NOMEM, "out of memory");
    return ok;
}

static int hexval(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Parse the escape after a backslash (ps->i at the letter). Class escapes are added to
 * set s and return true with *single = false; a single character is returned in *ch
 * with *single = true. False on error. */
static bool parse_escape(rx_parser *ps, rx_node *s, bool *single, uint32_t *ch) {
    if (at_end(ps)) { perr(ps, FRUGAL_E_UNSUPPORTED, "trailing backslash"); return false; }
    uint32_t c = ps->p[ps->i++];
    *single = false;
    bool ok = true;
    switch (c) {
    case 's': ok = add_ws(s); break;
    case 'd': ok = add_digit(s); break;
    case 'w': ok = add_word(s); break;
    case 'S': s->neg_items |= RX_NOT_WS; break;
    case 'D': s->neg_items |= RX_NOT_DIGIT; break;
    case 'W': s->neg_items |= RX_NOT_WORD; break;
    case 'p': return add_category(ps, s);
    case 'x': case 'u': {
        int nd = c == 'x' ? 2 : 4;
        uint32_t v = 0;
        for (int k = 0; k < nd; k++) {
            int h = hexval(peek(ps));
            if (at_end(ps) || h < 0) { perr(ps, FRUGAL_E_UNSUPPORTED, "bad hex escape"); return false; }
            v = v * 16 + (uint32_t)h;
            ps->i++;
        }
        *single = true; *ch = v;
        return true;
    }
    case 'b': case 'B': case 'P': case 'k': case 'c':
        perr(ps, FRUGAL_E_UNSUPPORTED, "unsupported escape");
        return false;
    default:
        if (c >= '1' && c <= '9') { perr(ps, FRUGAL_E_UNSUPPORTED, "backreference"); return false; }
        *single = true;
        switch (c) {
        case 'r': *ch = '\r'; break;
        case 'n': *ch = '\n'; break;
        case 't': *ch = '\t'; break;
        case 'f': *ch = '\f'; break;
        case 'v': *ch = '\v'; break;
        case '0': *ch = 0; break;
        default: *ch = c; break;  /* identity escape: \$ \+ \[ \\ \- ... */
        }
        return true;
    }
    if (!ok) perr(ps, FRUGAL_E_NOMEM, "out of memory");
    return ok;
}

/* Bracket expression; ps->i just after '['. */
static rx_node *parse_class(rx_parser *ps) {
    rx_node *s = node_new(RX_SET);
    if (!s) { perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
    if (peek(ps) == '^' && !at_end(ps)) { s->negate = true; ps->i++; }
    for (;;) {
        if (at_end(ps)) { perr(ps, FRUGAL_E_UNSUPPORTED, "unterminated [ ]"); goto fail; }
        uint32_t c = ps->p[ps->i++];
        if (c == ']') break;
        uint32_t lo = c;
        if (c == '\\') {
            bool single;
            if (!parse_escape(ps, s, &single, &lo)) goto fail;
            if (!single) continue;
        }
        /* a range "lo-hi" unless the '-' is the last thing before ']' */
        if (peek(ps) == '-' && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
            ps->i++;
            uint32_t hi = ps->p[ps->i++];
            if (hi == '\\') {
                bool single;
                if (!parse_escape(ps, s, &single, &hi)) goto fail;
                if (!single) { perr(ps, FRUGAL_E_UNSUPPORTED, "class escape as range end"); goto fail; }
            }
            if (hi < lo) { perr(ps, FRUGAL_E_UNSUPPORTED, "reversed range"); goto fail; }
            if (!set_add(s, lo, hi)) { perr(ps, FRUGAL_E_NOMEM, "out of memory"); goto fail; }
        } else if (!set_add(s, lo, lo)) {
            perr(ps, FRUGAL_E_NOMEM, "out of memory");
            goto fail;
        }
    }
    return s;
fail:
    node_free(s);
    return NULL;
}

static rx_node *parse_alt(rx_parser *ps);

static rx_node *parse_atom(rx_parser *ps) {
    uint32_t c = ps->p[ps->i++];
    rx_node *nd;
    switch (c) {
    case '(': {
        int kind = 0;   /* 0 group, 1 lookahead, 2 negative lookahead */
        if (peek(ps) == '?') {
            uint32_t c2 = ps->i + 1 < ps->n ? ps->p[ps->i + 1] : 0;
            if (c2 == ':') kind = 0;
            else if (c2 == '=') kind = 1;
            else if (c2 == '!') kind = 2;
            else { perr(ps, FRUGAL_E_UNSUPPORTED, "unsupported (? group"); return NULL; }
            ps->i += 2;
        }
        rx_node *inner = parse_alt(ps);
        if (!inner) return NULL;
        if (peek(ps) != ')' || at_end(ps)) { node_free(inner); perr(ps, FRUGAL_E_UNSUPPORTED, "missing )"); return NULL; }
        ps->i++;
        if (kind == 0) return inner;
        nd = node_new(RX_LOOK);
        if (!nd) { node_free(inner); perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
        nd->child = inner;
        nd->neg = kind == 2;
        return nd;
    }
    case '[':
        return parse_class(ps);
    case '.':
        nd = node_new(RX_SET);
        if (!nd || !set_add(nd, '\n', '\n') || !set_add(nd, '\r', '\r') || !set_add(nd, 0x2028, 0x2029)) {
            node_free(nd); perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL;
        }
        nd->negate = true;
        return nd;
    case '$':
        nd = node_new(RX_END);
        if (!nd) perr(ps, FRUGAL_E_NOMEM, "out of memory");
        return nd;
    case '^': case '*': case '+': case '?': case '{': case ')': case ']': case '}':
        perr(ps, FRUGAL_E_UNSUPPORTED, "unsupported or misplaced metacharacter");
        return NULL;
    default:
        break;
    }
    nd = node_new(RX_SET);
    if (!nd) { perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
    uint32_t lo = c;
    if (c == '\\') {
        bool single;
        if (!parse_escape(ps, nd, &single, &lo)) { node_free(nd); return NULL; }
        if (!single) return nd;
    }
    if (!set_add(nd, lo, lo)) { node_free(nd); perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
    return nd;
}

/* Parse a decimal number at ps->i; -1 if none. */
static int parse_int(rx_parser *ps) {
    int v = -1;
    while (!at_end(ps) && peek(ps) >= '0' && peek(ps) <= '9') {
        v = (v < 0 ? 0 : v) * 10 + (int)(peek(ps) - '0');
        if (v > 100000) v = 100000;
        ps->i++;
    }
    return v;
}

/* True if nd always consumes exactly one character and has no inner choices that
 * could matter to what follows (a set, or alternatives each made of single-character
 * lookaheads followed by one such node). */
static bool is_single(const rx_node *nd) {
    if (nd->type == RX_SET) return true;
    if (nd->type != RX_ALT || nd->nalts == 0) return false;
    for (int a = 0; a < nd->nalts; a++) {
        const rx_seq *q = &nd->alts[a];
        if (q->n == 0) return false;
        for (int k = 0; k < q->n - 1; k++)
            if (q->v[k]->type != RX_LOOK || !is_single(q->v[k]->child)) return false;
        const rx_node *last = q->v[q->n - 1];
        if (last->type == RX_LOOK || !is_single(last)) return false;
    }
    return true;
}

static bool parse_seq_into(rx_parser *ps, rx_seq *q) {
    while (!at_end(ps) && peek(ps) != '|' && peek(ps) != ')') {
        rx_node *atom = parse_atom(ps);
        if (!atom) return false;
        /* quantifier? */
        int mn = -1, mx = -1;
        uint32_t c = peek(ps);
        if (!at_end(ps) && (c == '*' || c == '+' || c == '?')) {
            ps->i++;
            mn = c == '+' ? 1 : 0;
            mx = c == '?' ? 1 : -1;
        } else if (!at_end(ps) && c == '{') {
            size_t save = ps->i;
            ps->i++;
            mn = parse_int(ps);
            mx = mn;
            if (peek(ps) == ',') { ps->i++; mx = parse_int(ps); }
            if (mn < 0 || peek(ps) != '}' || at_end(ps) || (mx >= 0 && mx < mn)) {
                ps->i = save;
                node_free(atom);
                perr(ps, FRUGAL_E_UNSUPPORTED, "bad {n,m} quantifier");
                return false;
            }
            ps->i++;
        }
        if (mn >= 0) {
            if (atom->type == RX_LOOK || atom->type == RX_END) {
                node_free(atom);
                perr(ps, FRUGAL_E_UNSUPPORTED, "quantified assertion");
                return false;
            }
            rx_node *rep = node_new(RX_REP);
            if (!rep) { node_free(atom); perr(ps, FRUGAL_E_NOMEM, "out of memory"); return false; }
            rep->child = atom;
            rep->min = mn;
            rep->max = mx;
            if (peek(ps) == '?' && !at_end(ps)) { rep->lazy = true; ps->i++; }
            rep->single = is_single(atom);
            atom = rep;
        }
        if (!seq_push(q, atom)) { node_free(atom); perr(ps, FRUGAL_E_NOMEM, "out of memory"); return false; }
    }
    return true;
}

static rx_node *parse_alt(rx_parser *ps) {
    rx_node *a = node_new(RX_ALT);
    if (!a) { perr(ps, FRUGAL_E_NOMEM, "out of memory"); return NULL; }
    for (;;) {
        rx_seq *q = alt_add(a);
        if (!q) { perr(ps, FRUGAL_E_NOMEM, "out of memory"); node_free(a); return NULL; }
        if (!parse_seq_into(ps, q)) { node_free(a); return NULL; }
        if (!at_end(ps) && peek(ps) == '|') { ps->i++; continue; }
        return a;
    }
}

bool fr_regex_wants_collapsed(const char *pattern) {
    /* the exact substrings llama.cpp looks for */
    static const char *cats[] = {"\\p{N}", "\\p{L}", "\\p{P}", "\\p{M}", "\\p{S}", "\\p{Lu}",
                                 "\\p{Ll}", "\\p{Lt}", "\\p{Lm}", "\\p{Lo}"};
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++)
        if (strstr(pattern, cats[i])) return true;
    return false;
}

int fr_regex_compile(const char *pattern, bool collapsed, fr_regex **out, fr_err *err) {
    *out = NULL;
    uint32_t *cp;
    size_t n;
    if (fr_utf8_to_cpts(pattern, strlen(pattern), &cp, &n) != 0)
        return fr_err_set(err, FRUGAL_E_NOMEM, "regex: out of memory");
    if (collapsed) {
        for (size_t i = 0; i < n; i++) {
            if (cp[i] >= 0x80) {
                free(cp);
                return fr_err_set(err, FRUGAL_E_UNSUPPORTED,
                                  "regex '%s': unicode categories and non-ASCII characters together", pattern);
            }
        }
    }
    rx_parser ps = {cp, n, 0, collapsed, 0, NULL};
    rx_node *root = parse_alt(&ps);
    if (root && !at_end(&ps)) {  /* a stray ')' */
        perr(&ps, FRUGAL_E_UNSUPPORTED, "unbalanced )");
        node_free(root);
        root = NULL;
    }
    free(cp);
    if (!root) {
        int code = ps.code ? ps.code : FRUGAL_E_INTERNAL;
        return fr_err_set(err, code, "regex '%s': %s", pattern, ps.why ? ps.why : "parse error");
    }
    fr_regex *re = fr_malloc(sizeof *re);
    if (!re) { node_free(root); return fr_err_set(err, FRUGAL_E_NOMEM, "regex: out of memory"); }
    re->root = root;
    re->collapsed = collapsed;
    *out = re;
    return FRUGAL_OK;
}

void fr_regex_free(fr_regex *re) {
    if (!re) return;
    node_free(re->root);
    free(re);
}

void fr_regex_prepare_text(bool collapsed, const uint32_t *src, uint32_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = src[i];
        if (c < 0x80) { dst[i] = c; continue; }
        unsigned f = fr_unicode_flags(c);
        /* std::regex's \s only knows ASCII whitespace; llama.cpp substitutes VT. */
        if (f & FR_UFLAG_WS) { dst[i] = 0x0B; continue; }
        if (!collapsed) { dst[i] = c; continue; }
        switch (f & FR_UCAT_MASK) {
        case FR_UCAT_N: dst[i] = 0xD1; break;
        case FR_UCAT_L: dst[i] = 0xD2; break;
        case FR_UCAT_P: dst[i] = 0xD3; break;
        case FR_UCAT_M: dst[i] = 0xD4; break;
        case FR_UCAT_S: dst[i] = 0xD5; break;
        default: dst[i] = 0xD0; break;
        }
    }
}

/* ---------- matcher ---------- */

enum { K_TOP, K_ACCEPT, K_SEQ, K_REP };
#define RX_MAX_DEPTH 3000

typedef struct rx_k {
    int type;
    const rx_seq *seq; int idx;          /* K_SEQ: continue at seq->v[idx] */
    const rx_node *rep; int count;       /* K_REP: iteration `count` just ended */
    size_t start;                        /* K_REP: where that iteration began */
    const struct rx_k *next;
} rx_k;

typedef struct {
    const uint32_t *s;
    size_t n, start, end;
    bool nonempty;
    int depth;
} rx_ctx;

static bool set_has(const rx_node *nd, uint32_t c) {
    bool in = false;
    for (int i = 0; i < nd->nr && !in; i++) in = c >= nd->r[i].lo && c <= nd->r[i].hi;
    if (!in && nd->neg_items) {
        bool ws = (c >= 9 && c <= 13) || c == ' ';
        bool dg = c >= '0' && c <= '9';
        bool wd = dg || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        in = ((nd->neg_items & RX_NOT_WS) && !ws) || ((nd->neg_items & RX_NOT_DIGIT) && !dg) ||
             ((nd->neg_items & RX_NOT_WORD) && !wd);
    }
    return in != nd->negate;
}

/* One-character test for nodes with is_single(). */
static bool test1(const rx_ctx *cx, const rx_node *nd, size_t pos) {
    if (nd->type == RX_SET) return pos < cx->n && set_has(nd, cx->s[pos]);
    for (int a = 0; a < nd->nalts; a++) {
        const rx_seq *q = &nd->alts[a];
        bool ok = true;
        for (int k = 0; k < q->n && ok; k++) {
            const rx_node *it = q->v[k];
            if (it->type == RX_LOOK) ok = test1(cx, it->child, pos) != it->neg;
            else ok = test1(cx, it, pos);
        }
        if (ok) return true;
    }
    return false;
}

static int m_node(rx_ctx *cx, const rx_node *nd, size_t pos, const rx_k *k);

static int m_k(rx_ctx *cx, size_t pos, const rx_k *k);

static int m_seq(rx_ctx *cx, const rx_seq *q, int idx, size_t pos, const rx_k *k) {
    if (idx == q->n) return m_k(cx, pos, k);
    if (idx + 1 == q->n) return m_node(cx, q->v[idx], pos, k);
    rx_k f = {K_SEQ, q, idx + 1, NULL, 0, 0, k};
    return m_node(cx, q->v[idx], pos, &f);
}

static int m_rep(rx_ctx *cx, const rx_node *rep, int count, size_t pos, const rx_k *k) {
    rx_k f = {K_REP, NULL, 0, rep, count, pos, k};
    bool more = rep->max < 0 || count < rep->max;
    bool stop = count >= rep->min;
    int r;
    if (!rep->lazy) {
        if (more && (r = m_node(cx, rep->child, pos, &f)) != 0) return r;
        return stop ? m_k(cx, pos, k) : 0;
    }
    if (stop && (r = m_k(cx, pos, k)) != 0) return r;
    return more ? m_node(cx, rep->child, pos, &f) : 0;
}

static int m_k(rx_ctx *cx, size_t pos, const rx_k *k) {
    switch (k->type) {
    case K_ACCEPT:
        return 1;
    case K_TOP:
        if (cx->nonempty && pos == cx->start) return 0;
        cx->end = pos;
        return 1;
    case K_SEQ:
        return m_seq(cx, k->seq, k->idx, pos, k->next);
    default:
        /* ECMAScript: an optional iteration that matched nothing fails, which stops
         * empty loops from spinning. */
        if (pos == k->start && k->count >= k->rep->min) return 0;
        return m_rep(cx, k->rep, k->count + 1, pos, k->next);
    }
}

static int m_node_inner(rx_ctx *cx, const rx_node *nd, size_t pos, const rx_k *k) {
    int r;
    switch (nd->type) {
    case RX_SET:
        return (pos < cx->n && set_has(nd, cx->s[pos])) ? m_k(cx, pos + 1, k) : 0;
    case RX_END:
        return pos == cx->n ? m_k(cx, pos, k) : 0;
    case RX_ALT:
        for (int a = 0; a < nd->nalts; a++)
            if ((r = m_seq(cx, &nd->alts[a], 0, pos, k)) != 0) return r;
        return 0;
    case RX_LOOK: {
        rx_k acc = {K_ACCEPT, NULL, 0, NULL, 0, 0, NULL};
        r = m_node(cx, nd->child, pos, &acc);
        if (r < 0) return r;
        return ((r == 1) != nd->neg) ? m_k(cx, pos, k) : 0;
    }
    default: /* RX_REP */
        if (nd->single) {
            size_t cnt = 0;
            size_t lim = nd->max < 0 ? (size_t)-1 : (size_t)nd->max;
            while (cnt < lim && test1(cx, nd->child, pos + cnt)) cnt++;
            if (cnt < (size_t)nd->min) return 0;
            if (!nd->lazy) {
                for (size_t j = cnt + 1; j-- > (size_t)nd->min;)
                    if ((r = m_k(cx, pos + j, k)) != 0) return r;
            } else {
                for (size_t j = (size_t)nd->min; j <= cnt; j++)
                    if ((r = m_k(cx, pos + j, k)) != 0) return r;
            }
            return 0;
        }
        return m_rep(cx, nd, 0, pos, k);
    }
}

static int m_node(rx_ctx *cx, const rx_node *nd, size_t pos, const rx_k *k) {
    if (cx->depth >= RX_MAX_DEPTH) return -1;
    cx->depth++;
    int r = m_node_inner(cx, nd, pos, k);
    cx->depth--;
    return r;
}

int fr_regex_search(const fr_regex *re, const uint32_t *s, size_t n, size_t from,
                    bool anchored_nonempty, size_t *ms, size_t *me) {
    rx_ctx cx = {s, n, 0, 0, anchored_nonempty, 0};
    rx_k top = {K_TOP, NULL, 0, NULL, 0, 0, NULL};
    for (size_t st = from; st <= n; st++) {
        cx.start = st;
        cx.depth = 0;
        int r = m_node(&cx, re->root, st, &top);
        if (r < 0) return -1;
        if (r == 1) { *ms = st; *me = cx.end; return 1; }
        if (anchored_nonempty) break;
    }
    return 0;
}
