#version 450
// readsum.comp - the device's read bandwidth probe: every invocation sums the 16-byte
// words i, i + stride, i + 2 stride, ... of the buffer (neighbouring invocations read
// neighbouring words, so each pass over the buffer is one sequential sweep); a sum that
// hits a marker value is written out, so the compiler cannot drop the reads, while the
// output stays one word (the probe fits a tight --vram budget).
layout(local_size_x = 256) in;
layout(std430, binding = 0) readonly buffer Src { uvec4 src[]; };
layout(std430, binding = 1) writeonly buffer Dst { uint dst[]; };
layout(push_constant) uniform PC { uint n_vec4; } p;

void main() {
    const uint id = gl_GlobalInvocationID.x;
    const uint stride = gl_NumWorkGroups.x * 256u;
    uvec4 acc = uvec4(0u);
    for (uint i = id; i < p.n_vec4; i += stride) acc += src[i];
    const uint sum = acc.x + acc.y + acc.z + acc.w;
    if (sum == 0x9e3779b9u) dst[0] = id;
}
