/* test_chat_template.c - the public chat-template API (src/api/chat_template.c):
 * snprintf-like sizing and truncation, bad arguments, names and detection, and the
 * property `frugal chat` relies on to keep its KV cache between turns: a
 * conversation rendered without the generation prompt is a prefix of the same
 * conversation with one more turn rendered with it (every format frugal knows). */
#include <string.h>

#include "frugal.h"
#include "testutil.h"

static const frugal_chat_msg k_msgs[] = {
    {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Joke?"},
};

static void test_sizes(void) {
    char small[8], big[512];
    int n = frugal_chat_render(FRUGAL_TMPL_CHATML, k_msgs, 2, 1, NULL, 0);
    const char *want = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                       "<|im_start|>assistant\n";
    CHECKF(n == (int)strlen(want), "n %d", n);
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, k_msgs, 2, 1, big, sizeof big) == n);
    CHECK(strcmp(big, want) == 0);
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, k_msgs, 2, 1, small, sizeof small) == n);
    CHECK(memcmp(small, want, 7) == 0 && small[7] == '\0'); /* truncated, terminated */
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, k_msgs, 0, 0, big, sizeof big) == 0 && big[0] == '\0');
}

static void test_bad_args(void) {
    frugal_chat_msg bad[] = {{"user", NULL}};
    CHECK(frugal_chat_render(-1, k_msgs, 1, 1, NULL, 0) == -FRUGAL_E_INVALID_ARG);
    CHECK(frugal_chat_render(FRUGAL_TMPL_COUNT, k_msgs, 1, 1, NULL, 0) == -FRUGAL_E_INVALID_ARG);
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, bad, 1, 1, NULL, 0) == -FRUGAL_E_INVALID_ARG);
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, NULL, 2, 1, NULL, 0) == -FRUGAL_E_INVALID_ARG);
    CHECK(frugal_chat_render(FRUGAL_TMPL_CHATML, k_msgs, -1, 1, NULL, 0) == -FRUGAL_E_INVALID_ARG);
}

static void test_names(void) {
    for (int t = 0; t < FRUGAL_TMPL_COUNT; t++)
        CHECK(frugal_chat_template_parse(frugal_chat_template_name(t)) == t);
    CHECK(frugal_chat_template_parse("qwen") == FRUGAL_TMPL_CHATML);
    CHECK(frugal_chat_template_parse("jinja") == -1 && frugal_chat_template_parse(NULL) == -1);
    CHECK(strcmp(frugal_chat_template_name(99), "?") == 0);
    CHECK(frugal_chat_template_detect("{{ '<|start_header_id|>' }}") == FRUGAL_TMPL_LLAMA3);
    CHECK(frugal_chat_template_detect("[INST] <<SYS>>") == FRUGAL_TMPL_LLAMA2);
    CHECK(frugal_chat_template_detect("plain") == -1 && frugal_chat_template_detect(NULL) == -1);
    CHECK(frugal_chat_template_of(NULL) == -1);
    CHECK(strcmp(frugal_chat_end_marker(FRUGAL_TMPL_CHATML), "<|im_end|>") == 0);
    CHECK(frugal_chat_end_marker(FRUGAL_TMPL_MISTRAL) == NULL);
}

static void test_prefix_stable(void) {
    for (int t = 0; t < FRUGAL_TMPL_COUNT; t++) {
        char a[1024], b[1024];
        /* history up to the assistant's answer, then the next user turn */
        int na = frugal_chat_render(t, k_msgs, 3, 0, a, sizeof a);
        int nb = frugal_chat_render(t, k_msgs, 4, 1, b, sizeof b);
        CHECKF(na > 0 && nb > na && strncmp(a, b, (size_t)na) == 0, "%s: '%s' vs '%s'",
               frugal_chat_template_name(t), a, b);
        /* the generation prompt only appends */
        int ng = frugal_chat_render(t, k_msgs, 4, 0, a, sizeof a);
        CHECKF(ng <= nb && strncmp(a, b, (size_t)ng) == 0, "%s", frugal_chat_template_name(t));
    }
}

int main(void) {
    test_sizes();
    test_bad_args();
    test_names();
    test_prefix_stable();
    return tu_finish("test_chat_template");
}
