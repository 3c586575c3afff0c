/* internal.h: lib/'s own declarations (not installed): the model cache and
 * the bytes of lib/budget.c, over the layers below it, ref/ (ref.h) and
 * base/ (base.h). */
#ifndef KVR_INTERNAL_H
#define KVR_INTERNAL_H

#include "kvreviver.h"
#include "base.h"

/* The model cache (lib/cache.c): n_layers x n_kv_heads reference head
 * caches.  Defined here so that lib/ modules (files, backends) can reach it. */
#include "../ref/ref.h"
struct kvr_cache {
    int n_layers, n_kv_heads, n_q_heads, head_dim, group;
    kvr_config cfg;
    kvr_backend backend;
    ref_head **heads;    /* [n_layers][n_kv_heads] */
    ref_work work;       /* attention workspace, grown on demand */
    void *backend_state; /* the CUDA backend's device state, the CPU backend's pool, or NULL */
};

/* lib/cache.c: KVR_OK when c is a live cache (made by kvr_cache_create and
 * not freed), else a KVR_EINVAL failure naming fn; never reads *c to decide. */
int kvr_check_cache(const kvr_cache *c, const char *fn);

/* lib/budget.c (spec §18.5, §18.6): bytes of one token's key and value in an
 * exact part (in elem, or quantized by cfg->store), and of KIVI's body of
 * capacity Q with groups of G at `bits` bits in element size e. */
size_t kvr_exact_token_bytes(const kvr_config *cfg, int head_dim);
size_t kvr_kivi_body_bytes(size_t Q, size_t G, size_t D, size_t e, int bits);

#ifdef KVR_HAVE_CUDA
/* cuda/device.cu: number of usable CUDA devices (0 when none or no driver). */
int kvr_cuda_device_count(void);
#endif

#endif
