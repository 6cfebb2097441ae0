// common.glsl - weight access shared by the matrix shaders. Weights are bound as a
// plain array of 32-bit words (binding 0) and read byte by byte, so no 8- or 16-bit
// storage feature is needed; every 16-bit field of the GGUF blocks used here sits at an
// even byte offset, so it never straddles a word.
layout(std430, binding = 0) readonly buffer Wbuf { uint wdata[]; };

uint wbyte(uint off) { return (wdata[off >> 2] >> ((off & 3u) * 8u)) & 0xFFu; }
uint wu16(uint off) { return (wdata[off >> 2] >> ((off & 2u) * 8u)) & 0xFFFFu; }
float wf16(uint off) { return unpackHalf2x16(wu16(off)).x; }
int wi8(uint off) { return int(wbyte(off) << 24) >> 24; }

// Q4_K: 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes at sc
void scale_min_k4(uint sc, uint j, out float s, out float m) {
    if (j < 4u) {
        s = float(wbyte(sc + j) & 63u);
        m = float(wbyte(sc + j + 4u) & 63u);
    } else {
        s = float((wbyte(sc + j + 4u) & 15u) | ((wbyte(sc + j - 4u) >> 6) << 4));
        m = float((wbyte(sc + j + 4u) >> 4) | ((wbyte(sc + j) >> 6) << 4));
    }
}

// Per weight type: BLK values per block of BBYTES bytes; wval(rb, k) = value k of the
// row starting at byte rb (any k); the matrix-vector kernel uses block_dot instead.
#if defined(WT_F32)
#define BLK 1u
#define BBYTES 4u
float wval(uint rb, uint k) { return uintBitsToFloat(wdata[(rb >> 2) + k]); }
#elif defined(WT_F16)
#define BLK 1u
#define BBYTES 2u
float wval(uint rb, uint k) { return wf16(rb + 2u * k); }
#elif defined(WT_Q8_0)
#define BLK 32u
#define BBYTES 34u
float wval(uint rb, uint k) {
    const uint b = rb + (k / 32u) * 34u;
    return wf16(b) * float(wi8(b + 2u + k % 32u));
}
#elif defined(WT_Q4_0)
#define BLK 32u
#define BBYTES 18u
float wval(uint rb, uint k) {
    const uint b = rb + (k / 32u) * 18u, j = k % 32u;
    const uint q = wbyte(b + 2u + (j & 15u));
    return wf16(b) * (float(j < 16u ? q & 15u : q >> 4) - 8.0);
}
#elif defined(WT_Q4_K)
#define BLK 256u
#define BBYTES 144u
float wval(uint rb, uint k) {
    const uint b = rb + (k / 256u) * 144u, i = k % 256u, c = i / 64u, l = i % 64u;
    float s, m;
    scale_min_k4(b + 4u, 2u * c + (l >= 32u ? 1u : 0u), s, m);
    const uint q = wbyte(b + 16u + 32u * c + (l & 31u));
    return wf16(b) * s * float(l < 32u ? q & 15u : q >> 4) - wf16(b + 2u) * m;
}
#elif defined(WT_Q6_K)
#define BLK 256u
#define BBYTES 210u
float wval(uint rb, uint k) {
    const uint b = rb + (k / 256u) * 210u, i = k % 256u, n = i / 128u, r = i % 128u, qt = r / 32u, l = r % 32u;
    const uint ql = wbyte(b + 64u * n + l + ((qt & 1u) != 0u ? 32u : 0u));
    const uint lo = qt < 2u ? ql & 15u : ql >> 4;
    const uint hi = (wbyte(b + 128u + 32u * n + l) >> (2u * qt)) & 3u;
    const float sc = float(wi8(b + 192u + 8u * n + l / 16u + 2u * qt));
    return wf16(b + 208u) * sc * float(int(lo | (hi << 4)) - 32);
}
#else
#error "define the weight type (WT_F32, WT_F16, WT_Q8_0, WT_Q4_0, WT_Q4_K, WT_Q6_K)"
#endif
