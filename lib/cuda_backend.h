/* cuda_backend.h: the CUDA backend behind a model cache (lib/cuda_backend.c,
 * built only when configure found CUDA).  lib/cache.c calls these after its
 * argument checks, in place of the reference's loops; doc/cuda.md describes
 * the design. */
#ifndef KVR_CUDA_BACKEND_H
#define KVR_CUDA_BACKEND_H

#include "internal.h"

/* Check the cache's shape against the kernels' limits, allocate the device
 * state (c->backend_state).  On failure nothing is left allocated. */
int kvr_cuda_backend_create(kvr_cache *c);
void kvr_cuda_backend_free(kvr_cache *c);
/* kvr_append's work: the host heads append as in the reference, the device
 * receives the exact parts and inserts the tokens that went vague.
 *   rk, rv: [n][n_kv_heads][D], rounded to the element type */
int kvr_cuda_backend_append(kvr_cache *c, int layer, int n, const float *rk, const float *rv);
/* After the host heads of a layer took a prefill: bring the device up to
 * date (exact parts, vague tokens into the device sketch).  Same shapes. */
int kvr_cuda_backend_prefill(kvr_cache *c, int layer, int n, const float *rk, const float *rv);
/* kvr_attend's work on the device; importance update on the host with the
 * device's probabilities when update is set.
 *   q, out: [n_q_heads][D] */
int kvr_cuda_backend_attend(kvr_cache *c, int layer, const float *q, float *out, int update);
/* Reconstruct a vague position on the device.  k, v: [D] */
int kvr_cuda_backend_reconstruct(const kvr_cache *c, int layer, int kv_head, long pos, float *k, float *v);
/* For tests: the device's sketch of a head.
 *   sk_k, sk_v: [d][w][D]; count, load: [d][w] */
int kvr_cuda_backend_sketch(const kvr_cache *c, int layer, int kv_head, float *sk_k, float *sk_v,
                            int32_t *count, int32_t *load);

#endif
