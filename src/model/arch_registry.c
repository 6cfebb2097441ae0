/* arch_registry.c - the supported families: adding one is a file and a line here. */
#include <string.h>

#include "model/arch.h"

static const fr_arch_desc *const k_archs[] = {
    &fr_arch_llama, &fr_arch_qwen2, &fr_arch_qwen3, &fr_arch_qwen3moe, &fr_arch_gemma, &fr_arch_gemma2,
    &fr_arch_gemma3, &fr_arch_phi3, &fr_arch_gpt2,
};
#define N_ARCHS (sizeof k_archs / sizeof *k_archs)

const fr_arch_desc *fr_arch_find(const char *name, size_t len) {
    for (size_t i = 0; i < N_ARCHS; i++)
        if (strlen(k_archs[i]->name) == len && memcmp(k_archs[i]->name, name, len) == 0) return k_archs[i];
    return NULL;
}

void fr_arch_list(char *buf, size_t n) {
    if (!n) return;
    buf[0] = 0;
    for (size_t i = 0; i < N_ARCHS; i++) {
        if (i) strncat(buf, ", ", n - strlen(buf) - 1);
        strncat(buf, k_archs[i]->name, n - strlen(buf) - 1);
    }
}
