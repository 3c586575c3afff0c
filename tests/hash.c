/* hash.c: known-answer values of the sketch hash (spec §5). */
#include <config.h>
#include <check.h>
#include <stdlib.h>
#include "kvreviver.h"

START_TEST(test_splitmix_chain)
{
    /* kvr_hash(0,0,0,0,0) = mix(mix(mix(mix(0)))) — known values of SplitMix64
     * computed independently: mix(0) = 0xE220A8397B1DCDAF. */
    ck_assert_uint_eq(kvr_hash_bucket(UINT64_C(0xFFFFFFFF00000000), 10), 9);
    ck_assert_uint_eq(kvr_hash_bucket(UINT64_C(0x00000000FFFFFFFF), 10), 0);
    ck_assert_int_eq(kvr_hash_sign(UINT64_C(2)), 1);
    ck_assert_int_eq(kvr_hash_sign(UINT64_C(3)), -1);
}
END_TEST

static Suite *hash_suite(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("known answers");
    tcase_add_test(tc, test_splitmix_chain);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(hash_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
