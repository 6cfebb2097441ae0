/* mk_iq2m.c - a random-weight model with the tensor types of llama.cpp's IQ2_M mix,
 * for speed measurements of the IQ2_S / IQ3_S kernels (bench/README.md).
 *
 *   bench_mk_iq2m IN-F16-or-F32.gguf OUT.gguf
 *
 * frugal cannot write IQ2_S / IQ3_S from floats (their lattice search is not
 * implemented), but speed does not depend on the values: every bit pattern is a
 * valid block of these formats. So the matrices IQ2_M gives IQ2_S / IQ3_S (all of
 * them but attn_v, which goes to Q4_K with GQA, and the output, Q5_K) get random
 * blocks with a scale matching the input's RMS; Q4_K / Q5_K tensors are quantized
 * from the input, norms are copied. Not a quality model: use it for `frugal bench`
 * and `bench_stream_ab` only. Uses the library's internals. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/dispatch.h"
#include "core/error.h"
#include "core/quant_lowbit.h"
#include "gguf/gguf.h"

typedef struct { const gguf_file *f; uint32_t *types; uint64_t rng; } job;

static uint64_t next(uint64_t *s) {
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

/* llama.cpp's IQ2_M rule for a dense GQA model (n_gqa >= 4), tensor i of n_layer. */
static uint32_t iq2m_type(const char *name, int n_dims, int *i_down, int n_layer) {
    if (n_dims < 2 || strstr(name, "_norm")) return FR_TYPE_F32;
    if (!strcmp(name, "output.weight")) return FR_TYPE_Q5_K;
    if (!strcmp(name, "token_embd.weight")) return FR_TYPE_IQ3_S;
    if (strstr(name, "attn_v.weight")) return FR_TYPE_Q4_K;
    if (strstr(name, "attn_output.weight")) return FR_TYPE_IQ3_S;
    if (strstr(name, "ffn_down")) return (*i_down)++ < n_layer / 8 ? FR_TYPE_IQ3_S : FR_TYPE_IQ2_S;
    return FR_TYPE_IQ2_S;
}

static int fill(void *user, size_t index, void *dst, size_t nbytes, fr_err *err) {
    job *j = user;
    const gguf_tensor *t = &j->f->tensors[index];
    const uint32_t ty = j->types[index];
    const fr_type_traits *in = fr_type_traits_get(t->type), *out = fr_type_traits_get(ty);
    const int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
    const size_t in_row = fr_row_size((fr_type)t->type, n), out_row = fr_row_size((fr_type)ty, n);
    float *buf = malloc(sizeof(float) * (size_t)n);
    if (!buf || out_row * (size_t)rows != nbytes) { free(buf); return fr_err_set(err, FRUGAL_E_INTERNAL, "size"); }
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *d = (uint8_t *)dst + (size_t)r * out_row;
        in->to_float((const uint8_t *)t->data + (size_t)r * in_row, buf, n);
        if (out->from_float) { out->from_float(buf, d, n); continue; }
        double ss = 0;
        for (int64_t i = 0; i < n; i++) ss += (double)buf[i] * buf[i];
        /* typical |value| of a block is ~50 d (IQ2_S) or ~120 d (IQ3_S) */
        const float scale = (float)sqrt(ss / (double)n) / (ty == FR_TYPE_IQ2_S ? 50.f : 120.f);
        for (size_t i = 0; i < out_row; i++) d[i] = (uint8_t)next(&j->rng);
        for (size_t b = 0; b < out_row / out->type_size; b++) {
            const uint16_t h = fr_f32_to_f16(scale);
            memcpy(d + b * out->type_size, &h, 2); /* both blocks start with their F16 d */
        }
    }
    free(buf);
    return FRUGAL_OK;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_mk_iq2m IN.gguf OUT.gguf\n");
        return 2;
    }
    gguf_file *f = NULL;
    fr_err err = FRUGAL_ERROR_INIT;
    if (gguf_open(argv[1], &f, &err)) {
        fprintf(stderr, "bench_mk_iq2m: %s\n", err.message);
        return 1;
    }
    uint32_t n_layer = 0;
    gguf_get_u32_opt(f, "llama.block_count", 0, &n_layer, NULL);
    job j = {f, calloc(f->n_tensors ? f->n_tensors : 1, sizeof(uint32_t)), 0x9e3779b97f4a7c15ull};
    gguf_writer *w = gguf_writer_new();
    int rc = j.types && w ? FRUGAL_OK : FRUGAL_E_NOMEM, i_down = 0;
    for (uint64_t i = 0; !rc && i < f->n_kv; i++) rc = gguf_writer_copy_kv(w, &f->kv[i]);
    if (!rc) rc = gguf_writer_set_u32(w, "general.file_type", 29); /* LLAMA_FTYPE_MOSTLY_IQ2_M */
    for (uint64_t i = 0; !rc && i < f->n_tensors; i++) {
        const gguf_tensor *t = &f->tensors[i];
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.ptr);
        j.types[i] = iq2m_type(name, (int)t->n_dims, &i_down, (int)n_layer);
        if (j.types[i] != FR_TYPE_F32 && t->ne[0] % FR_QK_K) j.types[i] = FR_TYPE_F32;
        if (j.types[i] == FR_TYPE_F32 && t->type != FR_TYPE_F32) j.types[i] = t->type;
        rc = gguf_writer_add_tensor(w, name, j.types[i], t->n_dims, t->ne, NULL);
    }
    if (!rc) rc = gguf_writer_write(w, argv[2], fill, &j, &err);
    if (rc) fprintf(stderr, "bench_mk_iq2m: %s\n", err.message[0] ? err.message : "failed");
    gguf_writer_free(w);
    free(j.types);
    gguf_close(f);
    return rc ? 1 : 0;
}
