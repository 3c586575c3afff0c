/* bound.c: the statistical error bound of spec §15, checked empirically.
 *
 * Each trial builds a head cache whose vague part holds the same N tokens
 * (fixed data, centring on) under a different hash seed, picks a target
 * token t and coordinate i, and records whether the reconstruction error
 * |x^_ti - x_ti| exceeds eps.  eps is chosen per trial so that the bound of
 * spec §15 for that (t, i) equals B = 0.2:
 *   mean rows:    P <= T_i / (d w eps^2)
 *   median rows:  each row fails with p <= T_i / (w eps^2); P <= sum_{j >=
 *                 (d+1)/2} C(d,j) p^j (1-p)^(d-j)  (p <= 1/2)
 * with T_i = sum_{u != t} (x_ui - mu_i)^2, the centred tail energy.  Every
 * trial then fails with probability at most B, so the number of failures in
 * n independent trials is stochastically below Binomial(n, B); the test
 * rejects when P(Binomial(n, B) >= failures) < 1e-6 (one-sided, GSL).  The
 * seeds are fixed, so the outcome is deterministic; 1e-6 keeps a correct
 * implementation far from the edge.  Float32 rounding (relative 1e-6 of the
 * values) is negligible against eps (about the spread of the data). */
#include <config.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_sf_gamma.h>
#include <math.h>
#include <stdlib.h>
#include "testutil.h"

enum { N = 64, D = 4, W = 16, TRIALS = 400 };
#define B 0.2
#define ALPHA 1e-6

static float data[N + 1][D];

static void make_data(void)
{
    tu_rng r;
    tu_seed(&r, 2024);
    tu_fill(&r, &data[0][0], (N + 1) * D, 2.0, 1.0);   /* mean 2: centring matters */
}

/* A head with positions 0 .. N-1 vague and N in the window. */
static ref_head *build(int d, kvr_rows rows, uint64_t seed)
{
    kvr_config cfg = tu_config(0, 1, 0, d, W, KVR_IMP_NONE);
    cfg.rows = rows;
    cfg.centre = 1;
    cfg.seed = seed;
    ref_head *h;
    TU_EQ(ref_head_alloc(&h, &cfg, D, 0, 0), KVR_OK);
    for (int t = 0; t <= N; t++)
        ref_append(h, data[t], data[t]);
    TU_EQ(h->n_vague, N);
    return h;
}

/* Median bound as a function of the per-row probability p. */
static double median_bound(int d, double p)
{
    double sum = 0.0;
    for (int j = (d + 1) / 2; j <= d; j++)
        sum += gsl_sf_choose((unsigned)d, (unsigned)j) * pow(p, j) * pow(1 - p, d - j);
    return sum;
}

/* The per-row p with median_bound(d, p) = B (bisection on [0, 1/2]; the
 * bound is increasing in p). */
static double median_p(int d)
{
    double lo = 0.0, hi = 0.5;
    TU_OK(median_bound(d, hi) > B);
    for (int it = 0; it < 100; it++) {
        double mid = 0.5 * (lo + hi);
        if (median_bound(d, mid) > B) hi = mid; else lo = mid;
    }
    return lo;                                     /* bound(lo) <= B */
}

/* Centred tail energy of target t along direction q ([D]; NULL: coordinate i). */
static double tail_energy(int t, int i, const double *q)
{
    double mu[D] = {0};
    for (int u = 0; u < N; u++)
        for (int j = 0; j < D; j++) mu[j] += data[u][j] / (double)N;
    double T = 0.0;
    for (int u = 0; u < N; u++) {
        if (u == t) continue;
        double x = 0.0;
        if (q) for (int j = 0; j < D; j++) x += q[j] * (data[u][j] - mu[j]);
        else x = data[u][i] - mu[i];
        T += x * x;
    }
    return T;
}

static void assert_not_above(unsigned fails, const char *what, int d)
{
    double pv = fails == 0 ? 1.0 : gsl_cdf_binomial_Q(fails - 1, B, TRIALS);  /* P(X >= fails) */
    TU_CHECK(pv >= ALPHA, "%s d = %d: %u of %d trials exceed eps, bound %.2f (p-value %g)",
                  what, d, fails, TRIALS, B, pv);
}

START_TEST(test_coordinate_bound)
{
    static const int depths[] = {1, 3, 5};
    int d = depths[_i % 3];
    kvr_rows rows = (kvr_rows)(_i / 3);
    double p_row = rows == KVR_ROWS_MEDIAN ? median_p(d) : 0.0;
    make_data();
    unsigned fails = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        ref_head *h = build(d, rows, UINT64_C(0x1000) + (uint64_t)trial * 7 + (uint64_t)_i * 100003);
        int t = trial % N, i = (trial / N) % D;
        double T = tail_energy(t, i, NULL);
        double eps = rows == KVR_ROWS_MEAN ? sqrt(T / (d * W * B)) : sqrt(T / (W * p_row));
        float k[D], v[D];
        ref_reconstruct(h, t, k, v);
        fails += fabs((double)k[i] - data[t][i]) > eps;
        ref_head_free(h);
    }
    assert_not_above(fails, rows == KVR_ROWS_MEAN ? "mean rows" : "median rows", d);
}
END_TEST

/* Per-score error q . (k^_t - k_t), mean rows: the bound with x_ui replaced
 * by q . (x_u - mu), exactly as for a coordinate. */
START_TEST(test_score_bound)
{
    static const int depths[] = {1, 3, 5};
    int d = depths[_i];
    make_data();
    tu_rng r;
    tu_seed(&r, 9);
    unsigned fails = 0;
    for (int trial = 0; trial < TRIALS; trial++) {
        double q[D];
        for (int j = 0; j < D; j++) q[j] = tu_gauss(&r);
        ref_head *h = build(d, KVR_ROWS_MEAN, UINT64_C(0x5000) + (uint64_t)trial * 13 + (uint64_t)_i * 7919);
        int t = trial % N;
        double eps = sqrt(tail_energy(t, 0, q) / (d * W * B));
        float k[D], v[D];
        ref_reconstruct(h, t, k, v);
        double err = 0.0;
        for (int j = 0; j < D; j++) err += q[j] * ((double)k[j] - data[t][j]);
        fails += fabs(err) > eps;
        ref_head_free(h);
    }
    assert_not_above(fails, "score, mean rows", d);
}
END_TEST

/* The bound is not vacuous: at eps = 0.3 sqrt(T / (d w)) errors do occur,
 * i.e. the trials above really exercise collisions (with no collisions
 * every error would be rounding only, and every rate zero). */
START_TEST(test_not_vacuous)
{
    make_data();
    for (int rows = 0; rows < 2; rows++) {
        unsigned fails = 0;
        for (int trial = 0; trial < TRIALS; trial++) {
            ref_head *h = build(3, (kvr_rows)rows, UINT64_C(0x9000) + (uint64_t)trial);
            int t = trial % N, i = (trial / N) % D;
            double eps = 0.3 * sqrt(tail_energy(t, i, NULL) / (3 * W));
            float k[D], v[D];
            ref_reconstruct(h, t, k, v);
            fails += fabs((double)k[i] - data[t][i]) > eps;
            ref_head_free(h);
        }
        TU_CHECK(fails > 0, "rows %d: no error above 0.3 sqrt(T/(dw)) in %d trials", rows, TRIALS);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("bound");
    TCase *tc = tu_tcase(s, "spec 15");
    tcase_add_loop_test(tc, test_coordinate_bound, 0, 6);
    tcase_add_loop_test(tc, test_score_bound, 0, 3);
    tcase_add_test(tc, test_not_vacuous);
    return tu_run(s);
}
