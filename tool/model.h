/* model.h: a llama-architecture decoder whose attention goes through a
 * kvreviver cache (doc/model.md).
 *
 * The model is RMSNorm -> Q/K/V projections -> RoPE -> grouped-query
 * attention -> output projection -> residual, then RMSNorm -> SwiGLU
 * feed-forward -> residual, n_layers times, then a final RMSNorm and the
 * classifier.  Weights are float32 in memory whatever the file held.  The
 * keys and values of every layer live only in the kvr_cache: a decode step
 * appends the token's K and V (kvr_append) and attends with its queries
 * (kvr_attend), so the same forward pass runs with `full`, every eviction
 * baseline and every KVReviver configuration. */
#ifndef KVR_MODEL_H
#define KVR_MODEL_H

#include "kvreviver.h"

typedef struct {
    /* shape */
    int dim;            /* model (residual) width */
    int hidden_dim;     /* feed-forward width */
    int n_layers;
    int n_heads;        /* query heads */
    int n_kv_heads;     /* key/value heads (GQA group = n_heads / n_kv_heads) */
    int head_dim;
    int vocab_size;
    int seq_len;        /* trained context (informational) */
    float rms_eps;      /* RMSNorm epsilon */
    float rope_base;    /* RoPE frequency base */
    int rope_dims;      /* rotated dimensions of each head (even, <= head_dim) */
    int bos;            /* beginning-of-sequence token id */
    int eos;            /* end-of-sequence token id, -1 if none */
    /* weights, float32, row-major; "out x in" for projections (y = W x) */
    float *token_embedding; /* [vocab_size][dim] */
    float *rms_att;         /* [n_layers][dim] */
    float *wq;              /* [n_layers][n_heads*head_dim][dim] */
    float *wk;              /* [n_layers][n_kv_heads*head_dim][dim] */
    float *wv;              /* [n_layers][n_kv_heads*head_dim][dim] */
    float *wo;              /* [n_layers][dim][n_heads*head_dim] */
    float *rms_ffn;         /* [n_layers][dim] */
    float *w1;              /* [n_layers][hidden_dim][dim] (gate) */
    float *w2;              /* [n_layers][dim][hidden_dim] (down) */
    float *w3;              /* [n_layers][hidden_dim][dim] (up) */
    float *rms_final;       /* [dim] */
    float *wcls;            /* [vocab_size][dim]; may alias token_embedding */
    /* tokenizer (GGUF only; NULL / 0 otherwise) */
    char **tokens;          /* [vocab_size] token strings (GPT-2 byte-level) */
    char **merges;          /* [n_merges] "left right" */
    int n_merges;
    void *owned[16];        /* allocations to free */
    int n_owned;
} kvr_model;

/* Load a model: a GGUF file when it starts with "GGUF", a llama2.c
 * checkpoint otherwise.  On failure (KVR_EIO: the file cannot be read;
 * KVR_EFORMAT: it is malformed, with a message naming the path and the
 * field; KVR_ENOMEM) *m is zeroed and nothing is held. */
int kvr_model_load(kvr_model *m, const char *path);
int kvr_model_load_llama2c(kvr_model *m, const char *path);   /* llama2c.c */
int kvr_model_load_gguf(kvr_model *m, const char *path);      /* gguf.c */
void kvr_model_free(kvr_model *m);
/* Check the shape fields for consistency; KVR_EFORMAT naming what is wrong. */
int kvr_model_check(const kvr_model *m, const char *path);

/* Errors of the model code: the status and a message (the path, the field
 * or the layer) that kvr_model_error() returns until the next failure. */
int kvr_model_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
const char *kvr_model_error(void);

/* Scratch buffers of one forward pass. */
typedef struct {
    float *x;       /* [dim] residual stream */
    float *xb;      /* [dim] normalised input */
    float *q;       /* [n_heads*head_dim] */
    float *k, *v;   /* [n_kv_heads*head_dim] */
    float *att;     /* [n_heads*head_dim] attention output */
    float *hb, *hb2;/* [hidden_dim] */
    float *xo;      /* [dim] */
} kvr_model_state;

int kvr_model_state_init(kvr_model_state *s, const kvr_model *m);
void kvr_model_state_free(kvr_model_state *s);

/* A cache for this model with configuration cfg (one head cache per layer
 * and KV head). */
int kvr_model_cache(const kvr_model *m, const kvr_config *cfg, kvr_cache **out);

/* One decode step: token `token` at position kvr_length(cache, 0); appends
 * its K and V to every layer and writes the next-token logits.  On failure
 * (KVR_EINVAL: token out of range, nothing changed; a library status from
 * layer l: layers before l already hold the token, so the cache should be
 * discarded) the message names the layer and position.
 *   logits: [vocab_size] */
int kvr_model_step(const kvr_model *m, kvr_model_state *s, kvr_cache *cache,
                   int token, float *logits);

/* Prefill n prompt tokens into an empty cache: the prompt attends to itself
 * with exact causal attention (float32, computed here), then every layer's
 * K and V go to kvr_prefill with the queries of the last n_obs positions
 * (n_obs = min(obs_window, n)).  Writes the logits after the last token.
 *   tokens: [n], logits: [vocab_size] */
int kvr_model_prefill(const kvr_model *m, kvr_cache *cache, int n,
                      const int *tokens, float *logits);

/* A prompt run once with exact causal attention, kept so that any number of
 * caches can be prefilled from it (the prompt's computation does not depend
 * on the method: compression starts with kvr_prefill). */
typedef struct {
    int n, n_obs;
    float *k, *v;    /* [n_layers][n][n_kv_heads*head_dim] */
    float *q;        /* [n_layers][n_obs][n_heads*head_dim]: the last n_obs queries */
    float *logits;   /* [vocab_size] after the last token */
} kvr_prompt;

/* Run tokens[0..n-1] (positions 0..n-1), keeping the queries of the last
 * min(n_obs, n) positions.  On failure *pr is zeroed. */
int kvr_model_prompt(const kvr_model *m, int n, const int *tokens, int n_obs, kvr_prompt *pr);
/* kvr_prefill every layer of an empty cache from the prompt (KVR_ESTATE if
 * the cache's obs_window needs more queries than were kept). */
int kvr_prompt_prefill(const kvr_model *m, const kvr_prompt *pr, kvr_cache *cache);
void kvr_prompt_free(kvr_prompt *pr);

/* Softmax of logits into log-probabilities (float64).
 *   logits: [n], logp: [n] */
void kvr_log_softmax(const float *logits, int n, double *logp);

/* ---- tokenizer (bpe.c, GGUF models with tokens and merges) ------------- */
typedef struct {
    char **keys;      /* the strings (not owned) */
    int *slot;        /* [cap] index into keys, -1 empty */
    size_t cap;
} kvr_bpe_table;

typedef struct {
    const kvr_model *m;
    kvr_bpe_table tok;    /* token string -> id */
    kvr_bpe_table merge;  /* "left right" -> rank */
} kvr_bpe;

int kvr_bpe_init(kvr_bpe *b, const kvr_model *m);
void kvr_bpe_free(kvr_bpe *b);
/* Encode text into at most cap ids (KVR_EINVAL when it needs more).
 *   ids: [cap] */
int kvr_bpe_encode(const kvr_bpe *b, const char *text, int *ids, int cap, int *n_out);
/* Decode ids into out (NUL-terminated, truncated to cap); returns the bytes
 * written.   ids: [n] */
size_t kvr_bpe_decode(const kvr_bpe *b, const int *ids, int n, char *out, size_t cap);

/* ---- evaluation (model_run.c, doc/model.md §4) ------------------------- */

/* A teacher-forced task: tokens[0..n] sampled by the full-cache model from
 * BOS (temperature 1, seeded), and the full-cache run's next-token
 * log-probabilities at the decode steps t = n_prefill .. n-1 (after
 * prefilling tokens 0 .. n_prefill-1 and appending tokens up to t). */
typedef struct {
    const kvr_model *m;
    int n;              /* context: positions held at the end */
    int n_prefill;      /* n - decode steps (default n - n/2) */
    int *tokens;        /* [n + 1] */
    double *ref_logp;   /* [n - n_prefill][vocab_size] full-cache log-probabilities */
    int *ref_top;       /* [n - n_prefill] full-cache argmax */
    kvr_prompt prompt;  /* tokens[0 .. n_prefill-1], shared by every method */
    double gen_seconds, ref_seconds;
} kvr_model_task;

typedef struct {
    double bytes_ratio;  /* kvr_bytes held / full over all layers, at the end */
    double exact_ratio;  /* exactly held positions / (layers * kv heads * n) */
    double top1_agree;   /* share of decode steps whose argmax equals full's */
    double kl;           /* mean over decode steps of KL(full || method), nats */
    double ppl;          /* exp(-mean log p_method(next token)) */
    size_t bytes_held;
    double seconds;
} kvr_model_result;

/* Progress callback: called after each generated or evaluated position. */
typedef void kvr_model_progress(const char *what, int done, int total);

/* decode: decode steps (<= 0: context - context/2); n_prefill = context - decode */
int kvr_model_task_init(kvr_model_task *t, const kvr_model *m, int context, int decode,
                        uint64_t seed, kvr_model_progress *progress);
void kvr_model_task_free(kvr_model_task *t);
/* Run one method at one budget over the task (cache planned by
 * kvr_method_config(method, budget, n, head_dim, KVR_F32)). */
int kvr_model_eval_method(const kvr_model_task *t, const char *method, double budget,
                          kvr_model_result *res, kvr_model_progress *progress);

/* ---- passkey (passkey.c, doc/model.md §4.3) ----------------------------- */
enum { KVR_PASSKEY_ANSWER = 12 };  /* answer tokens decoded (numbers are one token per digit) */

/* The prompt of trial `trial` (about context - KVR_PASSKEY_ANSWER tokens)
 * and its key (5 digits + NUL).   ids: [cap] */
int kvr_passkey_prompt(const kvr_bpe *b, int context, uint64_t seed, int trial,
                       int *ids, int cap, int *n_out, char key[6]);
/* Prefill a cache with configuration cfg from the prompt, decode the answer
 * greedily, and say whether it holds the key.   answer: [cap] */
int kvr_passkey_answer(const kvr_model *m, const kvr_bpe *b, const kvr_prompt *pr,
                       const kvr_config *cfg, const char *key, int *correct,
                       char *answer, size_t cap);

/* The `eval --workload model:PATH` command (model_eval.c). */
int cli_eval_model(int argc, char **argv);

#endif
