/* simd.h: the vector primitives of the CPU kernels (mirror of lib/elem.c's
 * conversions, spec §4.3).
 *
 * The AVX2 kernels are compiled for AVX2 + FMA + F16C with a function
 * attribute (KVR_AVX2), the AVX-512 ones for AVX512F (KVR_AVX512), and
 * chosen at run time (CPUID and XGETBV, cpu/attend.c), so one build runs on any
 * x86-64; on other processors the portable kernels run.  Each load gives 8 coordinates as float32, exactly the
 * values kvr_elem_load gives: f16 through vcvtph2ps (exact, subnormals
 * included), bf16 by a 16-bit shift (exact), f32 as is. */
#ifndef KVR_CPU_SIMD_H
#define KVR_CPU_SIMD_H

#include <stdint.h>
#include "kvreviver.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define KVR_CPU_X86 1
#include <immintrin.h>
#define KVR_AVX2 __attribute__((target("avx2,fma,f16c")))

/* 8 coordinates of a row from index i, as float32. */
KVR_AVX2 static inline __m256 kvr_v8_load(kvr_elem elem, const void *row, int i)
{
    if (elem == KVR_F16)
        return _mm256_cvtph_ps(_mm_loadu_si128((const void *)((const uint16_t *)row + i)));
    if (elem == KVR_BF16) {
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const void *)((const uint16_t *)row + i)));
        return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
    }
    return _mm256_loadu_ps((const float *)row + i);
}

/* The sum of the 8 lanes (any order: the tolerance bounds any order). */
KVR_AVX2 static inline float kvr_v8_hsum(__m256 x)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* The 8 codes of 4 bits in 4 bytes (element 2j the low nibble of byte j,
 * 2j + 1 the high one: ref/quant.c's packing), as float32; swap reads the
 * high nibble first (the mutant of tests/cpu.c). */
KVR_AVX2 static inline __m256 kvr_v8_codes4(const unsigned char *codes, int swap)
{
    uint32_t w;
    __builtin_memcpy(&w, codes, 4);
    __m256i sh = swap ? _mm256_setr_epi32(4, 0, 12, 8, 20, 16, 28, 24) : _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28);
    __m256i c = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), sh), _mm256_set1_epi32(15));
    return _mm256_cvtepi32_ps(c);
}

/* The same for AVX-512 (16 coordinates a vector), chosen at run time where
 * the processor has AVX512F. */
#define KVR_AVX512 __attribute__((target("avx512f,avx2,fma,f16c")))

KVR_AVX512 static inline __m512 kvr_v16_load(kvr_elem elem, const void *row, int i)
{
    if (elem == KVR_F16)
        return _mm512_cvtph_ps(_mm256_loadu_si256((const void *)((const uint16_t *)row + i)));
    if (elem == KVR_BF16) {
        __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const void *)((const uint16_t *)row + i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    }
    return _mm512_loadu_ps((const float *)row + i);
}

KVR_AVX512 static inline float kvr_v16_hsum(__m512 x)
{
    __m256 s = _mm256_add_ps(_mm512_castps512_ps256(x), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}
#endif

#endif
