/* base.h: the bottom layer's primitives (base/README), declared for the
 * layers above (ref/, lib/, cuda/); not installed.  Errors (spec §12,
 * base/error.c), storage types (spec §4, base/elem.c), the hash (spec §5,
 * base/hash.c, declared in kvreviver.h) and allocation (base/alloc.c).
 * Nothing here calls up: base/ includes only kvreviver.h (the types every
 * layer shares) and itself. */
#ifndef KVR_BASE_H
#define KVR_BASE_H

#include <stddef.h>
#include <stdint.h>
#include "kvreviver.h"

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

/* base/alloc.c: the library's allocator, with a fault-injection hook for
 * tests: kvr_alloc_fail_at(k) makes the k-th allocation from now fail
 * (k = 0 turns it off), and a record of the largest request. */
void *kvr_malloc(size_t size);
void *kvr_calloc(size_t count, size_t size);
void kvr_free(void *p);
void kvr_alloc_fail_at(long k);
/* The largest single request since kvr_alloc_largest_reset(), on the calling
 * thread (the fuzz targets' bound on what a parser may allocate). */
size_t kvr_alloc_largest(void);
void kvr_alloc_largest_reset(void);

/* 1 when all n values are finite. */
int kvr_all_finite(const float *x, size_t n);

#endif
