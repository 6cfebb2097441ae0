#version 450
// add.comp - o = a + b over n elements (residual adds, biases broadcast with b_mod:
// b is read at i % b_mod when b_mod != 0).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Abuf { float a[]; };
layout(std430, binding = 1) readonly buffer Bbuf { float b[]; };
layout(std430, binding = 2) writeonly buffer Obuf { float o[]; };
layout(push_constant) uniform PC { uint n, a_off, b_off, o_off, b_mod; } p;

void main() {
    const uint i = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * 256u * gl_GlobalInvocationID.y;
    if (i >= p.n) return;
    o[p.o_off + i] = a[p.a_off + i] + b[p.b_off + (p.b_mod != 0u ? i % p.b_mod : i)];
}
