/* eval.h: one method on one workload at one budget (doc/eval.md). */
#ifndef KVR_EVAL_H
#define KVR_EVAL_H

#include "kvreviver.h"
#include "workload.h"

/* The backend of the caches ev_run makes: KVR_BACKEND_REF (the default) or
 * KVR_BACKEND_CPU (kvreviver eval --backend cpu). */
extern kvr_backend ev_backend;

typedef struct {
    double bytes_ratio;   /* bytes held / bytes of the full cache, at the end */
    double exact_ratio;   /* exact tokens / context, at the end, over the KV heads */
    double attn_rel_err;  /* mean over decode steps and query heads of ||o - o_full|| / ||o_full|| */
    double mass_exact;    /* mean share of the full attention mass on exactly held positions */
    double needle_acc;    /* share of needle queries retrieved; NAN when the workload has none */
    size_t bytes_held;
    long samples;         /* (decode step, query head) pairs measured */
    long needles;         /* needle queries among them */
    long found;           /* needle queries that retrieved their needle */
} ev_result;

/* Run method `method` at `budget` on w (doc/eval.md §3): plan the method for
 * (budget, w->n, head_dim, elem), with the sketch's hash seed the default
 * XOR run_seed * 0x9E3779B97F4A7C15 (run_seed 0: the default), prefill the first w->n_prefill positions
 * with the queries of the last min(W, n_prefill) of them, then append and
 * attend one position at a time, measuring every decode step.  Returns the
 * library's status (kvr_last_error() says why) or KVR_ENOMEM. */
int ev_run(const ev_workload *w, const char *method, double budget,
                 kvr_elem elem, uint64_t run_seed, ev_result *res);
/* The same with a configuration given in full (tests). */
int ev_run_config(const ev_workload *w, const kvr_config *cfg, ev_result *res);

/* Full causal attention in float64 of query q ([D]) over positions
 * 0 .. n-1 of KV head h of w, on the keys and values rounded to elem:
 * writes the output out ([D]) and the probabilities prob ([n]). */
void ev_full_attention(const ev_workload *w, int h, int n, const float *q,
                             kvr_elem elem, double *out, double *prob);
/* doc/eval.md §4.5: 1 when the value of position `needle` of KV head h is
 * strictly the nearest (Euclidean) to o ([D]) among the values of positions
 * 0 .. n-1 (rounded to elem); ties are misses. */
int ev_retrieves(const ev_workload *w, int h, int n, const float *o, int needle, kvr_elem elem);

#endif
