/* api.c: the public API's failure contract (spec §12): every bad argument
 * returns its code, names the argument in kvr_last_error(), calls the error
 * handler once, prints nothing, and leaves the cache exactly as it was (every
 * byte of every head, checked with a deep snapshot); allocation failures
 * (spec §12.3) return KVR_ENOMEM with the same guarantees, and the cache
 * stays usable. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"

enum { L = 2, H = 2, G = 2, D = 4, N0 = 20 };

/* ---- the error handler and the output watch ---------------------------- */
static int handler_calls, handler_status;
static char handler_msg[600];

static void handler(int status, const char *message)
{
    handler_calls++;
    handler_status = status;
    snprintf(handler_msg, sizeof handler_msg, "%s", message);
}

/* stdout and stderr go to a temporary file while bad calls run; at the end
 * the file must be empty: the library never prints (spec §12). */
static int saved_out = -1, saved_err = -1;
static FILE *sink;

static void quiet_begin(void)
{
    fflush(stdout);
    fflush(stderr);
    sink = tmpfile();
    ck_assert_ptr_nonnull(sink);
    saved_out = dup(1);
    saved_err = dup(2);
    TU_OK(dup2(fileno(sink), 1) >= 0 && dup2(fileno(sink), 2) >= 0);
    kvr_set_error_handler(handler);
}

static void quiet_end(void)
{
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    long size = ftell(sink) >= 0 ? (fseek(sink, 0, SEEK_END), ftell(sink)) : -1;
    fclose(sink);
    TU_CHECK(size == 0, "the library wrote %ld bytes to stdout/stderr", size);
    ck_assert_ptr_eq(kvr_set_error_handler(NULL), handler);
}

/* The call fails with `code`, the message names `needle`, the handler saw
 * exactly this failure, and the cache is unchanged. */
#define EXPECT_FAIL(snap, cache, call, code, needle) do { \
        int calls_ = handler_calls; \
        int st_ = (call); \
        TU_CHECK(st_ == (code), "%s returned %d (%s), expected %d", #call, st_, kvr_last_error(), (code)); \
        TU_CHECK(strstr(kvr_last_error(), (needle)) != NULL, "%s: message '%s' does not name '%s'", \
                      #call, kvr_last_error(), (needle)); \
        TU_EQ(handler_calls, calls_ + 1); \
        TU_EQ(handler_status, (code)); \
        ck_assert_str_eq(handler_msg, kvr_last_error()); \
        if (snap) TU_ASSERT_UNCHANGED((snap), (cache)); \
    } while (0)

static kvr_config base_config(void)
{
    kvr_config cfg = tu_config(2, 3, 3, 2, 5, KVR_IMP_H2O);
    cfg.elem = KVR_F16;
    cfg.obs_window = 4;
    return cfg;
}

/* Layer 0 holds N0 tokens and has seen attention; layer 1 is empty. */
static kvr_cache *make_cache(void)
{
    kvr_config cfg = base_config();
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, L, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    static float k[N0 * H * D], v[N0 * H * D], q[H * G * D], out[H * G * D];
    tu_rng r;
    tu_seed(&r, 1);
    tu_fill(&r, k, sizeof k / sizeof(float), 0, 1);
    tu_fill(&r, v, sizeof v / sizeof(float), 0, 1);
    for (int t = 0; t < N0; t += 4) {
        TU_EQ(kvr_append(c, 0, 4, k + t * H * D, v + t * H * D), KVR_OK);
        tu_fill(&r, q, sizeof q / sizeof(float), 0, 1);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
    }
    TU_OK(kvr_cache_head(c, 0, 0)->n_vague > 0 && kvr_cache_head(c, 0, 0)->n_cand > 0);
    return c;
}

START_TEST(test_append_errors)
{
    kvr_cache *c = make_cache();
    tu_snap *s = tu_snap_take(c);
    float k[3 * H * D], v[3 * H * D];
    for (int i = 0; i < 3 * H * D; i++) k[i] = v[i] = 0.5f;
    quiet_begin();
    EXPECT_FAIL(s, c, kvr_append(NULL, 0, 1, k, v), KVR_EINVAL, "cache is NULL");
    EXPECT_FAIL(s, c, kvr_append(c, -1, 1, k, v), KVR_EINVAL, "layer = -1");
    EXPECT_FAIL(s, c, kvr_append(c, L, 1, k, v), KVR_EINVAL, "layer = 2");
    EXPECT_FAIL(s, c, kvr_append(c, 0, 0, k, v), KVR_EINVAL, "n = 0");
    EXPECT_FAIL(s, c, kvr_append(c, 0, -3, k, v), KVR_EINVAL, "n = -3");
    EXPECT_FAIL(s, c, kvr_append(c, 0, 1, NULL, v), KVR_EINVAL, "k is NULL");
    EXPECT_FAIL(s, c, kvr_append(c, 0, 1, k, NULL), KVR_EINVAL, "v is NULL");
    EXPECT_FAIL(s, c, kvr_append(c, 0, INT32_MAX, k, v), KVR_EINVAL, "2^31-1");
    /* bad values in the last token of a block: nothing of the block lands */
    k[2 * H * D + 5] = NAN;
    EXPECT_FAIL(s, c, kvr_append(c, 0, 3, k, v), KVR_ENONFINITE, "k[21]");
    k[2 * H * D + 5] = 0.5f;
    v[2 * H * D + 3] = -INFINITY;
    EXPECT_FAIL(s, c, kvr_append(c, 1, 3, k, v), KVR_ENONFINITE, "v[19]");
    v[2 * H * D + 3] = 0.5f;
    k[H * D] = 70000.0f;                             /* overflows f16 */
    EXPECT_FAIL(s, c, kvr_append(c, 0, 3, k, v), KVR_ERANGE, "k[8]");
    k[H * D] = 0.5f;
    quiet_end();
    /* still usable */
    TU_EQ(kvr_append(c, 0, 3, k, v), KVR_OK);
    TU_EQ(kvr_length(c, 0), N0 + 3);
    tu_assert_heads_ok(c);
    tu_snap_free(s);
    kvr_cache_free(c);
}
END_TEST

START_TEST(test_prefill_errors)
{
    kvr_cache *c = make_cache();
    tu_snap *s = tu_snap_take(c);
    enum { P = 10 };
    float k[P * H * D], v[P * H * D], q[P * H * G * D];
    for (int i = 0; i < P * H * D; i++) k[i] = v[i] = 0.25f;
    for (int i = 0; i < P * H * G * D; i++) q[i] = 0.1f;
    quiet_begin();
    EXPECT_FAIL(s, c, kvr_prefill(NULL, 1, P, k, v, 2, q), KVR_EINVAL, "cache is NULL");
    EXPECT_FAIL(s, c, kvr_prefill(c, 0, P, k, v, 2, q), KVR_ESTATE, "already holds 20");
    EXPECT_FAIL(s, c, kvr_prefill(c, 5, P, k, v, 2, q), KVR_EINVAL, "layer = 5");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, 0, k, v, 0, q), KVR_EINVAL, "n = 0");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, NULL, v, 2, q), KVR_EINVAL, "k is NULL");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, NULL, 2, q), KVR_EINVAL, "v is NULL");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, P + 1, q), KVR_EINVAL, "n_obs = 11");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, -1, q), KVR_EINVAL, "n_obs = -1");
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, 0, q), KVR_EINVAL, "n_obs = 0");  /* h2o needs queries */
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, 2, NULL), KVR_EINVAL, "q_obs is NULL");
    q[2 * H * G * D - 1] = NAN;
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, 2, q), KVR_ENONFINITE, "q_obs[31]");
    q[2 * H * G * D - 1] = 0.1f;
    k[P * H * D - 1] = INFINITY;
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, 2, q), KVR_ENONFINITE, "k[79]");
    k[P * H * D - 1] = 0.25f;
    v[P * H * D - 2] = -1e9f;
    EXPECT_FAIL(s, c, kvr_prefill(c, 1, P, k, v, 2, q), KVR_ERANGE, "v[78]");
    v[P * H * D - 2] = 0.25f;
    quiet_end();
    TU_EQ(kvr_prefill(c, 1, P, k, v, 2, q), KVR_OK);
    TU_EQ(kvr_length(c, 1), P);
    tu_assert_heads_ok(c);
    tu_snap_free(s);
    kvr_cache_free(c);
}
END_TEST

START_TEST(test_attend_errors)
{
    kvr_cache *c = make_cache();
    tu_snap *s = tu_snap_take(c);
    float q[H * G * D], out[H * G * D], sentinel[H * G * D];
    for (int i = 0; i < H * G * D; i++) { q[i] = 0.3f; out[i] = sentinel[i] = -7.0f; }
    quiet_begin();
    EXPECT_FAIL(s, c, kvr_attend(NULL, 0, q, out, 0), KVR_EINVAL, "cache is NULL");
    EXPECT_FAIL(s, c, kvr_attend(c, -2, q, out, 0), KVR_EINVAL, "layer = -2");
    EXPECT_FAIL(s, c, kvr_attend(c, 0, NULL, out, 0), KVR_EINVAL, "q is NULL");
    EXPECT_FAIL(s, c, kvr_attend(c, 0, q, NULL, 0), KVR_EINVAL, "out is NULL");
    EXPECT_FAIL(s, c, kvr_attend(c, 0, q, out, 2), KVR_EINVAL, "flags = 0x2");
    EXPECT_FAIL(s, c, kvr_attend(c, 0, q, out, 0x80000001u), KVR_EINVAL, "flags");
    EXPECT_FAIL(s, c, kvr_attend(c, 1, q, out, 0), KVR_ESTATE, "layer 1 is empty");
    q[H * G * D - 1] = NAN;
    EXPECT_FAIL(s, c, kvr_attend(c, 0, q, out, 0), KVR_ENONFINITE, "q[15]");
    q[H * G * D - 1] = 0.3f;
    quiet_end();
    TU_OK(memcmp(out, sentinel, sizeof out) == 0);   /* out untouched on failure */
    TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
    tu_snap_free(s);
    kvr_cache_free(c);
}
END_TEST

START_TEST(test_query_errors)
{
    kvr_cache *c = make_cache();
    tu_snap *s = tu_snap_take(c);
    float k[D], v[D], score;
    kvr_part part;
    size_t held;
    quiet_begin();
    EXPECT_FAIL(s, c, kvr_reconstruct(NULL, 0, 0, 0, k, v), KVR_EINVAL, "cache is NULL");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 2, 0, 0, k, v), KVR_EINVAL, "layer = 2");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, 2, 0, k, v), KVR_EINVAL, "kv_head = 2");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, -1, 0, k, v), KVR_EINVAL, "kv_head = -1");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, 0, -1, k, v), KVR_EINVAL, "pos = -1");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, 0, N0, k, v), KVR_EINVAL, "pos = 20");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 1, 0, 0, k, v), KVR_EINVAL, "pos = 0");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, 0, 0, NULL, v), KVR_EINVAL, "k is NULL");
    EXPECT_FAIL(s, c, kvr_reconstruct(c, 0, 0, 0, k, NULL), KVR_EINVAL, "v is NULL");
    EXPECT_FAIL(s, c, kvr_part_of(c, 0, 0, 0, NULL), KVR_EINVAL, "part is NULL");
    EXPECT_FAIL(s, c, kvr_part_of(c, 0, 0, 99, &part), KVR_EINVAL, "pos = 99");
    EXPECT_FAIL(s, c, kvr_score_of(c, 0, 0, 0, NULL), KVR_EINVAL, "score is NULL");
    EXPECT_FAIL(s, c, kvr_score_of(c, 0, 0, 0, &score), KVR_ESTATE, "position 0");   /* a sink */
    EXPECT_FAIL(s, c, kvr_bytes(NULL, &held, NULL), KVR_EINVAL, "cache is NULL");
    EXPECT_FAIL(s, c, kvr_cache_dims(NULL, NULL, NULL, NULL, NULL), KVR_EINVAL, "cache is NULL");
    quiet_end();
    TU_EQ(kvr_length(c, 7), -1);
    TU_EQ(kvr_length(NULL, 0), -1);
    ck_assert_ptr_null(kvr_cache_config(NULL));
    ck_assert_ptr_nonnull(kvr_cache_config(c));
    TU_ASSERT_UNCHANGED(s, c);
    tu_snap_free(s);
    kvr_cache_free(c);
}
END_TEST

/* kvr_cache_create: every invalid argument and configuration field; *out
 * is NULL afterwards and nothing leaks (ASan in CI). */
START_TEST(test_create_errors)
{
    static kvr_cache *const poison = (kvr_cache *)&handler_calls;
    kvr_config good = base_config(), cfg;
    kvr_cache *c;
    quiet_begin();
#define BAD(field, value, code, needle) do { \
        cfg = good; cfg.field = value; c = poison; \
        EXPECT_FAIL((tu_snap *)NULL, c, kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), code, needle); \
        ck_assert_ptr_null(c); \
    } while (0)
    BAD(sinks, -1, KVR_EINVAL, "config.sinks = -1");
    BAD(window, 0, KVR_EINVAL, "config.window = 0");
    BAD(candidates, -2, KVR_EINVAL, "config.candidates = -2");
    BAD(depth, -1, KVR_EINVAL, "config.depth = -1");
    BAD(depth, 65, KVR_EINVAL, "config.depth = 65");
    BAD(width, -1, KVR_EINVAL, "config.width = -1");
    BAD(rows, (kvr_rows)2, KVR_EINVAL, "config.rows = 2");
    BAD(centre, 2, KVR_EINVAL, "config.centre = 2");
    BAD(shrink, -1, KVR_EINVAL, "config.shrink = -1");
    BAD(importance, (kvr_importance)4, KVR_EINVAL, "config.importance = 4");
    BAD(importance, KVR_IMP_NONE, KVR_EINVAL, "config.candidates = 3");
    BAD(obs_window, 0, KVR_EINVAL, "config.obs_window = 0");
    BAD(pool_kernel, 4, KVR_EINVAL, "config.pool_kernel = 4");
    BAD(pool_kernel, 0, KVR_EINVAL, "config.pool_kernel = 0");
    BAD(pool, (kvr_pool)2, KVR_EINVAL, "config.pool = 2");
    BAD(elem, (kvr_elem)3, KVR_EINVAL, "config.elem = 3");
    BAD(window, INT32_MAX, KVR_EINVAL, "exceeds 2^31-1");
#undef BAD
    cfg = good;
#define BADARGS(code, needle, ...) do { \
        c = poison; \
        EXPECT_FAIL((tu_snap *)NULL, c, kvr_cache_create(__VA_ARGS__), code, needle); \
        ck_assert_ptr_null(c); \
    } while (0)
    BADARGS(KVR_EINVAL, "n_layers = 0", &c, 0, 1, 1, D, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "n_layers = 4097", &c, 4097, 1, 1, D, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "n_kv_heads = 0", &c, 1, 0, 1, D, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "n_q_heads = 3", &c, 1, 2, 3, D, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "n_q_heads = 1", &c, 1, 2, 1, D, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "head_dim = 0", &c, 1, 1, 1, 0, &cfg, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "config is NULL", &c, 1, 1, 1, D, NULL, KVR_BACKEND_REF);
    BADARGS(KVR_EINVAL, "backend = 7", &c, 1, 1, 1, D, &cfg, (kvr_backend)7);
    if (!kvr_backend_available(KVR_BACKEND_CUDA))
        BADARGS(KVR_EBACKEND, "cuda", &c, 1, 1, 1, D, &cfg, KVR_BACKEND_CUDA);
#undef BADARGS
    EXPECT_FAIL((tu_snap *)NULL, c, kvr_cache_create(NULL, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_EINVAL, "out is NULL");
    /* a budget too small for the sinks and the window */
    kvr_config planned = good;
    EXPECT_FAIL((tu_snap *)NULL, c, kvr_method_config("kvreviver", 0.01, 100, D, KVR_F32, &planned),
                KVR_EBUDGET, "sinks");
    TU_OK(memcmp(&planned, &good, sizeof good) == 0);
    quiet_end();
}
END_TEST

/* A freed cache is refused: the library keeps the set of live caches and
 * compares pointer values, so nothing reads the freed memory (ASan and
 * valgrind would report it). */
START_TEST(test_freed_cache)
{
    kvr_cache *c = make_cache();
    kvr_cache_free(c);
    float x[H * D] = {0};
    quiet_begin();
    int calls = handler_calls;
    TU_EQ(kvr_append(c, 0, 1, x, x), KVR_EINVAL);
    TU_EQ(handler_calls, calls + 1);
    kvr_cache_free(c);                      /* a second free does nothing */
    size_t held;
    TU_EQ(kvr_bytes(c, &held, NULL), KVR_EINVAL);
    quiet_end();
}
END_TEST

START_TEST(test_strerror)
{
    for (int code = 0; code >= KVR_EDROPPED; code--) {
        ck_assert_str_ne(kvr_strerror(code), "unknown status");
        for (int other = code - 1; other >= KVR_EDROPPED; other--)
            ck_assert_str_ne(kvr_strerror(code), kvr_strerror(other));
    }
    ck_assert_str_eq(kvr_strerror(-99), "unknown status");
    TU_EQ(kvr_append(NULL, 0, 1, NULL, NULL), KVR_EINVAL);
    TU_OK(strncmp(kvr_last_error(), kvr_strerror(KVR_EINVAL), strlen(kvr_strerror(KVR_EINVAL))) == 0);
}
END_TEST

/* ---- allocation failure (spec §12.3) ----------------------------------- */

START_TEST(test_enomem_create)
{
    kvr_config cfg = base_config();
    int k;
    for (k = 1; k < 1000; k++) {
        kvr_cache *c = (kvr_cache *)&handler_calls;
        kvr_alloc_fail_at(k);
        int status = kvr_cache_create(&c, L, H, H * G, D, &cfg, KVR_BACKEND_REF);
        kvr_alloc_fail_at(0);
        if (status == KVR_OK) {
            kvr_cache_free(c);
            break;
        }
        TU_EQ(status, KVR_ENOMEM);
        ck_assert_ptr_null(c);
    }
    /* 2 (cache, head table) + 4 heads x 12 arrays (+ the head struct) */
    TU_CHECK(k > 2 + L * H, "kvr_cache_create succeeded after only %d allocations", k - 1);
}
END_TEST

/* Run `call` with the k-th allocation failing, k = 1, 2, ...: every failure
 * is KVR_ENOMEM and changes nothing; the first success gives the same state
 * (and output) as a twin cache that ran the call with no failure. */
typedef int (*call_fn)(kvr_cache *c, float *out);

static float blk_k[5 * H * D], blk_v[5 * H * D], blk_q[5 * H * G * D];

static int do_append(kvr_cache *c, float *out) { (void)out; return kvr_append(c, 0, 5, blk_k, blk_v); }
static int do_prefill(kvr_cache *c, float *out) { (void)out; return kvr_prefill(c, 1, 5, blk_k, blk_v, 3, blk_q); }
static int do_attend(kvr_cache *c, float *out) { return kvr_attend(c, 0, blk_q, out, 0); }

static void enomem_loop(call_fn call, int min_allocs)
{
    tu_rng r;
    tu_seed(&r, 3);
    tu_fill(&r, blk_k, sizeof blk_k / sizeof(float), 0, 1);
    tu_fill(&r, blk_v, sizeof blk_v / sizeof(float), 0, 1);
    tu_fill(&r, blk_q, sizeof blk_q / sizeof(float), 0, 1);
    kvr_cache *twin = make_cache(), *c = make_cache();
    float want[H * G * D], got[H * G * D];
    TU_EQ(call(twin, want), KVR_OK);
    tu_snap *s = tu_snap_take(c);
    int k;
    for (k = 1; k < 1000; k++) {
        for (int i = 0; i < H * G * D; i++) got[i] = -7.0f;
        kvr_alloc_fail_at(k);
        int status = call(c, got);
        kvr_alloc_fail_at(0);
        if (status == KVR_OK)
            break;
        TU_EQ(status, KVR_ENOMEM);
        TU_ASSERT_UNCHANGED(s, c);
    }
    TU_CHECK(k > min_allocs, "succeeded after %d allocations, expected at least %d", k - 1, min_allocs);
    char why[256] = "";
    TU_CHECK(tu_cache_same(twin, c, why, sizeof why), "after the failures: %s", why);
    if (call == do_attend)
        TU_OK(memcmp(want, got, sizeof got) == 0);
    /* usable afterwards */
    TU_EQ(do_attend(c, got), KVR_OK);
    TU_EQ(kvr_append(c, 0, 5, blk_k, blk_v), KVR_OK);
    tu_assert_heads_ok(c);
    tu_snap_free(s);
    kvr_cache_free(c);
    kvr_cache_free(twin);
}

START_TEST(test_enomem_append) { enomem_loop(do_append, 2); }
END_TEST
/* prefill: 5 buffers, then per head the workspace and the scores (2 + 3):
 * a failure in the second head must undo the first. */
START_TEST(test_enomem_prefill) { enomem_loop(do_prefill, 5 + 2 * 5); }
END_TEST

/* attend: make_cache reserved the workspace for N0 positions; a fresh
 * cache with a longer layer needs a larger one (5 buffers). */
static int do_attend_grow(kvr_cache *c, float *out)
{
    return kvr_attend(c, 0, blk_q, out, 0);
}

START_TEST(test_enomem_attend)
{
    tu_rng r;
    tu_seed(&r, 4);
    tu_fill(&r, blk_q, sizeof blk_q / sizeof(float), 0, 1);
    tu_fill(&r, blk_k, sizeof blk_k / sizeof(float), 0, 1);
    kvr_cache *twin = make_cache(), *c = make_cache();
    TU_EQ(kvr_append(twin, 0, 5, blk_k, blk_k), KVR_OK);   /* 25 > N0 positions */
    TU_EQ(kvr_append(c, 0, 5, blk_k, blk_k), KVR_OK);
    float want[H * G * D], got[H * G * D];
    TU_EQ(do_attend_grow(twin, want), KVR_OK);
    tu_snap *s = tu_snap_take(c);
    int k;
    for (k = 1; k < 100; k++) {
        for (int i = 0; i < H * G * D; i++) got[i] = -7.0f;
        kvr_alloc_fail_at(k);
        int status = do_attend_grow(c, got);
        kvr_alloc_fail_at(0);
        if (status == KVR_OK)
            break;
        TU_EQ(status, KVR_ENOMEM);
        TU_ASSERT_UNCHANGED(s, c);
        for (int i = 0; i < H * G * D; i++) TU_OK(got[i] == -7.0f);
    }
    ck_assert_int_gt(k, 5);
    TU_OK(memcmp(want, got, sizeof got) == 0);
    char why[256] = "";
    TU_CHECK(tu_cache_same(twin, c, why, sizeof why), "%s", why);
    tu_snap_free(s);
    kvr_cache_free(c);
    kvr_cache_free(twin);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("api");
    TCase *tc = tu_tcase(s, "bad arguments");
    tcase_add_test(tc, test_append_errors);
    tcase_add_test(tc, test_prefill_errors);
    tcase_add_test(tc, test_attend_errors);
    tcase_add_test(tc, test_query_errors);
    tcase_add_test(tc, test_create_errors);
    tcase_add_test(tc, test_freed_cache);
    tcase_add_test(tc, test_strerror);
    tc = tu_tcase(s, "allocation failure");
    tcase_add_test(tc, test_enomem_create);
    tcase_add_test(tc, test_enomem_append);
    tcase_add_test(tc, test_enomem_prefill);
    tcase_add_test(tc, test_enomem_attend);
    return tu_run(s);
}
