/* moment.c: the moment route of attention (ref/moment.c, spec §17).
 *
 * 1. Agreement with a float64 evaluation of spec §17's formulas, written
 *    here independently from the head's stored parts and sketch, across
 *    random configurations, to a bound derived from the float32 operations
 *    (below).  A negative control feeds the float64 side a variance term
 *    off by 0.01 and must be caught in most heads.
 * 2. Exactness without collisions: when every bucket holds at most one
 *    vague token, the sketch's second moments along q (tau^2) and its
 *    covariance term equal those of the vague tokens themselves, up to
 *    float64 rounding.
 * 3. Unbiasedness with collisions (GSL): over 400 hash seeds with tens of
 *    tokens per bucket, the mean of the sketch's tau^2 and covariance
 *    estimates equals the vague tokens' own values within a t-test at
 *    false-alarm probability 1e-6; without exact centring the same test
 *    must fail (the control that shows the test has power).
 * 4. Revival: a vague token planted far above the collision noise is
 *    revived, and the output moves to it as under full attention.
 *
 * The bound of test 1.  u = 2^-24, gamma_n = n u / (1 - n u) (Higham §3.1:
 * a float32 chain of n sums or products is within gamma_n times the sum of
 * absolute values of its terms).  For one query head with scale = 1/sqrt(D):
 *   - an exact logit is a D-term dot product and a scaling:
 *       delta_j = gamma_{D+2} scale sum_i |q_i| |k_ji|;
 *   - m = scale (q . mu_K): E_m = gamma_{D+2} scale sum_i |q_i| |mu_i|;
 *     P[b] = (q . S_K[b] - c_b (q . mu_K)) scale:
 *       E_b = gamma_{D+4} scale (sum_i |q_i| |S_K[b][i]| + |c_b| sum_i |q_i| |mu_i|);
 *   - tau^2 = sum_b P_b^2 / (d n) in float64 from the float32 P_b:
 *       |delta tau^2| <= sum_b (2 |P_b| E_b + E_b^2) / (d n) + 2^-40 tau^2,
 *     min(., cap) is 1-Lipschitz, and the bulk logit adds m, var/2, ln n in
 *     float32 after two casts: delta_bulk = E_m + |delta var| / 2
 *       + 4u (|m| + var/2 + ln n);
 *   - softmax: each weight is the exact one times exp(e), |e| <= Delta =
 *     max delta + u * range + 2u (subtraction of the max, expf), so the
 *     normalised weights are within (e^{2 Delta} - 1) of theirs, relatively;
 *   - the bulk value u_i = mu_i + cov_i: cov from float32 P_b in float64,
 *     |delta cov_i| <= sum_b E_b |S_V[b][i] - c_b mu_Vi| / (d n)
 *       + 2^-40 sum_b |P_b| |S_V[b][i] - c_b mu_Vi| / (d n), then two float32
 *     roundings: + 2u (|mu_Vi| + |cov_i|);
 *   - the output sums n + 1 products and divides: gamma_{n+4}.
 * Hence |out_i - out64_i| <= e^{2 Delta} (2 (e^{2 Delta} - 1) + 2 gamma_{n+4})
 * sum_j pi_j |u_ji| + e^{2 Delta} pi_bulk |delta u_i|, with pi the float64
 * normalised weights and u_j the values (exact ones as stored). */
#include <config.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_statistics_double.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "tolerance.h"

/* ---- the float64 side ----------------------------------------------------- */

/* Centred bucket logits P ([d*w]) in float64, the bulk's tau^2 and
 * covariance ([D]) for query q, with or without the exact mean (centre). */
static void moments64(const ref_head *h, const float *q, int centre, double *P,
                      double *tau_sq, double *cov)
{
    int D = h->head_dim;
    size_t dw = (size_t)h->cfg.depth * h->cfg.width;
    double scale = 1.0 / sqrt((double)D), qmu = 0.0, dn = (double)h->cfg.depth * (double)h->n_vague;
    for (int i = 0; i < D; i++)
        qmu += (double)q[i] * (centre ? ref_vague_mean(h, h->sum_k, i) : 0.0f);
    *tau_sq = 0.0;
    for (size_t b = 0; b < dw; b++) {
        double dot = 0.0;
        for (int i = 0; i < D; i++)
            dot += (double)q[i] * h->sk_k[b * D + i];
        P[b] = (dot - h->sk_count[b] * qmu) * scale;
        *tau_sq += P[b] * P[b];
    }
    *tau_sq /= dn;
    for (int i = 0; i < D; i++) {
        double mv = centre ? ref_vague_mean(h, h->sum_v, i) : 0.0, acc = 0.0;
        for (size_t b = 0; b < dw; b++)
            acc += P[b] * (h->sk_v[b * D + i] - h->sk_count[b] * mv);
        cov[i] = acc / dn;
    }
}

/* The float64 route's output for query q (revival off), out64 ([D]), with
 * var_bias added to the variance term (0: the route itself); *pi_bulk
 * receives the bulk term's normalised weight when not NULL. */
static void route64_biased(const ref_head *h, const float *q, double var_bias, double *out64,
                           double *pi_bulk)
{
    int D = h->head_dim;
    size_t dw = (size_t)h->cfg.depth * h->cfg.width;
    double scale = 1.0 / sqrt((double)D), m = 0.0, tau_sq;
    double *P = malloc(dw * sizeof *P), *cov = malloc((size_t)D * sizeof *cov);
    float *kv = malloc(2 * (size_t)D * sizeof *kv);
    double *L = malloc((size_t)(h->n + 1) * sizeof *L);
    ck_assert(P && cov && kv && L);
    moments64(h, q, 1, P, &tau_sq, cov);
    for (int i = 0; i < D; i++)
        m += (double)q[i] * ref_vague_mean(h, h->sum_k, i);
    m *= scale;
    double var = (tau_sq < h->cfg.var_cap ? tau_sq : h->cfg.var_cap) + var_bias;
    double Lb = m + 0.5 * var + log((double)h->n_vague), max = Lb;
    for (long t = 0; t < h->n; t++) {
        L[t] = -INFINITY;
        if (!ref_exact_kv(h, t, kv, kv + D)) continue;
        double dot = 0.0;
        for (int i = 0; i < D; i++) dot += (double)q[i] * kv[i];
        L[t] = dot * scale;
        if (L[t] > max) max = L[t];
    }
    double sum = exp(Lb - max);
    for (int i = 0; i < D; i++)
        out64[i] = sum * (ref_vague_mean(h, h->sum_v, i) + (h->cfg.var_cap > 0.0 ? cov[i] : 0.0));
    for (long t = 0; t < h->n; t++) {
        if (!ref_exact_kv(h, t, kv, kv + D)) continue;
        double p = exp(L[t] - max);
        sum += p;
        for (int i = 0; i < D; i++) out64[i] += p * kv[D + i];
    }
    for (int i = 0; i < D; i++) out64[i] /= sum;
    if (pi_bulk)
        *pi_bulk = exp(Lb - max) / sum;
    free(P); free(cov); free(kv); free(L);
}

static void route64(const ref_head *h, const float *q, double *out64)
{
    route64_biased(h, q, 0.0, out64, NULL);
}

/* Compare out ([D], the library's float32 result for query q) with the
 * float64 route (revival off), coordinate by coordinate, into t (tu_tally:
 * misses and the worst |out - out64| / tol); var_bias is added to the
 * float64 side's variance term (0 for the real test; the negative control
 * sets it). */
static void compare(const ref_head *h, const float *q, const float *out, double var_bias, tu_tally *t)
{
    int D = h->head_dim, d = h->cfg.depth;
    size_t dw = (size_t)d * h->cfg.width;
    double scale = 1.0 / sqrt((double)D), u = TU_U;
    long n = h->n, n_v = h->n_vague;
    double *P = malloc(dw * sizeof *P), *cov = malloc((size_t)D * sizeof *cov);
    double *L = malloc((size_t)(n + 1) * sizeof *L), *delta = malloc((size_t)(n + 1) * sizeof *delta);
    float *kv = malloc(2 * (size_t)D * sizeof *kv);
    double *vals = malloc((size_t)(n + 1) * D * sizeof *vals), *du = malloc((size_t)D * sizeof *du);
    ck_assert(P && cov && L && delta && kv && vals && du);

    double tau_sq;
    moments64(h, q, 1, P, &tau_sq, cov);
    double qmu_abs = 0.0, m = 0.0;
    for (int i = 0; i < D; i++) {
        float mu = ref_vague_mean(h, h->sum_k, i);
        m += (double)q[i] * mu;
        qmu_abs += fabs((double)q[i]) * fabs((double)mu);
    }
    m *= scale;
    double E_m = tu_gamma(D + 2) * scale * qmu_abs, dvar = 0.0;
    for (size_t b = 0; b < dw; b++) {
        double a = 0.0;
        for (int i = 0; i < D; i++)
            a += fabs((double)q[i]) * fabs((double)h->sk_k[b * D + i]);
        double E_b = tu_gamma(D + 4) * scale * (a + fabs((double)h->sk_count[b]) * qmu_abs);
        dvar += 2.0 * fabs(P[b]) * E_b + E_b * E_b;
    }
    dvar = dvar / ((double)d * n_v) + ldexp(tau_sq, -40);
    double var = (tau_sq < h->cfg.var_cap ? tau_sq : h->cfg.var_cap) + var_bias;

    /* terms: exact positions j < n (when held), the bulk as index n */
    int *held = calloc((size_t)n + 1, sizeof *held);
    ck_assert(held);
    double max = -INFINITY;
    for (long t = 0; t < n; t++) {
        if (!ref_exact_kv(h, t, kv, kv + D))
            continue;
        held[t] = 1;
        double dot = 0.0, a = 0.0;
        for (int i = 0; i < D; i++) {
            dot += (double)q[i] * kv[i];
            a += fabs((double)q[i]) * fabs((double)kv[i]);
            vals[(size_t)t * D + i] = kv[D + i];
        }
        L[t] = dot * scale;
        delta[t] = tu_gamma(D + 2) * scale * a;
        if (L[t] > max) max = L[t];
    }
    held[n] = 1;
    L[n] = m + 0.5 * var + log((double)n_v);
    delta[n] = E_m + 0.5 * dvar + 4.0 * u * (fabs(m) + 0.5 * var + log((double)n_v));
    if (L[n] > max) max = L[n];
    for (int i = 0; i < D; i++) {
        double mv = ref_vague_mean(h, h->sum_v, i), cv = h->cfg.var_cap > 0.0 ? cov[i] : 0.0;
        vals[(size_t)n * D + i] = mv + cv;
        double a = 0.0, b2 = 0.0;
        for (size_t b = 0; b < dw; b++) {
            double vc = fabs(h->sk_v[b * D + i] - h->sk_count[b] * mv), ak = 0.0;
            for (int k = 0; k < D; k++)
                ak += fabs((double)q[k]) * fabs((double)h->sk_k[b * D + k]);
            double E_b = tu_gamma(D + 4) * scale * (ak + fabs((double)h->sk_count[b]) * qmu_abs);
            a += E_b * vc;
            b2 += fabs(P[b]) * vc;
        }
        du[i] = (h->cfg.var_cap > 0.0 ? (a + ldexp(b2, -40)) / ((double)d * n_v) : 0.0)
                + 2.0 * u * (fabs(mv) + fabs(cv));
    }
    double Delta = 0.0, range = 0.0, sum = 0.0;
    for (long j = 0; j <= n; j++) {
        if (!held[j]) continue;
        if (delta[j] > Delta) Delta = delta[j];
        if (max - L[j] > range) range = max - L[j];
    }
    Delta += u * range + 2.0 * u;
    for (long j = 0; j <= n; j++)
        if (held[j]) sum += exp(L[j] - max);
    double e2 = exp(2.0 * Delta);
    for (int i = 0; i < D; i++) {
        double o = 0.0, abs_sum = 0.0;
        for (long j = 0; j <= n; j++) {
            if (!held[j]) continue;
            double pi = exp(L[j] - max) / sum;
            o += pi * vals[(size_t)j * D + i];
            abs_sum += pi * fabs(vals[(size_t)j * D + i]);
        }
        double pi_bulk = exp(L[n] - max) / sum;
        double tol = e2 * (2.0 * (e2 - 1.0) + 2.0 * tu_gamma(n + 4)) * abs_sum + e2 * pi_bulk * du[i];
        tu_tally_add(t, (double)out[i], o, tol);
    }
    free(P); free(cov); free(L); free(delta); free(kv); free(vals); free(du); free(held);
}

/* ---- a random head cache ------------------------------------------------- */

typedef struct {
    ref_head *h;
    ref_work w;
    int G;
    float *q;            /* [G][D] */
    float *out;          /* [G][D] */
    float *k, *v;        /* [n][D] every token as stored */
} fixture;

/* A head with the moment route, random sizes, filled with n tokens whose
 * keys share an offset (so centring matters), attended after every append
 * so the importance rule has work. */
static void build(fixture *f, uint64_t seed, double var_cap, int revive)
{
    tu_rng r;
    tu_seed(&r, seed);
    static const int dims[] = {4, 8, 16, 64};
    int D = dims[tu_int(&r, 0, 3)];
    f->G = tu_int(&r, 1, 3);
    kvr_config cfg;
    kvr_config_default(&cfg);
    cfg.sinks = tu_int(&r, 0, 3);
    cfg.window = tu_int(&r, 1, 10);
    cfg.candidates = tu_int(&r, 0, 8);
    cfg.importance = cfg.candidates ? (kvr_importance)tu_int(&r, 1, 3) : KVR_IMP_NONE;
    cfg.depth = tu_int(&r, 1, 5);
    cfg.width = tu_int(&r, 1, 24);
    cfg.rows = (kvr_rows)tu_int(&r, 0, 1);
    cfg.elem = (kvr_elem)tu_int(&r, 0, 2);
    cfg.var_cap = var_cap;
    cfg.revive = revive ? 2.0 : 0.0;
    cfg.seed = tu_next(&r);
    ck_assert_int_eq(kvr_config_check(&cfg, D), KVR_OK);
    f->h = NULL;
    ck_assert_int_eq(ref_head_alloc(&f->h, &cfg, D, (uint32_t)tu_int(&r, 0, 3), (uint32_t)tu_int(&r, 0, 3)), KVR_OK);
    memset(&f->w, 0, sizeof f->w);
    int n = tu_int(&r, 1, 300);
    f->k = malloc(sizeof(float) * n * D);
    f->v = malloc(sizeof(float) * n * D);
    f->q = malloc(sizeof(float) * f->G * D);
    f->out = malloc(sizeof(float) * f->G * D);
    ck_assert(f->k && f->v && f->q && f->out);
    double offset = 2.0 * tu_unif(&r);
    for (int t = 0; t < n; t++) {
        float *k = f->k + (size_t)t * D, *v = f->v + (size_t)t * D;
        for (int i = 0; i < D; i++) {
            k[i] = kvr_elem_round(cfg.elem, (float)(tu_gauss(&r) + offset));
            v[i] = kvr_elem_round(cfg.elem, (float)(tu_gauss(&r) - offset));
        }
        ref_append(f->h, k, v);
        tu_fill(&r, f->q, (size_t)f->G * D, 0.0, 1.0);
        ck_assert_int_eq(ref_work_reserve(&f->w, f->h->n, D), KVR_OK);
        ck_assert_int_eq(ref_work_reserve_moment(&f->w, f->h), KVR_OK);
        ref_attend_moment(f->h, f->G, f->q, f->out, 1, &f->w);
        char why[256];
        TU_CHECK(ref_head_check(f->h, why, sizeof why) == 0, "invariants after step %d: %s", t, why);
    }
    tu_fill(&r, f->q, (size_t)f->G * D, 0.0, 1.5);
    ref_attend_moment(f->h, f->G, f->q, f->out, 0, &f->w);
}

static void unbuild(fixture *f)
{
    ref_work_free(&f->w);
    ref_head_free(f->h);
    free(f->q);
    free(f->out);
    free(f->k);
    free(f->v);
}

/* 1. agreement with float64, three variance caps, 60 seeds each */
START_TEST(test_agrees_with_float64)
{
    static const double caps[] = {0.0, 1.0, INFINITY};
    tu_tally all = TU_TALLY_INIT;          /* mark: seed * 100 + query head */
    int with_vague = 0;
    for (int s = 0; s < 60; s++) {
        fixture f;
        build(&f, (uint64_t)(1000 * _i + s), caps[_i], 0);
        if (f.h->n_vague > 0 && ref_has_sketch(f.h)) {
            with_vague++;
            for (int g = 0; g < f.G; g++) {
                all.mark = 100L * s + g;
                compare(f.h, f.q + (size_t)g * f.h->head_dim, f.out + (size_t)g * f.h->head_dim, 0.0, &all);
            }
        }
        unbuild(&f);
    }
    char what[160];
    snprintf(what, sizeof what, "moment route vs float64, var_cap %g, %d heads with a vague part "
             "(mark: seed * 100 + query head)", caps[_i], with_vague);
    tu_tally_check(what, &all, 1);
    TU_OK(with_vague >= 40);               /* the cases do exercise the route */
}
END_TEST

/* 1c. the tolerance model of spec §14.8 (kvr_tol_attend) is sound: the
 * float64 route, a second implementation much closer to exact arithmetic,
 * lies within half of it (one implementation's bound B) of the reference,
 * across random configurations (test_tolerance_typical checks that it is
 * not vacuous). */
START_TEST(test_tolerance_model)
{
    double widest = 0.0;
    tu_tally all = TU_TALLY_INIT;          /* mark: seed * 100 + query head */
    int cases = 0;
    for (int s = 0; s < 60; s++) {
        fixture f;
        build(&f, (uint64_t)(5000 + 100 * _i + s), _i == 0 ? 0.0 : _i == 1 ? 1.0 : INFINITY, 0);
        if (f.h->n_vague > 0 && ref_has_sketch(f.h)) {
            int D = f.h->head_dim;
            float *tol = malloc(sizeof(float) * f.G * D);
            ck_assert(tol);
            TU_EQ(kvr_tol_attend(f.h, f.k, f.v, f.G, f.q, tol), KVR_OK);
            double vmax = 0.0;
            for (long t = 0; t < f.h->n * D; t++)
                if (fabs((double)f.v[t]) > vmax) vmax = fabs((double)f.v[t]);
            for (int g = 0; g < f.G; g++) {
                const float *q = f.q + (size_t)g * D;
                /* the float64 route's output, recomputed here as compare() does */
                double out64[1024];
                route64(f.h, q, out64);
                all.mark = 100L * s + g;
                for (int i = 0; i < D; i++) {
                    tu_tally_add(&all, (double)f.out[(size_t)g * D + i], out64[i], 0.5 * tol[(size_t)g * D + i]);
                    if (tol[(size_t)g * D + i] / vmax > widest) widest = tol[(size_t)g * D + i] / vmax;
                }
            }
            cases++;
            free(tol);
        }
        unbuild(&f);
    }
    tu_tally_check("tolerance model, moment route: the reference vs float64 within B, half the tolerance "
                   "(mark: seed * 100 + query head)", &all, 1);
    TU_OK(cases >= 40);
    printf("tolerance model, moment route: widest tolerance %.3g of the largest value\n", widest);
}
END_TEST

/* 1d. Not vacuous on typical data: a configuration planned at
 * 25% of 1024 tokens of dimension 64, with three rows and a quarter of the
 * budget for the sketch so that the variance and covariance terms are in
 * play (about 40 tokens per bucket).  The
 * model is worst-case (any summation order, every dot product at gamma_D),
 * so what matters is that it separates a port from the method: it must be
 * at most a tenth of the route's own approximation error against full
 * attention, measured here on the same data, and port bugs much smaller
 * than that error must exceed it: the variance term without its 1/2, and
 * the covariance term left out. */
START_TEST(test_tolerance_typical)
{
    enum { N = 1024, D = 64, G = 2 };
    kvr_config cfg;
    TU_EQ(kvr_method_config(_i == 0 ? "kvreviver/depth=3/share=0.25/varcap=1" : "kvreviver/depth=3/share=0.25/varcap=inf",
                            0.25, N, D, KVR_F32, &cfg), KVR_OK);
    ref_head *h = NULL;
    ck_assert_int_eq(ref_head_alloc(&h, &cfg, D, 0, 0), KVR_OK);
    tu_rng r;
    tu_seed(&r, 31 + (uint64_t)_i);
    float *k = malloc(sizeof(float) * N * D), *v = malloc(sizeof(float) * N * D);
    float q[G * D], out[G * D], tol[G * D];
    ck_assert(k && v);
    ref_work w;
    memset(&w, 0, sizeof w);
    for (int t = 0; t < N; t++) {
        for (int i = 0; i < D; i++) {
            k[t * D + i] = (float)(tu_gauss(&r) + 1.0);
            v[t * D + i] = (float)tu_gauss(&r);
        }
        ref_append(h, k + t * D, v + t * D);
        tu_fill(&r, q, G * D, 0.0, 1.0);
        ck_assert_int_eq(ref_work_reserve(&w, h->n, D), KVR_OK);
        ck_assert_int_eq(ref_work_reserve_moment(&w, h), KVR_OK);
        ref_attend_moment(h, G, q, out, 1, &w);
    }
    TU_EQ(kvr_tol_attend(h, k, v, G, q, tol), KVR_OK);
    double widest = 0.0, method_err = 0.0;
    for (int g = 0; g < G; g++) {            /* the route against full attention */
        double full[D], t64[D];
        tu_attention64(N, D, q + g * D, k, v, NULL, full, t64);
        for (int i = 0; i < D; i++) {
            double e = fabs((double)out[g * D + i] - full[i]);
            if (e > method_err) method_err = e;
        }
    }
    for (int j = 0; j < G * D; j++)
        if (tol[j] > widest) widest = tol[j];
    int caught = 0, caught_cov = 0;
    for (int g = 0; g < G; g++) {
        /* the float64 route with var in place of var/2, against the
         * reference, measured in the model's tolerance */
        double out64[D], shift = 0.0, cov[D], tau_sq;
        double *P = malloc(sizeof(double) * cfg.depth * cfg.width);
        ck_assert_ptr_nonnull(P);
        moments64(h, q + g * D, 1, P, &tau_sq, cov);
        free(P);
        double pi_bulk;
        route64_biased(h, q + g * D, 0.0, out64, &pi_bulk);
        route64_biased(h, q + g * D, tau_sq < cfg.var_cap ? tau_sq : cfg.var_cap, out64, NULL);
        for (int i = 0; i < D; i++) {
            double dev = fabs(out64[i] - (double)out[g * D + i]);
            if (dev / tol[g * D + i] > shift) shift = dev / tol[g * D + i];
        }
        caught += shift > 1.0;
        /* the covariance term left out moves the output by the bulk's
         * weight times the term */
        shift = 0.0;
        for (int i = 0; i < D; i++) {
            double dev = pi_bulk * fabs(cov[i]);
            if (dev / tol[g * D + i] > shift) shift = dev / tol[g * D + i];
        }
        caught_cov += shift > 1.0;
    }
    printf("tolerance model, typical data (var_cap %g, %ld vague, load ~%ld): widest tolerance %.3g, "
           "the route's own error %.3g; var for var/2 caught in %d of %d heads, covariance left out in %d\n",
           cfg.var_cap, h->n_vague, h->n_vague / cfg.width, widest, method_err, caught, G, caught_cov);
    TU_CHECK(widest <= 0.1 * method_err, "tolerance %.3g is not a tenth of the route's error %.3g", widest, method_err);
    TU_EQ(caught, G);
    TU_EQ(caught_cov, G);
    ref_work_free(&w);
    ref_head_free(h);
    free(k); free(v);
}
END_TEST

/* 1b. negative control: a variance term off by 0.01 is outside the bound
 * (for the heads whose bulk carries weight) */
START_TEST(test_bound_detects_wrong_variance)
{
    int caught = 0, cases = 0;
    for (int s = 0; s < 40; s++) {
        fixture f;
        build(&f, (uint64_t)(7000 + s), 1.0, 0);
        if (f.h->n_vague > 0 && ref_has_sketch(f.h)) {
            cases++;
            tu_tally a = TU_TALLY_INIT;
            compare(f.h, f.q, f.out, 0.01, &a);
            caught += a.misses > 0;
        }
        unbuild(&f);
    }
    /* 0.01 moves the bulk's weight by 0.5%; where the bulk carries little
     * of the attention that does not show, so three cases in four suffice */
    printf("variance term off by 0.01: caught in %d of %d heads\n", caught, cases);
    TU_OK(cases >= 20);
    TU_CHECK(caught >= cases * 3 / 4, "only %d of %d wrong variance terms caught", caught, cases);
}
END_TEST

/* ---- 2 and 3: the sketch's moments against the vague tokens' own --------- */

typedef struct {
    ref_head *h;
    int D, n;
    float *k, *v;        /* [n][D] every token, as stored */
    float *q;            /* [D] */
} plain;

/* A head with no importance rule (so the vague part is positions S ..
 * n-R-1 whatever the hash seed), depth d and width w. */
static void plain_build(plain *p, uint64_t data_seed, uint64_t hash_seed, int d, int w, int centre)
{
    tu_rng r;
    tu_seed(&r, data_seed);
    p->D = 8;
    p->n = 120;
    kvr_config cfg;
    kvr_config_default(&cfg);
    cfg.sinks = 2; cfg.window = 4; cfg.candidates = 0; cfg.importance = KVR_IMP_NONE;
    cfg.depth = d; cfg.width = w; cfg.seed = hash_seed; cfg.centre = centre;
    if (!centre) cfg.vague = KVR_VAGUE_RECONSTRUCT;  /* the moment route needs centring */
    p->h = NULL;
    ck_assert_int_eq(ref_head_alloc(&p->h, &cfg, p->D, 0, 0), KVR_OK);
    p->k = malloc(sizeof(float) * p->n * p->D);
    p->v = malloc(sizeof(float) * p->n * p->D);
    p->q = malloc(sizeof(float) * p->D);
    ck_assert(p->k && p->v && p->q);
    for (int t = 0; t < p->n; t++)
        for (int i = 0; i < p->D; i++) {    /* large offsets: centring matters */
            p->k[t * p->D + i] = (float)(tu_gauss(&r) + 3.0 + i);
            p->v[t * p->D + i] = (float)(0.5 * tu_gauss(&r) + 0.3 * p->k[t * p->D + i] - 2.0);
        }
    for (int t = 0; t < p->n; t++)
        ref_append(p->h, p->k + t * p->D, p->v + t * p->D);
    tu_fill(&r, p->q, (size_t)p->D, 0.0, 1.0);
}

static void plain_free(plain *p)
{
    ref_head_free(p->h);
    free(p->k); free(p->v); free(p->q);
}

/* The vague tokens' own tau^2 and covariance coordinate i, about the float32
 * means the route uses. */
static void truth(const plain *p, int i, double *tau_sq, double *cov)
{
    const ref_head *h = p->h;
    double scale = 1.0 / sqrt((double)p->D);
    *tau_sq = *cov = 0.0;
    for (int t = 0; t < p->n; t++) {
        if (ref_part_of(h, t) != KVR_PART_VAGUE) continue;
        double x = 0.0;
        for (int j = 0; j < p->D; j++)
            x += (double)p->q[j] * ((double)p->k[t * p->D + j] - (double)ref_vague_mean(h, h->sum_k, j));
        x *= scale;
        *tau_sq += x * x;
        *cov += x * ((double)p->v[t * p->D + i] - (double)ref_vague_mean(h, h->sum_v, i));
    }
    *tau_sq /= (double)h->n_vague;
    *cov /= (double)h->n_vague;
}

/* 2. no collisions: the sketch's moments are the tokens' own */
START_TEST(test_no_collisions_exact)
{
    int d = 1 + _i % 3, found = 0;
    for (uint64_t hs = 1; hs < 2000 && !found; hs++) {
        plain p;
        plain_build(&p, 42 + (uint64_t)_i, hs, d, 40000, 1);
        int collision = 0;
        for (size_t b = 0; b < (size_t)d * 40000; b++)
            collision |= p.h->sk_load[b] > 1;
        if (!collision) {
            found = 1;
            double *P = malloc(sizeof(double) * d * 40000), cov[8], tau_sq, t_sq, t_cov;
            ck_assert_ptr_nonnull(P);
            moments64(p.h, p.q, 1, P, &tau_sq, cov);
            free(P);
            tu_tally all = TU_TALLY_INIT;  /* mark: the coordinate; per coordinate tau^2, then cov[i] */
            for (int i = 0; i < p.D; i++) {
                all.mark = i;
                truth(&p, i, &t_sq, &t_cov);
                /* both are float64 evaluations of the same sums of products
                 * of the same float32 inputs, associated differently: each
                 * within (D + n + 8) 2^-53 of the exact value, relatively
                 * to its sum of absolute terms, bounded here by 4x the value
                 * plus the scale of the terms */
                double eps = (p.D + p.n + 8) * ldexp(1.0, -53);
                tu_tally_add(&all, tau_sq, t_sq, 2 * eps * (4 * t_sq + 1e3));
                tu_tally_add(&all, cov[i], t_cov, 2 * eps * (4 * fabs(t_cov) + 1e3));
            }
            tu_tally_check("moments from the sketch vs from the tokens (tau^2, cov)", &all, 1);
        }
        plain_free(&p);
    }
    TU_OK(found);
}
END_TEST

/* t statistic of mean(x) against mu */
static double t_stat(const double *x, size_t n, double mu)
{
    double mean = gsl_stats_mean(x, 1, n), sd = gsl_stats_sd_m(x, 1, n, mean);
    return (mean - mu) / (sd / sqrt((double)n));
}

/* 3. unbiased over hash seeds; biased without centring (the control) */
START_TEST(test_unbiased_over_seeds)
{
    enum { B = 400 };
    int d = 1 + _i;
    double est_sq[B], est_cov[B], raw_sq[B];
    double t_sq = 0.0, t_cov = 0.0;
    for (int s = 0; s < B; s++) {
        plain p, pr;
        plain_build(&p, 7, 1000 + (uint64_t)s, d, 5, 1);      /* about 22 tokens per bucket */
        plain_build(&pr, 7, 1000 + (uint64_t)s, d, 5, 0);
        double P[5 * 5], cov[8], tau_sq;
        moments64(p.h, p.q, 1, P, &tau_sq, cov);
        est_sq[s] = tau_sq;
        est_cov[s] = cov[3];
        moments64(pr.h, pr.q, 0, P, &tau_sq, cov);             /* no exact mean */
        raw_sq[s] = tau_sq;
        if (s == 0) truth(&p, 3, &t_sq, &t_cov);
        plain_free(&p);
        plain_free(&pr);
    }
    /* two-sided t test at false-alarm probability 1e-6 per statistic */
    double crit = gsl_cdf_tdist_Pinv(1.0 - 0.5e-6, B - 1);
    double a = t_stat(est_sq, B, t_sq), b = t_stat(est_cov, B, t_cov), c = t_stat(raw_sq, B, t_sq);
    printf("depth %d: t = %.2f (tau^2), %.2f (cov), %.1f (uncentred control); critical %.2f\n", d, a, b, c, crit);
    TU_CHECK(fabs(a) < crit, "tau^2 biased: t = %g", a);
    TU_CHECK(fabs(b) < crit, "covariance biased: t = %g", b);
    TU_CHECK(fabs(c) > crit, "the uncentred control was not detected: t = %g", c);
}
END_TEST

/* 4. a planted outlier is revived and attention moves to it */
START_TEST(test_revival_finds_outlier)
{
    enum { D = 16, N = 600, PLANT = 100 };
    double err[2];
    for (int on = 0; on <= 1; on++) {
        tu_rng r;
        tu_seed(&r, 900 + (uint64_t)_i);
        kvr_config cfg;
        kvr_config_default(&cfg);
        cfg.sinks = 0; cfg.window = 8; cfg.candidates = 0; cfg.importance = KVR_IMP_NONE;
        cfg.depth = 3; cfg.width = 16; cfg.revive = on ? 3.0 : 0.0;
        cfg.seed = tu_next(&r);
        ref_head *h = NULL;
        ck_assert_int_eq(ref_head_alloc(&h, &cfg, D, 0, 0), KVR_OK);
        float q[D], k[D], v[D], out[D], planted[D];
        tu_fill(&r, q, D, 0.0, 1.0);
        double qn = 0.0;
        for (int i = 0; i < D; i++) qn += (double)q[i] * q[i];
        for (int t = 0; t < N; t++) {
            tu_fill(&r, k, D, 0.0, 0.3);
            tu_fill(&r, v, D, 0.0, 0.05);
            if (t == PLANT)                  /* logit about 40 above the rest */
                for (int i = 0; i < D; i++) {
                    k[i] = (float)(40.0 * sqrt((double)D) * q[i] / qn);
                    v[i] = planted[i] = (float)(i % 2 ? 1.0 : -1.0);
                }
            ref_append(h, k, v);
        }
        TU_EQ(ref_part_of(h, PLANT), KVR_PART_VAGUE);
        ref_work w;
        memset(&w, 0, sizeof w);
        ck_assert_int_eq(ref_work_reserve(&w, h->n, D), KVR_OK);
        ck_assert_int_eq(ref_work_reserve_moment(&w, h), KVR_OK);
        ref_attend_moment(h, 1, q, out, 0, &w);
        double e = 0.0;
        for (int i = 0; i < D; i++)            /* full attention puts ~all mass on it */
            e += ((double)out[i] - planted[i]) * ((double)out[i] - planted[i]);
        err[on] = sqrt(e / D);
        ref_work_free(&w);
        ref_head_free(h);
    }
    /* Off, the bulk term sees a mean of ~600 values: error ~1.  On, the
     * revived value carries the other ~37 values of its buckets at 0.05
     * each, the median of 3 rows: error ~0.05 sqrt(37) = 0.3. */
    TU_CHECK(err[0] > 0.8, "without revival the error is %g: the outlier is not an outlier", err[0]);
    TU_CHECK(err[1] < 0.5 * err[0], "revival: error %g against %g without", err[1], err[0]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("moment");
    TCase *tc = tu_tcase(s, "float64");
    tcase_add_loop_test(tc, test_agrees_with_float64, 0, 3);
    tcase_add_test(tc, test_bound_detects_wrong_variance);
    tcase_add_loop_test(tc, test_tolerance_model, 0, 3);
    tcase_add_loop_test(tc, test_tolerance_typical, 0, 2);
    tc = tu_tcase(s, "moments");
    tcase_add_loop_test(tc, test_no_collisions_exact, 0, 3);
    tcase_add_loop_test(tc, test_unbiased_over_seeds, 0, 3);
    tc = tu_tcase(s, "revival");
    tcase_add_loop_test(tc, test_revival_finds_outlier, 0, 5);
    return tu_run(s);
}
