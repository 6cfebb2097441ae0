#version 450
// softmax.comp - in-place softmax of one row of n values per workgroup (max subtracted
// first, as the CPU's fr_softmax).
layout(local_size_x = 128) in;
layout(std430, binding = 0) buffer Xbuf { float x[]; };
layout(push_constant) uniform PC { uint n, x_off, x_stride; } p;

shared float red[128];

float reduce(float v, bool is_max) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint h = 64u; h > 0u; h >>= 1) {
        if (tid < h) red[tid] = is_max ? max(red[tid], red[tid + h]) : red[tid] + red[tid + h];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

void main() {
    const uint tid = gl_LocalInvocationID.x, xb = p.x_off + gl_WorkGroupID.x * p.x_stride;
    float m = -3.402823e38;
    for (uint i = tid; i < p.n; i += 128u) m = max(m, x[xb + i]);
    m = reduce(m, true);
    float s = 0.0;
    for (uint i = tid; i < p.n; i += 128u) {
        const float e = exp(x[xb + i] - m);
        x[xb + i] = e;
        s += e;
    }
    const float inv = 1.0 / reduce(s, false);
    for (uint i = tid; i < p.n; i += 128u) x[xb + i] *= inv;
}
