/* sketch.c: the sketch of the vague part (spec §7): insertion order changes
 * nothing beyond rounding, the centring identity of spec §8.1 holds on the
 * stored arrays, and loads and signed counts match a recount from the hash. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

enum { D = 8 };

/* Bucket of pos in row r of head h, recomputed from the hash (spec §5.3). */
static size_t bucket_of(const ref_head *h, int r, long pos, float *sign)
{
    uint64_t x = kvr_hash(h->cfg.seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)pos);
    if (sign) *sign = (float)kvr_hash_sign(x);
    return (size_t)r * h->cfg.width + kvr_hash_bucket(x, (uint32_t)h->cfg.width);
}

/* spec §7.3: inserting the same tokens in two orders (increasing positions,
 * and a random permutation) into two heads gives identical signed counts
 * and loads, and sums that differ by rounding only.  Each float32 sum of the
 * m = load signed terms s*x (exact products) is within gamma_{m-1} sum|x| of
 * the exact sum (Higham eq. 3.5), so two orders differ by at most
 * 2 gamma_{m} sum|x|.  Both sums are also checked against the exact sum
 * (float64, whose own error is below 2^-53 m sum|x|, far inside the bound). */
START_TEST(test_order_independent)
{
    enum { N = 300 };
    kvr_config cfg = tu_config(0, 1, 0, 3, 5, KVR_IMP_NONE);   /* w = 5: 60 tokens per bucket */
    cfg.seed = 42 + (uint64_t)_i;
    ref_head *a, *b;
    TU_EQ(ref_head_alloc(&a, &cfg, D, 1, 2), KVR_OK);
    TU_EQ(ref_head_alloc(&b, &cfg, D, 1, 2), KVR_OK);
    static float k[N][D], v[N][D];
    int order[N];
    tu_rng r;
    tu_seed(&r, 5 + (uint64_t)_i);
    tu_fill(&r, &k[0][0], N * D, 1.0, 3.0);
    tu_fill(&r, &v[0][0], N * D, -2.0, 0.5);
    for (int t = 0; t < N; t++) order[t] = t;
    for (int t = N - 1; t > 0; t--) {                /* Fisher-Yates */
        int j = tu_int(&r, 0, t), x = order[t];
        order[t] = order[j]; order[j] = x;
    }
    for (int t = 0; t < N; t++) {
        ref_sketch_insert(a, t, k[t], v[t]);
        ref_sketch_insert(b, order[t], k[order[t]], v[order[t]]);
    }
    int dw = cfg.depth * cfg.width;
    TU_EQ(a->n_vague, N);
    TU_EQ(b->n_vague, N);
    TU_OK(memcmp(a->sk_count, b->sk_count, (size_t)dw * 4) == 0);
    TU_OK(memcmp(a->sk_load, b->sk_load, (size_t)dw * 4) == 0);
    static double exact[2][15][D], abs_sum[2][15][D];
    memset(exact, 0, sizeof exact);
    memset(abs_sum, 0, sizeof abs_sum);
    for (int t = 0; t < N; t++)
        for (int row = 0; row < cfg.depth; row++) {
            float s;
            size_t bk = bucket_of(a, row, t, &s);
            for (int i = 0; i < D; i++) {
                exact[0][bk][i] += s * (double)k[t][i];
                exact[1][bk][i] += s * (double)v[t][i];
                abs_sum[0][bk][i] += fabs((double)k[t][i]);
                abs_sum[1][bk][i] += fabs((double)v[t][i]);
            }
        }
    tu_tally orders = TU_TALLY_INIT, exacts = TU_TALLY_INIT;   /* mark: the bucket */
    for (size_t bk = 0; bk < (size_t)dw; bk++) {
        long m = a->sk_load[bk];
        orders.mark = exacts.mark = (long)bk;
        for (int i = 0; i < D; i++)
            for (int kv = 0; kv < 2; kv++) {
                double sa = (kv ? a->sk_v : a->sk_k)[bk * D + i], sb = (kv ? b->sk_v : b->sk_k)[bk * D + i];
                double one = tu_gamma(m - 1 > 0 ? m - 1 : 0) * abs_sum[kv][bk][i];
                tu_tally_add(&orders, sb, sa, 2 * tu_gamma(m) * abs_sum[kv][bk][i]);
                tu_tally_add(&exacts, sa, exact[kv][bk][i], one * (1 + 1e-9));
                tu_tally_add(&exacts, sb, exact[kv][bk][i], one * (1 + 1e-9));
            }
    }
    tu_tally_check("sketch sums, one insertion order vs another", &orders, 0);
    tu_tally_check("sketch sums, both orders vs float64", &exacts, 0);
    /* running sums (float64): within 2 (N 2^-53) sum|x| of each other */
    tu_tally sums = TU_TALLY_INIT;         /* i: the coordinate */
    for (int i = 0; i < D; i++) {
        double mag = 0.0;
        for (int t = 0; t < N; t++) mag += fabs((double)k[t][i]);
        tu_tally_add(&sums, b->sum_k[i], a->sum_k[i], 2.0 * N * ldexp(1.0, -53) * mag * 1.01);
    }
    tu_tally_check("running sums, one insertion order vs another", &sums, 0);
    ref_head_free(a);
    ref_head_free(b);
}
END_TEST

/* Append n random tokens to a one-head cache with the configuration. */
static kvr_cache *filled(const kvr_config *cfg, int n, uint64_t seed, float *k /*[n][D]*/, float *v)
{
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 2, D, cfg, KVR_BACKEND_REF), KVR_OK);
    tu_rng r;
    tu_seed(&r, seed);
    tu_fill(&r, k, (size_t)n * D, 3.0, 1.0);       /* a large mean: centring matters */
    tu_fill(&r, v, (size_t)n * D, -5.0, 2.0);
    for (size_t i = 0; i < (size_t)n * D; i++) {
        k[i] = kvr_elem_round(cfg->elem, k[i]);
        v[i] = kvr_elem_round(cfg->elem, v[i]);
    }
    TU_EQ(kvr_append(c, 0, n, k, v), KVR_OK);
    return c;
}

/* spec §8.1, the centring identity: for every bucket, S - c*mu (evaluated in
 * float32 as ref/reconstruct.c does) equals the sketch of the centred vectors
 * sum_u s_u (x_u - mu), computed directly in float64 from the inputs and the
 * hash.  Bound: the stored S is within gamma_{m} sum|x_u| of exact (m terms
 * and the sign products), c*mu adds u|c mu|, the subtraction one more u;
 * by Higham Lemma 3.3 the total is within gamma_{m+2} (sum|x_u| + |c||mu|).
 * Also mu is exactly (float)(running sum / n_vague), the running sum being
 * the float64 sum in insertion (= position) order. */
START_TEST(test_centring_identity)
{
    enum { N = 180 };
    kvr_config cfg = tu_config(2, 3, 0, 3, 7, KVR_IMP_NONE);
    cfg.elem = (kvr_elem)(_i % 3);
    cfg.seed = 1000 + (uint64_t)_i;
    static float k[N * D], v[N * D];
    kvr_cache *c = filled(&cfg, N, (uint64_t)_i, k, v);
    const ref_head *h = kvr_cache_head(c, 0, 0);
    long first = 2, last = N - 3;                    /* vague positions [first, last) */
    TU_EQ(h->n_vague, last - first);
    for (int kv = 0; kv < 2; kv++) {
        const float *x = kv ? v : k, *sums = kv ? h->sk_v : h->sk_k;
        const double *run = kv ? h->sum_v : h->sum_k;
        tu_tally all = TU_TALLY_INIT;      /* mark: the coordinate; i: coord * d * w + bucket */
        for (int i = 0; i < D; i++) {
            all.mark = i;
            double sum = 0.0;
            for (long t = first; t < last; t++) sum += x[t * D + i];
            TU_OK(sum == run[i]);
            float mu = ref_vague_mean(h, run, i);
            TU_OK(mu == (float)(sum / (double)(last - first)));
            static double centred[64], mag[64];
            for (int b = 0; b < cfg.depth * cfg.width; b++) centred[b] = mag[b] = 0.0;
            for (long t = first; t < last; t++)
                for (int row = 0; row < cfg.depth; row++) {
                    float s;
                    size_t bk = bucket_of(h, row, t, &s);
                    centred[bk] += s * ((double)x[t * D + i] - (double)mu);
                    mag[bk] += fabs((double)x[t * D + i]);
                }
            for (int b = 0; b < cfg.depth * cfg.width; b++) {
                float cnt = (float)h->sk_count[b];
                float lhs = sums[(size_t)b * D + i] - cnt * mu;
                int m = h->sk_load[b];
                double tol = tu_gamma(m + 2) * (mag[b] + fabs((double)cnt * mu)) * (1 + 1e-9);
                tu_tally_add(&all, (double)lhs, centred[b], tol);
            }
        }
        tu_tally_check(kv ? "S - c mu vs the centred sketch, values" : "S - c mu vs the centred sketch, keys",
                       &all, 0);
    }
    kvr_cache_free(c);
}
END_TEST

/* spec §7.1: every row holds every vague token once: the loads of a row sum
 * to n_vague, and each bucket's load and signed count equal a recount of the
 * vague positions (those kvr_part_of calls vague) through the hash.  With
 * candidates and attention the vague part is not a range of positions. */
START_TEST(test_loads_and_counts)
{
    enum { N = 150, H = 2, G = 2 };
    tu_rng r;
    tu_seed(&r, 77 + (uint64_t)_i);
    kvr_config cfg = tu_config(tu_int(&r, 0, 3), tu_int(&r, 1, 6), tu_int(&r, 0, 8), tu_int(&r, 1, 5),
                               tu_int(&r, 1, 20), KVR_IMP_H2O + _i % 3);
    cfg.seed = tu_next(&r);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 2, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float k[H * D], v[H * D], q[H * G * D], out[H * G * D];
    for (int t = 0; t < N; t++) {
        int layer = t % 2;
        tu_fill(&r, k, H * D, 0, 1);
        tu_fill(&r, v, H * D, 0, 1);
        tu_fill(&r, q, H * G * D, 0, 2);
        TU_EQ(kvr_append(c, layer, 1, k, v), KVR_OK);
        TU_EQ(kvr_attend(c, layer, q, out, 0), KVR_OK);
    }
    for (int layer = 0; layer < 2; layer++)
        for (int kh = 0; kh < H; kh++) {
            const ref_head *h = kvr_cache_head(c, layer, kh);
            int dw = cfg.depth * cfg.width;
            int32_t *load = calloc((size_t)dw, 4), *count = calloc((size_t)dw, 4);
            long vague = 0;
            for (long p = 0; p < h->n; p++) {
                kvr_part part;
                TU_EQ(kvr_part_of(c, layer, kh, p, &part), KVR_OK);
                if (part != KVR_PART_VAGUE) continue;
                vague++;
                for (int row = 0; row < cfg.depth; row++) {
                    float s;
                    size_t bk = bucket_of(h, row, p, &s);
                    load[bk]++;
                    count[bk] += (int32_t)s;
                }
            }
            TU_EQ(vague, h->n_vague);
            TU_OK(memcmp(load, h->sk_load, (size_t)dw * 4) == 0);
            TU_OK(memcmp(count, h->sk_count, (size_t)dw * 4) == 0);
            for (int row = 0; row < cfg.depth; row++) {
                long sum = 0;
                for (int b = 0; b < cfg.width; b++) sum += h->sk_load[row * cfg.width + b];
                TU_EQ(sum, h->n_vague);
            }
            free(load);
            free(count);
        }
    kvr_cache_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sketch");
    TCase *tc = tu_tcase(s, "insertion");
    tcase_add_loop_test(tc, test_order_independent, 0, 5);
    tcase_add_loop_test(tc, test_loads_and_counts, 0, 12);
    tc = tu_tcase(s, "centring");
    tcase_add_loop_test(tc, test_centring_identity, 0, 6);
    return tu_run(s);
}
