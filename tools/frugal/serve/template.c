/* template.c - chat templates of the common model families, rendered in C.
 *
 * GGUF files carry their chat template as Jinja source (tokenizer.chat_template).
 * Rather than interpreting Jinja, we recognise the family by markers only its
 * template contains and render that family's format ourselves. The formats follow
 * the published templates for a plain system/user/assistant conversation ending
 * with the assistant's turn header (add_generation_prompt). BOS is left to the
 * tokenizer (add_special), special-token text is parsed when tokenizing.
 */
#include <string.h>

#include "serve.h"

static const char *const k_names[SRV_TMPL_COUNT] = {
    "chatml", "llama2", "llama3", "mistral", "phi3", "gemma", "zephyr",
};

int srv_template_parse(const char *name) {
    for (int i = 0; i < SRV_TMPL_COUNT; i++)
        if (strcmp(name, k_names[i]) == 0) return i;
    if (strcmp(name, "qwen") == 0) return SRV_TMPL_CHATML; /* Qwen uses ChatML */
    return -1;
}

const char *srv_template_name(int tmpl) {
    return tmpl >= 0 && tmpl < SRV_TMPL_COUNT ? k_names[tmpl] : "?";
}

int srv_template_detect(const char *j) {
    if (!j) return -1;
    /* order matters: the more specific markers first (Phi-3 and Zephyr share <|user|>,
     * Llama-2 and Mistral share [INST]) */
    if (strstr(j, "<|im_start|>")) return SRV_TMPL_CHATML;
    if (strstr(j, "<|start_header_id|>")) return SRV_TMPL_LLAMA3;
    if (strstr(j, "<start_of_turn>")) return SRV_TMPL_GEMMA;
    if (strstr(j, "<|user|>") && strstr(j, "<|end|>")) return SRV_TMPL_PHI3;
    if (strstr(j, "<|user|>")) return SRV_TMPL_ZEPHYR;
    if (strstr(j, "[INST]") && strstr(j, "<<SYS>>")) return SRV_TMPL_LLAMA2;
    if (strstr(j, "[INST]")) return SRV_TMPL_MISTRAL;
    return -1;
}

int srv_template_for_arch(const char *arch) {
    if (!arch) return -1;
    if (strncmp(arch, "gemma", 5) == 0) return SRV_TMPL_GEMMA;
    if (strcmp(arch, "phi3") == 0) return SRV_TMPL_PHI3;
    if (strncmp(arch, "qwen", 4) == 0) return SRV_TMPL_CHATML;
    return -1;
}

const char *srv_template_end_marker(int tmpl) {
    switch (tmpl) {
    case SRV_TMPL_CHATML: return "<|im_end|>";
    case SRV_TMPL_LLAMA3: return "<|eot_id|>";
    case SRV_TMPL_GEMMA: return "<end_of_turn>";
    case SRV_TMPL_PHI3: return "<|end|>";
    default: return NULL; /* the others end turns with EOS, an end-of-generation token */
    }
}

static int is_role(const srv_msg *m, const char *role) { return strcmp(m->role, role) == 0; }

/* Roles other than system/assistant (user, tool, developer...) render as user turns;
 * "developer" is OpenAI's newer name for system. */
static const char *norm_role(const srv_msg *m) {
    if (is_role(m, "system") || is_role(m, "developer")) return "system";
    if (is_role(m, "assistant")) return "assistant";
    return "user";
}

/* Formats where each turn is "<prefix><role><mid><content><suffix>". */
static int render_simple(const srv_msg *msgs, int n, srv_buf *o, const char *pre,
                         const char *mid, const char *suf, int gemma) {
    int rc = 0;
    const char *pending_sys = NULL; /* Gemma has no system role: prepend to first user */
    for (int i = 0; i < n && !rc; i++) {
        const char *role = norm_role(&msgs[i]);
        if (gemma) {
            if (strcmp(role, "system") == 0) { pending_sys = msgs[i].content; continue; }
            if (strcmp(role, "assistant") == 0) role = "model";
        }
        rc |= srv_buf_puts(o, pre) | srv_buf_puts(o, role) | srv_buf_puts(o, mid);
        if (pending_sys && strcmp(role, "user") == 0) {
            rc |= srv_buf_puts(o, pending_sys) | srv_buf_puts(o, "\n\n");
            pending_sys = NULL;
        }
        rc |= srv_buf_puts(o, msgs[i].content) | srv_buf_puts(o, suf);
    }
    rc |= srv_buf_puts(o, pre) | srv_buf_puts(o, gemma ? "model" : "assistant") | srv_buf_puts(o, mid);
    return rc ? -1 : 0;
}

/* Llama-2 and Mistral: "[INST] user [/INST] answer</s>[INST] ...". Llama-2 puts the
 * system prompt in <<SYS>> inside the first instruction, Mistral prepends it to the
 * first user message. The BOS of the first turn comes from the tokenizer; later
 * turns start with their own <s>. */
static int render_inst(const srv_msg *msgs, int n, srv_buf *o, int llama2) {
    int rc = 0, first = 1;
    const char *sys = NULL;
    for (int i = 0; i < n && !rc; i++) {
        const char *role = norm_role(&msgs[i]);
        if (strcmp(role, "system") == 0) { sys = msgs[i].content; continue; }
        if (strcmp(role, "assistant") == 0) {
            rc |= srv_buf_puts(o, llama2 ? " " : "") | srv_buf_puts(o, msgs[i].content) | srv_buf_puts(o, llama2 ? " </s>" : "</s>");
            continue;
        }
        if (!first) rc |= srv_buf_puts(o, llama2 ? "<s>" : "");
        rc |= srv_buf_puts(o, "[INST] ");
        if (sys) {
            if (llama2) rc |= srv_buf_puts(o, "<<SYS>>\n") | srv_buf_puts(o, sys) | srv_buf_puts(o, "\n<</SYS>>\n\n");
            else rc |= srv_buf_puts(o, sys) | srv_buf_puts(o, "\n\n");
            sys = NULL;
        }
        rc |= srv_buf_puts(o, msgs[i].content) | srv_buf_puts(o, " [/INST]");
        first = 0;
    }
    return rc ? -1 : 0;
}

int srv_template_render(int tmpl, const srv_msg *msgs, int n, srv_buf *o) {
    switch (tmpl) {
    case SRV_TMPL_LLAMA2: return render_inst(msgs, n, o, 1);
    case SRV_TMPL_MISTRAL: return render_inst(msgs, n, o, 0);
    case SRV_TMPL_LLAMA3:
        return render_simple(msgs, n, o, "<|start_header_id|>", "<|end_header_id|>\n\n", "<|eot_id|>", 0);
    case SRV_TMPL_PHI3: {
        /* "<|user|>\ncontent<|end|>\n": the role is inside the marker */
        int rc = 0;
        for (int i = 0; i < n; i++)
            rc |= srv_buf_puts(o, "<|") | srv_buf_puts(o, norm_role(&msgs[i])) | srv_buf_puts(o, "|>\n") |
                  srv_buf_puts(o, msgs[i].content) | srv_buf_puts(o, "<|end|>\n");
        rc |= srv_buf_puts(o, "<|assistant|>\n");
        return rc ? -1 : 0;
    }
    case SRV_TMPL_ZEPHYR: {
        int rc = 0;
        for (int i = 0; i < n; i++)
            rc |= srv_buf_puts(o, "<|") | srv_buf_puts(o, norm_role(&msgs[i])) | srv_buf_puts(o, "|>\n") |
                  srv_buf_puts(o, msgs[i].content) | srv_buf_puts(o, "</s>\n");
        rc |= srv_buf_puts(o, "<|assistant|>\n");
        return rc ? -1 : 0;
    }
    case SRV_TMPL_GEMMA:
        return render_simple(msgs, n, o, "<start_of_turn>", "\n", "<end_of_turn>\n", 1);
    default:
        return render_simple(msgs, n, o, "<|im_start|>", "\n", "<|im_end|>\n", 0);
    }
}
