/* kvr_cuda.h: the host-callable interface of the CUDA kernels (doc/cuda.md).
 *
 * Plain C, no CUDA headers: lib/cuda_backend.c, the conformance suite and
 * the benchmark call these.  Every pointer named *_dev is device memory.
 * Functions returning int give 0 on success or a CUDA error code (a
 * positive cudaError_t value); kvr_cuda_error_string() names it.
 *
 * The kernels mirror ref/ concept by concept:
 *   cuda/hash.cuh         ref: base/hash.c        the sketch hash, bit-identical
 *   cuda/sketch.cu        ref/sketch.c           insertion (spec §7.3)
 *   cuda/reconstruct.cu   ref/reconstruct.c      reconstruction (spec §8)
 *   cuda/attend.cu        ref/attend.c and ref/sketchattend.c  decode attention (spec §11)
 *   cuda/prefill.cu       ref/importance.c       prefill scores and pooling (spec §6.2)
 *   cuda/device.cu        -                      device probe, memory, timing */
#ifndef KVR_CUDA_H
#define KVR_CUDA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits of the kernels (registers per lane, arrays on chip). */
#define KVR_CUDA_MAX_GROUP 8     /* query heads per KV head */
#define KVR_CUDA_MAX_DIM 256     /* head_dim */
#define KVR_CUDA_MAX_DEPTH 16    /* sketch rows */

/* What every head of one launch shares. */
typedef struct {
    int head_dim;       /* D */
    int group;          /* G query heads per KV head */
    int depth, width;   /* d, w; 0: no sketch (vague tokens dropped) */
    int rows;           /* kvr_rows: 0 median, 1 mean */
    int shrink;         /* alpha = 1/load when 1 */
    int elem;           /* kvr_elem of the exact parts */
    uint64_t seed;      /* hash seed */
} kvr_cuda_params;

/* One head cache on the device: the arrays of ref_head (ref/ref.h) with the
 * same layouts, plus the scalars a kernel needs. */
typedef struct {
    const void *sink_k, *sink_v;   /* [S][D] elem */
    const void *win_k, *win_v;     /* [R][D] elem, position p in slot p mod R */
    const void *cand_k, *cand_v;   /* [C][D] elem, sorted by position */
    const int32_t *cand_pos;       /* [C] */
    float *sk_k, *sk_v;            /* [d][w][D] */
    int32_t *sk_count, *sk_load;   /* [d][w] */
    const float *mu_k, *mu_v;      /* [D] means of the vague part (zeros without centring) */
    int n;                         /* tokens held (positions 0..n-1) */
    int sinks, window;             /* configured S and R */
    int n_cand;                    /* candidates held */
    int n_vague;                   /* tokens in the sketch */
    uint32_t layer, kv_head;       /* hash inputs */
} kvr_cuda_head;

/* ---- device.cu: probe, memory, copies, timing --------------------------- */
int kvr_cuda_device_count(void);
const char *kvr_cuda_error_string(int code);
const char *kvr_cuda_device_name(void);
int kvr_cuda_malloc(void **dev, size_t bytes);
void kvr_cuda_free(void *dev);
int kvr_cuda_upload(void *dev, const void *host, size_t bytes);
int kvr_cuda_download(void *host, const void *dev, size_t bytes);
int kvr_cuda_memset(void *dev, int byte, size_t bytes);
int kvr_cuda_sync(void);
/* Fill count elements (kvr_elem elem, or 3 = int32 in [0, scale)) with
 * uniform values in [-scale, scale) from seed. */
int kvr_cuda_fill_random(void *dev, size_t count, int elem, uint64_t seed, float scale);
/* Milliseconds between two points on the default stream (CUDA events). */
int kvr_cuda_timer_start(void);
int kvr_cuda_timer_stop(float *ms);
/* Device-to-device copy bandwidth in GB/s (bytes read + bytes written per
 * second), median of reps copies of a buffer of the given size. */
int kvr_cuda_copy_bandwidth(size_t bytes, int reps, double *gbps);

/* ---- hash.cuh: check the device hash against kvr_hash ------------------- */
/* Hashes n (layer, head, row, pos) tuples on the device and on the host;
 * *mismatches = how many differ (bucket for width w, sign, or the 64 bits). */
int kvr_cuda_hash_check(uint64_t seed, int n, uint32_t width, int *mismatches);

/* ---- sketch.cu (spec §7.3) ------------------------------------------------ */
/* Insert tokens into the sketches of many heads in one launch.  Head h's
 * tokens are entries offsets[h] .. offsets[h+1]-1, in the order the reference
 * inserts them; the sums are bit-identical to ref_sketch_insert.
 *   heads_dev: [n_heads]; offsets_dev: [n_heads + 1]; pos_dev: [m];
 *   k_dev, v_dev: [m][D] (already rounded to the element type) */
int kvr_cuda_sketch_insert(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_heads,
                           const int *offsets_dev, const int32_t *pos_dev,
                           const float *k_dev, const float *v_dev);

/* ---- reconstruct.cu (spec §8) --------------------------------------------- */
/* Reconstruct vague positions: item j is position pos_dev[j] of head
 * head_dev[j].  k_dev, v_dev: [n_items][D]. */
int kvr_cuda_reconstruct(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_items,
                         const int *head_dev, const int32_t *pos_dev, float *k_dev, float *v_dev);

/* ---- attend.cu (spec §11) -------------------------------------------------- */
typedef struct kvr_cuda_attend_ws kvr_cuda_attend_ws;
/* A workspace for launches over up to n_heads heads of up to max_items
 * items (n + C) each, with exact_cap = S + R + C exact rows per head. */
int kvr_cuda_attend_ws_create(kvr_cuda_attend_ws **ws, const kvr_cuda_params *p, int n_heads,
                              long max_items, int exact_cap);
void kvr_cuda_attend_ws_free(kvr_cuda_attend_ws *ws);
/* Decode attention of G query heads per head cache, for n_heads head caches
 * (any mix of sequences and KV heads) in one launch sequence.
 *   q_dev, out_dev: [n_heads][G][D]
 *   prob_dev: NULL, or [n_heads][exact_cap]: for each exact row in the order
 *     sinks (0..S'-1), window (positions n-R'..n-1), candidates (0..n_cand-1),
 *     the attention probability summed over the group (spec §6.1).
 * max_items bounds n + n_cand over the heads. */
int kvr_cuda_attend(const kvr_cuda_params *p, const kvr_cuda_head *heads_dev, int n_heads,
                    long max_items, const float *q_dev, float *out_dev, float *prob_dev,
                    kvr_cuda_attend_ws *ws);

/* ---- prefill.cu (spec §6.2) ------------------------------------------------ */
/* Prefill scores of one KV head: raw_t = sum over the last `used` queries
 * and the G heads of their causal softmax weight on t, then per importance
 * rule (kvr_importance): h2o raw, snapkv pooled (kernel, kvr_pool), tova
 * raw/G from the last query only.
 *   k_dev: [n][D] rounded keys; q_dev: [n_obs][G][D]; score_dev: [n] */
int kvr_cuda_prefill_scores(int D, int G, int importance, int obs_window, int pool_kernel, int pool,
                            int n, const float *k_dev, int n_obs, const float *q_dev, float *score_dev);

#ifdef __cplusplus
}
#endif
#endif
