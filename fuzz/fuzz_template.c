/* fuzz_template.c - libFuzzer target: the chat-template side of the server.
 *
 * The input is read as a Jinja chat template (srv_template_detect must name one
 * of the known formats or -1) and as a conversation: NUL-separated fields taken
 * as role, content, role, content, ... rendered with every built-in template
 * (srv_template_render must produce a NUL-terminated string holding every user
 * message's content verbatim; system turns may be folded or dropped by a format). Seeds: fuzz/seeds.sh (the chat templates and texts of the
 * shared HF folders and models). */
#include "fuzz_util.h"

#include <string.h>

#include "../tools/frugal/serve/serve.h"

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    int t = srv_template_detect(s);
    if (t < -1 || t >= SRV_TMPL_COUNT) abort();
    if (t >= 0 && !srv_template_name(t)) abort();

    srv_msg msgs[MAX_MSGS];
    int n = 0;
    char *f = s, *lim = s + size;
    while (n < MAX_MSGS && f < lim) {
        char *role = f;
        f += strlen(f) + 1;
        const char *content = f < lim ? f : "";
        if (f < lim) f += strlen(f) + 1;
        msgs[n].role = role;
        msgs[n].content = content;
        n++;
    }
    for (int k = 0; k < SRV_TMPL_COUNT && n > 0; k++) {
        srv_buf out = {0};
        if (srv_template_render(k, msgs, n, &out) != 0) abort();
        if (out.p ? strlen(out.p) != out.len : out.len != 0) abort(); /* nothing rendered: no buffer */
        for (int i = 0; i < n; i++)
            if (!strcmp(msgs[i].role, "user") && msgs[i].content[0] && (!out.p || !strstr(out.p, msgs[i].content)))
                abort();
        srv_buf_free(&out);
    }
    free(s);
    return 0;
}
