/* interleave.c - the IL16 layout (see interleave.h): repack and unpack, scalar. */
#include "kernels/interleave.h"

#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/quant.h"
#include "kernels/ops.h"

bool fr_il_layout_known(fr_type type) {
    return type == FR_TYPE_Q4_0 || type == FR_TYPE_Q8_0 || type == FR_TYPE_Q4_K || type == FR_TYPE_Q5_K ||
           type == FR_TYPE_Q6_K ||
           type == FR_TYPE_F16 || type == FR_TYPE_Q3_K || type == FR_TYPE_IQ4_XS ||
           type == FR_TYPE_IQ4_NL;
}

/* Bytes of quants per block and the XOR applied to them in the group. */
static void il_geometry(fr_type type, size_t *block, size_t *quants, uint8_t *bias) {
    *block = fr_type_traits_get(type)->type_size;
    *quants = *block - 2; /* Q4_0, Q8_0, IQ4_NL: F16 scale, then the quant bytes */
    *bias = type == FR_TYPE_Q8_0 ? 0x80 : 0;
}

void fr_il_put_quants(const uint8_t *p, size_t row_bytes, uint8_t *q, uint8_t bias) {
#if defined(__SSE2__)
    /* a 4x4 transpose of 32-bit words puts word j of the 4 rows side by side, which
     * is lane j's slice for them; this runs at memory speed, so streamed layers can
     * be repacked as they arrive */
    const __m128i x = _mm_set1_epi8((char)bias);
    const __m128i r0 = _mm_loadu_si128((const __m128i *)p);
    const __m128i r1 = _mm_loadu_si128((const __m128i *)(p + row_bytes));
    const __m128i r2 = _mm_loadu_si128((const __m128i *)(p + 2 * row_bytes));
    const __m128i r3 = _mm_loadu_si128((const __m128i *)(p + 3 * row_bytes));
    const __m128i a = _mm_unpacklo_epi32(r0, r1), c = _mm_unpacklo_epi32(r2, r3);
    const __m128i e = _mm_unpackhi_epi32(r0, r1), f = _mm_unpackhi_epi32(r2, r3);
    _mm_storeu_si128((__m128i *)q, _mm_xor_si128(_mm_unpacklo_epi64(a, c), x));
    _mm_storeu_si128((__m128i *)(q + 64), _mm_xor_si128(_mm_unpackhi_epi64(a, c), x));
    _mm_storeu_si128((__m128i *)(q + 128), _mm_xor_si128(_mm_unpacklo_epi64(e, f), x));
    _mm_storeu_si128((__m128i *)(q + 192), _mm_xor_si128(_mm_unpackhi_epi64(e, f), x));
#else
    for (int r = 0; r < 4; r++)
        for (int k = 0; k < 16; k++) q[(k / 4) * 64 + 4 * r + k % 4] = p[(size_t)r * row_bytes + k] ^ bias;
#endif
}

/* F16: a 16 x n_in transpose, 8 columns at a time so the 16 row streams are read in
 * 16-byte pieces. */
static void pack_group_f16(const uint16_t *src, int64_t n_in, uint16_t *dst) {
    int64_t j = 0;
    for (; j + 8 <= n_in; j += 8)
        for (int r = 0; r < FR_IL_ROWS; r++) {
            const uint16_t *s = src + (size_t)r * (size_t)n_in + j;
            for (int k = 0; k < 8; k++) dst[(size_t)(j + k) * FR_IL_ROWS + r] = s[k];
        }
    for (; j < n_in; j++)
        for (int r = 0; r < FR_IL_ROWS; r++) dst[(size_t)j * FR_IL_ROWS + r] = src[(size_t)r * (size_t)n_in + j];
}

void fr_il_pack_group(fr_type type, const void *src, int64_t n_in, void *dst) {
    if (type == FR_TYPE_F16) {
        pack_group_f16(src, n_in, dst);
        return;
    }
    if (type == FR_TYPE_Q4_K) {
        fr_il_pack_group_q4_k(src, n_in, dst);
        return;
    }
    if (type == FR_TYPE_Q5_K) {
        fr_il_pack_group_q5_k(src, n_in, dst);
        return;
    }
    if (type == FR_TYPE_Q6_K) {
        fr_il_pack_group_q6_k(src, n_in, dst);
        return;
    }
    if (type == FR_TYPE_Q3_K) {
        fr_il_pack_group_q3_k(src, n_in, dst);
        return;
    }
    if (type == FR_TYPE_IQ4_XS) {
        fr_il_pack_group_iq4_xs(src, n_in, dst);
        return;
    }
    size_t bs, qb;
    uint8_t bias;
    il_geometry(type, &bs, &qb, &bias);
    const int64_t nb = n_in / fr_type_traits_get(type)->blck_size;
    const size_t row_bytes = (size_t)nb * bs;
    uint8_t *o = dst;
    for (int64_t b = 0; b < nb; b++) {
        for (int r = 0; r < FR_IL_ROWS; r++)
            memcpy(o + 2 * r, (const uint8_t *)src + (size_t)r * row_bytes + (size_t)b * bs, 2);
        for (int r = 0; r < FR_IL_ROWS; r += 4)
            for (size_t k = 0; k < qb / 16; k++)
                fr_il_put_quants((const uint8_t *)src + (size_t)r * row_bytes + (size_t)b * bs + 2 + 16 * k, row_bytes,
                                 o + 32 + (4 * k) * 64 + 4 * r, bias);
        o += FR_IL_ROWS * bs;
    }
}

void fr_il_unpack_row(fr_type type, const void *g, int64_t n_in, int r, void *out) {
    if (type == FR_TYPE_F16) {
        for (int64_t j = 0; j < n_in; j++) ((uint16_t *)out)[j] = ((const uint16_t *)g)[(size_t)j * FR_IL_ROWS + r];
        return;
    }
    if (type == FR_TYPE_Q4_K) {
        fr_il_unpack_row_q4_k(g, n_in, r, out);
        return;
    }
    if (type == FR_TYPE_Q5_K) {
        fr_il_unpack_row_q5_k(g, n_in, r, out);
        return;
    }
    if (type == FR_TYPE_Q6_K) {
        fr_il_unpack_row_q6_k(g, n_in, r, out);
        return;
    }
    if (type == FR_TYPE_Q3_K) {
        fr_il_unpack_row_q3_k(g, n_in, r, out);
        return;
    }
    if (type == FR_TYPE_IQ4_XS) {
        fr_il_unpack_row_iq4_xs(g, n_in, r, out);
        return;
    }
    size_t bs, qb;
    uint8_t bias;
    il_geometry(type, &bs, &qb, &bias);
    const int64_t nb = n_in / fr_type_traits_get(type)->blck_size;
    const uint8_t *in = g;
    uint8_t *o = out;
    for (int64_t b = 0; b < nb; b++) {
        memcpy(o, in + 2 * r, 2);
        for (size_t k = 0; k < qb; k++) o[2 + k] = in[32 + (k / 4) * 64 + 4 * r + k % 4] ^ bias;
        in += FR_IL_ROWS * bs;
        o += bs;
    }
}

size_t fr_il_scratch_bytes(const fr_weight *w) {
    const fr_type_traits *t = fr_type_traits_get(w->type);
    if (!fr_il_layout_known(w->type) || w->n_out % FR_IL_ROWS != 0 || !t || !t->il_gemm) return 0;
    return fr_row_size(w->type, w->n_in) * FR_IL_ROWS;
}

bool fr_il_worth_it(const fr_weight *w) { return w->layout == FR_LAYOUT_ROWS && fr_il_scratch_bytes(w) > 0; }

void fr_il_repack(fr_weight *w, void *dst) {
    const size_t group = fr_row_size(w->type, w->n_in) * FR_IL_ROWS;
    for (int64_t g = 0; g < w->n_out / FR_IL_ROWS; g++)
        fr_il_pack_group(w->type, (const uint8_t *)w->data + (size_t)g * group, w->n_in,
                         (uint8_t *)dst + (size_t)g * group);
    w->data = dst;
    w->layout = FR_LAYOUT_IL16;
}

void fr_il_repack_in_place(fr_weight *w, void *tmp) {
    const size_t group = fr_row_size(w->type, w->n_in) * FR_IL_ROWS;
    uint8_t *d = (uint8_t *)w->data;
    for (int64_t g = 0; g < w->n_out / FR_IL_ROWS; g++) {
        memcpy(tmp, d + (size_t)g * group, group);
        fr_il_pack_group(w->type, tmp, w->n_in, d + (size_t)g * group);
    }
    w->layout = FR_LAYOUT_IL16;
}
