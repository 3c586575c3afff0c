/* cuda.c: the CUDA backend's conformance suite against ref/ (doc/cuda.md).
 * Exits 77 (SKIP) where the CUDA backend is not built or no GPU is present.
 *
 * Random configurations and seeds (sizes not multiples of 32, N = 1,
 * head_dim 64/128/256, GQA groups 1/4/8, every storage type, median and
 * mean rows, with and without a sketch, prefill and decode) run through a
 * reference cache and a CUDA cache side by side:
 *   - the device hash equals kvr_hash bit for bit;
 *   - the device sketch equals the host's bit for bit (same insertions, same
 *     order, no fused multiply-add);
 *   - partitions are equal, or differ only where the reference's scores were
 *     within the score tolerance of a tie (printed, and the case stops
 *     there: the two caches then legitimately hold different tokens);
 *   - reconstructions and attention outputs are within the tolerance below;
 *   - the device's prefill scores are within their tolerance.
 * The comparisons go through tu_tally (tests/testutil.c): each step's
 * misses, the worst share of the tolerance and where it was are printed on
 * failure, and the summary prints the suite's totals.
 *
 * Tolerances (the derivation of tests/sketchattend.c, with gamma_n = n u /
 * (1 - n u), u = 2^-24):
 *   reconstruction: both sides run the same float32 operations; a
 *     difference can only come from a different association, bounded by
 *     2 gamma_{d+4} A_i (A_i: sum of absolute values of the terms, as in
 *     tests/sketchattend.c).  In practice they are bit-identical; the suite
 *     reports how many were.
 *   attention: each logit differs from the exact one by at most
 *     delta_t = gamma_{D+d+10} scale sum_i |q_i| (A^K_i(t) + |k^_ti|) (vague:
 *     the median of the rows can exceed their mean A; exact rows: |k|); with delta = max_t delta_t + u*range + 4u (the device's
 *     expf is within 2 ulp), the output differs by at most
 *         e^{2 delta} (2 (e^{2 delta} - 1) + 2 gamma_K) sum_t pi_t AV_i(t),
 *     AV_i(t) = A^V_i(t) + |v^_ti| (vague) or |v_ti| (exact),
 *     K = 6n + d*w + d + 32: the device's online softmax rescales a running
 *     sum once per token (a product of up to n rounded factors, each within
 *     5u), the reference sums n products and n weights.
 *   importance scores: a probability of the group (a sum of nonnegative
 *     weights) is off by at most that factor relative to itself, so a score
 *     (a sum of probabilities over the steps from the same prefill score,
 *     or the last one for tova) is off by at most F + gamma_{steps+1}
 *     relative, F the largest factor so far; two positions' order may then
 *     differ only when |s_a - s_b| <= (F + gamma) (|s_a| + |s_b|).
 *   prefill scores: per query the softmax weights are within
 *     (e^{2 delta} - 1 + gamma_{2n+2}) of the exact ones (delta from the
 *     dot products, gamma_{D+2} scale sum |q||k|); the float atomics sum the
 *     queries' weights in any order (gamma_{used G}), pooling adds
 *     gamma_{kernel+1}. */
#include <config.h>
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"
#include "internal.h"
#include "../ref/ref.h"
#include "testutil.h"
/* KVR_CUDA_TEST_SELF=1 (CUDA builds): the harness's self-check, on any
 * machine: the "cuda" cache is a second reference cache, the device-only
 * checks are skipped, and every comparison must then hold exactly. */
static int self_check;

#ifdef KVR_HAVE_CUDA
#include "cuda_backend.h"
#include "../cuda/kvr_cuda.h"

#define U32 5.9604644775390625e-08

static double gam(double n) { return n * U32 / (1.0 - n * U32); }

static uint64_t rng;
static double uni(void)
{
    rng = rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}
static int irange(int lo, int hi) { return lo + (int)(uni() * (hi - lo + 1)); }

/* sums of absolute values of the terms of a vague reconstruction, A_i
 * for every coordinate i of position t: out [D] */
static void abs_terms(const ref_head *h, const float *sums, const double *running, long t, double *out)
{
    int d = h->cfg.depth, w = h->cfg.width, D = h->head_dim;
    for (int i = 0; i < D; i++) out[i] = 0.0;
    for (int r = 0; r < d; r++) {
        uint64_t x = kvr_hash(h->cfg.seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)t);
        size_t b = (size_t)r * w + kvr_hash_bucket(x, (uint32_t)w);
        double alpha = h->cfg.shrink ? 1.0 / h->sk_load[b] : 1.0;
        for (int i = 0; i < D; i++)
            out[i] += alpha * (fabs(sums[b * D + i]) + fabs((double)h->sk_count[b]) * fabs((double)ref_vague_mean(h, running, i)));
    }
    for (int i = 0; i < D; i++) {
        double mu = fabs((double)ref_vague_mean(h, running, i));
        out[i] = mu + out[i] / d;
    }
}

typedef struct {
    int cases, steps, near_ties, recon_checked, recon_bitwise, moment_steps;
    tu_tally attn, recon, prefill; /* every comparison of the suite (mark: the case) */
    double widest;        /* largest attention tolerance factor (tolerance / sum pi AV) */
} tally;
static tally T;

/* Attention of one layer of both caches, compared per output coordinate.
 * Returns the per-probability factor of the header comment (for scores). */
static double compare_attend(kvr_cache *ref, kvr_cache *cu, const float *q, int update, const char *what)
{
    int H, QH, D;
    kvr_cache_dims(ref, NULL, &H, &QH, &D);
    int G = QH / H;
    float *o_ref = malloc(sizeof(float) * QH * D), *o_cu = malloc(sizeof(float) * QH * D);
    ck_assert_ptr_nonnull(o_ref); ck_assert_ptr_nonnull(o_cu);
    ck_assert_int_eq(kvr_attend(ref, 0, q, o_ref, update ? 0 : KVR_ATTEND_PEEK), KVR_OK);
    int st = kvr_attend(cu, 0, q, o_cu, update ? 0 : KVR_ATTEND_PEEK);
    ck_assert_msg(st == KVR_OK, "cuda attend: %s", kvr_last_error());
    const ref_head *h0 = kvr_cache_head(ref, 0, 0);
    if (h0->cfg.vague == KVR_VAGUE_MOMENT && ref_has_sketch(h0)) {
        /* the moment route (spec §17) runs on the backend's host heads
         * (doc/cuda.md): the same operations on the same state */
        ck_assert_msg(memcmp(o_ref, o_cu, sizeof(float) * QH * D) == 0,
                      "%s: the moment route on the CUDA backend differs from the reference", what);
        T.moment_steps++;
        free(o_ref); free(o_cu);
        return 0.0;
    }
    double worst_factor = 0.0;
    tu_tally step = TU_TALLY_INIT;        /* mark: the query head */
    for (int h = 0; h < H; h++) {
        const ref_head *hd = kvr_cache_head(ref, 0, h);
        long n = hd->n;
        int d = ref_has_sketch(hd) ? hd->cfg.depth : 0, dw = d * (ref_has_sketch(hd) ? hd->cfg.width : 0);
        double *ak = malloc(sizeof(double) * n * D), *av = malloc(sizeof(double) * n * D);
        float *kk = malloc(sizeof(float) * n * D), *vv = malloc(sizeof(float) * D);
        double *pi = malloc(sizeof(double) * n);
        unsigned char *held = malloc((size_t)n);
        ck_assert(ak && av && kk && vv && pi && held);
        for (long t = 0; t < n; t++) {
            kvr_part part = ref_part_of(hd, t);
            held[t] = part != KVR_PART_DROPPED;
            if (!held[t]) continue;
            int vague = part == KVR_PART_VAGUE;
            if (vague) {   /* A_i, plus |k^_i|: a median row's value can exceed the rows' mean A_i */
                ref_reconstruct(hd, t, kk + t * D, vv);
                abs_terms(hd, hd->sk_k, hd->sum_k, t, ak + t * D);
                abs_terms(hd, hd->sk_v, hd->sum_v, t, av + t * D);
                for (int i = 0; i < D; i++) {
                    ak[t * D + i] += fabs(kk[t * D + i]);
                    av[t * D + i] += fabs(vv[i]);
                }
            } else {
                ref_exact_kv(hd, t, kk + t * D, vv);
                for (int i = 0; i < D; i++) {
                    ak[t * D + i] = fabs(kk[t * D + i]);
                    av[t * D + i] = fabs(vv[i]);
                }
            }
        }
        double scale = 1.0 / sqrt((double)D), K = 6.0 * n + dw + d + 32;
        for (int g = 0; g < G; g++) {
            const float *qg = q + ((size_t)h * G + g) * D;
            double lmax = -INFINITY, lmin = INFINITY, dmax = 0.0, sum = 0.0;
            for (long t = 0; t < n; t++) {
                if (!held[t]) continue;
                double l = 0.0, a = 0.0;
                for (int i = 0; i < D; i++) {
                    l += (double)qg[i] * kk[t * D + i];
                    a += fabs(qg[i]) * ak[t * D + i];
                }
                pi[t] = l * scale;
                double dt = gam(D + d + 10) * scale * a;
                if (dt > dmax) dmax = dt;
                if (pi[t] > lmax) lmax = pi[t];
                if (pi[t] < lmin) lmin = pi[t];
            }
            double delta = dmax + U32 * (lmax - lmin) + 4.0 * U32;
            double factor = exp(2.0 * delta) * (2.0 * expm1(2.0 * delta) + 2.0 * gam(K));
            if (factor > worst_factor) worst_factor = factor;
            if (factor > T.widest) T.widest = factor;
            for (long t = 0; t < n; t++) if (held[t]) { pi[t] = exp(pi[t] - lmax); sum += pi[t]; }
            step.mark = (long)h * G + g;
            for (int i = 0; i < D; i++) {
                double mass = 0.0;
                for (long t = 0; t < n; t++) if (held[t]) mass += pi[t] / sum * av[t * D + i];
                size_t at = ((size_t)h * G + g) * D + i;
                tu_tally_add(&step, (double)o_cu[at], (double)o_ref[at], factor * mass);
            }
        }
        free(ak); free(av); free(kk); free(vv); free(pi); free(held);
    }
    free(o_ref); free(o_cu);
    char line[320];
    snprintf(line, sizeof line, "%s: attention, cuda vs ref (mark: query head; i: head-major coordinate)", what);
    tu_tally_check(line, &step, 0);
    step.worst_mark = T.cases;
    tu_tally_merge(&T.attn, &step);
    return worst_factor;
}

/* Reconstructions of (up to 8) vague positions of each head. */
static void compare_reconstruct(kvr_cache *ref, kvr_cache *cu, const char *what)
{
    int H, D;
    kvr_cache_dims(ref, NULL, &H, NULL, &D);
    float *kr = malloc(sizeof(float) * 4 * D), *vr = kr + D, *kc = kr + 2 * D, *vc = kr + 3 * D;
    double *ak = malloc(sizeof(double) * 2 * D), *av = ak + D;
    ck_assert_ptr_nonnull(kr);
    ck_assert_ptr_nonnull(ak);
    tu_tally all = TU_TALLY_INIT;         /* mark: kv head * 10^6 + position (n < 10^6 here) */
    for (int h = 0; h < H; h++) {
        const ref_head *hd = kvr_cache_head(ref, 0, h);
        int done = 0;
        for (long t = hd->n - 1; t >= 0 && done < 8; t--) {
            if (ref_part_of(hd, t) != KVR_PART_VAGUE) continue;
            done++;
            ck_assert_int_eq(kvr_reconstruct(ref, 0, h, t, kr, vr), KVR_OK);
            int st = kvr_reconstruct(cu, 0, h, t, kc, vc);
            ck_assert_msg(st == KVR_OK, "cuda reconstruct: %s", kvr_last_error());
            int same = !memcmp(kr, kc, sizeof(float) * D) && !memcmp(vr, vc, sizeof(float) * D);
            T.recon_checked++;
            T.recon_bitwise += same;
            abs_terms(hd, hd->sk_k, hd->sum_k, t, ak);
            abs_terms(hd, hd->sk_v, hd->sum_v, t, av);
            all.mark = (long)h * 1000000 + t;
            for (int i = 0; i < 2 * D; i++) {
                int isv = i >= D, c = i % D;
                double a = isv ? vr[c] : kr[c], b = isv ? vc[c] : kc[c];
                tu_tally_add(&all, b, a, 2.0 * gam(hd->cfg.depth + 4) * (isv ? av[c] : ak[c]));
            }
        }
    }
    free(kr);
    free(ak);
    char line[320];
    snprintf(line, sizeof line, "%s: reconstruction, cuda vs ref (mark: kv head * 10^6 + position)", what);
    tu_tally_check(line, &all, 0);
    all.worst_mark = T.cases;
    tu_tally_merge(&T.recon, &all);
}

/* The device sketch of the CUDA cache equals its host sketch bit for bit. */
static void compare_sketch(kvr_cache *cu, const char *what)
{
    int H, D;
    kvr_cache_dims(cu, NULL, &H, NULL, &D);
    for (int h = 0; h < H; h++) {
        const ref_head *hd = kvr_cache_head(cu, 0, h);
        if (!ref_has_sketch(hd)) return;
        size_t dw = (size_t)hd->cfg.depth * hd->cfg.width;
        float *sk = malloc(sizeof(float) * dw * D), *sv = malloc(sizeof(float) * dw * D);
        int32_t *cnt = malloc(sizeof(int32_t) * dw), *load = malloc(sizeof(int32_t) * dw);
        ck_assert(sk && sv && cnt && load);
        ck_assert_int_eq(kvr_cuda_backend_sketch(cu, 0, h, sk, sv, cnt, load), KVR_OK);
        for (size_t b = 0; b < dw; b++) {
            ck_assert_msg(cnt[b] == hd->sk_count[b] && load[b] == hd->sk_load[b],
                          "%s: head %d bucket %zu: device count/load %d/%d, host %d/%d", what, h, b,
                          cnt[b], load[b], hd->sk_count[b], hd->sk_load[b]);
            for (int i = 0; i < D; i++)
                ck_assert_msg(!memcmp(&sk[b * D + i], &hd->sk_k[b * D + i], 4) &&
                              !memcmp(&sv[b * D + i], &hd->sk_v[b * D + i], 4),
                              "%s: head %d bucket %zu coordinate %d: device sums %.9g/%.9g, host %.9g/%.9g",
                              what, h, b, i, (double)sk[b * D + i], (double)sv[b * D + i],
                              (double)hd->sk_k[b * D + i], (double)hd->sk_v[b * D + i]);
        }
        free(sk); free(sv); free(cnt); free(load);
    }
}

/* Scores of every scored position of head h before a step ([n], NaN for none). */
static void snapshot_scores(kvr_cache *c, int h, float *out, long n)
{
    for (long t = 0; t < n; t++)
        if (kvr_score_of(c, 0, h, t, &out[t]) != KVR_OK)
            out[t] = NAN;
}

/* 1 when the partitions agree; on a difference, checks that the reference's
 * scores of the differing positions were within relative tolerance rel of a
 * tie (|s_a - s_b| <= rel (|s_a| + |s_b|)), prints it and returns 0. */
static int compare_parts(kvr_cache *ref, kvr_cache *cu, const float *snap /*[H][cap]*/, long cap, double rel,
                         const char *what)
{
    int H;
    kvr_cache_dims(ref, NULL, &H, NULL, NULL);
    ck_assert_int_eq(kvr_length(ref, 0), kvr_length(cu, 0));
    long n = kvr_length(ref, 0);
    for (int h = 0; h < H; h++) {
        long first = -1;
        float lo = INFINITY, hi = -INFINITY;
        for (long t = 0; t < n; t++) {
            kvr_part a, b;
            ck_assert_int_eq(kvr_part_of(ref, 0, h, t, &a), KVR_OK);
            ck_assert_int_eq(kvr_part_of(cu, 0, h, t, &b), KVR_OK);
            if (a == b) continue;
            if (first < 0) first = t;
            float s = t < cap ? snap[(size_t)h * cap + t] : NAN;
            ck_assert_msg(!isnan(s), "%s: head %d position %ld is %s in ref but %s in cuda, with no score to explain it",
                          what, h, t, kvr_part_name(a), kvr_part_name(b));
            if (s < lo) lo = s;
            if (s > hi) hi = s;
        }
        if (first < 0) continue;
        double tol = rel * (fabs(lo) + fabs(hi));
        ck_assert_msg(hi - lo <= tol,
                      "%s: head %d partitions differ from position %ld; the reference's scores of the differing "
                      "positions span %.9g .. %.9g, more than the score tolerance %.3g (%.0f%% used)", what, h, first,
                      (double)lo, (double)hi, tol, tol > 0 ? 100.0 * (hi - lo) / tol : INFINITY);
        printf("%s: head %d: partitions part at position %ld on a near tie (scores %.9g .. %.9g, tolerance %.3g)\n",
               what, h, first, (double)lo, (double)hi, tol);
        T.near_ties++;
        return 0;
    }
    return 1;
}

static void fill(float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * uni());
}

static void one_case(int seed)
{
    rng = (uint64_t)seed * UINT64_C(0x9E3779B97F4A7C15) + 17;
    static const int dims[] = {64, 128, 256}, groups[] = {1, 4, 8};
    kvr_config cfg;
    kvr_config_paper(&cfg);
    int D = dims[seed % 3], G = groups[(seed / 3) % 3], H = irange(1, 3);
    cfg.elem = (kvr_elem)(seed % 3 == 0 ? (seed / 9) % 3 : irange(0, 2));
    cfg.rows = (seed / 2) % 2 ? KVR_ROWS_MEAN : KVR_ROWS_MEDIAN;
    cfg.sinks = irange(0, 5);
    cfg.window = irange(1, 37);
    cfg.candidates = irange(0, 45);
    cfg.importance = cfg.candidates ? (kvr_importance)irange(1, 3) : KVR_IMP_NONE;
    cfg.depth = seed % 7 == 6 ? 0 : irange(1, 5);
    cfg.width = irange(1, 61);
    cfg.centre = irange(0, 1);
    cfg.shrink = irange(0, 1);
    cfg.obs_window = irange(1, 40);
    cfg.pool = (kvr_pool)irange(0, 1);
    cfg.seed = (uint64_t)seed * 1000003u;
    if (seed % 4 == 3 && cfg.depth > 0) {     /* the default's route, every fourth case */
        cfg.vague = KVR_VAGUE_MOMENT;
        cfg.centre = 1;
        cfg.var_cap = seed % 3 == 0 ? 0.0 : seed % 3 == 1 ? 1.0 : INFINITY;
    }
    int prefill = seed % 5 == 0 ? 0 : (seed % 5 == 1 ? 1 : irange(2, 500));
    int steps = irange(1, 24);
    char what[200];
    snprintf(what, sizeof what, "case %d (D=%d G=%d H=%d %s %s d=%d w=%d S=%d R=%d C=%d imp=%d centre=%d shrink=%d "
             "prefill=%d)", seed, D, G, H, kvr_elem_name(cfg.elem), cfg.rows ? "mean" : "median", cfg.depth,
             cfg.width, cfg.sinks, cfg.window, cfg.candidates, (int)cfg.importance, cfg.centre, cfg.shrink, prefill);
    kvr_cache *ref = NULL, *cu = NULL;
    ck_assert_int_eq(kvr_cache_create(&ref, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    int st = kvr_cache_create(&cu, 1, H, H * G, D, &cfg, self_check ? KVR_BACKEND_REF : KVR_BACKEND_CUDA);
    ck_assert_msg(st == KVR_OK, "%s: cuda cache: %s", what, kvr_last_error());
    long cap = prefill + steps + 1;
    float *k = malloc(sizeof(float) * cap * H * D), *v = malloc(sizeof(float) * cap * H * D);
    float *q = malloc(sizeof(float) * (cap > 40 ? cap : 40) * H * G * D);
    float *snap = malloc(sizeof(float) * H * cap);
    ck_assert(k && v && q && snap);
    double bias = uni();
    fill(k, (size_t)cap * H * D, -1.0 + bias, 1.0 + bias);
    fill(v, (size_t)cap * H * D, -1.0 - bias, 1.0 - bias);
    for (int h = 0; h < H; h++) snapshot_scores(ref, h, snap + (size_t)h * cap, 0);
    double F = 0.0;       /* largest relative error of a probability so far */
    if (prefill > 0) {
        int n_obs = prefill < cfg.obs_window ? prefill : cfg.obs_window;
        fill(q, (size_t)n_obs * H * G * D, -2.0, 2.0);
        ck_assert_int_eq(kvr_prefill(ref, 0, prefill, k, v, n_obs, q), KVR_OK);
        st = kvr_prefill(cu, 0, prefill, k, v, n_obs, q);
        ck_assert_msg(st == KVR_OK, "%s: cuda prefill: %s", what, kvr_last_error());
        ck_assert_msg(compare_parts(ref, cu, snap, 0, 0.0, what), "%s: prefill partitions differ", what);
        if (ref_has_sketch(kvr_cache_head(cu, 0, 0)) && !self_check) compare_sketch(cu, what);
        compare_reconstruct(ref, cu, what);
        fill(q, (size_t)H * G * D, -2.0, 2.0);
        compare_attend(ref, cu, q, 0, what);                  /* a peek right after prefill */
    }
    for (int s = 0; s < steps; s++) {
        long n = kvr_length(ref, 0);
        for (int h = 0; h < H; h++) snapshot_scores(ref, h, snap + (size_t)h * cap, n);
        size_t at = (size_t)(prefill + s) * H * D;
        ck_assert_int_eq(kvr_append(ref, 0, 1, k + at, v + at), KVR_OK);
        st = kvr_append(cu, 0, 1, k + at, v + at);
        ck_assert_msg(st == KVR_OK, "%s: cuda append: %s", what, kvr_last_error());
        if (!compare_parts(ref, cu, snap, cap, F + gam(s + 2), what))
            goto done;
        if (ref_has_sketch(kvr_cache_head(cu, 0, 0)) && !self_check) compare_sketch(cu, what);
        if (s % 8 == 0) compare_reconstruct(ref, cu, what);
        fill(q, (size_t)H * G * D, -2.0, 2.0);
        double f = compare_attend(ref, cu, q, 1, what);
        if (f > F) F = f;
        T.steps++;
    }
done:
    T.cases++;
    kvr_cache_free(ref);
    kvr_cache_free(cu);
    free(k); free(v); free(q); free(snap);
}

START_TEST(test_hash)
{
    static const uint32_t widths[] = {1, 7, 31, 33, 1000, 65537};
    for (int i = 0; i < 6; i++) {
        int bad = -1;
        ck_assert_int_eq(kvr_cuda_hash_check(UINT64_C(0x1234567) * (i + 1), 100000, widths[i], &bad), 0);
        ck_assert_msg(bad == 0, "device hash differs from kvr_hash on %d of 100000 inputs (width %u)", bad, widths[i]);
    }
}
END_TEST

/* one random case per loop index, so a failing case does not hide the others */
START_TEST(test_conformance)
{
    one_case(_i);
}
END_TEST

START_TEST(test_summary)
{
    printf("conformance: %d cases, %d decode steps, %d near-tie divergences; reconstructions: %d of %d "
           "bit-identical\n", T.cases, T.steps, T.near_ties, T.recon_bitwise, T.recon_checked);
    tu_tally_check("conformance: attention (mark: the case)", &T.attn, 1);
    tu_tally_check("conformance: reconstruction (mark: the case)", &T.recon, 1);
    tu_tally_check("prefill scores (mark: the case)", &T.prefill, 1);
    printf("moment route (host heads): %d attention calls bit-identical to the reference\n", T.moment_steps);
    printf("widest attention tolerance: %.3g of the attention-weighted magnitude of the values\n", T.widest);
    /* the tolerance must stay well below the values' own scale, or it could
     * not tell a wrong kernel (a wrong token, bucket, sign or weight moves an
     * output by the order of the values themselves) from a right one.  It
     * is widest for one-bucket rows holding hundreds of tokens, where the
     * float32 cancellation S - c mu is itself that inexact. */
    ck_assert_msg(T.widest < 0.1, "attention tolerance factor %.3g is too wide to mean anything", T.widest);
}
END_TEST

START_TEST(test_prefill_scores)
{
    {
        int seed = _i;
        rng = (uint64_t)seed * 7919 + 3;
        static const int dims[] = {64, 128, 256};
        int D = dims[seed % 3], G = 1 + seed % 8, n = irange(1, 900), n_obs = irange(1, n < 64 ? n : 64);
        kvr_config cfg;
        kvr_config_paper(&cfg);
        cfg.importance = (kvr_importance)(1 + seed % 3);
        cfg.obs_window = irange(1, 40);
        cfg.pool = (kvr_pool)(seed % 2);
        cfg.pool_kernel = 1 + 2 * irange(0, 3);
        float *k = malloc(sizeof(float) * n * D), *q = malloc(sizeof(float) * n_obs * G * D);
        float *s_ref = malloc(sizeof(float) * n), *s_cu = malloc(sizeof(float) * n);
        double *bound = calloc((size_t)n, sizeof(double));
        ck_assert(k && q && s_ref && s_cu && bound);
        fill(k, (size_t)n * D, -1.0, 1.0);
        fill(q, (size_t)n_obs * G * D, -2.0, 2.0);
        ck_assert_int_eq(ref_prefill_scores(&cfg, D, G, n, k, n_obs, q, s_ref), KVR_OK);
        float *k_dev = NULL, *q_dev = NULL, *s_dev = NULL;
        ck_assert_int_eq(kvr_cuda_malloc((void **)&k_dev, sizeof(float) * n * D), 0);
        ck_assert_int_eq(kvr_cuda_malloc((void **)&q_dev, sizeof(float) * n_obs * G * D), 0);
        ck_assert_int_eq(kvr_cuda_malloc((void **)&s_dev, sizeof(float) * n), 0);
        ck_assert_int_eq(kvr_cuda_upload(k_dev, k, sizeof(float) * n * D), 0);
        ck_assert_int_eq(kvr_cuda_upload(q_dev, q, sizeof(float) * n_obs * G * D), 0);
        ck_assert_int_eq(kvr_cuda_prefill_scores(D, G, (int)cfg.importance, cfg.obs_window, cfg.pool_kernel,
                                                 (int)cfg.pool, n, k_dev, n_obs, q_dev, s_dev), 0);
        ck_assert_int_eq(kvr_cuda_download(s_cu, s_dev, sizeof(float) * n), 0);
        kvr_cuda_free(k_dev); kvr_cuda_free(q_dev); kvr_cuda_free(s_dev);
        /* bound on raw_t: per query, the softmax weights' error (header) */
        int used = n_obs < cfg.obs_window ? n_obs : cfg.obs_window;
        if (cfg.importance == KVR_IMP_TOVA) used = 1;
        double scale = 1.0 / sqrt((double)D);
        double *l = malloc(sizeof(double) * n);
        ck_assert_ptr_nonnull(l);
        for (int j = n_obs - used; j < n_obs; j++)
            for (int g = 0; g < G; g++) {
                const float *qg = q + ((size_t)j * G + g) * D;
                int qpos = n - n_obs + j;
                double mx = -INFINITY, mn = INFINITY, dmax = 0, sum = 0;
                for (int t = 0; t <= qpos; t++) {
                    double dot = 0, a = 0;
                    for (int i = 0; i < D; i++) { dot += (double)qg[i] * k[(size_t)t * D + i]; a += fabs(qg[i] * k[(size_t)t * D + i]); }
                    l[t] = dot * scale;
                    if (gam(D + 2) * scale * a > dmax) dmax = gam(D + 2) * scale * a;
                    if (l[t] > mx) mx = l[t];
                    if (l[t] < mn) mn = l[t];
                }
                double delta = dmax + U32 * (mx - mn) + 4 * U32;
                double f = exp(2 * delta) * (2 * expm1(2 * delta) + 2 * gam(2.0 * n + 2));
                for (int t = 0; t <= qpos; t++) sum += exp(l[t] - mx);
                for (int t = 0; t <= qpos; t++) bound[t] += (f + 2 * gam(used * G + 2)) * exp(l[t] - mx) / sum;
            }
        free(l);
        tu_tally scores = TU_TALLY_INIT;
        scores.mark = seed;
        for (int t = 0; t < n; t++) {
            double tol;
            if (cfg.importance == KVR_IMP_SNAPKV) {       /* pooled: the pool of the bounds, plus its own rounding */
                double acc = 0, mx = 0;
                int half = cfg.pool_kernel / 2;
                for (int j = t - half; j <= t + half; j++)
                    if (j >= 0 && j < n) { acc += bound[j]; if (bound[j] > mx) mx = bound[j]; }
                tol = (cfg.pool == KVR_POOL_MAX ? mx : acc / cfg.pool_kernel) + gam(cfg.pool_kernel + 1) * fabs(s_ref[t]);
            } else {
                tol = bound[t] + gam(2) * fabs(s_ref[t]);
            }
            tu_tally_add(&scores, (double)s_cu[t], (double)s_ref[t], tol);
        }
        char line[320];
        snprintf(line, sizeof line, "prefill case %d (D=%d G=%d n=%d imp=%d): scores, cuda vs ref (i: position)",
                 seed, D, G, n, (int)cfg.importance);
        tu_tally_check(line, &scores, 0);
        tu_tally_merge(&T.prefill, &scores);
        free(k); free(q); free(s_ref); free(s_cu); free(bound);
    }
}
END_TEST

START_TEST(test_limits)
{
    /* shapes beyond the kernels' limits are refused cleanly */
    kvr_config cfg;
    kvr_config_paper(&cfg);
    cfg.window = 4;
    cfg.width = 8;
    kvr_cache *c = NULL;
    ck_assert_int_eq(kvr_cache_create(&c, 1, 1, 16, 64, &cfg, KVR_BACKEND_CUDA), KVR_EBACKEND);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(kvr_cache_create(&c, 1, 1, 1, 512, &cfg, KVR_BACKEND_CUDA), KVR_EBACKEND);
    ck_assert_ptr_null(c);
    /* quantized storage, KIVI and the quantized tier (so the default
     * kvreviver) run on the host only (spec §18, §19.10) */
    static const char *quantized[] = {"h2o/store=q4", "kvreviver-moment/store=q8", "kivi", "kvreviver",
                                      "kvreviver-paper/bits=2"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(kvr_method_config(quantized[i], 0.25, 1024, 64, KVR_F32, &cfg), KVR_OK);
        ck_assert_int_eq(kvr_cache_create(&c, 1, 1, 1, 64, &cfg, KVR_BACKEND_CUDA), KVR_EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_ptr_nonnull(strstr(kvr_last_error(), "reference backend"));
    }
}
END_TEST
#endif /* KVR_HAVE_CUDA */

int main(void)
{
#ifdef KVR_HAVE_CUDA
    self_check = getenv("KVR_CUDA_TEST_SELF") != NULL;
#endif
#ifdef KVR_CUDA_MOCK
    printf("CUDA kernels replaced by the host stand-in of tests/cuda_mock.c: this checks the backend glue\n");
#endif
    if (!kvr_backend_available(KVR_BACKEND_CUDA) && !self_check) {
        printf("SKIP: the CUDA backend is %s\n",
#ifdef KVR_HAVE_CUDA
               "built but no usable GPU was found"
#else
               "not built (configure --with-cuda)"
#endif
        );
        return 77;
    }
#ifdef KVR_HAVE_CUDA
    Suite *s = suite_create("cuda");
    TCase *tc = tcase_create("conformance");
    tcase_set_timeout(tc, 300);
    if (!self_check) {
        tcase_add_test(tc, test_hash);
        tcase_add_test(tc, test_limits);
        tcase_add_loop_test(tc, test_prefill_scores, 0, 12);
    }
#ifdef KVR_CUDA_MOCK
    tcase_add_loop_test(tc, test_conformance, 0, 9);    /* every (head_dim, group) pair once; CI time */
#else
    tcase_add_loop_test(tc, test_conformance, 0, 36);
#endif
    tcase_add_test(tc, test_summary);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);   /* one CUDA context for the whole suite */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
#else
    return 77;
#endif
}
