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
#include "internal.h"
#include "ref.h"

/* Median of x[0..d-1] (spec §8.2): the middle value for odd d, the mean
 * 0.5f * (lo + hi) of the two middle values for even d.  Sorts x in place
 * (insertion sort: d is small). */
static float median(float *x, int d)
{
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

/* One of key or value: sums is sk_k or sk_v, running sum_k or sum_v. */
static void estimate(const ref_head *h, long pos, const float *sums /*[d][w][D]*/,
                     const double *running /*[D] or NULL*/, float *out /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    float rows[64];                                 /* depth <= 64 (config check) */
    size_t bucket[64];
    float sign[64], alpha[64], count[64];
    for (int r = 0; r < d; r++) {
        bucket[r] = ref_bucket(h, r, pos, &sign[r]);
        count[r] = (float)h->sk_count[bucket[r]];
        alpha[r] = h->cfg.shrink ? 1.0f / (float)h->sk_load[bucket[r]] : 1.0f;
    }
    for (int i = 0; i < D; i++) {
        float mu = ref_vague_mean(h, running, i);
        for (int r = 0; r < d; r++) {
            float centred = sums[bucket[r] * D + i] - count[r] * mu;
            rows[r] = sign[r] * (alpha[r] * centred) + mu;
        }
        out[i] = ref_combine(rows, d, h->cfg.rows);
    }
}

/* spec §8: reconstruct the vague token at pos into k and v ([D]). */
void ref_reconstruct(const ref_head *h, long pos, float *k, float *v)
{
    estimate(h, pos, h->sk_k, h->sum_k, k);
    estimate(h, pos, h->sk_v, h->sum_v, v);
}
