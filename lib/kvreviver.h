/* kvreviver.h: the public interface of libkvreviver.
 *
 * KVReviver is reversible KV-cache compression: every KV head of every layer
 * keeps its sinks, a recent window and a set of important candidates exact,
 * and adds every other ("vague") token into a Count-Sketch-like structure from
 * which its key and value can be reconstructed at attention time.  The
 * normative description is doc/spec.md; section numbers below (spec §N) refer
 * to it.  The doc/ pages named here are in the source tree's doc/ and are
 * installed by `make install` in the documentation directory
 * ($(docdir), by default PREFIX/share/doc/kvreviver/: spec.md, methods.md,
 * files.md, ...).
 *
 * Conventions
 *   - Every call that can fail returns an int status: KVR_OK (0) or a
 *     negative kvr_status code.  kvr_strerror() names the code;
 *     kvr_last_error() gives a message naming the argument and its value,
 *     which begins with that name ("invalid argument: kvr_append: ..."):
 *     print it alone, not after kvr_strerror(), or the name is said twice.
 *   - A call that fails leaves the cache exactly as it was, and its output
 *     arguments too, with one exception: a KVR_EBACKEND from a device call
 *     of the cuda backend (a CUDA error after the call began) leaves the
 *     layer it worked on unspecified; free the cache.  Each declaration
 *     below lists the codes it can return ("Failure:") and what else it
 *     leaves unchanged.
 *   - The library never prints and never aborts.  An error handler may be
 *     installed with kvr_set_error_handler() to observe every failure.
 *   - Array arguments are row-major float32; their shapes are written as
 *     [dim0][dim1]... next to each parameter.
 */
#ifndef KVREVIVER_H
#define KVREVIVER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (spec §12) ------------------------------------------ */
typedef enum {
    KVR_OK = 0,
    KVR_EINVAL = -1,     /* an argument is NULL, out of range or of wrong size */
    KVR_ENOMEM = -2,     /* an allocation failed */
    KVR_ENONFINITE = -3, /* NaN or Inf in K, V or Q */
    KVR_ERANGE = -4,     /* a value is not representable in the storage type */
    KVR_EBUDGET = -5,    /* the budget cannot hold the sinks and the window */
    KVR_ESTATE = -6,     /* the call does not fit the cache's state */
    KVR_EBACKEND = -7,   /* the backend is not built or not usable here */
    KVR_EIO = -8,        /* a file could not be read or written */
    KVR_EFORMAT = -9,    /* a file is malformed, truncated or corrupted */
    KVR_EDROPPED = -10   /* the position was dropped by an eviction method */
} kvr_status;

/* The name of a status code; "unknown status" for any other number.
 * Cannot fail. */
const char *kvr_strerror(int status);
/* The message of the most recent failure in this thread ("" if none); it
 * starts with kvr_strerror(status) and ": ", so print it on its own.
 * Cannot fail. */
const char *kvr_last_error(void);
/* Called on every failure with the code and the message; NULL restores the
 * default, which does nothing.  Returns the previous handler.  Cannot fail. */
typedef void kvr_error_handler(int status, const char *message);
kvr_error_handler *kvr_set_error_handler(kvr_error_handler *handler);

/* The library's version string.  Cannot fail. */
const char *kvr_version(void);

/* ---- storage element type of the exact parts (spec §4) ---------------- */
typedef enum { KVR_F32 = 0, KVR_F16 = 1, KVR_BF16 = 2 } kvr_elem;
/* Bytes of one element: 4 for KVR_F32, 2 for any other value.  Cannot fail. */
size_t kvr_elem_size(kvr_elem elem);
/* "f32", "f16", "bf16"; "?" for an unknown value.  Cannot fail. */
const char *kvr_elem_name(kvr_elem elem);
/* Parse "f32"/"float32", "f16"/"float16" or "bf16"/"bfloat16" into *elem.
 * Failure: KVR_EINVAL (name or elem NULL, or another name); *elem is
 * unchanged. */
int kvr_elem_parse(const char *name, kvr_elem *elem);
/* x rounded to the element type and back: what a stored value reads as
 * (round to nearest, ties to even; may overflow to Inf).  Cannot fail; an
 * unknown elem gives NaN. */
float kvr_elem_round(kvr_elem elem, float x);

/* How the exact parts hold their tokens (spec §18.1): in the element type
 * (KVR_STORE_ELEM, spec §4), or per token and per head as 8- or 4-bit codes
 * over the head dimension with a float16 zero point and scale (spec §18.2).
 * The element type stays the full cache's type, against which the budget is
 * judged (spec §9). */
typedef enum { KVR_STORE_ELEM = 0, KVR_STORE_Q8 = 1, KVR_STORE_Q4 = 2 } kvr_store;
/* "elem", "q8", "q4" ("?" for a value out of range). */
const char *kvr_store_name(kvr_store store);
/* Bits of a code: 8, 4, or 0 for KVR_STORE_ELEM (and out of range). */
int kvr_store_bits(kvr_store store);
/* "elem", "q8" or "q4" into *store; KVR_EINVAL otherwise (*store unchanged). */
int kvr_store_parse(const char *name, kvr_store *store);

/* ---- configuration (spec §3, §6, §7, §8) ------------------------------- */

/* Importance rule deciding which candidate leaves first (spec §6). */
typedef enum {
    KVR_IMP_NONE = 0,   /* no scores: StreamingLLM (candidate capacity must be 0) */
    KVR_IMP_H2O = 1,    /* accumulated attention over the GQA group, prefill from all window queries */
    KVR_IMP_SNAPKV = 2, /* pooled observation-window scores at prefill, then accumulated */
    KVR_IMP_TOVA = 3    /* attention of the latest query, summed over the group */
} kvr_importance;

typedef enum { KVR_ROWS_MEDIAN = 0, KVR_ROWS_MEAN = 1 } kvr_rows;
/* How attention treats the vague part: reconstruct every vague token and
 * attend to it (spec §11, the paper's way), or the moment route (spec §17):
 * the bulk of the vague part as one moment-matched term, plus the vague
 * tokens the sketch shows to stand out. */
typedef enum { KVR_VAGUE_RECONSTRUCT = 0, KVR_VAGUE_MOMENT = 1 } kvr_vague;
typedef enum { KVR_POOL_AVG = 0, KVR_POOL_MAX = 1 } kvr_pool;
/* Backends (kvr_cache_create): the scalar reference; CUDA (doc/cuda.md);
 * the optimized CPU path (KVR_BACKEND_CPU: vector kernels and threads over
 * the KV heads for decode attention of the configurations it takes, the
 * reference's code for the rest; doc/cpu-results.md). */
typedef enum { KVR_BACKEND_REF = 0, KVR_BACKEND_CUDA = 1, KVR_BACKEND_CPU = 2 } kvr_backend;

typedef struct {
    /* partition sizes, per head cache (spec §3) */
    int sinks;          /* S: positions 0..S-1 stay exact forever */
    int window;         /* R: the last R positions are exact */
    int candidates;     /* C: capacity of the candidate part */
    /* sketch (spec §7); depth 0 or width 0: vague tokens are dropped (eviction) */
    int depth;          /* d rows */
    int width;          /* w buckets per row */
    uint64_t seed;      /* hash seed (spec §5) */
    kvr_rows rows;      /* row combination (spec §8.2) */
    int centre;         /* 1: exact centring (spec §8.1) */
    int shrink;         /* 1: shrink each row estimate toward the mean by 1/load (spec §8.3) */
    kvr_vague vague;    /* attention over the vague part (spec §11, §17) */
    double var_cap;     /* moment route: cap on the bulk's logit variance; 0: mean field (spec §17.3) */
    double revive;      /* moment route: z threshold reviving outlying vague tokens; 0: off (spec §17.2) */
    /* importance (spec §6) */
    kvr_importance importance;
    int obs_window;     /* W: prefill observation window (queries) */
    int pool_kernel;    /* prefill pooling kernel size (odd) */
    kvr_pool pool;      /* prefill pooling kind */
    /* storage */
    kvr_elem elem;      /* element type of the exact parts */
    /* planner knobs (spec §9.2), read by kvr_plan only */
    double sketch_share;   /* share of the budget bytes given to the sketch */
    double recent_share;   /* share of the exact-token bytes given to the window; <0: window = obs_window */
    /* quantized storage (spec §18) */
    kvr_store store;    /* how the exact parts (sinks, window, candidates) hold tokens */
    int kivi_bits;      /* 0: no quantized body; 2, 3 or 4: KIVI's body (spec §18.6) */
    int kivi_group;     /* G: KIVI's key group, in positions (kvr_plan: 0 chooses) */
    int kivi_tokens;    /* Q: capacity of KIVI's body, in positions (filled by kvr_plan) */
    /* the quantized tier between the candidates and the bulk (spec §19) */
    int tier_bits;       /* b: 0 (no tier) or 1..4 bits a code */
    int tier_tokens;     /* Q: the tier's capacity in positions (filled by kvr_plan) */
    double tier_share;   /* planner knob: share of the exact and tier bytes given to the tier, in [0, 1);
                          * below 0: a complete tier, every token that leaves the exact parts is kept (spec §19.11) */
    double tier_promote; /* theta: promote a tier token whose attention over the group is above it; 0: never */
    int tier_balance;    /* 1: the tier's keys are coded through a per-channel balancer set at prefill (spec §19.12) */
    int tier_rotate;     /* 1: the tier's keys and values are coded in a Walsh-Hadamard basis (spec §19.13);
                          * needs a power-of-two head_dim */
} kvr_config;

/* The KVReviver defaults (spec §13), which every method by name starts
 * from: S=4, one sketch row (d=1) given a tenth of the budget, centring on,
 * no shrinkage, the moment route with the mean-field bulk (var_cap 0,
 * revive 0), H2O importance (prefill from the last W=32 queries), no
 * quantized tier (tier_bits 0), float32: the method kvreviver-moment.  The
 * default method, the measured winner of doc/results.md, is these with
 * tier_bits = 4 (spec §19): kvr_method_config("kvreviver", ...), or set
 * cfg->tier_bits = 4 before kvr_plan() (the cuda backend refuses a tier).
 * kvr_method_config("kvreviver-paper", ...) gives the paper-faithful
 * configuration.  R, C, w and the tier's Q are left 0: kvr_plan() fills
 * them for a budget.  Cannot fail; cfg must not be NULL. */
void kvr_config_default(kvr_config *cfg);
/* The paper-faithful configuration (doc/methods.md): the defaults with every
 * vague token reconstructed (spec §8, §11), d=3 rows, SnapKV prefill scores
 * and half of the budget to the sketch.  R, C and w are left 0 for kvr_plan().
 * Cannot fail; cfg must not be NULL. */
void kvr_config_paper(kvr_config *cfg);

/* Check a configuration for internal consistency for a given head_dim.
 * Failure: KVR_EBUDGET (window < 1), KVR_EINVAL (cfg NULL, head_dim not in
 * [1, 65536], any other field out of range or inconsistent); the message
 * names the first field at fault.  Reads only. */
int kvr_config_check(const kvr_config *cfg, int head_dim);

/* ---- budget (spec §9) -------------------------------------------------- */

/* Bytes a head cache with this configuration holds (spec §9.1).  Cannot
 * fail; cfg must not be NULL and is not checked (kvr_config_check). */
size_t kvr_head_bytes(const kvr_config *cfg, int head_dim);
/* Bytes of the full (uncompressed) head cache at context n (spec §9.1);
 * 0 when context or head_dim is negative.  Cannot fail. */
size_t kvr_full_bytes(long context, int head_dim, kvr_elem elem);

/* The planner (spec §9.2): fill cfg->window, cfg->candidates, cfg->width
 * (and cfg->depth = 0 when no sketch is used) so that kvr_head_bytes() <=
 * ratio * kvr_full_bytes(context).  The planned context sizes the parts; it
 * is not a limit: a cache takes more tokens than `context`, its bytes held
 * stay kvr_head_bytes() (allocated at full capacity from the start), so its
 * ratio to the full cache falls below `ratio` past the planned context (and
 * is above it early on, spec §9.1); the exact parts keep their sizes and
 * every further token goes through the lifecycle (spec §3.3): to the tier
 * while it has room, then to the sketch or the bulk, or dropped.  The one
 * exception is KIVI (kivi_bits > 0), whose body holds kivi_tokens
 * positions: appending past sinks + window + kivi_tokens fails with
 * KVR_ESTATE (spec §18.6).  Reads cfg->sinks, depth, importance,
 * sketch_share, recent_share, obs_window, elem, store.  With kivi_bits > 0
 * it plans KIVI instead (spec §18.6): fills window (the residual R; when
 * window > 0 on entry it is kept, capped at the context), kivi_group (when 0
 * on entry: 32, 64 or 128, the first that fits) and kivi_tokens = context -
 * sinks - window, every token kept.  Failure: KVR_EBUDGET (the
 * budget cannot hold the sinks and a window of one token, or the sinks, the
 * sketch's minimum and that window, or no KIVI configuration fits), KVR_EINVAL
 * (cfg NULL, ratio not in (0, 1], context not in [1, 2^31-1],
 * head_dim not in [1, 65536], sinks or depth negative, sketch_share not in
 * [0, 1), recent_share above 1 or not finite, store unknown, kivi_bits not
 * 2, 3 or 4, kivi_group or window negative); cfg is unchanged. */
int kvr_plan(double ratio, long context, int head_dim, kvr_config *cfg);

/* ---- methods by name (doc/methods.md) ----------------------------------- */

/* Fill cfg with the named method's settings, planned for (ratio, context,
 * head_dim, elem).  Names: full, streaming, h2o, snapkv, tova, kivi,
 * kvreviver and the kvreviver variants listed by kvr_method_name(), each
 * optionally followed by levers "/key=value" (doc/methods.md §13.4): store=
 * for the eviction and kvreviver methods, bits=, group=, residual= for kivi.
 * elem is the full cache's type (spec §18.1).  Failure: KVR_EINVAL (name or
 * cfg NULL, unknown method, a bad lever or one the method does not take,
 * arguments kvr_plan refuses, or a planned configuration kvr_config_check
 * refuses), KVR_EBUDGET (the budget is too small, from kvr_plan or
 * kvr_config_check); *cfg is unchanged. */
int kvr_method_config(const char *name, double ratio, long context,
                      int head_dim, kvr_elem elem, kvr_config *cfg);
/* The i-th method name, or NULL when i is negative or past the end: the
 * default set (what `kvreviver eval` runs without --method).  kivi and the
 * store= variants are taken by name and not listed.  Cannot fail. */
const char *kvr_method_name(int i);

/* ---- the model cache (spec §3) ----------------------------------------- */
typedef struct kvr_cache kvr_cache;

/* Which part holds a position (spec §3.2). */
typedef enum {
    KVR_PART_SINK = 0,
    KVR_PART_RECENT = 1,
    KVR_PART_CANDIDATE = 2,
    KVR_PART_VAGUE = 3,     /* in the sketch */
    KVR_PART_DROPPED = 4,   /* left the exact set with no sketch to hold it */
    KVR_PART_QUANTIZED = 5  /* kept, quantized: KIVI's body (spec §18.6) or the tier (spec §19) */
} kvr_part;
/* "sink", "recent", "candidate", "vague", "dropped", "quantized"; "?" for
 * an unknown value.  Cannot fail. */
const char *kvr_part_name(kvr_part part);

/* Create a cache of n_layers x n_kv_heads head caches for n_q_heads query
 * heads (a multiple of n_kv_heads: the GQA group is n_q_heads / n_kv_heads).
 * Failure: KVR_EINVAL (out NULL, n_layers or n_kv_heads not in [1, 4096],
 * n_q_heads not a multiple of n_kv_heads or above 65536, an unknown
 * backend, or any failure of kvr_config_check), KVR_EBUDGET (window < 1,
 * from kvr_config_check), KVR_EBACKEND (the cuda backend is not built, finds
 * no usable GPU, does not handle these dimensions, or a device call fails),
 * KVR_ENOMEM.  On failure *out is NULL (unless out is NULL) and nothing is
 * allocated. */
int kvr_cache_create(kvr_cache **out, int n_layers, int n_kv_heads,
                     int n_q_heads, int head_dim, const kvr_config *cfg,
                     kvr_backend backend);
/* Free a cache.  NULL, or a pointer that is not a live cache (freed
 * already, or not made by kvr_cache_create), is ignored.  Cannot fail. */
void kvr_cache_free(kvr_cache *cache);

/* Append n tokens of one layer (spec §3.3).  Each token enters the window;
 * the token pushed out of the window becomes a candidate; candidates beyond
 * capacity go to the vague part (spec §3.3, tie rule §3.4).
 *   k, v: [n][n_kv_heads][head_dim]
 * Failure: KVR_EINVAL (cache NULL or not live, layer out of range, n < 1,
 * k or v NULL, the layer's length would pass 2^31-1), KVR_ENONFINITE (a NaN
 * or Inf in k or v), KVR_ERANGE (a value overflows the element type or,
 * with a sketch, is above 2^95 in magnitude: spec §4.2), KVR_ENOMEM,
 * KVR_EBACKEND (cuda backend: a device call failed, see the
 * conventions); the cache is unchanged. */
int kvr_append(kvr_cache *cache, int layer, int n, const float *k, const float *v);

/* Prefill compression of a prompt into an empty layer (spec §10): the n
 * prompt tokens' keys and values, and the queries of the last n_obs prompt
 * positions (n_obs <= n) for the importance scores.
 *   k, v:  [n][n_kv_heads][head_dim]
 *   q_obs: [n_obs][n_q_heads][head_dim] (queries of positions n-n_obs .. n-1)
 * Failure: KVR_EINVAL (cache NULL or not live, layer out of range, n < 1,
 * k or v NULL, n_obs not in [0, n] or 0 when scores are kept, q_obs NULL
 * with n_obs > 0), KVR_ESTATE (the layer is not empty), KVR_ENONFINITE (a
 * NaN or Inf in k, v or q_obs), KVR_ERANGE (a value of k or v overflows the
 * element type or, with a sketch, is above 2^95), KVR_ENOMEM, KVR_EBACKEND (cuda backend: a device call
 * failed; the layer is left empty on the host); the layer stays empty and
 * the cache is unchanged. */
int kvr_prefill(kvr_cache *cache, int layer, int n, const float *k,
                const float *v, int n_obs, const float *q_obs);

/* Decode attention of one step for all query heads of a layer (spec §11):
 * softmax over every position held (exact, reconstructed; dropped ones are
 * absent) of the logits q . k_t * (1 / sqrt(head_dim)), the scale applied
 * here (pass q unscaled), the reciprocal square root rounded to float32
 * first (spec §11).  It attends over what the layer holds now: a decode
 * step appends its own token first (kvr_append) and then attends, so the
 * step's key and value are among the positions it attends to, as in a
 * causal model.  Unless flags has KVR_ATTEND_PEEK, the importance scores are
 * updated (spec §6.1).
 *   q:   [n_q_heads][head_dim]
 *   out: [n_q_heads][head_dim]
 * Failure: KVR_EINVAL (cache NULL or not live, layer out of range, q or out
 * NULL, unknown bits in flags), KVR_ESTATE (the layer is empty),
 * KVR_ENONFINITE (a NaN or Inf in q), KVR_ENOMEM (the attention workspace),
 * KVR_EBACKEND (cuda backend: a device call failed; out is then
 * unspecified); the cache, its scores and out are unchanged. */
enum { KVR_ATTEND_PEEK = 1 };
int kvr_attend(kvr_cache *cache, int layer, const float *q, float *out, unsigned flags);

/* Key and value of any position as attention sees them: stored values for
 * exact parts, the reconstruction (spec §8) for vague ones; KVR_EDROPPED for
 * a dropped position.
 *   k, v: [head_dim]
 * Failure: KVR_EINVAL (cache NULL or not live, layer or kv_head out of
 * range, pos not in [0, length), k or v NULL), KVR_EDROPPED (the position
 * was dropped), KVR_EBACKEND (cuda backend, a vague position: a device call
 * failed; k and v are then unspecified); k and v are unchanged. */
int kvr_reconstruct(const kvr_cache *cache, int layer, int kv_head, long pos,
                    float *k, float *v);

/* The part that holds a position (spec §3.2).  Failure: KVR_EINVAL (cache
 * NULL or not live, layer or kv_head out of range, pos not in [0, length),
 * part NULL); *part is unchanged. */
int kvr_part_of(const kvr_cache *cache, int layer, int kv_head, long pos, kvr_part *part);
/* Importance score of an exact position in the window or candidates.
 * Failure: KVR_EINVAL (as kvr_part_of, or score NULL), KVR_ESTATE (the
 * position is a sink, vague or dropped, or the configuration keeps no
 * scores); *score is unchanged. */
int kvr_score_of(const kvr_cache *cache, int layer, int kv_head, long pos, float *score);
/* Tokens appended to a layer so far; -1 when cache is NULL or not live or
 * layer is out of range (recorded as a KVR_EINVAL failure). */
long kvr_length(const kvr_cache *cache, int layer);
/* Bytes held by the whole cache (spec §9.1), and bytes of the full cache at
 * the same per-layer lengths; held or full may be NULL.  Failure:
 * KVR_EINVAL (cache NULL or not live); *held and *full are unchanged. */
int kvr_bytes(const kvr_cache *cache, size_t *held, size_t *full);
/* The configuration the cache was created with; NULL when cache is NULL or
 * not live (recorded as a KVR_EINVAL failure). */
const kvr_config *kvr_cache_config(const kvr_cache *cache);
/* The dimensions the cache was created with; any output may be NULL.
 * Failure: KVR_EINVAL (cache NULL or not live); the outputs are unchanged. */
int kvr_cache_dims(const kvr_cache *cache, int *n_layers, int *n_kv_heads,
                   int *n_q_heads, int *head_dim);

/* ---- backends ---------------------------------------------------------- */
/* 1 when the backend is compiled in and usable on this machine, else 0
 * (also for an unknown value).  Cannot fail. */
int kvr_backend_available(kvr_backend backend);
/* "ref", "cuda", "cpu"; "?" for an unknown value.  Cannot fail.  The cpu
 * backend is always available. */
const char *kvr_backend_name(kvr_backend backend);

/* ---- hashing (spec §5) --------------------------------------------------- */
/* The hash of a position (spec §5.2), its bucket in [0, width) (spec §5.3;
 * 0 when width is 0) and its sign, +1 or -1.  Cannot fail. */
uint64_t kvr_hash(uint64_t seed, uint32_t layer, uint32_t kv_head, uint32_t row, uint64_t pos);
uint32_t kvr_hash_bucket(uint64_t h, uint32_t width);
int kvr_hash_sign(uint64_t h);

/* ---- cache files (spec §16) ------------------------------------------ */

/* Save a model cache: its dimensions, its configuration and every part of
 * every head cache, with a CRC-32 of the payload (doc/files.md).  The file
 * is written beside path and renamed over it, so a failed save leaves any
 * previous file whole.  Failure: KVR_EINVAL (cache NULL or not live, path
 * NULL), KVR_ENOMEM, KVR_EIO (path.tmp cannot be created or written, or not
 * renamed over path; the message names the path); any previous file at path
 * is whole and path.tmp is removed. */
int kvr_cache_save(const kvr_cache *cache, const char *path);
/* Load a cache saved by kvr_cache_save (reference backend).  The file is
 * untrusted input: every field is checked before the cache is handed out.
 * Failure: KVR_EINVAL (out or path NULL), KVR_EIO (path cannot be opened or
 * read; the message names it), KVR_EFORMAT (the file is truncated,
 * corrupted, of another version or byte order, or inconsistent),
 * KVR_ENOMEM; *out is NULL (unless out is NULL) and nothing is allocated. */
int kvr_cache_load(kvr_cache **out, const char *path);
/* The same in memory: *buf receives the bytes of a cache file, freed with
 * kvr_buffer_free().  Failure: KVR_EINVAL (buf or len NULL, cache NULL or
 * not live), KVR_ENOMEM; *buf is NULL and *len 0 (when they are not NULL). */
int kvr_cache_save_mem(const kvr_cache *cache, void **buf, size_t *len);
/* Load the len bytes of a cache file at buf.  Failure: KVR_EINVAL (out NULL,
 * or buf NULL with len > 0), KVR_EFORMAT (as kvr_cache_load), KVR_ENOMEM;
 * *out is NULL (unless out is NULL) and nothing is allocated. */
int kvr_cache_load_mem(kvr_cache **out, const void *buf, size_t len);
/* Free a buffer from kvr_cache_save_mem; NULL is ignored.  Cannot fail. */
void kvr_buffer_free(void *buf);

#ifdef __cplusplus
}
#endif
#endif /* KVREVIVER_H */
