/* cmd_convert.c - `frugal convert HF_DIR OUT.gguf [--type T | --policy auto --size S]`:
 * a Hugging Face model folder to GGUF (src/convert/, built with cJSON). */
#include <stdio.h>

#include "args.h"
#include "frugal.h"
#include "progress.h"

#ifdef FRUGAL_HAVE_CJSON
#include "convert/convert.h"
#endif

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal convert HF_DIR OUT.gguf [--type T | --policy auto --size S] [-t N] [--progress]\n\n"
            "Convert a Hugging Face model folder (config.json, model.safetensors or the shards of\n"
            "model.safetensors.index.json, tokenizer.model or tokenizer.json, tokenizer_config.json)\n"
            "to GGUF as llama.cpp's convert_hf_to_gguf.py does: the same tensor names, layouts,\n"
            "types and metadata. Families: Llama (incl. rope_scaling llama3/linear/yarn), Mistral,\n"
            "Mixtral, Qwen2, Qwen3, Qwen3-MoE, Gemma 1/2/3, Phi-3, GPT-2. Sources F32, F16 or BF16.\n"
            "One tensor at a time is read (memory-mapped) and written: peak memory is about the\n"
            "largest tensor. OUT is written to a temp file beside it and renamed.\n\n"
            "  --type T          f32, f16, bf16 (default: the source's type), or any quantize type\n"
            "                    (q8_0, q4_k, q6_k, ...: see 'frugal quantize --help'), quantized\n"
            "                    on the way through a float temp file beside OUT\n"
            "  --policy auto     with --size S: frugal quantize's per-tensor choice within S\n"
            "  -t, --threads N   quantization threads (default 0: all cores)\n"
            "  --progress        a progress line per 10 %% (default: a bar on a terminal only)\n");
}

#ifdef FRUGAL_HAVE_CJSON
static void on_progress(void *user, uint64_t done, uint64_t total, const char *what) {
    cli_progress *p = user;
    p->total = total ? total : 1;
    progress_update(p, done, what);
}
#endif

int cmd_convert(int argc, char **argv) {
    const char *type = NULL, *policy = NULL, *size = NULL;
    int threads = 0, progress_lines = 0;
    const opt opts[] = {
        {NULL, "--progress", OPT_FLAG, &progress_lines, 0, 0},
        {NULL, "--type", OPT_STR, &type, 0, 0},
        {NULL, "--policy", OPT_STR, &policy, 0, 0},
        {NULL, "--size", OPT_STR, &size, 0, 0},
        {"-t", "--threads", OPT_INT, &threads, 0, 4096},
    };
    const char *pos[2];
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), pos, 2, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (n_pos != 2) { cli_error("convert: give HF_DIR and OUT.gguf (see 'frugal convert --help')"); return EXIT_USAGE; }
    uint64_t budget = 0;
    if (policy) {
        if (type) { cli_error("convert: give --type or --policy, not both"); return EXIT_USAGE; }
        if (!size || frugal_parse_size(size, &budget) != 0) {
            cli_error("convert: --policy auto needs --size S (e.g. 300M, 4G)");
            return EXIT_USAGE;
        }
    } else if (size) {
        cli_error("convert: --size goes with --policy auto");
        return EXIT_USAGE;
    }
#ifdef FRUGAL_HAVE_CJSON
    cli_progress prog;
    progress_init(&prog, "convert", 0, progress_lines);
    fr_convert_params p = {pos[0], pos[1], type, policy, budget, threads, on_progress, &prog, stderr};
    fr_convert_stats s = {0};
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = fr_convert(&p, &s, &err);
    progress_finish(&prog);
    if (rc != FRUGAL_OK) {
        cli_error("%s", err.message);
        return rc == FRUGAL_E_INVALID_ARG ? EXIT_USAGE : 1;
    }
    fprintf(stderr, "convert: %s -> %s: %s, %d tensors, %.2f MiB of float tensor data%s%s, %.2f s\n", pos[0], pos[1],
            s.arch, s.n_tensors, (double)s.bytes_out / 1048576.0, type ? ", then " : "", type ? type : "",
            progress_elapsed(&prog));
    return 0;
#else
    (void)threads;
    cli_error("convert: this frugal was built without cJSON (Debian: libcjson-dev)");
    return 1;
#endif
}
