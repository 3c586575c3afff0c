/* workload.h: attention workloads for eval and demo (doc/eval.md). */
#ifndef KVR_WORKLOAD_H
#define KVR_WORKLOAD_H

#include <stdint.h>

/* One layer's queries, keys and values for every position 0 .. n-1.  Eval
 * prefills positions 0 .. n_prefill-1 and decodes the rest one at a time. */
typedef struct {
    char name[64];
    int n;              /* positions */
    int n_prefill;      /* positions given at prefill; the rest are decode steps */
    int n_kv_heads, n_q_heads, head_dim;
    float *q;           /* [n][n_q_heads][head_dim] */
    float *k, *v;       /* [n][n_kv_heads][head_dim] */
    /* needle workloads: which decode steps look for which position */
    int n_needles;
    int *needle_pos;    /* [n_needles] */
    int *needle_step;   /* [n_needles] decode step (position) whose queries seek it */
} kvr_workload;

typedef struct {
    int n_kv_heads, n_q_heads, head_dim;
    int decode_steps;
} kvr_workload_shape;

/* Synthetic heads (doc/eval.md): keys with per-channel offsets and a slowly
 * drifting low-rank part, a few heavy hitters, queries that favour them and
 * the recent window. */
int kvr_workload_synthetic(kvr_workload *w, const kvr_workload_shape *shape, int context, uint64_t seed);
/* Needles: positions that get little attention while the context is read,
 * then late queries that look for exactly them. */
int kvr_workload_needle(kvr_workload *w, const kvr_workload_shape *shape, int context, uint64_t seed);
void kvr_workload_free(kvr_workload *w);

#endif
