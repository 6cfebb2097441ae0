#version 450
// attn_kv16.comp - causal attention over a layer's F16 cache, for decode and prefill
// alike: one workgroup per (query head, token); token t attends to cache rows lo..pos[t]
// (lo > 0 with a sliding window). Numerics follow the CPU's F16-cache path
// (model/attention.c): the query is scaled by q_scale (Gemma/Phi-3 pre-scaling) and
// rounded to F16, scores are dotted in F32, soft-capped then scaled, softmax-normalised
// weights are rounded to F16 before they weigh the V rows. No score scratch: a first
// pass over K finds each thread's running max and sum (rescaled as the max grows), a
// second recomputes the scores tile by tile and accumulates V (head_dim <= 256).
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Qbuf { float q[]; };
layout(std430, binding = 1) readonly buffer Kc { uint kc[]; };
layout(std430, binding = 2) readonly buffer Vc { uint vc[]; };
layout(std430, binding = 3) writeonly buffer Obuf { float o[]; };
layout(std430, binding = 4) readonly buffer Pbuf { int pos[]; };
layout(push_constant) uniform PC {
    uint n_head, n_head_kv, head_dim, q_off, q_stride, o_off, o_stride, window;
    float scale, softcap, q_scale;
} p;

shared float qs[256];
shared float red[64];
shared float pw[64];

float f16r(float v) { return unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x; }

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

// score of cache row j against the query in qs (KV head kvh)
float score(uint j, uint kvh) {
    const uint hd = p.head_dim, base = (j * p.n_head_kv * hd + kvh * hd) / 2u;
    float s = 0.0;
    for (uint e = 0u; e < hd / 2u; e++) {
        const vec2 k2 = unpackHalf2x16(kc[base + e]);
        s += qs[2u * e] * k2.x + qs[2u * e + 1u] * k2.y;
    }
    if (p.softcap > 0.0) s = tanh(s / p.softcap) * p.softcap;
    return s * p.scale;
}

void main() {
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x, hd = p.head_dim;
    const uint kvh = h / (p.n_head / p.n_head_kv);
    const uint pt = uint(pos[t]), lo = p.window > 0u && pt >= p.window ? pt - p.window + 1u : 0u, n = pt + 1u - lo;
    for (uint e = tid; e < hd; e += 64u) qs[e] = f16r(q[p.q_off + t * p.q_stride + h * hd + e] * p.q_scale);
    barrier();
    float m = -3.402823e38, sum = 0.0;
    for (uint j = tid; j < n; j += 64u) {
        const float s = score(lo + j, kvh);
        if (s > m) {
            sum = sum * exp(m - s);
            m = s;
        }
        sum += exp(s - m);
    }
    const float gm = reduce(m, true);
    const float inv = 1.0 / reduce(sum > 0.0 ? sum * exp(m - gm) : 0.0, false);
    float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint j0 = 0u; j0 < n; j0 += 64u) {
        const uint j = j0 + tid;
        pw[tid] = j < n ? f16r(exp(score(lo + j, kvh) - gm) * inv) : 0.0;
        barrier();
        const uint cnt = min(64u, n - j0);
        for (uint c = 0u; c < 4u; c++) {
            const uint e = tid + 64u * c;
            if (e >= hd) break;
            const uint vb = kvh * hd + e;
            for (uint jj = 0u; jj < cnt; jj++) {
                const uint idx = (lo + j0 + jj) * p.n_head_kv * hd + vb;
                const vec2 v2 = unpackHalf2x16(vc[idx / 2u]);
                acc[c] += pw[jj] * ((idx & 1u) != 0u ? v2.y : v2.x);
            }
        }
        barrier();
    }
    for (uint c = 0u; c < 4u; c++) {
        const uint e = tid + 64u * c;
        if (e < hd) o[p.o_off + t * p.o_stride + h * hd + e] = acc[c];
    }
}
