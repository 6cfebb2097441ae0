/* args.h - the flag parser and error reporting shared by the frugal subcommands.
 *
 * Exit codes of the CLI: 0 success (and --help), 1 a model/file/runtime error,
 * 2 a usage error (unknown subcommand or flag, missing or invalid value). Every
 * error goes to stderr as "frugal: error: <what>". Numbers are parsed strictly:
 * the whole argument must be a number in range (no trailing junk, no overflow,
 * no negatives where the flag does not allow them). */
#ifndef FRUGAL_CLI_ARGS_H
#define FRUGAL_CLI_ARGS_H

#include <stddef.h>
#include <stdint.h>

#include "frugal.h"

enum { EXIT_USAGE = 2 };

typedef enum opt_kind {
    OPT_FLAG,   /* no value; sets *(int *)dst = 1 */
    OPT_INT,    /* int, within [min, max] */
    OPT_U64,    /* uint64_t, decimal, no sign */
    OPT_FLOAT,  /* finite float, within [min, max] */
    OPT_STR,    /* const char * (points into argv) */
} opt_kind;

typedef struct opt {
    const char *short_name; /* e.g. "-m", or NULL */
    const char *long_name;  /* e.g. "--model", or NULL */
    opt_kind kind;
    void *dst;
    double min, max;        /* inclusive bounds for OPT_INT / OPT_FLOAT */
} opt;

enum { ARGS_OK = 0, ARGS_HELP = 1, ARGS_ERROR = 2 };

/* Parse argv[0..argc) (the subcommand's arguments, without its name). Flags may be
 * given as "--flag value" or "--flag=value"; "--" ends the flags. Positional
 * arguments go to pos (at most max_pos, else a usage error), their count to *n_pos.
 * Returns ARGS_OK, ARGS_HELP when -h/--help was seen, or ARGS_ERROR after printing
 * the error. */
int args_parse(int argc, char **argv, const opt *opts, int n_opts, const char **pos,
               int max_pos, int *n_pos);

/* Print "frugal: error: <formatted>" and a newline to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Read a whole file into a malloc'd, NUL-terminated buffer (*len excludes the NUL).
 * On failure prints "frugal: error: <path>: <reason>" and returns NULL. */
char *cli_read_file(const char *path, size_t *len);

/* The KV flags shared by run, bench and perplexity: --kv-type T and --kv-policy P
 * (either may be NULL) into cp's kv_type and policy fields. 0 ok; otherwise the
 * usage error has been printed and the caller returns EXIT_USAGE. */
/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid, RFC 3629). */
size_t cli_utf8_valid_len(const unsigned char *s, size_t n);

int cli_kv_options(const char *kv_type, const char *kv_policy, frugal_context_params *cp);

/* The GPU flags of run, bench, perplexity and serve (llama.cpp's names): -ngl /
 * --gpu-layers / --n-gpu-layers N (-1: all, when a device exists), --vram SIZE and
 * --gpu-stream (one flag per process: the CLI runs one subcommand). */
extern int cli_gpu_stream;
#define CLI_GPU_OPTS(ngl, vram)                                                  \
    {"-ngl", "--gpu-layers", OPT_INT, &(ngl), -1, 1 << 20},                      \
    {NULL, "--n-gpu-layers", OPT_INT, &(ngl), -1, 1 << 20},                      \
    {NULL, "--vram", OPT_STR, &(vram), 0, 0},                                    \
    {NULL, "--gpu-stream", OPT_FLAG, &cli_gpu_stream, 0, 0}
/* Put the GPU flags into mp. 0 ok; otherwise the usage error has been printed. */
int cli_gpu_options(int ngl, const char *vram, frugal_model_params *mp);

/* Subcommands: each gets its arguments after the subcommand name; returns the exit code. */
int cmd_run(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_chat(int argc, char **argv);

#endif
