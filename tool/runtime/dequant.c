/* dequant.c: GGML's tensor blocks to float32 (doc/model.md §2.2).
 *
 * Every quantized type stores a tensor row as blocks of a fixed number of
 * elements, each block a few scales (IEEE half) and packed integer codes.
 * The layouts below are GGML's, as its documentation and the `gguf`
 * Python package describe them; each case says its layout and formula.
 * Written from that description, and checked against the `gguf`
 * package's dequantization by tests/llamacpp.sh (the float32 rewrite of
 * the file must give our logits to rounding).  Bytes are read one at a
 * time, little-endian, so the host's byte order does not matter. */
#include <config.h>
#include <math.h>
#include <string.h>
#include "dequant.h"

/* IEEE half to float. */
static float half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023, bits;
    if (e == 0) {
        if (m == 0) {
            bits = sign;
        } else {   /* subnormal: m * 2^-24 */
            float f = ldexpf((float)m, -24);
            return sign ? -f : f;
        }
    } else if (e == 31) {
        bits = sign | 0x7F800000u | (m << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

int lm_type_block(uint32_t type, uint64_t *elems, uint64_t *bytes)
{
    switch (type) {
    case LM_T_F32: *elems = 1; *bytes = 4; return 1;
    case LM_T_F16: *elems = 1; *bytes = 2; return 1;
    case LM_T_Q4_0: *elems = 32; *bytes = 18; return 1;    /* d; 16 bytes of nibbles */
    case LM_T_Q4_1: *elems = 32; *bytes = 20; return 1;    /* d, m; 16 bytes of nibbles */
    case LM_T_Q5_0: *elems = 32; *bytes = 22; return 1;    /* d; 4 bytes of fifth bits; nibbles */
    case LM_T_Q5_1: *elems = 32; *bytes = 24; return 1;    /* d, m; fifth bits; nibbles */
    case LM_T_Q8_0: *elems = 32; *bytes = 34; return 1;    /* d; 32 int8 */
    case LM_T_Q4_K: *elems = 256; *bytes = 144; return 1;  /* d, dmin; 12 bytes of scales; 128 of nibbles */
    case LM_T_Q5_K: *elems = 256; *bytes = 176; return 1;  /* as Q4_K, plus 32 bytes of fifth bits */
    case LM_T_Q6_K: *elems = 256; *bytes = 210; return 1;  /* 128 low nibbles, 64 of 2-bit highs, 16 int8 scales, d */
    default: return 0;
    }
}

/* The 6-bit scale and min of sub-block j (0..7) of a Q4_K or Q5_K block,
 * packed in 12 bytes q: sub-blocks 0-3 keep theirs in the low 6 bits of
 * q[j] (scale) and q[j+4] (min); sub-blocks 4-7 keep the low 4 bits in the
 * nibbles of q[j+4] (scale low, min high) and the top 2 bits in the top 2
 * bits of q[j-4] (scale) and q[j] (min). */
static void k_scale_min(const unsigned char *q, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 15) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void lm_dequantise(uint32_t type, const unsigned char *src, uint64_t n, float *out)
{
    switch (type) {
    case LM_T_F32:
        for (uint64_t i = 0; i < n; i++) {
            uint32_t b = le32(src + 4 * i);
            memcpy(out + i, &b, 4);
        }
        break;
    case LM_T_F16:
        for (uint64_t i = 0; i < n; i++)
            out[i] = half(le16(src + 2 * i));
        break;
    case LM_T_Q4_0:   /* x = (nibble - 8) d; low nibbles are elements 0..15, high 16..31 */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 18;
            float d = half(le16(p));
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = (float)((p[2 + j] & 15) - 8) * d;
                out[b * 32 + j + 16] = (float)((p[2 + j] >> 4) - 8) * d;
            }
        }
        break;
    case LM_T_Q4_1:   /* x = nibble d + m */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 20;
            float d = half(le16(p)), m = half(le16(p + 2));
            for (int j = 0; j < 16; j++) {
                out[b * 32 + j] = (float)(p[4 + j] & 15) * d + m;
                out[b * 32 + j + 16] = (float)(p[4 + j] >> 4) * d + m;
            }
        }
        break;
    case LM_T_Q5_0:   /* 5-bit code c = nibble | bit j of the 32-bit h << 4; x = (c - 16) d */
    case LM_T_Q5_1: { /* x = c d + m */
        int q51 = type == LM_T_Q5_1;
        uint64_t bb = q51 ? 24 : 22;
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * bb;
            float d = half(le16(p)), m = q51 ? half(le16(p + 2)) : 0.0f;
            uint32_t h = le32(p + (q51 ? 4 : 2));
            const unsigned char *qs = p + (q51 ? 8 : 6);
            for (int j = 0; j < 16; j++) {
                int lo = (qs[j] & 15) | (int)(((h >> j) & 1) << 4);
                int hi = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
                out[b * 32 + j] = q51 ? (float)lo * d + m : (float)(lo - 16) * d;
                out[b * 32 + j + 16] = q51 ? (float)hi * d + m : (float)(hi - 16) * d;
            }
        }
        break;
    }
    case LM_T_Q8_0:   /* x = q d */
        for (uint64_t b = 0; b < n / 32; b++) {
            const unsigned char *p = src + b * 34;
            float d = half(le16(p));
            for (int j = 0; j < 32; j++)
                out[b * 32 + j] = (float)(int8_t)p[2 + j] * d;
        }
        break;
    case LM_T_Q4_K:   /* 8 sub-blocks of 32: x = (d sc) c - (dmin mn); sub-blocks 2g, 2g+1 are
                       * the low and high nibbles of bytes 32g .. 32g+31 of the codes */
    case LM_T_Q5_K: { /* the same with a fifth bit: bit 2g (low) or 2g+1 (high) of h[l] */
        int q5 = type == LM_T_Q5_K;
        uint64_t bb = q5 ? 176 : 144;
        for (uint64_t b = 0; b < n / 256; b++) {
            const unsigned char *p = src + b * bb;
            float d = half(le16(p)), dmin = half(le16(p + 2));
            const unsigned char *scales = p + 4, *qh = p + 16, *qs = p + (q5 ? 48 : 16);
            float *o = out + b * 256;
            for (int g = 0; g < 4; g++) {
                int sc0, mn0, sc1, mn1;
                k_scale_min(scales, 2 * g, &sc0, &mn0);
                k_scale_min(scales, 2 * g + 1, &sc1, &mn1);
                float d0 = d * (float)sc0, m0 = dmin * (float)mn0;
                float d1 = d * (float)sc1, m1 = dmin * (float)mn1;
                for (int l = 0; l < 32; l++) {
                    int lo = qs[32 * g + l] & 15, hi = qs[32 * g + l] >> 4;
                    if (q5) {
                        lo |= ((qh[l] >> (2 * g)) & 1) << 4;
                        hi |= ((qh[l] >> (2 * g + 1)) & 1) << 4;
                    }
                    o[64 * g + l] = d0 * (float)lo - m0;
                    o[64 * g + 32 + l] = d1 * (float)hi - m1;
                }
            }
        }
        break;
    }
    case LM_T_Q6_K:   /* 16 sub-blocks of 16: x = d sc[s] (c - 32), c 6 bits: in each half of
                       * 128 elements, element 32i + l (i = 0..3, l < 32) takes the low
                       * (i = 0, 1) or high (i = 2, 3) nibble of ql[64 half + 32 (i & 1) + l]
                       * and bits 2i, 2i+1 of qh[32 half + l] */
        for (uint64_t b = 0; b < n / 256; b++) {
            const unsigned char *p = src + b * 210;
            const unsigned char *ql = p, *qh = p + 128;
            const signed char *sc = (const signed char *)(p + 192);
            float d = half(le16(p + 208));
            float *o = out + b * 256;
            for (int hf = 0; hf < 2; hf++)
                for (int i = 0; i < 4; i++)
                    for (int l = 0; l < 32; l++) {
                        int e = 128 * hf + 32 * i + l;
                        unsigned char lb = ql[64 * hf + 32 * (i & 1) + l];
                        int c = (i < 2 ? lb & 15 : lb >> 4) | (((qh[32 * hf + l] >> (2 * i)) & 3) << 4);
                        o[e] = d * (float)sc[e / 16] * (float)(c - 32);
                    }
        }
        break;
    default:
        break;
    }
}
