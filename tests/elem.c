/* elem.c: storage element types (spec §4): float16 and bfloat16 rounding to
 * nearest, ties to even, checked exhaustively on every 16-bit pattern and on
 * a million random float32 values against an independent rounding written
 * with frexp/ldexp/nearbyint in float64; overflow through kvr_append. */
#include <config.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static uint32_t bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float from_bits(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* Value of an IEEE binary16 pattern, computed from the definition. */
static double f16_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return s ? -v : v;
}

/* Independent round-to-nearest-even of x to a binary format with p bits of
 * precision (including the implicit one), minimum normal exponent emin
 * (value 2^emin) and largest finite value max.  Works in float64, where x
 * and all the intermediates are exact: q = x / ulp has at most 24 bits. */
static double round_format(double x, int p, int emin, double max)
{
    if (x == 0.0 || !isfinite(x))
        return x;
    int e;
    frexp(fabs(x), &e);                 /* |x| in [2^(e-1), 2^e) */
    int expo = e - 1 < emin ? emin : e - 1;
    double ulp = ldexp(1.0, expo - (p - 1));
    double r = nearbyint(x / ulp) * ulp; /* default mode: ties to even */
    /* overflow: at or beyond max + ulp(max)/2 rounds to Inf */
    if (fabs(r) > max)
        return x < 0 ? -INFINITY : INFINITY;
    return r;
}
#define F16_MAX 65504.0
#define BF16_MAX 3.3895313892515355e38   /* (2 - 2^-7) * 2^127 */

START_TEST(test_f16_every_pattern)
{
    for (uint32_t h = 0; h < 65536; h++) {
        double v = f16_value((uint16_t)h);
        float f = kvr_f16_to_f32((uint16_t)h);
        if (isnan(v)) {
            TU_CHECK(isnan(f), "f16 %04x: expected NaN", h);
            TU_OK(isnan(kvr_f16_to_f32(kvr_f32_to_f16(f))));
            continue;
        }
        TU_CHECK((double)f == v && !!signbit(f) == !!signbit(v), "f16 %04x reads %a, expected %a", h, (double)f, v);
        TU_CHECK(kvr_f32_to_f16(f) == h, "f16 %04x does not round-trip (got %04x)", h, kvr_f32_to_f16(f));
        TU_OK(kvr_elem_round(KVR_F16, f) == f);
    }
}
END_TEST

START_TEST(test_bf16_every_pattern)
{
    for (uint32_t b = 0; b < 65536; b++) {
        float f = kvr_bf16_to_f32((uint16_t)b);
        TU_OK(bits(f) == b << 16);                /* bf16 is the top half of float32 */
        if (isnan(f)) {
            TU_OK(isnan(kvr_bf16_to_f32(kvr_f32_to_bf16(f))));
            continue;
        }
        TU_CHECK(kvr_f32_to_bf16(f) == b, "bf16 %04x does not round-trip", b);
        TU_OK(bits(kvr_elem_round(KVR_BF16, f)) == bits(f));
    }
}
END_TEST

/* Midpoints between adjacent finite f16 values round to the even one; one
 * float32 ulp on either side rounds to the nearer.  The midpoint (a+b)/2 has
 * 12 significant bits, so it is exact in float32. */
START_TEST(test_f16_midpoints)
{
    for (uint32_t h = 0; h < 0x7BFF; h++) {           /* positive finite, up to the last pair */
        float a = kvr_f16_to_f32((uint16_t)h), b = kvr_f16_to_f32((uint16_t)(h + 1));
        float mid = (float)(((double)a + (double)b) / 2);
        TU_OK((double)mid == ((double)a + (double)b) / 2);
        uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
        TU_CHECK(kvr_f32_to_f16(mid) == even, "midpoint of %04x and %04x: got %04x", h, h + 1,
                      kvr_f32_to_f16(mid));
        TU_CHECK(kvr_f32_to_f16(-mid) == (even | 0x8000), "negative midpoint of %04x", h);
        TU_EQ(kvr_f32_to_f16(nextafterf(mid, 0.0f)), h);
        TU_EQ(kvr_f32_to_f16(nextafterf(mid, INFINITY)), h + 1);
    }
    /* the last pair: 65504 (0x7BFF, odd) and the next step 65536 (Inf):
     * the midpoint 65520 rounds to even, i.e. overflows */
    TU_EQ(kvr_f32_to_f16(65520.0f), 0x7C00);
    TU_EQ(kvr_f32_to_f16(nextafterf(65520.0f, 0.0f)), 0x7BFF);
    TU_EQ(kvr_f32_to_f16(-65520.0f), 0xFC00);
}
END_TEST

START_TEST(test_bf16_midpoints)
{
    tu_rng r;
    tu_seed(&r, 3);
    for (int i = 0; i < 200000; i++) {
        uint32_t b = (uint32_t)tu_int(&r, 0, 0x7F7E);  /* b and b+1 finite positive */
        float a = kvr_bf16_to_f32((uint16_t)b);
        float mid = from_bits((b << 16) | 0x8000u);    /* exactly halfway to b+1 */
        uint16_t even = (b & 1) ? (uint16_t)(b + 1) : (uint16_t)b;
        TU_CHECK(kvr_f32_to_bf16(mid) == even, "midpoint above bf16 %04x (%g)", b, (double)a);
        TU_EQ(kvr_f32_to_bf16(from_bits((b << 16) | 0x7FFFu)), b);
        TU_EQ(kvr_f32_to_bf16(from_bits((b << 16) | 0x8001u)), b + 1);
    }
    /* the largest finite bf16 is 0x7F7F (odd mantissa): its midpoint to Inf overflows */
    TU_EQ(kvr_f32_to_bf16(from_bits(0x7F7F8000u)), 0x7F80);
    TU_EQ(kvr_f32_to_bf16(FLT_MAX), 0x7F80);
}
END_TEST

/* A million random float32 patterns (all exponents, both signs, subnormals
 * included) against round_format. */
START_TEST(test_random_against_independent)
{
    tu_rng r;
    tu_seed(&r, 11);
    for (int i = 0; i < 1000000; i++) {
        float x = from_bits((uint32_t)tu_next(&r));
        if (i % 4 == 0)   /* a quarter near the f16 range, where f16 is interesting */
            x = from_bits((bits(x) & 0x807FFFFFu) | ((uint32_t)tu_int(&r, 100, 143) << 23));
        if (!isfinite(x))
            continue;
        double want16 = round_format(x, 11, -14, F16_MAX);
        double want_bf = round_format(x, 8, -126, BF16_MAX);
        float got16 = kvr_elem_round(KVR_F16, x), got_bf = kvr_elem_round(KVR_BF16, x);
        TU_CHECK((double)got16 == want16, "f16 of %a: %a, expected %a", (double)x, (double)got16, want16);
        TU_CHECK((double)got_bf == want_bf, "bf16 of %a: %a, expected %a", (double)x, (double)got_bf, want_bf);
        TU_OK(!!signbit(got16) == !!signbit(x) && !!signbit(got_bf) == !!signbit(x));
        TU_OK(bits(kvr_elem_round(KVR_F32, x)) == bits(x));
    }
}
END_TEST

START_TEST(test_subnormals)
{
    float tiny = ldexpf(1.0f, -24);                   /* smallest f16 subnormal */
    TU_EQ(kvr_f32_to_f16(tiny), 0x0001);
    TU_EQ(kvr_f32_to_f16(ldexpf(1.0f, -25)), 0x0000);        /* tie with 0: even */
    TU_EQ(kvr_f32_to_f16(nextafterf(ldexpf(1.0f, -25), 1.0f)), 0x0001);
    TU_EQ(kvr_f32_to_f16(3.0f * ldexpf(1.0f, -25)), 0x0002); /* 1.5 ulp: tie, to even 2 */
    TU_EQ(kvr_f32_to_f16(ldexpf(1023.0f, -24)), 0x03FF);     /* largest subnormal */
    TU_EQ(kvr_f32_to_f16(ldexpf(1023.5f, -24)), 0x0400);     /* tie: up to 2^-14, even */
    TU_EQ(kvr_f32_to_f16(-tiny), 0x8001);
    TU_EQ(kvr_f32_to_f16(-0.0f), 0x8000);
    TU_EQ(kvr_f32_to_f16(ldexpf(1.0f, -30)), 0x0000);
    TU_OK(!!signbit(kvr_elem_round(KVR_F16, -ldexpf(1.0f, -30))));     /* underflow keeps the sign */
    /* float32 subnormals in bf16 */
    TU_EQ(kvr_f32_to_bf16(from_bits(0x00000001u)), 0x0000);
    TU_EQ(kvr_f32_to_bf16(from_bits(0x00008000u)), 0x0000);  /* tie, even */
    TU_EQ(kvr_f32_to_bf16(from_bits(0x00018000u)), 0x0002);  /* tie, even */
    TU_EQ(kvr_f32_to_bf16(from_bits(0x007FFFFFu)), 0x0080);  /* rounds up to FLT_MIN */
}
END_TEST

/* Overflow through the public API (spec §4, §12): KVR_ERANGE and nothing
 * appended; the largest representable value is accepted. */
START_TEST(test_overflow_through_append)
{
    static const struct { kvr_elem elem; float ok, bad; } cases[] = {
        {KVR_F16, 65519.0f, 65520.0f},
        {KVR_F16, -65504.0f, -1e6f},
        {KVR_BF16, 3.38953139e38f, FLT_MAX},
        {KVR_F32, FLT_MAX, 0.0f},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kvr_config cfg = tu_config(1, 2, 0, 0, 0, KVR_IMP_NONE);
        cfg.elem = cases[i].elem;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, 1, 4, &cfg, KVR_BACKEND_REF), KVR_OK);
        float k[4] = {1, 2, 3, cases[i].ok}, v[4] = {cases[i].ok, 0, 0, 0};
        TU_EQ(kvr_append(c, 0, 1, k, v), KVR_OK);
        float rk[4], rv[4];
        TU_EQ(kvr_reconstruct(c, 0, 0, 0, rk, rv), KVR_OK);
        TU_OK(rk[3] == kvr_elem_round(cases[i].elem, cases[i].ok) && isfinite(rk[3]));
        if (cases[i].elem != KVR_F32) {
            tu_snap *s = tu_snap_take(c);
            k[1] = cases[i].bad;
            TU_EQ(kvr_append(c, 0, 1, k, v), KVR_ERANGE);
            ck_assert_ptr_nonnull(strstr(kvr_last_error(), "k[1]"));
            TU_ASSERT_UNCHANGED(s, c);
            k[1] = 0;
            v[2] = cases[i].bad;
            TU_EQ(kvr_append(c, 0, 1, k, v), KVR_ERANGE);
            ck_assert_ptr_nonnull(strstr(kvr_last_error(), "v[2]"));
            TU_ASSERT_UNCHANGED(s, c);
            TU_EQ(kvr_length(c, 0), 1);
            tu_snap_free(s);
        }
        kvr_cache_free(c);
    }
}
END_TEST

/* Stored values read back as kvr_elem_round of the input, in every part. */
START_TEST(test_stored_is_rounded)
{
    for (int e = 0; e < 3; e++) {
        kvr_config cfg = tu_config(2, 3, 2, 0, 0, KVR_IMP_H2O);
        cfg.elem = (kvr_elem)e;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 2, 2, 8, &cfg, KVR_BACKEND_REF), KVR_OK);
        enum { N = 7 };
        float k[N][2][8], v[N][2][8];
        tu_rng r;
        tu_seed(&r, (uint64_t)e);
        tu_fill(&r, &k[0][0][0], sizeof k / sizeof(float), 0.0, 100.0);
        tu_fill(&r, &v[0][0][0], sizeof v / sizeof(float), 0.0, 1e-5);
        TU_EQ(kvr_append(c, 0, N, &k[0][0][0], &v[0][0][0]), KVR_OK);
        for (int p = 0; p < N; p++)
            for (int h = 0; h < 2; h++) {
                float rk[8], rv[8];
                TU_EQ(kvr_reconstruct(c, 0, h, p, rk, rv), KVR_OK);
                for (int i = 0; i < 8; i++) {
                    TU_OK(bits(rk[i]) == bits(kvr_elem_round((kvr_elem)e, k[p][h][i])));
                    TU_OK(bits(rv[i]) == bits(kvr_elem_round((kvr_elem)e, v[p][h][i])));
                }
            }
        kvr_cache_free(c);
    }
}
END_TEST

START_TEST(test_names)
{
    TU_EQ(kvr_elem_size(KVR_F32), 4);
    TU_EQ(kvr_elem_size(KVR_F16), 2);
    TU_EQ(kvr_elem_size(KVR_BF16), 2);
    static const char *names[] = {"f32", "f16", "bf16"};
    for (int e = 0; e < 3; e++) {
        kvr_elem got = (kvr_elem)99;
        ck_assert_str_eq(kvr_elem_name((kvr_elem)e), names[e]);
        TU_EQ(kvr_elem_parse(names[e], &got), KVR_OK);
        TU_EQ(got, e);
    }
    kvr_elem got = KVR_BF16;
    TU_EQ(kvr_elem_parse("float16", &got), KVR_OK);
    TU_EQ(got, KVR_F16);
    TU_EQ(kvr_elem_parse("f8", &got), KVR_EINVAL);
    TU_EQ(got, KVR_F16);
    TU_EQ(kvr_elem_parse(NULL, &got), KVR_EINVAL);
}
END_TEST

/* kvr_elem_load_row gives what kvr_elem_load gives one by one, bit for
 * bit, on every 16-bit pattern (float16 and bfloat16) and on float32. */
START_TEST(test_load_row)
{
    static uint16_t half[65536];
    static float row[65536];
    for (uint32_t h = 0; h < 65536; h++) half[h] = (uint16_t)h;
    const kvr_elem types[] = {KVR_F16, KVR_BF16};
    for (int e = 0; e < 2; e++) {
        kvr_elem_load_row(types[e], half, 0, 65536, row);
        for (uint32_t h = 0; h < 65536; h++) {
            float one = kvr_elem_load(types[e], half, h);
            TU_CHECK(bits(one) == bits(row[h]), "%s %04x: row %08x, one %08x", kvr_elem_name(types[e]), h,
                     bits(row[h]), bits(one));
        }
    }
    float f[5] = {1.5f, -0.0f, 3.0f, 65504.0f, -2.0f}, out[3];
    kvr_elem_load_row(KVR_F32, f, 1, 3, out);
    TU_OK(bits(out[0]) == bits(-0.0f) && out[1] == 3.0f && out[2] == 65504.0f);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("elem");
    TCase *tc = tu_tcase(s, "exhaustive");
    tcase_add_test(tc, test_f16_every_pattern);
    tcase_add_test(tc, test_load_row);
    tcase_add_test(tc, test_bf16_every_pattern);
    tcase_add_test(tc, test_f16_midpoints);
    tcase_add_test(tc, test_bf16_midpoints);
    tcase_add_test(tc, test_random_against_independent);
    tcase_add_test(tc, test_subnormals);
    tc = tu_tcase(s, "api");
    tcase_add_test(tc, test_overflow_through_append);
    tcase_add_test(tc, test_stored_is_rounded);
    tcase_add_test(tc, test_names);
    return tu_run(s);
}
