/* prefill.c: prefill compression (spec §10) and prefill scores (spec §6.2). */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

/* spec §10: without candidates (C = 0) prefill equals appending the tokens
 * one at a time, byte for byte in every array of every head. */
START_TEST(test_streaming_equals_append)
{
    tu_rng r;
    tu_seed(&r, 300 + (uint64_t)_i);
    enum { H = 2, G = 2, D = 4 };
    kvr_config cfg = tu_config(tu_int(&r, 0, 5), tu_int(&r, 1, 9), 0, tu_int(&r, 0, 3), tu_int(&r, 0, 9),
                               (kvr_importance)tu_int(&r, 0, 3));
    cfg.elem = (kvr_elem)(_i % 3);
    cfg.centre = tu_int(&r, 0, 1);
    cfg.seed = tu_next(&r);
    int n = tu_int(&r, 1, 60), n_obs = tu_int(&r, 0, n < 5 ? n : 5);
    kvr_cache *a, *b;
    TU_EQ(kvr_cache_create(&a, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_cache_create(&b, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float *k = malloc((size_t)n * H * D * sizeof *k), *v = malloc((size_t)n * H * D * sizeof *v);
    float *q = malloc(((size_t)n_obs * H * G * D + 1) * sizeof *q);
    tu_fill(&r, k, (size_t)n * H * D, 1, 1);
    tu_fill(&r, v, (size_t)n * H * D, 0, 2);
    tu_fill(&r, q, (size_t)n_obs * H * G * D, 0, 1);
    TU_EQ(kvr_prefill(a, 0, n, k, v, n_obs, n_obs ? q : NULL), KVR_OK);
    for (int t = 0; t < n; t++)
        TU_EQ(kvr_append(b, 0, 1, k + (size_t)t * H * D, v + (size_t)t * H * D), KVR_OK);
    char why[256] = "";
    TU_CHECK(tu_cache_same(a, b, why, sizeof why), "prefill != appends: %s", why);
    tu_assert_heads_ok(a);
    free(k); free(v); free(q);
    kvr_cache_free(a);
    kvr_cache_free(b);
}
END_TEST

/* spec §6.2 by hand.  With q = 0 every causal softmax is uniform: the query
 * at position j gives 1/(j+1) to each t <= j.  n = 8, W = 2 (queries at 6
 * and 7): raw_t = 1/7 + 1/8 for t <= 6, raw_7 = 1/8.
 *   h2o:     score = raw
 *   snapkv:  avg pooling, kernel 5, zeros outside 0..7, divided by 5
 *            (max pooling: the window maximum)
 *   tova:    the last query only, summed over the group: (1/8) * G
 * All terms are positive, so each float32 value is within gamma_m relative
 * of the exact one, m = the number of roundings on its path (at most 8
 * exponentials and additions per softmax sum, 2 queries x 2 heads, 5 pooled
 * terms and a division): gamma_30 is a safe count. */
START_TEST(test_scores_hand)
{
    enum { N = 8, D = 2, G = 2 };
    double raw[N], want[N];
    for (int t = 0; t < N; t++) raw[t] = G * ((t <= 6 ? 1.0 / 7 : 0.0) + 1.0 / 8);
    float k[N][D], q[3][G][D], score[N];
    for (int t = 0; t < N; t++) { k[t][0] = (float)t; k[t][1] = -1.0f; }
    memset(q, 0, sizeof q);
    for (int imp = KVR_IMP_H2O; imp <= KVR_IMP_TOVA; imp++)
        for (int pool = 0; pool < 2; pool++) {
            kvr_config cfg = tu_config(0, 1, 1, 0, 0, (kvr_importance)imp);
            cfg.obs_window = 2;
            cfg.pool = (kvr_pool)pool;
            for (int t = 0; t < N; t++) {
                if (imp == KVR_IMP_H2O) want[t] = raw[t];
                else if (imp == KVR_IMP_TOVA) want[t] = G * (1.0 / 8);
                else {
                    double acc = pool ? -INFINITY : 0.0;
                    for (int j = t - 2; j <= t + 2; j++) {
                        double x = j >= 0 && j < N ? raw[j] : 0.0;
                        acc = pool ? fmax(acc, x) : acc + x;
                    }
                    want[t] = pool ? acc : acc / 5;
                }
            }
            /* three observed queries, of which the last W = 2 count */
            TU_EQ(ref_prefill_scores(&cfg, D, G, N, &k[0][0], 3, &q[0][0][0], score), KVR_OK);
            tu_tally all = TU_TALLY_INIT;  /* i: the position */
            for (int t = 0; t < N; t++)
                tu_tally_add(&all, score[t], want[t], tu_gamma(30) * want[t]);
            char what[64];
            snprintf(what, sizeof what, "prefill scores, importance %d pool %d", imp, pool);
            tu_tally_check(what, &all, 1);
        }
}
END_TEST

/* spec §10: candidates are the top C middle positions by prefill score,
 * ties keeping the newer.  Hand case: q = 0 (scores as above, h2o), n = 8,
 * S = 1, R = 2, C = 2: the middle is 1..5, all with the same score, so the
 * newest two (4, 5) are kept; 1..3 are vague.  Window and candidates keep
 * their prefill scores. */
START_TEST(test_ties_keep_newer)
{
    enum { N = 8, D = 2 };
    kvr_config cfg = tu_config(1, 2, 2, 1, 4, KVR_IMP_H2O);
    cfg.obs_window = 2;
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float k[N][D], q[2][D];
    for (int t = 0; t < N; t++) { k[t][0] = (float)t; k[t][1] = 1.0f; }
    memset(q, 0, sizeof q);
    TU_EQ(kvr_prefill(c, 0, N, &k[0][0], &k[0][0], 2, &q[0][0]), KVR_OK);
    static const kvr_part want[N] = {KVR_PART_SINK, KVR_PART_VAGUE, KVR_PART_VAGUE, KVR_PART_VAGUE,
                                     KVR_PART_CANDIDATE, KVR_PART_CANDIDATE, KVR_PART_RECENT, KVR_PART_RECENT};
    for (int t = 0; t < N; t++) {
        kvr_part part;
        TU_EQ(kvr_part_of(c, 0, 0, t, &part), KVR_OK);
        TU_CHECK(part == want[t], "position %d: %s", t, kvr_part_name(part));
    }
    float score;
    TU_EQ(kvr_score_of(c, 0, 0, 4, &score), KVR_OK);
    TU_OK(fabs(score - (1.0 / 7 + 1.0 / 8)) <= tu_gamma(30) * (1.0 / 7 + 1.0 / 8));
    TU_EQ(kvr_score_of(c, 0, 0, 7, &score), KVR_OK);
    TU_OK(fabs(score - 1.0 / 8) <= tu_gamma(30) / 8);
    tu_assert_heads_ok(c);
    kvr_cache_free(c);
}
END_TEST

static int rank_cmp(const void *a, const void *b)
{
    const float *x = a, *y = b;                      /* {score, pos} */
    if (x[0] != y[0]) return x[0] > y[0] ? -1 : 1;
    return x[1] < y[1] ? 1 : -1;                     /* newer first */
}

/* Random prompts: the candidates are exactly the top C of the middle by
 * ref_prefill_scores (selected here by an independent sort), the window and
 * candidate scores are those scores, and the invariants hold; GQA groups
 * take their own queries (head h uses query heads h*G .. h*G+G-1). */
START_TEST(test_top_c)
{
    enum { H = 2, D = 4, MAXN = 80 };
    tu_rng r;
    tu_seed(&r, 900 + (uint64_t)_i);
    int G = 1 << tu_int(&r, 0, 2);
    kvr_config cfg = tu_config(tu_int(&r, 0, 4), tu_int(&r, 1, 8), tu_int(&r, 1, 12), tu_int(&r, 0, 2),
                               tu_int(&r, 1, 8), (kvr_importance)tu_int(&r, 1, 3));
    cfg.obs_window = tu_int(&r, 1, 10);
    cfg.pool_kernel = 2 * tu_int(&r, 0, 3) + 1;
    cfg.pool = (kvr_pool)tu_int(&r, 0, 1);
    int n = tu_int(&r, 1, MAXN), n_obs = tu_int(&r, 1, n < 12 ? n : 12);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[MAXN][H][D], v[MAXN][H][D], q[12 * 4 * H * D], hk[MAXN][D], score[MAXN];
    tu_fill(&r, &k[0][0][0], sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, &v[0][0][0], sizeof v / sizeof(float), 0, 1);
    tu_fill(&r, q, sizeof q / sizeof(float), 0, 2);  /* used as [n_obs][H*G][D] */
    TU_EQ(kvr_prefill(c, 0, n, &k[0][0][0], &v[0][0][0], n_obs, q), KVR_OK);
    tu_assert_heads_ok(c);
    tu_assert_parts(c, 0);
    int S = n < cfg.sinks ? n : cfg.sinks, R = n - S < cfg.window ? n - S : cfg.window;
    int M = n - S - R, C = M < cfg.candidates ? M : cfg.candidates;
    for (int h = 0; h < H; h++) {
        for (int t = 0; t < n; t++) memcpy(hk[t], k[t][h], sizeof hk[t]);
        static float packed[12 * 4 * D];             /* this head's group: [n_obs][G][D] */
        for (int j = 0; j < n_obs; j++)
            for (int g = 0; g < G; g++)
                memcpy(&packed[((size_t)j * G + g) * D], &q[((size_t)j * H * G + (size_t)h * G + g) * D],
                       D * sizeof(float));
        TU_EQ(ref_prefill_scores(&cfg, D, G, n, &hk[0][0], n_obs, packed, score), KVR_OK);
        float ranked[MAXN][2];
        for (int j = 0; j < M; j++) { ranked[j][0] = score[S + j]; ranked[j][1] = (float)(S + j); }
        qsort(ranked, (size_t)M, sizeof ranked[0], rank_cmp);
        unsigned char chosen[MAXN] = {0};
        for (int j = 0; j < C; j++) chosen[(int)ranked[j][1]] = 1;
        for (int t = 0; t < n; t++) {
            kvr_part part;
            TU_EQ(kvr_part_of(c, 0, h, t, &part), KVR_OK);
            if (t >= S && t < n - R)
                TU_CHECK((part == KVR_PART_CANDIDATE) == chosen[t], "head %d position %d: %s", h, t,
                              kvr_part_name(part));
            float got;
            if (part == KVR_PART_CANDIDATE || part == KVR_PART_RECENT) {
                TU_EQ(kvr_score_of(c, 0, h, t, &got), KVR_OK);
                TU_OK(got == score[t]);
            }
        }
    }
    kvr_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prefill");
    TCase *tc = tu_tcase(s, "streaming");
    tcase_add_loop_test(tc, test_streaming_equals_append, 0, 40);
    tc = tu_tcase(s, "scores");
    tcase_add_test(tc, test_scores_hand);
    tcase_add_test(tc, test_ties_keep_newer);
    tcase_add_loop_test(tc, test_top_c, 0, 40);
    return tu_run(s);
}
