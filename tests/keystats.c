/* keystats.c: the statistics of `kvreviver keys` (tool/harness/keystats.c,
 * doc/model.md §7) on vectors whose answer is known.
 *
 * Exactness where the code is exact: integers 0..15 spread over a token
 * are 4-bit codes with zero point 0 and scale 1 (spec §18.2), and a
 * channel constant over its group has scale 0 (§18.3): error 0.  A
 * negative control for the per-channel code: one channel with a large
 * offset makes per-token codes coarse and leaves per-channel codes fine,
 * while on isotropic Gaussian vectors the two are close; if the
 * function favoured per-channel codes whatever the data, the second check
 * would fail.  The random vectors come from GSL's MT19937 over 20 seeds,
 * every seed checked; each bound is derived in its test. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include "harness/keystats.h"
#include "testutil.h"

enum { N = 256, D = 64, SEEDS = 20 };

/* x[t][i] = N(0, 1) * scale[i] + offset[i].  x: [N][D] */
static void gaussian(float *x, unsigned long seed, double scale0, double offset0)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++)
            x[t * D + i] = (float)(gsl_ran_gaussian(r, 1.0) * (i == 0 ? scale0 : 1.0) + (i == 0 ? offset0 : 0.0));
    gsl_rng_free(r);
}

static ev_keys_stats stats_of(const float *x, int n, int stride, int d)
{
    ev_keys_acc a = {0};
    ck_assert_int_eq(ev_keys_head(&a, 0, x, n, stride, d, EV_KEYS_GROUP), KVR_OK);
    ev_keys_stats s;
    ev_keys_result(&a, &s);
    return s;
}

/* Integers 0..15 in every token (each token holds 0 and 15): per-token
 * 4-bit codes have z = 0, s = f16up(15/15) = 1 and are exact.  Then every
 * channel constant over the positions: its scale is 0 and its code
 * reproduces the float16 integer exactly.  At 2 bits the per-token scale
 * is 5 and the integers that are not multiples of 5 err. */
START_TEST(exact_codes)
{
    enum { DD = 16, NN = 64 };
    float x[NN * DD];
    for (int t = 0; t < NN; t++)
        for (int i = 0; i < DD; i++)
            x[t * DD + i] = (float)((i + t) % DD);   /* a permutation of 0..15 per token */
    ev_keys_stats s = stats_of(x, NN, DD, DD);
    ck_assert(s.err_token[0][0] == 0.0);             /* [0]: 4 bits */
    ck_assert(s.err_token[0][1] > 0.0);              /* [1]: 2 bits */
    /* each channel also runs over 0..15 within every group of 32: z = 0, s = 1 */
    ck_assert(s.err_channel[0][0] == 0.0);
    ck_assert(s.err_channel[0][1] > 0.0);
    /* channels constant over positions: scale 0 per group, exact at both widths */
    for (int t = 0; t < NN; t++)
        for (int i = 0; i < DD; i++)
            x[t * DD + i] = (float)i;
    s = stats_of(x, NN, DD, DD);
    ck_assert(s.err_channel[0][0] == 0.0 && s.err_channel[0][1] == 0.0);
    ck_assert(s.range_ratio[0] == 1.0);              /* every range 0: the ratio is 1 by definition */
}
END_TEST

/* A vector with one non-zero channel holds all of its norm in its top 4:
 * share exactly 1.  D <= 4: always 1. */
START_TEST(top_share_bounds)
{
    float x[N * D] = {0};
    for (int t = 0; t < N; t++) x[t * D + t % D] = (float)(1 + t);
    ev_keys_stats s = stats_of(x, N, D, D);
    ck_assert(fabs(s.top_share[0] - 1.0) < 1e-12);
    float y[3 * 4] = {1, -2, 3, 4, 5, 6, -7, 8, 0.5f, 0.25f, 1, 2};
    s = stats_of(y, 3, 4, 4);
    ck_assert(fabs(s.top_share[0] - 1.0) < 1e-12);
}
END_TEST

/* The negative control.  Channel 0 = 100 + N(0, 1), the other 63 N(0, 1):
 * a token's range is about 100 + 2.5, its 4-bit scale about 6.8, so the
 * 63 small channels (within about [-2.5, 2.5], all below half a step from
 * the zero point near -2.5) round to the zero point and err by about
 * x - min, rms about sqrt(2.5^2 + 1) = 2.7: relative error about
 * sqrt(63 * 7.25 / (10^4 + 63)) = 0.21.  Per channel over 32 positions
 * the range is about d2(32) = 4.1 (the expected range of 32 normals), the
 * scale 0.27, the rounding error rms 0.27/sqrt(12) = 0.079 on every
 * channel: relative about sqrt(64 * 0.0063 / 10063) = 0.0063, 33 times
 * less.  Required: at least 10 times less at 4 bits (a third of the
 * derived factor; each value is a mean over 16,384 elements).
 * Isotropic N(0, 1): the per-token range is about d2(64) = 4.7, the
 * per-channel range d2(32) = 4.1, so per-token errs about 4.7/4.1 = 1.15
 * times more; required within [0.8, 1.6], which a per-channel code that
 * always won by a factor (as with the offset) would fail. */
START_TEST(offset_channel_control)
{
    float *x = malloc(sizeof(float) * N * D);
    ck_assert_ptr_nonnull(x);
    for (unsigned long seed = 1; seed <= SEEDS; seed++) {
        gaussian(x, seed, 1.0, 100.0);
        ev_keys_stats s = stats_of(x, N, D, D);
        ck_assert_msg(s.err_channel[0][0] * 10.0 < s.err_token[0][0], "seed %lu: offset channel: per channel %g, per token %g",
                      seed, s.err_channel[0][0], s.err_token[0][0]);
        ck_assert_msg(s.err_token[0][0] > 0.1 && s.err_token[0][0] < 0.4, "seed %lu: per token %g, derived 0.21", seed,
                      s.err_token[0][0]);
        gaussian(x, seed, 1.0, 0.0);
        s = stats_of(x, N, D, D);
        double ratio = s.err_token[0][0] / s.err_channel[0][0];
        ck_assert_msg(ratio > 0.8 && ratio < 1.6, "seed %lu: isotropic: per token / per channel %g, derived 1.15", seed,
                      ratio);
        for (int w = 0; w < 1; w++)
            for (int k = 0; k < EV_KEYS_BITS; k++) {
                ck_assert(s.err_token[w][k] >= 0.0 && s.err_token[w][k] < 1.0);
                ck_assert(s.err_channel[w][k] >= 0.0 && s.err_channel[w][k] < 1.0);
            }
        /* fewer levels err more (2 bits: scale 5 times the 4-bit one) */
        ck_assert(s.err_token[0][0] < s.err_token[0][1]);
        ck_assert(s.err_channel[0][0] < s.err_channel[0][1]);
    }
    free(x);
}
END_TEST

/* max / median range: one channel 100 times wider than 63 N(0, 1)
 * channels.  Over 256 positions the range of each is about d2(256) = 6.1
 * times its deviation, spread by about 0.6 (so the median of 63 near
 * 6.1, channel 0 near 610, within a factor 1.3): required [50, 200].
 * Isotropic: at least 1 (max over median), and the largest of 63 ranges
 * about 3 spreads above the median, 7.9 / 6.1 = 1.3: required below 2. */
START_TEST(range_ratio)
{
    float *x = malloc(sizeof(float) * N * D);
    ck_assert_ptr_nonnull(x);
    for (unsigned long seed = 1; seed <= SEEDS; seed++) {
        gaussian(x, seed, 100.0, 0.0);
        ev_keys_stats s = stats_of(x, N, D, D);
        ck_assert_msg(s.range_ratio[0] > 50.0 && s.range_ratio[0] < 200.0, "seed %lu: wide channel: %g", seed,
                      s.range_ratio[0]);
        gaussian(x, seed, 1.0, 0.0);
        s = stats_of(x, N, D, D);
        ck_assert_msg(s.range_ratio[0] >= 1.0 && s.range_ratio[0] < 2.0, "seed %lu: isotropic: %g", seed,
                      s.range_ratio[0]);
        /* the top 4 of 64 squared normals hold about 16 of 64: required (4/64, 1/2) */
        ck_assert_msg(s.top_share[0] > 4.0 / 64 && s.top_share[0] < 0.5, "seed %lu: top share %g", seed, s.top_share[0]);
    }
    free(x);
}
END_TEST

/* Failures leave the sums unchanged: a NaN, a value past float16's range
 * (quantized storage refuses it, spec §18.1), bad shapes. */
START_TEST(failures_change_nothing)
{
    float x[4 * 8];
    for (int i = 0; i < 32; i++) x[i] = (float)i * 0.5f;
    ev_keys_acc a = {0}, before;
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 4, 8, 8, 32), KVR_OK);
    before = a;
    x[5] = NAN;
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 4, 8, 8, 32), KVR_ENONFINITE);
    x[5] = 70000.0f;
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 4, 8, 8, 32), KVR_ERANGE);
    x[5] = 1.0f;
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 0, 8, 8, 32), KVR_EINVAL);
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 4, 7, 8, 32), KVR_EINVAL);
    ck_assert_int_eq(ev_keys_head(&a, 1, x, 4, 8, 8, 0), KVR_EINVAL);
    ck_assert_int_eq(ev_keys_head(&a, 2, x, 4, 8, 8, 32), KVR_EINVAL);
    ck_assert(memcmp(&a, &before, sizeof a) == 0);
    /* nothing added: NaN, not a number pretending to be 0 */
    ev_keys_acc empty = {0};
    ev_keys_stats s;
    ev_keys_result(&empty, &s);
    ck_assert(isnan(s.range_ratio[0]) && isnan(s.err_token[1][0]) && isnan(s.top_share[1]));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("keystats");
    TCase *tc = tu_tcase(s, "statistics");
    tcase_add_test(tc, exact_codes);
    tcase_add_test(tc, top_share_bounds);
    tcase_add_test(tc, offset_channel_control);
    tcase_add_test(tc, range_ratio);
    tcase_add_test(tc, failures_change_nothing);
    return tu_run(s);
}
