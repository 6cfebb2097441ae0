/* cmd_inspect.c - `frugal inspect MODEL`: metadata, tensor table and size summary. */
#include <stdio.h>

#include "args.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal inspect MODEL.gguf\n\n"
            "Print a GGUF file's header, every metadata key with its type and value, the\n"
            "tensor table (name, type, shape, bytes, offset) and a summary by tensor type.\n"
            "Tensor types frugal cannot run are flagged.\n");
}

int cmd_inspect(int argc, char **argv) {
    const char *pos[1];
    int n_pos = 0;
    int r = args_parse(argc, argv, NULL, 0, pos, 1, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (n_pos != 1) {
        cli_error("inspect: expected one model path (see 'frugal inspect --help')");
        return EXIT_USAGE;
    }
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_inspect(pos[0], stdout, &err) != FRUGAL_OK) {
        fflush(stdout);
        cli_error("%s", err.message); /* the message starts with the path */
        return 1;
    }
    return 0;
}
