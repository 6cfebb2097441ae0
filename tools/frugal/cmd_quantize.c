/* cmd_quantize.c - `frugal quantize IN.gguf OUT.gguf --type T`: rewrite a model's
 * weight matrices in another type, with llama-quantize's tensor rules, then print
 * a size summary. The work is frugal_quantize (src/api/quantize.c). */
#include <stdio.h>
#include <unistd.h>

#include "args.h"
#include "progress.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal quantize IN.gguf OUT.gguf (--type T | --policy auto (--size S | --bpw B))\n"
            "                      [--keep-first N] [--keep-output] [-t T]\n\n"
            "Write OUT with the weight matrices of IN converted to T, as llama-quantize does:\n"
            "tensors in llama.cpp's order, norms and other 1-D tensors unchanged, output.weight as\n"
            "Q6_K for q4_0/q4_k/q5_k (Q8_0 stays Q8_0), and for q4_k / q5_k llama.cpp's Q4_K_M /\n"
            "Q5_K_M mix (attn_v and ffn_down of some layers as Q6_K; q5_k_s: Q5_K throughout).\n"
            "Metadata is copied; general.file_type gets llama.cpp's number (f32 0, f16 1, q4_0 2,\n"
            "q8_0 7, q4_k 15 = Q4_K_M, q5_k_s 16, q5_k_m = q5_k 17, q6_k 18).\n"
            "The low-bit mixes q2_k (10), q3_k_s (11), q3_k_m = q3_k (12), q3_k_l (13), iq4_nl (25),\n"
            "iq4_xs (30), iq3_s (26) and iq3_m (27) follow llama.cpp's rules for those names\n"
            "(attn_v, attn_output and ffn_down get more bits), as llama-quantize writes them without an importance matrix.\n"
            "Input may be F32, F16 or BF16; quantized input is dequantized and re-quantized (with\n"
            "a warning). Rows that fit no block of T keep their type (with a note). OUT is\n"
            "written to OUT.tmp and renamed; IN is never modified.\n\n"
            "  --type T          q8_0, q4_0, q4_k, q5_k_s|m, q6_k, q3_k_s|m|l, q2_k, iq4_nl, iq4_xs,\n"
            "                    iq3_s,\n"
            "                    iq3_m, iq3_xxs, iq2_xxs, iq2_xs, iq2_s, iq2_m, iq1_s, iq1_m\n"
            "                    (iq3_xxs, iq2_*, iq1_* need --calib), f16 or\n"
            "                    f32; or frugal-only (files other\n"
            "                    engines cannot read): i8c (int8 per row, F16 row scale, ~8.06 bpw),\n"
            "                    nf4 (4-bit NormalFloat, 64-blocks, 8-bit double-quantized\n"
            "                    scales, 4.19 bpw; output.weight Q6_K), fp8o (FP8 E4M3, 128-blocks,\n"
            "                    F16 scale, up to 4 F16 outliers per block, 8.875 bpw)\n"
            "  --policy auto     instead of --type: choose each weight matrix's type (F16 .. Q2_K,\n"
            "                    K and IQ types, I8C, NF4, FP8O) for the least predicted KL within\n"
            "                    the budget: relative error x the matrix's measured sensitivity\n"
            "                    (one model run per matrix); prints the choice table\n"
            "  --size SIZE       policy budget in bytes of tensor data (64M, 1.5G, ...)\n"
            "  --bpw B           policy budget in bits per weight over all tensors\n"
            "  --calib FILE      weight each input channel's error by its mean squared\n"
            "                    activation over this text (runs the input model over it): for\n"
            "                    policy auto's choice, and with --type for the Q2_K, Q3_K,\n"
            "                    IQ4_NL, IQ4_XS, IQ3_S, IQ3_XXS, IQ2 and IQ1 writers (an\n"
            "                    importance matrix; required for iq3_xxs, iq2_*, iq1_*)\n"
            "  --keep-first N    keep the matrices of the first N layers in their input type\n"
            "  --keep-output     keep output.weight (token_embd.weight if tied) in its input type\n"
            "  -t, --threads N   threads (default 0: all cores)\n"
            "  --progress        a progress line per 10 %% (default: a bar on a terminal only)\n");
}

/* frugal_quantize's per-tensor callback: drives the CLI's progress display. */
static void on_progress(void *user, uint64_t done, uint64_t total, const char *what) {
    cli_progress *p = user;
    p->total = total ? total : 1;
    progress_update(p, done, what);
}

int cmd_quantize(int argc, char **argv) {
    frugal_quantize_params p;
    frugal_quantize_params_default(&p);
    p.type = NULL;
    const char *size = NULL;
    float bpw = 0.0f;
    int progress_lines = 0;
    const opt opts[] = {
        {NULL, "--progress", OPT_FLAG, &progress_lines, 0, 0},
        {NULL, "--type", OPT_STR, &p.type, 0, 0},
        {NULL, "--policy", OPT_STR, &p.policy, 0, 0},
        {NULL, "--calib", OPT_STR, &p.calib, 0, 0},
        {NULL, "--size", OPT_STR, &size, 0, 0},
        {NULL, "--bpw", OPT_FLOAT, &bpw, 0.5, 64},
        {NULL, "--keep-first", OPT_INT, &p.keep_first, 0, 1 << 20},
        {NULL, "--keep-output", OPT_FLAG, &p.keep_output, 0, 0},
        {"-t", "--threads", OPT_INT, &p.n_threads, 0, 4096},
    };
    const char *pos[2];
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, 2, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (n_pos != 2) { cli_error("quantize: give IN.gguf and OUT.gguf (see 'frugal quantize --help')"); return EXIT_USAGE; }
    if (p.policy) {
        if (p.type) { cli_error("quantize: give --type or --policy, not both"); return EXIT_USAGE; }
        if (!size == !(bpw > 0.0f)) { cli_error("quantize: --policy needs one of --size or --bpw"); return EXIT_USAGE; }
        if (size && frugal_parse_size(size, &p.budget_bytes) != 0) {
            cli_error("quantize: --size '%s' is not a size (e.g. 3M, 1.5G)", size);
            return EXIT_USAGE;
        }
        p.budget_bpw = bpw;
    } else if (size || bpw > 0.0f) {
        cli_error("quantize: --size and --bpw go with --policy auto");
        return EXIT_USAGE;
    } else if (!p.type) { cli_error("quantize: --type is required"); return EXIT_USAGE; }
    cli_progress prog;
    progress_init(&prog, "quantize", 0, progress_lines);
    p.on_progress = on_progress;
    p.progress_user = &prog;

    frugal_quantize_stats s;
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = frugal_quantize(pos[0], pos[1], &p, &s, &err);
    progress_finish(&prog);
    if (rc != FRUGAL_OK) {
        cli_error("%s", err.message);
        return rc == FRUGAL_E_INVALID_ARG ? EXIT_USAGE : 1;
    }
    double n = s.n_params ? (double)s.n_params : 1.0;
    fprintf(stderr,
            "quantize: %s -> %s: %d tensors (%d converted), %.2f MiB -> %.2f MiB of tensor data, "
            "%.3f -> %.3f bits per weight, %.2f s\n",
            pos[0], pos[1], s.n_tensors, s.n_quantized, (double)s.bytes_in / 1048576.0,
            (double)s.bytes_out / 1048576.0, 8.0 * (double)s.bytes_in / n, 8.0 * (double)s.bytes_out / n,
            progress_elapsed(&prog));
    return 0;
}
