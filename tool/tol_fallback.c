/* tol_fallback.c: TEMPORARY stand-in for lib/tolerance.c (spec §14).
 *
 * *** TEMPORARY ***  The spec area implements the tolerance model in
 * lib/tolerance.c (API: lib/tolerance.h).  Until it lands, the vectors tool
 * links this file instead.  At merge, delete this file and its line in
 * tool/vectors.mk so that the tool uses lib/tolerance.c, then regenerate
 * tests/vectors/ (`kvreviver vectors --out tests/vectors`).
 *
 * The bounds below are first-order forward error bounds of recursive float32
 * arithmetic (Higham, Accuracy and Stability of Numerical Algorithms, ch. 3):
 * a sum of L terms computed in any order is within gamma_{L-1} * sum|terms|
 * of the exact sum; one rounding is within u * |result|.  Each function
 * bounds one implementation's distance E from exact arithmetic on the same
 * stored inputs, and returns 2E: the reference and a port may each be E
 * away, in opposite directions.  Assumption: expf is within 1 ulp. */
#include <config.h>
#include <math.h>
#include <string.h>
#include "internal.h"
#include "tolerance.h"

#define U64 1.1102230246251565e-16   /* 2^-53, unit roundoff of float64 */

double kvr_gamma(double n)
{
    double nu = n * KVR_U32;
    return n <= 0 ? 0.0 : nu / (1.0 - nu);
}

static double gamma64(double n)
{
    return n <= 0 ? 0.0 : n * U64 / (1.0 - n * U64);
}

/* Per bucket (r, b) and coordinate i, the sums of |k| and |v| of the vague
 * tokens hashed there ([d][w][D] each, float64), from the stored k and v of
 * every position ([n][D]).  Also the per-coordinate sums of |k| and |v| over
 * the whole vague part ([D] each).  Returns KVR_ENOMEM or KVR_OK. */
typedef struct {
    double *abs_k, *abs_v;       /* [d][w][D] */
    double *all_k, *all_v;       /* [D] */
} abs_sums;

static void abs_free(abs_sums *a)
{
    kvr_free(a->abs_k); kvr_free(a->abs_v); kvr_free(a->all_k); kvr_free(a->all_v);
    memset(a, 0, sizeof *a);
}

static int abs_build(const ref_head *h, const float *k, const float *v, abs_sums *a)
{
    size_t D = (size_t)h->head_dim, d = (size_t)h->cfg.depth, w = (size_t)h->cfg.width;
    memset(a, 0, sizeof *a);
    a->abs_k = kvr_calloc(d * w * D + 1, sizeof(double));
    a->abs_v = kvr_calloc(d * w * D + 1, sizeof(double));
    a->all_k = kvr_calloc(D, sizeof(double));
    a->all_v = kvr_calloc(D, sizeof(double));
    if (!a->abs_k || !a->abs_v || !a->all_k || !a->all_v) {
        abs_free(a);
        return kvr_fail(KVR_ENOMEM, "tolerance workspace");
    }
    for (long t = 0; t < h->n; t++) {
        if (ref_part_of(h, t) != KVR_PART_VAGUE)
            continue;
        const float *kt = k + (size_t)t * D, *vt = v + (size_t)t * D;
        for (size_t r = 0; r < d; r++) {
            uint64_t x = kvr_hash(h->cfg.seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)t);
            size_t b = r * w + kvr_hash_bucket(x, (uint32_t)w);
            for (size_t i = 0; i < D; i++) {
                a->abs_k[b * D + i] += fabs((double)kt[i]);
                a->abs_v[b * D + i] += fabs((double)vt[i]);
            }
        }
        for (size_t i = 0; i < D; i++) {
            a->all_k[i] += fabs((double)kt[i]);
            a->all_v[i] += fabs((double)vt[i]);
        }
    }
    return KVR_OK;
}

/* E of one bucket sum: L terms summed recursively from 0. */
static double sum_error(int load, double abs_sum)
{
    return kvr_gamma(load - 1) * abs_sum;
}

int kvr_tol_sketch(const ref_head *h, const float *k, const float *v, float *tol_k, float *tol_v)
{
    if (!h || !k || !v || !tol_k || !tol_v)
        return kvr_fail(KVR_EINVAL, "kvr_tol_sketch: NULL argument");
    if (!ref_has_sketch(h))
        return KVR_OK;
    abs_sums a;
    int status = abs_build(h, k, v, &a);
    if (status != KVR_OK)
        return status;
    size_t D = (size_t)h->head_dim, dw = (size_t)h->cfg.depth * (size_t)h->cfg.width;
    for (size_t b = 0; b < dw; b++)
        for (size_t i = 0; i < D; i++) {
            tol_k[b * D + i] = (float)(2.0 * sum_error(h->sk_load[b], a.abs_k[b * D + i]));
            tol_v[b * D + i] = (float)(2.0 * sum_error(h->sk_load[b], a.abs_v[b * D + i]));
        }
    abs_free(&a);
    return KVR_OK;
}

/* E of one coordinate of one of key or value (spec §8): the row estimates
 *   e_r = s (alpha (S - c mu)) + mu
 * with S off by E_S (the bucket sum), mu off by E_mu (the float64 running
 * sum, its division and its rounding to float32), then four float32
 * roundings; the median moves no more than its worst row (it is
 * 1-Lipschitz in the max norm), the mean by the average row error plus the
 * rounding of its d-term sum and division. */
static double estimate_error(const ref_head *h, long pos, int i, const float *sums,
                             const double *running, const double *abs_bucket, const double *abs_all)
{
    int D = h->head_dim, d = h->cfg.depth, w = h->cfg.width;
    double mu = 0.0, e_mu = 0.0;
    if (running && h->n_vague > 0) {
        mu = fabs(running[i] / (double)h->n_vague);
        e_mu = KVR_U32 * mu + gamma64((double)h->n_vague + 1) * abs_all[i] / (double)h->n_vague;
    }
    double worst = 0.0, total = 0.0, mag = 0.0;
    for (int r = 0; r < d; r++) {
        uint64_t x = kvr_hash(h->cfg.seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)pos);
        size_t b = (size_t)r * w + kvr_hash_bucket(x, (uint32_t)w);
        double S = fabs((double)sums[b * D + i]), c = fabs((double)h->sk_count[b]);
        double alpha = h->cfg.shrink ? 1.0 / (double)h->sk_load[b] : 1.0;
        double e_s = sum_error(h->sk_load[b], abs_bucket[b * D + i]);
        double inner = S + c * mu;
        double e_r = alpha * (e_s + c * e_mu + 4.0 * KVR_U32 * inner)
                   + e_mu + KVR_U32 * (alpha * inner + mu);
        if (e_r > worst) worst = e_r;
        total += e_r;
        mag += alpha * inner + mu;
    }
    if (h->cfg.rows == KVR_ROWS_MEDIAN)
        return worst + KVR_U32 * mag;                     /* even d: 0.5f * (lo + hi) */
    return total / d + kvr_gamma(d + 1) * mag / d;
}

/* Fill tol_k, tol_v ([D]) for position pos: 0 for exact and dropped ones. */
static void reconstruct_tol(const ref_head *h, long pos, const abs_sums *a, float *tol_k, float *tol_v)
{
    int D = h->head_dim;
    for (int i = 0; i < D; i++) {
        tol_k[i] = tol_v[i] = 0.0f;
        if (ref_part_of(h, pos) != KVR_PART_VAGUE)
            continue;
        tol_k[i] = (float)(2.0 * estimate_error(h, pos, i, h->sk_k, h->sum_k, a->abs_k, a->all_k));
        tol_v[i] = (float)(2.0 * estimate_error(h, pos, i, h->sk_v, h->sum_v, a->abs_v, a->all_v));
    }
}

int kvr_tol_reconstruct(const ref_head *h, const float *k, const float *v, long pos,
                        float *tol_k, float *tol_v)
{
    if (!h || !k || !v || !tol_k || !tol_v || pos < 0 || pos >= h->n)
        return kvr_fail(KVR_EINVAL, "kvr_tol_reconstruct: bad argument (pos %ld)", pos);
    if (ref_part_of(h, pos) != KVR_PART_VAGUE) {
        memset(tol_k, 0, (size_t)h->head_dim * sizeof(float));
        memset(tol_v, 0, (size_t)h->head_dim * sizeof(float));
        return KVR_OK;
    }
    abs_sums a;
    int status = abs_build(h, k, v, &a);
    if (status != KVR_OK)
        return status;
    reconstruct_tol(h, pos, &a, tol_k, tol_v);
    abs_free(&a);
    return KVR_OK;
}

/* Attention (spec §11), per query head and coordinate i.  With the key of
 * position t off by Ek_t (its reconstruction error, 0 when exact), the logit
 * l_t = (q . k_t) / sqrt(D) is off by
 *   dl_t = (gamma_{D+2} sum_i |q_i k_ti| + sum_i |q_i| Ek_ti) / sqrt(D)
 * and exp(l_t - max) by a further u |l_t - max| + 2u (subtraction and expf;
 * a common shift of every logit cancels in the softmax).  The weights
 * P_t = p_t / sum p become P'_t = P_t e^{eps_t} / Z with |eps_t| <= dl_t and
 * Z = sum_u P_u e^{eps_u}, |Z - 1| <= z = sum_u P_u (e^{dl_u} - 1), so
 * |P'_t - P_t| <= P_t (e^{dl_t} - 1 + z) / (1 - z), and the output, a
 * weighted mean, moves by at most
 *   sum_t P_t (e^{dl_t} - 1 + z) / (1 - z) |v_ti - out_i|     (weights)
 * + sum_t P_t e^{dl_t} / (1 - z) Ev_ti                          (values)
 * + gamma_{n+1} (sum_t P_t |v_ti| + |out_i|)   (the two n-term sums, the division).
 * Tokens of negligible weight contribute negligibly.  When z >= 1/2 the
 * bound falls back to the convex hull: max_t |v_ti - out_i| + max_t Ev_ti. */
int kvr_tol_attend(const ref_head *h, const float *k, const float *v, int group,
                   const float *q, float *tol_out)
{
    if (!h || !k || !v || !q || !tol_out || group < 1 || h->n < 1)
        return kvr_fail(KVR_EINVAL, "kvr_tol_attend: bad argument");
    size_t D = (size_t)h->head_dim, n = (size_t)h->n;
    abs_sums a = {0};
    int sketch = ref_has_sketch(h), status = KVR_OK;
    if (sketch && (status = abs_build(h, k, v, &a)) != KVR_OK)
        return status;
    float *seen_k = kvr_malloc(n * D * sizeof(float)), *seen_v = kvr_malloc(n * D * sizeof(float));
    float *ek = kvr_calloc(n * D, sizeof(float)), *ev = kvr_calloc(n * D, sizeof(float));
    double *logit = kvr_malloc(n * sizeof(double)), *p = kvr_malloc(n * sizeof(double));
    double *grow = kvr_malloc(n * sizeof(double));
    unsigned char *held = kvr_malloc(n);
    if (!seen_k || !seen_v || !ek || !ev || !logit || !p || !grow || !held) {
        status = kvr_fail(KVR_ENOMEM, "kvr_tol_attend: workspace for %zu positions", n);
        goto done;
    }
    for (size_t t = 0; t < n; t++) {           /* what attention sees, and its error */
        kvr_part part = ref_part_of(h, (long)t);
        held[t] = part != KVR_PART_DROPPED;
        if (part == KVR_PART_VAGUE) {
            ref_reconstruct(h, (long)t, seen_k + t * D, seen_v + t * D);
            reconstruct_tol(h, (long)t, &a, ek + t * D, ev + t * D);
            for (size_t i = 0; i < D; i++) {   /* one implementation's share */
                ek[t * D + i] *= 0.5f;
                ev[t * D + i] *= 0.5f;
            }
        } else if (held[t]) {
            ref_exact_kv(h, (long)t, seen_k + t * D, seen_v + t * D);
        }
    }
    double scale = 1.0 / sqrt((double)D);
    for (int g = 0; g < group; g++) {
        const float *qg = q + (size_t)g * D;
        double max = -INFINITY, sum = 0.0, z = 0.0;
        size_t n_held = 0;
        for (size_t t = 0; t < n; t++) {
            if (!held[t]) continue;
            double dot = 0.0, adot = 0.0, edot = 0.0;
            for (size_t i = 0; i < D; i++) {
                dot += (double)qg[i] * seen_k[t * D + i];
                adot += fabs((double)qg[i] * seen_k[t * D + i]);
                edot += fabs((double)qg[i]) * ek[t * D + i];
            }
            logit[t] = dot * scale;
            grow[t] = (kvr_gamma((double)D + 2) * adot + edot) * scale;   /* dl_t, for now */
            if (logit[t] > max) max = logit[t];
            n_held++;
        }
        for (size_t t = 0; t < n; t++) {
            if (!held[t]) continue;
            double dl = grow[t] + KVR_U32 * fabs(logit[t] - max) + 2.0 * KVR_U32;
            grow[t] = expm1(dl);                                           /* e^{dl_t} - 1 */
            p[t] = exp(logit[t] - max);
            sum += p[t];
        }
        for (size_t t = 0; t < n; t++)
            if (held[t]) {
                p[t] /= sum;                                               /* P_t */
                z += p[t] * grow[t];
            }
        for (size_t i = 0; i < D; i++) {
            double out = 0.0, aout = 0.0, e_w = 0.0, e_v = 0.0, spread = 0.0, ev_max = 0.0;
            for (size_t t = 0; t < n; t++)
                if (held[t]) out += p[t] * seen_v[t * D + i];
            for (size_t t = 0; t < n; t++) {
                if (!held[t]) continue;
                double vt = seen_v[t * D + i], dv = fabs(vt - out);
                aout += p[t] * fabs(vt);
                e_w += p[t] * (grow[t] + z) * dv;
                e_v += p[t] * (1.0 + grow[t]) * ev[t * D + i];
                if (dv > spread) spread = dv;
                if (ev[t * D + i] > ev_max) ev_max = ev[t * D + i];
            }
            double e = z < 0.5 ? (e_w + e_v) / (1.0 - z) : spread + ev_max;
            e += kvr_gamma((double)n_held + 1) * (aout + fabs(out));
            tol_out[(size_t)g * D + i] = (float)(2.0 * e);
        }
    }
done:
    kvr_free(seen_k); kvr_free(seen_v); kvr_free(ek); kvr_free(ev);
    kvr_free(logit); kvr_free(p); kvr_free(grow); kvr_free(held);
    if (sketch) abs_free(&a);
    return status;
}
