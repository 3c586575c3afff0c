/* kvr_cpu.h: the optimized CPU decode attention (doc/cpu.md section of
 * doc/cuda.md, doc/cpu-results.md).
 *
 * The CPU path mirrors ref/ concept by concept, as cuda/ does, so that each
 * function can be read next to the reference function it reproduces:
 *   cpu/attend.c   ref/attend.c, ref/moment.c (§17.4)  decode attention over
 *                  the exact rows, the tier rows and the bulk term (spec §11, §17, §19.4)
 *   cpu/moment.c   ref/moment.c (§17.1, §17.3)  the bulk term of the moment route
 *   cpu/tier.c     ref/tier.c, ref/quant.c (§18.3)  the tier's rows, dequantized in registers
 *   cpu/simd.h     lib/elem.c (§4.3)  vector loads of f32, f16, bf16 rows
 *   cpu/pool.c     -              the thread pool (threads over heads and sequences)
 *
 * The data are the reference's head caches (ref/ref.h) themselves: the
 * exact parts in their element type, the tier's packed codes and float16
 * zero points and scales, read in place (no float32 copy of the cache).
 * Conformance: the outputs are within the tolerance model of spec §14.4 and
 * §14.8 (kvr_tol_attend) of the reference's; tests/cpu.c checks it. */
#ifndef KVR_CPU_H
#define KVR_CPU_H

#include "../ref/ref.h"

/* ---- pool.c: the thread pool ------------------------------------------- */
typedef struct kvr_cpu_pool kvr_cpu_pool;
/* A pool of n_threads threads (the caller's thread counts as one); 0 takes
 * KVR_CPU_THREADS from the environment, else the number of online CPUs.
 * KVR_OK or KVR_ENOMEM (nothing allocated, *out NULL). */
int kvr_cpu_pool_create(kvr_cpu_pool **out, int n_threads);
void kvr_cpu_pool_free(kvr_cpu_pool *p);
int kvr_cpu_pool_threads(const kvr_cpu_pool *p);
/* Run fn(arg, item, thread) for every item in [0, n_items), spread over the
 * pool's threads (thread in [0, threads)); returns when all are done.
 * Cannot fail.  Not reentrant: one run at a time per pool. */
void kvr_cpu_pool_run(kvr_cpu_pool *p, int n_items, void (*fn)(void *arg, int item, int thread), void *arg);

/* ---- attend.c: decode attention ---------------------------------------- */
/* The kernels chosen at run time: "avx512" (AVX512F; head_dim a multiple
 * of 32 up to 512, else the AVX2 ones), "avx2" (AVX2, FMA and F16C; head_dim
 * a multiple of 8, else the portable ones) or "portable".  KVR_CPU_ISA=avx2
 * or KVR_CPU_ISA=portable in the environment caps the choice. */
const char *kvr_cpu_isa(void);
/* 1 when the CPU kernels take this configuration: exact parts in their
 * element type (store = elem, no KIVI), any tier, and either no sketch
 * (eviction, full) or the moment route's mean-field bulk (var_cap 0,
 * revive 0: the default kvreviver).  Other configurations run the
 * reference's code on a cpu cache. */
int kvr_cpu_supports(const kvr_config *cfg);

/* Per-thread workspace: logits of the exact and tier rows of one head. */
typedef struct {
    float *lg;          /* [G][cap] */
    float *row;         /* [2][D]: one row converted (portable kernels) */
    float *u;           /* [2][D]: the bulk term's value and the vague means */
    long cap;
    int G, D;
} kvr_cpu_ws;
/* KVR_OK or KVR_ENOMEM (ws keeps its arrays). */
int kvr_cpu_ws_reserve(kvr_cpu_ws *ws, int group, int head_dim, long rows);
void kvr_cpu_ws_free(kvr_cpu_ws *ws);
/* Rows a head of this configuration can hold: S + R + C + Q (what
 * kvr_cpu_ws_reserve needs). */
long kvr_cpu_rows_cap(const kvr_config *cfg);

/* Decode attention of the group's G query heads over one head cache h
 * (kvr_cpu_supports(&h->cfg), h->n > 0), the work of ref_attend_moment:
 *   q, out: [G][D];  prob: NULL, or [h->n] zeroed: receives, at each held
 *   position, the probability summed over the group (spec §6.1).
 * Returns 1 when out is finite, 0 when not (the caller then runs the
 * reference, whose wide pass, spec §12.4, covers it; out and prob are then
 * unspecified). */
int kvr_cpu_attend_head(const ref_head *h, int group, const float *q, float *out, float *prob,
                        kvr_cpu_ws *ws);

/* Decode attention for n_heads head caches (any mix of sequences and KV
 * heads of one configuration and group) over the pool's threads, a head per
 * item; ws: [kvr_cpu_pool_threads(pool)] reserved for the largest head.
 *   q, out: [n_heads][G][D];  prob: NULL or [n_heads] arrays as above;
 *   finite: [n_heads], kvr_cpu_attend_head's result per head. */
void kvr_cpu_attend(kvr_cpu_pool *pool, const ref_head *const *heads, int n_heads, int group,
                    const float *q, float *out, float *const *prob, kvr_cpu_ws *ws, int *finite);

/* The weights' exponential as the kernels compute it, exp(d) for d <= 0
 * rounded to float32 (for tests/cpu.c, which checks it is within 0.5 ulp
 * plus 2^-50 relative of exp(d), inside the 2 ulp the tolerance model
 * allows expf). */
float kvr_cpu_expf(float d);

/* For tests only: a deliberately wrong variant of the kernels, which the
 * conformance suite must catch (0: none; 1: the bulk term without its
 * ln(n_b); 2: the tier's nibbles read high first; 3: the newest window
 * token left out). */
void kvr_cpu_set_mutant(int mutant);

#endif
