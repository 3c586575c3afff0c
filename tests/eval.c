/* eval.c: the evaluation's metrics (doc/eval.md §4) on hand-computed cases,
 * the done-when properties of issue 4 (budget 1.0 gives float32 rounding,
 * bytes_ratio <= budget) and the workloads' documented properties
 * (doc/eval.md §2). */
#include <config.h>
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"
#include "harness/eval.h"
#include "harness/interval.h"
#include "harness/workload.h"

/* ---- a workload written by hand ---------------------------------------- */

/* 4 positions, one KV head, one query head, D = 1; positions 0-2 prefill,
 * position 3 decodes.  Keys 0, ln 9, 0, 0 and the decode query 1: the
 * logits (D = 1, so the scale is 1) are 0, ln 9, 0, 0 and full attention
 * weighs the positions 1/12, 9/12, 1/12, 1/12.  Values 0, 6, 0, 3: the full
 * output is (9*6 + 3)/12 = 4.75.  Position 1 is a needle sought at step 3. */
static float hq[4] = {1, 1, 1, 1}, hk[4], hv[4] = {0, 6, 0, 3};
static int hpos[1] = {1}, hstep[1] = {3};

static ev_workload hand_workload(void)
{
    ev_workload w;
    memset(&w, 0, sizeof w);
    hk[0] = 0; hk[1] = logf(9.0f); hk[2] = 0; hk[3] = 0;
    strcpy(w.name, "hand");
    w.n = 4; w.n_prefill = 3; w.n_kv_heads = 1; w.n_q_heads = 1; w.head_dim = 1;
    w.q = hq; w.k = hk; w.v = hv;
    w.n_needles = 1; w.needle_pos = hpos; w.needle_step = hstep;
    return w;
}

/* Tolerance of the hand cases: the library computes the output in float32
 * from 4 terms of size <= 9/12 * 6 = 4.5 and a sum of 4 weights; each
 * operation rounds with u = 2^-24, so |o - 4.75| <= about 16 u * 12 (sum of
 * |terms| and the normalisation, bounded generously by 16 roundings) =
 * 1.1e-5 absolute, 2.4e-6 relative to 4.75.  logf(9) itself is within u of
 * ln 9, which moves the weights by a relative 2u.  1e-5 covers both with
 * room; any wrong mask or formula moves the metrics by more than 0.1. */
#define HAND_TOL 1e-5

/* streaming by hand: 1 sink, a window of 1, no candidates, no sketch. */
static kvr_config streaming_1_1(void)
{
    kvr_config c;
    kvr_config_default(&c);
    c.sinks = 1; c.window = 1; c.candidates = 0; c.depth = 0; c.width = 0;
    c.importance = KVR_IMP_NONE;
    return c;
}

START_TEST(test_hand_streaming)
{
    /* At the decode step position 0 is a sink and 3 the window: 1 and 2
     * were dropped.  The method's output is (0 + 3) / 2 = 1.5:
     *   attn_rel_err = |1.5 - 4.75| / 4.75 = 13/19,
     *   mass_exact   = (1 + 1)/12 = 1/6,
     *   needle: values 0, 6, 0, 3 are at 1.5, 4.5, 1.5, 1.5 from 1.5: the
     *           needle (position 1) is the farthest: a miss, needle_acc 0,
     *   exact_ratio  = 2/4, bytes_ratio = 2 tokens of (K, V) float32 over 4
     *           = 0.5 (no scores: importance none). */
    ev_workload w = hand_workload();
    kvr_config c = streaming_1_1();
    ev_result r;
    ck_assert_int_eq(ev_run_config(&w, &c, &r), KVR_OK);
    ck_assert_double_eq_tol(r.attn_rel_err, 13.0 / 19.0, HAND_TOL);
    ck_assert_double_eq_tol(r.mass_exact, 1.0 / 6.0, HAND_TOL);
    ck_assert_double_eq(r.needle_acc, 0.0);
    ck_assert_double_eq(r.exact_ratio, 0.5);
    ck_assert_double_eq(r.bytes_ratio, 0.5);
    ck_assert_uint_eq(r.bytes_held, 16);
    ck_assert_int_eq(r.samples, 1);
    ck_assert_int_eq(r.needles, 1);
}
END_TEST

START_TEST(test_hand_full)
{
    /* 1 sink and a window of 3: everything exact.  The output is 4.75 up to
     * rounding; the needle's value 6 is at 1.25, the next nearest (3) at
     * 1.75: a hit. */
    ev_workload w = hand_workload();
    kvr_config c = streaming_1_1();
    c.window = 3;
    ev_result r;
    ck_assert_int_eq(ev_run_config(&w, &c, &r), KVR_OK);
    ck_assert_double_le(r.attn_rel_err, HAND_TOL);
    ck_assert_double_eq_tol(r.mass_exact, 1.0, 1e-12);
    ck_assert_double_eq(r.needle_acc, 1.0);
    ck_assert_double_eq(r.exact_ratio, 1.0);
    ck_assert_double_eq(r.bytes_ratio, 1.0);
}
END_TEST

START_TEST(test_hand_candidate)
{
    /* H2O-like: 1 sink, window 1, 1 candidate, accumulated scores.  At
     * prefill (3 positions, observation window = all 3 queries with q = 1)
     * the only middle position is 1, which becomes the candidate; at the
     * decode step 2 leaves the window and competes with 1: position 1 has
     * the larger prefill score (9/10 + 9/11 from queries 1 and 2; query 0
     * sees only position 0), 2 has the score it had in the window at
     * prefill (1/11 from query 2), so 2 leaves.  Exact: 0, 1, 3 with weights 1, 9, 1 of 12:
     *   output (54 + 3)/11 = 57/11, attn_rel_err = |57/11 - 4.75| / 4.75
     *   = (57/11 - 57/12)/(57/12) = 1/11; mass_exact = 11/12; the needle's
     *   value 6 is at 6 - 57/11 = 9/11 from the output, 3 at 24/11: a hit. */
    ev_workload w = hand_workload();
    kvr_config c = streaming_1_1();
    c.candidates = 1;
    c.importance = KVR_IMP_H2O;
    ev_result r;
    ck_assert_int_eq(ev_run_config(&w, &c, &r), KVR_OK);
    ck_assert_double_eq_tol(r.attn_rel_err, 1.0 / 11.0, HAND_TOL);
    ck_assert_double_eq_tol(r.mass_exact, 11.0 / 12.0, HAND_TOL);
    ck_assert_double_eq(r.needle_acc, 1.0);
    ck_assert_double_eq(r.exact_ratio, 0.75);
}
END_TEST

START_TEST(test_retrieves_ties_miss)
{
    /* Values 0, 6, 0, 3; an output of 4.5 is 1.5 from both 6 and 3: a tie
     * is a miss (doc/eval.md §4.5); 4.4 is nearer to 3 (a miss), 4.6 to 6. */
    ev_workload w = hand_workload();
    float o;
    o = 4.5f; ck_assert_int_eq(ev_retrieves(&w, 0, 4, &o, 1, KVR_F32), 0);
    o = 4.4f; ck_assert_int_eq(ev_retrieves(&w, 0, 4, &o, 1, KVR_F32), 0);
    o = 4.6f; ck_assert_int_eq(ev_retrieves(&w, 0, 4, &o, 1, KVR_F32), 1);
    /* only positions 0 .. n-1 compete: with n = 2, 3 is not there */
    o = 4.4f; ck_assert_int_eq(ev_retrieves(&w, 0, 2, &o, 1, KVR_F32), 1);
}
END_TEST

START_TEST(test_full_attention_by_hand)
{
    ev_workload w = hand_workload();
    double out, prob[4];
    float q = 1.0f;
    ev_full_attention(&w, 0, 4, &q, KVR_F32, &out, prob);
    ck_assert_double_eq_tol(out, 4.75, 1e-6);      /* only logf(9)'s rounding: 2u relative */
    ck_assert_double_eq_tol(prob[1], 0.75, 1e-6);
    ck_assert_double_eq_tol(prob[0] + prob[2] + prob[3], 0.25, 1e-6);
}
END_TEST

/* ---- budget 1.0: float32 rounding (issue 4, done when) ------------------ */

/* A first-order bound on the relative error of the library's float32
 * attention (ref/attend.c) against float64 for one query head, derived from
 * the operations it does (u = 2^-24, gamma_m = m u / (1 - m u)):
 *   logit: a float32 dot product of D terms, then the scale 1/sqrtf(D)
 *          (itself within 2u): |dl_t| <= (gamma_D sum_i |q_i k_ti| + 3u |dot_t|) / sqrt(D);
 *   weight: expf(l_t - m) adds u |l_t - m| from the subtraction and 2u from
 *          expf, so each weight moves by a relative eta_t <= |dl_t| + u |l_t - m| + 2u,
 *          and normalised weights by at most 2 max_t eta_t;
 *   output: o_i = sum_t p_t v_ti / sum_t p_t, both sums of n terms in order:
 *          gamma_n sum_t w_t |v_ti| + gamma_n |o_i|, the division u |o_i|.
 * A relative change e of the normalised weights moves o_i by at most
 * e sum_t w_t (|v_ti| + |o_i|).  The bound is the norm over i of the sum
 * of these, over ||o||. */
static double attn_bound(const ev_workload *w, int h, int n, const float *q)
{
    int D = w->head_dim, H = w->n_kv_heads;
    const double u = ldexp(1.0, -24);
    double gD = D * u / (1 - D * u), gn = n * u / (1 - n * u);
    double *prob = malloc(sizeof(double) * (size_t)n), *o = malloc(sizeof(double) * (size_t)D);
    ev_full_attention(w, h, n, q, KVR_F32, o, prob);
    double eta = 0.0, m = -INFINITY;
    double *logit = malloc(sizeof(double) * (size_t)n);
    for (int t = 0; t < n; t++) {
        double dot = 0.0;
        for (int i = 0; i < D; i++) dot += (double)q[i] * w->k[((size_t)t * H + h) * D + i];
        logit[t] = dot / sqrt((double)D);
        if (logit[t] > m) m = logit[t];
    }
    for (int t = 0; t < n; t++) {
        double dot = 0.0, abs_sum = 0.0;
        for (int i = 0; i < D; i++) {
            double x = (double)q[i] * w->k[((size_t)t * H + h) * D + i];
            dot += x;
            abs_sum += fabs(x);
        }
        double dl = (gD * abs_sum + 3 * u * fabs(dot)) / sqrt((double)D);
        double e = dl + u * fabs(logit[t] - m) + 2 * u;
        if (e > eta) eta = e;
    }
    double num = 0.0, den = 0.0;
    for (int i = 0; i < D; i++) {
        double sv = 0.0;
        for (int t = 0; t < n; t++) sv += prob[t] * fabs(w->v[((size_t)t * H + h) * D + i]);
        double b = 2 * eta * (sv + fabs(o[i])) + gn * sv + gn * fabs(o[i]) + u * fabs(o[i]);
        num += b * b;
        den += o[i] * o[i];
    }
    free(prob); free(o); free(logit);
    return sqrt(num) / sqrt(den);
}

START_TEST(test_budget_one_is_rounding)
{
    ev_workload_shape shape = {2, 4, 32, 4};
    ev_workload w;
    ck_assert_int_eq(ev_workload_synthetic(&w, &shape, 512, 7, NULL), KVR_OK);
    /* the mean of the per-sample bounds, as attn_rel_err is a mean */
    double bound = 0.0;
    int G = w.n_q_heads / w.n_kv_heads;
    for (int t = w.n_prefill; t < w.n; t++)
        for (int qh = 0; qh < w.n_q_heads; qh++)
            bound += attn_bound(&w, qh / G, t + 1, w.q + ((size_t)t * w.n_q_heads + qh) * w.head_dim);
    bound /= (double)(w.n - w.n_prefill) * w.n_q_heads;
    ck_assert_double_lt(bound, 1e-3);             /* the bound itself is at rounding level */
    for (int m = 0; kvr_method_name(m); m++) {
        ev_result r;
        ck_assert_int_eq(ev_run(&w, kvr_method_name(m), 1.0, KVR_F32, 1, &r), KVR_OK);
        ck_assert_msg(r.attn_rel_err <= bound, "%s at budget 1: attn_rel_err %g above the float32 bound %g",
                      kvr_method_name(m), r.attn_rel_err, bound);
        ck_assert_double_eq(r.bytes_ratio, 1.0);
        ck_assert_double_eq(r.exact_ratio, 1.0);
        ck_assert_double_eq_tol(r.mass_exact, 1.0, 1e-12);
    }
    ev_workload_free(&w);
}
END_TEST

/* ---- bytes_ratio <= budget (issue 4, done when) ------------------------- */

START_TEST(test_bytes_within_budget)
{
    static const double budgets[] = {0.1, 0.25, 0.5};
    ev_workload_shape shape = {2, 4, 32, 4};
    ev_workload w;
    ck_assert_int_eq(ev_workload_needle(&w, &shape, 1024, 3, NULL), KVR_OK);
    for (int b = 0; b < 3; b++)
        for (int m = 0; kvr_method_name(m); m++) {
            const char *name = kvr_method_name(m);
            if (!strcmp(name, "full")) continue;
            ev_result r;
            ck_assert_int_eq(ev_run(&w, name, budgets[b], KVR_F32, 1, &r), KVR_OK);
            ck_assert_msg(r.bytes_ratio <= budgets[b], "%s: bytes_ratio %g over budget %g",
                          name, r.bytes_ratio, budgets[b]);
            /* every exact token costs at least its K and V: exact_ratio <= bytes_ratio */
            ck_assert_double_le(r.exact_ratio, r.bytes_ratio);
            ck_assert_double_ge(r.mass_exact, 0.0);
            ck_assert_double_le(r.mass_exact, 1.0 + 1e-12);
            ck_assert(r.needle_acc >= 0.0 && r.needle_acc <= 1.0);
        }
    ev_workload_free(&w);
}
END_TEST

/* ---- the workloads' documented properties (doc/eval.md §2) -------------- */

START_TEST(test_needle_properties)
{
    ev_workload_shape shape = {2, 4, 64, 8};
    ev_workload w;
    int n = 2048;
    ck_assert_int_eq(ev_workload_needle(&w, &shape, n, 5, NULL), KVR_OK);
    ck_assert_int_eq(w.n_needles, 8);
    int G = w.n_q_heads / w.n_kv_heads, D = w.head_dim;
    double *prob = malloc(sizeof(double) * (size_t)n), out[64];
    /* while the context is read (the prefill's last queries), each needle
     * gets less than the uniform share 1/(t+1) on average over query heads
     * and needles: "little attention" */
    double needle_share = 0.0;
    int count = 0;
    for (int t = w.n_prefill - 32; t < w.n_prefill; t += 8)
        for (int qh = 0; qh < w.n_q_heads; qh++) {
            ev_full_attention(&w, qh / G, t + 1, w.q + ((size_t)t * w.n_q_heads + qh) * D, KVR_F32, out, prob);
            for (int j = 0; j < w.n_needles; j++) {
                needle_share += prob[w.needle_pos[j]] * (t + 1);
                count++;
            }
        }
    ck_assert_double_lt(needle_share / count, 1.0);
    /* the needle query: most of the full attention mass on its needle
     * (e^2 / (1 + e^2) = 0.88 by design; > 0.5 here), and full attention
     * retrieves it */
    for (int j = 0; j < w.n_needles; j++) {
        int t = w.needle_step[j];
        ck_assert_int_ge(t, w.n_prefill);
        ck_assert_int_lt(w.needle_pos[j], w.n_prefill * 3 / 4);
        for (int i = 0; i < j; i++) ck_assert_int_ne(w.needle_pos[i], w.needle_pos[j]);
        for (int qh = 0; qh < w.n_q_heads; qh++) {
            ev_full_attention(&w, qh / G, t + 1, w.q + ((size_t)t * w.n_q_heads + qh) * D, KVR_F32, out, prob);
            ck_assert_double_gt(prob[w.needle_pos[j]], 0.5);
        }
    }
    free(prob);
    ev_result r;
    ck_assert_int_eq(ev_run(&w, "full", 1.0, KVR_F32, 1, &r), KVR_OK);
    ck_assert_double_eq(r.needle_acc, 1.0);
    /* an eviction method that keeps only sinks and window finds none */
    ck_assert_int_eq(ev_run(&w, "streaming", 0.1, KVR_F32, 1, &r), KVR_OK);
    ck_assert_double_eq(r.needle_acc, 0.0);
    ev_workload_free(&w);
}
END_TEST

START_TEST(test_synthetic_properties)
{
    /* recent window and heavy hitters: under full attention the last 10% of
     * the positions hold more than 10% of the mass (recency), and the top
     * 2% of positions by mass hold more than 2% (concentration) */
    ev_workload_shape shape = {1, 1, 64, 4};
    ev_workload w;
    int n = 2048;
    ck_assert_int_eq(ev_workload_synthetic(&w, &shape, n, 9, NULL), KVR_OK);
    double *prob = malloc(sizeof(double) * (size_t)n), out[64];
    int t = n - 1;
    ev_full_attention(&w, 0, n, w.q + (size_t)t * 64, KVR_F32, out, prob);
    double recent = 0.0;
    for (int p = n - n / 10; p < n; p++) recent += prob[p];
    ck_assert_double_gt(recent, 0.1);
    /* seeded: the same seed makes the same workload, another seed another */
    ev_workload w2;
    ck_assert_int_eq(ev_workload_synthetic(&w2, &shape, n, 9, NULL), KVR_OK);
    ck_assert_int_eq(memcmp(w.k, w2.k, sizeof(float) * (size_t)n * 64), 0);
    ev_workload_free(&w2);
    ck_assert_int_eq(ev_workload_synthetic(&w2, &shape, n, 10, NULL), KVR_OK);
    ck_assert_int_ne(memcmp(w.k, w2.k, sizeof(float) * (size_t)n * 64), 0);
    ev_workload_free(&w2);
    free(prob);
    ev_workload_free(&w);
}
END_TEST

START_TEST(test_bad_shapes)
{
    ev_workload w;
    ev_workload_shape shape = {2, 4, 16, 16};
    ck_assert_int_eq(ev_workload_synthetic(&w, &shape, 16, 1, NULL), KVR_EINVAL);  /* no prefill */
    ck_assert_int_eq(ev_workload_needle(&w, &shape, 40, 1, NULL), KVR_EINVAL);     /* no room for needles */
    ev_workload_shape gqa = {3, 4, 16, 1};
    ck_assert_int_eq(ev_workload_synthetic(&w, &gqa, 64, 1, NULL), KVR_EINVAL);    /* 4 % 3 != 0 */
}
END_TEST

/* The Wilson 95% interval against values worked by hand from its formula
 * with z = 1.959963984540054: k = 0 gives [0, z^2 / (n + z^2)], k = n gives
 * [n / (n + z^2), 1], k = n/2 is symmetric about 1/2; 7 of 10 is the
 * textbook [0.3968, 0.8922].  n = 0 gives NAN. */
START_TEST(test_wilson_by_hand)
{
    const double z = 1.959963984540054, z2 = z * z;
    const struct { long k, n; double lo, hi; } cases[] = {
        {0, 30, 0.0, 0.113513393173969},          /* z2 / (30 + z2) */
        {30, 30, 0.886486606826031, 1.0},         /* 30 / (30 + z2) */
        {15, 30, 0.331541256405338, 0.668458743594662},
        {7, 10, 0.396778147461145, 0.892208732593699},
        {1, 1, 0.206549314377237, 1.0},
    };
    ck_assert(fabs(z2 / (30 + z2) - cases[0].hi) < 1e-12);   /* the hand values agree with the closed forms */
    ck_assert(fabs(30 / (30 + z2) - cases[1].lo) < 1e-12);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double lo, hi;
        ev_wilson(cases[i].k, cases[i].n, &lo, &hi);
        ck_assert_msg(fabs(lo - cases[i].lo) < 1e-12 && fabs(hi - cases[i].hi) < 1e-12,
                      "%ld/%ld: [%.15g, %.15g]", cases[i].k, cases[i].n, lo, hi);
        ck_assert(lo <= (double)cases[i].k / cases[i].n && (double)cases[i].k / cases[i].n <= hi);
    }
    double lo, hi;
    ev_wilson(0, 0, &lo, &hi);
    ck_assert(isnan(lo) && isnan(hi));
    ev_wilson(3, 2, &lo, &hi);
    ck_assert(isnan(lo) && isnan(hi));
    /* more trials, a narrower interval around the same rate */
    double lo2, hi2;
    ev_wilson(21, 30, &lo, &hi);
    ev_wilson(210, 300, &lo2, &hi2);
    ck_assert(hi2 - lo2 < hi - lo && lo2 > lo && hi2 < hi);
}
END_TEST

static Suite *eval_suite(void)
{
    Suite *s = suite_create("eval");
    TCase *tc = tcase_create("hand-computed metrics");
    tcase_add_test(tc, test_hand_streaming);
    tcase_add_test(tc, test_hand_full);
    tcase_add_test(tc, test_hand_candidate);
    tcase_add_test(tc, test_retrieves_ties_miss);
    tcase_add_test(tc, test_full_attention_by_hand);
    tcase_add_test(tc, test_wilson_by_hand);
    suite_add_tcase(s, tc);
    tc = tcase_create("done-when properties");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_budget_one_is_rounding);
    tcase_add_test(tc, test_bytes_within_budget);
    suite_add_tcase(s, tc);
    tc = tcase_create("workloads");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_needle_properties);
    tcase_add_test(tc, test_synthetic_properties);
    tcase_add_test(tc, test_bad_shapes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(eval_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
