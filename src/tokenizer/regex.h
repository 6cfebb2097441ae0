/* regex.h - a small backtracking regex matcher over code-point arrays, written to
 * reproduce what llama.cpp gets from std::regex (ECMAScript grammar, libstdc++) for the
 * pre-tokenizer patterns:
 *   - alternation picks the first alternative that leads to an overall match (not the
 *     longest), quantifiers are greedy unless followed by '?', with backtracking;
 *   - supported syntax: | ( ) (?: ) (?= ) (?! ) [...] [^...] with ranges, . $ and the
 *     escapes \s \S \d \D \w \W \r \n \t \f \v \xHH \uHHHH \p{..} and identity escapes,
 *     quantifiers ? * + {n} {n,} {n,m}.
 *
 * Two modes, as in llama.cpp's unicode_regex_split:
 *   - "collapsed" (the pattern names \p{..} categories): the text is the collapsed
 *     symbol string (see fr_regex_collapse) and \p{X} means that category's stand-in
 *     byte plus the ASCII characters of X (\p{S} lacks '~' and \p{M} has none, both
 *     as in llama.cpp); every \p{L*} subclass means all letters;
 *   - "wide": the text is the code points with non-ASCII whitespace replaced by 0x0B.
 * \s, \d, \w are the ASCII classes of the "C" locale in both modes. */
#ifndef FRUGAL_REGEX_H
#define FRUGAL_REGEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct fr_regex fr_regex;

/* Does llama.cpp run this pattern on collapsed text (it mentions \p{N} \p{L} \p{P}
 * \p{M} \p{S} or a \p{L?} subclass)? */
bool fr_regex_wants_collapsed(const char *pattern);

/* Compile a UTF-8 pattern. FRUGAL_OK, FRUGAL_E_UNSUPPORTED (syntax outside the
 * subset, or non-ASCII in a collapsed pattern, which llama.cpp rejects too) or
 * FRUGAL_E_NOMEM; *out must be freed with fr_regex_free. */
int fr_regex_compile(const char *pattern, bool collapsed, fr_regex **out, fr_err *err);
void fr_regex_free(fr_regex *re);

/* Turn code points into the text a pattern of re's mode runs on (in place on a copy:
 * dst and src may be the same array). */
void fr_regex_prepare_text(bool collapsed, const uint32_t *src, uint32_t *dst, size_t n);

/* Leftmost match in s[0..n) starting at or after `from` (s[from..] only; $ means n).
 * With `anchored_nonempty` the match must start exactly at `from` and be non-empty
 * (std::regex_iterator's retry after an empty match).
 * Returns 1 and sets [*ms, *me) on a match, 0 if none, -1 if the backtracking depth
 * limit was hit (pathological input). */
int fr_regex_search(const fr_regex *re, const uint32_t *s, size_t n, size_t from,
                    bool anchored_nonempty, size_t *ms, size_t *me);

#endif
