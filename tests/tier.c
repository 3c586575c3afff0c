/* tier.c: the quantized tier (spec §19).
 *
 * - The lifecycle against an independent model: random configurations,
 *   tokens appended with scores set by hand from a small set (so ties
 *   happen); after every append the candidate and tier positions equal those
 *   of a plain re-implementation of spec §3.3, §3.4 and §19.3 written here,
 *   and ref_head_check holds (every position in exactly one part).
 * - Prefill: candidates are the C best-ranked middle positions, the tier the
 *   next Q, against a plain ranking of the prefill scores.
 * - Dequantization: every tier token's key and value are within the bound of
 *   spec §18.4 of the values it was stored with, over many seeds; a negative
 *   control shows the error reaching half the bound, so the bound is not
 *   vacuous.
 * - Promotion (spec §19.5): exactly the tier tokens whose probability over
 *   the group is above the threshold move to the candidates, with their
 *   dequantized values as stored ones; the displaced candidates take their
 *   slots; nothing else changes.
 * - Bytes at capacity never exceed the budget over a sweep of ratios,
 *   contexts, head dimensions, bits and shares, and the tier is used.
 * - Random runs through the public API (prefill, append, attend with
 *   promotion): invariants after every call, attention within the float64
 *   tolerance over the reconstructed values, save/load bit-identical.
 * - The channel balancer (spec §19.12): the exponents equal a float64
 *   re-computation of MiKV's sqrt(max|q| / max|k|) (but where the float32
 *   ratio sits within rounding of a power of two), each tier key is within
 *   the bound of §18.4 scaled by 2^e of the value it was stored with, and on
 *   keys with outlier channels the balancer lowers the logit error in a
 *   significant majority of seeds (a one-sided binomial test, GSL).
 * - The complete tier (spec §19.11) and mikv: the plan holds every token
 *   (S + R + C + Q = context) within the budget over a sweep, refuses
 *   exactly when the formula says the tokens do not fit, and a run to the
 *   planned context sends nothing to the bulk. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <gsl/gsl_cdf.h>
#include "testutil.h"

/* ---- an independent model of the lifecycle ------------------------------ */

/* Exact candidates and tier as plain lists of (position, score), kept in
 * position order; the bulk only counted. */
typedef struct {
    int S, R, C, Q;
    long n, n_bulk;
    int nc, nt;
    long cpos[64], tpos[64];
    float cscore[64], tscore[64];
} model;

/* Index of the entry that leaves first among n (lowest score, then the
 * oldest position), written as a plain scan over all entries. */
static int model_least(const long *pos, const float *score, int n)
{
    int j = -1;
    for (int i = 0; i < n; i++)
        if (j < 0 || score[i] < score[j] || (score[i] == score[j] && pos[i] < pos[j]))
            j = i;
    return j;
}

static void model_insert(long *pos, float *score, int *n, long p, float s)
{
    int j = *n;
    while (j > 0 && pos[j - 1] > p) {
        pos[j] = pos[j - 1];
        score[j] = score[j - 1];
        j--;
    }
    pos[j] = p;
    score[j] = s;
    (*n)++;
}

static void model_remove(long *pos, float *score, int *n, int j)
{
    for (int i = j; i + 1 < *n; i++) {
        pos[i] = pos[i + 1];
        score[i] = score[i + 1];
    }
    (*n)--;
}

/* spec §19.3 over the Q + 1 tokens */
static void model_tier(model *m, long p, float s)
{
    if (m->Q == 0) { m->n_bulk++; return; }
    model_insert(m->tpos, m->tscore, &m->nt, p, s);
    if (m->nt > m->Q) {
        model_remove(m->tpos, m->tscore, &m->nt, model_least(m->tpos, m->tscore, m->nt));
        m->n_bulk++;
    }
}

/* spec §3.3 step 2 over the C + 1 tokens */
static void model_cand(model *m, long p, float s)
{
    if (m->C == 0) { model_tier(m, p, s); return; }
    model_insert(m->cpos, m->cscore, &m->nc, p, s);
    if (m->nc > m->C) {
        int j = model_least(m->cpos, m->cscore, m->nc);
        long lp = m->cpos[j];
        float ls = m->cscore[j];
        model_remove(m->cpos, m->cscore, &m->nc, j);
        model_tier(m, lp, ls);
    }
}

/* The score a test gives position p before each append: a small set of
 * values, so that ties are frequent. */
static float hand_score(tu_rng *r)
{
    return (float)tu_int(r, 0, 3) * 0.25f;
}

static void lifecycle_run(uint64_t seed)
{
    tu_rng r;
    tu_seed(&r, seed);
    model m = {0};
    m.S = tu_int(&r, 0, 3);
    m.R = tu_int(&r, 1, 5);
    m.C = tu_int(&r, 1, 6);
    m.Q = tu_int(&r, 1, 8);
    int depth = tu_int(&r, 0, 1), D = tu_int(&r, 1, 9);
    kvr_config cfg = tu_config(m.S, m.R, m.C, depth, depth ? tu_int(&r, 1, 4) : 0, KVR_IMP_H2O);
    cfg.tier_bits = tu_int(&r, 1, 4);
    cfg.tier_tokens = m.Q;
    cfg.store = (kvr_store)tu_int(&r, 0, 2);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    ref_head *h = (ref_head *)kvr_cache_head(c, 0, 0);
    float k[16], v[16];
    float win_score[8] = {0};                      /* the model's window scores, by ring slot */
    for (int step = 0; step < 60; step++) {
        /* set every scored position's score, in the cache and in the model */
        for (long p = 0; p < h->n; p++) {
            float *slot = ref_score_slot(h, p);
            if (!slot)
                continue;
            float s = hand_score(&r);
            *slot = s;
            if (ref_part_of(h, p) == KVR_PART_RECENT)
                win_score[p % m.R] = s;
            for (int j = 0; j < m.nc; j++) if (m.cpos[j] == p) m.cscore[j] = s;
            for (int j = 0; j < m.nt; j++) if (m.tpos[j] == p) m.tscore[j] = s;
        }
        tu_fill(&r, k, (size_t)D, 0.0, 1.0);
        tu_fill(&r, v, (size_t)D, 0.0, 1.0);
        TU_EQ(kvr_append(c, 0, 1, k, v), KVR_OK);
        long pos = m.n++;
        if (pos >= m.S && pos - m.R >= m.S)
            model_cand(&m, pos - m.R, win_score[(pos - m.R) % m.R]);
        if (pos >= m.S)
            win_score[pos % m.R] = 0.0f;
        char why[256] = "";
        TU_CHECK(ref_head_check(h, why, sizeof why) == 0, "seed %llu step %d: %s", (unsigned long long)seed, step, why);
        tu_assert_walk(h);
        TU_EQ(h->n_cand, m.nc);
        TU_EQ(h->n_tier, m.nt);
        TU_EQ(h->n_vague, m.n_bulk);
        for (int j = 0; j < m.nc; j++)
            TU_EQ(h->cand_pos[j], m.cpos[j]);
        for (int j = 0; j < m.nt; j++) {
            TU_EQ(h->tier_pos[j], m.tpos[j]);
            TU_CHECK(h->tier_score[j] == m.tscore[j], "tier slot %d: score %g, model %g", j,
                     (double)h->tier_score[j], (double)m.tscore[j]);
            kvr_part part;
            TU_EQ(kvr_part_of(c, 0, 0, m.tpos[j], &part), KVR_OK);
            TU_EQ(part, KVR_PART_QUANTIZED);
        }
    }
    kvr_cache_free(c);
}

START_TEST(test_lifecycle_model)
{
    lifecycle_run((uint64_t)_i * 104729 + 3);
}
END_TEST

/* ---- prefill (spec §19.8) ---------------------------------------------------- */

/* 1 when middle position a ranks before b: higher score, then newer. */
static int ranks_before(const float *score, long a, long b)
{
    return score[a] != score[b] ? score[a] > score[b] : a > b;
}

/* After kvr_prefill, the candidates are the C best-ranked middle positions
 * and the tier the next Q, ranked here by a plain count of the positions
 * that rank before each one, from the prefill scores of spec §6.2. */
START_TEST(test_prefill_ranks)
{
    for (int seed = 0; seed < 200; seed++) {
        tu_rng r;
        tu_seed(&r, 0x5151u + (uint64_t)seed);
        int S = tu_int(&r, 0, 3), R = tu_int(&r, 1, 6), C = tu_int(&r, 1, 6), Q = tu_int(&r, 1, 10);
        int D = tu_int(&r, 1, 8), G = tu_int(&r, 1, 2), n = tu_int(&r, 1, 40), n_obs = tu_int(&r, 1, n < 6 ? n : 6);
        kvr_config cfg = tu_config(S, R, C, tu_int(&r, 0, 1), 3, (kvr_importance)tu_int(&r, 1, 3));
        cfg.elem = KVR_F32;
        cfg.tier_bits = tu_int(&r, 1, 4);
        cfg.tier_tokens = Q;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
        float *k = malloc((size_t)n * D * sizeof *k), *v = malloc((size_t)n * D * sizeof *v);
        float *q = malloc((size_t)n_obs * G * D * sizeof *q), *score = malloc((size_t)n * sizeof *score);
        TU_OK(k && v && q && score);
        tu_fill(&r, k, (size_t)n * D, 0.0, 1.0);
        tu_fill(&r, v, (size_t)n * D, 0.0, 1.0);
        tu_fill(&r, q, (size_t)n_obs * G * D, 0.0, 1.0);
        if (seed % 3 == 0)                        /* identical keys: exact score ties */
            for (int t = 1; t < n; t++) memcpy(k + (size_t)t * D, k, (size_t)D * sizeof *k);
        TU_EQ(kvr_prefill(c, 0, n, k, v, n_obs, q), KVR_OK);
        TU_EQ(ref_prefill_scores(&cfg, D, G, n, k, n_obs, q, score), KVR_OK);
        const ref_head *h = kvr_cache_head(c, 0, 0);
        long s0 = n < S ? n : S, r0 = n - s0 < R ? n - s0 : R;
        int n_cand = 0, n_tier = 0;
        for (long p = s0; p < n - r0; p++) {
            long before = 0;
            for (long o = s0; o < n - r0; o++)
                before += o != p && ranks_before(score, o, p);
            kvr_part want = before < C ? KVR_PART_CANDIDATE : before < C + Q ? KVR_PART_QUANTIZED
                          : ref_has_sketch(h) ? KVR_PART_VAGUE : KVR_PART_DROPPED;
            kvr_part got;
            TU_EQ(kvr_part_of(c, 0, 0, p, &got), KVR_OK);
            TU_CHECK(got == want, "seed %d position %ld: %s, expected %s", seed, p, kvr_part_name(got), kvr_part_name(want));
            n_cand += want == KVR_PART_CANDIDATE;
            n_tier += want == KVR_PART_QUANTIZED;
            if (want == KVR_PART_QUANTIZED) {
                float got_score;
                TU_EQ(kvr_score_of(c, 0, 0, p, &got_score), KVR_OK);
                TU_OK(got_score == score[p]);     /* it keeps its prefill score */
            }
        }
        TU_EQ(h->n_cand, n_cand);
        TU_EQ(h->n_tier, n_tier);
        tu_assert_heads_ok(c);
        free(k); free(v); free(q); free(score);
        kvr_cache_free(c);
    }
}
END_TEST

/* ---- dequantization within the bound of spec §18.4 ------------------------ */

/* Tokens with keys and values of varied spread and offset go through a head
 * whose candidates and bulk are tiny, so most pass into the tier; each tier
 * token's reconstruction is compared with what was appended (f32 storage,
 * so the appended value is the stored one). */
START_TEST(test_dequant_bound)
{
    long misses = 0, over_half = 0, compared = 0;
    for (int seed = 0; seed < 200; seed++) {
        tu_rng r;
        tu_seed(&r, 0x7171u + (uint64_t)seed);
        int D = tu_int(&r, 1, 64), b = 1 + seed % 4, N = 40;
        kvr_config cfg = tu_config(1, 1, 1, 0, 0, KVR_IMP_H2O);
        cfg.elem = KVR_F32;
        cfg.tier_bits = b;
        cfg.tier_tokens = N;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, 1, D, &cfg, KVR_BACKEND_REF), KVR_OK);
        float *k = malloc((size_t)N * D * sizeof *k), *v = malloc((size_t)N * D * sizeof *v);
        float *gk = malloc((size_t)D * sizeof *gk), *gv = malloc((size_t)D * sizeof *gv);
        TU_OK(k && v && gk && gv);
        double spread = ldexp(1.0, tu_int(&r, -8, 8)), offset = tu_int(&r, 0, 1) ? 0.0 : 100.0 * tu_gauss(&r);
        tu_fill(&r, k, (size_t)N * D, offset, spread);
        tu_fill(&r, v, (size_t)N * D, -offset, spread);
        TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
        const ref_head *h = kvr_cache_head(c, 0, 0);
        TU_OK(h->n_tier > 0);
        for (int j = 0; j < h->n_tier; j++) {
            long p = h->tier_pos[j];
            TU_EQ(kvr_reconstruct(c, 0, 0, p, gk, gv), KVR_OK);
            double bk = ref_quant_bound(h->tier_kq[2 * j], h->tier_kq[2 * j + 1], b);
            double bv = ref_quant_bound(h->tier_vq[2 * j], h->tier_vq[2 * j + 1], b);
            for (int i = 0; i < D; i++) {
                double ek = fabs((double)gk[i] - k[(size_t)p * D + i]);
                double ev = fabs((double)gv[i] - v[(size_t)p * D + i]);
                misses += (ek > bk) + (ev > bv);
                over_half += (ek > bk / 2) + (ev > bv / 2);
                compared += 2;
            }
        }
        free(k); free(v); free(gk); free(gv);
        kvr_cache_free(c);
    }
    printf("tier dequantization: %ld values, %ld beyond the bound, %ld beyond half of it\n",
           compared, misses, over_half);
    TU_EQ(misses, 0);
    TU_OK(over_half > 0);                         /* negative control: the bound is nearly reached */
}
END_TEST

/* ---- promotion (spec §19.5) ------------------------------------------------ */

START_TEST(test_promotion_exact_set)
{
    for (int seed = 0; seed < 100; seed++) {
        tu_rng r;
        tu_seed(&r, 0x9090u + (uint64_t)seed);
        int C = tu_int(&r, 1, 5), Q = tu_int(&r, 2, 10), D = tu_int(&r, 1, 8), G = tu_int(&r, 1, 3);
        kvr_config cfg = tu_config(1, 2, C, 0, 0, KVR_IMP_H2O);
        cfg.elem = KVR_F32;
        cfg.tier_bits = tu_int(&r, 1, 4);
        cfg.tier_tokens = Q;
        cfg.tier_promote = 0.25;
        kvr_cache *c;
        TU_EQ(kvr_cache_create(&c, 1, 1, G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
        int N = 1 + 2 + C + Q + 3;
        float *k = malloc((size_t)N * D * sizeof *k), *v = malloc((size_t)N * D * sizeof *v);
        float *prob = calloc((size_t)N, sizeof *prob);
        float dk[8], dv[8];
        TU_OK(k && v && prob);
        tu_fill(&r, k, (size_t)N * D, 0.0, 1.0);
        tu_fill(&r, v, (size_t)N * D, 0.0, 1.0);
        TU_EQ(kvr_append(c, 0, N, k, v), KVR_OK);
        ref_head *h = (ref_head *)kvr_cache_head(c, 0, 0);
        TU_EQ(h->n_cand, C);
        TU_OK(h->n_tier > 0);
        /* candidate scores 1.0; tier scores 2.0 (so a promoted token always
         * displaces a candidate), some tier tokens over the threshold */
        for (int j = 0; j < h->n_cand; j++) h->cand_score[j] = 1.0f;
        long want[16];
        float want_k[16][8], want_v[16][8];
        int n_want = 0, n_tier0 = h->n_tier;
        for (int j = 0; j < h->n_tier; j++) {
            h->tier_score[j] = 2.0f;
            long p = h->tier_pos[j];
            int over = tu_int(&r, 0, 1);
            /* over: (theta + a bit) G; under: exactly theta G, which is not strictly above */
            prob[p] = over ? (0.25f + 0.01f) * (float)G : 0.25f * (float)G;
            if (over && n_want < C) {
                want[n_want] = p;
                ref_tier_get(h, j, want_k[n_want], want_v[n_want]);
                n_want++;
            } else if (over) {
                prob[p] = 0.0f;                   /* at most C promotions, so every one displaces a 1.0 */
            }
        }
        long old_cand[8];
        for (int j = 0; j < h->n_cand; j++) old_cand[j] = h->cand_pos[j];
        ref_tier_promote(h, prob, G);
        char why[256] = "";
        TU_CHECK(ref_head_check(h, why, sizeof why) == 0, "%s", why);
        TU_EQ(h->n_cand, C);
        TU_EQ(h->n_tier, n_tier0);
        for (int w = 0; w < n_want; w++) {
            int j = ref_cand_find(h, want[w]);
            TU_CHECK(j >= 0, "seed %d: position %ld was not promoted", seed, want[w]);
            TU_OK(h->cand_score[j] == 2.0f);
            TU_EQ(ref_exact_kv(h, want[w], dk, dv), 1);
            TU_OK(memcmp(dk, want_k[w], (size_t)D * sizeof *dk) == 0);   /* its reconstruction became its stored value */
            TU_OK(memcmp(dv, want_v[w], (size_t)D * sizeof *dv) == 0);
        }
        /* the n_want oldest-first lowest candidates (all 1.0: the oldest) moved to the tier */
        int demoted = 0;
        for (int j = 0; j < C; j++)
            if (ref_tier_find(h, old_cand[j]) >= 0) demoted++;
            else TU_OK(ref_cand_find(h, old_cand[j]) >= 0);
        TU_EQ(demoted, n_want);
        for (int j = 0; j < demoted; j++)
            TU_OK(ref_tier_find(h, old_cand[j]) >= 0);   /* ties: the oldest left first */
        free(k); free(v); free(prob);
        kvr_cache_free(c);
    }
}
END_TEST

/* ---- bytes at capacity ------------------------------------------------------ */

START_TEST(test_plan_sweep)
{
    static const double ratios[] = {0.02, 0.05, 0.1, 0.17, 0.25, 0.4, 0.6, 0.9};
    static const long contexts[] = {64, 300, 512, 2048, 32768};
    static const int dims[] = {8, 32, 64, 128};
    static const double shares[] = {0.1, 0.3, 0.5, 0.7, 0.9};
    long planned = 0, used = 0;
    char name[96];
    for (size_t a = 0; a < sizeof ratios / sizeof *ratios; a++)
        for (size_t b = 0; b < sizeof contexts / sizeof *contexts; b++)
            for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
                for (int bits = 1; bits <= 4; bits++)
                    for (size_t s = 0; s < sizeof shares / sizeof *shares; s++)
                        for (int st = 0; st < 4; st++) {   /* bit 0: store=q4, bit 1: the balancer */
                            snprintf(name, sizeof name, "kvreviver/bits=%d/tier=%g%s%s", bits, shares[s],
                                     st & 1 ? "/store=q4" : "", st & 2 ? "/balance=1" : "");
                            kvr_config cfg;
                            int status = kvr_method_config(name, ratios[a], contexts[b], dims[d], KVR_F16, &cfg);
                            if (status == KVR_EBUDGET)
                                continue;
                            TU_CHECK(status == KVR_OK, "%s at %g of %ld, D %d: %s", name, ratios[a], contexts[b],
                                     dims[d], kvr_last_error());
                            size_t full = kvr_full_bytes(contexts[b], dims[d], KVR_F16);
                            size_t budget = (size_t)floor(ratios[a] * (double)full);
                            TU_CHECK(kvr_head_bytes(&cfg, dims[d]) <= budget, "%s at %g of %ld, D %d: %zu > %zu",
                                     name, ratios[a], contexts[b], dims[d], kvr_head_bytes(&cfg, dims[d]), budget);
                            TU_OK((long)cfg.sinks + cfg.window + cfg.candidates + cfg.tier_tokens <= contexts[b]);
                            planned++;
                            used += cfg.tier_tokens > 0;
                        }
    printf("tier plans: %ld planned, %ld with a tier\n", planned, used);
    TU_OK(planned > 1000);
    TU_OK(used > planned / 2);                    /* negative control: the sweep exercises the tier */
}
END_TEST

/* ---- random runs through the public API ------------------------------------ */

static void api_run(uint64_t seed)
{
    tu_rng r;
    tu_seed(&r, seed);
    int S = tu_int(&r, 0, 3), R = tu_int(&r, 1, 6), C = tu_int(&r, 1, 5), Q = tu_int(&r, 1, 12);
    int depth = tu_int(&r, 0, 2), width = depth ? tu_int(&r, 1, 8) : 0;
    kvr_config cfg = tu_config(S, R, C, depth, width, (kvr_importance)tu_int(&r, 1, 3));
    cfg.tier_bits = tu_int(&r, 1, 4);
    cfg.tier_tokens = Q;
    cfg.tier_promote = tu_int(&r, 0, 1) ? 0.0 : 0.05 * tu_int(&r, 1, 6);
    cfg.vague = depth && tu_int(&r, 0, 1) ? KVR_VAGUE_MOMENT : KVR_VAGUE_RECONSTRUCT;
    cfg.elem = (kvr_elem)tu_int(&r, 0, 2);
    cfg.store = (kvr_store)tu_int(&r, 0, 2);
    cfg.seed = tu_next(&r);
    cfg.tier_balance = tu_int(&r, 0, 1);          /* spec §19.12; its file version 5 is saved below */
    int H = tu_int(&r, 1, 2), G = tu_int(&r, 1, 3), D = tu_int(&r, 2, 8);
    cfg.tier_rotate = (D & (D - 1)) == 0 ? tu_int(&r, 0, 1) : 0;   /* spec §19.13: version 6 */
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    size_t cap = 40 * (size_t)H * G * D;
    float *k = malloc(cap * sizeof *k), *v = malloc(cap * sizeof *v), *q = malloc(cap * sizeof *q);
    float *out = malloc((size_t)H * G * D * sizeof *out);
    TU_OK(k && v && q && out);
    int m = tu_int(&r, 1, 30), n_obs = tu_int(&r, 1, m < 8 ? m : 8);
    tu_fill(&r, k, (size_t)m * H * D, 0.5, 1.0);
    tu_fill(&r, v, (size_t)m * H * D, -0.5, 1.0);
    tu_fill(&r, q, (size_t)n_obs * H * G * D, 0.0, 1.0);
    TU_EQ(kvr_prefill(c, 0, m, k, v, n_obs, q), KVR_OK);
    tu_assert_heads_ok(c);
    tu_assert_parts(c, 0);
    for (int op = 0; op < 40; op++) {
        if (tu_int(&r, 0, 2) == 0) {
            int a = tu_int(&r, 1, 4);
            tu_fill(&r, k, (size_t)a * H * D, 0.5, 1.0);
            tu_fill(&r, v, (size_t)a * H * D, -0.5, 1.0);
            TU_EQ(kvr_append(c, 0, a, k, v), KVR_OK);
        } else {
            tu_fill(&r, q, (size_t)H * G * D, 0.0, 2.0);
            int peek = tu_int(&r, 0, 1);
            TU_EQ(kvr_attend(c, 0, q, out, peek ? KVR_ATTEND_PEEK : 0), KVR_OK);
            /* after an update, promotion may have changed what is stored
             * (spec §19.5); a peek leaves the cache as attention saw it */
            if (peek && cfg.vague == KVR_VAGUE_RECONSTRUCT && depth == 0)
                tu_assert_attention(c, 0, q, out);
        }
        tu_assert_heads_ok(c);
        tu_assert_parts(c, 0);
    }
    void *buf;
    size_t len;
    kvr_cache *back;
    TU_EQ(kvr_cache_save_mem(c, &buf, &len), KVR_OK);
    TU_EQ(kvr_cache_load_mem(&back, buf, len), KVR_OK);
    char why[256] = "";
    TU_CHECK(tu_cache_same(c, back, why, sizeof why), "save/load: %s", why);
    free(buf);
    kvr_cache_free(back);
    free(k); free(v); free(q); free(out);
    kvr_cache_free(c);
}

START_TEST(test_api_random)
{
    api_run((uint64_t)_i * 6007 + 11);
}
END_TEST

/* ---- the channel balancer (spec §19.12) ------------------------------------ */

/* A prompt of N keys [N][D] whose channels have scales 2^u (u in -3..4, so
 * some channels are outliers), values, and n_obs queries [n_obs][G][D]. */
static void outlier_prompt(tu_rng *r, int N, int D, int G, int n_obs, float *k, float *v, float *q)
{
    double sc[256];
    for (int i = 0; i < D; i++)
        sc[i] = ldexp(1.0, tu_int(r, -3, 4));
    for (int t = 0; t < N; t++)
        for (int i = 0; i < D; i++) {
            k[(size_t)t * D + i] = (float)(sc[i] * tu_gauss(r));
            v[(size_t)t * D + i] = (float)tu_gauss(r);
        }
    for (long j = 0; j < (long)n_obs * G * D; j++)
        q[j] = (float)(ldexp(1.0, tu_int(r, -2, 2)) * tu_gauss(r));
}

/* A complete-enough tier of `bits` bits: S=1, R=2, C=2 and the rest in the
 * tier, with the balancer (spec §19.12) and the rotation (§19.13) as asked. */
static kvr_cache *tier_cache(int N, int D, int G, int bits, int balance, int rotate)
{
    kvr_config cfg = tu_config(1, 2, 2, 0, 0, KVR_IMP_H2O);
    cfg.elem = KVR_F32;
    cfg.tier_bits = bits;
    cfg.tier_tokens = N;
    cfg.tier_balance = balance;
    cfg.tier_rotate = rotate;
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, 1, G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    return c;
}

START_TEST(test_balance_exponents)
{
    long channels = 0, near = 0, scaled = 0, compared = 0;
    for (int seed = 0; seed < 100; seed++) {
        tu_rng r;
        tu_seed(&r, 0xba1au + (uint64_t)seed);
        int N = tu_int(&r, 8, 40), D = tu_int(&r, 1, 64), G = tu_int(&r, 1, 3), n_obs = tu_int(&r, 1, 8);
        float *k = malloc((size_t)N * D * sizeof *k), *v = malloc((size_t)N * D * sizeof *v);
        float *q = malloc((size_t)n_obs * G * D * sizeof *q), *gk = malloc((size_t)D * sizeof *gk);
        float *gv = malloc((size_t)D * sizeof *gv);
        TU_OK(k && v && q && gk && gv);
        outlier_prompt(&r, N, D, G, n_obs, k, v, q);
        if (seed % 10 == 0)
            for (int t = 0; t < N; t++) k[(size_t)t * D] = 0.0f;   /* a channel of zero keys: e = 0 */
        kvr_cache *c = tier_cache(N, D, G, 2, 1, 0);
        TU_EQ(kvr_prefill(c, 0, N, k, v, n_obs, q), KVR_OK);
        const ref_head *h = kvr_cache_head(c, 0, 0);
        TU_OK(h->tier_bal != NULL);
        /* float64: t_i = sqrt(mq / mk), r_i = t_i / max t, e_i = min(8, -floor(log2 r_i)) */
        double t[256], T = 0.0;
        for (int i = 0; i < D; i++) {
            double mk = 0.0, mq = 0.0;
            for (int p = 0; p < N; p++) mk = fmax(mk, fabs(k[(size_t)p * D + i]));
            for (long j = 0; j < (long)n_obs * G; j++) mq = fmax(mq, fabs(q[(size_t)j * D + i]));
            t[i] = mk > 0.0 && mq > 0.0 ? sqrt(mq / mk) : 0.0;
            T = fmax(T, t[i]);
        }
        for (int i = 0; i < D; i++) {
            int e = 0;
            double lr = 0.0;
            if (t[i] > 0.0) {
                lr = log2(t[i] / T);
                e = (int)fmin(8.0, -floor(lr));
            }
            int borderline = t[i] > 0.0 && lr != 0.0 && fabs(lr - rint(lr)) < 1e-5;   /* float32 may round across */
            near += borderline;
            TU_CHECK(h->tier_bal[i] == e || borderline, "seed %d channel %d: e = %d, float64 says %d",
                     seed, i, h->tier_bal[i], e);
            TU_OK(h->tier_bal[i] >= 0 && h->tier_bal[i] <= 8);
            scaled += h->tier_bal[i] > 0;
            channels++;
        }
        if (seed % 10 == 0)
            TU_EQ(h->tier_bal[0], 0);
        /* a tier key is within the bound of spec §18.4 times 2^e of its input */
        for (int j = 0; j < h->n_tier; j++) {
            long p = h->tier_pos[j];
            TU_EQ(kvr_reconstruct(c, 0, 0, p, gk, gv), KVR_OK);
            double bk = ref_quant_bound(h->tier_kq[2 * j], h->tier_kq[2 * j + 1], 2);
            for (int i = 0; i < D; i++, compared++)
                TU_CHECK(fabs((double)gk[i] - k[(size_t)p * D + i]) <= ldexp(bk, h->tier_bal[i]),
                         "seed %d position %ld channel %d", seed, p, i);
        }
        free(k); free(v); free(q); free(gk); free(gv);
        kvr_cache_free(c);
    }
    printf("balancer: %ld channels, %ld scaled down, %ld borderline; %ld tier key values within the bound\n",
           channels, scaled, near, compared);
    TU_OK(scaled > channels / 4);                 /* negative control: the outliers are balanced */
    TU_OK(near < channels / 100);
}
END_TEST

/* The mean |q . (k' - k)| over the tier tokens and observed queries. */
static double logit_error(kvr_cache *c, const float *k, const float *q, int n_obs, int G, int D)
{
    const ref_head *h = kvr_cache_head(c, 0, 0);
    float *gk = malloc((size_t)D * sizeof *gk), *gv = malloc((size_t)D * sizeof *gv);
    TU_OK(gk && gv);
    double sum = 0.0;
    long n = 0;
    for (int j = 0; j < h->n_tier; j++) {
        long p = h->tier_pos[j];
        TU_EQ(kvr_reconstruct(c, 0, 0, p, gk, gv), KVR_OK);
        for (long a = 0; a < (long)n_obs * G; a++, n++) {
            double s = 0.0;
            for (int i = 0; i < D; i++)
                s += (double)q[(size_t)a * D + i] * ((double)gk[i] - k[(size_t)p * D + i]);
            sum += fabs(s);
        }
    }
    free(gk); free(gv);
    return n ? sum / (double)n : 0.0;
}

/* In how many of `trials` seeds of outlier_prompt a lever lowers a tier's
 * mean logit error: the cache with (balance, rotate) against the one
 * without either, at `bits` bits. */
static int seeds_better(uint64_t seed0, int trials, int bits, int balance, int rotate)
{
    int better = 0;
    for (int seed = 0; seed < trials; seed++) {
        tu_rng r;
        tu_seed(&r, seed0 + (uint64_t)seed);
        int N = 64, D = 64, G = 2, n_obs = 8;
        float *k = malloc((size_t)N * D * sizeof *k), *v = malloc((size_t)N * D * sizeof *v);
        float *q = malloc((size_t)n_obs * G * D * sizeof *q);
        TU_OK(k && v && q);
        outlier_prompt(&r, N, D, G, n_obs, k, v, q);
        double err[2];
        for (int on = 0; on < 2; on++) {
            kvr_cache *c = tier_cache(N, D, G, bits, on && balance, on && rotate);
            TU_EQ(kvr_prefill(c, 0, N, k, v, n_obs, q), KVR_OK);
            err[on] = logit_error(c, k, q, n_obs, G, D);
            kvr_cache_free(c);
        }
        better += err[1] < err[0];
        free(k); free(v); free(q);
    }
    return better;
}

/* H0: the lever is no better than a coin; one-sided binomial tail below 1e-3. */
static void check_helps(const char *lever, int better, int trials)
{
    double p = better > 0 ? gsl_cdf_binomial_Q((unsigned)(better - 1), 0.5, (unsigned)trials) : 1.0;
    printf("%s: lower logit error in %d of %d seeds (binomial p = %.2g)\n", lever, better, trials, p);
    TU_CHECK(p < 1e-3, "the %s lowers the error in only %d of %d seeds", lever, better, trials);
}

START_TEST(test_balance_helps)
{
    check_helps("balancer", seeds_better(0xbe77u, 60, 2, 1, 0), 60);
}
END_TEST

/* ---- the rotation (spec §19.13) -------------------------------------------- */

/* The test's own reading of §19.13's butterfly: stage h pairs (j, j + h),
 * j mod 2h < h, into (a + b, a - b), for h = 1, 2, .. D/2, in float32. */
static void butterfly(float *x, int D)
{
    for (int h = 1; h < D; h *= 2)
        for (int j = 0; j < D; j++)
            if ((j & h) == 0) {
                float a = x[j], b = x[j + h];
                x[j] = a + b;
                x[j + h] = a - b;
            }
}

/* Exact: W is the Sylvester matrix, W W = D I on small integers (every sum
 * below 2^24, so float32 adds exactly), and ref's butterfly is the test's. */
START_TEST(test_rotate_exact)
{
    tu_rng r;
    tu_seed(&r, 0x40747u);
    float x[256], y[256], w[256];
    for (int D = 1; D <= 256; D *= 2) {
        for (int c = 0; c < D && D <= 64; c++) {         /* column c: W e_c */
            memset(x, 0, sizeof x);
            x[c] = 1.0f;
            ref_tier_butterfly(x, (size_t)D);
            for (int i = 0; i < D; i++)
                TU_CHECK(x[i] == (__builtin_popcount((unsigned)(i & c)) % 2 ? -1.0f : 1.0f),
                         "D %d: W[%d][%d] = %g", D, i, c, (double)x[i]);
        }
        for (int trial = 0; trial < 20; trial++) {
            for (int i = 0; i < D; i++)
                x[i] = y[i] = w[i] = (float)tu_int(&r, -128, 128);
            ref_tier_butterfly(y, (size_t)D);
            butterfly(w, D);
            TU_OK(memcmp(y, w, (size_t)D * sizeof *y) == 0);
            ref_tier_butterfly(y, (size_t)D);
            for (int i = 0; i < D; i++)
                TU_CHECK(y[i] == (float)D * x[i], "D %d: (W W x)[%d] = %g, D x = %g", D, i, (double)y[i],
                         (double)((float)D * x[i]));
        }
        /* random float32 inputs: the test's butterfly and ref's agree bit for bit */
        for (int i = 0; i < D; i++)
            y[i] = w[i] = (float)tu_gauss(&r);
        ref_tier_butterfly(y, (size_t)D);
        butterfly(w, D);
        TU_OK(memcmp(y, w, (size_t)D * sizeof *y) == 0);
    }
}
END_TEST

/* A tier token's codes are §18.2's of W x 2^-L (x its key after the
 * balancer, or its value), bit for bit, and what is read back is within
 * §19.13's bound of its input. */
START_TEST(test_rotate_codes_bound)
{
    long rows = 0, values = 0;
    double worst = 0.0;
    for (int seed = 0; seed < 60; seed++) {
        tu_rng r;
        tu_seed(&r, 0x407a7eu + (uint64_t)seed);
        int L = tu_int(&r, 0, 7), D = 1 << L, N = tu_int(&r, 8, 40), G = tu_int(&r, 1, 3), n_obs = 4;
        int bits = tu_int(&r, 1, 4), balance = tu_int(&r, 0, 1);
        float *k = malloc((size_t)N * D * sizeof *k), *v = malloc((size_t)N * D * sizeof *v);
        float *q = malloc((size_t)n_obs * G * D * sizeof *q), *gk = malloc((size_t)D * sizeof *gk);
        float *gv = malloc((size_t)D * sizeof *gv), *y = malloc((size_t)D * sizeof *y);
        unsigned char *code = malloc((size_t)D);
        TU_OK(k && v && q && gk && gv && y && code);
        outlier_prompt(&r, N, D, G, n_obs, k, v, q);
        kvr_cache *c = tier_cache(N, D, G, bits, balance, 1);
        TU_EQ(kvr_prefill(c, 0, N, k, v, n_obs, q), KVR_OK);
        const ref_head *h = kvr_cache_head(c, 0, 0);
        TU_OK(h->n_tier > 0);
        size_t B = ref_quant_row_bytes((size_t)D, bits);
        for (int j = 0; j < h->n_tier; j++, rows++) {
            long p = h->tier_pos[j];
            TU_EQ(kvr_reconstruct(c, 0, 0, p, gk, gv), KVR_OK);
            for (int kv = 0; kv < 2; kv++) {
                const float *x = (kv ? v : k) + (size_t)p * D;
                const uint16_t *zs = (kv ? h->tier_vq : h->tier_kq) + 2 * (size_t)j;
                const unsigned char *stored = (kv ? h->tier_v : h->tier_k) + (size_t)j * B;
                const float *back = kv ? gv : gk;
                double sum_x = 0.0;
                for (int i = 0; i < D; i++) {
                    int e = !kv && h->tier_bal ? h->tier_bal[i] : 0;
                    y[i] = ldexpf(x[i], -e);
                    sum_x += fabs((double)y[i]);
                }
                butterfly(y, D);
                for (int i = 0; i < D; i++)
                    y[i] = ldexpf(y[i], -L);
                uint16_t zs2[2];
                TU_EQ(ref_quant_row(y, (size_t)D, bits, code, zs2), KVR_OK);
                TU_OK(zs2[0] == zs[0] && zs2[1] == zs[1] && memcmp(code, stored, B) == 0);
                /* spec §19.13: |x' - x| <= D B + gamma (sum |y'| + sum |x|), times 2^e */
                float *yd = malloc((size_t)D * sizeof *yd);
                TU_OK(yd != NULL);
                ref_dequant_row(stored, zs, (size_t)D, bits, yd);
                double sum_y = 0.0;
                for (int i = 0; i < D; i++)
                    sum_y += fabs((double)yd[i]);
                free(yd);
                double u = ldexp(1.0, -24), gamma = L * u / (1.0 - L * u);
                double bound = D * ref_quant_bound(zs[0], zs[1], bits) + gamma * (sum_y + sum_x);
                for (int i = 0; i < D; i++, values++) {
                    int e = !kv && h->tier_bal ? h->tier_bal[i] : 0;
                    double err = fabs((double)back[i] - x[i]), b = ldexp(bound, e);
                    TU_CHECK(err <= b, "seed %d position %ld %s channel %d: error %g, bound %g", seed, p,
                             kv ? "value" : "key", i, err, b);
                    worst = fmax(worst, err / b);
                }
            }
        }
        free(k); free(v); free(q); free(gk); free(gv); free(y); free(code);
        kvr_cache_free(c);
    }
    printf("rotation: %ld tier rows coded as W x 2^-L bit for bit; %ld values within the bound (worst %.3g of it)\n",
           rows, values, worst);
}
END_TEST

/* On keys with outlier channels, the rotation lowers a 4-bit tier's logit
 * error (a one-sided binomial test over 60 seeds against a coin). */
START_TEST(test_rotate_helps)
{
    check_helps("rotation", seeds_better(0x407e1u, 60, 4, 0, 1), 60);
}
END_TEST

/* ---- the complete tier (spec §19.11) and mikv ------------------------------ */

START_TEST(test_complete_plan_sweep)
{
    static const double ratios[] = {0.1, 0.17, 0.2, 0.25, 0.3, 0.4, 0.6};
    static const long contexts[] = {64, 300, 2048, 32768};
    static const int dims[] = {8, 32, 64, 128};
    long planned = 0, refused = 0;
    char name[64];
    for (size_t a = 0; a < sizeof ratios / sizeof *ratios; a++)
        for (size_t b = 0; b < sizeof contexts / sizeof *contexts; b++)
            for (size_t d = 0; d < sizeof dims / sizeof *dims; d++)
                for (int bits = 2; bits <= 4; bits++)
                    for (int bal = 0; bal < 2; bal++) {
                        snprintf(name, sizeof name, "mikv/bits=%d/balance=%d", bits, bal);
                        long ctx = contexts[b];
                        size_t D = (size_t)dims[d], kv = 2 * D * 2, tq = 8 + 2 * ((D * bits + 7) / 8 + 4);
                        size_t budget = (size_t)floor(ratios[a] * (double)kvr_full_bytes(ctx, dims[d], KVR_F16));
                        /* the least a complete tier needs: 4 sinks, a window token, the rest at b bits */
                        size_t least = 4 * kv + (kv + 4) + (size_t)(ctx - 5) * tq + (bal ? 4 * D : 0);
                        kvr_config cfg;
                        int status = kvr_method_config(name, ratios[a], ctx, dims[d], KVR_F16, &cfg);
                        if (kv + 4 <= tq) {
                            TU_EQ(status, KVR_EINVAL);   /* a tier token dearer than an exact one */
                            continue;
                        }
                        if (least > budget) {
                            TU_CHECK(status == KVR_EBUDGET, "%s at %g of %ld, D %zu: planned", name,
                                     ratios[a], ctx, D);
                            refused++;
                            continue;
                        }
                        if (status == KVR_EBUDGET && strstr(kvr_last_error(), "no candidate"))
                            continue;                    /* a window but no room for a candidate */
                        TU_CHECK(status == KVR_OK, "%s at %g of %ld, D %zu: %s", name, ratios[a], ctx, D,
                                 kvr_last_error());
                        TU_CHECK(kvr_head_bytes(&cfg, dims[d]) <= budget, "%s at %g of %ld, D %zu: %zu > %zu",
                                 name, ratios[a], ctx, D, kvr_head_bytes(&cfg, dims[d]), budget);
                        TU_EQ((long)cfg.sinks + cfg.window + cfg.candidates + cfg.tier_tokens, ctx);
                        TU_EQ(cfg.depth, 0);
                        TU_EQ(cfg.tier_balance, bal);
                        planned++;
                    }
    printf("complete tier plans: %ld planned, %ld refused as too small\n", planned, refused);
    TU_OK(planned > 50);
    TU_OK(refused > 50);                          /* both sides of the boundary are exercised */
}
END_TEST

START_TEST(test_complete_run)
{
    int D = 64, H = 2, G = 2, ctx = 400;
    kvr_config cfg;
    TU_EQ(kvr_method_config("mikv", 0.25, ctx, D, KVR_F16, &cfg), KVR_OK);
    TU_OK(cfg.tier_tokens > 0 && cfg.candidates > 0);
    kvr_cache *c;
    TU_EQ(kvr_cache_create(&c, 1, H, H * G, D, &cfg, KVR_BACKEND_REF), KVR_OK);
    tu_rng r;
    tu_seed(&r, 0xc0de);
    int P = 200, n_obs = 32;
    float *k = malloc((size_t)P * H * D * sizeof *k), *v = malloc((size_t)P * H * D * sizeof *v);
    float *q = malloc((size_t)n_obs * H * G * D * sizeof *q), *out = malloc((size_t)H * G * D * sizeof *out);
    TU_OK(k && v && q && out);
    tu_fill(&r, k, (size_t)P * H * D, 0.0, 1.0);
    tu_fill(&r, v, (size_t)P * H * D, 0.0, 1.0);
    tu_fill(&r, q, (size_t)n_obs * H * G * D, 0.0, 1.0);
    TU_EQ(kvr_prefill(c, 0, P, k, v, n_obs, q), KVR_OK);
    for (int t = P; t < ctx; t++) {
        tu_fill(&r, k, (size_t)H * D, 0.0, 1.0);
        tu_fill(&r, v, (size_t)H * D, 0.0, 1.0);
        tu_fill(&r, q, (size_t)H * G * D, 0.0, 1.0);
        TU_EQ(kvr_append(c, 0, 1, k, v), KVR_OK);
        TU_EQ(kvr_attend(c, 0, q, out, 0), KVR_OK);
        tu_assert_heads_ok(c);
        for (int h = 0; h < H; h++) {
            const ref_head *hd = kvr_cache_head(c, 0, h);
            TU_CHECK(hd->n_vague == 0, "step %d head %d: %ld tokens went to the bulk", t, h, hd->n_vague);
        }
    }
    const ref_head *hd = kvr_cache_head(c, 0, 0);
    TU_EQ(hd->n_tier, cfg.tier_tokens);           /* at the planned context the tier is exactly full */
    free(k); free(v); free(q); free(out);
    kvr_cache_free(c);
}
END_TEST

/* ---- configuration checks -------------------------------------------------- */

START_TEST(test_config_refused)
{
    kvr_config cfg = tu_config(1, 2, 2, 0, 0, KVR_IMP_H2O);
    cfg.tier_tokens = 4;
    cfg.tier_bits = 5;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);
    cfg.tier_bits = 0;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);     /* tokens without bits */
    cfg.tier_bits = 2;
    cfg.tier_promote = -1.0;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);
    cfg.tier_promote = INFINITY;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);
    cfg.tier_promote = 0.1;
    cfg.candidates = 0;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);     /* a tier needs candidates */
    cfg.candidates = 2;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_OK);
    kvr_config m;
    TU_EQ(kvr_method_config("kvreviver/bits=0", 0.25, 512, 8, KVR_F16, &m), KVR_OK);
    TU_EQ(m.tier_tokens, 0);
    TU_EQ(kvr_method_config("kvreviver/bits=5", 0.25, 512, 8, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("kvreviver/tier=1", 0.25, 512, 8, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("kvreviver/promote=-1", 0.25, 512, 8, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("h2o/bits=2", 0.25, 512, 8, KVR_F16, &m), KVR_EINVAL);
    cfg.tier_balance = 2;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);
    cfg.tier_balance = 0;
    cfg.tier_rotate = 2;
    TU_EQ(kvr_config_check(&cfg, 8), KVR_EINVAL);
    cfg.tier_rotate = 1;                             /* spec §19.13: a power-of-two head_dim */
    TU_EQ(kvr_config_check(&cfg, 8), KVR_OK);
    TU_EQ(kvr_config_check(&cfg, 1), KVR_OK);
    TU_EQ(kvr_config_check(&cfg, 12), KVR_EINVAL);
    cfg.tier_tokens = 0;                             /* no tier: nothing to rotate */
    TU_EQ(kvr_config_check(&cfg, 12), KVR_OK);
    TU_EQ(kvr_method_config("kvreviver/rotate=1", 0.25, 2048, 64, KVR_F16, &m), KVR_OK);
    TU_EQ(m.tier_rotate, 1);
    TU_EQ(kvr_method_config("kvreviver/rotate=1", 0.25, 2048, 48, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("kvreviver/rotate=2", 0.25, 2048, 64, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("mikv/rotate=1", 0.25, 2048, 64, KVR_F16, &m), KVR_OK);
    TU_EQ(m.tier_rotate + m.tier_balance, 2);
    TU_EQ(kvr_method_config("mikv/bits=1", 0.25, 2048, 64, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("mikv/share=0.1", 0.25, 2048, 64, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("mikv/balance=2", 0.25, 2048, 64, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("kvreviver/tier=most", 0.25, 2048, 64, KVR_F16, &m), KVR_EINVAL);
    TU_EQ(kvr_method_config("mikv", 0.1, 2048, 64, KVR_F16, &m), KVR_EBUDGET);   /* 2 bits need 15.6% */
    TU_EQ(kvr_method_config("kvreviver/bits=2/tier=all/balance=1", 0.25, 2048, 64, KVR_F16, &m), KVR_OK);
    TU_EQ((long)m.sinks + m.window + m.candidates + m.tier_tokens, 2048);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tier");
    TCase *tc = tu_tcase(s, "lifecycle");
    tcase_add_loop_test(tc, test_lifecycle_model, 0, 300);
    tc = tu_tcase(s, "prefill");
    tcase_add_test(tc, test_prefill_ranks);
    tc = tu_tcase(s, "dequantization");
    tcase_add_test(tc, test_dequant_bound);
    tc = tu_tcase(s, "promotion");
    tcase_add_test(tc, test_promotion_exact_set);
    tc = tu_tcase(s, "planner");
    tcase_add_test(tc, test_plan_sweep);
    tc = tu_tcase(s, "api");
    tcase_add_loop_test(tc, test_api_random, 0, 150);
    tcase_add_test(tc, test_config_refused);
    tcase_add_test(tc, test_balance_exponents);
    tcase_add_test(tc, test_balance_helps);
    tcase_add_test(tc, test_rotate_exact);
    tcase_add_test(tc, test_rotate_codes_bound);
    tcase_add_test(tc, test_rotate_helps);
    tcase_add_test(tc, test_complete_plan_sweep);
    tcase_add_test(tc, test_complete_run);
    return tu_run(s);
}
