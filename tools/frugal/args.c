/* args.c - strict flag parsing for the frugal CLI (see args.h). */
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_error(const char *fmt, ...) {
    va_list ap;
    fputs("frugal: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

char *cli_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cli_error("%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0) break;
    }
    int failed = !buf || ferror(f);
    int saved = errno;
    fclose(f);
    if (failed) {
        cli_error("%s: %s", path, buf ? strerror(saved) : "out of memory");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len) *len = n;
    return buf;
}

/* Parse s as a whole decimal integer into *out; 0 on success. Leading whitespace and
 * '+' are rejected too: what the user typed must be exactly a number. */
static int parse_ll(const char *s, long long *out) {
    if (!*s || !(*s == '-' || (*s >= '0' && *s <= '9'))) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

/* Store the value of option o from text val; ARGS_ERROR with a message on failure. */
static int set_value(const opt *o, const char *name, const char *val) {
    switch (o->kind) {
    case OPT_INT: {
        long long v;
        if (parse_ll(val, &v) != 0) {
            cli_error("%s: '%s' is not a valid integer", name, val);
            return ARGS_ERROR;
        }
        if ((double)v < o->min || (double)v > o->max) {
            cli_error("%s: %s is out of range [%.0f, %.0f]", name, val, o->min, o->max);
            return ARGS_ERROR;
        }
        *(int *)o->dst = (int)v;
        return ARGS_OK;
    }
    case OPT_U64: {
        if (!*val || *val < '0' || *val > '9') {
            cli_error("%s: '%s' is not a valid unsigned integer", name, val);
            return ARGS_ERROR;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(val, &end, 10);
        if (errno || *end) {
            cli_error("%s: '%s' is not a valid unsigned 64-bit integer", name, val);
            return ARGS_ERROR;
        }
        *(uint64_t *)o->dst = (uint64_t)v;
        return ARGS_OK;
    }
    case OPT_FLOAT: {
        char *end;
        errno = 0;
        float v = strtof(val, &end);
        if (!*val || *end || errno || !isfinite(v) || val[0] == ' ' || val[0] == '\t') {
            cli_error("%s: '%s' is not a valid number", name, val);
            return ARGS_ERROR;
        }
        if ((double)v < o->min || (double)v > o->max) {
            cli_error("%s: %s is out of range [%g, %g]", name, val, o->min, o->max);
            return ARGS_ERROR;
        }
        *(float *)o->dst = v;
        return ARGS_OK;
    }
    case OPT_STR:
        *(const char **)o->dst = val;
        return ARGS_OK;
    case OPT_FLAG:
        break;
    }
    cli_error("%s: internal error", name);
    return ARGS_ERROR;
}

/* More threads than CPUs only adds contention (every step ends in a barrier that
 * waits for the descheduled ones): such a -t is lowered to the CPU count, with a
 * warning, rather than taken literally. */
static void clamp_threads(void *dst) {
    int *n = dst, cpus = frugal_cpu_count();
    if (*n <= cpus) return;
    fprintf(stderr, "frugal: warning: -t %d: only %d CPU%s available to this process; using %d threads\n",
            *n, cpus, cpus == 1 ? " is" : "s are", cpus);
    *n = cpus;
}

int args_parse(int argc, char **argv, const opt *opts, int n_opts, const char **pos,
               int max_pos, int *n_pos) {
    *n_pos = 0;
    int only_pos = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') {
            if (*n_pos >= max_pos) {
                cli_error("unexpected argument '%s'", a);
                return ARGS_ERROR;
            }
            pos[(*n_pos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) { only_pos = 1; continue; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) return ARGS_HELP;
        /* split "--flag=value" */
        const char *eq = (a[1] == '-') ? strchr(a, '=') : NULL;
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const opt *o = NULL;
        for (int k = 0; k < n_opts && !o; k++) {
            const char *names[2] = {opts[k].short_name, opts[k].long_name};
            for (int j = 0; j < 2; j++)
                if (names[j] && strlen(names[j]) == nlen && strncmp(names[j], a, nlen) == 0)
                    o = &opts[k];
        }
        if (!o) {
            cli_error("unknown flag '%.*s'", (int)nlen, a);
            return ARGS_ERROR;
        }
        if (o->kind == OPT_FLAG) {
            if (eq) {
                cli_error("%.*s takes no value", (int)nlen, a);
                return ARGS_ERROR;
            }
            *(int *)o->dst = 1;
            continue;
        }
        const char *val;
        if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc) {
                cli_error("%s: missing value", a);
                return ARGS_ERROR;
            }
            val = argv[++i];
        }
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)nlen, a);
        if (set_value(o, name, val) != ARGS_OK) return ARGS_ERROR;
        if (o->kind == OPT_INT && o->long_name && strcmp(o->long_name, "--threads") == 0) clamp_threads(o->dst);
    }
    return ARGS_OK;
}

int cli_kv_options(const char *kv_type, const char *kv_policy, frugal_context_params *cp) {
    if (kv_type) {
        cp->kv_type = frugal_kv_type_parse(kv_type);
        if (cp->kv_type < 0) {
            cli_error("--kv-type: '%s' is not one of f16, f32, q8_0, q4_0, k8v4", kv_type);
            return -1;
        }
    }
    if (kv_policy && frugal_kv_policy_parse(kv_policy, cp) != 0) {
        cli_error("--kv-policy: '%s' is not window:W[,sinks:S] or summary:CHUNK[,keep:N][,slots:S]", kv_policy);
        return -1;
    }
    return 0;
}

size_t cli_utf8_valid_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return 0;
    if ((cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) return 0;
    return len;
}

int cli_gpu_stream = 0;

int cli_gpu_options(int ngl, const char *vram, frugal_model_params *mp) {
    uint64_t bytes = 0;
    if (vram && frugal_parse_size(vram, &bytes) != 0) {
        cli_error("--vram: '%s' is not a size such as 512M or 2G", vram);
        return -1;
    }
    if (vram && ngl == 0) ngl = -1; /* a VRAM budget alone: as many layers as fit */
    mp->n_gpu_layers = ngl;
    mp->vram_budget = bytes;
    mp->gpu_stream = cli_gpu_stream;
    return 0;
}
