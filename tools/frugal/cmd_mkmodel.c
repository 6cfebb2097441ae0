/* cmd_mkmodel.c - `frugal mkmodel ...`: write a random-weight model of any family with
 * a real tokenizer, for tests and benchmarks of shapes we have no trained file for. */
#include <stdio.h>

#include "args.h"
#include "frugal.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal mkmodel --arch A --dim D --layers L --heads H --kv-heads K\n"
            "                      --ffn F --vocab-from VOCAB.gguf --type f32|f16|q8_0|q4_0\n"
            "                      -o OUT.gguf [--head-dim N] [--window W] [--seed S] [--tied]\n"
            "                      [--experts N --experts-used K [--expert-skew S]] [--ctx N] [--rope-base B]\n\n"
            "Write a model with random weights (deterministic for a seed) and the tokenizer\n"
            "metadata of VOCAB.gguf. Norm weights are near 1, matrices N(0, 1/sqrt(fan_in)).\n"
            "Norms and biases stay F32; all matrices (token_embd included) get --type.\n\n"
            "  --arch A        llama (default), qwen2, qwen3, qwen3moe, gemma, gemma2, gemma3, phi3\n"
            "                  or gpt2: the tensors the family's description requires\n"
            "  --dim D         embedding length (multiple of --heads unless --head-dim)\n"
            "  --layers L      number of blocks\n"
            "  --heads H       attention heads\n"
            "  --kv-heads K    KV heads (divides H; default H)\n"
            "  --ffn F         feed-forward length\n"
            "  --head-dim N    attention head size (default D / H)\n"
            "  --window W      sliding window of the local layers (gemma2, gemma3)\n"
            "  --experts N     mixture of experts (qwen3moe; llama: Mixtral's layout);\n"
            "                  --ffn is then each expert's size\n"
            "  --experts-used K  experts each token is routed to\n"
            "  --expert-skew S  skewed routing (0..20, default 0: uniform): each layer's router\n"
            "                  rows are scaled from 1 down to e^-S, so a few experts win most picks\n"
            "  --vocab-from V  GGUF file whose tokenizer.* keys are copied\n"
            "  --type T        f32, f16, q8_0 or q4_0 (quantized: D and F multiples of 32)\n"
            "  -o, --output P  output path (written to P.tmp, then renamed)\n"
            "  --seed S        RNG seed (default 42)\n"
            "  --tied          no output.weight: the output reuses token_embd (gemma: always)\n"
            "  --ctx N         context_length metadata (default 4096)\n"
            "  --rope-base B   rope.freq_base (default: the family's, 10000; qwen2/3 1000000)\n");
}

int cmd_mkmodel(int argc, char **argv) {
    frugal_mkmodel_params p;
    frugal_mkmodel_params_default(&p);
    const char *out = NULL;
    int tied = 0;
    p.n_kv_heads = 0;
    const opt opts[] = {
        {NULL, "--arch", OPT_STR, &p.arch, 0, 0},
        {NULL, "--dim", OPT_INT, &p.dim, 1, 1 << 20},
        {NULL, "--layers", OPT_INT, &p.n_layers, 1, 4096},
        {NULL, "--heads", OPT_INT, &p.n_heads, 1, 4096},
        {NULL, "--kv-heads", OPT_INT, &p.n_kv_heads, 1, 4096},
        {NULL, "--ffn", OPT_INT, &p.ffn, 1, 1 << 22},
        {NULL, "--head-dim", OPT_INT, &p.head_dim, 2, 1024},
        {NULL, "--window", OPT_INT, &p.window, 1, 1 << 24},
        {NULL, "--experts", OPT_INT, &p.n_expert, 1, 1024},
        {NULL, "--experts-used", OPT_INT, &p.n_expert_used, 1, 1024},
        {NULL, "--expert-skew", OPT_FLOAT, &p.expert_skew, 0, 20},
        {NULL, "--vocab-from", OPT_STR, &p.vocab_path, 0, 0},
        {NULL, "--type", OPT_STR, &p.type, 0, 0},
        {"-o", "--output", OPT_STR, &out, 0, 0},
        {NULL, "--seed", OPT_U64, &p.seed, 0, 0},
        {NULL, "--tied", OPT_FLAG, &tied, 0, 0},
        {NULL, "--ctx", OPT_INT, &p.ctx, 1, 1 << 24},
        {NULL, "--rope-base", OPT_FLOAT, &p.rope_base, 1, 1e12},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    p.tied = tied;
    if (p.n_kv_heads == 0) p.n_kv_heads = p.n_heads;
    const char *missing = !p.dim ? "--dim" : !p.n_layers ? "--layers" : !p.n_heads ? "--heads"
                        : !p.ffn ? "--ffn" : !p.vocab_path ? "--vocab-from" : !out ? "-o" : NULL;
    if (missing) {
        cli_error("mkmodel: %s is required (see 'frugal mkmodel --help')", missing);
        return EXIT_USAGE;
    }
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = frugal_mkmodel(&p, out, &err);
    if (rc != FRUGAL_OK) {
        cli_error("%s", err.message);
        /* bad parameter combinations are usage errors; I/O and bad vocab files are not */
        return rc == FRUGAL_E_INVALID_ARG ? EXIT_USAGE : 1;
    }
    return 0;
}
