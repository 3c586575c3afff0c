/* npy.c: the NumPy .npy reader and writer (lib/npy.c): round trips of every
 * type, hand-made files of each accepted header version and spelling, and
 * the malformed, truncated and unsupported files the reader must reject with
 * KVR_EFORMAT (or KVR_EIO) and a message naming the file. */
#include <config.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "npy.h"

static char tmpdir[256];
static char path[512];

static void setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/kvr-npy-XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(path, sizeof path, "%s/a.npy", tmpdir);
}

static void teardown(void)
{
    remove(path);
    rmdir(tmpdir);
}

/* Write a raw file: version bytes, a header (its length field is computed
 * from strlen(header) unless hlen_override >= 0), then nbytes of data. */
static void write_raw(int major, int minor, const char *header, long hlen_override,
                      const void *data, size_t nbytes)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    size_t hlen = hlen_override >= 0 ? (size_t)hlen_override : strlen(header);
    unsigned char pre[12] = { 0x93, 'N', 'U', 'M', 'P', 'Y', (unsigned char)major, (unsigned char)minor };
    size_t npre = major == 1 ? 10 : 12;
    for (size_t i = 0; i < npre - 8; i++)
        pre[8 + i] = (unsigned char)(hlen >> (8 * i));
    ck_assert_uint_eq(fwrite(pre, 1, npre, f), npre);
    ck_assert_uint_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    if (nbytes)
        ck_assert_uint_eq(fwrite(data, 1, nbytes, f), nbytes);
    fclose(f);
}

/* Read path and require failure with status and a message containing both
 * the path and the expected phrase. */
static void expect_reject(int status, const char *phrase)
{
    kvr_npy a;
    memset(&a, 0xAB, sizeof a);
    ck_assert_int_eq(kvr_npy_read(path, &a), status);
    ck_assert_ptr_null(a.data);
    ck_assert_int_eq(a.ndim, 0);
    ck_assert_uint_eq(a.count, 0);
    const char *msg = kvr_last_error();
    ck_assert_msg(strstr(msg, path) != NULL, "message '%s' does not name the file", msg);
    ck_assert_msg(strstr(msg, phrase) != NULL, "message '%s' lacks '%s'", msg, phrase);
}

START_TEST(test_round_trip_every_type)
{
    static const kvr_npy_type types[] = { KVR_NPY_F32, KVR_NPY_F16, KVR_NPY_U16, KVR_NPY_I32,
                                          KVR_NPY_U64, KVR_NPY_F64, KVR_NPY_U8, KVR_NPY_I64 };
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        size_t shape[3] = { 2, 3, 5 }, size = kvr_npy_type_size(types[t]);
        unsigned char data[2 * 3 * 5 * 8];
        for (size_t i = 0; i < sizeof data; i++)
            data[i] = (unsigned char)(i * 37 + t);
        ck_assert_int_eq(kvr_npy_write(path, types[t], 3, shape, data), KVR_OK);
        kvr_npy a;
        ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
        ck_assert_int_eq(a.type, types[t]);
        ck_assert_int_eq(a.ndim, 3);
        ck_assert_uint_eq(a.shape[0], 2);
        ck_assert_uint_eq(a.shape[1], 3);
        ck_assert_uint_eq(a.shape[2], 5);
        ck_assert_uint_eq(a.count, 30);
        ck_assert_mem_eq(a.data, data, 30 * size);
        kvr_npy_free(&a);
        ck_assert_ptr_null(a.data);
    }
}
END_TEST

START_TEST(test_written_layout)
{
    /* the layout NumPy writes for np.save(f, np.arange(4, dtype='<f4')):
     * the 58-byte dict, spaces, a newline, so that the data starts at the
     * next multiple of 64 after 10 + 58 + 1 bytes: 128 (header length 118) */
    float x[4] = { 0, 1, 2, 3 };
    size_t shape[1] = { 4 };
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, 1, shape, x), KVR_OK);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    unsigned char buf[256];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    ck_assert_uint_eq(n, 128 + 16);
    ck_assert_mem_eq(buf, "\x93NUMPY\x01\x00\x76\x00", 10);
    const char *dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }";
    ck_assert_mem_eq(buf + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 127; i++)
        ck_assert_uint_eq(buf[i], ' ');
    ck_assert_uint_eq(buf[127], '\n');
    ck_assert_mem_eq(buf + 128, x, 16);
}
END_TEST

START_TEST(test_scalar_and_empty)
{
    double v = 2.5;
    kvr_npy a;
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F64, 0, NULL, &v), KVR_OK);
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_int_eq(a.ndim, 0);
    ck_assert_uint_eq(a.count, 1);
    ck_assert_double_eq(*(double *)a.data, 2.5);
    kvr_npy_free(&a);

    size_t shape[2] = { 0, 7 };
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_I32, 2, shape, NULL), KVR_OK);
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_int_eq(a.ndim, 2);
    ck_assert_uint_eq(a.shape[1], 7);
    ck_assert_uint_eq(a.count, 0);
    kvr_npy_free(&a);
}
END_TEST

START_TEST(test_other_versions_and_spellings)
{
    const int32_t d[3] = { 1, -2, 3 };
    kvr_npy a;
    /* 2.0 and 3.0: a 4-byte header length; double quotes; keys in another order;
     * no trailing comma; no padding */
    write_raw(2, 0, "{\"shape\": (3,), \"fortran_order\": False, \"descr\": \"<i4\"}\n", -1, d, sizeof d);
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_int_eq(a.type, KVR_NPY_I32);
    ck_assert_mem_eq(a.data, d, sizeof d);
    kvr_npy_free(&a);
    write_raw(3, 0, "{'descr':'<i4','fortran_order':False,'shape':(3,)}  \n", -1, d, sizeof d);
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_uint_eq(a.count, 3);
    kvr_npy_free(&a);
    /* '<u1' is another spelling of '|u1'; a trailing comma in a 2-d shape */
    unsigned char b[6] = { 1, 2, 3, 4, 5, 6 };
    write_raw(1, 0, "{'descr': '<u1', 'fortran_order': False, 'shape': (2, 3,), }\n", -1, b, 6);
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_int_eq(a.type, KVR_NPY_U8);
    ck_assert_uint_eq(a.shape[0], 2);
    ck_assert_uint_eq(a.shape[1], 3);
    kvr_npy_free(&a);
}
END_TEST

START_TEST(test_fortran_and_big_endian_rejected)
{
    float x[2] = { 1, 2 };
    write_raw(1, 0, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", -1, x, 8);
    expect_reject(KVR_EFORMAT, "fortran_order True");
    write_raw(1, 0, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", -1, x, 8);
    expect_reject(KVR_EFORMAT, "big-endian");
    write_raw(1, 0, "{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }\n", -1, x, 8);
    expect_reject(KVR_EFORMAT, "unsupported dtype");
}
END_TEST

START_TEST(test_malformed_headers)
{
    static const struct { const char *header; const char *phrase; } cases[] = {
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", "newline" },
        { "{'descr': '<f4', 'fortran_order': False}\n", "lacks the key 'shape'" },
        { "{'descr': '<f4', 'shape': (2,)}\n", "lacks the key 'fortran_order'" },
        { "{'fortran_order': False, 'shape': (2,)}\n", "lacks the key 'descr'" },
        { "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\n", "duplicate" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", "unexpected key" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}\n", "without its comma" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (02,)}\n", "leading zero" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,)}\n", "non-negative" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': [2]}\n", "expected '('" },
        { "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}\n", "True or False" },
        { "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}\n", "after a value" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x\n", "trailing characters" },
        { "'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n", "expected '{'" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,2)}\n", "too many dimensions" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,)}\n", "too large" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296)}\n",
          "overflows" },
        { "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)\n", "expected ',' or '}'" },
    };
    float x[2] = { 1, 2 };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_raw(1, 0, cases[i].header, -1, x, sizeof x);
        expect_reject(KVR_EFORMAT, cases[i].phrase);
    }
}
END_TEST

START_TEST(test_bad_prefix)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    expect_reject(KVR_EFORMAT, "bad magic");          /* empty file */
    f = fopen(path, "wb");
    fputs("\x93NUMPZ\x01\x00\x10\x00{}", f);
    fclose(f);
    expect_reject(KVR_EFORMAT, "bad magic");
    write_raw(4, 0, "{}\n", -1, NULL, 0);
    expect_reject(KVR_EFORMAT, "version 4.0");
    write_raw(1, 1, "{}\n", -1, NULL, 0);
    expect_reject(KVR_EFORMAT, "version 1.1");
    /* a header length longer than the file */
    write_raw(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }\n", 500, NULL, 0);
    expect_reject(KVR_EFORMAT, "truncated header");
    /* a 2.0 header length beyond the reader's bound */
    write_raw(2, 0, "{}\n", 1L << 30, NULL, 0);
    expect_reject(KVR_EFORMAT, "header length");
    write_raw(1, 0, "", 0, NULL, 0);
    expect_reject(KVR_EFORMAT, "header length 0");
}
END_TEST

/* Sizes from the header are checked against the file's length before
 * anything is allocated, and a file without a length is refused (issue 29). */
START_TEST(test_no_allocation_past_the_file)
{
    float x[2] = { 1, 2 };
    write_raw(1, 0, "{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }\n", -1, x, sizeof x);
    kvr_alloc_largest_reset();
    expect_reject(KVR_EFORMAT, "the shape needs 4398046511104");
    ck_assert_uint_le(kvr_alloc_largest(), 200);
    kvr_npy a;
    kvr_alloc_largest_reset();
    ck_assert_int_eq(kvr_npy_read("/dev/zero", &a), KVR_EIO);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "not a regular file"));
    ck_assert_ptr_null(a.data);
    ck_assert_uint_eq(kvr_alloc_largest(), 0);
}
END_TEST

START_TEST(test_data_length_exact)
{
    const char *h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }\n";
    double x[7] = { 0 };
    write_raw(1, 0, h, -1, x, 6 * 8 - 1);
    expect_reject(KVR_EFORMAT, "truncated");
    write_raw(1, 0, h, -1, x, 5 * 8);
    expect_reject(KVR_EFORMAT, "the shape needs 48");
    write_raw(1, 0, h, -1, x, 7 * 8);
    expect_reject(KVR_EFORMAT, "trailing bytes");
    write_raw(1, 0, h, -1, x, 6 * 8);
    kvr_npy a;
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    kvr_npy_free(&a);
}
END_TEST

START_TEST(test_io_errors)
{
    kvr_npy a;
    remove(path);
    expect_reject(KVR_EIO, "cannot open");
    ck_assert_int_eq(kvr_npy_read(tmpdir, &a), KVR_EIO);   /* a directory */
    ck_assert_ptr_null(a.data);
    ck_assert_int_eq(kvr_npy_read(NULL, &a), KVR_EINVAL);
    ck_assert_int_eq(kvr_npy_read(path, NULL), KVR_EINVAL);

    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.npy", tmpdir);
    float x = 1;
    size_t shape[1] = { 1 };
    ck_assert_int_eq(kvr_npy_write(bad, KVR_NPY_F32, 1, shape, &x), KVR_EIO);
    ck_assert_int_eq(kvr_npy_write(path, (kvr_npy_type)99, 1, shape, &x), KVR_EINVAL);
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, KVR_NPY_MAX_DIMS + 1, shape, &x), KVR_EINVAL);
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, 1, NULL, &x), KVR_EINVAL);
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, 1, shape, NULL), KVR_EINVAL);
    ck_assert_int_eq(kvr_npy_write(NULL, KVR_NPY_F32, 1, shape, &x), KVR_EINVAL);
    size_t huge[3] = { SIZE_MAX / 2, 4, 1 };
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, 3, huge, &x), KVR_EINVAL);
}
END_TEST

START_TEST(test_allocation_failure)
{
    /* each of the reader's two allocations failing: ENOMEM, nothing leaked
     * (AddressSanitizer's leak check sees it), *out zeroed */
    float x[3] = { 1, 2, 3 };
    size_t shape[1] = { 3 };
    ck_assert_int_eq(kvr_npy_write(path, KVR_NPY_F32, 1, shape, x), KVR_OK);
    for (long k = 1; k <= 2; k++) {
        kvr_npy a;
        kvr_alloc_fail_at(k);
        ck_assert_int_eq(kvr_npy_read(path, &a), KVR_ENOMEM);
        ck_assert_ptr_null(a.data);
    }
    kvr_alloc_fail_at(0);
    kvr_npy a;
    ck_assert_int_eq(kvr_npy_read(path, &a), KVR_OK);
    ck_assert_mem_eq(a.data, x, sizeof x);
    kvr_npy_free(&a);
}
END_TEST

static Suite *npy_suite(void)
{
    Suite *s = suite_create("npy");
    TCase *tc = tcase_create("npy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip_every_type);
    tcase_add_test(tc, test_written_layout);
    tcase_add_test(tc, test_scalar_and_empty);
    tcase_add_test(tc, test_other_versions_and_spellings);
    tcase_add_test(tc, test_fortran_and_big_endian_rejected);
    tcase_add_test(tc, test_malformed_headers);
    tcase_add_test(tc, test_bad_prefix);
    tcase_add_test(tc, test_data_length_exact);
    tcase_add_test(tc, test_no_allocation_past_the_file);
    tcase_add_test(tc, test_io_errors);
    tcase_add_test(tc, test_allocation_failure);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(npy_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
