/* spm.c - SentencePiece-style BPE over token scores (llama.cpp's llm_tokenizer_spm).
 *
 * The text is split into UTF-8 characters; adjacent symbol pairs whose concatenation
 * is a vocabulary token are queued by that token's score, and the best pair (highest
 * score, left-most on ties) is merged repeatedly. Symbols left over that are not
 * tokens fall back to byte tokens <0xXX>. */
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "tokenizer/tokenizer_impl.h"

typedef struct spm_sym {
    int prev, next;   /* neighbour indices in the live chain, -1 at the ends */
    size_t off, n;    /* the symbol's bytes in the escaped text; n == 0: merged away */
} spm_sym;

typedef struct spm_bigram {
    int left, right;
    float score;
    size_t size;      /* byte length of the pair when queued; a mismatch later = stale */
} spm_bigram;

typedef struct spm_heap {
    spm_bigram *v;
    size_t n, cap;
} spm_heap;

/* Heap order: higher score first; equal scores -> smaller left index first, which is
 * the order llama.cpp's priority_queue comparator produces. */
static int bg_before(const spm_bigram *a, const spm_bigram *b) {
    if (a->score != b->score) return a->score > b->score;
    return a->left < b->left;
}

static int heap_push(spm_heap *h, spm_bigram b) {
    if (h->n == h->cap) {
        size_t nc = h->cap ? h->cap * 2 : 64;
        spm_bigram *nv = fr_realloc(h->v, nc * sizeof *nv);
        if (!nv) return FRUGAL_E_NOMEM;
        h->v = nv;
        h->cap = nc;
    }
    size_t i = h->n++;
    h->v[i] = b;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bg_before(&h->v[i], &h->v[p])) break;
        spm_bigram t = h->v[p]; h->v[p] = h->v[i]; h->v[i] = t;
        i = p;
    }
    return FRUGAL_OK;
}

/* Remove the top into *out (heap must be non-empty). */
static void heap_pop(spm_heap *h, spm_bigram *out) {
    *out = h->v[0];
    h->v[0] = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        if (l < h->n && bg_before(&h->v[l], &h->v[best])) best = l;
        if (r < h->n && bg_before(&h->v[r], &h->v[best])) best = r;
        if (best == i) break;
        spm_bigram t = h->v[best]; h->v[best] = h->v[i]; h->v[i] = t;
        i = best;
    }
}

/* Byte length of the UTF-8 sequence a lead byte announces; continuation or invalid
 * bytes count as 1 (same table as llama.cpp's unicode_len_utf8). */
static size_t utf8_len(uint8_t c) {
    static const uint8_t lens[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
    return lens[c >> 4];
}

typedef struct spm_ctx {
    const fr_tokenizer *t;
    const char *text;
    spm_sym *syms;
    spm_heap heap;
} spm_ctx;

/* Queue the pair (left, right) if their concatenation is a token. */
static int try_add(spm_ctx *c, int left, int right) {
    if (left < 0 || right < 0) return FRUGAL_OK;
    const spm_sym *l = &c->syms[left], *r = &c->syms[right];
    size_t size = l->n + r->n;
    int32_t id = fr_tok_find(c->t, c->text + l->off, size);
    if (id < 0) return FRUGAL_OK;
    spm_bigram b = { .left = left, .right = right, .score = fr_tok_score(c->t, id), .size = size };
    return heap_push(&c->heap, b);
}

/* Emit the ids for one final symbol: the token itself, or its bytes.
 * (llama.cpp first consults a reverse-merge map here; that path is unreachable,
 * because every merged symbol is a token by construction and an unmerged symbol
 * is a single character, which no pair of adjacent symbols can spell.) */
static int emit_symbol(spm_ctx *c, const spm_sym *s, fr_tokvec *out) {
    int32_t id = fr_tok_find(c->t, c->text + s->off, s->n);
    if (id >= 0) return fr_tokvec_push(out, id);
    static const char hex[] = "0123456789ABCDEF";
    for (size_t j = 0; j < s->n; j++) {
        uint8_t b = (uint8_t)c->text[s->off + j];
        char name[6] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>' };
        int32_t bid = fr_tok_find(c->t, name, sizeof name);
        if (bid < 0) bid = fr_tok_find(c->t, (const char *)&c->text[s->off + j], 1);
        if (bid < 0) bid = fr_tok_unk(c->t);   /* llama.cpp would throw here */
        if (bid < 0) continue;
        int rc = fr_tokvec_push(out, bid);
        if (rc != FRUGAL_OK) return rc;
    }
    return FRUGAL_OK;
}

/* Escape spaces as U+2581 "▁" into a fresh buffer (*out_len bytes, caller frees). */
static char *escape_spaces(const char *text, size_t len, size_t *out_len) {
    size_t n_sp = 0;
    for (size_t i = 0; i < len; i++) n_sp += text[i] == ' ';
    if (n_sp > (SIZE_MAX - len - 1) / 2) return NULL;
    size_t n = len + 2 * n_sp;
    char *buf = fr_malloc(n + 1);
    if (!buf) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            buf[o++] = (char)0xE2; buf[o++] = (char)0x96; buf[o++] = (char)0x81;
        } else {
            buf[o++] = text[i];
        }
    }
    buf[o] = '\0';
    *out_len = n;
    return buf;
}

/* Contract: text is one plain fragment that already carries any space prefix the
 * caller wants (tokenizer.c adds it per llama.cpp's rules); spaces are escaped
 * here. Appends ids to out. FRUGAL_OK, FRUGAL_E_NOMEM or FRUGAL_E_INVALID_ARG. */
int fr_spm_encode(const fr_tokenizer *t, const char *text, size_t len, fr_tokvec *out) {
    if (!t || !out || (!text && len)) return FRUGAL_E_INVALID_ARG;
    if (len == 0) return FRUGAL_OK;
    size_t n;
    char *esc = escape_spaces(text, len, &n);
    if (!esc) return FRUGAL_E_NOMEM;
    if (n > (size_t)INT32_MAX) { free(esc); return FRUGAL_E_INVALID_ARG; }

    spm_ctx c = { .t = t, .text = esc };
    c.syms = fr_malloc(n * sizeof *c.syms);
    int rc = c.syms ? FRUGAL_OK : FRUGAL_E_NOMEM;
    int n_sym = 0;
    for (size_t off = 0; rc == FRUGAL_OK && off < n;) {
        size_t l = utf8_len((uint8_t)esc[off]);
        if (l > n - off) l = n - off;
        c.syms[n_sym] = (spm_sym){ .prev = n_sym - 1, .off = off, .n = l };
        off += l;
        c.syms[n_sym].next = off == n ? -1 : n_sym + 1;
        n_sym++;
    }
    for (int i = 1; rc == FRUGAL_OK && i < n_sym; i++) rc = try_add(&c, i - 1, i);

    while (rc == FRUGAL_OK && c.heap.n > 0) {
        spm_bigram b;
        heap_pop(&c.heap, &b);
        spm_sym *l = &c.syms[b.left], *r = &c.syms[b.right];
        /* skip pairs where either side already merged elsewhere or grew */
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) c.syms[r->next].prev = b.left;
        rc = try_add(&c, l->prev, b.left);
        if (rc == FRUGAL_OK) rc = try_add(&c, b.left, l->next);
    }
    for (int i = 0; rc == FRUGAL_OK && n_sym > 0 && i != -1; i = c.syms[i].next)
        rc = emit_symbol(&c, &c.syms[i], out);

    free(c.heap.v);
    free(c.syms);
    free(esc);
    return rc;
}
