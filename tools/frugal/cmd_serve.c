/* cmd_serve.c - `frugal serve`: an OpenAI-compatible HTTP server with continuous
 * batching (the implementation is in serve/; this file parses flags, loads the
 * model, wires the scheduler and the HTTP side together and waits for a signal).
 * Without libmicrohttpd and cJSON at build time it compiles to a stub. */
#include <stdio.h>

#include "args.h"
#include "safety_cli.h"
#include "frugal.h"

int cmd_serve(int argc, char **argv);

#ifndef FRUGAL_HAVE_SERVER

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("built without server support (install libmicrohttpd-dev and libcjson-dev)");
    return 1;
}

#else

#include <signal.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

#include "serve/serve.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal serve -m MODEL [flags]\n\n"
            "OpenAI-compatible HTTP server: POST /v1/chat/completions, /v1/completions\n"
            "(stream or not), GET /v1/models, /health, /metrics (Prometheus). Requests\n"
            "share one forward pass per step (continuous batching over --slots sequences).\n"
            "Stops cleanly on SIGINT/SIGTERM.\n\n"
            "  -m, --model M            GGUF model\n"
            "  --host H                 address to bind (default 127.0.0.1)\n"
            "  --port P                 port (default 8080; 0: any free port, printed at start)\n"
            "  --slots N                requests generated at once (default 4)\n"
            "  -c, --ctx-size N         context per slot (default 0: the model's, at most 4096)\n"
            "  -t, --threads N          threads (default 0: all cores)\n"
            "  --kv-type T              KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  --kv-policy P            window:W[,sinks:S] or summary:CHUNK[,keep:N][,slots:S]\n"
            "  --mem SIZE               memory budget (K/M/G): layers that do not fit are streamed\n"
            "  -ngl, --gpu-layers N   the last N layers' matrices on the GPU (Vulkan; -1: all);\n"
            "                         N > layers also the output matrix; no device: an error\n"
            "  --vram SIZE            device memory the layers may use (K/M/G); alone: -ngl -1\n"
            "  --no-repack              keep the weights in the file mapping (zero-copy) instead of\n"
            "                           repacking them for the faster prefill kernels\n"
            "  --api-key KEY            require 'Authorization: Bearer KEY' (all but /health)\n"
            "  --chat-template NAME     chatml, llama2, llama3, mistral, phi3, gemma, zephyr\n"
            "                           (default: recognised from the model, else chatml)\n"
            "  --max-body BYTES         largest request body (default 1M) -> 413\n"
            "  --max-prompt-tokens N    longest prompt (default: context - 1) -> 400\n"
            "  --timeout SEC            longest generation per request (default 600; then\n"
            "                           finish_reason \"length\")\n"
            "  --idle-timeout SEC       idle connections and bodies slower than this are\n"
            "                           dropped (default 10)\n"
            "  --header-timeout SEC     a connection must send its request headers within this\n"
            "                           many seconds of opening (or of the previous response);\n"
            "                           else it is closed, however slowly it drips (default 10)\n"
            "  --max-conns-per-ip N     open connections one client address may hold (default\n"
            "                           64; 0: no limit); more are refused at accept\n"
            "  --queue N                requests waiting for a slot before 503 (default 64)\n"
            "  --render FILE            print the prompt a chat request (JSON in FILE) renders\n"
            "                           to and exit (needs -m or --chat-template)\n"
            "safety policy (throttled: fewer sequences admitted and pauses between steps;\n"
            "readings and actions in /metrics):\n"
            SAFETY_HELP);
}

/* Choose the chat template: the flag, else the model's, else its family's format,
 * else ChatML with a warning. */
static int pick_template(const frugal_model *model, const char *name) {
    if (name) return srv_template_parse(name);
    const char *jinja = model ? frugal_model_meta_str(model, "tokenizer.chat_template") : NULL;
    int t = frugal_chat_template_of(model);
    if (t < 0) {
        fprintf(stderr, "frugal: warning: %s; using chatml (override with --chat-template)\n",
                jinja ? "the model's chat template is not one frugal knows" : "the model has no chat template");
        t = SRV_TMPL_CHATML;
    }
    return t;
}

static int render_only(const char *path, frugal_model *model, const char *tmpl_name) {
    srv_config cfg = {0};
    cfg.model = model;
    cfg.tmpl = pick_template(model, tmpl_name);
    size_t len = 0;
    char *body = cli_read_file(path, &len);
    if (!body) return 1;
    srv_error e = {0};
    char *text = srv_render_chat(&cfg, body, len, &e);
    free(body);
    if (!text) { cli_error("%s: %s", path, e.message); return 1; }
    fputs(text, stdout);
    free(text);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    const char *model_path = NULL, *host = "127.0.0.1", *api_key = NULL, *kv_str = "f16";
    const char *kv_policy = NULL, *mem_str = NULL;
    const char *tmpl_name = NULL, *max_body_str = "1M", *render = NULL;
    int no_repack = 0;
    int ngl = 0; /* GPU flags (args.h) */
    const char *vram_str = NULL;
    int port = 8080, slots = 4, n_ctx = 0, n_threads = 0, max_prompt = 0, timeout = 600, idle = 10, queue = 64;
    int header_timeout = 10, per_ip = 64;
    safety_flags sf = SAFETY_FLAGS_INIT;
    const opt opts[] = {
        SAFETY_OPTS(sf),
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {NULL, "--host", OPT_STR, &host, 0, 0},
        {NULL, "--port", OPT_INT, &port, 0, 65535},
        {NULL, "--slots", OPT_INT, &slots, 1, 256},
        {"-c", "--ctx-size", OPT_INT, &n_ctx, 0, 1 << 20},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {NULL, "--kv-policy", OPT_STR, &kv_policy, 0, 0},
        {NULL, "--mem", OPT_STR, &mem_str, 0, 0},
        {NULL, "--no-repack", OPT_FLAG, &no_repack, 0, 0},
        CLI_GPU_OPTS(ngl, vram_str),
        {NULL, "--api-key", OPT_STR, &api_key, 0, 0},
        {NULL, "--chat-template", OPT_STR, &tmpl_name, 0, 0},
        {NULL, "--max-body", OPT_STR, &max_body_str, 0, 0},
        {NULL, "--max-prompt-tokens", OPT_INT, &max_prompt, 0, 1 << 20},
        {NULL, "--timeout", OPT_INT, &timeout, 0, 1 << 24},
        {NULL, "--idle-timeout", OPT_INT, &idle, 1, 3600},
        {NULL, "--header-timeout", OPT_INT, &header_timeout, 1, 3600},
        {NULL, "--max-conns-per-ip", OPT_INT, &per_ip, 0, 1 << 20},
        {NULL, "--queue", OPT_INT, &queue, 1, 1 << 16},
        {NULL, "--render", OPT_STR, &render, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    frugal_safety_policy safety;
    int use_safety = 0;
    int src = safety_flags_policy(&sf, &safety, &use_safety);
    if (src) return src;
    frugal_model_params gpu;
    if (cli_gpu_options(ngl, vram_str, &gpu) != 0) return EXIT_USAGE;
    if (tmpl_name && srv_template_parse(tmpl_name) < 0) {
        cli_error("--chat-template: '%s' is not one of chatml, llama2, llama3, mistral, phi3, gemma, zephyr", tmpl_name);
        return EXIT_USAGE;
    }
    if (!model_path && !(render && tmpl_name)) { cli_error("serve: -m MODEL is required"); return EXIT_USAGE; }
    frugal_context_params kvp;
    frugal_context_params_default(&kvp);
    if (cli_kv_options(kv_str, kv_policy, &kvp) != 0) return EXIT_USAGE;
    uint64_t mem_budget = 0;
    if (mem_str && frugal_parse_size(mem_str, &mem_budget) != 0) {
        cli_error("--mem: '%s' is not a size such as 512M or 2G", mem_str);
        return EXIT_USAGE;
    }
    uint64_t max_body = 0;
    if (frugal_parse_size(max_body_str, &max_body) != 0) {
        cli_error("--max-body: '%s' is not a size like 65536, 64K or 1M", max_body_str);
        return EXIT_USAGE;
    }
    if (api_key && !*api_key) { cli_error("--api-key: the key must not be empty"); return EXIT_USAGE; }

    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads;
    mp.vocab_only = render != NULL;
    mp.mem_budget = mem_budget;
    mp.no_repack = no_repack;
    mp.n_gpu_layers = gpu.n_gpu_layers, mp.vram_budget = gpu.vram_budget, mp.gpu_stream = gpu.gpu_stream;
    frugal_model *model = NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    if (model_path && frugal_model_load(model_path, &mp, &model, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        return 1;
    }
    if (render) {
        int rc = render_only(render, model, tmpl_name);
        frugal_model_free(model);
        return rc;
    }

    frugal_model_info info;
    frugal_model_get_info(model, &info);
    if (n_ctx <= 0) n_ctx = info.n_ctx_train > 0 && info.n_ctx_train < 4096 ? info.n_ctx_train : 4096;
    frugal_context_params cp = kvp; /* defaults + the KV flags */
    cp.n_ctx = n_ctx;
    cp.n_threads = n_threads;
    cp.mem_budget = mem_budget;
    cp.n_seq_max = slots;
    cp.n_ctx_pool = slots * (n_ctx + 16); /* every slot can fill its context (16-token blocks) */
    frugal_context *ctx = NULL;
    if (frugal_context_new(model, &cp, &ctx, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        frugal_model_free(model);
        return 1;
    }
    if (use_safety && frugal_set_safety_policy(ctx, &safety, &err) != FRUGAL_OK) {
        cli_error("%s", err.message);
        frugal_context_free(ctx);
        frugal_model_free(model);
        return 1;
    }
    n_ctx = frugal_context_n_ctx(ctx);

    const char *base = strrchr(model_path, '/');
    srv_config cfg = {0};
    cfg.model = model;
    cfg.model_id = base ? base + 1 : model_path;
    cfg.n_vocab = info.n_vocab;
    cfg.n_ctx = n_ctx;
    cfg.max_prompt = max_prompt > 0 && max_prompt < n_ctx - 1 ? max_prompt : n_ctx - 1;
    cfg.max_body = (size_t)max_body;
    cfg.api_key = api_key;
    cfg.timeout = timeout;
    cfg.idle_timeout = (unsigned)idle;
    cfg.header_timeout = (unsigned)header_timeout;
    cfg.max_conns_per_ip = (unsigned)per_ip;
    cfg.max_piece = srv_max_piece_len(model, info.n_vocab);
    cfg.tmpl = pick_template(model, tmpl_name);
    cfg.n_slots = slots;
    cfg.queue_cap = queue;

    /* every thread created from here on inherits this mask: signals are taken only
     * by sigwait below, never in the middle of a connection or scheduler thread */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

#ifdef __GLIBC__
    /* One thread per connection: glibc would give short-lived connection threads up
     * to 8 arenas per core, whose free memory is trimmed at irregular times, so RSS
     * wanders by megabytes under load. Two arenas are plenty: the heavy work runs in
     * the scheduler thread. */
    mallopt(M_ARENA_MAX, 2);
#endif
    int rc = 1;
    char msg[256] = "";
    srv_sched *sched = srv_sched_new(model, ctx, slots, n_ctx, queue);
    srv_http *http = NULL;
    if (!sched || srv_sched_start(sched) != 0) cli_error("cannot start the scheduler");
    else if (!(http = srv_http_start(&cfg, sched, host, port, msg, sizeof msg))) cli_error("%s", msg);
    else {
        fprintf(stderr, "frugal serve: listening on http://%s:%d  (model %s, %d slots x %d tokens, template %s)\n",
                host, srv_http_port(http), cfg.model_id, slots, n_ctx, srv_template_name(cfg.tmpl));
        int sig = 0;
        sigwait(&set, &sig);
        fprintf(stderr, "frugal serve: %s, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        rc = 0;
    }
    /* stop taking connections, fail what is pending (waking the connection threads
     * that wait on it), then close the connections and free */
    srv_http_quiesce(http);
    if (sched) srv_sched_stop(sched);
    srv_http_drain(http, 3.0);
    srv_http_stop(http);
    srv_sched_free(sched);
    frugal_context_free(ctx);
    frugal_model_free(model);
    return rc;
}

#endif
