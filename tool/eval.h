/* eval.h: one method on one workload at one budget (doc/eval.md). */
#ifndef KVR_EVAL_H
#define KVR_EVAL_H

#include "kvreviver.h"
#include "workload.h"

typedef struct {
    double bytes_ratio;   /* bytes held / bytes of the full cache, at the end */
    double exact_ratio;   /* exact tokens / context, at the end */
    double attn_rel_err;  /* mean over decode steps and query heads of ||o - o_full|| / ||o_full|| */
    double mass_exact;    /* mean share of the full attention mass on exactly held positions */
    double needle_acc;    /* share of needle queries retrieved; NAN when the workload has none */
    size_t bytes_held;
} kvr_eval_result;

/* Run method `method` at `budget` on w: prefill the first w->n_prefill
 * positions, then append and attend one position at a time. */
int kvr_eval_run(const kvr_workload *w, const char *method, double budget,
                 kvr_elem elem, kvr_eval_result *res);

#endif
