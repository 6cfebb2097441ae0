/* chat_template.c - chat templates of the common model families, rendered in C
 * (moved here from tools/frugal/serve/ so `serve`, `chat` and the Python package
 * share one implementation through the public API).
 *
 * GGUF files carry their chat template as Jinja source (tokenizer.chat_template).
 * Rather than interpreting Jinja, we recognise the family by markers only its
 * template contains and render that family's format ourselves. The formats follow
 * the published templates for a plain system/user/assistant conversation, ending
 * with the assistant's turn header when asked (add_generation_prompt). BOS is left
 * to the tokenizer (add_special); special-token text is parsed when tokenizing.
 */
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "frugal.h"

static const char *const k_names[FRUGAL_TMPL_COUNT] = {
    "chatml", "llama2", "llama3", "mistral", "phi3", "gemma", "zephyr",
};

/* A growable string; err stays set after the first failed allocation so callers
 * can chain appends and check once. */
typedef struct tbuf {
    char *p;
    size_t len, cap;
    int err;
} tbuf;

static void put(tbuf *b, const char *s) {
    size_t n = strlen(s);
    if (b->err) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = fr_realloc(b->p, cap);
        if (!p) { b->err = 1; return; }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n + 1);
    b->len += n;
}

int frugal_chat_template_parse(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < FRUGAL_TMPL_COUNT; i++)
        if (strcmp(name, k_names[i]) == 0) return i;
    if (strcmp(name, "qwen") == 0) return FRUGAL_TMPL_CHATML; /* Qwen uses ChatML */
    return -1;
}

const char *frugal_chat_template_name(int tmpl) {
    return tmpl >= 0 && tmpl < FRUGAL_TMPL_COUNT ? k_names[tmpl] : "?";
}

int frugal_chat_template_detect(const char *j) {
    if (!j) return -1;
    /* order matters: the more specific markers first (Phi-3 and Zephyr share <|user|>,
     * Llama-2 and Mistral share [INST]) */
    if (strstr(j, "<|im_start|>")) return FRUGAL_TMPL_CHATML;
    if (strstr(j, "<|start_header_id|>")) return FRUGAL_TMPL_LLAMA3;
    if (strstr(j, "<start_of_turn>")) return FRUGAL_TMPL_GEMMA;
    if (strstr(j, "<|user|>") && strstr(j, "<|end|>")) return FRUGAL_TMPL_PHI3;
    if (strstr(j, "<|user|>")) return FRUGAL_TMPL_ZEPHYR;
    if (strstr(j, "[INST]") && strstr(j, "<<SYS>>")) return FRUGAL_TMPL_LLAMA2;
    if (strstr(j, "[INST]")) return FRUGAL_TMPL_MISTRAL;
    return -1;
}

/* The format a family's models are trained on, for files without a chat template;
 * -1 when the family has none of its own (llama, gpt2). */
static int family_template(const char *arch) {
    if (!arch) return -1;
    if (strncmp(arch, "gemma", 5) == 0) return FRUGAL_TMPL_GEMMA;
    if (strcmp(arch, "phi3") == 0) return FRUGAL_TMPL_PHI3;
    if (strncmp(arch, "qwen", 4) == 0) return FRUGAL_TMPL_CHATML;
    return -1;
}

int frugal_chat_template_of(const frugal_model *model) {
    if (!model) return -1;
    const char *jinja = frugal_model_meta_str(model, "tokenizer.chat_template");
    if (jinja) return frugal_chat_template_detect(jinja);
    frugal_model_info info;
    frugal_model_get_info(model, &info);
    return family_template(info.arch);
}

const char *frugal_chat_end_marker(int tmpl) {
    switch (tmpl) {
    case FRUGAL_TMPL_CHATML: return "<|im_end|>";
    case FRUGAL_TMPL_LLAMA3: return "<|eot_id|>";
    case FRUGAL_TMPL_GEMMA: return "<end_of_turn>";
    case FRUGAL_TMPL_PHI3: return "<|end|>";
    default: return NULL; /* the others end turns with EOS, an end-of-generation token */
    }
}

static int is_role(const frugal_chat_msg *m, const char *role) { return strcmp(m->role, role) == 0; }

/* Roles other than system/assistant (user, tool, developer...) render as user turns;
 * "developer" is OpenAI's newer name for system. */
static const char *norm_role(const frugal_chat_msg *m) {
    if (is_role(m, "system") || is_role(m, "developer")) return "system";
    if (is_role(m, "assistant")) return "assistant";
    return "user";
}

/* Formats where each turn is "<prefix><role><mid><content><suffix>". */
static void render_simple(const frugal_chat_msg *msgs, int n, int gen, tbuf *o, const char *pre,
                          const char *mid, const char *suf, int gemma) {
    const char *pending_sys = NULL; /* Gemma has no system role: prepend to first user */
    for (int i = 0; i < n; i++) {
        const char *role = norm_role(&msgs[i]);
        if (gemma) {
            if (strcmp(role, "system") == 0) { pending_sys = msgs[i].content; continue; }
            if (strcmp(role, "assistant") == 0) role = "model";
        }
        put(o, pre), put(o, role), put(o, mid);
        if (pending_sys && strcmp(role, "user") == 0) {
            put(o, pending_sys), put(o, "\n\n");
            pending_sys = NULL;
        }
        put(o, msgs[i].content), put(o, suf);
    }
    if (gen) put(o, pre), put(o, gemma ? "model" : "assistant"), put(o, mid);
}

/* Llama-2 and Mistral: "[INST] user [/INST] answer</s>[INST] ...". Llama-2 puts the
 * system prompt in <<SYS>> inside the first instruction, Mistral prepends it to the
 * first user message. The BOS of the first turn comes from the tokenizer; later
 * turns start with their own <s>. The generation prompt is the "[/INST]" itself. */
static void render_inst(const frugal_chat_msg *msgs, int n, tbuf *o, int llama2) {
    int first = 1;
    const char *sys = NULL;
    for (int i = 0; i < n; i++) {
        const char *role = norm_role(&msgs[i]);
        if (strcmp(role, "system") == 0) { sys = msgs[i].content; continue; }
        if (strcmp(role, "assistant") == 0) {
            put(o, llama2 ? " " : ""), put(o, msgs[i].content), put(o, llama2 ? " </s>" : "</s>");
            continue;
        }
        if (!first) put(o, llama2 ? "<s>" : "");
        put(o, "[INST] ");
        if (sys) {
            if (llama2) put(o, "<<SYS>>\n"), put(o, sys), put(o, "\n<</SYS>>\n\n");
            else put(o, sys), put(o, "\n\n");
            sys = NULL;
        }
        put(o, msgs[i].content), put(o, " [/INST]");
        first = 0;
    }
}

/* Phi-3 and Zephyr: "<|role|>\ncontent<end>\n", the role inside the marker. */
static void render_marker(const frugal_chat_msg *msgs, int n, int gen, tbuf *o, const char *end) {
    for (int i = 0; i < n; i++)
        put(o, "<|"), put(o, norm_role(&msgs[i])), put(o, "|>\n"), put(o, msgs[i].content), put(o, end);
    if (gen) put(o, "<|assistant|>\n");
}

static void render(int tmpl, const frugal_chat_msg *msgs, int n, int gen, tbuf *o) {
    switch (tmpl) {
    case FRUGAL_TMPL_LLAMA2: render_inst(msgs, n, o, 1); break;
    case FRUGAL_TMPL_MISTRAL: render_inst(msgs, n, o, 0); break;
    case FRUGAL_TMPL_LLAMA3:
        render_simple(msgs, n, gen, o, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", 0);
        break;
    case FRUGAL_TMPL_PHI3: render_marker(msgs, n, gen, o, "<|end|>\n"); break;
    case FRUGAL_TMPL_ZEPHYR: render_marker(msgs, n, gen, o, "</s>\n"); break;
    case FRUGAL_TMPL_GEMMA: render_simple(msgs, n, gen, o, "<start_of_turn>", "\n", "<end_of_turn>\n", 1); break;
    default: render_simple(msgs, n, gen, o, "<|im_start|>", "\n", "<|im_end|>\n", 0); break;
    }
}

int frugal_chat_render(int tmpl, const frugal_chat_msg *msgs, int n, int add_generation_prompt,
                       char *buf, size_t len) {
    if (tmpl < 0 || tmpl >= FRUGAL_TMPL_COUNT || n < 0 || (n > 0 && !msgs)) return -FRUGAL_E_INVALID_ARG;
    for (int i = 0; i < n; i++)
        if (!msgs[i].role || !msgs[i].content) return -FRUGAL_E_INVALID_ARG;
    tbuf o = {0};
    put(&o, ""); /* an empty conversation renders as "" rather than NULL */
    render(tmpl, msgs, n, add_generation_prompt, &o);
    if (o.err || o.len > (size_t)INT32_MAX) { free(o.p); return -FRUGAL_E_NOMEM; }
    if (buf && len > 0) {
        size_t k = o.len < len - 1 ? o.len : len - 1;
        memcpy(buf, o.p, k);
        buf[k] = '\0';
    }
    int total = (int)o.len;
    free(o.p);
    return total;
}
