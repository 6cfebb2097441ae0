/* unicode.c - code point classes, UTF-8 and the GPT-2 byte mapping (see unicode.h). */
#include "core/fault.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>

unsigned fr_unicode_flags(uint32_t cp) {
    if (cp >= 0x110000) return FR_UCAT_UNDEF;  /* llama.cpp: "undefined", not empty */
    /* Binary search for the last run starting at or before cp. The first run starts
     * at 0, so the answer always exists. */
    size_t lo = 0, hi = fr_unicode_n_runs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if ((fr_unicode_runs[mid] >> 8) <= cp) lo = mid; else hi = mid;
    }
    return fr_unicode_runs[lo] & 0xff;
}

uint32_t fr_unicode_lower_ascii(uint32_t cp) {
    if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
    for (size_t i = 0; i < fr_unicode_n_lower_ascii; i++)
        if (fr_unicode_lower_ascii_map[i][0] == cp) return fr_unicode_lower_ascii_map[i][1];
    return cp;
}

uint32_t fr_utf8_decode(const char *s, size_t len, size_t *off) {
    const uint8_t *u = (const uint8_t *)s;
    size_t o = *off;
    uint8_t c = u[o];
    /* Same acceptance rules as llama.cpp's unicode_cpt_from_utf8: the lead byte picks
     * the length, continuation bytes must be 10xxxxxx, nothing else is checked. */
    if (!(c & 0x80)) { *off = o + 1; return c; }
    if ((c & 0x40) && !(c & 0x20)) {
        if (o + 1 < len && (u[o + 1] & 0xc0) == 0x80) {
            *off = o + 2;
            return ((uint32_t)(c & 0x1f) << 6) | (u[o + 1] & 0x3f);
        }
    } else if ((c & 0x40) && !(c & 0x10)) {
        if (o + 2 < len && (u[o + 1] & 0xc0) == 0x80 && (u[o + 2] & 0xc0) == 0x80) {
            *off = o + 3;
            return ((uint32_t)(c & 0x0f) << 12) | ((uint32_t)(u[o + 1] & 0x3f) << 6) |
                   (u[o + 2] & 0x3f);
        }
    } else if ((c & 0x40) && !(c & 0x08)) {
        if (o + 3 < len && (u[o + 1] & 0xc0) == 0x80 && (u[o + 2] & 0xc0) == 0x80 &&
            (u[o + 3] & 0xc0) == 0x80) {
            *off = o + 4;
            return ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(u[o + 1] & 0x3f) << 12) |
                   ((uint32_t)(u[o + 2] & 0x3f) << 6) | (u[o + 3] & 0x3f);
        }
    }
    *off = o + 1;
    return 0xFFFD;
}

size_t fr_utf8_encode(uint32_t cp, char out[4]) {
    /* llama.cpp throws on values above U+10FFFF (only reachable from F5..F7 lead
     * bytes); we must not fail, so they become the replacement character. */
    if (cp > 0x10FFFF) cp = 0xFFFD;
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

int fr_utf8_to_cpts(const char *s, size_t len, uint32_t **out, size_t *n) {
    uint32_t *v = fr_malloc((len ? len : 1) * sizeof *v);
    if (!v) return -1;
    size_t k = 0, off = 0;
    while (off < len) v[k++] = fr_utf8_decode(s, len, &off);
    *out = v;
    *n = k;
    return 0;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes ('!'..'~', 0xA1..0xAC,
 * 0xAE..0xFF) stand for themselves; the other 68 bytes, in increasing order, take
 * the code points 256, 257, ... so that every byte has a visible, non-space glyph. */
static int is_self_byte(unsigned b) {
    return (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae);
}

uint32_t fr_gpt2_byte_to_cpt(uint8_t b) {
    if (is_self_byte(b)) return b;
    uint32_t n = 0;
    for (unsigned i = 0; i < b; i++)
        if (!is_self_byte(i)) n++;
    return 256 + n;
}

int fr_gpt2_cpt_to_byte(uint32_t cp) {
    if (cp < 256) return is_self_byte(cp) ? (int)cp : -1;
    if (cp >= 256 + 68) return -1;
    uint32_t n = cp - 256;
    for (unsigned i = 0; i < 256; i++) {
        if (is_self_byte(i)) continue;
        if (n == 0) return (int)i;
        n--;
    }
    return -1;
}
