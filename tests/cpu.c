/* cpu.c: conformance of the CPU backend (cpu/, lib/cpu_backend.c) with the
 * reference, under the tolerance model of spec §14 (no GPU needed, so it
 * runs in every `make check`).
 *
 * The tolerance is kvr_tol_attend's, per output element: 2B of spec §14.4
 * (exact and tier rows) and §14.8 (the moment route's bulk term), computed
 * from the reference's head cache before the step, with the keys and
 * values every position carries (stored, rounded to the element type; a
 * tier position's dequantized values, which it keeps when it leaves for the
 * bulk, spec §19.2).  Nothing is tuned: the kernels differ from the
 * reference only in the order of float32 sums and in fused multiply-adds,
 * both inside gamma_n of the model (the tier's dequantization is the
 * reference's, bit for bit), and the bulk term is the reference's float
 * operations.
 *
 *   a. random caches of every configuration the kernels take (default,
 *      tiers of 2-4 bits, moment route, full, eviction methods; f32, f16,
 *      bf16; head_dim 64, 128 and 20 (the portable kernels); groups 1, 4,
 *      5): a cpu-backend cache and a reference cache take the same appends
 *      and updating decode steps; every step's outputs must lie within the
 *      tolerance, and every position's part must be the same in both (the
 *      scores come from the kernels' probabilities: a part that differs
 *      would be a near tie of spec §14.7, reported with the scores);
 *   b. the kernels on the reference's own head caches (kvr_cpu_attend_head
 *      against kvr_attend with KVR_ATTEND_PEEK), with their probabilities;
 *   c. mutants: each deliberately wrong variant (the bulk term without
 *      ln(n_b), the tier's nibbles swapped, the newest window token left
 *      out) must be caught by the same comparison;
 *   d. a configuration the kernels do not take (kvreviver-paper) runs the
 *      reference's code on a cpu cache: bit for bit;
 *   e. the kernels' exponential is within 0.5 ulp (plus 2^-50 relative) of
 *      exp, inside the model's 2 ulp.
 * The kernels are those the processor runs (AVX-512, AVX2 or portable);
 * KVR_CPU_ISA=avx2 (tests/cpu-avx2.sh) and KVR_CPU_ISA=portable
 * (tests/cpu-portable.sh) run all of it on the others. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "tolerance.h"
#include "../cpu/kvr_cpu.h"

/* What a run of one configuration tracks: the values every position
 * carries, per head ([H][N][D]), for the tolerance model. */
typedef struct {
    int H, G, D;
    long N;
    float *k, *v;        /* [N][H][D]: the inputs */
    float *hk, *hv;      /* [H][N][D]: carried values */
} track;

static void track_init(track *t, tu_rng *r, int H, int G, int D, long N, kvr_elem elem)
{
    t->H = H; t->G = G; t->D = D; t->N = N;
    size_t n = (size_t)N * H * D;
    t->k = malloc(n * sizeof(float)); t->v = malloc(n * sizeof(float));
    t->hk = malloc(n * sizeof(float)); t->hv = malloc(n * sizeof(float));
    TU_OK(t->k && t->v && t->hk && t->hv);
    tu_fill(r, t->k, n, 0.1, 1.0);
    tu_fill(r, t->v, n, 0.0, 1.0);
    for (long p = 0; p < N; p++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < D; i++) {
                size_t a = ((size_t)p * H + h) * D + i, b = ((size_t)h * N + p) * D + i;
                t->k[a] += (float)(0.3 * ((i % 7) - 3));          /* per-channel offsets */
                t->hk[b] = kvr_elem_round(elem, t->k[a]);
                t->hv[b] = kvr_elem_round(elem, t->v[a]);
            }
}

static void track_free(track *t)
{
    free(t->k); free(t->v); free(t->hk); free(t->hv);
}

/* After an append: every tier position carries its dequantized values. */
static void track_tier(track *t, const kvr_cache *c)
{
    for (int h = 0; h < t->H; h++) {
        const ref_head *hd = kvr_cache_head(c, 0, h);
        if (!ref_has_tier(hd)) continue;
        for (int j = 0; j < hd->n_tier; j++) {
            long p = hd->tier_pos[j];
            TU_EQ(kvr_reconstruct(c, 0, h, p, t->hk + ((size_t)h * t->N + p) * t->D,
                                  t->hv + ((size_t)h * t->N + p) * t->D), KVR_OK);
        }
    }
}

static const char *const methods[] = {
    "kvreviver", "kvreviver/bits=2", "kvreviver/bits=3", "kvreviver-moment", "full",
    "h2o", "tova", "streaming", "kvreviver/tier=0.8",
};
enum { N_METHODS = sizeof methods / sizeof methods[0] };

/* a. */
START_TEST(test_random_caches)
{
    static const int dims[] = {64, 128, 20, 128}, groups[] = {1, 4, 5};
    const char *method = methods[_i % N_METHODS];
    int D = dims[_i / N_METHODS], G = groups[(_i / 3) % 3], H = 2;
    kvr_elem elem = (kvr_elem)(_i % 3);
    long N = 480;
    double budget = _i % 2 ? 0.1 : 0.25;
    kvr_config cfg;
    TU_EQ(kvr_method_config(method, budget, N, D, elem, &cfg), KVR_OK);
    TU_OK(kvr_cpu_supports(&cfg));
    kvr_cache *ref, *cpu;
    TU_EQ(kvr_cache_create(&ref, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_cache_create(&cpu, 1, H, H * G, D, &cfg, KVR_BACKEND_CPU), KVR_OK);
    tu_rng r;
    tu_seed(&r, 2500 + (uint64_t)_i);
    track t;
    track_init(&t, &r, H, G, D, N, elem);
    size_t QD = (size_t)H * G * D;
    float *q = malloc(QD * sizeof(float)), *o1 = malloc(QD * sizeof(float)), *o2 = malloc(QD * sizeof(float));
    TU_OK(q && o1 && o2);
    tu_tally all = TU_TALLY_INIT;
    float *tol = malloc((size_t)G * D * sizeof(float));
    TU_OK(tol != NULL);
    long diverged = -1;
    for (long p = 0; p < N && diverged < 0; p++) {
        size_t at = (size_t)p * H * D;
        TU_EQ(kvr_append(ref, 0, 1, t.k + at, t.v + at), KVR_OK);
        TU_EQ(kvr_append(cpu, 0, 1, t.k + at, t.v + at), KVR_OK);
        track_tier(&t, ref);
        if (p % 3 != 2 && p != N - 1) continue;
        tu_fill(&r, q, QD, 0.0, 1.5);
        float *tols = malloc(QD * sizeof(float));
        TU_OK(tols != NULL);
        for (int h = 0; h < H; h++)
            TU_EQ(kvr_tol_attend(kvr_cache_head(ref, 0, h), t.hk + (size_t)h * N * D, t.hv + (size_t)h * N * D,
                                 G, q + (size_t)h * G * D, tols + (size_t)h * G * D), KVR_OK);
        TU_EQ(kvr_attend(ref, 0, q, o1, 0), KVR_OK);
        TU_EQ(kvr_attend(cpu, 0, q, o2, 0), KVR_OK);
        double *rd = malloc(QD * sizeof(double)), *td = malloc(QD * sizeof(double));
        TU_OK(rd && td);
        for (size_t i = 0; i < QD; i++) { rd[i] = o1[i]; td[i] = tols[i]; }
        all.mark = p;
        tu_tally_floats(&all, QD, o2, rd, td);
        free(rd); free(td); free(tols);
        for (int h = 0; h < H && diverged < 0; h++)   /* the parts, decided from the kernels' scores */
            for (long x = 0; x <= p; x++) {
                kvr_part a, b;
                TU_EQ(kvr_part_of(ref, 0, h, x, &a), KVR_OK);
                TU_EQ(kvr_part_of(cpu, 0, h, x, &b), KVR_OK);
                if (a != b) {
                    float sa = NAN, sb = NAN;
                    (void)kvr_score_of(ref, 0, h, x, &sa);
                    (void)kvr_score_of(cpu, 0, h, x, &sb);
                    printf("case %d (%s): after position %ld, head %d position %ld is %s in the reference and %s "
                           "on the cpu (scores %.9g, %.9g)\n", _i, method, p, h, x, kvr_part_name(a),
                           kvr_part_name(b), (double)sa, (double)sb);
                    diverged = p;
                    break;
                }
            }
    }
    char what[160];
    snprintf(what, sizeof what, "case %2d %-20s %s D=%3d G=%d %.0f%%: cpu backend vs reference, within kvr_tol_attend",
             _i, method, kvr_elem_name(elem), D, G, 100 * budget);
    tu_tally_check(what, &all, 1);
    TU_CHECK(diverged < 0, "case %d: the parts diverged after position %ld (a near tie of spec 14.7, or a wrong "
             "probability)", _i, diverged);
    free(tol); free(q); free(o1); free(o2);
    track_free(&t);
    kvr_cache_free(ref);
    kvr_cache_free(cpu);
}
END_TEST

/* b. and c.: the kernels on the reference's head caches; returns the tally
 * of outputs (and, with probs, adds the probabilities' check). */
static tu_tally kernels_on_reference(const char *method, kvr_elem elem, int D, int G, long N, uint64_t seed,
                                     int *prob_ok)
{
    int H = 2;
    kvr_config cfg;
    TU_EQ(kvr_method_config(method, 0.1, N, D, elem, &cfg), KVR_OK);
    kvr_cache *ref;
    TU_EQ(kvr_cache_create(&ref, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    tu_rng r;
    tu_seed(&r, seed);
    track t;
    track_init(&t, &r, H, G, D, N, elem);
    size_t QD = (size_t)H * G * D;
    float *q = malloc(QD * sizeof(float)), *o1 = malloc(QD * sizeof(float)), *o2 = malloc(QD * sizeof(float));
    float *tol = malloc(QD * sizeof(float)), *prob = malloc((size_t)N * sizeof(float));
    double *rd = malloc(QD * sizeof(double)), *td = malloc(QD * sizeof(double));
    TU_OK(q && o1 && o2 && tol && prob && rd && td);
    kvr_cpu_ws ws = {0};
    ref_work w = {0};
    tu_tally all = TU_TALLY_INIT;
    *prob_ok = 1;
    for (long p = 0; p < N; p++) {
        size_t at = (size_t)p * H * D;
        TU_EQ(kvr_append(ref, 0, 1, t.k + at, t.v + at), KVR_OK);
        track_tier(&t, ref);
        if (p % 5 != 4) continue;
        tu_fill(&r, q, QD, 0.0, 1.5);
        TU_EQ(kvr_attend(ref, 0, q, o1, KVR_ATTEND_PEEK), KVR_OK);
        for (int h = 0; h < H; h++) {
            ref_head *hd = (ref_head *)kvr_cache_head(ref, 0, h);
            const float *qh = q + (size_t)h * G * D;
            TU_EQ(kvr_tol_attend(hd, t.hk + (size_t)h * N * D, t.hv + (size_t)h * N * D, G, qh,
                                 tol + (size_t)h * G * D), KVR_OK);
            TU_EQ(kvr_cpu_ws_reserve(&ws, G, D, kvr_cpu_rows_cap(&cfg)), KVR_OK);
            memset(prob, 0, (size_t)N * sizeof(float));
            TU_EQ(kvr_cpu_attend_head(hd, G, qh, o2 + (size_t)h * G * D, prob, &ws), 1);
            /* the reference's probabilities (ref_attend_moment fills w.prob; update off) */
            float *scratch = malloc((size_t)G * D * sizeof(float));
            TU_OK(scratch != NULL);
            TU_EQ(ref_work_reserve(&w, hd->n, D), KVR_OK);
            TU_EQ(ref_work_reserve_moment(&w, hd), KVR_OK);
            ref_attend_moment(hd, G, qh, scratch, 0, &w);
            free(scratch);
            /* the kernels' probabilities sit exactly at the positions the
             * reference holds as exact or tier rows (their values are
             * checked through the parts of test a, which the scores decide) */
            for (long x = 0; x < hd->n; x++)
                if ((w.held[x] == 1) != (prob[x] != 0.0f) && !(w.held[x] == 1 && w.prob[x] == 0.0f))
                    *prob_ok = 0;
        }
        for (size_t i = 0; i < QD; i++) { rd[i] = o1[i]; td[i] = tol[i]; }
        all.mark = p;
        tu_tally_floats(&all, QD, o2, rd, td);
    }
    ref_work_free(&w);
    kvr_cpu_ws_free(&ws);
    free(q); free(o1); free(o2); free(tol); free(prob); free(rd); free(td);
    track_free(&t);
    kvr_cache_free(ref);
    return all;
}

START_TEST(test_kernels)
{
    static const char *const m[] = {"kvreviver", "full", "h2o", "kvreviver-moment"};
    int ok;
    tu_tally t = kernels_on_reference(m[_i % 4], (kvr_elem)(_i % 3), 128, 4, 400, 900 + (uint64_t)_i, &ok);
    char what[128];
    snprintf(what, sizeof what, "kernels (%s, %s) on the reference's heads, within kvr_tol_attend", m[_i % 4],
             kvr_elem_name((kvr_elem)(_i % 3)));
    tu_tally_check(what, &t, 1);
    TU_CHECK(ok, "a probability at a position that is not held");
}
END_TEST

/* c. */
START_TEST(test_mutants)
{
    static const char *const why[] = {"", "the bulk term without ln(n_b)", "the tier's nibbles swapped",
                                      "the newest window token left out"};
    int mutant = _i + 1, ok;
    kvr_cpu_set_mutant(mutant);
    tu_tally t = kernels_on_reference("kvreviver", KVR_F16, 128, 4, 400, 77, &ok);
    kvr_cpu_set_mutant(0);
    printf("mutant %d (%s): %ld of %ld outputs outside the tolerance, worst %.3g times it\n", mutant, why[mutant],
           t.misses, t.n, t.worst);
    TU_CHECK(t.misses > 0, "mutant %d (%s) was not caught", mutant, why[mutant]);
}
END_TEST

/* e. the kernels' exponential (attend.c exp4): within 0.5 ulp plus 2^-50
 * relative of exp(d) (its derivation), over 2^22 arguments spread over the
 * bit patterns of [-104, 0] and the special ones; the tolerance model allows
 * expf 2 ulp. */
START_TEST(test_expf)
{
    long n = 0;
    double worst = 0.0, half = strcmp(kvr_cpu_isa(), "portable") ? 0.5 : 2.0;   /* portable: libm's expf, the model's 2 ulp */
    for (uint32_t b = 0x80000000u; b <= 0xC2D00000u; b += 0x42D00000u / (1u << 22)) {
        float d;
        memcpy(&d, &b, sizeof d);
        double ex = exp((double)d);
        float cr = (float)ex, y = kvr_cpu_expf(d);
        double up = (double)nextafterf(cr, INFINITY) - cr, down = cr - (double)nextafterf(cr, 0.0f);
        double ulp = up > down ? up : down;
        if (ulp <= 0) ulp = 0x1p-149;
        double err = fabs((double)y - ex) / ulp;
        if (err > worst) worst = err;
        TU_CHECK(fabs((double)y - ex) <= half * ulp + 0x1p-50 * ex, "exp(%.9g): %.9g, exp %.17g, %.3g ulp", (double)d,
                 (double)y, ex, err);
        n++;
    }
    TU_OK(kvr_cpu_expf(-INFINITY) == 0.0f && kvr_cpu_expf(0.0f) == 1.0f && isnan(kvr_cpu_expf(NAN)));
    TU_OK(kvr_cpu_expf(-1e30f) == 0.0f);
    printf("expf (%s): %ld arguments, worst %.4f ulp\n", kvr_cpu_isa(), n, worst);
}
END_TEST

/* d. */
START_TEST(test_fallback)
{
    enum { N = 300, D = 32, G = 2, H = 2 };
    kvr_config cfg;
    TU_EQ(kvr_method_config("kvreviver-paper", 0.25, N, D, KVR_F32, &cfg), KVR_OK);
    TU_OK(!kvr_cpu_supports(&cfg));
    kvr_cache *ref, *cpu;
    TU_EQ(kvr_cache_create(&ref, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    TU_EQ(kvr_cache_create(&cpu, 1, H, H * G, D, &cfg, KVR_BACKEND_CPU), KVR_OK);
    tu_rng r;
    tu_seed(&r, 31);
    static float k[N * H * D], v[N * H * D], q[H * G * D], o1[H * G * D], o2[H * G * D];
    tu_fill(&r, k, N * H * D, 0, 1);
    tu_fill(&r, v, N * H * D, 0, 1);
    TU_EQ(kvr_append(ref, 0, N, k, v), KVR_OK);
    TU_EQ(kvr_append(cpu, 0, N, k, v), KVR_OK);
    for (int s = 0; s < 5; s++) {
        tu_fill(&r, q, H * G * D, 0, 1);
        TU_EQ(kvr_attend(ref, 0, q, o1, 0), KVR_OK);
        TU_EQ(kvr_attend(cpu, 0, q, o2, 0), KVR_OK);
        TU_OK(memcmp(o1, o2, sizeof o1) == 0);
    }
    void *b1, *b2;                                   /* the same state: the same cache file */
    size_t l1, l2;
    TU_EQ(kvr_cache_save_mem(ref, &b1, &l1), KVR_OK);
    TU_EQ(kvr_cache_save_mem(cpu, &b2, &l2), KVR_OK);
    TU_OK(l1 == l2 && memcmp(b1, b2, l1) == 0);
    kvr_buffer_free(b1);
    kvr_buffer_free(b2);
    TU_EQ(kvr_backend_available(KVR_BACKEND_CPU), 1);
    TU_OK(!strcmp(kvr_backend_name(KVR_BACKEND_CPU), "cpu"));
    kvr_cache_free(ref);
    kvr_cache_free(cpu);
}
END_TEST

int main(void)
{
    printf("cpu kernels: %s\n", kvr_cpu_isa());
    Suite *s = suite_create("cpu");
    TCase *tc = tu_tcase(s, "conformance");
    tcase_add_loop_test(tc, test_random_caches, 0, 4 * N_METHODS);
    tcase_add_loop_test(tc, test_kernels, 0, 12);
    tc = tu_tcase(s, "mutants");
    tcase_add_loop_test(tc, test_mutants, 0, 3);
    tc = tu_tcase(s, "fallback");
    tcase_add_test(tc, test_fallback);
    tcase_add_test(tc, test_expf);
    return tu_run(s);
}
