#version 450
// act.comp - element-wise activations: mode 0 SwiGLU o = silu(g) * u, 1 GeGLU
// o = gelu(g) * u, 2 GELU o = gelu(g). GELU is the tanh form evaluated as the CPU
// reference does: input rounded to F16, result rounded to F16, 0 / x beyond -10 / 10.
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Gbuf { float g[]; };
layout(std430, binding = 1) readonly buffer Ubuf { float u[]; };
layout(std430, binding = 2) writeonly buffer Obuf { float o[]; };
layout(push_constant) uniform PC { uint n, mode, g_off, u_off, o_off; } p;

float f16r(float v) { return unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x; }

float gelu(float v) {
    if (v <= -10.0) return 0.0;
    if (v >= 10.0) return v;
    const float h = f16r(v);
    return f16r(0.5 * h * (1.0 + tanh(0.7978845608028654 * h * (1.0 + 0.044715 * h * h))));
}

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * 256u * gl_GlobalInvocationID.y;
    if (i >= p.n) return;
    const float a = g[p.g_off + i];
    float r;
    if (p.mode == 0u) r = a / (1.0 + exp(-a)) * u[p.u_off + i];
    else if (p.mode == 1u) r = gelu(a) * u[p.u_off + i];
    else r = gelu(a);
    o[p.o_off + i] = r;
}
