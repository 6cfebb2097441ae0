#version 450
// rope.comp - rotary position embedding in place, as the CPU's fr_rope_ext (ggml's
// rope_ext): one invocation per rotated pair of one head of one token. neox 0 rotates
// (2i, 2i+1) (Llama), 1 rotates (i, i + n_rot/2) (NeoX/Qwen2); optional per-pair
// frequency divisors (flags bit 0: LongRoPE / Llama-3 rope_freqs); linear scaling by
// freq_scale and YaRN (ext_factor != 0) blended over the correction dims corr0..corr1.
layout(local_size_x = 64) in;
layout(std430, binding = 0) buffer Xbuf { float x[]; };
layout(std430, binding = 1) readonly buffer Pbuf { int pos[]; };
layout(std430, binding = 2) readonly buffer Fbuf { float factors[]; };
layout(push_constant) uniform PC {
    uint n_head, head_dim, n_rot, neox, n_tok, x_off, x_stride, flags;
    float base, freq_scale, ext_factor, attn_factor, corr0, corr1;
} p;

void main() {
    const uint half_rot = p.n_rot / 2u, gid = gl_GlobalInvocationID.x;
    const uint i = gid % half_rot, h = (gid / half_rot) % p.n_head, t = gid / (half_rot * p.n_head);
    if (t >= p.n_tok) return;
    const float theta = float(pos[t]) * pow(p.base, -2.0 * float(i) / float(p.n_rot));
    const float extrap = theta / ((p.flags & 1u) != 0u ? factors[i] : 1.0);
    float th = p.freq_scale * extrap, mscale = p.attn_factor;
    if (p.ext_factor != 0.0) {
        const float yv = (float(i) - p.corr0) / max(0.001, p.corr1 - p.corr0);
        const float ramp = (1.0 - min(1.0, max(0.0, yv))) * p.ext_factor;
        th = th * (1.0 - ramp) + extrap * ramp;
        mscale *= 1.0 + 0.1 * log(1.0 / p.freq_scale);
    }
    const float c = cos(th) * mscale, s = sin(th) * mscale;
    const uint base = p.x_off + t * p.x_stride + h * p.head_dim;
    const uint a = base + (p.neox != 0u ? i : 2u * i), b = base + (p.neox != 0u ? i + half_rot : 2u * i + 1u);
    const float x0 = x[a], x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
