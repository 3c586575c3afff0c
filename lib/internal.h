/* internal.h: helpers shared by lib/ and ref/ (not installed). */
#ifndef KVR_INTERNAL_H
#define KVR_INTERNAL_H

#include "kvreviver.h"

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

/* Record a failure: format the message, call the handler, return status. */
int kvr_fail(int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Storage conversions (spec §4): float32 -> element bits and back.  The
 * conversion rounds to nearest, ties to even.  kvr_elem_store returns
 * KVR_ERANGE when a finite value overflows the element type. */
int kvr_elem_store(kvr_elem elem, float x, void *dst, size_t index);
float kvr_elem_load(kvr_elem elem, const void *src, size_t index);
/* n elements from index `at` as float32, the same values kvr_elem_load
 * gives one by one (the type is looked at once, not per element). */
void kvr_elem_load_row(kvr_elem elem, const void *src, size_t at, size_t n, float *dst /*[n]*/);
uint16_t kvr_f32_to_f16(float x);
float kvr_f16_to_f32(uint16_t h);
uint16_t kvr_f32_to_bf16(float x);
float kvr_bf16_to_f32(uint16_t b);

/* lib/budget.c (spec §18.5, §18.6): bytes of one token's key and value in an
 * exact part (in elem, or quantized by cfg->store), and of KIVI's body of
 * capacity Q with groups of G at `bits` bits in element size e. */
size_t kvr_exact_token_bytes(const kvr_config *cfg, int head_dim);
size_t kvr_kivi_body_bytes(size_t Q, size_t G, size_t D, size_t e, int bits);

/* lib/alloc.c: the library's allocator, with a fault-injection hook for
 * tests: kvr_alloc_fail_at(k) makes the k-th allocation from now fail
 * (k = 0 turns it off). */
void *kvr_malloc(size_t size);
void *kvr_calloc(size_t count, size_t size);
void kvr_free(void *p);
void kvr_alloc_fail_at(long k);

/* 1 when all n values are finite. */
int kvr_all_finite(const float *x, size_t n);

#ifdef KVR_HAVE_CUDA
/* cuda/device.cu: number of usable CUDA devices (0 when none or no driver). */
int kvr_cuda_device_count(void);
#endif

#endif
