/* tolerance.h: the tolerance model for comparing two implementations
 * (spec §14).  Internal to the project (tests, vectors, validate). */
#ifndef KVR_TOLERANCE_H
#define KVR_TOLERANCE_H

#include "kvreviver.h"
#include "../ref/ref.h"

/* unit roundoff of float32 */
#define KVR_U32 5.9604644775390625e-08   /* 2^-24 */

/* gamma_n = n u / (1 - n u): the relative error bound of n float32
 * operations in sequence (Higham, Accuracy and Stability, §3.1). */
double kvr_gamma(double n);

/* Per-element absolute tolerances (spec §14) for the values a second
 * implementation may produce where the reference produced h's state.  k, v
 * are the keys and values of every position 0..h->n-1 as stored (rounded to
 * the element type; with quantized storage or KIVI, dequantized: spec
 * §18.7), [n][D].  Each returns KVR_OK or an error code. */
int kvr_tol_sketch(const ref_head *h, const float *k, const float *v,
                   float *tol_k /*[d][w][D]*/, float *tol_v /*[d][w][D]*/);
int kvr_tol_reconstruct(const ref_head *h, const float *k, const float *v, long pos,
                        float *tol_k /*[D]*/, float *tol_v /*[D]*/);
/* kvr_tol_attend covers both routes: spec §14.4 (reconstruct) and §14.8
 * (the moment route; KVR_EINVAL when revival is on). */
int kvr_tol_attend(const ref_head *h, const float *k, const float *v, int group,
                   const float *q /*[group][D]*/, float *tol_out /*[group][D]*/);

#endif
