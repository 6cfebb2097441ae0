/* cmd_tokenize.c - `frugal tokenize -m MODEL (-p TEXT | -f FILE) [--no-special]`:
 * print the token ids, space-separated, on one line. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal tokenize -m MODEL (-p TEXT | -f FILE) [--no-special]\n\n"
            "Print the token ids of TEXT (or of FILE's bytes, exactly) on one line.\n\n"
            "  -m, --model M   GGUF model (its tokenizer.* metadata is used)\n"
            "  -p, --prompt T  text to tokenize\n"
            "  -f, --file F    read the text from F\n"
            "  --no-special    add no BOS/EOS and treat special-token text (\"<s>\") as\n"
            "                  plain text (default: BOS as the metadata says, specials parsed)\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model_path = NULL, *text = NULL, *file = NULL;
    int no_special = 0;
    const opt opts[] = {
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {"-p", "--prompt", OPT_STR, &text, 0, 0},
        {"-f", "--file", OPT_STR, &file, 0, 0},
        {NULL, "--no-special", OPT_FLAG, &no_special, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (!model_path) { cli_error("tokenize: -m MODEL is required"); return EXIT_USAGE; }
    if (!text == !file) {
        cli_error("tokenize: give exactly one of -p TEXT or -f FILE");
        return EXIT_USAGE;
    }

    char *owned = NULL;
    size_t len;
    if (file) {
        owned = cli_read_file(file, &len);
        if (!owned) return 1;
        text = owned;
    } else {
        len = strlen(text);
    }

    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.vocab_only = 1; /* tokenizing needs no weights: vocabulary-only GGUFs work too */
    frugal_model *model = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        free(owned);
        return 1;
    }

    int special = !no_special;
    /* a first guess that fits almost always; the API says how many when it does not */
    int cap = (int)(len < 1u << 28 ? len : 1u << 28) + 8;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    int n = ids ? frugal_tokenize(model, text, len, special, special, ids, cap) : 0;
    if (ids && n < 0 && n != INT_MIN) { /* INT_MIN: failure, not a size */
        cap = -n;
        int32_t *more = realloc(ids, (size_t)cap * sizeof *ids);
        if (more) ids = more;
        n = more ? frugal_tokenize(model, text, len, special, special, ids, cap) : -1;
    }
    int rc = 0;
    if (!ids || n < 0) {
        cli_error("%s: tokenizing failed (out of memory or the tokenizer refused the text)", model_path);
        rc = 1;
    } else {
        for (int i = 0; i < n; i++) printf(i ? " %d" : "%d", ids[i]);
        putchar('\n');
    }
    free(ids);
    frugal_model_free(model);
    free(owned);
    return rc;
}
