/* reconstruct.c: reconstruction of vague tokens (spec §8): exact without
 * collisions, the row formula and the median / mean combination against a
 * direct float64 evaluation from the sketch arrays, and shrinkage. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

enum { D = 4 };

static size_t bucket_of(uint64_t seed, int r, int w, long pos, float *sign)
{
    uint64_t x = kvr_hash(seed, 0, 0, (uint32_t)r, (uint64_t)pos);
    if (sign) *sign = (float)kvr_hash_sign(x);
    return (size_t)r * w + kvr_hash_bucket(x, (uint32_t)w);
}

/* The first seed from `start` under which positions [first, last) fall in
 * distinct buckets in every one of d rows of width w (checked by the hash). */
static uint64_t seed_without_collisions(uint64_t start, int d, int w, long first, long last)
{
    unsigned char *used = malloc((size_t)d * w);
    for (uint64_t seed = start;; seed++) {
        memset(used, 0, (size_t)d * w);
        int ok = 1;
        for (long p = first; ok && p < last; p++)
            for (int r = 0; ok && r < d; r++) {
                size_t b = bucket_of(seed, r, w, p, NULL);
                ok = !used[b];
                used[b] = 1;
            }
        if (ok) {
            free(used);
            return seed;
        }
    }
}

/* With no collisions, row r of token x holds S = s x, c = s, load 1, so
 * every row estimate is s*(1*(s x - s mu)) + mu:
 *  - centring off (mu = 0): s*(s*x) = x exactly, so every row is x; the
 *    median of equal rows is x exactly (also 0.5f*(x+x) for even d); the mean
 *    sums d copies in float32 (d-1 additions, gamma_{d-1} d|x|) and divides
 *    by d (u): within gamma_d |x|, exact for d = 1, 2.
 *  - centring on: s x - s mu = s*fl(x - mu) (rounding is symmetric), so each
 *    row is fl(fl(x - mu) + mu), within gamma_2 (|x| + |mu|) of x, the same
 *    value in every row: the median is within gamma_2 (|x| + |mu|); the mean
 *    adds gamma_d times the row's magnitude (|x| + gamma_2(|x| + |mu|)). */
START_TEST(test_no_collisions_exact)
{
    enum { N = 40, S = 1, R = 2, W = 2048 };
    int d = 1 + _i % 5;
    kvr_config cfg = tu_config(S, R, 0, d, W, KVR_IMP_NONE);
    cfg.rows = (kvr_rows)((_i / 5) % 2);
    cfg.centre = (_i / 10) % 2;
    cfg.shrink = (_i / 20) % 2;
    cfg.seed = seed_without_collisions(1 + (uint64_t)_i * 1000, d, W, S, N - R);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N][D], v[N][D];
    tu_rng r;
    tu_seed(&r, (uint64_t)_i);
    tu_fill(&r, &k[0][0], N * D, 4.0, 1.0);
    tu_fill(&r, &v[0][0], N * D, -1.0, 3.0);
    TU_EQ(kvr_append(c, 0, N, &k[0][0], &v[0][0]), KVR_OK);
    const ref_head *h = kvr_cache_head(c, 0, 0);
    TU_EQ(h->n_vague, N - S - R);
    tu_tally all = TU_TALLY_INIT;          /* mark: the position; i: (pos * D + coord) * 2 + (v?) */
    for (long p = 0; p < N; p++) {
        float rk[D], rv[D];
        TU_EQ(kvr_reconstruct(c, 0, 0, p, rk, rv), KVR_OK);
        kvr_part part;
        TU_EQ(kvr_part_of(c, 0, 0, p, &part), KVR_OK);
        all.mark = p;
        for (int i = 0; i < D; i++)
            for (int kv = 0; kv < 2; kv++) {
                double x = kv ? v[p][i] : k[p][i], got = kv ? rv[i] : rk[i];
                double mu = cfg.centre ? ref_vague_mean(h, kv ? h->sum_v : h->sum_k, i) : 0.0;
                double tol;
                if (part != KVR_PART_VAGUE || (!cfg.centre && (cfg.rows == KVR_ROWS_MEDIAN || d <= 2)))
                    tol = 0.0;                       /* bit-exact */
                else if (!cfg.centre)
                    tol = tu_gamma(d) * fabs(x);
                else if (cfg.rows == KVR_ROWS_MEDIAN)
                    tol = tu_gamma(2) * (fabs(x) + fabs(mu));
                else
                    tol = tu_gamma(2) * (fabs(x) + fabs(mu)) * (1 + tu_gamma(d)) + tu_gamma(d) * fabs(x);
                tu_tally_add(&all, got, x, tol);
            }
    }
    char what[96];
    snprintf(what, sizeof what, "no collisions: d %d %s centre %d shrink %d", d, cfg.rows ? "mean" : "median",
             cfg.centre, cfg.shrink);
    tu_tally_check(what, &all, 0);
    kvr_cache_free(c);
}
END_TEST

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* spec §8.1-8.3 evaluated in float64 from the sketch arrays: row estimates
 * e_r = s_r alpha_r (S_r - c_r mu) + mu (mu the float32 mean the library
 * uses, alpha_r = 1 or 1/load_r), then the median (middle value, or the mean
 * of the two middle values for even d) or the mean of the rows.
 * Tolerance of the float32 evaluation: each row takes five roundings
 * (c*mu, the subtraction, 1/load, the product by alpha, + mu; s* is exact),
 * so |e^_r - e_r| <= gamma_5 M_r with M_r = alpha(|S| + |c mu|) + |mu|.
 * The median is 1-Lipschitz in the max norm, the even median adds u|lo+hi|,
 * the mean adds gamma_{d-1} and u (sum, division) relative to max|e^_r|:
 * tol = gamma_5 max M + gamma_{d+1} (max|e| + gamma_5 max M). */
START_TEST(test_formula)
{
    enum { N = 90, S = 0, R = 1, W = 5 };
    int d = 1 + _i % 5;
    kvr_config cfg = tu_config(S, R, 0, d, W, KVR_IMP_NONE);
    cfg.rows = (kvr_rows)((_i / 5) % 2);
    cfg.centre = (_i / 10) % 2;
    cfg.shrink = (_i / 20) % 2;
    cfg.seed = 31 * (uint64_t)_i;
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N][D], v[N][D];
    tu_rng r;
    tu_seed(&r, 100 + (uint64_t)_i);
    tu_fill(&r, &k[0][0], N * D, 2.0, 1.0);
    tu_fill(&r, &v[0][0], N * D, 0.0, 1.0);
    TU_EQ(kvr_append(c, 0, N, &k[0][0], &v[0][0]), KVR_OK);
    const ref_head *h = kvr_cache_head(c, 0, 0);
    tu_tally all = TU_TALLY_INIT;          /* mark: the position; i: (pos * 2 + (v?)) * D + coord */
    float means[2 * D];
    ref_vague_means(h, means);
    for (long p = 0; p < N - R; p++) {
        float rk[D], rv[D], wk[D], wv[D];
        TU_EQ(kvr_reconstruct(c, 0, 0, p, rk, rv), KVR_OK);
        /* attention's gather (the means given, the d = 3 loops) is the same
         * float as kvr_reconstruct's general loop, bit for bit */
        ref_reconstruct_with(h, p, means, wk, wv);
        TU_CHECK(memcmp(rk, wk, sizeof rk) == 0 && memcmp(rv, wv, sizeof rv) == 0,
                 "d %d rows %d: ref_reconstruct_with differs from kvr_reconstruct at %ld", d, (int)cfg.rows, p);
        all.mark = p;
        for (int kv = 0; kv < 2; kv++)
            for (int i = 0; i < D; i++) {
                const float *sums = kv ? h->sk_v : h->sk_k;
                double mu = cfg.centre ? (double)ref_vague_mean(h, kv ? h->sum_v : h->sum_k, i) : 0.0;
                double e[5], maxM = 0.0, maxE = 0.0;
                for (int row = 0; row < d; row++) {
                    float s;
                    size_t b = bucket_of(cfg.seed, row, W, p, &s);
                    double Sr = sums[b * D + i], cr = h->sk_count[b];
                    double alpha = cfg.shrink ? 1.0 / h->sk_load[b] : 1.0;
                    e[row] = s * alpha * (Sr - cr * mu) + mu;
                    double M = alpha * (fabs(Sr) + fabs(cr * mu)) + fabs(mu);
                    if (M > maxM) maxM = M;
                    if (fabs(e[row]) > maxE) maxE = fabs(e[row]);
                }
                double want;
                if (cfg.rows == KVR_ROWS_MEAN) {
                    want = 0.0;
                    for (int row = 0; row < d; row++) want += e[row];
                    want /= d;
                } else {
                    qsort(e, (size_t)d, sizeof e[0], cmp_double);
                    want = d % 2 ? e[d / 2] : 0.5 * (e[d / 2 - 1] + e[d / 2]);
                }
                double tol = tu_gamma(5) * maxM + tu_gamma(d + 1) * (maxE + tu_gamma(5) * maxM);
                double got = kv ? rv[i] : rk[i];
                tu_tally_add(&all, got, want, tol);
            }
    }
    char what[96];
    snprintf(what, sizeof what, "formula: d %d %s centre %d shrink %d", d, cfg.rows ? "mean" : "median",
             cfg.centre, cfg.shrink);
    tu_tally_check(what, &all, 0);
    kvr_cache_free(c);
}
END_TEST

/* spec §8.3 on a hand-made case: d = 1, w = 1, centring on, two vague tokens
 * x and y with opposite signs.  mu = (x+y)/2 and x - mu = -(y - mu) = delta,
 * so the bucket holds s_x (x - mu) + s_y (y - mu) = 2 s_x delta after
 * centring: without shrinkage x reads mu + 2 delta = 2x - mu, with shrinkage
 * (load 2) mu + delta = x.  Each side is a handful of float32 roundings of
 * values bounded by |x| + |y| + |mu|: gamma_8 of that covers them. */
START_TEST(test_shrinkage_hand)
{
    for (int shrink = 0; shrink < 2; shrink++) {
        kvr_config cfg = tu_config(0, 1, 0, 1, 1, KVR_IMP_NONE);
        cfg.shrink = shrink;
        cfg.rows = (kvr_rows)(_i % 2);
        for (cfg.seed = 1; kvr_hash_sign(kvr_hash(cfg.seed, 0, 0, 0, 0)) == kvr_hash_sign(kvr_hash(cfg.seed, 0, 0, 0, 1));
             cfg.seed++)
            ;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, 1, 1, &cfg, KVR_BACKEND_REF), KVR_OK);
        float x = 1.75f + (float)_i, y = -0.5f, z = 9.0f;
        float kk[3] = {x, y, z};
        TU_EQ(kvr_append(c, 0, 3, kk, kk), KVR_OK);
        float rk, rv;
        TU_EQ(kvr_reconstruct(c, 0, 0, 0, &rk, &rv), KVR_OK);
        double mu = ((double)x + y) / 2, want = shrink ? x : 2.0 * x - mu;
        double tol = tu_gamma(8) * (fabs(x) + fabs(y) + fabs(mu));
        TU_CHECK(fabs(rk - want) <= tol, "shrink %d: %.9g, expected %.9g", shrink, (double)rk, want);
        TU_OK(rk == rv);
        TU_EQ(kvr_reconstruct(c, 0, 0, 1, &rk, &rv), KVR_OK);
        want = shrink ? y : 2.0 * y - mu;
        TU_CHECK(fabs(rk - want) <= tol, "shrink %d: %.9g, expected %.9g", shrink, (double)rk, want);
        kvr_cache_free(c);
    }
}
END_TEST

/* Same signs: the centred contributions cancel, every estimate is mu. */
START_TEST(test_same_sign_cancel)
{
    kvr_config cfg = tu_config(0, 1, 0, 1, 1, KVR_IMP_NONE);
    for (cfg.seed = 1; kvr_hash_sign(kvr_hash(cfg.seed, 0, 0, 0, 0)) != kvr_hash_sign(kvr_hash(cfg.seed, 0, 0, 0, 1));
         cfg.seed++)
        ;
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, 1, &cfg, KVR_BACKEND_REF), KVR_OK);
    float kk[3] = {3.0f, 1.0f, 0.0f};              /* mu = 2, deltas exact */
    TU_EQ(kvr_append(c, 0, 3, kk, kk), KVR_OK);
    float rk, rv;
    TU_EQ(kvr_reconstruct(c, 0, 0, 0, &rk, &rv), KVR_OK);
    TU_OK(rk == 2.0f);                           /* all values exact in float32 */
    TU_EQ(kvr_reconstruct(c, 0, 0, 1, &rk, &rv), KVR_OK);
    TU_OK(rk == 2.0f);
    kvr_cache_free(c);
}
END_TEST

/* ref_combine's median of three (written as selects) against an insertion
 * sort written here, bit for bit, on every ordered triple drawn from values
 * with ties, both zeros and infinities, and on random triples with many
 * equal values. */
static float median_by_sort(const float *in, int d)
{
    float x[8];
    memcpy(x, in, (size_t)d * sizeof(float));
    for (int i = 1; i < d; i++)
        for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
            float t = x[j]; x[j] = x[j - 1]; x[j - 1] = t;
        }
    return d % 2 ? x[d / 2] : 0.5f * (x[d / 2 - 1] + x[d / 2]);
}

START_TEST(test_median_of_three_is_the_sort)
{
    const float special[] = {-0.0f, 0.0f, 1.0f, -1.0f, 1.0f, INFINITY, -INFINITY, 0x1p-149f, -3.5f};
    int ns = (int)(sizeof special / sizeof special[0]), cases = 0;
    for (int a = 0; a < ns; a++)
        for (int b = 0; b < ns; b++)
            for (int c = 0; c < ns; c++) {
                float x[3] = {special[a], special[b], special[c]}, y[3];
                memcpy(y, x, sizeof x);
                float want = median_by_sort(x, 3), got = ref_combine(y, 3, KVR_ROWS_MEDIAN);
                TU_CHECK(!memcmp(&want, &got, sizeof want), "median(%a, %a, %a) = %a, the sort gives %a",
                         (double)x[0], (double)x[1], (double)x[2], (double)got, (double)want);
                cases++;
            }
    tu_rng r;
    tu_seed(&r, 17);
    for (int n = 0; n < 100000; n++, cases++) {
        float x[3];
        for (int i = 0; i < 3; i++)
            x[i] = (float)(tu_int(&r, -3, 3)) * (tu_int(&r, 0, 1) ? 1.0f : -1.0f) * 0.25f;  /* ties, both zeros */
        float want = median_by_sort(x, 3), got = ref_combine(x, 3, KVR_ROWS_MEDIAN);
        TU_CHECK(!memcmp(&want, &got, sizeof want), "random triple %d: %a against %a", n, (double)got, (double)want);
    }
    TU_OK(cases == 729 + 100000);
    /* negative control: the median of three is not the mean */
    float x[3] = {0.0f, 1.0f, 5.0f};
    TU_OK(ref_combine(x, 3, KVR_ROWS_MEDIAN) == 1.0f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reconstruct");
    tcase_add_test(tu_tcase(s, "median of three"), test_median_of_three_is_the_sort);
    TCase *tc = tu_tcase(s, "no collisions");
    tcase_add_loop_test(tc, test_no_collisions_exact, 0, 40);
    tc = tu_tcase(s, "formula");
    tcase_add_loop_test(tc, test_formula, 0, 40);
    tc = tu_tcase(s, "shrinkage");
    tcase_add_loop_test(tc, test_shrinkage_hand, 0, 4);
    tcase_add_test(tc, test_same_sign_cancel);
    return tu_run(s);
}
