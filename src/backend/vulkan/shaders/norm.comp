#version 450
// norm.comp - RMSNorm (mode 0) or LayerNorm (mode 1) of one row per workgroup:
// o = norm(x) * w [+ b]; w/b optional (flags bit 0 / bit 1). o may alias x: each
// thread writes only the elements it read, after the row's sums are complete.
layout(local_size_x = 128) in;
layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) writeonly buffer Obuf { float o[]; };
layout(std430, binding = 2) readonly buffer Wbuf { float w[]; };
layout(std430, binding = 3) readonly buffer Bbuf { float bias[]; };
layout(push_constant) uniform PC {
    uint n, mode, flags, x_off, x_stride, o_off, o_stride, w_off, b_off;
    float eps;
} p;

shared float red[128];

float row_sum(float v) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint h = 64u; h > 0u; h >>= 1) {
        if (tid < h) red[tid] += red[tid + h];
        barrier();
    }
    const float s = red[0];
    barrier();
    return s;
}

void main() {
    const uint tid = gl_LocalInvocationID.x, xb = p.x_off + gl_WorkGroupID.x * p.x_stride;
    const uint ob = p.o_off + gl_WorkGroupID.x * p.o_stride;
    float mean = 0.0;
    if (p.mode == 1u) {
        float s = 0.0;
        for (uint i = tid; i < p.n; i += 128u) s += x[xb + i];
        mean = row_sum(s) / float(p.n);
    }
    float s2 = 0.0;
    for (uint i = tid; i < p.n; i += 128u) {
        const float v = x[xb + i] - mean;
        s2 += v * v;
    }
    const float scale = 1.0 / sqrt(row_sum(s2) / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += 128u) {
        float v = (x[xb + i] - mean) * scale;
        if ((p.flags & 1u) != 0u) v *= w[p.w_off + i];
        if ((p.flags & 2u) != 0u) v += bias[p.b_off + i];
        o[ob + i] = v;
    }
}
