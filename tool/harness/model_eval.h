/* model_eval.h: the harness's tasks on a real model (doc/model.md §4):
 * teacher-forced agreement with the full cache, and passkey retrieval. */
#ifndef KVR_MODEL_EVAL_H
#define KVR_MODEL_EVAL_H

#include <stdint.h>
#include "runtime/model.h"
#include "runtime/bpe.h"

/* ---- evaluation (model_run.c, doc/model.md §4) ------------------------- */

/* A teacher-forced task: tokens[0..n] sampled by the full-cache model from
 * BOS (temperature 1, seeded), and the full-cache run's next-token
 * log-probabilities at the decode steps t = n_prefill .. n-1 (after
 * prefilling tokens 0 .. n_prefill-1 and appending tokens up to t). */
typedef struct {
    const lm_model *m;
    int n;              /* context: positions held at the end */
    int n_prefill;      /* n - decode steps (default n - n/2) */
    int *tokens;        /* [n + 1] */
    double *ref_logp;   /* [n - n_prefill][vocab_size] full-cache log-probabilities */
    int *ref_top;       /* [n - n_prefill] full-cache argmax */
    lm_prompt prompt;  /* tokens[0 .. n_prefill-1], shared by every method */
    double gen_seconds, ref_seconds;
} ev_model_task;

typedef struct {
    double bytes_ratio;  /* kvr_bytes held / full over all layers, at the end */
    double exact_ratio;  /* exactly held positions / (layers * kv heads * n) */
    double top1_agree;   /* share of decode steps whose argmax equals full's */
    double kl;           /* mean over decode steps of KL(full || method), nats */
    double ppl;          /* exp(-mean log p_method(next token)) */
    size_t bytes_held;
    double seconds;
} ev_model_result;

/* Progress callback: called after each generated or evaluated position. */
typedef void ev_model_progress(const char *what, int done, int total);

/* decode: decode steps (<= 0: context - context/2); n_prefill = context - decode */
int ev_model_task_init(ev_model_task *t, const lm_model *m, int context, int decode,
                        uint64_t seed, ev_model_progress *progress);
void ev_model_task_free(ev_model_task *t);
/* Run one method at one budget over the task (cache planned by
 * kvr_method_config(method, budget, n, head_dim, KVR_F32)). */
int ev_model_eval_method(const ev_model_task *t, const char *method, double budget,
                          ev_model_result *res, ev_model_progress *progress);

/* ---- passkey (passkey.c, doc/model.md §4.3) ----------------------------- */
enum { EV_PASSKEY_ANSWER = 12 };  /* answer tokens decoded (numbers are one token per digit) */

/* The prompt of trial `trial` (about context - EV_PASSKEY_ANSWER tokens)
 * and its key (5 digits + NUL).   ids: [cap] */
int ev_passkey_prompt(const lm_bpe *b, int context, uint64_t seed, int trial,
                       int *ids, int cap, int *n_out, char key[6]);
/* Prefill a cache with configuration cfg from the prompt, decode the answer
 * greedily, and say whether it holds the key.   answer: [cap] */
int ev_passkey_answer(const lm_model *m, const lm_bpe *b, const lm_prompt *pr,
                       const kvr_config *cfg, const char *key, int *correct,
                       char *answer, size_t cap);

/* ---- the run of every method (model_eval.c) ----------------------------- */

/* Run methods[0..n_methods-1] at budgets[0..n_budgets-1] on model m (loaded
 * from path): the teacher-forced comparison when forced, then `passkey`
 * trials when positive; print the tables on stdout and, when csv_path is
 * not NULL, the CSV there.  Returns 0 when every run succeeded and stayed
 * within its budget, 1 otherwise (each failure reported on stderr). */
int ev_model_run(const lm_model *m, const char *path, long context, long decode, uint64_t seed,
                 const double *budgets, int n_budgets, char **methods, int n_methods,
                 int passkey, int forced, const char *csv_path);

#endif
