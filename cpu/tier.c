/* tier.c: the quantized tier's rows on the CPU (spec §19.4), mirror of
 * ref_tier_get in ref/tier.c and ref_dequant_row in ref/quant.c.
 *
 * A tier row is read as its packed codes (D / 2 bytes at 4 bits) and its
 * float16 zero point z and scale s: each 8 coordinates are unpacked from 4
 * bytes in a register and dequantized as z + code * s in float32, the
 * reference's two operations (code * s is exact, so the value is the
 * reference's bit for bit), then enter the dot products or the value sums
 * as an exact row's coordinates do (attend.c).  Nothing is written back:
 * the tier is never expanded to float32 in memory.  Other bit widths take
 * the portable kernels (attend.c, ref_dequant_row a row at a time). */
#include <config.h>
#include "internal.h"
#include "cpu.h"

#ifdef KVR_CPU_X86
#define TILE 16   /* rows of a tile of the value sums (their codes stay in L1) */

/* The dequantized coordinates i .. i+7 of a tier row. */
KVR_AVX2 static inline __m256 deq8(const unsigned char *codes, int i, __m256 z, __m256 s, int swap)
{
    return _mm256_add_ps(z, _mm256_mul_ps(kvr_v8_codes4(codes + i / 2, swap), s));
}

/* logits of up to 4 query heads (gn) for the rows of s: two rows at a time
 * share the loads of q. */
KVR_AVX2 static inline __attribute__((always_inline)) void
logits4(const cpu_seg *s, int D, int gn, const float *q, float scale, float *lg, long ld, int swap)
{
    size_t B = (size_t)D / 2;
    const unsigned char *K = s->k;
    long t = 0;
    for (; t + 2 <= s->m; t += 2) {
        __m256 a0[4], a1[4];
        #pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = a1[g] = _mm256_setzero_ps();
        const unsigned char *r0 = K + (size_t)t * B, *r1 = r0 + B;
        __m256 z0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t])), s0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 1]));
        __m256 z1 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 2])), s1 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 3]));
        for (int i = 0; i < D; i += 8) {
            __m256 k0 = deq8(r0, i, z0, s0, swap), k1 = deq8(r1, i, z1, s1, swap);
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                __m256 qq = _mm256_loadu_ps(q + (size_t)g * D + i);
                a0[g] = _mm256_fmadd_ps(qq, k0, a0[g]);
                a1[g] = _mm256_fmadd_ps(qq, k1, a1[g]);
            }
        }
        #pragma GCC unroll 4
        for (int g = 0; g < gn; g++) {
            lg[g * ld + t] = kvr_v8_hsum(a0[g]) * scale;
            lg[g * ld + t + 1] = kvr_v8_hsum(a1[g]) * scale;
        }
    }
    for (; t < s->m; t++) {
        __m256 a0[4];
        #pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = _mm256_setzero_ps();
        const unsigned char *r0 = K + (size_t)t * B;
        __m256 z0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t])), s0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 1]));
        for (int i = 0; i < D; i += 8) {
            __m256 k0 = deq8(r0, i, z0, s0, swap);
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
                a0[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)g * D + i), k0, a0[g]);
        }
        #pragma GCC unroll 4
        for (int g = 0; g < gn; g++)
            lg[g * ld + t] = kvr_v8_hsum(a0[g]) * scale;
    }
}

/* The 16 coordinates i .. i+15 of a tier row from 8 bytes, as two vectors
 * of 8: lo holds the even coordinates (the low nibbles), hi the odd ones
 * (the high nibbles).  fma(code, s, z) is z + code * s bit for bit: the
 * product of a 4-bit code and a float16 scale is exact in float32, so the
 * fused form rounds once where the reference rounds once. */
KVR_AVX2 static inline void deq16(const unsigned char *codes, int i, __m256 z, __m256 s, int swap,
                                  __m256 *lo, __m256 *hi)
{
    __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(codes + i / 2)));
    __m256 l = _mm256_cvtepi32_ps(_mm256_and_si256(b, _mm256_set1_epi32(15)));
    __m256 h = _mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4));
    *lo = _mm256_fmadd_ps(swap ? h : l, s, z);
    *hi = _mm256_fmadd_ps(swap ? l : h, s, z);
}

/* q ([gn][D]) with each 16 coordinates deinterleaved as deq16 gives them:
 * qp[g][16c + j] = q[g][16c + 2j], qp[g][16c + 8 + j] = q[g][16c + 2j + 1]. */
static void deinterleave(const float *q, int D, int gn, float *qp)
{
    for (int g = 0; g < gn; g++)
        for (int c = 0; c < D; c += 16)
            for (int j = 0; j < 8; j++) {
                qp[g * D + c + j] = q[(size_t)g * D + c + 2 * j];
                qp[g * D + c + 8 + j] = q[(size_t)g * D + c + 2 * j + 1];
            }
}

/* logits4 for D a multiple of 16 (at most KVR_TIER_QP): 16 coordinates a
 * step from 8 bytes (deq16), against the deinterleaved queries. */
KVR_AVX2 static inline __attribute__((always_inline)) void
logits16(const cpu_seg *s, int D, int gn, const float *q, float scale, float *lg, long ld, int swap)
{
    float qp[4 * KVR_TIER_QP];
    deinterleave(q, D, gn, qp);
    size_t B = (size_t)D / 2;
    const unsigned char *K = s->k;
    for (long t = 0; t < s->m; t++) {
        __m256 a0[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        __m256 a1[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        const unsigned char *r0 = K + (size_t)t * B;
        __m256 z0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t])), s0 = _mm256_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 1]));
        for (int i = 0; i < D; i += 16) {
            __m256 lo, hi;
            deq16(r0, i, z0, s0, swap, &lo, &hi);
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                a0[g] = _mm256_fmadd_ps(_mm256_loadu_ps(qp + g * D + i), lo, a0[g]);
                a1[g] = _mm256_fmadd_ps(_mm256_loadu_ps(qp + g * D + i + 8), hi, a1[g]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < gn; g++)
            lg[g * ld + t] = kvr_v8_hsum(_mm256_add_ps(a0[g], a1[g])) * scale;
    }
}

KVR_AVX2 void cpu_tier4_logits_avx2(const cpu_seg *s, int D, int G, const float *q, float scale, float *lg, long ld)
{
    int swap = kvr_cpu_mutant == 2;
    if (D % 16 == 0 && D <= KVR_TIER_QP) {
        for (int g0 = 0; g0 < G; g0 += 4) {
            if (G - g0 >= 4)
                logits16(s, D, 4, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
            else
                logits16(s, D, G - g0, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
        }
        return;
    }
    for (int g0 = 0; g0 < G; g0 += 4) {
        if (G - g0 >= 4)
            logits4(s, D, 4, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
        else
            logits4(s, D, G - g0, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
    }
}

/* out[g] += sum over the rows of p[g][row] * value row, for up to 4 query
 * heads: a tile of rows, 8 coordinates at a time, the 4 sums in registers. */
KVR_AVX2 static inline __attribute__((always_inline)) void
accum4(const cpu_seg *s, int D, int gn, const float *p, long ld, float *out, int swap)
{
    size_t B = (size_t)D / 2;
    const unsigned char *V = s->v;
    for (long t0 = 0; t0 < s->m; t0 += TILE) {
        long tn = s->m - t0 < TILE ? s->m - t0 : TILE;
        __m256 zs[TILE], ss[TILE];
        for (long t = 0; t < tn; t++) {
            zs[t] = _mm256_set1_ps(kvr_f16_to_f32(s->vq[2 * (t0 + t)]));
            ss[t] = _mm256_set1_ps(kvr_f16_to_f32(s->vq[2 * (t0 + t) + 1]));
        }
        for (int i = 0; i < D; i += 8) {
            __m256 acc[4] = {_mm256_setzero_ps()};
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) acc[g] = _mm256_loadu_ps(out + (size_t)g * D + i);
            for (long t = 0; t < tn; t++) {
                __m256 x = deq8(V + (size_t)(t0 + t) * B, i, zs[t], ss[t], swap);
                #pragma GCC unroll 4
                for (int g = 0; g < gn; g++)
                    acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + g * ld + t0 + t), x, acc[g]);
            }
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) _mm256_storeu_ps(out + (size_t)g * D + i, acc[g]);
        }
    }
}

/* accum4 for D a multiple of 16 (at most KVR_TIER_QP): the sums kept in
 * deinterleaved order (deq16's) over all the rows, then added into out. */
KVR_AVX2 static inline __attribute__((always_inline)) void
accum16(const cpu_seg *s, int D, int gn, const float *p, long ld, float *out, int swap)
{
    float op[4 * KVR_TIER_QP];
    size_t B = (size_t)D / 2;
    const unsigned char *V = s->v;
    for (int k = 0; k < gn * D; k++) op[k] = 0.0f;
    for (long t0 = 0; t0 < s->m; t0 += TILE) {
        long tn = s->m - t0 < TILE ? s->m - t0 : TILE;
        __m256 zs[TILE], ss[TILE];
        for (long t = 0; t < tn; t++) {
            zs[t] = _mm256_set1_ps(kvr_f16_to_f32(s->vq[2 * (t0 + t)]));
            ss[t] = _mm256_set1_ps(kvr_f16_to_f32(s->vq[2 * (t0 + t) + 1]));
        }
        for (int i = 0; i < D; i += 16) {
            __m256 a0[4] = {_mm256_setzero_ps()}, a1[4] = {_mm256_setzero_ps()};
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                a0[g] = _mm256_loadu_ps(op + g * D + i);
                a1[g] = _mm256_loadu_ps(op + g * D + i + 8);
            }
            for (long t = 0; t < tn; t++) {
                __m256 lo, hi;
                deq16(V + (size_t)(t0 + t) * B, i, zs[t], ss[t], swap, &lo, &hi);
#pragma GCC unroll 4
                for (int g = 0; g < gn; g++) {
                    __m256 w = _mm256_broadcast_ss(p + g * ld + t0 + t);
                    a0[g] = _mm256_fmadd_ps(w, lo, a0[g]);
                    a1[g] = _mm256_fmadd_ps(w, hi, a1[g]);
                }
            }
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                _mm256_storeu_ps(op + g * D + i, a0[g]);
                _mm256_storeu_ps(op + g * D + i + 8, a1[g]);
            }
        }
    }
    for (int g = 0; g < gn; g++)                     /* back to coordinate order */
        for (int c = 0; c < D; c += 16)
            for (int j = 0; j < 8; j++) {
                out[(size_t)g * D + c + 2 * j] += op[g * D + c + j];
                out[(size_t)g * D + c + 2 * j + 1] += op[g * D + c + 8 + j];
            }
}

KVR_AVX2 void cpu_tier4_accum_avx2(const cpu_seg *s, int D, int G, const float *p, long ld, float *out)
{
    int swap = kvr_cpu_mutant == 2;
    if (D % 16 == 0 && D <= KVR_TIER_QP) {
        for (int g0 = 0; g0 < G; g0 += 4) {
            if (G - g0 >= 4)
                accum16(s, D, 4, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
            else
                accum16(s, D, G - g0, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
        }
        return;
    }
    for (int g0 = 0; g0 < G; g0 += 4) {
        if (G - g0 >= 4)
            accum4(s, D, 4, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
        else
            accum4(s, D, G - g0, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
    }
}

/* ---- AVX-512: 32 coordinates a step from 16 bytes ------------------------ */

/* deq16's 16-lane form: lo the even coordinates of i .. i+31, hi the odd. */
KVR_AVX512 static inline void deq32(const unsigned char *codes, int i, __m512 z, __m512 s, int swap,
                                    __m512 *lo, __m512 *hi)
{
    __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(codes + i / 2)));
    __m512 l = _mm512_cvtepi32_ps(_mm512_and_si512(b, _mm512_set1_epi32(15)));
    __m512 h = _mm512_cvtepi32_ps(_mm512_srli_epi32(b, 4));
    *lo = _mm512_fmadd_ps(swap ? h : l, s, z);
    *hi = _mm512_fmadd_ps(swap ? l : h, s, z);
}

/* q deinterleaved by 32: qp[g][32c + j] = q[g][32c + 2j], qp[g][32c + 16 + j] = q[g][32c + 2j + 1]. */
static void deinterleave32(const float *q, int D, int gn, float *qp)
{
    for (int g = 0; g < gn; g++)
        for (int c = 0; c < D; c += 32)
            for (int j = 0; j < 16; j++) {
                qp[g * D + c + j] = q[(size_t)g * D + c + 2 * j];
                qp[g * D + c + 16 + j] = q[(size_t)g * D + c + 2 * j + 1];
            }
}

KVR_AVX512 static inline __attribute__((always_inline)) void
logits32(const cpu_seg *s, int D, int gn, const float *q, float scale, float *lg, long ld, int swap)
{
    float qp[4 * KVR_TIER_QP];
    deinterleave32(q, D, gn, qp);
    size_t B = (size_t)D / 2;
    const unsigned char *K = s->k;
    for (long t = 0; t < s->m; t++) {
        __m512 a0[4], a1[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = a1[g] = _mm512_setzero_ps();
        const unsigned char *r0 = K + (size_t)t * B;
        __m512 z0 = _mm512_set1_ps(kvr_f16_to_f32(s->kq[2 * t])), s0 = _mm512_set1_ps(kvr_f16_to_f32(s->kq[2 * t + 1]));
        for (int i = 0; i < D; i += 32) {
            __m512 lo, hi;
            deq32(r0, i, z0, s0, swap, &lo, &hi);
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                a0[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qp + g * D + i), lo, a0[g]);
                a1[g] = _mm512_fmadd_ps(_mm512_loadu_ps(qp + g * D + i + 16), hi, a1[g]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < gn; g++)
            lg[g * ld + t] = kvr_v16_hsum(_mm512_add_ps(a0[g], a1[g])) * scale;
    }
}

KVR_AVX512 void cpu_tier4_logits_avx512(const cpu_seg *s, int D, int G, const float *q, float scale, float *lg, long ld)
{
    int swap = kvr_cpu_mutant == 2;
    for (int g0 = 0; g0 < G; g0 += 4) {
        if (G - g0 >= 4)
            logits32(s, D, 4, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
        else
            logits32(s, D, G - g0, q + (size_t)g0 * D, scale, lg + g0 * ld, ld, swap);
    }
}

KVR_AVX512 static inline __attribute__((always_inline)) void
accum32(const cpu_seg *s, int D, int gn, const float *p, long ld, float *out, int swap)
{
    float op[4 * KVR_TIER_QP];
    size_t B = (size_t)D / 2;
    const unsigned char *V = s->v;
    for (int k = 0; k < gn * D; k++) op[k] = 0.0f;
    for (long t0 = 0; t0 < s->m; t0 += TILE) {
        long tn = s->m - t0 < TILE ? s->m - t0 : TILE;
        float zs[TILE], ss[TILE];
        for (long t = 0; t < tn; t++) {
            zs[t] = kvr_f16_to_f32(s->vq[2 * (t0 + t)]);
            ss[t] = kvr_f16_to_f32(s->vq[2 * (t0 + t) + 1]);
        }
        for (int i = 0; i < D; i += 32) {
            __m512 a0[4], a1[4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++) {
                a0[g] = g < gn ? _mm512_loadu_ps(op + g * D + i) : _mm512_setzero_ps();
                a1[g] = g < gn ? _mm512_loadu_ps(op + g * D + i + 16) : _mm512_setzero_ps();
            }
            for (long t = 0; t < tn; t++) {
                __m512 lo, hi;
                deq32(V + (size_t)(t0 + t) * B, i, _mm512_set1_ps(zs[t]), _mm512_set1_ps(ss[t]), swap, &lo, &hi);
#pragma GCC unroll 4
                for (int g = 0; g < gn; g++) {
                    __m512 w = _mm512_set1_ps(p[g * ld + t0 + t]);
                    a0[g] = _mm512_fmadd_ps(w, lo, a0[g]);
                    a1[g] = _mm512_fmadd_ps(w, hi, a1[g]);
                }
            }
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                _mm512_storeu_ps(op + g * D + i, a0[g]);
                _mm512_storeu_ps(op + g * D + i + 16, a1[g]);
            }
        }
    }
    for (int g = 0; g < gn; g++)                     /* back to coordinate order */
        for (int c = 0; c < D; c += 32)
            for (int j = 0; j < 16; j++) {
                out[(size_t)g * D + c + 2 * j] += op[g * D + c + j];
                out[(size_t)g * D + c + 2 * j + 1] += op[g * D + c + 16 + j];
            }
}

KVR_AVX512 void cpu_tier4_accum_avx512(const cpu_seg *s, int D, int G, const float *p, long ld, float *out)
{
    int swap = kvr_cpu_mutant == 2;
    for (int g0 = 0; g0 < G; g0 += 4) {
        if (G - g0 >= 4)
            accum32(s, D, 4, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
        else
            accum32(s, D, G - g0, p + g0 * ld, ld, out + (size_t)g0 * D, swap);
    }
}
#endif
