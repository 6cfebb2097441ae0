#version 450
// act_round.comp - a matrix product's input rounded as the CPU's kernels round it
// before their dot products (core/quant_act.c, core/quant_k.c): mode 0 Q8_0 blocks of
// 32 (d = amax / 127, q = round-to-even(x * 127 / amax), x' = f16(d) * q), mode 1 Q8_K
// blocks of 256 (the signed value of largest magnitude m, q = clamp(round(x * -127 / m)),
// x' = q / (-127 / m)), mode 2 F16. One invocation per block (per value for F16); rows
// of n values at x_off + r * n, written to o_off + r * n.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Xbuf { float x[]; };
layout(std430, binding = 1) writeonly buffer Obuf { float o[]; };
layout(push_constant) uniform PC { uint n_blocks, mode, x_off, o_off; } p;

void main() {
    const uint b = gl_GlobalInvocationID.x + gl_NumWorkGroups.x * 64u * gl_GlobalInvocationID.y;
    if (b >= p.n_blocks) return;
    if (p.mode == 2u) {
        o[p.o_off + b] = unpackHalf2x16(packHalf2x16(vec2(x[p.x_off + b], 0.0))).x;
        return;
    }
    const uint len = p.mode == 0u ? 32u : 256u, xb = p.x_off + b * len, ob = p.o_off + b * len;
    float amax = 0.0, mx = 0.0;
    for (uint j = 0u; j < len; j++) {
        const float a = abs(x[xb + j]);
        if (a > amax) {
            amax = a;
            mx = x[xb + j];
        }
    }
    if (p.mode == 0u) {
        const float id = amax != 0.0 ? 127.0 / amax : 0.0;
        const float d = unpackHalf2x16(packHalf2x16(vec2(amax / 127.0, 0.0))).x;
        for (uint j = 0u; j < len; j++) o[ob + j] = d * roundEven(x[xb + j] * id);
        return;
    }
    if (amax == 0.0) {
        for (uint j = 0u; j < len; j++) o[ob + j] = 0.0;
        return;
    }
    const float iscale = -127.0 / mx, d = 1.0 / iscale;
    for (uint j = 0u; j < len; j++) o[ob + j] = d * clamp(roundEven(iscale * x[xb + j]), -128.0, 127.0);
}
