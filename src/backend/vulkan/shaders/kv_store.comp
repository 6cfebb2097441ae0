#version 450
// kv_store.comp - append K and V rows of a chunk of tokens to a layer's F16 cache:
// token t's row (row_len floats at src_off + t * src_stride of the K and V inputs)
// goes to cache row pos[t], rounded to F16 (as the CPU's F16 cache stores it). The
// cache is an array of words, two halves each; one invocation per pair of values.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Kin { float kin[]; };
layout(std430, binding = 1) readonly buffer Vin { float vin[]; };
layout(std430, binding = 2) writeonly buffer Kc { uint kc[]; };
layout(std430, binding = 3) writeonly buffer Vc { uint vc[]; };
layout(std430, binding = 4) readonly buffer Pbuf { int pos[]; };
layout(push_constant) uniform PC { uint n_tok, row_len, k_off, v_off, src_stride; } p;

void main() {
    const uint gid = gl_GlobalInvocationID.x, half_row = p.row_len / 2u;
    const uint t = gid / half_row, i = gid % half_row;
    if (t >= p.n_tok) return;
    const uint kb = p.k_off + t * p.src_stride + 2u * i, vb = p.v_off + t * p.src_stride + 2u * i;
    const uint dst = uint(pos[t]) * half_row + i;
    kc[dst] = packHalf2x16(vec2(kin[kb], kin[kb + 1u]));
    vc[dst] = packHalf2x16(vec2(vin[vb], vin[vb + 1u]));
}
