#version 450
// attn_decode.comp - attention of one query token per head over n_kv cached positions
// (decode): one workgroup per query head, its threads split the positions for the
// scores (q . k * scale, optional soft-cap), the softmax is reduced in shared memory,
// then each thread sums the weighted values for its share of the head's dims. Grouped
// queries: head h reads KV head h / (n_head / n_head_kv). Scores go to a scratch
// buffer [n_head][n_kv], so the cache length has no shared-memory limit.
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Qbuf { float q[]; };
layout(std430, binding = 1) readonly buffer Kbuf { float k[]; };
layout(std430, binding = 2) readonly buffer Vbuf { float v[]; };
layout(std430, binding = 3) writeonly buffer Obuf { float o[]; };
layout(std430, binding = 4) buffer Sbuf { float sc[]; };
layout(push_constant) uniform PC {
    uint n_head, n_head_kv, head_dim, n_kv, kv_stride, q_off, o_off;
    float scale, softcap;
} p;

shared float red[64];

float reduce(float v, bool is_max) {
    const uint tid = gl_LocalInvocationID.x;
    red[tid] = v;
    barrier();
    for (uint h = 32u; h > 0u; h >>= 1) {
        if (tid < h) red[tid] = is_max ? max(red[tid], red[tid + h]) : red[tid] + red[tid + h];
        barrier();
    }
    const float r = red[0];
    barrier();
    return r;
}

void main() {
    const uint h = gl_WorkGroupID.x, tid = gl_LocalInvocationID.x, hd = p.head_dim;
    const uint kvh = h / (p.n_head / p.n_head_kv), qb = p.q_off + h * hd, sb = h * p.n_kv;
    float m = -3.402823e38;
    for (uint j = tid; j < p.n_kv; j += 64u) {
        const uint kb = j * p.kv_stride + kvh * hd;
        float s = 0.0;
        for (uint e = 0u; e < hd; e++) s += q[qb + e] * k[kb + e];
        s *= p.scale;
        if (p.softcap > 0.0) s = p.softcap * tanh(s / p.softcap);
        sc[sb + j] = s;
        m = max(m, s);
    }
    m = reduce(m, true);
    float sum = 0.0;
    for (uint j = tid; j < p.n_kv; j += 64u) {
        const float e = exp(sc[sb + j] - m);
        sc[sb + j] = e;
        sum += e;
    }
    const float inv = 1.0 / reduce(sum, false); // its barriers also publish sc[]
    memoryBarrierBuffer();
    barrier();
    for (uint e = tid; e < hd; e += 64u) {
        float acc = 0.0;
        for (uint j = 0u; j < p.n_kv; j++) acc += sc[sb + j] * v[j * p.kv_stride + kvh * hd + e];
        o[p.o_off + h * hd + e] = acc * inv;
    }
}
