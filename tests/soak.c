/* soak.c: the soak test at reduced size (issue 8): 50,000 appends, head_dim
 * 16, at a 10% budget of 32k; tool/harness/soak.c does the checks (bytes at the
 * plan, invariants, spec §15 error bound) and explains the levels.  The
 * full size (1,000,000 appends) is `kvreviver bench --soak`. */
#include <config.h>
#include <check.h>
#include <stdlib.h>
#include "kvreviver.h"
#include "harness/soak.h"

START_TEST(test_soak_reduced)
{
    ck_assert_int_eq(ev_soak_run(50000, 16, 0.10, 32768, UINT64_C(0x50A4) + (uint64_t)_i, stdout), 0);
}
END_TEST

START_TEST(test_soak_arguments)
{
    ck_assert_int_eq(ev_soak_run(0, 16, 0.1, 32768, 1, NULL), KVR_EINVAL);
    ck_assert_int_eq(ev_soak_run(10, 0, 0.1, 32768, 1, NULL), KVR_EINVAL);
    ck_assert_int_eq(ev_soak_run(10, 16, -1.0, 32768, 1, NULL), KVR_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("reduced size");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_soak_reduced, 0, 1);
    tcase_add_test(tc, test_soak_arguments);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
