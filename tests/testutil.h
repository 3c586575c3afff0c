/* testutil.h: helpers shared by the Check suites of tests/ (not installed).
 *
 * A deterministic random generator (the suites never depend on the clock),
 * the rounding constant gamma_n of the error bounds, configuration builders,
 * checks of the lifecycle invariants, and a deep snapshot of a model cache so
 * that a test can assert that a failed call changed nothing (spec §12.2). */
#ifndef KVR_TESTUTIL_H
#define KVR_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include "internal.h"
#include "ref.h"

/* ---- assertions ------------------------------------------------------------ */
/* Check's ck_assert* record a "mark point" (a write to the runner's channel)
 * on every success, which costs microseconds; the suites assert millions of
 * times, so they use these, which only call Check on failure.  The failure
 * message names the expression and its values, as Check's do. */
#define TU_CHECK(expr, ...) do { if (!(expr)) ck_abort_msg(__VA_ARGS__); } while (0)
#define TU_OK(expr) TU_CHECK(expr, "Assertion '%s' failed", #expr)
#define TU_EQ(a, b) do { \
        long long tu_a_ = (long long)(a), tu_b_ = (long long)(b); \
        TU_CHECK(tu_a_ == tu_b_, "Assertion '%s == %s' failed: %lld != %lld", #a, #b, tu_a_, tu_b_); \
    } while (0)

/* ---- comparing against a reference within a tolerance ----------------------
 * After llm.c's validate_result and GSL's gsl_test_rel: scan every value,
 * count the misses (|got - ref| > tol, or NaN), keep the worst share of the
 * tolerance |got - ref| / tol and where it was, print one line, then assert
 * once.  A tally may span several arrays or cases; `mark` is the caller's
 * label for the values being added (a case or head number), recorded with
 * the worst. */
typedef struct {
    long n, misses;     /* values compared, values outside their tolerance */
    double worst;       /* largest |got - ref| / tol (Inf for a miss at tol 0 or NaN); 0 when none */
    long worst_at;      /* index (0 .. n-1) of the worst value (when n > 0) */
    long mark, worst_mark;
    double got, ref, tol; /* the worst value, its reference and tolerance */
} tu_tally;
#define TU_TALLY_INIT {0, 0, 0.0, 0, 0, 0, 0.0, 0.0, 0.0}   /* or any zeroed tally */
/* Add one value; returns 1 when it is within tol. */
int tu_tally_add(tu_tally *t, double got, double ref, double tol);
/* Add n values: got ([n]) against ref ([n]) within tol ([n]). */
void tu_tally_floats(tu_tally *t, size_t n, const float *got, const double *ref, const double *tol);
/* Fold b into a (a's indices come first). */
void tu_tally_merge(tu_tally *a, const tu_tally *b);
/* Print "what: n=..., misses=..., worst share of tolerance=...% at i=...
 * (mark ...): got ..., ref ..., tol ...". */
void tu_tally_print(const char *what, const tu_tally *t);
/* Assert that the tally has no miss (one ck_abort naming the worst);
 * verbose: print the line first, else only when it fails. */
void tu_tally_check(const char *what, const tu_tally *t, int verbose);
/* Compare n values in one call: tally, print, assert; returns the misses
 * (0, or the assertion has failed). */
long tu_compare(const char *what, const float *got, const double *ref, const double *tol, size_t n);

/* ---- deterministic random numbers (SplitMix64 stream) ---------------- */
typedef struct { uint64_t state; } tu_rng;
void tu_seed(tu_rng *r, uint64_t seed);
uint64_t tu_next(tu_rng *r);
double tu_unif(tu_rng *r);                  /* [0, 1) */
int tu_int(tu_rng *r, int lo, int hi);      /* [lo, hi] */
double tu_gauss(tu_rng *r);                 /* standard normal (Box-Muller) */
/* x[0..n-1] = mean + sd * N(0,1), rounded to float32 */
void tu_fill(tu_rng *r, float *x /*[n]*/, size_t n, double mean, double sd);

/* ---- rounding ----------------------------------------------------------- */
/* u = 2^-24, the unit roundoff of float32, and gamma_n = n u / (1 - n u):
 * a float32 sum of n+1 terms (n additions) is within gamma_n * sum |x_i| of
 * the exact sum (Higham, Accuracy and Stability, Lemma 3.1 / eq. 3.5). */
#define TU_U (1.0 / 16777216.0)
double tu_gamma(long n);

/* ---- configurations ------------------------------------------------------ */
/* kvr_config_paper() with the given partition, sketch and importance. */
kvr_config tu_config(int sinks, int window, int candidates, int depth, int width,
                     kvr_importance importance);

/* ---- invariants ----------------------------------------------------------- */
/* The walk over positions gives ref_part_of's parts and ref_exact_kv's
 * bytes at every position of h (ck_assert). */
void tu_assert_walk(const ref_head *h);
/* ref_head_check() holds for every head of every layer, and the walk
 * agrees with ref_part_of there (ck_assert). */
void tu_assert_heads_ok(const kvr_cache *c);
/* Every position of `layer` is in exactly one part, counted independently of
 * ref_part_of() from the sink range, the window range and the candidate list;
 * the rest number n_vague; kvr_part_of() agrees for every position. */
void tu_assert_parts(const kvr_cache *c, int layer);

/* Sum of the sizes of the state arrays of a head (spec §9.1: scratch is
 * workspace, not state). */
size_t tu_head_state_bytes(const ref_head *h);

/* ---- deep snapshots -------------------------------------------------------- */
typedef struct tu_snap tu_snap;
/* Copy every byte of state of every head of c (the ref_head structs and all
 * their arrays) and the cache's own fields.  NULL on allocation failure. */
tu_snap *tu_snap_take(const kvr_cache *c);
/* 1 when c holds exactly the snapshot's bytes; otherwise 0 and `why` says
 * which head, field or array differs. */
int tu_snap_same(const tu_snap *s, const kvr_cache *c, char *why, size_t len);
/* The same comparison between two caches of the same shape. */
int tu_cache_same(const kvr_cache *a, const kvr_cache *b, char *why, size_t len);
void tu_snap_free(tu_snap *s);
#define TU_ASSERT_UNCHANGED(snap, cache) do { \
        char why_[256] = ""; \
        TU_CHECK(tu_snap_same((snap), (cache), why_, sizeof why_), "cache changed: %s", why_); \
    } while (0)

/* ---- running a suite ----------------------------------------------------- */
/* A test case with a timeout generous enough for sanitizer builds. */
TCase *tu_tcase(Suite *s, const char *name);
/* Run the suite (CK_NORMAL), print Check's summary, return the exit status. */
int tu_run(Suite *s);



/* ---- attention in float64 ------------------------------------------------- */
/* Softmax attention of one query q ([D]) over the n positions with held[t]
 * (all when held is NULL) of keys k and values v ([n][D]), in float64: out
 * ([D]).  tol ([D]) bounds |float32 result - out| for the float32 evaluation
 * order of ref/attend.c (spec §11.2); the derivation is in testutil.c. */
void tu_attention64(long n, int D, const float *q, const float *k, const float *v,
                    const unsigned char *held, double *out, double *tol);

/* out ([n_q_heads][D]), the result of kvr_attend(c, layer, q, ...), is
 * within tu_attention64's tolerance of float64 attention over the keys and
 * values kvr_reconstruct gives (dropped positions absent).  Returns the
 * number of held positions of head 0. */
long tu_assert_attention(const kvr_cache *c, int layer, const float *q, const float *out);
#endif
