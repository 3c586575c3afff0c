/* testutil.c: helpers shared by the Check suites (see testutil.h). */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

/* ---- random numbers ------------------------------------------------------ */

void tu_seed(tu_rng *r, uint64_t seed)
{
    r->state = seed;
}

/* SplitMix64 step (a different use of the same well-known generator as the
 * library's hash; the suites never rely on the two agreeing). */
uint64_t tu_next(tu_rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

double tu_unif(tu_rng *r)
{
    return (double)(tu_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

int tu_int(tu_rng *r, int lo, int hi)
{
    return lo + (int)(tu_next(r) % (uint64_t)(hi - lo + 1));
}

double tu_gauss(tu_rng *r)
{
    double u1 = 1.0 - tu_unif(r), u2 = tu_unif(r);   /* u1 in (0, 1] */
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void tu_fill(tu_rng *r, float *x, size_t n, double mean, double sd)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(mean + sd * tu_gauss(r));
}

double tu_gamma(long n)
{
    return (double)n * TU_U / (1.0 - (double)n * TU_U);
}

kvr_config tu_config(int sinks, int window, int candidates, int depth, int width,
                     kvr_importance importance)
{
    kvr_config cfg;
    kvr_config_paper(&cfg);
    cfg.sinks = sinks;
    cfg.window = window;
    cfg.candidates = candidates;
    cfg.depth = depth;
    cfg.width = width;
    cfg.importance = importance;
    return cfg;
}

/* ---- invariants ------------------------------------------------------------ */

void tu_assert_heads_ok(const kvr_cache *c)
{
    int L, H;
    TU_EQ(kvr_cache_dims(c, &L, &H, NULL, NULL), KVR_OK);
    for (int l = 0; l < L; l++)
        for (int h = 0; h < H; h++) {
            char why[256] = "";
            TU_CHECK(ref_head_check(kvr_cache_head(c, l, h), why, sizeof why) == 0,
                          "layer %d head %d: %s", l, h, why);
            tu_assert_walk(kvr_cache_head(c, l, h));
        }
}

/* The walk (ref_walk_part, ref_walk_exact_kv) gives, position by position
 * in order, the part ref_part_of gives and the bytes ref_exact_kv gives. */
void tu_assert_walk(const ref_head *h)
{
    int D = h->head_dim;
    float *k = malloc(4 * (size_t)D * sizeof(float));
    ck_assert_ptr_nonnull(k);
    float *v = k + D, *k2 = v + D, *v2 = k2 + D;
    ref_walk wk = {0, 0};
    for (long p = 0; p < h->n; p++) {
        kvr_part part = ref_walk_part(h, &wk, p);
        TU_CHECK(part == ref_part_of(h, p), "walk: position %ld part %d, ref_part_of %d", p, (int)part,
                 (int)ref_part_of(h, p));
        int a = ref_walk_exact_kv(h, &wk, p, part, k, v), b = ref_exact_kv(h, p, k2, v2);
        TU_EQ(a, b);
        if (a)
            TU_CHECK(memcmp(k, k2, (size_t)D * sizeof(float)) == 0 && memcmp(v, v2, (size_t)D * sizeof(float)) == 0,
                     "walk: position %ld: key or value differs from ref_exact_kv", p);
    }
    free(k);
}

void tu_assert_parts(const kvr_cache *c, int layer)
{
    int H;
    TU_EQ(kvr_cache_dims(c, NULL, &H, NULL, NULL), KVR_OK);
    for (int kh = 0; kh < H; kh++) {
        const ref_head *h = kvr_cache_head(c, layer, kh);
        long n = h->n, S = h->cfg.sinks, R = h->cfg.window;
        long first_win = n - R > S ? n - R : S;
        long rest = 0;
        for (long p = 0; p < n; p++) {
            int in_sink = p < S;
            int in_win = p >= first_win;
            int in_cand = 0;
            for (int j = 0; j < h->n_cand; j++)
                in_cand += h->cand_pos[j] == p;
            int in_tier = 0;                       /* the quantized tier, spec §19 */
            for (int j = 0; j < h->n_tier; j++)
                in_tier += h->tier_pos[j] == p;
            int parts = in_sink + in_win + in_cand + in_tier;
            TU_CHECK(parts <= 1, "head %d position %ld is in %d exact or tier parts", kh, p, parts);
            kvr_part want = in_sink ? KVR_PART_SINK : in_win ? KVR_PART_RECENT
                          : in_cand ? KVR_PART_CANDIDATE
                          : in_tier ? KVR_PART_QUANTIZED
                          : h->cfg.kivi_bits > 0 ? KVR_PART_QUANTIZED   /* KIVI's body, spec §18.6 */
                          : ref_has_sketch(h) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
            rest += parts == 0 && h->cfg.kivi_bits == 0;
            kvr_part got;
            TU_EQ(kvr_part_of(c, layer, kh, p, &got), KVR_OK);
            TU_CHECK(got == want, "head %d position %ld: part %s, expected %s", kh, p,
                          kvr_part_name(got), kvr_part_name(want));
        }
        TU_CHECK(rest == h->n_vague, "head %d: %ld positions outside the exact parts, n_vague = %ld",
                      kh, rest, h->n_vague);
    }
}

/* ---- the arrays of a head ---------------------------------------------------- */

#define N_ARRAYS REF_HEAD_N_ARRAYS

/* The state arrays of h (the table of ref_head_arrays) and their sizes in
 * bytes (0 when absent). */
static void head_arrays(const ref_head *h, ref_array a[N_ARRAYS], const void *ptr[N_ARRAYS],
                        size_t size[N_ARRAYS])
{
    ref_head_arrays(&h->cfg, h->head_dim, a);
    for (int i = 0; i < N_ARRAYS; i++) {
        ptr[i] = ref_array_data(h, &a[i]);
        size[i] = ptr[i] ? a[i].count * a[i].elem_size : 0;
    }
}

size_t tu_head_state_bytes(const ref_head *h)
{
    ref_array a[N_ARRAYS];
    const void *p[N_ARRAYS];
    size_t z[N_ARRAYS], sum = 0;
    head_arrays(h, a, p, z);
    for (int i = 0; i < N_ARRAYS; i++)
        sum += z[i];
    return sum;
}

/* ---- snapshots --------------------------------------------------------------- */

typedef struct {
    ref_head copy;               /* the struct itself, pointers included */
    void *data[N_ARRAYS];        /* copies of its arrays */
    size_t size[N_ARRAYS];
} head_snap;

struct tu_snap {
    struct kvr_cache cache;      /* the cache's own fields */
    int n_heads;
    head_snap *heads;            /* [n_layers * n_kv_heads] */
};

void tu_snap_free(tu_snap *s)
{
    if (!s)
        return;
    for (int i = 0; s->heads && i < s->n_heads; i++)
        for (int a = 0; a < N_ARRAYS; a++)
            free(s->heads[i].data[a]);
    free(s->heads);
    free(s);
}

tu_snap *tu_snap_take(const kvr_cache *c)
{
    tu_snap *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->cache = *c;
    s->n_heads = c->n_layers * c->n_kv_heads;
    s->heads = calloc((size_t)s->n_heads, sizeof *s->heads);
    if (!s->heads) {
        free(s);
        return NULL;
    }
    for (int i = 0; i < s->n_heads; i++) {
        const ref_head *h = c->heads[i];
        ref_array t[N_ARRAYS];
        const void *p[N_ARRAYS];
        head_arrays(h, t, p, s->heads[i].size);
        memcpy(&s->heads[i].copy, h, sizeof *h);
        for (int a = 0; a < N_ARRAYS; a++) {
            s->heads[i].data[a] = malloc(s->heads[i].size[a] + 1);
            if (!s->heads[i].data[a]) {
                tu_snap_free(s);
                return NULL;
            }
            if (p[a])
                memcpy(s->heads[i].data[a], p[a], s->heads[i].size[a]);
        }
    }
    return s;
}

/* Compare the cache fields that are state (not the attention workspace). */
static int same_cache_fields(const struct kvr_cache *a, const struct kvr_cache *b, char *why, size_t len)
{
    if (a->n_layers != b->n_layers || a->n_kv_heads != b->n_kv_heads
        || a->n_q_heads != b->n_q_heads || a->head_dim != b->head_dim || a->group != b->group
        || a->backend != b->backend || memcmp(&a->cfg, &b->cfg, sizeof a->cfg) != 0) {
        snprintf(why, len, "the cache's own fields differ");
        return 0;
    }
    return 1;
}

/* Compare head h against a snapshot; `with_pointers`: also the array addresses. */
static int same_head(const head_snap *hs, const ref_head *h, int with_pointers, int index,
                     char *why, size_t len)
{
    ref_head a = hs->copy, b = *h;
    ref_array t[N_ARRAYS];
    const void *p[N_ARRAYS];
    size_t z[N_ARRAYS];
    head_arrays(h, t, p, z);
    if (!with_pointers) {
        /* compare the scalar fields only: blank the pointers of both copies
         * (a and b have the same configuration, or the memcmp fails anyway) */
        for (int i = 0; i < N_ARRAYS; i++)
            *ref_array_slot(&a, &t[i]) = *ref_array_slot(&b, &t[i]) = NULL;
        a.scratch = b.scratch = NULL;
        a.tier_marks = b.tier_marks = NULL;       /* promotion's workspace, not state (spec §19.5) */
    }
    if (memcmp(&a, &b, sizeof a) != 0) {
        snprintf(why, len, "head %d: fields differ (n %ld vs %ld, n_cand %d vs %d, n_vague %ld vs %ld)",
                 index, a.n, b.n, a.n_cand, b.n_cand, a.n_vague, b.n_vague);
        return 0;
    }
    for (int i = 0; i < N_ARRAYS; i++) {
        if (z[i] != hs->size[i] || (z[i] && memcmp(p[i], hs->data[i], z[i]) != 0)) {
            snprintf(why, len, "head %d: array %s differs", index, t[i].name);
            return 0;
        }
    }
    return 1;
}

int tu_snap_same(const tu_snap *s, const kvr_cache *c, char *why, size_t len)
{
    if (!same_cache_fields(&s->cache, c, why, len))
        return 0;
    if (s->cache.heads != c->heads) {
        snprintf(why, len, "the head table moved");
        return 0;
    }
    for (int i = 0; i < s->n_heads; i++)
        if (!same_head(&s->heads[i], c->heads[i], 1, i, why, len))
            return 0;
    return 1;
}

int tu_cache_same(const kvr_cache *a, const kvr_cache *b, char *why, size_t len)
{
    tu_snap *s = tu_snap_take(a);
    ck_assert_ptr_nonnull(s);
    int same = same_cache_fields(&s->cache, b, why, len);
    for (int i = 0; same && i < s->n_heads; i++)
        same = same_head(&s->heads[i], b->heads[i], 0, i, why, len);
    tu_snap_free(s);
    return same;
}

/* ---- comparing within a tolerance -------------------------------------------- */

int tu_tally_add(tu_tally *t, double got, double ref, double tol)
{
    double diff = fabs(got - ref);
    int ok = diff <= tol;                    /* fails on NaN, in diff or tol */
    double share = tol > 0.0 ? diff / tol : (diff > 0.0 ? INFINITY : 0.0);
    if (isnan(share) || (!ok && !(share > 1.0)))
        share = INFINITY;                    /* a miss always outranks a pass */
    if (t->n == 0 || share > t->worst) {
        t->worst = share;
        t->worst_at = t->n;
        t->worst_mark = t->mark;
        t->got = got;
        t->ref = ref;
        t->tol = tol;
    }
    t->misses += !ok;
    t->n++;
    return ok;
}

void tu_tally_floats(tu_tally *t, size_t n, const float *got, const double *ref, const double *tol)
{
    for (size_t i = 0; i < n; i++)
        tu_tally_add(t, (double)got[i], ref[i], tol[i]);
}

void tu_tally_merge(tu_tally *a, const tu_tally *b)
{
    if (b->n > 0 && (a->n == 0 || b->worst > a->worst)) {
        a->worst = b->worst;
        a->worst_at = a->n + b->worst_at;
        a->worst_mark = b->worst_mark;
        a->got = b->got;
        a->ref = b->ref;
        a->tol = b->tol;
    }
    a->n += b->n;
    a->misses += b->misses;
}

static void tally_line(char *buf, size_t len, const char *what, const tu_tally *t)
{
    if (t->n == 0)
        snprintf(buf, len, "%s: n=0", what);
    else
        snprintf(buf, len, "%s: n=%ld, misses=%ld, worst share of tolerance=%.3g%% at i=%ld (mark %ld): "
                 "got %.9g, ref %.9g, tol %.3g", what, t->n, t->misses, 100.0 * t->worst, t->worst_at,
                 t->worst_mark, t->got, t->ref, t->tol);
}

void tu_tally_print(const char *what, const tu_tally *t)
{
    char line[512];
    tally_line(line, sizeof line, what, t);
    printf("%s\n", line);
}

void tu_tally_check(const char *what, const tu_tally *t, int verbose)
{
    if (verbose || t->misses > 0)
        tu_tally_print(what, t);
    if (t->misses > 0) {
        char line[512];
        tally_line(line, sizeof line, what, t);
        ck_abort_msg("%s", line);
    }
}

long tu_compare(const char *what, const float *got, const double *ref, const double *tol, size_t n)
{
    tu_tally t = TU_TALLY_INIT;
    tu_tally_floats(&t, n, got, ref, tol);
    tu_tally_check(what, &t, 1);
    return t.misses;
}

/* ---- running ---------------------------------------------------------------- */

TCase *tu_tcase(Suite *s, const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);   /* sanitizer builds are 2-3x slower; the budget is ~5 s */
    suite_add_tcase(s, tc);
    return tc;
}

int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* ---- attention in float64 ------------------------------------------------------
 *
 * Tolerance of the float32 evaluation (ref/attend.c), with u = 2^-24 and
 * A_t = sum_i |q_i k_ti|:
 *  1. logit: the dot product (D-1 additions, D products) is within
 *     gamma_D A_t of the exact one; scale = 1/sqrtf(D) is within gamma_2 of
 *     1/sqrt(D); one more rounding for the product: |l^_t - l_t| <=
 *     gamma_{D+3} A_t / sqrt(D) =: lambda_t.
 *  2. exponent: fl(l^_t - max) adds u |l^_t - max|; the max itself is
 *     shifted, but a shift common to every t cancels in the normalisation.
 *     So each p_t is exp(l_t - m + theta_t) * c * (1 + eta_t) with a common c,
 *     |theta_t| <= eps_t = lambda_t + u (|l_t - m| + 2 max lambda), and
 *     |eta_t| <= 2u (expf is within 1 ulp, we allow 2u).
 *     With rho = exp(max eps)(1 + 2u) - 1, every computed weight is within
 *     the factor [(1-rho)/(1+rho), (1+rho)/(1-rho)] of the exact weight w_t,
 *     so the weighted values move by at most 2rho/(1-rho) sum_t w_t |v_ti|.
 *  3. sums: sum p_t (positive terms) and sum p_t v_ti (one product and one
 *     addition per term) are within gamma_{n+1} of exact relative to
 *     sum p_t |v_ti|, and the division adds u: gamma_{2n+4} covers them.
 *  4. the float64 reference itself: its relative error is below
 *     (2n + D + 10) 2^-53, negligible but added.
 * tol_i = (2rho/(1-rho) + gamma_{2n+4} (1 + 2rho/(1-rho)) + 1e-12) sum_t w_t |v_ti|. */
void tu_attention64(long n, int D, const float *q, const float *k, const float *v,
                    const unsigned char *held, double *out, double *tol)
{
    double *l = malloc((size_t)n * sizeof *l), *a = malloc((size_t)n * sizeof *a);
    TU_OK(l && a);
    double m = -INFINITY, max_lambda = 0.0, scale = 1.0 / sqrt((double)D);
    for (long t = 0; t < n; t++) {
        if (held && !held[t]) continue;
        double dot = 0.0, abs = 0.0;
        for (int i = 0; i < D; i++) {
            dot += (double)q[i] * (double)k[(size_t)t * D + i];
            abs += fabs((double)q[i] * (double)k[(size_t)t * D + i]);
        }
        l[t] = dot * scale;
        a[t] = tu_gamma(D + 3) * abs * scale;        /* lambda_t */
        if (l[t] > m) m = l[t];
        if (a[t] > max_lambda) max_lambda = a[t];
    }
    double sum = 0.0, max_eps = 0.0;
    for (long t = 0; t < n; t++) {
        if (held && !held[t]) continue;
        double eps = a[t] + TU_U * (fabs(l[t] - m) + 2.0 * max_lambda);
        if (eps > max_eps) max_eps = eps;
        l[t] = exp(l[t] - m);
        sum += l[t];
    }
    double rho = exp(max_eps) * (1.0 + 2.0 * TU_U) - 1.0;
    double move = 2.0 * rho / (1.0 - rho);
    double rel = move + tu_gamma(2 * n + 4) * (1.0 + move) + 1e-12;
    for (int i = 0; i < D; i++) {
        double acc = 0.0, mag = 0.0;
        for (long t = 0; t < n; t++) {
            if (held && !held[t]) continue;
            acc += l[t] / sum * (double)v[(size_t)t * D + i];
            mag += l[t] / sum * fabs((double)v[(size_t)t * D + i]);
        }
        out[i] = acc;
        tol[i] = rel * mag;
    }
    free(l);
    free(a);
}

long tu_assert_attention(const kvr_cache *c, int layer, const float *q, const float *out)
{
    int H, Q, D;
    TU_EQ(kvr_cache_dims(c, NULL, &H, &Q, &D), KVR_OK);
    long n = kvr_length(c, layer), held0 = 0;
    int G = Q / H;
    float *k = malloc((size_t)(n + 1) * D * sizeof *k), *v = malloc((size_t)(n + 1) * D * sizeof *v);
    unsigned char *held = malloc((size_t)n + 1);
    double *o = malloc((size_t)D * sizeof *o), *tol = malloc((size_t)D * sizeof *tol);
    TU_OK(k && v && held && o && tol);
    tu_tally all = TU_TALLY_INIT;
    for (int h = 0; h < H; h++) {
        for (long t = 0; t < n; t++) {
            int status = kvr_reconstruct(c, layer, h, t, k + (size_t)t * D, v + (size_t)t * D);
            TU_OK(status == KVR_OK || status == KVR_EDROPPED);
            held[t] = status == KVR_OK;
            if (h == 0) held0 += held[t];
        }
        for (int g = 0; g < G; g++) {
            size_t at = ((size_t)h * G + g) * D;
            tu_attention64(n, D, q + at, k, v, held, o, tol);
            all.mark = (long)h * G + g;      /* the query head */
            tu_tally_floats(&all, (size_t)D, out + at, o, tol);
        }
    }
    tu_tally_check("attention vs float64 (mark: query head)", &all, 0);
    free(k); free(v); free(held); free(o); free(tol);
    return held0;
}
