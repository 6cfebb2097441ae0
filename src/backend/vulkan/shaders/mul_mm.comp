#version 450
// mul_mm.comp - tiled matrix-matrix product for prefill: Y[t][r] = dot(W[r], X[t]) over
// a 32-row x 32-token tile per workgroup. Each k-step stages a 32x32 slice of the
// weights (dequantized once into shared memory) and of the activations, then every
// thread accumulates its 2x2 outputs from shared memory, so each weight value is
// fetched from device memory once per 32 tokens instead of once per token.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 1) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 2) writeonly buffer Ybuf { float y[]; };
layout(push_constant) uniform PC {
    uint n_in, n_out, n_tok, w_off, row_bytes, x_off, x_stride, y_off, y_stride;
} p;

shared float ws[32][33]; // [row][k], padded against bank conflicts
shared float xs[32][33]; // [token][k]

void main() {
    const uint r0 = gl_WorkGroupID.x * 32u, t0 = gl_WorkGroupID.y * 32u;
    const uint lx = gl_LocalInvocationID.x, ly = gl_LocalInvocationID.y, lid = ly * 16u + lx;
    float acc[2][2] = {{0.0, 0.0}, {0.0, 0.0}};
    for (uint k0 = 0u; k0 < p.n_in; k0 += 32u) {
        for (uint e = lid; e < 1024u; e += 256u) { // 32x32 elements, 4 per thread
            const uint i = e / 32u, k = e % 32u, r = r0 + i, t = t0 + i, kk = k0 + k;
            ws[i][k] = (r < p.n_out && kk < p.n_in) ? wval(p.w_off + r * p.row_bytes, kk) : 0.0;
            xs[i][k] = (t < p.n_tok && kk < p.n_in) ? x[p.x_off + t * p.x_stride + kk] : 0.0;
        }
        barrier();
        for (uint k = 0u; k < 32u; k++) {
            const float w0 = ws[lx][k], w1 = ws[lx + 16u][k], a0 = xs[ly][k], a1 = xs[ly + 16u][k];
            acc[0][0] += w0 * a0;
            acc[0][1] += w1 * a0;
            acc[1][0] += w0 * a1;
            acc[1][1] += w1 * a1;
        }
        barrier();
    }
    for (uint i = 0u; i < 2u; i++)
        for (uint j = 0u; j < 2u; j++) {
            const uint t = t0 + ly + 16u * i, r = r0 + lx + 16u * j;
            if (t < p.n_tok && r < p.n_out) y[p.y_off + t * p.y_stride + r] = acc[i][j];
        }
}
