/* cpu.h: what the CPU kernels' files share (not installed; the interface
 * is kvr_cpu.h). */
#ifndef KVR_CPU_INTERNAL_H
#define KVR_CPU_INTERNAL_H

#include "kvr_cpu.h"
#include "simd.h"

/* One run of rows that attention reads in place: exact rows in the element
 * type (a part's array, or a contiguous stretch of the window's ring), or
 * tier rows (packed codes with float16 {zero point, scale} per row). */
typedef struct {
    int tier;                    /* 0: rows of elem; 1: tier codes of tier_bits */
    const void *k, *v;           /* [m][D] elem, or [m][B] codes */
    const uint16_t *kq, *vq;     /* tier: [m][2] {zero point, scale} */
    long m;                      /* rows */
    long pos0;                   /* row j is position pos ? pos[j] : pos0 + j */
    const int32_t *pos;
} cpu_seg;

/* query heads whose softmax state one block of attend.c keeps on the stack */
#define KVR_CPU_GROUP_BLOCK 64

extern int kvr_cpu_mutant;       /* attend.c; kvr_cpu_set_mutant */

/* tier.c (spec §19.4, §18.3): logits and value sums of 4-bit tier rows with
 * the AVX2 kernels (D a multiple of 8), each coordinate dequantized in a
 * register as ref_dequant_row does it (z + code * s, float32).
 *   q: [G][D]; lg: logit of query head g, row j at lg[g * ld + j];
 *   p: the weights in the same layout; out: [G][D] (added to). */
#ifdef KVR_CPU_X86
void cpu_tier4_logits_avx2(const cpu_seg *s, int D, int G, const float *q, float scale, float *lg, long ld);
void cpu_tier4_accum_avx2(const cpu_seg *s, int D, int G, const float *p, long ld, float *out);
/* The same with AVX-512, for D a multiple of 32 up to KVR_TIER_QP (the
 * exact-row kernels of attend.c take the same D then). */
#define KVR_TIER_QP 512
void cpu_tier4_logits_avx512(const cpu_seg *s, int D, int G, const float *q, float scale, float *lg, long ld);
void cpu_tier4_accum_avx512(const cpu_seg *s, int D, int G, const float *p, long ld, float *out);
#endif

/* moment.c (spec §17.1, §17.3): the bulk term of the mean-field moment
 * route (var_cap 0, revive 0) of head h (n_vague > 0): its logit for each
 * query head into logit ([G]) and its value into u ([D]); mk ([D])
 * workspace.  The reference's float operations in its order. */
void cpu_bulk_term(const ref_head *h, int G, const float *q, float *logit, float *u, float *mk);

#endif
