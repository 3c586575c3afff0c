/* workload.c: synthetic attention workloads (doc/eval.md §2).
 *
 * synthetic: per KV head, keys k_t = o + U z_t + e_t, with a per-channel
 *   offset o ~ N(0, 2^2) (real keys carry large channel offsets), a rank-4
 *   part U z_t whose latent z_t drifts as an AR(1) process (rho = 0.98), so
 *   neighbouring tokens look alike and queries favour the recent window, and
 *   noise e_t ~ N(0, 0.5^2).  About 2% of positions are heavy hitters: their
 *   keys also carry 3 * a for a per-head unit direction a.  Values are
 *   N(0, 1).  The query of step t is q_t = U z_t / 2 + 1.5 a + N(0, 0.5^2)
 *   per query head, so attention mixes the recent window and the heavy
 *   hitters.
 * needle: the synthetic context, plus n_needles positions whose keys are
 *   3 * b_j for per-needle unit directions b_j orthogonal to a in
 *   expectation; queries during the context never seek them.  The last
 *   decode steps query 4 * b_j: each such step seeks one needle. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "kvreviver.h"
#include "workload.h"

void kvr_workload_free(kvr_workload *w)
{
    if (!w) return;
    free(w->q); free(w->k); free(w->v);
    free(w->needle_pos); free(w->needle_step);
    memset(w, 0, sizeof *w);
}

static int alloc_arrays(kvr_workload *w, const kvr_workload_shape *s, int context)
{
    memset(w, 0, sizeof *w);
    if (context < 2 || s->decode_steps < 1 || s->decode_steps >= context)
        return KVR_EINVAL;
    w->n = context;
    w->n_prefill = context - s->decode_steps;
    w->n_kv_heads = s->n_kv_heads;
    w->n_q_heads = s->n_q_heads;
    w->head_dim = s->head_dim;
    size_t nk = (size_t)context * s->n_kv_heads * s->head_dim;
    size_t nq = (size_t)context * s->n_q_heads * s->head_dim;
    w->k = malloc(nk * sizeof(float));
    w->v = malloc(nk * sizeof(float));
    w->q = malloc(nq * sizeof(float));
    if (!w->k || !w->v || !w->q) {
        kvr_workload_free(w);
        return KVR_ENOMEM;
    }
    return KVR_OK;
}

static void unit_vector(gsl_rng *r, int D, double *a)
{
    double norm = 0.0;
    for (int i = 0; i < D; i++) { a[i] = gsl_ran_gaussian(r, 1.0); norm += a[i] * a[i]; }
    norm = sqrt(norm);
    for (int i = 0; i < D; i++) a[i] /= norm;
}

/* Fill keys, values and queries of one KV head and its query heads. */
static void synth_head(kvr_workload *w, int h, gsl_rng *r, const unsigned char *needle_mask)
{
    enum { RANK = 4 };
    int D = w->head_dim, G = w->n_q_heads / w->n_kv_heads;
    double *o = malloc(sizeof(double) * (size_t)D), *a = malloc(sizeof(double) * (size_t)D);
    double *U = malloc(sizeof(double) * (size_t)D * RANK), z[RANK], *uz = malloc(sizeof(double) * (size_t)D);
    for (int i = 0; i < D; i++) o[i] = gsl_ran_gaussian(r, 2.0);
    unit_vector(r, D, a);
    for (int i = 0; i < D * RANK; i++) U[i] = gsl_ran_gaussian(r, 1.0);
    for (int j = 0; j < RANK; j++) z[j] = gsl_ran_gaussian(r, 1.0);
    const double rho = 0.98, innov = sqrt(1.0 - rho * rho);
    for (int t = 0; t < w->n; t++) {
        for (int j = 0; j < RANK; j++) z[j] = rho * z[j] + innov * gsl_ran_gaussian(r, 1.0);
        for (int i = 0; i < D; i++) {
            uz[i] = 0.0;
            for (int j = 0; j < RANK; j++) uz[i] += U[i * RANK + j] * z[j];
        }
        int heavy = t > 0 && gsl_rng_uniform(r) < 0.02;
        float *k = w->k + ((size_t)t * w->n_kv_heads + h) * D;
        float *v = w->v + ((size_t)t * w->n_kv_heads + h) * D;
        for (int i = 0; i < D; i++) {
            k[i] = (float)(o[i] + uz[i] + gsl_ran_gaussian(r, 0.5) + (heavy ? 3.0 * a[i] : 0.0));
            v[i] = (float)gsl_ran_gaussian(r, 1.0);
        }
        (void)needle_mask;
        for (int g = 0; g < G; g++) {
            float *q = w->q + ((size_t)t * w->n_q_heads + (size_t)h * G + g) * D;
            for (int i = 0; i < D; i++)
                q[i] = (float)(0.5 * uz[i] + 1.5 * a[i] + gsl_ran_gaussian(r, 0.5));
        }
    }
    free(o); free(a); free(U); free(uz);
}

int kvr_workload_synthetic(kvr_workload *w, const kvr_workload_shape *s, int context, uint64_t seed)
{
    int status = alloc_arrays(w, s, context);
    if (status != KVR_OK) return status;
    snprintf(w->name, sizeof w->name, "synthetic");
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) { kvr_workload_free(w); return KVR_ENOMEM; }
    gsl_rng_set(r, (unsigned long)seed);
    for (int h = 0; h < s->n_kv_heads; h++)
        synth_head(w, h, r, NULL);
    gsl_rng_free(r);
    return KVR_OK;
}

int kvr_workload_needle(kvr_workload *w, const kvr_workload_shape *s, int context, uint64_t seed)
{
    int status = kvr_workload_synthetic(w, s, context, seed);
    if (status != KVR_OK) return status;
    snprintf(w->name, sizeof w->name, "needle");
    int D = w->head_dim, G = w->n_q_heads / w->n_kv_heads;
    int steps = w->n - w->n_prefill;
    w->n_needles = steps;
    w->needle_pos = malloc(sizeof(int) * (size_t)steps);
    w->needle_step = malloc(sizeof(int) * (size_t)steps);
    double *b = malloc(sizeof(double) * (size_t)D);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!w->needle_pos || !w->needle_step || !b || !r) {
        free(b); if (r) gsl_rng_free(r);
        kvr_workload_free(w);
        return KVR_ENOMEM;
    }
    gsl_rng_set(r, (unsigned long)(seed ^ 0x6E6565646C65ULL));
    for (int j = 0; j < steps; j++) {
        /* needles spread over the middle of the prefill, away from sinks and window */
        int lo = 8, hi = w->n_prefill * 3 / 4;
        w->needle_pos[j] = lo + (int)gsl_rng_uniform_int(r, (unsigned long)(hi - lo));
        w->needle_step[j] = w->n_prefill + j;
        for (int h = 0; h < w->n_kv_heads; h++) {
            unit_vector(r, D, b);
            float *k = w->k + ((size_t)w->needle_pos[j] * w->n_kv_heads + h) * D;
            for (int i = 0; i < D; i++)
                k[i] = (float)(3.0 * b[i] * sqrt((double)D));
            for (int g = 0; g < G; g++) {
                float *q = w->q + ((size_t)w->needle_step[j] * w->n_q_heads + (size_t)h * G + g) * D;
                for (int i = 0; i < D; i++)
                    q[i] = (float)(4.0 * b[i] * sqrt((double)D) / 3.0);
            }
        }
    }
    free(b);
    gsl_rng_free(r);
    return KVR_OK;
}
