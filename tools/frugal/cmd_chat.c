/* cmd_chat.c - `frugal chat`: an interactive conversation in the model's chat template.
 *
 * The KV cache is kept between turns. Each turn renders the whole conversation, and
 * when the text already in the cache (kv_text) is a prefix of it, only the rest is
 * tokenized and evaluated, as llama.cpp's chat does; otherwise (a template that is
 * not prefix-stable) the cache is emptied and everything is evaluated again, which
 * /stats reports. frugal_generate does not evaluate the last token it returns, so
 * that token is kept in `pending` and evaluated first in the next turn.
 * stdin a terminal: line editing (libedit/readline when built with one); otherwise
 * each line of stdin is one user message or command, so conversations can be piped.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "progress.h"
#include "frugal.h"

#if defined(FRUGAL_HAVE_LIBEDIT)
#include <editline/readline.h>
#define CHAT_LINE_EDIT 1
#elif defined(FRUGAL_HAVE_READLINE)
#include <readline/history.h>
#include <readline/readline.h>
#define CHAT_LINE_EDIT 1
#endif
#ifdef FRUGAL_HAVE_CJSON
#include <cjson/cJSON.h>
#endif

static void usage(FILE *out) {
    fprintf(out,
            "usage: frugal chat -m MODEL [flags]\n\n"
            "Chat with MODEL in its chat template (chatml when it has none frugal knows).\n"
            "Answers stream as they come; the KV cache is kept between turns, so a turn\n"
            "evaluates only its new tokens. On a terminal lines are edited with\n"
            "libedit/readline; otherwise each line of stdin is one message. Ctrl-C stops\n"
            "the current answer, Ctrl-D leaves. Commands: /clear, /save FILE, /load FILE\n"
            "(the conversation as JSON), /stats, /help.\n\n"
            "  -m, --model M          GGUF model\n"
            "  -sys, --system TEXT    system prompt\n"
            "  -n, --n-predict N      most tokens per answer (default 256)\n"
            "  -c, --ctx-size N       context size (default 0: the model's, at most 4096)\n"
            "  -t, --threads N        threads (default 0: all cores)\n"
            "  -s, --seed S           sampling seed (default -1: random)\n"
            "  --temp T               temperature (default 0.8; <= 0: greedy)\n"
            "  --top-k K              top-k (default 40)\n"
            "  --top-p P              top-p (default 0.95)\n"
            "  --min-p P              min-p (default 0.05)\n"
            "  --repeat-penalty R     repetition penalty (default 1.0: off)\n"
            "  --kv-type T            KV cache type: f16 (default), f32, q8_0, q4_0, k8v4\n"
            "  --mem SIZE             memory budget (see 'frugal run')\n"
            "  --chat-template NAME   chatml, llama2, llama3, mistral, phi3, gemma, zephyr\n"
            "  --no-repack            keep the weights in the file mapping\n"
            "  --progress             loading progress as a line per 10 %% on stderr\n");
}

/* ------------------------------------------------------------------ state */

typedef struct chat_msg {
    char *role, *content;
} chat_msg;

typedef struct chat {
    frugal_model *model;
    frugal_context *ctx;
    frugal_sampler *smpl;
    int tmpl, n_predict;
    const char *system;
    chat_msg *msgs;
    int n_msgs, cap_msgs;
    char *kv_text;           /* the text whose tokens are in the cache (or pending) */
    int32_t pending[1];      /* generated, not yet evaluated */
    int n_pending;
    /* statistics */
    int turns, reevals;
    int last_reused, last_prompt, last_gen;
    double last_prompt_ms, last_gen_ms;
    long total_prompt, total_gen;
    double total_prompt_ms, total_gen_ms;
} chat;

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

static char *dup_str(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static void clear_msgs(chat *c) {
    for (int i = 0; i < c->n_msgs; i++) free(c->msgs[i].role), free(c->msgs[i].content);
    c->n_msgs = 0;
}

/* gcc 12's -fanalyzer loses the two copies once they are stored in the array that
 * realloc just grew, and reports them as leaked when push_msg returns; they are
 * owned by c->msgs and freed by clear_msgs (ASan's leak check over test_chat agrees). */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wanalyzer-malloc-leak"
#endif
/* Append a message (copies). 0 ok, -1 out of memory. */
static int push_msg(chat *c, const char *role, const char *content) {
    if (c->n_msgs == c->cap_msgs) {
        int nc = c->cap_msgs ? 2 * c->cap_msgs : 16;
        chat_msg *m = realloc(c->msgs, (size_t)nc * sizeof *m);
        if (!m) return -1;
        c->msgs = m;
        c->cap_msgs = nc;
    }
    char *r = dup_str(role), *t = dup_str(content);
    if (!r || !t) {
        free(r);
        free(t);
        return -1;
    }
    c->msgs[c->n_msgs].role = r;
    c->msgs[c->n_msgs].content = t;
    c->n_msgs++;
    return 0;
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#pragma GCC diagnostic pop
#endif

/* Empty the cache and the conversation; the system prompt stays. */
static int reset_chat(chat *c) {
    clear_msgs(c);
    frugal_context_reset(c->ctx);
    frugal_sampler_reset(c->smpl);
    free(c->kv_text);
    c->kv_text = dup_str("");
    c->n_pending = 0;
    if (!c->kv_text) return -1;
    return c->system && c->system[0] ? push_msg(c, "system", c->system) : 0;
}

/* The conversation rendered (malloc'd), with the assistant header when gen. */
static char *render(const chat *c, int gen) {
    frugal_chat_msg *m = malloc(((size_t)c->n_msgs + 1) * sizeof *m);
    if (!m) return NULL;
    for (int i = 0; i < c->n_msgs; i++) m[i].role = c->msgs[i].role, m[i].content = c->msgs[i].content;
    char *out = NULL;
    int need = frugal_chat_render(c->tmpl, m, c->n_msgs, gen, NULL, 0);
    if (need >= 0 && (out = malloc((size_t)need + 1)) != NULL)
        frugal_chat_render(c->tmpl, m, c->n_msgs, gen, out, (size_t)need + 1);
    free(m);
    return out;
}

/* Tokens of text (malloc'd, count in *n), the pending token first; NULL on failure. */
static int32_t *tokenize(const chat *c, const char *text, int add_special, int *n) {
    size_t len = strlen(text);
    int cap = (int)(len < (1u << 26) ? len : (1u << 26)) + 8 + c->n_pending;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    if (!ids) return NULL;
    for (int i = 0; i < c->n_pending; i++) ids[i] = c->pending[i];
    int k = frugal_tokenize(c->model, text, len, add_special, 1, ids + c->n_pending, cap - c->n_pending);
    if (k < 0) { free(ids); return NULL; }
    *n = k + c->n_pending;
    return ids;
}

/* ------------------------------------------------------------------ one turn */

typedef struct turn {
    chat *c;
    const char *stop;        /* the template's end marker, or NULL */
    char *text;              /* the answer so far */
    size_t len, cap, printed;
    int32_t last;            /* the last token generated */
    int n_tok, failed;
} turn;

/* Bytes at the end of s[0..n) that could begin `stop` (held back while streaming). */
static size_t partial_stop(const char *s, size_t n, const char *stop) {
    size_t m = strlen(stop);
    for (size_t k = m - 1 < n ? m - 1 : n; k > 0; k--)
        if (memcmp(s + n - k, stop, k) == 0) return k;
    return 0;
}

/* Token callback: collect and stream the answer; stop at the end marker or Ctrl-C. */
static int on_token(void *user, int32_t token, const char *piece, size_t len) {
    turn *t = user;
    t->last = token;
    t->n_tok++;
    if (t->len + len + 1 > t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 1024;
        while (nc < t->len + len + 1) nc *= 2;
        char *p = realloc(t->text, nc);
        if (!p) { t->failed = 1; return 1; }
        t->text = p;
        t->cap = nc;
    }
    memcpy(t->text + t->len, piece, len);
    t->len += len;
    t->text[t->len] = '\0';
    size_t show = t->len;
    char *end = t->stop ? strstr(t->text, t->stop) : NULL;
    if (end) show = (size_t)(end - t->text);
    else if (t->stop) show -= partial_stop(t->text, t->len, t->stop);
    if (show > t->printed) {
        fwrite(t->text + t->printed, 1, show - t->printed, stdout);
        t->printed = show;
    }
    fflush(stdout);
    return end || g_interrupted;
}

/* Evaluate ids[0..n) (the new part of the conversation) and generate the answer,
 * appended as an assistant message. 0 ok, 1 error (reported). */
static int answer(chat *c, const int32_t *ids, int n, const char *delta) {
    int pos = frugal_context_pos(c->ctx), n_ctx = frugal_context_n_ctx(c->ctx);
    int room = n_ctx - pos - n;
    if (room < 1) {
        cli_error("chat: the context is full (%d of %d tokens): /clear, or a larger -c", pos + n, n_ctx);
        return 1;
    }
    turn t = {.c = c, .stop = frugal_chat_end_marker(c->tmpl)};
    frugal_timings tm;
    memset(&tm, 0, sizeof tm);
    frugal_error err = FRUGAL_ERROR_INIT;
    g_interrupted = 0;
    int np = c->n_predict < room ? c->n_predict : room;
    int rc = frugal_generate(c->ctx, c->smpl, ids, n, np, on_token, &t, &tm, &err);
    fputc('\n', stdout);
    fflush(stdout);
    if (rc != FRUGAL_OK || t.failed) {
        cli_error("chat: %s", rc ? err.message : "out of memory");
        free(t.text);
        /* what the cache holds is unknown now: the next turn starts from empty */
        frugal_context_reset(c->ctx);
        c->kv_text[0] = '\0';
        c->n_pending = 0;
        return 1;
    }
    if (g_interrupted) fprintf(stderr, "[stopped]\n");
    /* the cache now holds kv_text + delta + every generated token but (maybe) the last */
    int evaluated = frugal_context_pos(c->ctx) - pos - n;
    c->n_pending = t.n_tok - evaluated > 0 ? 1 : 0;
    c->pending[0] = t.last;
    char *content = t.text ? t.text : "";
    size_t kl = strlen(c->kv_text), dl = strlen(delta);
    char *kv = malloc(kl + dl + t.len + 1);
    int bad = !kv;
    if (kv) {
        memcpy(kv, c->kv_text, kl);
        memcpy(kv + kl, delta, dl);
        memcpy(kv + kl + dl, content, t.len + 1);
        free(c->kv_text);
        c->kv_text = kv;
    }
    /* the message keeps the text before the end marker, the cache what was generated */
    char *end = t.stop && t.text ? strstr(t.text, t.stop) : NULL;
    if (end) *end = '\0';
    bad |= push_msg(c, "assistant", content);
    free(t.text);
    c->turns++;
    c->last_prompt = tm.n_prompt, c->last_gen = tm.n_gen;
    c->last_prompt_ms = tm.prompt_ms, c->last_gen_ms = tm.gen_ms;
    c->total_prompt += tm.n_prompt, c->total_gen += tm.n_gen;
    c->total_prompt_ms += tm.prompt_ms, c->total_gen_ms += tm.gen_ms;
    if (bad) cli_error("chat: out of memory");
    return bad;
}

/* The part of the rendered conversation not yet in the cache, tokenized; empties the
 * cache first when the cache's text is not a prefix of it. NULL on failure. */
static int32_t *new_tokens(chat *c, const char *full, const char **delta, int *n) {
    size_t kl = strlen(c->kv_text);
    c->last_reused = frugal_context_pos(c->ctx);
    if (strncmp(full, c->kv_text, kl) != 0) {
        if (kl) c->reevals++;
        frugal_context_reset(c->ctx);
        c->kv_text[0] = '\0';
        c->n_pending = 0;
        c->last_reused = 0;
        kl = 0;
    }
    *delta = full + kl;
    return tokenize(c, *delta, kl == 0, n);
}

/* A user message: render, evaluate what is new, answer. 0 ok, 1 error (reported;
 * the message is dropped again). */
static int user_turn(chat *c, const char *text) {
    if (push_msg(c, "user", text) != 0) { cli_error("chat: out of memory"); return 1; }
    char *full = render(c, 1);
    const char *delta = NULL;
    int n = 0;
    int32_t *ids = full ? new_tokens(c, full, &delta, &n) : NULL;
    int rc = 1;
    if (!ids) cli_error("chat: rendering or tokenizing the conversation failed");
    else rc = answer(c, ids, n, delta);
    if (rc) { c->n_msgs--; free(c->msgs[c->n_msgs].role), free(c->msgs[c->n_msgs].content); }
    free(ids);
    free(full);
    return rc;
}

/* ------------------------------------------------------------------ commands */

static double tok_s(long n, double ms) { return ms > 0 ? n / (ms / 1000.0) : 0.0; }

static void print_stats(const chat *c) {
    printf("stats: turns %d, messages %d, kv tokens %d of %d, template %s\n", c->turns, c->n_msgs,
           frugal_context_pos(c->ctx), frugal_context_n_ctx(c->ctx), frugal_chat_template_name(c->tmpl));
    printf("stats: last turn: reused %d cached tokens, evaluated %d new prompt tokens (%.1f tok/s), "
           "generated %d tokens (%.1f tok/s)\n", c->last_reused, c->last_prompt,
           tok_s(c->last_prompt, c->last_prompt_ms), c->last_gen, tok_s(c->last_gen, c->last_gen_ms));
    printf("stats: session: prompt %ld tokens (%.1f tok/s), generated %ld tokens (%.1f tok/s), "
           "full re-evaluations %d\n", c->total_prompt, tok_s(c->total_prompt, c->total_prompt_ms),
           c->total_gen, tok_s(c->total_gen, c->total_gen_ms), c->reevals);
    fflush(stdout);
}

#ifdef FRUGAL_HAVE_CJSON
/* Write the conversation to path (a temp file created exclusively beside it, then
 * renamed). 0 ok, 1 error (reported). */
static int save_chat(const chat *c, const char *path) {
    cJSON *root = cJSON_CreateObject(), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "template", frugal_chat_template_name(c->tmpl));
    cJSON_AddItemToObject(root, "messages", arr);
    for (int i = 0; i < c->n_msgs; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "role", c->msgs[i].role);
        cJSON_AddStringToObject(m, "content", c->msgs[i].content);
        cJSON_AddItemToArray(arr, m);
    }
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 16);
    if (!text || !tmp) { free(text), free(tmp); cli_error("chat: out of memory"); return 1; }
    snprintf(tmp, pl + 16, "%s.tmpXXXXXX", path);
    int fd = mkstemp(tmp), rc = 1;
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        cli_error("%s: cannot create: %s", path, strerror(errno));
        if (fd >= 0) close(fd), unlink(tmp);
    } else {
        int ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
        ok &= fclose(f) == 0;
        if (ok && rename(tmp, path) == 0) rc = 0;
        else cli_error("%s: write failed: %s", path, strerror(errno)), unlink(tmp);
    }
    free(text);
    free(tmp);
    if (!rc) printf("saved %d messages to %s\n", c->n_msgs, path);
    return rc;
}

/* Replace the conversation with the file's and evaluate it. 0 ok, 1 error (reported;
 * an unreadable file leaves the current conversation, one that fails to evaluate
 * leaves it cleared). */
static int load_chat(chat *c, const char *path) {
    size_t len;
    char *body = cli_read_file(path, &len);
    if (!body) return 1;
    cJSON *root = cJSON_ParseWithLength(body, len);
    free(body);
    const cJSON *arr = root ? cJSON_GetObjectItemCaseSensitive(root, "messages") : NULL, *m;
    int ok = cJSON_IsArray(arr);
    cJSON_ArrayForEach(m, arr) {
        ok &= cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")) &&
              cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "content"));
    }
    if (!ok) {
        cli_error("%s: not a conversation (want {\"messages\": [{\"role\": ..., \"content\": ...}]})", path);
        cJSON_Delete(root);
        return 1;
    }
    clear_msgs(c);
    frugal_context_reset(c->ctx);
    frugal_sampler_reset(c->smpl);
    c->kv_text[0] = '\0';
    c->n_pending = 0;
    cJSON_ArrayForEach(m, arr) {
        ok &= push_msg(c, cJSON_GetObjectItemCaseSensitive(m, "role")->valuestring,
                       cJSON_GetObjectItemCaseSensitive(m, "content")->valuestring) == 0;
    }
    cJSON_Delete(root);
    char *full = ok ? render(c, 0) : NULL;
    int n = 0;
    int32_t *ids = full ? tokenize(c, full, 1, &n) : NULL;
    frugal_error err = FRUGAL_ERROR_INIT;
    int rc = 1;
    if (!ids) cli_error("chat: out of memory");
    else if (n > 0 && frugal_eval(c->ctx, ids, n, 0, &err) != FRUGAL_OK) cli_error("%s: %s", path, err.message);
    else rc = 0;
    if (!rc) {
        for (int i = 0; i < n; i++) frugal_sampler_accept(c->smpl, ids[i]);
        free(c->kv_text);
        c->kv_text = full;
        full = NULL;
        printf("loaded %d messages (%d tokens) from %s\n", c->n_msgs, n, path);
    } else {
        reset_chat(c);
    }
    free(ids);
    free(full);
    return rc;
}
#else
static int save_chat(const chat *c, const char *path) {
    (void)c, (void)path;
    cli_error("chat: /save needs cJSON (this frugal was built without libcjson-dev)");
    return 1;
}
static int load_chat(chat *c, const char *path) {
    (void)c, (void)path;
    cli_error("chat: /load needs cJSON (this frugal was built without libcjson-dev)");
    return 1;
}
#endif

/* A line starting with '/'. Returns 0 ok, 1 error (reported), -1 out of memory. */
static int command(chat *c, const char *line) {
    const char *arg = strchr(line, ' ');
    size_t cmd_len = arg ? (size_t)(arg - line) : strlen(line);
    while (arg && *arg == ' ') arg++;
    if (arg && !*arg) arg = NULL;
#define IS(name) (cmd_len == strlen(name) && strncmp(line, name, cmd_len) == 0)
    if (IS("/clear")) {
        if (reset_chat(c) != 0) return -1;
        printf("conversation cleared\n");
        return 0;
    }
    if (IS("/stats")) { print_stats(c); return 0; }
    if (IS("/help")) {
        printf("/clear  /save FILE  /load FILE  /stats  /help; Ctrl-C stops an answer, Ctrl-D leaves\n");
        return 0;
    }
    if (IS("/save") || IS("/load")) {
        if (!arg) { cli_error("chat: %.*s needs a FILE", (int)cmd_len, line); return 1; }
        return IS("/save") ? save_chat(c, arg) : load_chat(c, arg);
    }
#undef IS
    cli_error("chat: unknown command '%.*s' (try /help)", (int)cmd_len, line);
    return 1;
}

/* ------------------------------------------------------------------ input */

/* The next line without its newline (malloc'd), or NULL at end of input. */
static char *read_line(int tty) {
#ifdef CHAT_LINE_EDIT
    if (tty) {
        for (;;) {
            g_interrupted = 0;
            errno = 0;
            char *l = readline("> ");
            /* libedit returns NULL on Ctrl-C too: only Ctrl-D (end of input) leaves.
             * EINTR as well as the flag: the interrupt may be taken by a thread other
             * than this one (one the library did not start), and then the flag can be
             * set a moment after readline returns */
            if (!l && (g_interrupted || errno == EINTR)) { fputc('\n', stdout); continue; }
            if (l && *l) add_history(l);
            return l;
        }
    }
#endif
    if (tty) fputs("> ", stdout), fflush(stdout);
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (n >= 0) {
            if (n > 0 && line[n - 1] == '\n') line[n - 1] = '\0';
            return line;
        }
        if (errno == EINTR) { clearerr(stdin); g_interrupted = 0; continue; } /* Ctrl-C at the prompt */
        free(line);
        return NULL;
    }
}

/* Read messages and commands until the end of input. Returns the exit code: 0, or
 * 1 when a command or turn failed in pipe mode (interactively errors are only shown). */
static int chat_loop(chat *c, int tty) {
    int failed = 0;
    char *line;
    while ((line = read_line(tty)) != NULL) {
        int rc = 0;
        if (line[0] == '/') rc = command(c, line);
        else if (line[0]) rc = user_turn(c, line);
        free(line);
        if (rc < 0) { cli_error("chat: out of memory"); return 1; }
        if (rc) failed = 1;
    }
    if (tty) putchar('\n');
    fflush(stdout);
    fprintf(stderr, "chat: %d turns, prompt %ld tokens (%.1f tok/s), generated %ld tokens (%.1f tok/s), peak RSS %.1f MiB\n",
            c->turns, c->total_prompt, tok_s(c->total_prompt, c->total_prompt_ms), c->total_gen,
            tok_s(c->total_gen, c->total_gen_ms), (double)frugal_peak_rss() / 1048576.0);
    return !tty && failed;
}

int cmd_chat(int argc, char **argv) {
    const char *model_path = NULL, *system = NULL, *seed_str = "-1", *kv_str = "f16";
    const char *mem_str = NULL, *tmpl_name = NULL;
    int n_predict = 256, n_ctx = 0, n_threads = 0, no_repack = 0, progress_lines = 0;
    frugal_sampler_params sp;
    frugal_sampler_params_default(&sp);
    const opt opts[] = {
        {"-m", "--model", OPT_STR, &model_path, 0, 0},
        {"-sys", "--system", OPT_STR, &system, 0, 0},
        {"-n", "--n-predict", OPT_INT, &n_predict, 1, 1 << 30},
        {"-c", "--ctx-size", OPT_INT, &n_ctx, 0, 1 << 24},
        {"-t", "--threads", OPT_INT, &n_threads, 0, 4096},
        {"-s", "--seed", OPT_STR, &seed_str, 0, 0},
        {NULL, "--temp", OPT_FLOAT, &sp.temp, -1e9, 1e9},
        {NULL, "--top-k", OPT_INT, &sp.top_k, 0, 1 << 30},
        {NULL, "--top-p", OPT_FLOAT, &sp.top_p, 0, 1},
        {NULL, "--min-p", OPT_FLOAT, &sp.min_p, 0, 1},
        {NULL, "--repeat-penalty", OPT_FLOAT, &sp.repeat_penalty, 0, 1e9},
        {NULL, "--kv-type", OPT_STR, &kv_str, 0, 0},
        {NULL, "--mem", OPT_STR, &mem_str, 0, 0},
        {NULL, "--chat-template", OPT_STR, &tmpl_name, 0, 0},
        {NULL, "--no-repack", OPT_FLAG, &no_repack, 0, 0},
        {NULL, "--progress", OPT_FLAG, &progress_lines, 0, 0},
    };
    int n_pos = 0;
    int r = args_parse(argc, argv, opts, (int)(sizeof opts / sizeof opts[0]), NULL, 0, &n_pos);
    if (r == ARGS_HELP) { usage(stdout); return 0; }
    if (r != ARGS_OK) return EXIT_USAGE;
    if (!model_path) { cli_error("chat: -m MODEL is required"); return EXIT_USAGE; }
    frugal_context_params cp;
    frugal_context_params_default(&cp);
    if (cli_kv_options(kv_str, NULL, &cp) != 0) return EXIT_USAGE;
    uint64_t mem = 0;
    if (mem_str && frugal_parse_size(mem_str, &mem) != 0) {
        cli_error("--mem: '%s' is not a size such as 512M or 2G", mem_str);
        return EXIT_USAGE;
    }
    char *end;
    errno = 0;
    unsigned long long seed = strtoull(seed_str, &end, 10);
    if (strcmp(seed_str, "-1") == 0) sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    else if (errno || *end || seed_str[0] < '0' || seed_str[0] > '9') {
        cli_error("-s: '%s' is not -1 or an unsigned 64-bit integer", seed_str);
        return EXIT_USAGE;
    } else sp.seed = seed;
    chat c = {.n_predict = n_predict, .system = system};
    c.tmpl = tmpl_name ? frugal_chat_template_parse(tmpl_name) : -1;
    if (tmpl_name && c.tmpl < 0) {
        cli_error("--chat-template: '%s' is not one of chatml, llama2, llama3, mistral, phi3, gemma, zephyr", tmpl_name);
        return EXIT_USAGE;
    }

    int rc = 1;
    frugal_error err = FRUGAL_ERROR_INIT;
    progress_library(progress_lines);
    frugal_model_params mp;
    frugal_model_params_default(&mp);
    mp.n_threads = n_threads, mp.mem_budget = mem, mp.no_repack = no_repack;
    if (frugal_model_load(model_path, &mp, &c.model, &err) != FRUGAL_OK) { cli_error("%s", err.message); goto done; }
    cp.n_ctx = n_ctx, cp.n_threads = n_threads, cp.mem_budget = mem;
    if (frugal_context_new(c.model, &cp, &c.ctx, &err) != FRUGAL_OK) {
        cli_error("%s: %s", model_path, err.message);
        goto done;
    }
    if (c.tmpl < 0 && (c.tmpl = frugal_chat_template_of(c.model)) < 0) {
        c.tmpl = FRUGAL_TMPL_CHATML;
        fprintf(stderr, "frugal: note: %s has no chat template frugal knows; using chatml\n", model_path);
    }
    c.smpl = frugal_sampler_new(&sp);
    if (!c.smpl || reset_chat(&c) != 0) { cli_error("chat: out of memory"); goto done; }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint; /* no SA_RESTART: a read at the prompt returns EINTR */
    sigaction(SIGINT, &sa, NULL);
    int tty = isatty(0);
    if (tty) fprintf(stderr, "frugal chat: %s, template %s; /help for commands, Ctrl-D leaves\n",
                     model_path, frugal_chat_template_name(c.tmpl));
    rc = chat_loop(&c, tty);
done:
    clear_msgs(&c);
    free(c.msgs);
    free(c.kv_text);
    frugal_sampler_free(c.smpl);
    frugal_context_free(c.ctx);
    frugal_model_free(c.model);
    return rc;
}
