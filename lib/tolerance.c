/* tolerance.c: the tolerance model (spec §14).
 *
 * Two conforming implementations agree bit for bit on every integer part
 * (hash, buckets, signs, counts, loads, partitions, positions).  Their float
 * results may differ, because float32 sums may be taken in another order.
 * This file computes, for each float quantity, an absolute per-element
 * tolerance for that difference.  The method (doc/tolerance.md):
 *
 *   1. Bound B, the distance from one implementation's result to the same
 *      formula evaluated in exact real arithmetic on the same stored inputs,
 *      from the standard model fl(a op b) = (a op b)(1 + theta), |theta| <= u,
 *      u = 2^-24, and gamma_n = n u / (1 - n u) for n operations in a chain.
 *   2. Two implementations that each stay within B of the exact value stay
 *      within 2B of each other: the tolerance is 2B.
 *
 * Magnitudes come from the stored inputs (sums of absolute values), so the
 * tolerance scales with the data.  Every bound is computed in float64 and
 * rounded up when it is stored as float32.  The float64 arithmetic here has
 * relative error below 2^-40 for any context the library accepts; the final
 * factor SLACK64 covers it. */
#include <config.h>
#include <math.h>
#include <string.h>
#include "internal.h"
#include "tolerance.h"

#define U32 KVR_U32
#define U64 1.1102230246251565e-16       /* 2^-53 */
#define SLACK64 (1.0 + 9.094947017729282e-13)   /* 1 + 2^-40 */

double kvr_gamma(double n)
{
    if (!(n > 0.0))
        return 0.0;
    double nu = n * U32;
    return nu < 1.0 ? nu / (1.0 - nu) : INFINITY;
}

/* gamma_n of float64 arithmetic (the running sums of spec §7.4). */
static double gamma64(double n)
{
    if (!(n > 0.0))
        return 0.0;
    double nu = n * U64;
    return nu < 1.0 ? nu / (1.0 - nu) : INFINITY;
}

/* x as float32, never below x (a tolerance must not shrink when stored). */
static float round_up(double x)
{
    x *= SLACK64;
    float f = (float)x;
    if ((double)f < x)
        f = nextafterf(f, INFINITY);
    return f;
}

/* What the bounds need to know about the vague part: per bucket and
 * coordinate the sum of absolute values of the tokens in it, and per
 * coordinate the mean absolute value of all vague tokens. */
typedef struct {
    double *abs_k, *abs_v;     /* [d][w][D] sum of |x_u,i| over the bucket's tokens */
    double *mabs_k, *mabs_v;   /* [D] sum of |x_u,i| over vague tokens / n_vague */
} vague_mag;

static void mag_free(vague_mag *m)
{
    kvr_free(m->abs_k); kvr_free(m->abs_v);
    kvr_free(m->mabs_k); kvr_free(m->mabs_v);
    memset(m, 0, sizeof *m);
}

/* Build the magnitudes from the stored keys and values of every position
 * (k, v: [n][D]).  Returns KVR_OK, or KVR_ENOMEM with nothing allocated. */
static int mag_build(const ref_head *h, const float *k, const float *v, vague_mag *m)
{
    size_t D = (size_t)h->head_dim, d = (size_t)h->cfg.depth, w = (size_t)h->cfg.width;
    memset(m, 0, sizeof *m);
    m->abs_k = kvr_calloc(d * w * D, sizeof(double));
    m->abs_v = kvr_calloc(d * w * D, sizeof(double));
    m->mabs_k = kvr_calloc(D, sizeof(double));
    m->mabs_v = kvr_calloc(D, sizeof(double));
    if (!m->abs_k || !m->abs_v || !m->mabs_k || !m->mabs_v) {
        mag_free(m);
        return kvr_fail(KVR_ENOMEM, "tolerance: magnitudes of a %zu x %zu x %zu sketch", d, w, D);
    }
    long n_vague = 0;
    for (long t = 0; t < h->n; t++) {
        if (ref_part_of(h, t) != KVR_PART_VAGUE)
            continue;
        n_vague++;
        const float *kt = k + (size_t)t * D, *vt = v + (size_t)t * D;
        for (size_t r = 0; r < d; r++) {
            float sign;
            size_t b = ref_bucket(h, (int)r, t, &sign);
            for (size_t i = 0; i < D; i++) {
                m->abs_k[b * D + i] += fabs((double)kt[i]);
                m->abs_v[b * D + i] += fabs((double)vt[i]);
            }
        }
        for (size_t i = 0; i < D; i++) {
            m->mabs_k[i] += fabs((double)kt[i]);
            m->mabs_v[i] += fabs((double)vt[i]);
        }
    }
    if (n_vague > 0)
        for (size_t i = 0; i < D; i++) {
            m->mabs_k[i] /= (double)n_vague;
            m->mabs_v[i] /= (double)n_vague;
        }
    return KVR_OK;
}

/* spec §14.2: bound on one implementation's error in a bucket sum of m
 * terms with absolute sum A: (m-1) additions in any order give gamma_{m-1} A;
 * we allow gamma_m A, which also covers a float64 accumulator rounded once. */
static double bound_sum(double m, double A)
{
    return kvr_gamma(m) * A;
}

/* spec §14.3: bound on one implementation's error in mu = (float)(sum / n),
 * sum accumulated in float64 over n terms in any order; M = mean |x|. */
static double bound_mean(long n, double M)
{
    double e64 = gamma64((double)n) * M;      /* n-1 additions and one division */
    return e64 + U32 * (M + e64);             /* rounding the quotient to float32 */
}

/* spec §14.3: bound on one implementation's error in coordinate i of the
 * reconstruction of the vague token at pos, and (through *mag) a bound on
 * the magnitude of the exact value.  mabs is the mean |x| of the vague part,
 * absum the [d][w][D] bucket absolute sums, counts and loads from h. */
static double bound_reconstruct_one(const ref_head *h, long pos, int i,
                                    const double *absum, const double *mabs)
{
    int D = h->head_dim, d = h->cfg.depth;
    int centre = h->sum_k != NULL, shrink = h->cfg.shrink;
    double M = centre && h->n_vague > 0 ? mabs[i] : 0.0;
    double em = centre && h->n_vague > 0 ? bound_mean(h->n_vague, M) : 0.0;
    double max_err = 0.0, max_mag = 0.0, sum_err = 0.0, sum_mag = 0.0;
    for (int r = 0; r < d; r++) {
        float sign;
        size_t b = ref_bucket(h, r, pos, &sign);
        double m = (double)h->sk_load[b], c = fabs((double)h->sk_count[b]);
        double A = absum[b * D + i];
        double eS = bound_sum(m, A);
        /* centred = S - c*mu: one product (and the conversion of c), one
         * subtraction; |S| <= A, |c mu| <= c M */
        double eZ = eS, zmag = A;
        if (centre) {
            double pm = c * (M + em);
            eZ = eS + c * em + kvr_gamma(2) * pm + U32 * (A * (1.0 + kvr_gamma(m)) + pm * (1.0 + kvr_gamma(2)));
            zmag = A + c * M;
        }
        /* alpha * centred: alpha = 1/load costs a conversion, a division
         * and the product: gamma_3 */
        double eY = eZ, ymag = zmag;
        if (shrink) {
            eY = eZ / m + kvr_gamma(3) * (zmag + eZ) / m;
            ymag = zmag / m;
        }
        /* sign * y + mu: the sign is exact, the addition rounds once */
        double eE = eY + em + U32 * (ymag + eY + M + em);
        double emag = ymag + M;
        if (eE > max_err) max_err = eE;
        if (emag > max_mag) max_mag = emag;
        sum_err += eE;
        sum_mag += emag + eE;
    }
    if (h->cfg.rows == KVR_ROWS_MEAN)         /* d-1 additions, one division */
        return sum_err / d + kvr_gamma(d + 1) * sum_mag / d;
    if (d % 2 == 1)                           /* the median is 1-Lipschitz */
        return max_err;
    return max_err + U32 * (max_mag + max_err);   /* 0.5f * (lo + hi) */
}

int kvr_tol_sketch(const ref_head *h, const float *k, const float *v,
                   float *tol_k /*[d][w][D]*/, float *tol_v /*[d][w][D]*/)
{
    if (!h || !k || !v || !tol_k || !tol_v)
        return kvr_fail(KVR_EINVAL, "kvr_tol_sketch: an argument is NULL");
    if (!ref_has_sketch(h))
        return KVR_OK;                        /* no sketch: nothing to bound */
    vague_mag m;
    int status = mag_build(h, k, v, &m);
    if (status != KVR_OK)
        return status;
    size_t D = (size_t)h->head_dim, dw = (size_t)h->cfg.depth * (size_t)h->cfg.width;
    for (size_t b = 0; b < dw; b++)
        for (size_t i = 0; i < D; i++) {
            double load = (double)h->sk_load[b];
            tol_k[b * D + i] = round_up(2.0 * bound_sum(load, m.abs_k[b * D + i]));
            tol_v[b * D + i] = round_up(2.0 * bound_sum(load, m.abs_v[b * D + i]));
        }
    mag_free(&m);
    return KVR_OK;
}

int kvr_tol_reconstruct(const ref_head *h, const float *k, const float *v, long pos,
                        float *tol_k /*[D]*/, float *tol_v /*[D]*/)
{
    if (!h || !k || !v || !tol_k || !tol_v)
        return kvr_fail(KVR_EINVAL, "kvr_tol_reconstruct: an argument is NULL");
    if (pos < 0 || pos >= h->n)
        return kvr_fail(KVR_EINVAL, "kvr_tol_reconstruct: pos = %ld is not in [0, %ld)", pos, h->n);
    int D = h->head_dim;
    kvr_part part = ref_part_of(h, pos);
    if (part == KVR_PART_DROPPED)
        return kvr_fail(KVR_EDROPPED, "kvr_tol_reconstruct: position %ld was dropped", pos);
    if (part != KVR_PART_VAGUE) {             /* exact parts are bit-exact */
        for (int i = 0; i < D; i++)
            tol_k[i] = tol_v[i] = 0.0f;
        return KVR_OK;
    }
    vague_mag m;
    int status = mag_build(h, k, v, &m);
    if (status != KVR_OK)
        return status;
    for (int i = 0; i < D; i++) {
        tol_k[i] = round_up(2.0 * bound_reconstruct_one(h, pos, i, m.abs_k, m.mabs_k));
        tol_v[i] = round_up(2.0 * bound_reconstruct_one(h, pos, i, m.abs_v, m.mabs_v));
    }
    mag_free(&m);
    return KVR_OK;
}

/* spec §14.8: the moment route (spec §17), revival off.  One
 * implementation's distance from exact arithmetic on the same stored
 * inputs, B, as derived in doc/tolerance.md §14.8; the tolerance is 2B. */
static int tol_moment(const ref_head *h, const float *k, const float *v, int group,
                      const float *q /*[group][D]*/, float *tol_out /*[group][D]*/)
{
    size_t D = (size_t)h->head_dim, n = (size_t)h->n, dw = (size_t)h->cfg.depth * (size_t)h->cfg.width;
    double d = (double)h->cfg.depth, nv = (double)h->n_vague, dn = d * nv;
    vague_mag m = {0};
    double *logit = kvr_malloc((n + 1) * sizeof(double));   /* [n + 1]: exact positions, then the bulk */
    double *delta = kvr_malloc((n + 1) * sizeof(double));
    double *P = kvr_malloc(dw * sizeof(double)), *eP = kvr_malloc(dw * sizeof(double));
    double *emu = kvr_malloc(2 * D * sizeof(double));       /* [2][D] e_mu of keys, values */
    unsigned char *held = kvr_malloc(n + 1);
    int status = KVR_OK;
    if (!logit || !delta || !P || !eP || !emu || !held)
        status = kvr_fail(KVR_ENOMEM, "kvr_tol_attend: moment workspace for %zu positions, %zu buckets", n, dw);
    if (status == KVR_OK)
        status = mag_build(h, k, v, &m);
    if (status != KVR_OK)
        goto done;
    for (size_t i = 0; i < D; i++) {
        emu[i] = bound_mean(h->n_vague, m.mabs_k[i]);
        emu[D + i] = bound_mean(h->n_vague, m.mabs_v[i]);
    }
    for (size_t t = 0; t < n; t++) {
        kvr_part part = ref_part_of(h, (long)t);
        held[t] = part != KVR_PART_DROPPED && part != KVR_PART_VAGUE;
    }
    held[n] = 1;
    double scale = 1.0 / sqrt((double)D), g_dot = kvr_gamma((double)D + 3), e_exp = 4.0 * U32;
    double lnn = log(nv), cap = h->cfg.var_cap;
    size_t n_terms = 1;
    for (size_t t = 0; t < n; t++) n_terms += held[t];
    double g_sum = kvr_gamma(2.0 * (double)n_terms);
    for (int g = 0; g < group; g++) {
        const float *qg = q + (size_t)g * D;
        /* the mean logit m = scale * (q . mu_K) and its error */
        double qmu = 0.0, Qmu = 0.0, e_dot_mu = 0.0;
        for (size_t i = 0; i < D; i++) {
            double mu = (double)ref_vague_mean(h, h->sum_k, (int)i);
            qmu += (double)qg[i] * mu;
            Qmu += fabs((double)qg[i]) * (m.mabs_k[i] + emu[i]);
            e_dot_mu += fabs((double)qg[i]) * emu[i];
        }
        double e_qmu = e_dot_mu + kvr_gamma((double)D) * Qmu;
        double mm = qmu * scale, e_m = scale * (e_qmu + kvr_gamma(3) * (Qmu + e_qmu));
        /* the bucket logits P[b] and their errors; tau^2 */
        double E2 = 0.0, eE2 = 0.0;
        for (size_t b = 0; b < dw; b++) {
            double dot = 0.0, QA = 0.0, eS = 0.0, c = fabs((double)h->sk_count[b]);
            for (size_t i = 0; i < D; i++) {
                double A = m.abs_k[b * D + i], e = bound_sum((double)h->sk_load[b], A);
                dot += (double)qg[i] * (double)h->sk_k[b * D + i];
                QA += fabs((double)qg[i]) * A;
                eS += fabs((double)qg[i]) * e;
            }
            double e_dot = eS + kvr_gamma((double)D) * (QA + eS);
            P[b] = (dot - (double)h->sk_count[b] * qmu) * scale;
            eP[b] = scale * (e_dot + c * e_qmu + kvr_gamma(4) * (QA + e_dot + c * (Qmu + e_qmu)));
            E2 += P[b] * P[b];
            eE2 += eP[b] * (2.0 * fabs(P[b]) + 3.0 * eP[b]);
        }
        double tau_sq = E2 / dn, e_var = eE2 / dn;
        double var = tau_sq < cap ? tau_sq : cap;
        /* the exact positions' logits (spec §14.4 with Bk = 0) */
        double max = -INFINITY, Delta = 0.0;
        for (size_t t = 0; t < n; t++) {
            if (!held[t]) continue;
            double dot = 0.0, a = 0.0;
            for (size_t i = 0; i < D; i++) {
                double qi = (double)qg[i], ki = (double)k[t * D + i];
                dot += qi * ki;
                a += fabs(qi) * fabs(ki);
            }
            logit[t] = dot * scale;
            delta[t] = g_dot * scale * a;
        }
        /* the bulk logit m + (float)(var/2) + (float)ln n: m_b rounds once
         * more, two casts, two additions */
        double ab = fabs(mm) + e_m + 0.5 * (var + e_var) + lnn;
        logit[n] = mm + 0.5 * var + lnn;
        delta[n] = e_m + 0.5 * e_var + U32 * (fabs(mm) + e_m) + U32 * 0.5 * (var + e_var) + U32 * lnn
                   + kvr_gamma(2) * ab;
        for (size_t t = 0; t <= n; t++) {
            if (!held[t]) continue;
            if (logit[t] > max) max = logit[t];
            if (delta[t] > Delta) Delta = delta[t];
        }
        double Xi = 0.0, sum = 0.0;
        for (size_t t = 0; t <= n; t++) {
            if (!held[t]) continue;
            double xi = delta[t] + U32 * (fabs(logit[t] - max) + 4.0 * Delta);
            if (xi > Xi) Xi = xi;
            sum += exp(logit[t] - max);
        }
        double K = expm1(2.0 * Xi + log1p(e_exp) - log1p(-e_exp));
        double w_bulk = exp(logit[n] - max) / sum;
        for (size_t i = 0; i < D; i++) {
            /* the bulk value mu_b + (float)cov and its error */
            double mv = (double)ref_vague_mean(h, h->sum_v, (int)i), Mv = m.mabs_v[i] + emu[D + i];
            double cov = 0.0, e_cov = 0.0;
            if (cap > 0.0) {
                for (size_t b = 0; b < dw; b++) {
                    double c = fabs((double)h->sk_count[b]);
                    double Vc = (double)h->sk_v[b * D + i] - (double)h->sk_count[b] * mv;
                    double VM = m.abs_v[b * D + i] + c * Mv;
                    double eVc = bound_sum((double)h->sk_load[b], m.abs_v[b * D + i]) + c * emu[D + i];
                    cov += P[b] * Vc;
                    e_cov += eP[b] * (VM + eVc) + (fabs(P[b]) + eP[b]) * eVc;
                }
                cov /= dn;
                e_cov /= dn;
            }
            double val = mv + cov;
            double e_val = emu[D + i] + U32 * Mv + e_cov + U32 * (fabs(cov) + e_cov)
                           + U32 * (Mv + U32 * Mv + fabs(cov) + e_cov + emu[D + i]);
            double W = w_bulk * (fabs(val) + 2.0 * e_val), V = w_bulk * e_val;
            for (size_t t = 0; t < n; t++)
                if (held[t])
                    W += exp(logit[t] - max) / sum * fabs((double)v[t * D + i]);
            double E = (1.0 + K) * (K * W + (1.0 + K) * V + g_sum * (1.0 + K) * W);
            tol_out[(size_t)g * D + i] = round_up(2.0 * E);
        }
    }
done:
    mag_free(&m);
    kvr_free(logit); kvr_free(delta); kvr_free(P); kvr_free(eP); kvr_free(emu); kvr_free(held);
    return status;
}

int kvr_tol_attend(const ref_head *h, const float *k, const float *v, int group,
                   const float *q /*[group][D]*/, float *tol_out /*[group][D]*/)
{
    if (!h || !k || !v || !q || !tol_out)
        return kvr_fail(KVR_EINVAL, "kvr_tol_attend: an argument is NULL");
    if (group < 1)
        return kvr_fail(KVR_EINVAL, "kvr_tol_attend: group = %d is not positive", group);
    if (h->n < 1)
        return kvr_fail(KVR_ESTATE, "kvr_tol_attend: the head cache is empty");
    if (h->cfg.vague == KVR_VAGUE_MOMENT && ref_has_sketch(h) && h->n_vague > 0) {
        if (h->cfg.revive > 0.0)   /* revival decides by thresholds on float values */
            return kvr_fail(KVR_EINVAL, "kvr_tol_attend: no tolerance model for the moment route with revival (revive = %g)",
                            h->cfg.revive);
        return tol_moment(h, k, v, group, q, tol_out);
    }
    size_t D = (size_t)h->head_dim, n = (size_t)h->n;
    vague_mag m = {0};
    float *kh = kvr_malloc(n * D * sizeof(float));    /* [n][D] the reference's keys */
    float *vh = kvr_malloc(n * D * sizeof(float));    /* [n][D] and values */
    double *bk = kvr_calloc(n * D, sizeof(double));   /* [n][D] one-implementation bounds */
    double *bv = kvr_calloc(n * D, sizeof(double));
    double *logit = kvr_malloc(n * sizeof(double));   /* [n] */
    double *delta = kvr_malloc(n * sizeof(double));   /* [n] score error bound */
    unsigned char *held = kvr_malloc(n);
    int status = KVR_OK;
    if (!kh || !vh || !bk || !bv || !logit || !delta || !held)
        status = kvr_fail(KVR_ENOMEM, "kvr_tol_attend: workspace for %zu positions", n);
    if (status == KVR_OK && ref_has_sketch(h))
        status = mag_build(h, k, v, &m);
    if (status != KVR_OK)
        goto done;

    /* spec §11.1: what attention sees, with its one-implementation bound */
    size_t n_held = 0;
    for (size_t t = 0; t < n; t++) {
        kvr_part part = ref_part_of(h, (long)t);
        held[t] = part != KVR_PART_DROPPED;
        n_held += held[t];
        if (part == KVR_PART_VAGUE) {
            ref_reconstruct(h, (long)t, kh + t * D, vh + t * D);
            for (size_t i = 0; i < D; i++) {
                bk[t * D + i] = bound_reconstruct_one(h, (long)t, (int)i, m.abs_k, m.mabs_k);
                bv[t * D + i] = bound_reconstruct_one(h, (long)t, (int)i, m.abs_v, m.mabs_v);
            }
        } else if (held[t]) {
            memcpy(kh + t * D, k + t * D, D * sizeof(float));
            memcpy(vh + t * D, v + t * D, D * sizeof(float));
        }
    }

    double scale = 1.0 / sqrt((double)D);
    double g_dot = kvr_gamma((double)D + 3);  /* D products, D-1 sums, 1/sqrtf(D): 2, scaling: 1 */
    double g_sum = kvr_gamma(2.0 * (double)n_held);   /* numerator n, denominator n-1, division 1 */
    double e_exp = 4.0 * U32;                 /* expf within 2 ulp: relative 4u */
    for (int g = 0; g < group; g++) {
        const float *qg = q + (size_t)g * D;
        double max = -INFINITY, Delta = 0.0;
        /* spec §14.4: the score error delta_t of one implementation */
        for (size_t t = 0; t < n; t++) {
            if (!held[t]) continue;
            double dot = 0.0, a = 0.0, b = 0.0;
            for (size_t i = 0; i < D; i++) {
                double qi = (double)qg[i];
                dot += qi * (double)kh[t * D + i];
                a += fabs(qi) * (fabs((double)kh[t * D + i]) + 2.0 * bk[t * D + i]);
                b += fabs(qi) * bk[t * D + i];
            }
            logit[t] = dot * scale;
            delta[t] = g_dot * scale * a + (1.0 + g_dot) * scale * b;
            if (logit[t] > max) max = logit[t];
            if (delta[t] > Delta) Delta = delta[t];
        }
        /* exponent error xi_t: the score error and the rounding of
         * logit - max (whose size another implementation knows to 4 Delta) */
        double Xi = 0.0, sum = 0.0;
        for (size_t t = 0; t < n; t++) {
            if (!held[t]) continue;
            double xi = delta[t] + U32 * (fabs(logit[t] - max) + 4.0 * Delta);
            if (xi > Xi) Xi = xi;
            sum += exp(logit[t] - max);
        }
        /* computed weights over exact weights lie within [1/(1+K), 1+K] */
        double K = expm1(2.0 * Xi + log1p(e_exp) - log1p(-e_exp));
        for (size_t i = 0; i < D; i++) {
            double W = 0.0, V = 0.0;
            for (size_t t = 0; t < n; t++) {
                if (!held[t]) continue;
                double wt = exp(logit[t] - max) / sum;
                W += wt * (fabs((double)vh[t * D + i]) + 2.0 * bv[t * D + i]);
                V += wt * bv[t * D + i];
            }
            double E = (1.0 + K) * (K * W + (1.0 + K) * V + g_sum * (1.0 + K) * W);
            tol_out[(size_t)g * D + i] = round_up(2.0 * E);
        }
    }
done:
    mag_free(&m);
    kvr_free(kh); kvr_free(vh); kvr_free(bk); kvr_free(bv);
    kvr_free(logit); kvr_free(delta); kvr_free(held);
    return status;
}
