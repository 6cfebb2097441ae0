/* testutil.h - the small harness every C test uses.
 * A test binary exits 0 when all checks pass, 1 when any failed, 77 when skipped
 * (ctest shows it as skipped). Checks print file:line and keep going. */
#ifndef FRUGAL_TESTUTIL_H
#define FRUGAL_TESTUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* TU_SANITIZED: 1 in ASan / TSan builds (gcc defines __SANITIZE_*, clang answers
 * __has_feature). Such a build runs ~3-10x slower: the heaviest tests run fewer of
 * their model-level cases there (the memory checks need the code paths, not every
 * repetition of them); the normal build runs them all. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define TU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define TU_SANITIZED 1
#endif
#endif
#ifndef TU_SANITIZED
#define TU_SANITIZED 0
#endif

extern int tu_failures;
extern int tu_checks;

#define CHECK(cond) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); } } while (0)
#define CHECKF(cond, ...) do { tu_checks++; if (!(cond)) { tu_failures++; \
    fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* Path of a file under ../shared (static buffer per call slot), or NULL when the
 * shared folder (or that file) is absent. */
const char *tu_shared(const char *rel);
/* Print "SKIP: why" and exit 77. */
void tu_skip(const char *why) __attribute__((noreturn));
/* tu_shared(rel), or skip the test (exit 77, the path named) when it is absent. */
const char *tu_need_shared(const char *rel) __attribute__((returns_nonnull));
/* Print a summary line "N passed, N failed" and return the exit code. */
int tu_finish(const char *name);

/* Deterministic RNG for tests. */
uint64_t tu_rand_u64(uint64_t *state);
float tu_rand_uniform(uint64_t *state);   /* [0,1) */
float tu_rand_normal(uint64_t *state);    /* N(0,1) */

/* Read a whole file (NUL-terminated); NULL on failure. Caller frees. */
/* malloc / calloc that end the test with a message when memory runs out: test code
 * never has to check (and the static analyzer sees the result is never NULL). */
void *tu_malloc(size_t n) __attribute__((malloc, returns_nonnull));
void *tu_calloc(size_t count, size_t n) __attribute__((malloc, returns_nonnull));

char *tu_read_file(const char *path, size_t *len);
/* 1 when a temp file of an output `path` is left beside it: any entry of its
 * directory named "<basename>.tmp" or "<basename>.tmp.*" (io/outfile.h's names). */
bool tu_temp_left(const char *path);
/* A fresh temporary directory path (created) for this test. */
const char *tu_tmpdir(void);

#endif
