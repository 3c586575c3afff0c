/* attend.c: decode attention on the CPU (spec §11.2, §17.4, §19.4), mirror
 * of ref_attend (ref/attend.c) and ref_attend_moment (ref/moment.c) for the
 * configurations of kvr_cpu_supports.
 *
 * One head cache's held rows are read where they lie, as runs (cpu_seg):
 * the sinks, the window's ring (one or two runs of slots), the candidates
 * and the tier, each in its storage type: f32, f16 or bf16 rows converted
 * 16 (AVX-512) or 8 (AVX2) coordinates at a time in registers (simd.h),
 * 4-bit tier codes unpacked and dequantized in registers (tier.c).  Two
 * passes, as the reference's:
 *
 *   1. logits: every key row once for the G query heads of the group
 *      (two rows at a time share the loads of q), l = dot * scale, into a
 *      [G][rows] buffer; the bulk term's logit (moment.c);
 *   2. weights p = exp(l - max) (exp4: evaluated in float64, rounded
 *      once), their sum, and the value sums: every value row once, a tile
 *      of rows at a time with the G sums of 32 or 64 coordinates in
 *      registers; then the bulk's value, the division by the sum, and the
 *      probabilities for the importance update.
 *
 * Each key and value byte is read once a step, nothing is written but the
 * logits (4 G bytes a row), and no float32 copy of the cache is made.
 * What differs from the reference is the order of the float32 sums (the
 * dot products' coordinates are summed 8 or 16 lanes at a time, the rows in part
 * order rather than position order) and the fused multiply-adds: the
 * tolerance model of spec §14.4 bounds any order and either rounding
 * (gamma_n over n operations), so the output is within kvr_tol_attend of
 * the reference's.  When the result is not finite the caller runs the
 * reference (its wide pass, spec §12.4). */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "cpu.h"

int kvr_cpu_mutant;

void kvr_cpu_set_mutant(int mutant)
{
    kvr_cpu_mutant = mutant;
}

#ifdef KVR_CPU_X86
#include <cpuid.h>

/* XCR0, the register states the operating system saves (XGETBV 0). */
static unsigned long long xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/* 2 when the processor and the OS give AVX-512F, 1 for AVX2 + FMA + F16C,
 * else 0.  Read from CPUID itself: compilers differ in the feature names
 * __builtin_cpu_supports knows (clang 14 has no "f16c"). */
static int cpuid_level(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
    if (!(fma && osxsave && avx && f16c))
        return 0;
    unsigned long long x = xcr0();
    if ((x & 0x6) != 0x6)                  /* XMM and YMM state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    int avx2 = (b >> 5) & 1, avx512f = (b >> 16) & 1;
    if (!avx2)
        return 0;
    return avx512f && (x & 0xe6) == 0xe6 ? 2 : 1;   /* + opmask, ZMM state */
}
#endif

/* The vector kernels the processor runs: 2 AVX-512, 1 AVX2 (with FMA and
 * F16C), 0 none; KVR_CPU_ISA=portable or avx2 caps it (tests). */
static int isa_level(void)
{
#ifdef KVR_CPU_X86
    static int cached = -1;
    if (cached < 0) {
        const char *e = getenv("KVR_CPU_ISA");
        int level = cpuid_level();
        if (e && !strcmp(e, "portable")) level = 0;
        if (e && !strcmp(e, "avx2") && level > 1) level = 1;
        cached = level;
    }
    return cached;
#else
    return 0;
#endif
}

static int use_avx2(void)
{
    return isa_level() >= 1;
}

const char *kvr_cpu_isa(void)
{
    static const char *const names[] = {"portable", "avx2", "avx512"};
    return names[isa_level()];
}

int kvr_cpu_supports(const kvr_config *cfg)
{
    if (cfg->store != KVR_STORE_ELEM || cfg->kivi_bits > 0 || cfg->tier_balance || cfg->tier_rotate)
        return 0;
    if (!ref_cfg_has_sketch(cfg))
        return 1;                                    /* vague tokens dropped: exact rows only */
    return cfg->vague == KVR_VAGUE_MOMENT && cfg->var_cap == 0.0 && cfg->revive == 0.0;
}

long kvr_cpu_rows_cap(const kvr_config *cfg)
{
    long q = ref_cfg_has_tier(cfg) ? cfg->tier_tokens : 0;
    return (long)cfg->sinks + cfg->window + cfg->candidates + q;
}

int kvr_cpu_ws_reserve(kvr_cpu_ws *ws, int group, int head_dim, long rows)
{
    if (rows < 1) rows = 1;
    if (ws->lg && rows <= ws->cap && group <= ws->G && head_dim == ws->D)
        return KVR_OK;
    float *lg = kvr_malloc((size_t)group * rows * sizeof(float));
    float *row = kvr_malloc(4 * (size_t)head_dim * sizeof(float));
    if (!lg || !row) {
        kvr_free(lg);
        kvr_free(row);
        return kvr_fail(KVR_ENOMEM, "cpu attention workspace: %d x %ld logits", group, rows);
    }
    kvr_cpu_ws_free(ws);
    ws->lg = lg;
    ws->row = row;
    ws->u = row + 2 * (size_t)head_dim;
    ws->cap = rows;
    ws->G = group;
    ws->D = head_dim;
    return KVR_OK;
}

void kvr_cpu_ws_free(kvr_cpu_ws *ws)
{
    kvr_free(ws->lg);
    kvr_free(ws->row);
    ws->lg = ws->row = ws->u = NULL;
    ws->cap = 0;
    ws->G = ws->D = 0;
}

/* The held exact and tier rows of h as runs, in part order: sinks, the
 * window (positions max(S, n - R) .. n - 1, slot p mod R: one run, or two
 * where the ring wraps), candidates, tier.  Returns the number of runs. */
static int segments(const ref_head *h, cpu_seg seg[6])
{
    const kvr_config *cfg = &h->cfg;
    size_t row = (size_t)h->head_dim * kvr_elem_size(cfg->elem);
    long S = cfg->sinks, R = cfg->window, n = h->n;
    int ns = 0;
    memset(seg, 0, 6 * sizeof *seg);
    long n_sink = n < S ? n : S;
    if (n_sink > 0)
        seg[ns++] = (cpu_seg){0, h->sink_k, h->sink_v, NULL, NULL, n_sink, 0, NULL};
    long first = n - R > S ? n - R : S, n_win = n > first ? n - first : 0;
    if (kvr_cpu_mutant == 3 && n_win > 1)
        n_win--;                                     /* mutant 3: the newest window token left out */
    if (n_win > 0) {
        long slot = first % R, a = n_win < R - slot ? n_win : R - slot;
        seg[ns++] = (cpu_seg){0, (const char *)h->win_k + (size_t)slot * row, (const char *)h->win_v + (size_t)slot * row,
                              NULL, NULL, a, first, NULL};
        if (n_win > a)
            seg[ns++] = (cpu_seg){0, h->win_k, h->win_v, NULL, NULL, n_win - a, first + a, NULL};
    }
    if (h->n_cand > 0)
        seg[ns++] = (cpu_seg){0, h->cand_k, h->cand_v, NULL, NULL, h->n_cand, 0, h->cand_pos};
    if (ref_has_tier(h) && h->n_tier > 0)
        seg[ns++] = (cpu_seg){1, h->tier_k, h->tier_v, h->tier_kq, h->tier_vq, h->n_tier, 0, h->tier_pos};
    return ns;
}

/* ---- portable kernels: a row at a time, converted into ws->row ---------- */

/* Row j of s as float32 ([D]): the key (which 0) or the value (1). */
static void row_get(const ref_head *h, const cpu_seg *s, long j, int which, float *x)
{
    size_t D = (size_t)h->head_dim;
    if (s->tier) {
        size_t B = ref_quant_row_bytes(D, h->cfg.tier_bits);
        const unsigned char *codes = (const unsigned char *)(which ? s->v : s->k) + (size_t)j * B;
        uint16_t zs[2];
        memcpy(zs, (which ? s->vq : s->kq) + 2 * (size_t)j, sizeof zs);
        if (kvr_cpu_mutant == 2 && h->cfg.tier_bits == 4) {   /* mutant 2: nibbles high first */
            float z = kvr_f16_to_f32(zs[0]), sc = kvr_f16_to_f32(zs[1]);
            for (size_t i = 0; i < D; i++)
                x[i] = z + (float)((codes[i / 2] >> (i % 2 ? 0 : 4)) & 15u) * sc;
            return;
        }
        ref_dequant_row(codes, zs, D, h->cfg.tier_bits, x);
        return;
    }
    kvr_elem_load_row(h->cfg.elem, which ? s->v : s->k, (size_t)j * D, D, x);
}

static void logits_portable(const ref_head *h, const cpu_seg *s, int G, const float *q, float scale,
                            float *lg, long ld, float *x)
{
    int D = h->head_dim;
    for (long j = 0; j < s->m; j++) {
        row_get(h, s, j, 0, x);
        for (int g = 0; g < G; g++) {
            const float *qg = q + (size_t)g * D;
            float d = 0.0f;
            for (int i = 0; i < D; i++)
                d += qg[i] * x[i];
            lg[g * ld + j] = d * scale;
        }
    }
}

static void accum_portable(const ref_head *h, const cpu_seg *s, int G, const float *p, long ld, float *out, float *x)
{
    int D = h->head_dim;
    for (long j = 0; j < s->m; j++) {
        row_get(h, s, j, 1, x);
        for (int g = 0; g < G; g++)
            ref_add_scaled(D, p[g * ld + j], x, out + (size_t)g * D);
    }
}

/* ---- AVX2 kernels for rows in the element type -------------------------- */
#ifdef KVR_CPU_X86
#define TILE 16   /* rows of a tile of the value sums */

/* logits of gn <= 4 query heads for m rows of elem starting at K. */
KVR_AVX2 static inline __attribute__((always_inline)) void
logits_e4(kvr_elem e, const char *K, long m, int D, int gn, const float *q, float scale, float *lg, long ld)
{
    size_t rb = (size_t)D * kvr_elem_size(e);
    long t = 0;
    for (; t + 2 <= m; t += 2) {
        __m256 a0[4], a1[4];
        #pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = a1[g] = _mm256_setzero_ps();
        const char *r0 = K + (size_t)t * rb, *r1 = r0 + rb;
        for (int i = 0; i < D; i += 8) {
            __m256 k0 = kvr_v8_load(e, r0, i), k1 = kvr_v8_load(e, r1, i);
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
    for (; t < m; t++) {
        __m256 a0[4];
        #pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = _mm256_setzero_ps();
        const char *r0 = K + (size_t)t * rb;
        for (int i = 0; i < D; i += 8) {
            __m256 k0 = kvr_v8_load(e, r0, i);
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
                a0[g] = _mm256_fmadd_ps(_mm256_loadu_ps(q + (size_t)g * D + i), k0, a0[g]);
        }
        #pragma GCC unroll 4
        for (int g = 0; g < gn; g++)
            lg[g * ld + t] = kvr_v8_hsum(a0[g]) * scale;
    }
}

/* out[g] += sum_t p[g][t] v_t for gn <= 4 query heads over m rows at V: a
 * tile of rows at a time, 32 coordinates (4 vectors) of the gn sums in
 * registers (16 accumulators), one broadcast of each weight per 32. */
KVR_AVX2 static inline __attribute__((always_inline)) void
accum_e4(kvr_elem e, const char *V, long m, int D, int gn, const float *p, long ld, float *out)
{
    size_t rb = (size_t)D * kvr_elem_size(e);
    for (long t0 = 0; t0 < m; t0 += TILE) {
        long tn = m - t0 < TILE ? m - t0 : TILE;
        int i = 0;
        for (; i + 32 <= D; i += 32) {
            __m256 acc[4][4] = {{_mm256_setzero_ps()}};   /* (rows g >= gn unused) */
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
                #pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    acc[g][c] = _mm256_loadu_ps(out + (size_t)g * D + i + 8 * c);
            for (long t = 0; t < tn; t++) {
                const char *r = V + (size_t)(t0 + t) * rb;
                __m256 x0 = kvr_v8_load(e, r, i), x1 = kvr_v8_load(e, r, i + 8);
                __m256 x2 = kvr_v8_load(e, r, i + 16), x3 = kvr_v8_load(e, r, i + 24);
                #pragma GCC unroll 4
                for (int g = 0; g < gn; g++) {
                    __m256 w = _mm256_broadcast_ss(p + g * ld + t0 + t);
                    acc[g][0] = _mm256_fmadd_ps(w, x0, acc[g][0]);
                    acc[g][1] = _mm256_fmadd_ps(w, x1, acc[g][1]);
                    acc[g][2] = _mm256_fmadd_ps(w, x2, acc[g][2]);
                    acc[g][3] = _mm256_fmadd_ps(w, x3, acc[g][3]);
                }
            }
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
                #pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    _mm256_storeu_ps(out + (size_t)g * D + i + 8 * c, acc[g][c]);
        }
        for (; i < D; i += 8) {
            __m256 acc[4] = {_mm256_setzero_ps()};
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) acc[g] = _mm256_loadu_ps(out + (size_t)g * D + i);
            for (long t = 0; t < tn; t++) {
                __m256 x = kvr_v8_load(e, V + (size_t)(t0 + t) * rb, i);
                #pragma GCC unroll 4
                for (int g = 0; g < gn; g++)
                    acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + g * ld + t0 + t), x, acc[g]);
            }
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) _mm256_storeu_ps(out + (size_t)g * D + i, acc[g]);
        }
    }
}

/* The element type and the group block as constants, so each kernel
 * compiles to straight-line vector code. */
#define BY_ELEM_GN(e, gn, CALL)                                              \
    do {                                                                     \
        if ((e) == KVR_F16) { if ((gn) == 4) CALL(KVR_F16, 4); else CALL(KVR_F16, gn); } \
        else if ((e) == KVR_BF16) { if ((gn) == 4) CALL(KVR_BF16, 4); else CALL(KVR_BF16, gn); } \
        else { if ((gn) == 4) CALL(KVR_F32, 4); else CALL(KVR_F32, gn); }   \
    } while (0)

KVR_AVX2 static void logits_avx2(kvr_elem e, const cpu_seg *s, int D, int G, const float *q, float scale,
                                 float *lg, long ld)
{
    for (int g0 = 0; g0 < G; g0 += 4) {
        int gn = G - g0 < 4 ? G - g0 : 4;
#define CALL_L(E, GN) logits_e4(E, s->k, s->m, D, GN, q + (size_t)g0 * D, scale, lg + g0 * ld, ld)
        BY_ELEM_GN(e, gn, CALL_L);
#undef CALL_L
    }
}

KVR_AVX2 static void accum_avx2(kvr_elem e, const cpu_seg *s, int D, int G, const float *p, long ld, float *out)
{
    for (int g0 = 0; g0 < G; g0 += 4) {
        int gn = G - g0 < 4 ? G - g0 : 4;
#define CALL_A(E, GN) accum_e4(E, s->v, s->m, D, GN, p + g0 * ld, ld, out + (size_t)g0 * D)
        BY_ELEM_GN(e, gn, CALL_A);
#undef CALL_A
    }
}
#endif

/* ---- AVX-512 kernels for rows in the element type (D a multiple of 16) ---- */
#ifdef KVR_CPU_X86
KVR_AVX512 static inline __attribute__((always_inline)) void
logits_e16(kvr_elem e, const char *K, long m, int D, int gn, const float *q, float scale, float *lg, long ld)
{
    size_t rb = (size_t)D * kvr_elem_size(e);
    long t = 0;
    for (; t + 2 <= m; t += 2) {
        __m512 a0[4], a1[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = a1[g] = _mm512_setzero_ps();
        const char *r0 = K + (size_t)t * rb, *r1 = r0 + rb;
        for (int i = 0; i < D; i += 16) {
            __m512 k0 = kvr_v16_load(e, r0, i), k1 = kvr_v16_load(e, r1, i);
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                __m512 qq = _mm512_loadu_ps(q + (size_t)g * D + i);
                a0[g] = _mm512_fmadd_ps(qq, k0, a0[g]);
                a1[g] = _mm512_fmadd_ps(qq, k1, a1[g]);
            }
        }
#pragma GCC unroll 4
        for (int g = 0; g < gn; g++) {
            lg[g * ld + t] = kvr_v16_hsum(a0[g]) * scale;
            lg[g * ld + t + 1] = kvr_v16_hsum(a1[g]) * scale;
        }
    }
    for (; t < m; t++) {
        __m512 a0[4];
#pragma GCC unroll 4
        for (int g = 0; g < 4; g++) a0[g] = _mm512_setzero_ps();
        const char *r0 = K + (size_t)t * rb;
        for (int i = 0; i < D; i += 16) {
            __m512 k0 = kvr_v16_load(e, r0, i);
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
                a0[g] = _mm512_fmadd_ps(_mm512_loadu_ps(q + (size_t)g * D + i), k0, a0[g]);
        }
#pragma GCC unroll 4
        for (int g = 0; g < gn; g++)
            lg[g * ld + t] = kvr_v16_hsum(a0[g]) * scale;
    }
}

KVR_AVX512 static inline __attribute__((always_inline)) void
accum_e16(kvr_elem e, const char *V, long m, int D, int gn, const float *p, long ld, float *out)
{
    size_t rb = (size_t)D * kvr_elem_size(e);
    for (long t0 = 0; t0 < m; t0 += TILE) {
        long tn = m - t0 < TILE ? m - t0 : TILE;
        int i = 0;
        for (; i + 64 <= D; i += 64) {
            __m512 acc[4][4];
#pragma GCC unroll 4
            for (int g = 0; g < 4; g++)
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    acc[g][c] = g < gn ? _mm512_loadu_ps(out + (size_t)g * D + i + 16 * c) : _mm512_setzero_ps();
            for (long t = 0; t < tn; t++) {
                const char *r = V + (size_t)(t0 + t) * rb;
                __m512 x0 = kvr_v16_load(e, r, i), x1 = kvr_v16_load(e, r, i + 16);
                __m512 x2 = kvr_v16_load(e, r, i + 32), x3 = kvr_v16_load(e, r, i + 48);
#pragma GCC unroll 4
                for (int g = 0; g < gn; g++) {
                    __m512 w = _mm512_set1_ps(p[g * ld + t0 + t]);
                    acc[g][0] = _mm512_fmadd_ps(w, x0, acc[g][0]);
                    acc[g][1] = _mm512_fmadd_ps(w, x1, acc[g][1]);
                    acc[g][2] = _mm512_fmadd_ps(w, x2, acc[g][2]);
                    acc[g][3] = _mm512_fmadd_ps(w, x3, acc[g][3]);
                }
            }
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++)
#pragma GCC unroll 4
                for (int c = 0; c < 4; c++)
                    _mm512_storeu_ps(out + (size_t)g * D + i + 16 * c, acc[g][c]);
        }
        for (; i < D; i += 16) {
            __m512 acc[4] = {_mm512_setzero_ps()};
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) acc[g] = _mm512_loadu_ps(out + (size_t)g * D + i);
            for (long t = 0; t < tn; t++) {
                __m512 x = kvr_v16_load(e, V + (size_t)(t0 + t) * rb, i);
#pragma GCC unroll 4
                for (int g = 0; g < gn; g++)
                    acc[g] = _mm512_fmadd_ps(_mm512_set1_ps(p[g * ld + t0 + t]), x, acc[g]);
            }
#pragma GCC unroll 4
            for (int g = 0; g < gn; g++) _mm512_storeu_ps(out + (size_t)g * D + i, acc[g]);
        }
    }
}

KVR_AVX512 static void logits_avx512(kvr_elem e, const cpu_seg *s, int D, int G, const float *q, float scale,
                                     float *lg, long ld)
{
    for (int g0 = 0; g0 < G; g0 += 4) {
        int gn = G - g0 < 4 ? G - g0 : 4;
#define CALL_L(E, GN) logits_e16(E, s->k, s->m, D, GN, q + (size_t)g0 * D, scale, lg + g0 * ld, ld)
        BY_ELEM_GN(e, gn, CALL_L);
#undef CALL_L
    }
}

KVR_AVX512 static void accum_avx512(kvr_elem e, const cpu_seg *s, int D, int G, const float *p, long ld, float *out)
{
    for (int g0 = 0; g0 < G; g0 += 4) {
        int gn = G - g0 < 4 ? G - g0 : 4;
#define CALL_A(E, GN) accum_e16(E, s->v, s->m, D, GN, p + g0 * ld, ld, out + (size_t)g0 * D)
        BY_ELEM_GN(e, gn, CALL_A);
#undef CALL_A
    }
}
#endif

/* ---- the weights: expf of many logits ------------------------------------- */
#ifdef KVR_CPU_X86
/* exp(d) of 4 float32 arguments d <= 0 (or NaN), evaluated in float64 and
 * rounded once to float32.  With r = d - n ln2 (|r| <= ln2 / 2, ln2 in two
 * parts, so r is within 2^-60 relative), the degree-12 Taylor polynomial of
 * exp(r) has truncation error below |r|^13 / 13! < 2^-59, and its float64
 * evaluation adds about 13 u64: the float64 value is within 2^-50 of
 * exp(d) relatively, and its one rounding to float32 puts the result within
 * 0.5 ulp + 2^-50 of exp(d), inside the 2 ulp (relative 4u) that the
 * tolerance model of spec §14.4 allows expf.  d < -104 is taken as -104:
 * both round to 0 in float32 (exp(-104) < 2^-150), as expf gives; a NaN
 * stays NaN (so the caller's finiteness check sees it). */
KVR_AVX2 static inline __m128 exp4(__m128 d)
{
    __m256d x = _mm256_max_pd(_mm256_set1_pd(-104.0), _mm256_cvtps_pd(d));   /* NaN: x */
    __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93147180369123816490e-01), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.90821492927058770002e-10), r);
    __m256d p = _mm256_set1_pd(1.0 / 479001600.0);                       /* 1/12! */
    static const double c[12] = {1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                                 1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0};
    for (int i = 0; i < 12; i++)
        p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(c[i]));
    /* 2^n: n in [-151, 0], so 1023 + n is a normal exponent */
    __m128i ni = _mm256_cvtpd_epi32(n);
    __m256i e = _mm256_slli_epi64(_mm256_add_epi64(_mm256_cvtepi32_epi64(ni), _mm256_set1_epi64x(1023)), 52);
    return _mm256_cvtpd_ps(_mm256_mul_pd(p, _mm256_castsi256_pd(e)));
}

/* l[e] = expf(l[e] - max) for e < E (the subtraction in float32, as the
 * reference's); returns their sum (8 partial sums, then the lanes: another
 * order of the same additions, which gamma_{n-1} of the model covers). */
KVR_AVX2 static float weights_avx2(float *l, long E, float max)
{
    __m256 mx = _mm256_set1_ps(max), acc = _mm256_setzero_ps();
    long e = 0;
    for (; e + 8 <= E; e += 8) {
        __m256 dd = _mm256_sub_ps(_mm256_loadu_ps(l + e), mx);
        __m256 w = _mm256_set_m128(exp4(_mm256_extractf128_ps(dd, 1)), exp4(_mm256_castps256_ps128(dd)));
        _mm256_storeu_ps(l + e, w);
        acc = _mm256_add_ps(acc, w);
    }
    float sm = kvr_v8_hsum(acc);
    for (; e < E; e++) {
        l[e] = expf(l[e] - max);
        sm += l[e];
    }
    return sm;
}

/* The largest of max and l[0 .. E-1] (the same value in any order). */
KVR_AVX2 static float max_avx2(const float *l, long E, float max)
{
    __m256 m = _mm256_set1_ps(max);
    long e = 0;
    for (; e + 8 <= E; e += 8)
        m = _mm256_max_ps(_mm256_loadu_ps(l + e), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    float r = _mm_cvtss_f32(h);
    for (; e < E; e++)
        if (l[e] > r) r = l[e];
    return r;
}
#endif

#ifdef KVR_CPU_X86
KVR_AVX2 static float expf_avx2(float d)
{
    return _mm_cvtss_f32(exp4(_mm_set1_ps(d)));
}
#endif

float kvr_cpu_expf(float d)
{
#ifdef KVR_CPU_X86
    if (use_avx2())
        return expf_avx2(d);
#endif
    return expf(d);
}

/* ---- one head ------------------------------------------------------------ */

int kvr_cpu_attend_head(const ref_head *h, int G, const float *q, float *out, float *prob, kvr_cpu_ws *ws)
{
    int D = h->head_dim;
    float scale = 1.0f / sqrtf((float)D);
    cpu_seg seg[6];
    int ns = segments(h, seg);
    long E = 0;
    for (int s = 0; s < ns; s++) E += seg[s].m;
    long ld = ws->cap;                               /* E <= S + R + C + Q <= cap */
    float *lg = ws->lg, *x = ws->row, *u = ws->u, *mk = ws->u + D;
    int vec = use_avx2() && D % 8 == 0, v512 = isa_level() >= 2 && D % 32 == 0 && D <= KVR_TIER_QP;
    int bulk = ref_has_sketch(h) && h->n_vague > 0;
    float bulk_logit[KVR_CPU_GROUP_BLOCK];

    /* pass 1: logits of every held row, and the bulk term's */
    for (int s = 0, at = 0; s < ns; at += (int)seg[s].m, s++) {
        const cpu_seg *sg = &seg[s];
#ifdef KVR_CPU_X86
        if (v512 && !sg->tier) { logits_avx512(h->cfg.elem, sg, D, G, q, scale, lg + at, ld); continue; }
        if (v512 && sg->tier && h->cfg.tier_bits == 4) { cpu_tier4_logits_avx512(sg, D, G, q, scale, lg + at, ld); continue; }
        if (vec && !sg->tier) { logits_avx2(h->cfg.elem, sg, D, G, q, scale, lg + at, ld); continue; }
        if (vec && sg->tier && h->cfg.tier_bits == 4) { cpu_tier4_logits_avx2(sg, D, G, q, scale, lg + at, ld); continue; }
#endif
        logits_portable(h, sg, G, q, scale, lg + at, ld, x);
    }
    for (int i = 0; i < G * D; i++)
        out[i] = 0.0f;
    int finite = 1;
    for (int g0 = 0; g0 < G; g0 += KVR_CPU_GROUP_BLOCK) {
        int gn = G - g0 < KVR_CPU_GROUP_BLOCK ? G - g0 : KVR_CPU_GROUP_BLOCK;
        float sum[KVR_CPU_GROUP_BLOCK];
        if (bulk)
            cpu_bulk_term(h, gn, q + (size_t)g0 * D, bulk_logit, u, mk);
        /* pass 2: weights and their sums */
        #pragma GCC unroll 4
        for (int g = 0; g < gn; g++) {
            float *l = lg + (size_t)(g0 + g) * ld;
            float max = bulk ? bulk_logit[g] : -INFINITY, sm = 0.0f;
#ifdef KVR_CPU_X86
            if (vec) {
                max = max_avx2(l, E, max);
                sm = weights_avx2(l, E, max);
            } else
#endif
            {
                for (long e = 0; e < E; e++)
                    if (l[e] > max) max = l[e];
                for (long e = 0; e < E; e++) {
                    l[e] = expf(l[e] - max);
                    sm += l[e];
                }
            }
            if (bulk) {
                float pb = expf(bulk_logit[g] - max);
                sm += pb;
                bulk_logit[g] = pb;                  /* now the bulk's weight */
            }
            sum[g] = sm;
        }
        /* the value sums */
        float *og = out + (size_t)g0 * D;
        const float *pg = lg + (size_t)g0 * ld;
        for (int s = 0, at = 0; s < ns; at += (int)seg[s].m, s++) {
            const cpu_seg *sg = &seg[s];
#ifdef KVR_CPU_X86
            if (v512 && !sg->tier) { accum_avx512(h->cfg.elem, sg, D, gn, pg + at, ld, og); continue; }
            if (v512 && sg->tier && h->cfg.tier_bits == 4) { cpu_tier4_accum_avx512(sg, D, gn, pg + at, ld, og); continue; }
            if (vec && !sg->tier) { accum_avx2(h->cfg.elem, sg, D, gn, pg + at, ld, og); continue; }
            if (vec && sg->tier && h->cfg.tier_bits == 4) { cpu_tier4_accum_avx2(sg, D, gn, pg + at, ld, og); continue; }
#endif
            accum_portable(h, sg, gn, pg + at, ld, og, x);
        }
        #pragma GCC unroll 4
        for (int g = 0; g < gn; g++) {
            float *o = og + (size_t)g * D;
            if (bulk)
                for (int i = 0; i < D; i++)
                    o[i] += bulk_logit[g] * u[i];
            for (int i = 0; i < D; i++) {
                o[i] /= sum[g];
                if (!isfinite(o[i])) finite = 0;
            }
        }
        if (!finite)
            return 0;
        if (prob)                                    /* spec §6.1: summed over the group, g in order */
            #pragma GCC unroll 4
            for (int g = 0; g < gn; g++) {
                const float *l = pg + (size_t)g * ld;
                for (int s = 0, at = 0; s < ns; at += (int)seg[s].m, s++)
                    for (long j = 0; j < seg[s].m; j++) {
                        long pos = seg[s].pos ? seg[s].pos[j] : seg[s].pos0 + j;
                        prob[pos] += l[at + j] / sum[g];
                    }
            }
    }
    return 1;
}

/* ---- many heads over the pool ------------------------------------------- */
typedef struct {
    const ref_head *const *heads;
    int G;
    const float *q;
    float *out;
    float *const *prob;
    kvr_cpu_ws *ws;
    int *finite;
} attend_job;

static void attend_item(void *arg, int item, int thread)
{
    attend_job *j = arg;
    const ref_head *h = j->heads[item];
    size_t at = (size_t)item * j->G * h->head_dim;
    j->finite[item] = kvr_cpu_attend_head(h, j->G, j->q + at, j->out + at, j->prob ? j->prob[item] : NULL,
                                          &j->ws[thread]);
}

void kvr_cpu_attend(kvr_cpu_pool *pool, const ref_head *const *heads, int n_heads, int group,
                    const float *q, float *out, float *const *prob, kvr_cpu_ws *ws, int *finite)
{
    attend_job j = {heads, group, q, out, prob, ws, finite};
    kvr_cpu_pool_run(pool, n_heads, attend_item, &j);
}
