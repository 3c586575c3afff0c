/* attend.c: decode attention (spec §11) and the importance updates of spec
 * §6.1.  Attention is compared with float64 attention over the keys and
 * values the cache holds (tu_attention64: the tolerance is derived from the
 * float32 evaluation order in tests/testutil.c, scaled by the logits'
 * magnitudes and sum_t w_t |v_t|). */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

/* Budget 100%: every method keeps every position exact, and attention equals
 * float64 full attention over the inputs (rounded to the element type) for
 * GQA groups 1, 2, 4 and head dims 8, 64. */
START_TEST(test_full_budget)
{
    static const int groups[] = {1, 2, 4}, dims[] = {8, 64};
    enum { N = 48, H = 2 };
    for (int m = 0; kvr_method_name(m); m++)
        for (int gi = 0; gi < 3; gi++) {
            int G = groups[gi], D = dims[(m + gi) % 2];
            kvr_elem elem = (kvr_elem)((m + gi) % 3);
            kvr_config cfg;
            TU_EQ(kvr_method_config(kvr_method_name(m), 1.0, N, D, elem, &cfg), KVR_OK);
            kvr_cache *c;
            TU_EQ(kvr_cache_create(&c, 2, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
            float *k = malloc((size_t)N * H * D * sizeof *k), *v = malloc((size_t)N * H * D * sizeof *v);
            float *q = malloc((size_t)H * G * D * sizeof *q), *out = malloc((size_t)H * G * D * sizeof *out);
            tu_rng r;
            tu_seed(&r, (uint64_t)(m * 10 + gi));
            tu_fill(&r, k, (size_t)N * H * D, 0.0, 1.0);
            tu_fill(&r, v, (size_t)N * H * D, 1.0, 2.0);
            for (int t = 0; t < N; t += 16) {
                TU_EQ(kvr_append(c, 1, 16, k + (size_t)t * H * D, v + (size_t)t * H * D), KVR_OK);
                tu_fill(&r, q, (size_t)H * G * D, 0.0, 1.5);
                TU_EQ(kvr_attend(c, 1, q, out, 0), KVR_OK);
                TU_EQ(tu_assert_attention(c, 1, q, out), t + 16);
            }
            /* every position is exact and holds the rounded input */
            for (int h = 0; h < H; h++)
                for (long p = 0; p < N; p++) {
                    float rk[64], rv[64];
                    kvr_part part;
                    TU_EQ(kvr_part_of(c, 1, h, p, &part), KVR_OK);
                    TU_OK(part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE);
                    TU_EQ(kvr_reconstruct(c, 1, h, p, rk, rv), KVR_OK);
                    for (int i = 0; i < D; i++) {
                        TU_OK(rk[i] == kvr_elem_round(elem, k[((size_t)p * H + h) * D + i]));
                        TU_OK(rv[i] == kvr_elem_round(elem, v[((size_t)p * H + h) * D + i]));
                    }
                }
            TU_EQ(kvr_length(c, 0), 0);   /* the other layer is untouched */
            free(k); free(v); free(q); free(out);
            kvr_cache_free(c);
        }
}
END_TEST

/* With a sketch, attention sees the reconstructions of vague positions
 * (spec §11.1): compare with float64 attention over kvr_reconstruct. */
START_TEST(test_with_sketch)
{
    enum { N = 300, H = 2, D = 16 };
    static const char *const paper[] = {"kvreviver-paper", "kvreviver-mean", "kvreviver-shrink",
                                        "kvreviver-nocentre"};
    int G = 1 << (_i % 3);
    kvr_config cfg;
    TU_EQ(kvr_method_config(paper[_i % 4], 0.3, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(cfg.depth > 0 && cfg.width > 0);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[H * D], v[H * D], q[4 * H * D], out[4 * H * D];
    tu_rng r;
    tu_seed(&r, 50 + (uint64_t)_i);
    for (int t = 0; t < N; t++) {
        tu_fill(&r, k, H * D, 0.3, 1.0);
        tu_fill(&r, v, H * D, 0.0, 1.0);
        TU_EQ(kvr_append(c, 0, 1, k, v), KVR_OK);
        tu_fill(&r, q, (size_t)H * G * D, 0.0, 1.0);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
        if (t % 50 == 49)
            TU_EQ(tu_assert_attention(c, 0, q, out), t + 1);
    }
    TU_OK(kvr_cache_head(c, 0, 0)->n_vague > 0);
    kvr_cache_free(c);
}
END_TEST

/* KVR_ATTEND_PEEK changes nothing (every byte of state), and gives the same
 * output, bit for bit, as an updating attention at the same state; the
 * updating one does change the scores. */
START_TEST(test_peek)
{
    enum { N = 40, H = 2, G = 2, D = 8 };
    kvr_config cfg = tu_config(2, 4, 6, 2, 8, KVR_IMP_H2O + _i);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * H * D], v[N * H * D], q[H * G * D], a[H * G * D], b[H * G * D];
    tu_rng r;
    tu_seed(&r, 8);
    tu_fill(&r, k, sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, v, sizeof v / sizeof(float), 0, 1);
    tu_fill(&r, q, sizeof q / sizeof(float), 0, 1);
    TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
    tu_snap *s = tu_snap_take(c);
    TU_EQ(kvr_attend(c, 0, q, a, KVR_ATTEND_PEEK), KVR_OK);
    TU_ASSERT_UNCHANGED(s, c);
    TU_EQ(kvr_attend(c, 0, q, b, 0), KVR_OK);
    TU_OK(memcmp(a, b, sizeof a) == 0);
    char why[256];
    TU_CHECK(!tu_snap_same(s, c, why, sizeof why), "an updating attention changed nothing");
    tu_snap_free(s);
    kvr_cache_free(c);
}
END_TEST

/* spec §6.1 by hand, q = 0: every logit is 0, expf(0) = 1, the sum over the
 * n = 5 positions is 5, each weight is 1.0f/5.0f, and the group's two query
 * heads add to prob = 0.2f + 0.2f = 0.4f, all exact float32 operations.
 *   h2o:  scores 0 -> 0.4f -> 0.4f + 0.4f;   tova: 0.4f both times.
 * Sinks carry no score; a new window token starts at 0 and keeps its score
 * when it becomes a candidate. */
START_TEST(test_scores_uniform)
{
    for (int tova = 0; tova < 2; tova++) {
        kvr_config cfg = tu_config(1, 2, 2, 0, 0, tova ? KVR_IMP_TOVA : KVR_IMP_H2O);
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, 2, 2, &cfg, KVR_BACKEND_REF), KVR_OK);
        float k[5][2] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}}, q[2][2] = {{0, 0}, {0, 0}}, out[2][2];
        TU_EQ(kvr_append(c, 0, 5, &k[0][0], &k[0][0]), KVR_OK);
        float p = 1.0f / 5.0f, prob = p + p, score;
        for (int step = 1; step <= 2; step++) {
            TU_EQ(kvr_attend(c, 0, &q[0][0], &out[0][0], 0), KVR_OK);
            float want = tova ? prob : (step == 1 ? 0.0f + prob : (0.0f + prob) + prob);
            for (long pos = 1; pos < 5; pos++) {
                TU_EQ(kvr_score_of(c, 0, 0, pos, &score), KVR_OK);
                TU_CHECK(score == want, "step %d pos %ld: %a, expected %a", step, pos, (double)score, (double)want);
            }
            TU_EQ(kvr_score_of(c, 0, 0, 0, &score), KVR_ESTATE);
        }
        /* out is the plain mean of the values (all weights 1/5) */
        ck_assert_float_eq_tol(out[0][0], 5.0f, 5.0f * (float)tu_gamma(15));
        float kk[2] = {0, 0};
        TU_EQ(kvr_append(c, 0, 1, kk, kk), KVR_OK);      /* 3 becomes a candidate */
        TU_EQ(kvr_score_of(c, 0, 0, 5, &score), KVR_OK);
        TU_OK(score == 0.0f);
        float want = tova ? prob : prob + prob;
        TU_EQ(kvr_score_of(c, 0, 0, 3, &score), KVR_OK);
        TU_OK(score == want);
        kvr_cache_free(c);
    }
}
END_TEST

/* spec §6.1 on a non-uniform case: D = 1, keys k_t = t/4, the two query
 * heads q = 1 and q = -2.  Expected prob_t = sum_g softmax_g(t) in float64.
 * The float32 weights are within the factor (1 +- 2rho/(1-rho)) of exact
 * (testutil.c, step 2: lambda_t = gamma_4 |q k_t|, eps = max lambda + u
 * (|l - m| + 2 max lambda)), times gamma_{n+1} for the sum and the division;
 * the score update adds one rounding: tol = (2rho/(1-rho) + gamma_{n+3})
 * * sum of the weights' magnitudes, doubled after two steps. */
START_TEST(test_scores_nonuniform)
{
    enum { N = 7 };
    for (int tova = 0; tova < 2; tova++) {
        kvr_config cfg = tu_config(0, 3, 4, 0, 0, tova ? KVR_IMP_TOVA : KVR_IMP_H2O);
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, 2, 1, &cfg, KVR_BACKEND_REF), KVR_OK);
        float k[N], q[2] = {1.0f, -2.0f}, out[2];
        for (int t = 0; t < N; t++) k[t] = (float)t / 4.0f;
        TU_EQ(kvr_append(c, 0, N, k, k), KVR_OK);
        double prob[N] = {0}, rel = 0.0;
        for (int g = 0; g < 2; g++) {
            double m = -INFINITY, sum = 0.0, lambda = 0.0;
            for (int t = 0; t < N; t++) {
                m = fmax(m, q[g] * (double)k[t]);
                lambda = fmax(lambda, tu_gamma(4) * fabs(q[g] * (double)k[t]));
            }
            double eps = 0.0;
            for (int t = 0; t < N; t++) {
                sum += exp(q[g] * (double)k[t] - m);
                eps = fmax(eps, lambda + TU_U * (fabs(q[g] * (double)k[t] - m) + 2 * lambda));
            }
            for (int t = 0; t < N; t++) prob[t] += exp(q[g] * (double)k[t] - m) / sum;
            double rho = exp(eps) * (1 + 2 * TU_U) - 1;
            rel = fmax(rel, 2 * rho / (1 - rho) + tu_gamma(N + 3));
        }
        tu_tally all = TU_TALLY_INIT;      /* mark: the step; i: (step - 1) * N + pos */
        for (int step = 1; step <= 2; step++) {
            TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
            all.mark = step;
            for (long pos = 0; pos < N; pos++) {
                float score;
                TU_EQ(kvr_score_of(c, 0, 0, pos, &score), KVR_OK);
                double want = tova ? prob[pos] : step * prob[pos];
                double tol = rel * (tova ? prob[pos] : step * prob[pos]) * 1.0001;
                tu_tally_add(&all, score, want, tol);
            }
        }
        tu_tally_check(tova ? "tova scores vs float64" : "h2o scores vs float64", &all, 1);
        kvr_cache_free(c);
    }
}
END_TEST

/* A score update touches only the scores: keys, values, sketch and parts stay. */
START_TEST(test_update_only_scores)
{
    enum { N = 30, D = 4 };
    kvr_config cfg = tu_config(1, 3, 4, 2, 4, KVR_IMP_SNAPKV);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * D], q[D], out[D];
    tu_rng r;
    tu_seed(&r, 4);
    tu_fill(&r, k, N * D, 0, 1);
    tu_fill(&r, q, D, 0, 1);
    TU_EQ(kvr_append(c, 0, N, k, k), KVR_OK);
    const ref_head *h = kvr_cache_head(c, 0, 0);
    ref_head before = *h;
    size_t cand = (size_t)h->n_cand * D * 4;
    float *ck = malloc(cand), *sk = malloc((size_t)2 * 4 * D * 4);
    memcpy(ck, h->cand_k, cand);
    memcpy(sk, h->sk_k, (size_t)2 * 4 * D * 4);
    TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
    TU_EQ(h->n_cand, before.n_cand);
    TU_EQ(h->n_vague, before.n_vague);
    TU_OK(memcmp(ck, h->cand_k, cand) == 0);
    TU_OK(memcmp(sk, h->sk_k, (size_t)2 * 4 * D * 4) == 0);
    free(ck);
    free(sk);
    kvr_cache_free(c);
}
END_TEST

/* spec §12.4, the wide pass: finite inputs far above 2^40 (scales 2^64,
 * 2^90 and 2^100, float32 and bfloat16 storage) give a finite output with
 * KVR_OK for every method, except that a configuration with a sketch
 * refuses inputs above 2^95 (spec §4.2: KVR_ERANGE, nothing stored) and one
 * with a quantized tier (the default kvreviver) inputs above 65504 (spec
 * §18.2, §19.2: KVR_ERANGE, nothing stored); where the output is a convex combination of stored
 * values (nothing reconstructed) it lies within their range.  At
 * budget 1 the logits are spread by about 2^128 or more, so the softmax is
 * one-hot: the output is exactly the value of the largest logit, found here
 * in float64 (a gap of at least 1000 between the two largest logits is
 * checked, so exp underflows to 0 for every other position).  The negative
 * control, scale 1, never reaches the wide pass; tu_assert_attention holds
 * its float32 result to the usual tolerance. */
START_TEST(test_huge_inputs)
{
    static const double scales[] = {1.0, 0x1p64, 0x1p90, 0x1p100};
    static const char *const extra[] = {"kvreviver/varcap=inf", "kvreviver/revive=2"};
    enum { N = 120, D = 16, G = 2 };
    int n_methods = 0;
    while (kvr_method_name(n_methods)) n_methods++;
    for (int m = 0; m < n_methods + 2; m++)
        for (int si = 0; si < 4; si++)
            for (int e = 0; e < 3; e += 2) {             /* f32, bf16 */
                const char *name = m < n_methods ? kvr_method_name(m) : extra[m - n_methods];
                double scale = scales[si];
                int full = !strcmp(name, "full");
                kvr_config cfg;
                TU_EQ(kvr_method_config(name, full ? 1.0 : 0.3, N, D, (kvr_elem)e, &cfg), KVR_OK);
                kvr_cache *c;
                TU_EQ(kvr_cache_create(&c, 1, 1, G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
                static float k[N * D], v[N * D], q[G * D], out[G * D];
                tu_rng r;
                tu_seed(&r, (uint64_t)(100 * m + 10 * si + e));
                tu_fill(&r, k, N * D, 0.2, 1.0);
                tu_fill(&r, v, N * D, 0.0, 1.0);
                tu_fill(&r, q, G * D, 0.0, 1.0);
                for (int i = 0; i < N * D; i++) { k[i] *= (float)scale; v[i] *= (float)scale; }
                for (int i = 0; i < G * D; i++) q[i] *= (float)scale;
                int sketched = cfg.depth > 0 && cfg.width > 0;
                int tiered = cfg.tier_bits > 0 && cfg.tier_tokens > 0;
                if ((sketched && scale > 0x1p95) || (tiered && scale > 1.0)) {
                    /* spec §4.2 (a sketch) and §18.2 (codes: |x| <= 65504,
                     * which every scale above 1 passes): refused, nothing stored */
                    TU_EQ(kvr_append(c, 0, N, k, v), KVR_ERANGE);
                    TU_EQ(kvr_length(c, 0), 0);
                    kvr_cache_free(c);
                    continue;
                }
                TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
                TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
                /* the output is a convex combination of held values where
                 * nothing is reconstructed: no sketch, or the moment route
                 * with its bulk at the exact mean (no var_cap, no revival) */
                int bounded = cfg.depth == 0 || cfg.width == 0
                              || (cfg.vague == KVR_VAGUE_MOMENT && cfg.var_cap == 0.0 && cfg.revive == 0.0);
                double vmax = 0.0;
                for (int i = 0; i < N * D; i++) vmax = fmax(vmax, fabs((double)kvr_elem_round((kvr_elem)e, v[i])));
                for (int i = 0; i < G * D; i++) {
                    TU_CHECK(isfinite(out[i]), "%s scale %g elem %d: out[%d] = %g", name, scale, e, i, out[i]);
                    if (bounded)
                        TU_CHECK(fabs(out[i]) <= vmax * (1 + 1e-6), "%s scale %g: |out[%d]| = %g > max |v| = %g",
                                 name, scale, i, out[i], vmax);
                }
                if (scale == 1.0 && (full || cfg.vague == KVR_VAGUE_RECONSTRUCT))
                    TU_EQ(tu_assert_attention(c, 0, q, out), N);
                if (full && scale > 1.0)
                    for (int g = 0; g < G; g++) {
                        double best = -INFINITY, second = -INFINITY;
                        int arg = -1;
                        for (int t = 0; t < N; t++) {
                            double dot = 0.0;
                            for (int i = 0; i < D; i++)
                                dot += (double)q[g * D + i] * kvr_elem_round((kvr_elem)e, k[t * D + i]);
                            dot /= sqrt((double)D);
                            if (dot > best) { second = best; best = dot; arg = t; }
                            else if (dot > second) second = dot;
                        }
                        TU_CHECK(best - second > 1000.0, "gap %g: not one-hot", best - second);
                        for (int i = 0; i < D; i++)
                            TU_CHECK(out[g * D + i] == kvr_elem_round((kvr_elem)e, v[arg * D + i]),
                                     "full scale %g head %d: out[%d] = %g, the top value %g", scale, g, i,
                                     out[g * D + i], kvr_elem_round((kvr_elem)e, v[arg * D + i]));
                    }
                kvr_cache_free(c);
            }
}
END_TEST

/* ref_dots (four dot products side by side) gives, bit for bit, the plain
 * one-at-a-time sum over i in increasing order, for m = 1 to 4 rows in any
 * order and every D from 1 to 70, on values whose sums round. */
START_TEST(test_dots_side_by_side)
{
    tu_rng r;
    tu_seed(&r, 5);
    for (int D = 1; D <= 70; D++) {
        float q[70], k[9 * 70];
        for (int i = 0; i < D; i++) q[i] = (float)(tu_unif(&r) * 2.0 - 1.0);
        for (int i = 0; i < 9 * D; i++) k[i] = (float)(tu_unif(&r) * 2.0 - 1.0) * 1e3f;
        for (int m = 1; m <= 4; m++) {
            long pos[4];
            for (int j = 0; j < m; j++) pos[j] = tu_int(&r, 0, 8);
            float dot[4];
            ref_dots(q, k, pos, m, D, dot);
            for (int j = 0; j < m; j++) {
                float want = 0.0f;
                for (int i = 0; i < D; i++) want += q[i] * k[(size_t)pos[j] * D + i];
                TU_CHECK(!memcmp(&want, &dot[j], sizeof want), "D %d m %d row %d: %a against %a", D, m, j,
                         (double)dot[j], (double)want);
            }
        }
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("attend");
    TCase *tc = tu_tcase(s, "attention");
    tcase_add_test(tc, test_full_budget);
    tcase_add_test(tc, test_dots_side_by_side);
    tcase_add_loop_test(tc, test_with_sketch, 0, 6);
    tcase_add_loop_test(tc, test_peek, 0, 3);
    tcase_add_test(tc, test_huge_inputs);
    tc = tu_tcase(s, "scores");
    tcase_add_test(tc, test_scores_uniform);
    tcase_add_test(tc, test_scores_nonuniform);
    tcase_add_test(tc, test_update_only_scores);
    return tu_run(s);
}
