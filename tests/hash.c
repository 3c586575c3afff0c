/* hash.c: the sketch hash (spec §5): known answers, ranges and statistics.
 *
 * The known answers were computed once by an independent implementation of
 * spec §5 (Python, arbitrary-precision integers masked to 64 bits):
 *
 *   M = (1 << 64) - 1
 *   def mix(x):
 *       x = (x + 0x9E3779B97F4A7C15) & M
 *       x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M
 *       x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M
 *       return x ^ (x >> 31)
 *   def h(seed, layer, head, row, pos):
 *       x = mix(seed)
 *       x = mix(x ^ ((layer << 32) | head))
 *       x = mix(x ^ row)
 *       return mix(x ^ pos)
 *   bucket(x, w) = ((x >> 32) * w) >> 32;  sign(x) = -1 if x & 1 else 1
 *
 * mix(0) = 0xE220A8397B1DCDAF is also the first output of the published
 * SplitMix64 generator started from state 0, a check of the snippet itself. */
#include <config.h>
#include <gsl/gsl_cdf.h>
#include <stdlib.h>
#include "testutil.h"

typedef struct {
    uint64_t seed;
    uint32_t layer, kv_head, row;
    uint64_t pos;
    uint64_t h;
    uint32_t bucket1000, bucket7;
    int sign;
} known;

static const known answers[] = {
    {UINT64_C(0x0), 0, 0, 0, UINT64_C(0), UINT64_C(0x2130748AAAC80268), 129, 0, 1},
    {UINT64_C(0x0), 0, 0, 0, UINT64_C(1), UINT64_C(0x2A4F111B3BE57715), 165, 1, -1},
    {UINT64_C(0x0), 1, 0, 0, UINT64_C(0), UINT64_C(0x831A81BD93315937), 512, 3, -1},
    {UINT64_C(0x0), 0, 1, 0, UINT64_C(0), UINT64_C(0xD1C0270687984B37), 819, 5, -1},
    {UINT64_C(0x0), 0, 0, 1, UINT64_C(0), UINT64_C(0xD9EEF7F073D37C42), 851, 5, 1},
    {UINT64_C(0x0), 3, 7, 2, UINT64_C(12345), UINT64_C(0x0608B56CFC3096DF), 23, 0, -1},
    {UINT64_C(0x0), 4095, 4095, 63, UINT64_C(2147483647), UINT64_C(0x4E8924A03D4BA8C2), 306, 2, 1},
    {UINT64_C(0x0), 0, 0, 0, UINT64_C(18446744073709551615), UINT64_C(0xF28A295E4A744053), 947, 6, -1},
    {UINT64_C(0x6B7672657669766B), 0, 0, 0, UINT64_C(0), UINT64_C(0x2BFC461B40E1BE90), 171, 1, 1},
    {UINT64_C(0x6B7672657669766B), 0, 0, 0, UINT64_C(1), UINT64_C(0x411ED3CAEEB0F25A), 254, 1, 1},
    {UINT64_C(0x6B7672657669766B), 1, 0, 0, UINT64_C(0), UINT64_C(0x0DD50C4F58EDD4DC), 54, 0, 1},
    {UINT64_C(0x6B7672657669766B), 0, 1, 0, UINT64_C(0), UINT64_C(0xB7BAD4594C035984), 717, 5, 1},
    {UINT64_C(0x6B7672657669766B), 0, 0, 1, UINT64_C(0), UINT64_C(0xA46EE906A45D4AD5), 642, 4, -1},
    {UINT64_C(0x6B7672657669766B), 3, 7, 2, UINT64_C(12345), UINT64_C(0x6D13EF2C18211FC6), 426, 2, 1},
    {UINT64_C(0x6B7672657669766B), 4095, 4095, 63, UINT64_C(2147483647), UINT64_C(0xBE375CCB6A540D1A), 743, 5, 1},
    {UINT64_C(0x6B7672657669766B), 0, 0, 0, UINT64_C(18446744073709551615), UINT64_C(0x336A5A72FF3EEAD9), 200, 1, -1},
};

START_TEST(test_known_answers)
{
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        const known *a = &answers[i];
        uint64_t h = kvr_hash(a->seed, a->layer, a->kv_head, a->row, a->pos);
        TU_CHECK(h == a->h, "answer %zu: hash %016llx, expected %016llx", i,
                      (unsigned long long)h, (unsigned long long)a->h);
        TU_EQ(kvr_hash_bucket(h, 1000), a->bucket1000);
        TU_EQ(kvr_hash_bucket(h, 7), a->bucket7);
        TU_EQ(kvr_hash_sign(h), a->sign);
    }
    /* bucket and sign on hand-made values: hi32 = 2^32-1 gives the last bucket */
    TU_EQ(kvr_hash_bucket(UINT64_C(0xFFFFFFFF00000000), 10), 9);
    TU_EQ(kvr_hash_bucket(UINT64_C(0x00000000FFFFFFFF), 10), 0);
    TU_EQ(kvr_hash_bucket(UINT64_C(0x8000000000000000), 10), 5);
    TU_EQ(kvr_hash_sign(UINT64_C(2)), 1);
    TU_EQ(kvr_hash_sign(UINT64_C(3)), -1);
}
END_TEST

START_TEST(test_bucket_in_range)
{
    static const uint32_t widths[] = {1, 2, 3, 7, 10, 97, 1000, 4096, 65537, 1u << 31, 2147483647u, UINT32_MAX};
    tu_rng r;
    tu_seed(&r, 1);
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        uint32_t w = widths[wi];
        TU_EQ(kvr_hash_bucket(0, w), 0);
        TU_EQ(kvr_hash_bucket(UINT64_MAX, w), w - 1);  /* hi32 = 2^32-1: last bucket */
        for (int i = 0; i < 20000; i++) {
            uint64_t h = i < 10000 ? tu_next(&r) : kvr_hash(7, 1, 2, 3, (uint64_t)i);
            ck_assert_uint_lt(kvr_hash_bucket(h, w), w);
        }
    }
    for (uint64_t h = 0; h < 1000; h++)
        TU_EQ(kvr_hash_bucket(h * UINT64_C(0x9E3779B97F4A7C15), 1), 0);
}
END_TEST

/* Two-sided binomial p-value of k successes in n trials with probability p. */
static double binomial_two_sided(unsigned k, double p, unsigned n)
{
    double lo = gsl_cdf_binomial_P(k, p, n);                    /* P(X <= k) */
    double hi = k == 0 ? 1.0 : gsl_cdf_binomial_Q(k - 1, p, n); /* P(X >= k) */
    double two = 2.0 * (lo < hi ? lo : hi);
    return two > 1.0 ? 1.0 : two;
}

/* The inputs are deterministic, so these tests are not flaky; the
 * significance 1e-6 only says how far from the ideal a correct SplitMix64
 * chain could plausibly be.  A broken mix (e.g. a missing round, a sign taken
 * from a constant bit, a bucket from the low bits of a position counter)
 * fails by many orders of magnitude. */
#define ALPHA 1e-6

START_TEST(test_sign_balance)
{
    for (uint32_t row = 0; row < 4; row++)
        for (uint32_t layer = 0; layer < 3; layer++) {
            unsigned n = 50000, plus = 0;
            for (unsigned pos = 0; pos < n; pos++)
                plus += kvr_hash_sign(kvr_hash(0x1234, layer, 1, row, pos)) == 1;
            double pv = binomial_two_sided(plus, 0.5, n);
            TU_CHECK(pv > ALPHA, "row %u layer %u: %u of %u signs are +1 (p = %g)", row, layer, plus, n, pv);
        }
}
END_TEST

static double chi_square_buckets(uint64_t seed, uint32_t row, uint32_t w, unsigned per_bucket, unsigned *count)
{
    unsigned n = w * per_bucket;
    for (uint32_t b = 0; b < w; b++)
        count[b] = 0;
    for (unsigned pos = 0; pos < n; pos++)
        count[kvr_hash_bucket(kvr_hash(seed, 2, 3, row, pos), w)]++;
    double chi2 = 0.0, e = (double)per_bucket;
    for (uint32_t b = 0; b < w; b++)
        chi2 += ((double)count[b] - e) * ((double)count[b] - e) / e;
    return gsl_cdf_chisq_Q(chi2, (double)(w - 1));
}

START_TEST(test_bucket_uniform)
{
    static const uint32_t widths[] = {2, 7, 64, 97, 1000};
    unsigned count[1000];
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++)
        for (uint32_t row = 0; row < 3; row++) {
            double pv = chi_square_buckets(UINT64_C(0x6B7672657669766B), row, widths[wi], 100, count);
            TU_CHECK(pv > ALPHA, "w = %u row %u: chi-square p = %g", widths[wi], row, pv);
        }
}
END_TEST

/* Rows must hash independently: the pair (bucket in row 0, bucket in row 1)
 * is uniform over w*w cells; a row input ignored by the chain would put every
 * position on the diagonal.  Also sign and bucket are independent: the signs
 * inside each bucket are balanced overall (chi-square over the 2w cells). */
START_TEST(test_rows_independent)
{
    enum { W = 16, PER = 60 };
    unsigned cell[W][W] = {{0}}, sb[W][2] = {{0}};
    unsigned n = W * W * PER;
    for (unsigned pos = 0; pos < n; pos++) {
        uint64_t h0 = kvr_hash(99, 0, 0, 0, pos), h1 = kvr_hash(99, 0, 0, 1, pos);
        cell[kvr_hash_bucket(h0, W)][kvr_hash_bucket(h1, W)]++;
        sb[kvr_hash_bucket(h0, W)][kvr_hash_sign(h0) == 1]++;
    }
    double chi2 = 0.0, e = PER;
    for (int a = 0; a < W; a++)
        for (int b = 0; b < W; b++)
            chi2 += ((double)cell[a][b] - e) * ((double)cell[a][b] - e) / e;
    double pv = gsl_cdf_chisq_Q(chi2, W * W - 1);
    TU_CHECK(pv > ALPHA, "joint buckets of rows 0 and 1: chi-square p = %g", pv);
    chi2 = 0.0;
    e = (double)n / (2 * W);
    for (int a = 0; a < W; a++)
        for (int s = 0; s < 2; s++)
            chi2 += ((double)sb[a][s] - e) * ((double)sb[a][s] - e) / e;
    pv = gsl_cdf_chisq_Q(chi2, 2 * W - 1);
    TU_CHECK(pv > ALPHA, "bucket x sign: chi-square p = %g", pv);
}
END_TEST

/* Every input changes the hash (no input is ignored). */
START_TEST(test_inputs_matter)
{
    uint64_t base = kvr_hash(5, 6, 7, 8, 9);
    TU_OK(kvr_hash(6, 6, 7, 8, 9) != base);
    TU_OK(kvr_hash(5, 7, 7, 8, 9) != base);
    TU_OK(kvr_hash(5, 6, 8, 8, 9) != base);
    TU_OK(kvr_hash(5, 6, 7, 9, 9) != base);
    TU_OK(kvr_hash(5, 6, 7, 8, 10) != base);
    /* layer and kv_head are not interchangeable (layer << 32 | kv_head) */
    TU_OK(kvr_hash(5, 1, 2, 8, 9) != kvr_hash(5, 2, 1, 8, 9));
    /* high position bits matter */
    TU_OK(kvr_hash(5, 6, 7, 8, UINT64_C(1) << 40) != kvr_hash(5, 6, 7, 8, 0));
}
END_TEST

/* The known-answer table printed in doc/hash.md (spec §5), computed there by
 * an independent Python snippet: a port that reproduces it hashes like the
 * library. */
typedef struct {
    uint64_t seed;
    uint32_t layer, kv_head, row;
    uint64_t pos, h;
    uint32_t width, bucket;
    int sign;
} kat;

#define SEED UINT64_C(0x6B7672657669766B)   /* the default seed (spec §13) */
static const kat table[] = {
    {0, 0, 0, 0, 0, UINT64_C(0x2130748AAAC80268), 16, 2, +1},
    {SEED, 0, 0, 0, 0, UINT64_C(0x2BFC461B40E1BE90), 1024, 175, +1},
    {SEED, 0, 0, 1, 0, UINT64_C(0xA46EE906A45D4AD5), 1024, 657, -1},
    {SEED, 0, 0, 2, 0, UINT64_C(0x871E649234E99803), 1024, 540, -1},
    {SEED, 0, 0, 0, 1, UINT64_C(0x411ED3CAEEB0F25A), 1024, 260, +1},
    {SEED, 0, 0, 0, 1000, UINT64_C(0x44D38C3A2FC62C3B), 1024, 275, -1},
    {SEED, 3, 1, 2, 12345, UINT64_C(0x4C9AA5CE3C141908), 97, 29, +1},
    {SEED, 31, 7, 4, 2147483646, UINT64_C(0x5CC7C7F6590E5FF1), 4096, 1484, -1},
    {1, 0, 0, 0, 0, UINT64_C(0xE28195DDD9EE4956), 1, 0, +1},
    {UINT64_C(0xFFFFFFFFFFFFFFFF), 4095, 4095, 63, 2147483646, UINT64_C(0x443D484C66602DC7),
     2147483647u, 572433445u, -1},
};

START_TEST(test_doc_table)
{
    const kat *e = &table[_i];
    uint64_t h = kvr_hash(e->seed, e->layer, e->kv_head, e->row, e->pos);
    ck_assert_msg(h == e->h, "row %d: hash 0x%016llX, table 0x%016llX", _i,
                  (unsigned long long)h, (unsigned long long)e->h);
    ck_assert_uint_eq(kvr_hash_bucket(h, e->width), e->bucket);
    ck_assert_int_eq(kvr_hash_sign(h), e->sign);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tu_tcase(s, "known answers");
    tcase_add_test(tc, test_known_answers);
    tcase_add_test(tc, test_bucket_in_range);
    tcase_add_test(tc, test_inputs_matter);
    tcase_add_loop_test(tc, test_doc_table, 0, (int)(sizeof table / sizeof table[0]));
    tc = tu_tcase(s, "statistics");
    tcase_add_test(tc, test_sign_balance);
    tcase_add_test(tc, test_bucket_uniform);
    tcase_add_test(tc, test_rows_independent);
    return tu_run(s);
}
