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

#include "loader.h"

/* Load a model: a GGUF file when it starts with "GGUF", a llama2.c
 * checkpoint otherwise.  On failure (KVR_EIO: the file cannot be read;
 * KVR_EFORMAT: it is malformed, with a message naming the path and the
 * field; KVR_ENOMEM) *m is zeroed and nothing is held. */
int lm_model_load(lm_model *m, const char *path);
/* Scratch buffers of one forward pass. */
typedef struct {
    float *x;       /* [dim] residual stream */
    float *xb;      /* [dim] normalised input */
    float *q;       /* [n_heads*head_dim] */
    float *k, *v;   /* [n_kv_heads*head_dim] */
    float *att;     /* [n_heads*head_dim] attention output */
    float *hb, *hb2;/* [hidden_dim] */
    float *xo;      /* [dim] */
    kvr_cache *local;   /* Gemma's local layers: their sliding window, exact (NULL without) */
} lm_model_state;

int lm_model_state_init(lm_model_state *s, const lm_model *m);
void lm_model_state_free(lm_model_state *s);

/* A cache for this model with configuration cfg: one head cache per global
 * layer and KV head (every layer of a llama model; Gemma's local layers keep
 * their window in the state instead, lm_model_state.local, which a step at
 * position 0 or lm_prompt_prefill starts anew for the sequence). */
int lm_model_cache(const lm_model *m, const kvr_config *cfg, kvr_cache **out);
/* The backend lm_model_cache creates caches with (default KVR_BACKEND_REF;
 * kvreviver eval --backend cpu sets KVR_BACKEND_CPU). */
extern kvr_backend lm_cache_backend;

/* One decode step: token `token` at position kvr_length(cache, 0); appends
 * its K and V to every layer and writes the next-token logits.  On failure
 * (KVR_EINVAL: token out of range, nothing changed; a library status from
 * layer l: layers before l already hold the token, so the cache should be
 * discarded) the message names the layer and position.
 *   logits: [vocab_size] */
int lm_model_step(const lm_model *m, lm_model_state *s, kvr_cache *cache,
                   int token, float *logits);

/* One decode step for each of n caches in lock step (n <= LM_STEP_MANY_MAX):
 * cache c gets token[c] with its own state s[c], exactly the operations of
 * lm_model_step in the same order, so each cache's logits are those that
 * lm_model_step would give; the work is ordered matrix by matrix over the
 * caches so that each weight matrix is read from memory once for all of
 * them.  status[c] must be KVR_OK for a cache to run; a cache that fails
 * gets its status there and is skipped from then on (its cache should be
 * discarded).  Returns KVR_OK, or the first failure (the message names the
 * cache, layer and position).  logits[c] may be NULL.  attend_seconds, when
 * not NULL, gets the wall time each cache spent in kvr_append and
 * kvr_attend (what differs between methods), for balancing threads.
 *   token: [n], logits: [n] pointers to [vocab_size], status: [n],
 *   attend_seconds: [n] */
enum { LM_STEP_MANY_MAX = 256 };
int lm_model_step_many(const lm_model *m, int n, lm_model_state *const *s, kvr_cache *const *cache,
                       const int *token, float *const *logits, int *status, double *attend_seconds);

/* 1 when the matrix products use an optimized BLAS (configure found
 * OpenBLAS), 0 for the plain loops. */
int lm_blas(void);
/* Threads the BLAS itself may use for one call (OpenBLAS); no effect
 * without it.  The harness sets 1 while it runs caches on threads of its
 * own, and the number of cores for the shared prompt. */
void lm_blas_threads(int n);

/* Prefill n prompt tokens into an empty cache: the prompt attends to itself
 * with exact causal attention (float32, computed here), then every layer's
 * K and V go to kvr_prefill with the queries of the last n_obs positions
 * (n_obs = min(obs_window, n)).  Writes the logits after the last token.
 *   tokens: [n], logits: [vocab_size] */
int lm_model_prefill(const lm_model *m, lm_model_state *s, kvr_cache *cache, int n,
                      const int *tokens, float *logits);

/* A prompt run once with exact causal attention, kept so that any number of
 * caches can be prefilled from it (the prompt's computation does not depend
 * on the method: compression starts with kvr_prefill). */
typedef struct {
    int n, n_obs;
    float *k, *v;    /* [n_layers][n][n_kv_heads*head_dim] */
    float *q;        /* [n_layers][n_obs][n_heads*head_dim]: the last n_obs queries */
    float *logits;   /* [vocab_size] after the last token */
} lm_prompt;

/* Run tokens[0..n-1] (positions 0..n-1), keeping the queries of the last
 * min(n_obs, n) positions.  On failure *pr is zeroed. */
int lm_model_prompt(const lm_model *m, int n, const int *tokens, int n_obs, lm_prompt *pr);
/* kvr_prefill every layer of an empty cache from the prompt (KVR_ESTATE if
 * the cache's obs_window needs more queries than were kept). */
int lm_prompt_prefill(const lm_model *m, const lm_prompt *pr, lm_model_state *s, kvr_cache *cache);
/* Bytes the state's window cache (the local layers) holds, and its full
 * size at the same length; 0 for a model without local layers. */
int lm_model_window_bytes(const lm_model_state *s, size_t *held, size_t *full);
void lm_prompt_free(lm_prompt *pr);

/* Softmax of logits into log-probabilities (float64).
 *   logits: [n], logp: [n] */
void lm_log_softmax(const float *logits, int n, double *logp);

#endif
