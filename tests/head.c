/* head.c: parts and lifecycle of a head cache (spec §3): every position in
 * exactly one part after every operation, the invariants of spec §3.5, the
 * tie rule of spec §3.4 on hand-built scores, and the eviction baselines of
 * spec §3.6. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

/* A random configuration and a random sequence of prefill / append (one or a
 * block) / attend (updating or peeking) on two layers; after every operation
 * ref_head_check holds for every head and every position of both layers is
 * in exactly one part (tu_assert_parts counts the parts independently). */
static void random_run(uint64_t seed)
{
    tu_rng r;
    tu_seed(&r, seed);
    kvr_importance imp = (kvr_importance)tu_int(&r, 0, 3);
    int S = tu_int(&r, 0, 4), R = tu_int(&r, 1, 8), C = imp == KVR_IMP_NONE ? 0 : tu_int(&r, 0, 6);
    int depth = tu_int(&r, 0, 3), width = tu_int(&r, 0, 3) == 0 ? 0 : tu_int(&r, 1, 16);
    kvr_config cfg = tu_config(S, R, C, depth, width, imp);
    cfg.elem = (kvr_elem)tu_int(&r, 0, 2);
    cfg.rows = (kvr_rows)tu_int(&r, 0, 1);
    cfg.centre = tu_int(&r, 0, 1);
    cfg.shrink = tu_int(&r, 0, 1);
    cfg.obs_window = tu_int(&r, 1, 6);
    cfg.pool_kernel = 2 * tu_int(&r, 0, 3) + 1;
    cfg.pool = (kvr_pool)tu_int(&r, 0, 1);
    cfg.seed = tu_next(&r);
    int H = tu_int(&r, 1, 2), G = tu_int(&r, 1, 3), D = 4;
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 2, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float *k = malloc(40 * (size_t)H * G * D * sizeof *k), *v = malloc(40 * (size_t)H * G * D * sizeof *v);
    float *q = malloc(40 * (size_t)H * G * D * sizeof *q), *out = malloc((size_t)H * G * D * sizeof *out);
    TU_OK(k && v && q && out);
    long expect[2] = {0, 0};
    for (int op = 0; op < 40; op++) {
        int layer = tu_int(&r, 0, 1);
        long n = kvr_length(c, layer);
        double what = tu_unif(&r);
        if (n == 0 && what < 0.5) {
            int m = tu_int(&r, 1, 30), need = ref_keeps_scores(kvr_cache_head(c, layer, 0));
            int n_obs = tu_int(&r, need, m < 8 ? m : 8);
            tu_fill(&r, k, (size_t)m * H * D, 0.5, 1.0);
            tu_fill(&r, v, (size_t)m * H * D, -0.5, 1.0);
            tu_fill(&r, q, (size_t)n_obs * H * G * D, 0.0, 1.0);
            TU_EQ(kvr_prefill(c, layer, m, k, v, n_obs, q), KVR_OK);
            expect[layer] += m;
        } else if (n == 0 || what < 0.7) {
            int m = tu_int(&r, 0, 1) ? 1 : tu_int(&r, 2, 12);
            tu_fill(&r, k, (size_t)m * H * D, 0.5, 1.0);
            tu_fill(&r, v, (size_t)m * H * D, -0.5, 1.0);
            TU_EQ(kvr_append(c, layer, m, k, v), KVR_OK);
            expect[layer] += m;
        } else {
            tu_fill(&r, q, (size_t)H * G * D, 0.0, 1.0);
            TU_EQ(kvr_attend(c, layer, q, out, tu_int(&r, 0, 1) ? KVR_ATTEND_PEEK : 0), KVR_OK);
            if (op % 8 == 0)
                tu_assert_attention(c, layer, q, out);
        }
        TU_EQ(kvr_length(c, layer), expect[layer]);
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
        tu_assert_parts(c, 1);
    }
    free(k); free(v); free(q); free(out);
    kvr_cache_free(c);
}

START_TEST(test_random_lifecycle)
{
    random_run((uint64_t)_i * 7919 + 1);
}
END_TEST

/* Append a token with key (pos, 0) and value (0, pos) to a bare head. */
static void push(ref_head *h)
{
    float k[2] = {(float)h->n, 0.0f}, v[2] = {0.0f, (float)h->n};
    ref_append(h, k, v);
    char why[200] = "";
    TU_CHECK(ref_head_check(h, why, sizeof why) == 0, "%s", why);
}

static void set_score(ref_head *h, long pos, float score)
{
    float *slot = ref_score_slot(h, pos);
    ck_assert_ptr_nonnull(slot);
    *slot = score;
}

static void expect_cands(const ref_head *h, int n, const int *pos, const float *score)
{
    TU_EQ(h->n_cand, n);
    for (int j = 0; j < n; j++) {
        TU_EQ(h->cand_pos[j], pos[j]);
        TU_OK(h->cand_score[j] == score[j]);
    }
}

/* spec §3.4, S = 0, R = 1, C = 2: the token leaving the window carries the
 * score set on it while it was in the window. */
static void tie_rule(int depth, int width)
{
    kvr_config cfg = tu_config(0, 1, 2, depth, width, KVR_IMP_H2O);
    ref_head *h;
    TU_EQ(ref_head_alloc(&h, &cfg, 2, 0, 0), KVR_OK);
    kvr_part gone = (depth > 0 && width > 0) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
    push(h); set_score(h, 0, 1.0f);
    push(h); set_score(h, 1, 1.0f);          /* 0 is a candidate (score 1) */
    push(h); set_score(h, 2, 1.0f);          /* 0, 1 candidates */
    expect_cands(h, 2, (int[]){0, 1}, (float[]){1.0f, 1.0f});
    /* 2 leaves the window with score 1: a three-way tie; the oldest, 0, leaves */
    push(h);
    expect_cands(h, 2, (int[]){1, 2}, (float[]){1.0f, 1.0f});
    TU_EQ(ref_part_of(h, 0), gone);
    TU_EQ(h->n_vague, 1);
    /* a newcomer strictly below the minimum goes straight to the vague part */
    set_score(h, 3, 0.5f);
    push(h);
    expect_cands(h, 2, (int[]){1, 2}, (float[]){1.0f, 1.0f});
    TU_EQ(ref_part_of(h, 3), gone);
    TU_EQ(h->n_vague, 2);
    /* a newcomer equal to the minimum stays; the older tied candidate leaves */
    set_score(h, 2, 0.25f);
    set_score(h, 4, 0.25f);
    push(h);
    expect_cands(h, 2, (int[]){1, 4}, (float[]){1.0f, 0.25f});
    TU_EQ(ref_part_of(h, 2), gone);
    /* the lowest score leaves even when it is the newer candidate */
    set_score(h, 5, 2.0f);
    push(h);
    expect_cands(h, 2, (int[]){1, 5}, (float[]){1.0f, 2.0f});
    TU_EQ(ref_part_of(h, 4), gone);
    TU_EQ(h->n_vague, 4);
    /* the lowest score leaves even when it is the older candidate and the
     * newcomer is only just above it */
    set_score(h, 6, nextafterf(1.0f, 2.0f));
    push(h);
    expect_cands(h, 2, (int[]){5, 6}, (float[]){2.0f, nextafterf(1.0f, 2.0f)});
    TU_EQ(ref_part_of(h, 1), gone);
    /* negative zero and zero are equal scores: the tie goes to the older */
    set_score(h, 5, -0.0f);
    set_score(h, 6, 0.0f);
    set_score(h, 7, 0.0f);
    push(h);
    TU_EQ(h->n_cand, 2);
    TU_EQ(h->cand_pos[0], 6);
    TU_EQ(h->cand_pos[1], 7);
    if (depth > 0 && width > 0) {                      /* the vague ones are in the sketch */
        long load = 0;
        for (int b = 0; b < width; b++)
            load += h->sk_load[b];
        TU_EQ(load, h->n_vague);
    }
    ref_head_free(h);
}

START_TEST(test_tie_rule)
{
    tie_rule(0, 0);
    tie_rule(1, 4);
    tie_rule(3, 0);
}
END_TEST

/* spec §3.3 with C = 0: the token leaving the window goes straight to the
 * vague part, so after n appends the parts are exactly the ranges. */
START_TEST(test_no_candidates)
{
    kvr_config cfg = tu_config(3, 4, 0, 2, 5, KVR_IMP_NONE);
    ref_head *h;
    TU_EQ(ref_head_alloc(&h, &cfg, 2, 0, 0), KVR_OK);
    for (int n = 1; n <= 20; n++) {
        push(h);
        for (long p = 0; p < n; p++) {
            kvr_part want = p < 3 ? KVR_PART_SINK : p >= n - 4 ? KVR_PART_RECENT : KVR_PART_VAGUE;
            TU_EQ(ref_part_of(h, p), want);
        }
        long vague = n - 3 - 4;
        TU_EQ(h->n_vague, vague > 0 ? vague : 0);
    }
    /* exact positions read back as stored */
    float k[2], v[2];
    TU_OK(ref_exact_kv(h, 1, k, v) && k[0] == 1.0f && v[1] == 1.0f);
    TU_OK(ref_exact_kv(h, 17, k, v) && k[0] == 17.0f && v[1] == 17.0f);
    TU_OK(!ref_exact_kv(h, 10, k, v));
    ref_head_reset(h);
    TU_EQ(h->n, 0);
    TU_EQ(h->n_vague, 0);
    TU_EQ(h->sk_load[0] + h->sk_load[1] + h->sk_load[2] + h->sk_load[3] + h->sk_load[4], 0);
    ref_head_free(h);
}
END_TEST

/* spec §3.6: eviction baselines hold no sketch; positions leaving the exact
 * set are dropped: KVR_PART_DROPPED, KVR_EDROPPED from kvr_reconstruct,
 * absent from attention, and their scores are gone. */
START_TEST(test_eviction_drops)
{
    static const char *methods[] = {"streaming", "h2o", "snapkv", "tova"};
    for (size_t mi = 0; mi < sizeof methods / sizeof methods[0]; mi++) {
        enum { N = 200, D = 8, H = 2, G = 2 };
        kvr_config cfg;
        TU_EQ(kvr_method_config(methods[mi], 0.25, N, D, KVR_F32, &cfg), KVR_OK);
        TU_EQ(cfg.depth * cfg.width, 0);
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
        static float k[N][H][D], v[N][H][D], q[H * G][D], out[H * G][D];
        tu_rng r;
        tu_seed(&r, mi);
        tu_fill(&r, &k[0][0][0], sizeof k / sizeof(float), 0.0, 1.0);
        tu_fill(&r, &v[0][0][0], sizeof v / sizeof(float), 0.0, 1.0);
        for (int t = 0; t < N; t++) {
            TU_EQ(kvr_append(c, 0, 1, &k[t][0][0], &v[t][0][0]), KVR_OK);
            tu_fill(&r, &q[0][0], sizeof q / sizeof(float), 0.0, 1.0);
            TU_EQ(kvr_attend(c, 0, &q[0][0], &out[0][0], 0), KVR_OK);
        }
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
        long dropped = 0;
        for (long p = 0; p < N; p++) {
            kvr_part part;
            float rk[D], rv[D], score;
            TU_EQ(kvr_part_of(c, 0, 1, p, &part), KVR_OK);
            ck_assert_int_ne(part, KVR_PART_VAGUE);
            int status = kvr_reconstruct(c, 0, 1, p, rk, rv);
            if (part == KVR_PART_DROPPED) {
                dropped++;
                TU_EQ(status, KVR_EDROPPED);
                TU_EQ(kvr_score_of(c, 0, 1, p, &score), KVR_ESTATE);
            } else {
                TU_EQ(status, KVR_OK);
                TU_OK(memcmp(rk, k[p][1], sizeof rk) == 0 && memcmp(rv, v[p][1], sizeof rv) == 0);
            }
        }
        long kept = (long)cfg.sinks + cfg.window + cfg.candidates;
        TU_EQ(dropped, N - kept);
        TU_EQ(kvr_cache_head(c, 0, 1)->n_vague, N - kept);
        TU_EQ(tu_assert_attention(c, 0, &q[0][0], &out[0][0]), kept);
        kvr_cache_free(c);
    }
}
END_TEST

/* depth > 0 but width 0 (or the reverse) is also an eviction baseline. */
START_TEST(test_zero_width_drops)
{
    kvr_config cfg = tu_config(1, 2, 0, 3, 0, KVR_IMP_NONE);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, 2, &cfg, KVR_BACKEND_REF), KVR_OK);
    float kv[6][2] = {{1, 2}, {3, 4}, {5, 6}, {7, 8}, {9, 10}, {11, 12}};
    TU_EQ(kvr_append(c, 0, 6, &kv[0][0], &kv[0][0]), KVR_OK);
    float k[2], v[2];
    TU_EQ(kvr_reconstruct(c, 0, 0, 1, k, v), KVR_EDROPPED);
    TU_EQ(kvr_reconstruct(c, 0, 0, 3, k, v), KVR_EDROPPED);
    TU_EQ(kvr_reconstruct(c, 0, 0, 4, k, v), KVR_OK);
    TU_OK(k[0] == 9 && v[1] == 10);
    tu_assert_parts(c, 0);
    kvr_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("head");
    TCase *tc = tu_tcase(s, "lifecycle");
    tcase_add_loop_test(tc, test_random_lifecycle, 0, 150);
    tcase_add_test(tc, test_no_candidates);
    tc = tu_tcase(s, "tie rule");
    tcase_add_test(tc, test_tie_rule);
    tc = tu_tcase(s, "eviction");
    tcase_add_test(tc, test_eviction_drops);
    tcase_add_test(tc, test_zero_width_drops);
    return tu_run(s);
}
