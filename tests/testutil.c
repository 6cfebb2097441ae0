#include "testutil.h"

#include <dirent.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int tu_failures = 0;
int tu_checks = 0;

const char *tu_shared(const char *rel) {
    static char bufs[8][4096];
    static int slot = 0;
    const char *root = getenv("FRUGAL_SHARED_DIR");
    if (!root || !*root) root = FRUGAL_SHARED_DIR;
    char *b = bufs[slot++ & 7];
    snprintf(b, sizeof bufs[0], "%s/%s", root, rel);
    if (access(b, R_OK) != 0) return NULL;
    return b;
}

const char *tu_need_shared(const char *rel) {
    const char *p = tu_shared(rel);
    if (!p) {
        printf("SKIP: ../shared/%s not found\n", rel);
        exit(77);
    }
    return p;
}

void tu_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

int tu_finish(const char *name) {
    int passed = tu_checks - tu_failures;
    printf("%s: %d passed, %d failed\n", name, passed, tu_failures);
    return tu_failures ? 1 : 0;
}

uint64_t tu_rand_u64(uint64_t *s) { /* splitmix64 */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float tu_rand_uniform(uint64_t *s) { return (float)(tu_rand_u64(s) >> 40) / 16777216.0f; }

float tu_rand_normal(uint64_t *s) {
    float u1 = tu_rand_uniform(s), u2 = tu_rand_uniform(s);
    if (u1 < 1e-7f) u1 = 1e-7f;
    return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    fclose(f);
    if (b) { b[n] = 0; if (len) *len = (size_t)n; }
    return b;
}

const char *tu_tmpdir(void) {
    static char dir[256];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/frugal-test-XXXXXX");
        if (!mkdtemp(dir)) { perror("mkdtemp"); exit(1); }
    }
    return dir;
}

bool tu_temp_left(const char *path) {
    char dir[1024], prefix[512];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    snprintf(prefix, sizeof prefix, "%s.tmp", slash ? slash + 1 : path);
    if (slash) *slash = '\0';
    else snprintf(dir, sizeof dir, ".");
    DIR *d = opendir(dir);
    if (!d) return false;
    size_t pl = strlen(prefix);
    bool found = false;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, pl) == 0 && (e->d_name[pl] == '\0' || e->d_name[pl] == '.')) found = true;
    closedir(d);
    return found;
}

void *tu_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

void *tu_calloc(size_t count, size_t n) {
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p) {
        fprintf(stderr, "test: out of memory (%zu x %zu bytes)\n", count, n);
        exit(1);
    }
    return p;
}
