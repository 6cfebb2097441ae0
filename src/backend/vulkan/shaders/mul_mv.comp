#version 450
// mul_mv.comp - matrix-vector product for decode: y[t][row] = dot(W[row], x[t]), one
// workgroup per (row, token). The workgroup's threads take the row's blocks in turn,
// each dequantizing whole blocks, so every weight byte of the row is read once; the
// partial sums meet in shared memory. Compiled once per weight type (common.glsl).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 64) in;
layout(std430, binding = 1) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC {
    uint n_in, n_out, n_tok, w_off, row_bytes, x_off, x_stride, y_off, y_stride;
} p;

shared float partial[64];

#if defined(WT_F32) || defined(WT_F16)
float block_dot(uint rb, uint b, uint xb) { return wval(rb, b) * x[xb + b]; }
#elif defined(WT_Q8_0)
float block_dot(uint rb, uint b, uint xb) {
    const uint o = rb + b * 34u;
    xb += b * 32u;
    float s = 0.0;
    for (uint j = 0u; j < 32u; j += 4u) { // one word of quants at a time
        for (uint i = 0u; i < 4u; i++) s += float(wi8(o + 2u + j + i)) * x[xb + j + i];
    }
    return s * wf16(o);
}
#elif defined(WT_Q4_0)
float block_dot(uint rb, uint b, uint xb) {
    const uint o = rb + b * 18u;
    xb += b * 32u;
    float s = 0.0;
    for (uint j = 0u; j < 16u; j++) {
        const uint q = wbyte(o + 2u + j);
        s += (float(q & 15u) - 8.0) * x[xb + j] + (float(q >> 4) - 8.0) * x[xb + j + 16u];
    }
    return s * wf16(o);
}
#elif defined(WT_Q4_K)
float block_dot(uint rb, uint b, uint xb) {
    const uint o = rb + b * 144u;
    xb += b * 256u;
    const float d = wf16(o), dmin = wf16(o + 2u);
    float s = 0.0;
    for (uint c = 0u; c < 4u; c++) { // 64 values: low nibbles, then high nibbles
        float s1, m1, s2, m2;
        scale_min_k4(o + 4u, 2u * c, s1, m1);
        scale_min_k4(o + 4u, 2u * c + 1u, s2, m2);
        float a1 = 0.0, a2 = 0.0, x1 = 0.0, x2 = 0.0;
        for (uint l = 0u; l < 32u; l++) {
            const uint q = wbyte(o + 16u + 32u * c + l);
            const float xa = x[xb + 64u * c + l], xc = x[xb + 64u * c + 32u + l];
            a1 += float(q & 15u) * xa;
            a2 += float(q >> 4) * xc;
            x1 += xa;
            x2 += xc;
        }
        s += d * (s1 * a1 + s2 * a2) - dmin * (m1 * x1 + m2 * x2);
    }
    return s;
}
#elif defined(WT_Q6_K)
float block_dot(uint rb, uint b, uint xb) {
    const uint o = rb + b * 210u;
    xb += b * 256u;
    float s = 0.0;
    for (uint n = 0u; n < 2u; n++) {
        const uint ql = o + 64u * n, qh = o + 128u + 32u * n, sc = o + 192u + 8u * n, xn = xb + 128u * n;
        for (uint l = 0u; l < 32u; l++) {
            const uint is = l / 16u, h = wbyte(qh + l), a = wbyte(ql + l), c = wbyte(ql + l + 32u);
            s += float(wi8(sc + is)) * float(int((a & 15u) | ((h & 3u) << 4)) - 32) * x[xn + l];
            s += float(wi8(sc + is + 2u)) * float(int((c & 15u) | (((h >> 2) & 3u) << 4)) - 32) * x[xn + l + 32u];
            s += float(wi8(sc + is + 4u)) * float(int((a >> 4) | (((h >> 4) & 3u) << 4)) - 32) * x[xn + l + 64u];
            s += float(wi8(sc + is + 6u)) * float(int((c >> 4) | (((h >> 6) & 3u) << 4)) - 32) * x[xn + l + 96u];
        }
    }
    return s * wf16(o + 208u);
}
#endif

void main() {
    const uint row = gl_WorkGroupID.y * 32768u + gl_WorkGroupID.x, t = gl_WorkGroupID.z, tid = gl_LocalInvocationID.x;
    if (row >= p.n_out) return; // whole workgroup: no barrier is skipped by part of it
    const uint rb = p.w_off + row * p.row_bytes, xb = p.x_off + t * p.x_stride, nb = p.n_in / BLK;
    float s = 0.0;
    for (uint b = tid; b < nb; b += 64u) s += block_dot(rb, b, xb);
    partial[tid] = s;
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (tid < h) partial[tid] += partial[tid + h];
        barrier();
    }
    if (tid == 0u) y[p.y_off + t * p.y_stride + row] = partial[0];
}
