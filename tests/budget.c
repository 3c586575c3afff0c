/* budget.c: bytes held and the planner (spec §9). */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

/* spec §9.2: for every method, ratio, context, head_dim and element type,
 * the planned head cache holds at most floor(ratio * full) bytes (the
 * "full" method plans for ratio 1), its configuration passes
 * kvr_config_check, and it holds no more positions than the context.  A
 * failing plan returns KVR_EBUDGET and leaves cfg as it was. */
START_TEST(test_plan_grid)
{
    static const double ratios[] = {0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 0.99, 1.0};
    static const long contexts[] = {1, 2, 7, 100, 1000, 4096, 32768, 100000};
    static const int dims[] = {8, 64, 128, 256};
    long ok = 0, refused = 0;
    for (int m = 0; kvr_method_name(m); m++)
        for (size_t ri = 0; ri < sizeof ratios / sizeof ratios[0]; ri++)
            for (size_t ci = 0; ci < sizeof contexts / sizeof contexts[0]; ci++)
                for (size_t di = 0; di < 4; di++)
                    for (int e = 0; e < 3; e++) {
                        const char *name = kvr_method_name(m);
                        double ratio = strcmp(name, "full") ? ratios[ri] : 1.0;
                        long n = contexts[ci];
                        int D = dims[di];
                        kvr_config cfg, before;
                        memset(&cfg, 0xA5, sizeof cfg);
                        before = cfg;
                        int status = kvr_method_config(name, ratios[ri], n, D, (kvr_elem)e, &cfg);
                        if (status != KVR_OK) {
                            TU_CHECK(status == KVR_EBUDGET, "%s %g %ld %d: %s", name, ratio, n, D,
                                          kvr_strerror(status));
                            TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
                            refused++;
                            continue;
                        }
                        ok++;
                        size_t full = kvr_full_bytes(n, D, (kvr_elem)e);
                        size_t budget = (size_t)floor(ratio * (double)full);
                        size_t bytes = kvr_head_bytes(&cfg, D);
                        TU_CHECK(bytes <= budget, "%s ratio %g context %ld D %d %s: %zu bytes > %zu",
                                      name, ratio, n, D, kvr_elem_name((kvr_elem)e), bytes, budget);
                        TU_EQ(kvr_config_check(&cfg, D), KVR_OK);
                        TU_EQ(cfg.elem, e);
                        TU_OK((long)cfg.sinks + cfg.window + cfg.candidates <= n);
                        TU_OK(cfg.window >= 1 && cfg.candidates >= 0 && cfg.width >= 0 && cfg.depth >= 0);
                        TU_OK((cfg.depth == 0) == (cfg.width == 0));
                        if (cfg.importance == KVR_IMP_NONE) TU_EQ(cfg.candidates, 0);
                        if (ratio >= 1.0) {      /* everything exact, nothing else */
                            TU_EQ((long)cfg.sinks + cfg.window, n);
                            TU_EQ(cfg.depth * cfg.width + cfg.candidates, 0);
                        }
                    }
    /* the grid exercises both outcomes */
    TU_OK(ok > 1000 && refused > 10);
}
END_TEST

/* spec §9.1: kvr_head_bytes counts every array the head allocates (and
 * nothing else: scratch is workspace); kvr_bytes sums heads, and full bytes
 * follow the per-layer lengths. */
START_TEST(test_bytes_counted)
{
    tu_rng r;
    tu_seed(&r, 17 + (uint64_t)_i);
    kvr_importance imp = (kvr_importance)tu_int(&r, 0, 3);
    kvr_config cfg = tu_config(tu_int(&r, 0, 5), tu_int(&r, 1, 9), imp ? tu_int(&r, 0, 9) : 0, tu_int(&r, 0, 4),
                               tu_int(&r, 0, 9), imp);
    cfg.centre = tu_int(&r, 0, 1);
    cfg.elem = (kvr_elem)tu_int(&r, 0, 2);
    int L = tu_int(&r, 1, 3), H = tu_int(&r, 1, 3), D = 4 * tu_int(&r, 1, 4);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, L, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    size_t per_head = kvr_head_bytes(&cfg, D);
    TU_EQ(tu_head_state_bytes(kvr_cache_head(c, 0, 0)), per_head);
    TU_EQ(ref_head_bytes(kvr_cache_head(c, L - 1, H - 1)), per_head);
    long len[3] = {0, 0, 0};
    float *x = calloc((size_t)50 * H * D, sizeof *x);
    for (int l = 0; l < L; l++) {
        len[l] = tu_int(&r, 0, 50);
        if (len[l]) TU_EQ(kvr_append(c, l, (int)len[l], x, x), KVR_OK);
    }
    size_t held, full, want_full = 0;
    TU_EQ(kvr_bytes(c, &held, &full), KVR_OK);
    for (int l = 0; l < L; l++) want_full += (size_t)H * kvr_full_bytes(len[l], D, cfg.elem);
    TU_EQ(held, (size_t)L * H * per_head);
    TU_EQ(full, want_full);
    TU_EQ(kvr_full_bytes(10, D, cfg.elem), 10 * 2 * (size_t)D * kvr_elem_size(cfg.elem));
    free(x);
    kvr_cache_free(c);
}
END_TEST

/* A real cache filled to the planned context holds at most the budget, and
 * at ratio 1 every position is exact and reads back as the rounded input. */
START_TEST(test_cache_within_budget)
{
    static const double ratios[] = {0.1, 0.3, 0.6, 1.0};
    enum { N = 400, D = 8, H = 2 };
    double ratio = ratios[_i % 4];
    const char *name = kvr_method_name(_i / 4);
    if (!name) return;
    kvr_elem elem = (kvr_elem)(_i % 3);
    kvr_config cfg;
    int status = kvr_method_config(name, ratio, N, D, elem, &cfg);
    TU_EQ(status, KVR_OK);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N * H * D], v[N * H * D];
    tu_rng r;
    tu_seed(&r, (uint64_t)_i);
    tu_fill(&r, k, sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, v, sizeof v / sizeof(float), 0, 1);
    TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
    size_t held, full;
    TU_EQ(kvr_bytes(c, &held, &full), KVR_OK);
    double eff = strcmp(name, "full") ? (ratio < 1.0 ? ratio : 1.0) : 1.0;
    TU_CHECK(held <= (size_t)H * (size_t)floor(eff * (double)(full / H)), "%s %g: %zu > budget of %zu",
                  name, ratio, held, full);
    if (ratio >= 1.0 || !strcmp(name, "full"))
        for (long p = 0; p < N; p++) {
            float rk[D], rv[D];
            TU_EQ(kvr_reconstruct(c, 0, 1, p, rk, rv), KVR_OK);
            for (int i = 0; i < D; i++) {
                TU_OK(rk[i] == kvr_elem_round(elem, k[((size_t)p * H + 1) * D + i]));
                TU_OK(rv[i] == kvr_elem_round(elem, v[((size_t)p * H + 1) * D + i]));
            }
        }
    kvr_cache_free(c);
}
END_TEST

/* Too small a budget: KVR_EBUDGET, cfg unchanged byte for byte; bad
 * arguments: KVR_EINVAL, cfg unchanged. */
START_TEST(test_plan_refuses)
{
    kvr_config cfg, before;
    kvr_config_default(&cfg);
    before = cfg;
    /* 4 sinks + 1 window token = 5 tokens; 1% of 100 tokens is 1 token */
    TU_EQ(kvr_plan(0.01, 100, 64, &cfg), KVR_EBUDGET);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "sinks"));
    TU_EQ(kvr_plan(0.049, 100, 64, &cfg), KVR_EBUDGET);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    /* a sketch share below one bucket per row gets the sketch's minimum */
    cfg.sketch_share = 1e-9;
    TU_EQ(kvr_plan(0.5, 1000, 64, &cfg), KVR_OK);
    TU_EQ(cfg.width, 1);
    TU_OK(kvr_head_bytes(&cfg, 64) <= (size_t)floor(0.5 * (double)kvr_full_bytes(1000, 64, KVR_F32)));
    /* ... unless that minimum leaves no room for the sinks and a window:
     * 4 sinks (2 KiB), running sums (1 KiB), 1 bucket of depth 3 (1560 B),
     * a window token (512 B) need 5,144 bytes; 5% of 100 tokens is 2,560 */
    kvr_config_paper(&cfg);
    before = cfg;
    TU_EQ(kvr_plan(0.05, 100, 64, &cfg), KVR_EBUDGET);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "minimum"));
    /* one sink is said in the singular (issue 29): 1 sink and a window of
     * one token need 1 KiB; 0.5% of 100 tokens is 256 bytes */
    kvr_config_default(&cfg);
    cfg.sinks = 1;
    TU_EQ(kvr_plan(0.005, 100, 64, &cfg), KVR_EBUDGET);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "cannot hold 1 sink and a window"));
    kvr_config_default(&cfg);
    before = cfg;
    TU_EQ(kvr_plan(0.0, 100, 64, &cfg), KVR_EINVAL);
    TU_EQ(kvr_plan(NAN, 100, 64, &cfg), KVR_EINVAL);
    TU_EQ(kvr_plan(INFINITY, 100, 64, &cfg), KVR_EINVAL);
    TU_EQ(kvr_plan(0.5, 0, 64, &cfg), KVR_EINVAL);
    TU_EQ(kvr_plan(0.5, 100, 0, &cfg), KVR_EINVAL);
    TU_EQ(kvr_plan(0.5, 100, 64, NULL), KVR_EINVAL);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    TU_EQ(kvr_method_config("no-such-method", 0.5, 100, 64, KVR_F32, &cfg), KVR_EINVAL);
    TU_EQ(kvr_method_config("kvreviver", 0.001, 100, 64, KVR_F32, &cfg), KVR_EBUDGET);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    /* a budget is a share of the full cache: above 1 is an error, 1 is not */
    TU_EQ(kvr_plan(1.5, 100, 64, &cfg), KVR_EINVAL);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "ratio = 1.5 is not in (0, 1]"));
    TU_EQ(kvr_method_config("kvreviver", 1.0000001, 100, 64, KVR_F32, &cfg), KVR_EINVAL);
    TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    TU_EQ(kvr_plan(1.0, 100, 64, &cfg), KVR_OK);
    /* each out-of-range field is named on its own, with its range */
    kvr_config_default(&cfg);
    cfg.sketch_share = 2.0;
    TU_EQ(kvr_plan(0.5, 100, 64, &cfg), KVR_EINVAL);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "cfg.sketch_share = 2 is not in [0, 1)"));
    /* a configuration straight from kvr_config_default has no plan: the
     * message says so and names the planner, not a budget */
    kvr_config_default(&cfg);
    kvr_cache *c = NULL;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, 64, &cfg, KVR_BACKEND_REF), KVR_EINVAL);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "kvr_plan"));
    ck_assert_ptr_null(strstr(kvr_last_error(), "budget too small"));
}
END_TEST

/* doc/methods.md §13.2: the default method kvreviver is the moment route
 * (kvreviver-moment, the defaults of kvr_config_default) with a 4-bit tier,
 * field for field, at every budget, context and type of a small grid; the
 * tier holds positions where the budget leaves room for one, and
 * kvreviver-moment is kvr_config_default planned (no tier).  (That the
 * CUDA backend refuses the default is tests/cuda.c's, on a GPU.) */
START_TEST(test_default_method)
{
    static const double ratios[] = {0.1, 0.25, 0.5};
    static const long contexts[] = {1000, 2048, 32768};
    int with_tier = 0;
    for (int ri = 0; ri < 3; ri++)
        for (int ci = 0; ci < 3; ci++)
            for (int e = 0; e < 3; e++) {
                kvr_config def, moment, tiered, base;
                TU_EQ(kvr_method_config("kvreviver", ratios[ri], contexts[ci], 64, (kvr_elem)e, &def), KVR_OK);
                TU_EQ(kvr_method_config("kvreviver-moment", ratios[ri], contexts[ci], 64, (kvr_elem)e, &moment), KVR_OK);
                TU_EQ(kvr_method_config("kvreviver-moment/bits=4", ratios[ri], contexts[ci], 64, (kvr_elem)e, &tiered), KVR_OK);
                TU_OK(memcmp(&def, &tiered, sizeof def) == 0);
                TU_EQ(def.tier_bits, 4);
                TU_EQ(moment.tier_bits, 0);
                TU_EQ(moment.tier_tokens, 0);
                kvr_config_default(&base);
                base.elem = (kvr_elem)e;
                TU_EQ(kvr_plan(ratios[ri], contexts[ci], 64, &base), KVR_OK);
                TU_OK(memcmp(&base, &moment, sizeof base) == 0);
                with_tier += def.tier_tokens > 0;
            }
    TU_OK(with_tier >= 18);   /* every budget below "everything fits" at 2048 and 32768 */
}
END_TEST

/* spec §9.2 step 5: when the candidates end at 0 the window keeps no scores,
 * so the planner gives their bytes to window tokens.  h2o at head_dim 64,
 * float32 (kv = 512 bytes) over 100 positions, budget 3072 bytes: 4 sinks
 * leave 1024; with a score per window token (516) only one token and no
 * candidate (520) fits, without scores two tokens fit and fill the budget
 * exactly.  The negative control, a budget that leaves room for a
 * candidate, keeps its scores. */
START_TEST(test_plan_no_candidates)
{
    kvr_config cfg;
    size_t full = kvr_full_bytes(100, 64, KVR_F32);
    TU_EQ(kvr_method_config("h2o", 3072.0 / (double)full, 100, 64, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.candidates, 0);
    TU_EQ(cfg.window, 2);
    TU_EQ(kvr_head_bytes(&cfg, 64), (size_t)3072);
    /* 4 sinks + 1536 bytes: R = floor(0.5 * 1536 / 516) = 1, C = 1 */
    TU_EQ(kvr_method_config("h2o", 3584.0 / (double)full, 100, 64, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.window, 1);
    TU_EQ(cfg.candidates, 1);
    TU_OK(kvr_head_bytes(&cfg, 64) <= 3584);
}
END_TEST

/* Levers after a kvreviver method's name (doc/methods.md §13.4) change one
 * field each; a bad lever is KVR_EINVAL and leaves cfg as it was. */
START_TEST(test_method_levers)
{
    enum { N = 4096, D = 64 };
    kvr_config cfg, before;
    TU_EQ(kvr_method_config("kvreviver/share=0.5/varcap=inf/revive=2.5/importance=tova/depth=5/rows=mean",
                            0.25, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.sketch_share, 0.5);
    TU_OK(isinf(cfg.var_cap) && cfg.var_cap > 0);
    TU_EQ(cfg.revive, 2.5);
    TU_EQ(cfg.importance, KVR_IMP_TOVA);
    TU_EQ(cfg.depth, 5);
    TU_EQ(cfg.rows, KVR_ROWS_MEAN);
    TU_EQ(kvr_method_config("kvreviver-paper/vague=moment/recent=0.25/shrink=1", 0.25, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.vague, KVR_VAGUE_MOMENT);
    TU_EQ(cfg.recent_share, 0.25);
    TU_EQ(cfg.shrink, 1);
    TU_EQ(kvr_method_config("kvreviver/varcap=0", 0.25, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.var_cap, 0.0);
    before = cfg;
    static const char *bad[] = {
        "kvreviver/", "kvreviver/share", "kvreviver/share=", "kvreviver/=1", "kvreviver/share=x",
        "kvreviver/share=0.2x", "kvreviver/depth=1.5", "kvreviver/depth=65", "kvreviver/revive=-1",
        "kvreviver/revive=inf", "kvreviver/varcap=-1", "kvreviver/varcap=nan", "kvreviver/rows=mode",
        "kvreviver/vague=drop", "kvreviver/importance=none", "kvreviver/centre=2", "kvreviver/colour=red",
        "kvreviver/centre=0",            /* the moment route needs centring */
        "h2o/share=0.5", "kvreviver-paperx", "kvreviver/share=0.25//depth=1",
        "kvreviver/share=2", "kvreviver/share=1", "kvreviver/share=-0.1", "kvreviver/recent=1.5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (kvr_method_config(bad[i], 0.25, N, D, KVR_F32, &cfg) != KVR_EINVAL)
            ck_abort_msg("'%s' was accepted", bad[i]);
        TU_OK(memcmp(&cfg, &before, sizeof cfg) == 0);
    }
    /* a lever out of range is named with its range, not by the planner */
    TU_EQ(kvr_method_config("kvreviver/share=2", 0.25, N, D, KVR_F32, &cfg), KVR_EINVAL);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "lever share=2"));
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "[0, 1)"));
    ck_assert_ptr_null(strstr(kvr_last_error(), "kvr_plan"));
}
END_TEST

/* Planner fields: the defaults keep S = 4 and d = 3; the sketch gets about
 * sketch_share of the budget (at least the share minus one bucket); h2o's
 * window takes about recent_share of the exact bytes; snapkv's window is
 * the observation window when the budget allows. */
START_TEST(test_plan_fields)
{
    enum { N = 10000, D = 64 };
    kvr_config cfg;
    TU_EQ(kvr_method_config("kvreviver", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.sinks, 4);
    TU_EQ(cfg.depth, 1);
    TU_EQ(cfg.vague, KVR_VAGUE_MOMENT);
    TU_EQ(cfg.var_cap, 0.0);
    TU_EQ(cfg.importance, KVR_IMP_H2O);
    size_t budget = (size_t)floor(0.2 * (double)kvr_full_bytes(N, D, KVR_F32));
    size_t bucket = 1 * (2 * D * 4 + 8), sketch = (size_t)cfg.width * bucket + 2 * D * 8;
    size_t tenth = (size_t)floor(0.1 * (double)budget);
    TU_OK(sketch <= tenth && sketch + bucket > tenth);     /* sketch_share 0.1 */
    TU_OK(cfg.window > 0 && cfg.candidates > 0);
    TU_EQ(kvr_method_config("kvreviver-paper", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.vague, KVR_VAGUE_RECONSTRUCT);
    TU_EQ(cfg.importance, KVR_IMP_SNAPKV);
    TU_EQ(cfg.rows, KVR_ROWS_MEDIAN);
    TU_EQ(cfg.depth, 3);
    bucket = 3 * (2 * D * 4 + 8);
    sketch = (size_t)cfg.width * bucket + 2 * D * 8;
    TU_OK(sketch <= budget / 2 && sketch + bucket > budget / 2);  /* sketch_share 0.5 */
    TU_EQ(kvr_method_config("snapkv", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.window, cfg.obs_window);
    TU_EQ(cfg.depth + cfg.width, 0);
    TU_EQ(kvr_method_config("streaming", 0.2, N, D, KVR_F16, &cfg), KVR_OK);
    TU_EQ(cfg.candidates, 0);
    /* streaming spends the whole budget on exact tokens: one more would not fit */
    size_t kv = 2 * D * 2;
    size_t b16 = (size_t)floor(0.2 * (double)kvr_full_bytes(N, D, KVR_F16));
    TU_OK(kvr_head_bytes(&cfg, D) + kv > b16);
    TU_EQ(kvr_method_config("tova", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.window, 1);
    TU_EQ(kvr_method_config("kvreviver-nocentre", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.centre, 0);
    TU_EQ(kvr_method_config("kvreviver-mean", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.rows, KVR_ROWS_MEAN);
    TU_EQ(kvr_method_config("kvreviver-shrink", 0.2, N, D, KVR_F32, &cfg), KVR_OK);
    TU_EQ(cfg.shrink, 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("budget");
    TCase *tc = tu_tcase(s, "planner");
    tcase_add_test(tc, test_plan_grid);
    tcase_add_test(tc, test_plan_refuses);
    tcase_add_test(tc, test_plan_no_candidates);
    tcase_add_test(tc, test_plan_fields);
    tcase_add_test(tc, test_method_levers);
    tcase_add_test(tc, test_default_method);
    tc = tu_tcase(s, "bytes");
    tcase_add_loop_test(tc, test_bytes_counted, 0, 30);
    tcase_add_loop_test(tc, test_cache_within_budget, 0, 36);
    return tu_run(s);
}
