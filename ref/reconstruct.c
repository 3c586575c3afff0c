/* reconstruct.c: a vague token's key and value from the sketch (spec §8).
 *
 * Row r gives the estimate (spec §8.1, the centring identity)
 *     e_r = s_r(t) * alpha_r * (S[r][h_r(t)] - c[r][h_r(t)] * mu) + mu
 * where mu is the exact mean of the vague part (zero without centring) and
 * alpha_r = 1, or 1 / load[r][h_r(t)] with shrinkage (spec §8.3).  The d row
 * estimates are combined per coordinate by the median or the mean (spec
 * §8.2).  Every operation is a float32 operation, in the order written, with
 * no fused multiply-add. */
#include <config.h>
#include <stdlib.h>
#include "base.h"
#include "ref.h"

/* The median of three, as the stable sort below leaves it in the middle:
 * order (a, b), then the middle is the larger of the low one and the
 * smaller of the high one and c; each choice takes the later operand
 * only when the earlier is strictly greater, as the sort swaps only then.
 * Written as selects (no branches) for the paper's depth 3. */
static inline float median3(float a, float b, float c)
{
    float lo = b < a ? b : a;
    float hi = a > b ? a : b;
    float mid = c < hi ? c : hi;
    return lo > mid ? lo : mid;
}

/* Median of x[0..d-1] (spec §8.2): the middle value for odd d, the mean
 * 0.5f * (lo + hi) of the two middle values for even d.  Sorts x in place
 * (insertion sort: d is small; for d = 3, median3, which leaves x as it
 * is). */
static inline float median(float *x, int d)
{
    if (d == 3)
        return median3(x[0], x[1], x[2]);
    for (int i = 1; i < d; i++) {
        float key = x[i];
        int j = i - 1;
        while (j >= 0 && x[j] > key) { x[j + 1] = x[j]; j--; }
        x[j + 1] = key;
    }
    if (d % 2 == 1)
        return x[d / 2];
    return 0.5f * (x[d / 2 - 1] + x[d / 2]);
}

/* Mean of x[0..d-1]: the sum in row order, divided by d. */
static float mean(const float *x, int d)
{
    float sum = 0.0f;
    for (int r = 0; r < d; r++)
        sum += x[r];
    return sum / (float)d;
}

/* spec §8.2: the rows' combination of x[0..d-1] (sorts x for the median). */
float ref_combine(float *x, int d, kvr_rows rows)
{
    return rows == KVR_ROWS_MEDIAN ? median(x, d) : mean(x, d);
}

/* Three rows (the paper's depth) with the means given: the general loop of
 * estimate() below for d = 3, written with no call in the loop and with
 * unaliased arrays, so that a compiler may do several coordinates at once
 * (each coordinate's float32 operations and their order are the general
 * loop's, so the result is the same bit for bit).  by_median is a constant
 * at each call, so the choice leaves the loop: median3, or the sum in row
 * order from 0 (as mean() does: 0 + e0 turns -0 into +0) divided by 3. */
static inline void rows3(int D, const float *restrict s0, const float *restrict s1,
                         const float *restrict s2 /*[D] the three rows' buckets*/,
                         const float *restrict mu /*[D]*/, const float sign[3],
                         const float alpha[3], const float count[3], int by_median,
                         float *restrict out /*[D]*/)
{
    float g0 = sign[0], g1 = sign[1], g2 = sign[2];
    float a0 = alpha[0], a1 = alpha[1], a2 = alpha[2];
    float c0 = count[0], c1 = count[1], c2 = count[2];
    for (int i = 0; i < D; i++) {
        float m = mu[i];
        float e0 = g0 * (a0 * (s0[i] - c0 * m)) + m;
        float e1 = g1 * (a1 * (s1[i] - c1 * m)) + m;
        float e2 = g2 * (a2 * (s2[i] - c2 * m)) + m;
        if (by_median) {
            out[i] = median3(e0, e1, e2);
        } else {
            float sum = 0.0f;
            sum += e0;
            sum += e1;
            sum += e2;
            out[i] = sum / 3.0f;
        }
    }
}

/* Where a position lies in the sketch: its bucket (r w + b) and sign in
 * each row, the same for the key and the value sums (spec §5). */
typedef struct {
    size_t bucket[64];                              /* depth <= 64 (config check) */
    float sign[64];
} buckets;

static void buckets_of(const ref_head *h, long pos, buckets *at)
{
    for (int r = 0; r < h->cfg.depth; r++)
        at->bucket[r] = ref_bucket(h, r, pos, &at->sign[r]);
}

/* One of key or value: sums is sk_k or sk_v, running sum_k or sum_v; mu is
 * the vague part's mean ([D]), or NULL to compute it here coordinate by
 * coordinate (the same float32 values: ref_vague_mean). */
static void estimate(const ref_head *h, const buckets *at, const float *sums /*[d][w][D]*/,
                     const double *running /*[D] or NULL*/, const float *mu /*[D] or NULL*/,
                     float *out /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    float rows[64];
    const float *bucket_sums[64];                   /* [d] each row's bucket, [D] */
    float alpha[64], count[64];
    const float *sign = at->sign;
    for (int r = 0; r < d; r++) {
        size_t b = at->bucket[r];
        bucket_sums[r] = sums + b * D;
        count[r] = (float)h->sk_count[b];
        alpha[r] = h->cfg.shrink ? 1.0f / (float)h->sk_load[b] : 1.0f;
    }
    int by_median = h->cfg.rows == KVR_ROWS_MEDIAN;
    if (d == 3 && mu) {
        if (by_median)
            rows3(D, bucket_sums[0], bucket_sums[1], bucket_sums[2], mu, sign, alpha, count, 1, out);
        else
            rows3(D, bucket_sums[0], bucket_sums[1], bucket_sums[2], mu, sign, alpha, count, 0, out);
        return;
    }
    for (int i = 0; i < D; i++) {
        float m = mu ? mu[i] : ref_vague_mean(h, running, i);
        for (int r = 0; r < d; r++) {
            float centred = bucket_sums[r][i] - count[r] * m;
            rows[r] = sign[r] * (alpha[r] * centred) + m;
        }
        out[i] = by_median ? median(rows, d) : mean(rows, d);
    }
}

/* spec §8: reconstruct the vague token at pos into k and v ([D]). */
void ref_reconstruct(const ref_head *h, long pos, float *k, float *v)
{
    buckets at;
    buckets_of(h, pos, &at);
    estimate(h, &at, h->sk_k, h->sum_k, NULL, k);
    estimate(h, &at, h->sk_v, h->sum_v, NULL, v);
}

/* spec §8.1: the vague part's means, key then value (zero without
 * centring or when the vague part is empty). */
void ref_vague_means(const ref_head *h, float *mean)
{
    int D = h->head_dim;
    for (int i = 0; i < D; i++) {
        mean[i] = ref_vague_mean(h, h->sum_k, i);
        mean[D + i] = ref_vague_mean(h, h->sum_v, i);
    }
}

/* spec §8: ref_reconstruct with the means given (ref_vague_means of h). */
void ref_reconstruct_with(const ref_head *h, long pos, const float *mean, float *k, float *v)
{
    buckets at;
    buckets_of(h, pos, &at);
    estimate(h, &at, h->sk_k, h->sum_k, mean, k);
    estimate(h, &at, h->sk_v, h->sum_v, mean + h->head_dim, v);
}
