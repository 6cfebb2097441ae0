/* main.c - `frugal <subcommand> [flags]`: dispatch to the subcommands.
 * The CLI uses only the public API (include/frugal.h). */
#include <stdio.h>
#include <string.h>

#include "args.h"
#include "frugal.h"

int cmd_serve(int argc, char **argv); /* cmd_serve.c */
int cmd_monitor(int argc, char **argv); /* cmd_monitor.c */

typedef struct subcommand {
    const char *name;
    const char *summary;
    int (*fn)(int argc, char **argv);
} subcommand;

static const subcommand k_cmds[] = {
    {"run", "generate text from a prompt", cmd_run},
    {"chat", "interactive chat in the model's template, KV cache kept between turns", cmd_chat},
    {"tokenize", "print the token ids of a text", cmd_tokenize},
    {"inspect", "print a GGUF file's metadata and tensor table", cmd_inspect},
    {"mkmodel", "write a random-weight model for tests and benchmarks", cmd_mkmodel},
    {"bench", "measure prompt and generation speed against the memory roofline", cmd_bench},
    {"perplexity", "perplexity and KL-divergence of a model on a text", cmd_perplexity},
    {"quantize", "convert a model's weights to another type", cmd_quantize},
    {"convert", "a Hugging Face folder (safetensors) to GGUF, quantized on the way", cmd_convert},
    {"serve", "OpenAI-compatible HTTP server with continuous batching", cmd_serve},
    {"plan", "show how a model runs inside a memory budget (--mem)", cmd_plan},
    {"monitor", "print the temperature, power and memory readings the safety policy uses", cmd_monitor},
};

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal <subcommand> [flags]\n"
            "       frugal --help | --version\n\n"
            "subcommands:\n");
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        fprintf(out, "  %-10s %s\n", k_cmds[i].name, k_cmds[i].summary);
    fprintf(out, "\nRun 'frugal <subcommand> --help' for its flags.\n"
                 "Exit status: 0 ok, 1 model/file error, 2 usage error.\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        cli_error("missing subcommand");
        return EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(sub, "--version") == 0) {
        printf("frugal %s\n", FRUGAL_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof k_cmds / sizeof k_cmds[0]; i++)
        if (strcmp(sub, k_cmds[i].name) == 0) return k_cmds[i].fn(argc - 2, argv + 2);
    if (sub[0] == '-') cli_error("unknown flag '%s' (flags come after the subcommand)", sub);
    else cli_error("unknown subcommand '%s' (try 'frugal --help')", sub);
    return EXIT_USAGE;
}
