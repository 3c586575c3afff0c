/* model_eval.h: the harness's tasks on a real model (doc/model.md §4):
 * teacher-forced agreement with the full cache, on sampled text or on the
 * windows of a real document, and passkey retrieval. */
#ifndef KVR_MODEL_EVAL_H
#define KVR_MODEL_EVAL_H

#include <stdint.h>
#include <stdio.h>
#include "runtime/model.h"
#include "runtime/bpe.h"

/* ---- evaluation (model_run.c, doc/model.md §4) ------------------------- */

/* A teacher-forced task: tokens[0..n] (sampled from BOS, or a window of a
 * document), and its prompt tokens[0 .. n_prefill-1] run once and shared
 * by every method.  The decode steps t = n_prefill .. n-1 append tokens[t]
 * and predict tokens[t+1]. */
typedef struct {
    const lm_model *m;
    int n;              /* context: positions held at the end */
    int n_prefill;      /* n - decode steps (default n - n/2) */
    int *tokens;        /* [n + 1] */
    lm_prompt prompt;   /* tokens[0 .. n_prefill-1], shared by every method */
    double gen_seconds, prompt_seconds;
} ev_model_task;

typedef struct {
    double bytes_ratio;  /* kvr_bytes held / full over all layers, at the end */
    double exact_ratio;  /* exactly held positions / (layers * kv heads * n) */
    double top1_agree;   /* share of decode steps whose argmax equals full's */
    double kl;           /* mean over decode steps of KL(full || method), nats */
    double nll;          /* -mean log p_method(next token), nats */
    double ppl;          /* exp(nll) */
    size_t bytes_held;   /* the cache's: the global layers of a model with local ones (Gemma) */
    size_t bytes_whole;  /* bytes_held plus the local layers' windows (= bytes_held without) */
    double whole_ratio;  /* bytes_whole over the model's whole full cache: the full global layers
                          * and the local windows */
    double seconds;      /* wall time of the lock step that ran it */
} ev_model_result;

/* One method at one budget; the sketch's hash seed is the method's default
 * XOR run_seed * 0x9E3779B97F4A7C15 (as ev_run does). */
typedef struct {
    const char *method;
    double budget;
    uint64_t run_seed;
} ev_model_cell;

/* Progress callback: called after each generated or evaluated position. */
typedef void ev_model_progress(const char *what, int done, int total);

enum { EV_MODEL_MAX_THREADS = 16 };

/* decode: decode steps (<= 0: context - context/2).  ev_model_task_tokens
 * copies tokens[0..context] (context + 1 ids) and runs the prompt;
 * ev_model_task_init first samples them with the full cache (in elem) from
 * BOS with the sampler seeded by seed.  On failure *t holds nothing. */
int ev_model_task_tokens(ev_model_task *t, const lm_model *m, const int *tokens, int context, int decode);
int ev_model_task_init(ev_model_task *t, const lm_model *m, int context, int decode, uint64_t seed,
                       kvr_elem elem, ev_model_progress *progress);
void ev_model_task_free(ev_model_task *t);

/* Run cells[0..n_cells-1] over the task in lock step beside the reference
 * (the full cache in elem), on `threads` threads: every cache is planned
 * with kvr_method_config(method, budget, n, head_dim, elem), prefilled from
 * the prompt and decoded; res[i] gets cell i's metrics when cell_status[i]
 * is KVR_OK (a cell that cannot be planned or fails has its status there,
 * the message in lm_model_error(), and the others go on).  A `full` cell is
 * the reference itself.  Returns KVR_OK, or the reference's failure. */
int ev_model_eval_cells(const ev_model_task *t, kvr_elem elem, int n_cells, const ev_model_cell *cells,
                        ev_model_result *res, int *cell_status, int threads, ev_model_progress *progress);
/* One method alone (tests): ev_model_eval_cells with one cell, one thread;
 * the cell's status. */
int ev_model_eval_method(const ev_model_task *t, const char *method, double budget, kvr_elem elem,
                         uint64_t run_seed, ev_model_result *res, ev_model_progress *progress);
/* lm_model_step_many over n caches split into `threads` shares, each on a
 * thread of its own (the caller's thread takes the first).  With cost
 * ([n], the seconds each cache spent attending in the previous step; all 0
 * at first) the shares are balanced by it, longest first to the least
 * loaded thread, and cost gets this step's seconds; without it (NULL) the
 * shares are contiguous.  A cache's results do not depend on the split.
 * Returns as lm_model_step_many. */
int ev_model_step_threads(const lm_model *m, int n, lm_model_state *const *s, kvr_cache *const *c,
                          const int *token, float *const *logits, int *status, int threads, double *cost);

/* ---- passkey (passkey.c, doc/model.md §4.3) ----------------------------- */
enum { EV_PASSKEY_ANSWER = 12 };  /* answer tokens decoded (numbers are one token per digit) */

/* The prompt of trial `trial` of n_trials (about context - EV_PASSKEY_ANSWER
 * tokens) and its key (5 digits + NUL); the key sentence goes after
 * (trial + 0.5) / n_trials of the filler, so the depths of the trials are
 * spread evenly.  The prompt is the document (the instruction, the filler
 * and the key) followed by the question and the answer's start; *n_doc
 * gets the document's token count (ids[0 .. *n_doc-1], encoded on its own,
 * then the question's ids).   ids: [cap] */
int ev_passkey_prompt(const lm_bpe *b, int context, uint64_t seed, int trial, int n_trials,
                      int *ids, int cap, int *n_out, int *n_doc, char key[6]);
/* The shortest --context a passkey prompt fits in with tokenizer b (two
 * filler sentences, the fixed parts with any key, the answer) in *min. */
int ev_passkey_min_context(const lm_bpe *b, int *min);
/* The passkey prompt's chat template for model m: 0 ChatML (SmolLM2), 1
 * Gemma's turns, -1 neither (its start token is not in the vocabulary). */
int ev_passkey_chat(const lm_model *m);
/* Prefill a cache for each of cfgs[0..n-1] from the prompt pr, append the
 * n_late tokens `late` to each (one decode step each: the question asked
 * after compression, --late-question; n_late 0 when the prompt holds it),
 * decode each answer greedily in lock step on `threads` threads, and say
 * for each whether it holds the key (correct[i]; status[i] KVR_OK when
 * cache i ran).  answer0 (cap bytes) gets the first cache's answer, and
 * ids0 (when not NULL) its *len0 token ids.
 * Returns KVR_OK or KVR_ENOMEM.   late: [n_late]  ids0: [EV_PASSKEY_ANSWER] */
int ev_passkey_answers(const lm_model *m, const lm_bpe *b, const lm_prompt *pr, int n_late,
                       const int *late, int n, const kvr_config *cfgs, const char *key, int *correct,
                       int *status, char *answer0, size_t cap, int *ids0, int *len0, int threads);

/* ---- the run of every method (model_eval.c) ----------------------------- */

/* What `kvreviver eval --workload model:PATH` asked for. */
typedef struct {
    const char *path;          /* the model file (its base name names the workload) */
    const char *text;          /* --text FILE, or NULL: sampled text */
    int context, decode;       /* decode <= 0: context - context/2 */
    int windows;               /* --windows K (text) */
    kvr_elem elem;
    const double *budgets;
    int n_budgets;
    const char *const *methods;
    int n_methods;
    const unsigned long long *seeds;
    int n_seeds;
    int passkey;               /* trials per cell, 0: none */
    int late_question;         /* passkey: the question arrives after the document's prefill */
    int forced;                /* run the teacher-forced comparison */
    int threads;
    FILE *csv;                 /* NULL: none; may be stdout (then no table) */
    const char *plot;          /* --plot FILE (.svg or .png), or NULL */
} ev_model_opts;

/* Run the methods at the budgets on model m: the teacher-forced comparison
 * on every (seed, window) when forced, averaged; then the passkey trials;
 * print the tables on stdout (unless the CSV goes there) and the CSV rows
 * (doc/eval.md §5), and plot them when o->plot is set: passkey_acc when
 * there are passkey trials, otherwise top1_agree, against bytes_ratio.  Returns 0 when every run succeeded and stayed within
 * its budget, 1 otherwise (each failure reported on stderr), 2 when the
 * options do not fit the model or text (a usage error, said why). */
int ev_model_run(const lm_model *m, const ev_model_opts *o);

/* Read the document at path (UTF-8) and tokenize it with the model's own
 * tokenizer into *ids (malloc'd, *n ids).  KVR_EIO (cannot read),
 * KVR_EFORMAT (not UTF-8: the message gives the byte offset), KVR_EINVAL
 * (the model has no tokenizer), KVR_ENOMEM; the message in
 * lm_model_error(). */
int ev_model_text_tokens(const lm_model *m, const char *path, int **ids, int *n);

#endif
