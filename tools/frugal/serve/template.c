/* template.c - the server's chat-template calls, over the public API's renderer
 * (src/api/chat_template.c, shared with `frugal chat` and the Python package). */
#include <stdlib.h>

#include "core/fault.h"
#include "serve.h"

int srv_template_parse(const char *name) { return frugal_chat_template_parse(name); }

const char *srv_template_name(int tmpl) { return frugal_chat_template_name(tmpl); }

int srv_template_detect(const char *j) { return frugal_chat_template_detect(j); }

const char *srv_template_end_marker(int tmpl) { return frugal_chat_end_marker(tmpl); }

int srv_template_render(int tmpl, const srv_msg *msgs, int n, srv_buf *o) {
    int need = frugal_chat_render(tmpl, msgs, n, 1, NULL, 0);
    if (need < 0) return -1;
    char *text = fr_malloc((size_t)need + 1);
    if (!text) return -1;
    frugal_chat_render(tmpl, msgs, n, 1, text, (size_t)need + 1);
    int rc = srv_buf_append(o, text, (size_t)need);
    free(text);
    return rc;
}
