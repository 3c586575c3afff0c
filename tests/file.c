/* file.c: saving and loading a model cache (spec §16, doc/files.md).
 *
 * Round trips must be bit-identical (save, load, save again: the same bytes)
 * and attention afterwards identical; every damaged or forged file must be
 * rejected with KVR_EFORMAT (KVR_EIO for a path that cannot be opened) and
 * leave nothing allocated (ASan and valgrind check that in CI). */
#include <config.h>
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "kvreviver.h"
#include "base.h"
#include "robust-util.h"

enum { HEADER = 32, CONFIG = 112 };   /* bytes of the header and of the dimensions + configuration */

/* Bitwise CRC-32 (reflected 0xEDB88320), independent of lib/file.c's table. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put32(unsigned char *p, uint32_t x)
{
    for (int b = 0; b < 4; b++) p[b] = (unsigned char)(x >> (8 * b));
}

static void put64(unsigned char *p, uint64_t x)
{
    for (int b = 0; b < 8; b++) p[b] = (unsigned char)(x >> (8 * b));
}

/* Rewrite the header's checksum after forging the payload. */
static void reseal(unsigned char *f, size_t len)
{
    put32(f + 24, crc32_bitwise(f + HEADER, len - HEADER));
}

/* Load must fail with `status`, leave *out NULL, and say `words`. */
static void expect_reject(const void *buf, size_t len, int status, const char *words)
{
    kvr_cache *c = (kvr_cache *)&c;  /* not NULL, to see that load clears it */
    int got = kvr_cache_load_mem(&c, buf, len);
    ck_assert_msg(got == status, "status %d, expected %d (%s)", got, status, kvr_last_error());
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(kvr_last_error(), words) != NULL, "message '%s' lacks '%s'", kvr_last_error(), words);
}

START_TEST(test_crc_check_value)
{
    /* The CRC-32 check value of "123456789" is 0xCBF43926; the file's header
     * must carry the CRC of its payload computed that way. */
    ck_assert_uint_eq(crc32_bitwise((const unsigned char *)"123456789", 9), 0xCBF43926u);
    kvr_cache *c = ru_cache(0, 20, 1);
    ru_snap s = ru_snapshot(c);
    const unsigned char *f = s.buf;
    ck_assert_int_eq(memcmp(f, "KVRCACHE", 8), 0);
    ck_assert_uint_eq(get32(f + 8), 2);
    ck_assert_uint_eq(get32(f + 12), 0x01020304u);
    ck_assert_uint_eq(get32(f + 16), s.len - HEADER);
    ck_assert_uint_eq(get32(f + 24), crc32_bitwise(f + HEADER, s.len - HEADER));
    ru_snap_free(&s);
    kvr_cache_free(c);
}
END_TEST

/* Round trip of each variant at several lengths (empty, sinks only, window
 * filling, candidates full, many vague). */
START_TEST(test_round_trip)
{
    static const int lengths[] = {0, 1, 5, 9, 60};
    for (size_t li = 0; li < sizeof lengths / sizeof lengths[0]; li++) {
        kvr_cache *a = ru_cache(_i, lengths[li], 100 + (uint64_t)_i);
        ru_snap s1 = ru_snapshot(a);
        kvr_cache *b = NULL;
        ck_assert_int_eq(kvr_cache_load_mem(&b, s1.buf, s1.len), KVR_OK);
        ru_snap s2 = ru_snapshot(b);
        ck_assert_msg(ru_same(s1, s2), "variant %d length %d: second save differs", _i, lengths[li]);
        /* same dimensions and configuration */
        int d1[4], d2[4];
        kvr_cache_dims(a, d1, d1 + 1, d1 + 2, d1 + 3);
        kvr_cache_dims(b, d2, d2 + 1, d2 + 2, d2 + 3);
        ck_assert_int_eq(memcmp(d1, d2, sizeof d1), 0);
        ck_assert_int_eq(memcmp(kvr_cache_config(a), kvr_cache_config(b), sizeof(kvr_config)), 0);
        /* attention afterwards identical, bit for bit, and the state after
         * more appends and attention still identical */
        uint64_t seed = 7;
        float k[RU_H * RU_D], v[RU_H * RU_D], q[RU_Q * RU_D], oa[RU_Q * RU_D], ob[RU_Q * RU_D];
        for (int t = 0; t < 12; t++)
            for (int l = 0; l < RU_L; l++) {
                ru_fill(k, sizeof k / sizeof k[0], &seed);
                ru_fill(v, sizeof v / sizeof v[0], &seed);
                ru_fill(q, sizeof q / sizeof q[0], &seed);
                ck_assert_int_eq(kvr_append(a, l, 1, k, v), KVR_OK);
                ck_assert_int_eq(kvr_append(b, l, 1, k, v), KVR_OK);
                ck_assert_int_eq(kvr_attend(a, l, q, oa, 0), KVR_OK);
                ck_assert_int_eq(kvr_attend(b, l, q, ob, 0), KVR_OK);
                ck_assert_int_eq(memcmp(oa, ob, sizeof oa), 0);
            }
        ru_snap s3 = ru_snapshot(a), s4 = ru_snapshot(b);
        ck_assert(ru_same(s3, s4));
        ru_snap_free(&s1); ru_snap_free(&s2); ru_snap_free(&s3); ru_snap_free(&s4);
        kvr_cache_free(a);
        kvr_cache_free(b);
    }
}
END_TEST

START_TEST(test_file_round_trip_and_io_errors)
{
    char dir[] = "/tmp/kvr-file.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], missing[300];
    snprintf(path, sizeof path, "%s/cache.kvr", dir);
    snprintf(missing, sizeof missing, "%s/no-such-dir/cache.kvr", dir);
    kvr_cache *a = ru_cache(0, 30, 3), *b = NULL;
    ck_assert_int_eq(kvr_cache_save(a, path), KVR_OK);
    ck_assert_int_eq(kvr_cache_load(&b, path), KVR_OK);
    ru_snap s1 = ru_snapshot(a), s2 = ru_snapshot(b);
    ck_assert(ru_same(s1, s2));
    /* the file holds exactly save_mem's bytes */
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    unsigned char *f = malloc(s1.len + 1);
    ck_assert_uint_eq(fread(f, 1, s1.len + 1, fp), s1.len);
    fclose(fp);
    ck_assert_int_eq(memcmp(f, s1.buf, s1.len), 0);
    /* a truncated file on disk */
    fp = fopen(path, "wb");
    ck_assert_uint_eq(fwrite(f, 1, s1.len - 1, fp), s1.len - 1);
    fclose(fp);
    kvr_cache *c = NULL;
    ck_assert_int_eq(kvr_cache_load(&c, path), KVR_EFORMAT);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), path));
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "truncated"));
    /* paths that cannot be opened: KVR_EIO naming the path */
    ck_assert_int_eq(kvr_cache_load(&c, missing), KVR_EIO);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), missing));
    ck_assert_int_eq(kvr_cache_save(a, missing), KVR_EIO);
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "no-such-dir"));
    ck_assert_int_eq(kvr_cache_load(&c, dir), KVR_EIO);      /* a directory, said so */
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), dir));
    ck_assert_ptr_nonnull(strstr(kvr_last_error(), "is a directory"));
    ck_assert_ptr_null(c);
    /* bad arguments */
    ck_assert_int_eq(kvr_cache_save(NULL, path), KVR_EINVAL);
    ck_assert_int_eq(kvr_cache_save(a, NULL), KVR_EINVAL);
    ck_assert_int_eq(kvr_cache_load(NULL, path), KVR_EINVAL);
    ck_assert_int_eq(kvr_cache_load(&c, NULL), KVR_EINVAL);
    ck_assert_int_eq(kvr_cache_load_mem(&c, NULL, 10), KVR_EINVAL);
    ck_assert_int_eq(kvr_cache_save_mem(a, NULL, &s1.len), KVR_EINVAL);
    free(f);
    ru_snap_free(&s1); ru_snap_free(&s2);
    kvr_cache_free(a);
    kvr_cache_free(b);
    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_truncated_every_length)
{
    kvr_cache *a = ru_cache(_i, 15, 5);
    ru_snap s = ru_snapshot(a);
    for (size_t n = 0; n < s.len; n++)
        expect_reject(s.buf, n, KVR_EFORMAT, "truncated");
    expect_reject(s.buf, 10, KVR_EFORMAT, "truncated");
    expect_reject(s.buf, s.len - 1, KVR_EFORMAT, "truncated");
    /* trailing bytes are an error too */
    unsigned char *longer = malloc(s.len + 1);
    memcpy(longer, s.buf, s.len);
    longer[s.len] = 0;
    expect_reject(longer, s.len + 1, KVR_EFORMAT, "trailing");
    free(longer);
    ru_snap_free(&s);
    kvr_cache_free(a);
}
END_TEST

START_TEST(test_corrupted_every_byte)
{
    /* Flipping any one bit of the payload changes its CRC-32 (CRC-32 detects
     * every single-bit error); flipping a header byte breaks magic, version,
     * marker, length, checksum or the reserved field. */
    kvr_cache *a = ru_cache(0, 15, 6);
    ru_snap s = ru_snapshot(a);
    unsigned char *f = malloc(s.len);
    for (size_t i = 0; i < s.len; i++) {
        memcpy(f, s.buf, s.len);
        f[i] ^= (unsigned char)(1u << (i % 8));
        expect_reject(f, s.len, KVR_EFORMAT, i >= HEADER && !(i >= 24 && i < 28) ? "corrupted" : "");
    }
    free(f);
    ru_snap_free(&s);
    kvr_cache_free(a);
}
END_TEST

START_TEST(test_header_rejections)
{
    kvr_cache *a = ru_cache(0, 15, 8);
    ru_snap s = ru_snapshot(a);
    unsigned char *f = malloc(s.len);
#define RESET() memcpy(f, s.buf, s.len)
    RESET(); memcpy(f, "KVRCACHF", 8);
    expect_reject(f, s.len, KVR_EFORMAT, "magic");
    RESET(); put32(f + 8, 1);                        /* before the moment route's fields */
    expect_reject(f, s.len, KVR_EFORMAT, "version 1");
    RESET(); put32(f + 8, 7);                        /* a version after spec §19.13's */
    expect_reject(f, s.len, KVR_EFORMAT, "version 7");
    RESET(); put32(f + 12, 0x04030201u);
    expect_reject(f, s.len, KVR_EFORMAT, "big-endian");
    RESET(); put32(f + 12, 0xDEADBEEFu);
    expect_reject(f, s.len, KVR_EFORMAT, "endianness");
    RESET(); put32(f + 20, 1);                       /* 4 GiB more payload announced */
    expect_reject(f, s.len, KVR_EFORMAT, "truncated");
    RESET(); put32(f + 28, 1);
    expect_reject(f, s.len, KVR_EFORMAT, "reserved");
#undef RESET
    free(f);
    ru_snap_free(&s);
    kvr_cache_free(a);
}
END_TEST

/* Forged payloads with a valid checksum: the parser's own checks. */
START_TEST(test_forged_fields)
{
    kvr_cache *a = ru_cache(0, 30, 9);
    ru_snap s = ru_snapshot(a);
    unsigned char *f = malloc(s.len);
    const size_t P = HEADER, H0 = HEADER + CONFIG;  /* payload, first head */
    kvr_config cfg;
    ru_config(0, &cfg);
    const size_t sink_k = H0 + 28, D = RU_D;
    const size_t win = sink_k + 2 * cfg.sinks * D * 4;
    const size_t win_score = win + 2 * cfg.window * D * 4, cand_pos = win_score + cfg.window * 4;
#define FORGE(stmt, words) do { memcpy(f, s.buf, s.len); stmt; reseal(f, s.len); \
        expect_reject(f, s.len, KVR_EFORMAT, words); } while (0)
    FORGE(put32(f + P + 0, 100000), "absurd dimensions");           /* n_layers */
    FORGE(put32(f + P + 8, 3), "absurd dimensions");                /* n_q_heads not a multiple */
    FORGE(put32(f + P + 12, 0), "head_dim");                        /* head_dim */
    FORGE(put32(f + P + 32, 1000000), "absurd dimensions");         /* width */
    FORGE(put32(f + P + 24, 0x7FFFFFF0u), "absurd dimensions");     /* candidates near 2^31 */
    FORGE(put32(f + P + 24, 0x7FFFFFFFu), "configuration");         /* sinks + window + candidates > 2^31-1 */
    FORGE(put32(f + P + 72, 7), "config.elem");                     /* elem */
    FORGE(put32(f + P + 44, 5), "config.rows");                     /* rows */
    FORGE(put32(f + P + 92, 2), "config.vague");                    /* vague */
    FORGE(put64(f + P + 96, 0xFFF8000000000000u), "config.var_cap"); /* NaN var_cap */
    FORGE(put64(f + P + 104, 0x7FF0000000000000u), "config.revive"); /* Inf revive */
    FORGE(put32(f + H0 + 8, 4), "candidates");                      /* n_cand > C = 3 */
    FORGE(put32(f + H0 + 0, 31), "");                               /* n of one head */
    FORGE(put32(f + H0 + 20, 1), "layer or kv_head");               /* layer id */
    FORGE(put32(f + H0 + 12, 99), "");                              /* n_vague */
    FORGE(put32(f + cand_pos, get32(f + cand_pos + 4)), "out of order");
    FORGE(put32(f + cand_pos, 1), "candidate");                     /* a sink position */
    FORGE(put32(f + sink_k, 0x7FC00000u), "not finite");            /* NaN key */
    FORGE(put32(f + win_score, 0x7F800000u), "score");              /* Inf score */
#undef FORGE
    free(f);
    ru_snap_free(&s);
    kvr_cache_free(a);
}
END_TEST


/* A file without a length, or whose header announces more than it holds, is
 * refused for what it is, and the loader never asks for more memory than
 * the bytes it has seen can justify (issue 29: /dev/zero used to fail with
 * "out of memory ... 34359738368 bytes"). */
START_TEST(test_no_allocation_past_the_file)
{
    kvr_cache *c = (kvr_cache *)&c;
    /* /dev/zero: endless zeros, no length; the header's magic is wrong */
    kvr_alloc_largest_reset();
    ck_assert_int_eq(kvr_cache_load(&c, "/dev/zero"), KVR_EFORMAT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(kvr_last_error(), "bad magic") && strstr(kvr_last_error(), "/dev/zero"), "%s",
                  kvr_last_error());
    ck_assert_uint_le(kvr_alloc_largest(), 4096);

    /* a valid header announcing 2^40 payload bytes, then 100 bytes */
    kvr_cache *a = ru_cache(0, 30, 3);
    ru_snap s = ru_snapshot(a);
    unsigned char *f = malloc(HEADER + 100);
    memcpy(f, s.buf, HEADER + 100);
    put64(f + 16, UINT64_C(1) << 40);
    char dir[] = "/tmp/kvr-file.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256], fifo[256];
    snprintf(path, sizeof path, "%s/forged.kvr", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(f, 1, HEADER + 100, fp), HEADER + 100);
    ck_assert_int_eq(fclose(fp), 0);
    kvr_alloc_largest_reset();                    /* a regular file: refused from its length */
    ck_assert_int_eq(kvr_cache_load(&c, path), KVR_EFORMAT);
    ck_assert_msg(strstr(kvr_last_error(), "truncated") && strstr(kvr_last_error(), "1099511627776"), "%s",
                  kvr_last_error());
    ck_assert_uint_le(kvr_alloc_largest(), 4096);
    /* the same bytes through a pipe (no length): read, not trusted */
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {   /* the writer execs cat (the same bytes, from the file): under valgrind a
                         * forked copy of this process would report every block it holds */
        execl("/bin/sh", "sh", "-c", "exec cat \"$0\" > \"$1\"", path, fifo, (char *)NULL);
        _exit(127);
    }
    kvr_alloc_largest_reset();
    ck_assert_int_eq(kvr_cache_load(&c, fifo), KVR_EFORMAT);
    ck_assert_ptr_null(c);
    ck_assert_msg(strstr(kvr_last_error(), "truncated"), "%s", kvr_last_error());
    ck_assert_uint_le(kvr_alloc_largest(), 65536);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    /* a whole cache through a pipe loads */
    char whole[256];
    snprintf(whole, sizeof whole, "%s/whole.kvr", dir);
    fp = fopen(whole, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(s.buf, 1, s.len, fp), s.len);
    ck_assert_int_eq(fclose(fp), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exec cat \"$0\" > \"$1\"", whole, fifo, (char *)NULL);
        _exit(127);
    }
    ck_assert_int_eq(kvr_cache_load(&c, fifo), KVR_OK);
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ru_snap t = ru_snapshot(c);
    ck_assert(ru_same(s, t));
    ru_snap_free(&t);
    kvr_cache_free(c);
    unlink(fifo);
    unlink(whole);
    unlink(path);
    rmdir(dir);
    free(f);
    ru_snap_free(&s);
    kvr_cache_free(a);
}
END_TEST

static Suite *file_suite(void)
{
    Suite *s = suite_create("file");
    TCase *tc = tcase_create("cache files");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_crc_check_value);
    tcase_add_loop_test(tc, test_round_trip, 0, RU_VARIANTS);
    tcase_add_test(tc, test_file_round_trip_and_io_errors);
    tcase_add_loop_test(tc, test_truncated_every_length, 0, RU_VARIANTS);
    tcase_add_test(tc, test_corrupted_every_byte);
    tcase_add_test(tc, test_header_rejections);
    tcase_add_test(tc, test_forged_fields);
    tcase_add_test(tc, test_no_allocation_past_the_file);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ru_run(file_suite());
}
