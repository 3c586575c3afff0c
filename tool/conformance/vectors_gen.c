/* vectors_gen.c: levels 1 (hash), 2 (storage rounding) and 3 (planner) of the conformance vectors
 * (doc/porting.md): grids of inputs and the outputs the spec gives for them,
 * all bit-exact. */
#include <config.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"
#include "common/message.h"
#include "vectors.h"

/* Level 1, spec §5: the 64-bit hash, its sign, and its bucket for several
 * widths, over a grid of (seed, layer, kv_head, row, position) that includes
 * the extremes of every input. */
int vec_write_hashes(vec_writer *w)
{
    static const uint64_t seeds[] = { 0, 1, UINT64_C(0x6B7672657669766B), UINT64_MAX };
    static const uint32_t layers[] = { 0, 1, 31 }, heads[] = { 0, 3 }, rows[] = { 0, 1, 4 };
    static const uint64_t positions[] = { 0, 1, 2, 3, 1000, 65535, 2147483647 };
    static const int32_t widths[] = { 1, 2, 3, 7, 8, 64, 1000, 65536 };
#define LEN(a) (sizeof (a) / sizeof (a)[0])
    const size_t n = LEN(seeds) * LEN(layers) * LEN(heads) * LEN(rows) * LEN(positions);
    const size_t nw = LEN(widths);
    uint64_t *grid = malloc(n * 5 * sizeof *grid), *hash = malloc(n * sizeof *hash);
    int32_t *bucket = malloc(n * nw * sizeof *bucket), *sign = malloc(n * sizeof *sign);
    int status = 1;
    if (!grid || !hash || !bucket || !sign) {
        msg_error("vectors: out of memory");
        goto done;
    }
    size_t j = 0;
    for (size_t a = 0; a < LEN(seeds); a++)
        for (size_t b = 0; b < LEN(layers); b++)
            for (size_t c = 0; c < LEN(heads); c++)
                for (size_t r = 0; r < LEN(rows); r++)
                    for (size_t p = 0; p < LEN(positions); p++, j++) {
                        uint64_t *g = grid + j * 5;
                        g[0] = seeds[a]; g[1] = layers[b]; g[2] = heads[c]; g[3] = rows[r]; g[4] = positions[p];
                        hash[j] = kvr_hash(seeds[a], layers[b], heads[c], rows[r], positions[p]);
                        sign[j] = kvr_hash_sign(hash[j]);
                        for (size_t k = 0; k < nw; k++)
                            bucket[j * nw + k] = (int32_t)kvr_hash_bucket(hash[j], (uint32_t)widths[k]);
                    }
    size_t s_grid[2] = { n, 5 }, s_w[1] = { nw }, s_n[1] = { n }, s_b[2] = { n, nw };
    if (vw_array(w, "inputs/hash/grid.npy", KVR_NPY_U64, 2, s_grid, grid, "input",
                 "level 1 (spec 5): rows of (seed, layer, kv_head, row, position)") == 0
        && vw_array(w, "inputs/hash/widths.npy", KVR_NPY_I32, 1, s_w, widths, "input",
                    "level 1 (spec 5.3): sketch widths w for the buckets") == 0
        && vw_array(w, "expected/hash/hash.npy", KVR_NPY_U64, 1, s_n, hash, "exact",
                    "level 1 (spec 5.2): kvr_hash of each grid row") == 0
        && vw_array(w, "expected/hash/sign.npy", KVR_NPY_I32, 1, s_n, sign, "exact",
                    "level 1 (spec 5.3): sign (+1 or -1) of each grid row") == 0
        && vw_array(w, "expected/hash/bucket.npy", KVR_NPY_I32, 2, s_b, bucket, "exact",
                    "level 1 (spec 5.3): bucket of each grid row for each width") == 0)
        status = 0;
done:
    free(grid); free(hash); free(bucket); free(sign);
    return status;
}

/* The float32 with bit pattern u. */
static float f32_of(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Level 2, spec §4.1: rounding float32 inputs to f16 and bf16, over values
 * that are not representable: ties (the even neighbour wins), values just
 * off a tie, the edges of overflow (the store fails with KVR_ERANGE where
 * the expected value is infinite, spec §4.2) and of underflow (f16
 * subnormals, float32 subnormals for bf16), and a spread of random values.
 * The grid is symmetric: every value is followed by its negation. */
int vec_write_elem(vec_writer *w)
{
    static const uint32_t special[] = {
        0x00000000u,                /* 0 */
        0x3F800000u, 0x3F801000u, 0x3F803000u, 0x3F801001u, 0x3F800FFFu,   /* f16 ties at 1 */
        0x3F808000u, 0x3F818000u, 0x3F808001u, 0x3F807FFFu,   /* bf16 ties at 1 */
        0x477FE000u,                /* 65504, the largest f16 */
        0x477FE001u, 0x477FEFFFu,   /* just above 65504: rounds to it */
        0x477FF000u,                /* 65520, the tie above 65504: to infinity */
        0x477FFFFFu, 0x47800000u,   /* above: infinity */
        0x38800000u,                /* 2^-14, the smallest normal f16 */
        0x387FE000u, 0x387FF000u,   /* below it: subnormal, and a tie between the largest
                                       subnormal and 2^-14 */
        0x33800000u,                /* 2^-24, the smallest f16 subnormal */
        0x33000000u,                /* 2^-25: a tie between 0 and 2^-24, to 0 */
        0x33000001u,                /* just above: 2^-24 */
        0x33C00000u,                /* 1.5 * 2^-24: a tie, to 2 * 2^-24 */
        0x34200000u,                /* 2.5 * 2^-24: a tie, to 2 * 2^-24 */
        0x32800000u,                /* 2^-26: to 0 */
        0x7F7F0000u,                /* the largest bf16 */
        0x7F7F7FFFu,                /* just below its tie: rounds to it */
        0x7F7F8000u,                /* its tie: to infinity (odd neighbour) */
        0x7F7FFFFFu,                /* FLT_MAX: bf16 infinity */
        0x00008000u, 0x00018000u,   /* float32 subnormal ties for bf16 */
        0x00000001u, 0x007FFFFFu,   /* float32 subnormals */
        0x00800000u,                /* FLT_MIN */
        0x40490FDBu, 0x3DCCCCCDu,   /* pi, 0.1 */
    };
    enum { N_RANDOM = 64 };
    const size_t n = 2 * (LEN(special) + N_RANDOM);
    float *x = malloc(n * sizeof *x), *h = malloc(n * sizeof *h), *b = malloc(n * sizeof *b);
    int status = 1;
    if (!x || !h || !b) {
        msg_error("vectors: out of memory");
        goto done;
    }
    uint64_t st = UINT64_C(0x656C656D);
    for (size_t i = 0; i < n / 2; i++) {
        uint32_t u;
        if (i < LEN(special)) {
            u = special[i];
        } else {                    /* a random fraction, exponents 2^-30 .. 2^16 */
            st += UINT64_C(0x9E3779B97F4A7C15);
            uint64_t z = (st ^ (st >> 31)) * UINT64_C(0xBF58476D1CE4E5B9);
            z ^= z >> 29;
            u = (uint32_t)((uint32_t)(97 + z % 47) << 23 | (uint32_t)(z >> 40 & 0x7FFFFFu));
        }
        x[2 * i] = f32_of(u);
        x[2 * i + 1] = -x[2 * i];
    }
    for (size_t i = 0; i < n; i++) {
        h[i] = kvr_elem_round(KVR_F16, x[i]);
        b[i] = kvr_elem_round(KVR_BF16, x[i]);
    }
    size_t s_n[1] = { n };
    if (vw_array(w, "inputs/elem/x.npy", KVR_NPY_F32, 1, s_n, x, "input",
                 "level 2 (spec 4.1): float32 values to round, each followed by its negation") == 0
        && vw_array(w, "expected/elem/f16.npy", KVR_NPY_F32, 1, s_n, h, "exact",
                    "level 2 (spec 4.1): each value rounded to f16, as float32 (inf: overflow, "
                    "which a store refuses with KVR_ERANGE, spec 4.2)") == 0
        && vw_array(w, "expected/elem/bf16.npy", KVR_NPY_F32, 1, s_n, b, "exact",
                    "level 2 (spec 4.1): each value rounded to bf16, as float32 (inf: overflow, "
                    "which a store refuses with KVR_ERANGE, spec 4.2)") == 0)
        status = 0;
done:
    free(x); free(h); free(b);
    return status;
}

/* Level 3, spec §9.2: the planner from the paper-faithful configuration
 * (spec §13) with the grid row's element type, depth and shares, over three
 * blocks of rows:
 *   a  (ratio, context, head_dim, elem, depth) with the shares 0.5 and 0.5;
 *   b  sketch shares 0.1, 0.3 and 0.7 (not powers of two) and budgets past
 *      2^24 bytes, so that step 3's product floor(sketch_share * budget) in
 *      float64 differs from one in float32; recent share 0.6;
 *   c  no sketch, and budgets built so that the rest of step 4 is exactly k
 *      windows of cw bytes: there recent_share * rest / cw, left to right,
 *      and recent_share * (rest / cw) floor to different integers for some
 *      shares, so the order of step 4 is observable;
 *   d  quantized storage (store= q8, q4) and the quantized tier (tier_bits 2,
 *      4, two tier shares), with and without a sketch: the bytes of every
 *      quantized vector include its float16 zero point and scale (spec
 *      §18.5, §19.6), so a port that leaves them out plans more tokens;
 *   e  candidates over a KIVI body (kivi_bits 2, 3, 4, spec §18.8), no
 *      sketch, recent shares 0.5, 0.2 and -1 (R = W): KIVI's group and
 *      residual, then the window and the candidates from its residual.
 * Infeasible budgets give status KVR_EBUDGET and zeros. */
enum { PLAN_COLS = 11, PLAN_OUT = 8 };

static void plan_row(double *g, int32_t *p, uint64_t *bytes, double ratio, long context, int dim,
                     kvr_elem elem, int depth, double sketch_share, double recent_share,
                     kvr_store store, int tier_bits, double tier_share, int kivi_bits)
{
    g[0] = ratio; g[1] = (double)context; g[2] = dim; g[3] = elem; g[4] = depth;
    g[5] = sketch_share; g[6] = recent_share; g[7] = store; g[8] = tier_bits; g[9] = tier_share;
    g[10] = kivi_bits;
    kvr_config cfg;
    kvr_config_paper(&cfg);
    cfg.elem = elem;
    cfg.depth = depth;
    cfg.sketch_share = sketch_share;
    cfg.recent_share = recent_share;
    cfg.store = store;
    cfg.tier_bits = tier_bits;
    cfg.tier_share = tier_share;
    cfg.kivi_bits = kivi_bits;
    int st = kvr_plan(ratio, context, dim, &cfg);
    p[0] = st;
    if (st == KVR_OK) {
        p[1] = cfg.sinks; p[2] = cfg.window; p[3] = cfg.candidates;
        p[4] = cfg.depth; p[5] = cfg.width; p[6] = cfg.tier_tokens; p[7] = cfg.kivi_group;
        *bytes = kvr_head_bytes(&cfg, dim);
    }
}

int vec_write_planner(vec_writer *w)
{
    static const double ratios[] = { 0.02, 0.05, 0.1, 0.25, 0.5, 1.0 };
    static const long contexts[] = { 1, 7, 100, 2048, 32768 };
    static const int dims[] = { 64, 128 }, depths[] = { 1, 3, 5 };
    static const kvr_elem elems[] = { KVR_F32, KVR_F16, KVR_BF16 };
    static const double sketch_shares[] = { 0.1, 0.3, 0.7 };
    static const long big_contexts[] = { 100, 2048, 134217757, 2147483647 };   /* budgets past 2^24 */
    static const double recent_shares[] = { 0.1, 0.3, 0.35, 0.6, 0.7, 0.9 };
    static const int windows[] = { 3, 7, 10, 20, 50, 100 };
    const size_t na = LEN(ratios) * LEN(contexts) * LEN(dims) * LEN(elems) * LEN(depths);
    const size_t nb = LEN(ratios) * LEN(big_contexts) * LEN(dims) * 2 * LEN(sketch_shares);
    const size_t nc = LEN(dims) * LEN(elems) * LEN(windows) * LEN(recent_shares);
    static const double d_ratios[] = { 0.05, 0.1, 0.25 };
    static const long d_contexts[] = { 2048, 32768 };
    static const kvr_store stores[] = { KVR_STORE_ELEM, KVR_STORE_Q8, KVR_STORE_Q4 };
    static const int tier_bits[] = { 0, 2, 4 };
    static const double tier_shares[] = { 0.3, 0.5 };
    const size_t nd = LEN(d_ratios) * LEN(d_contexts) * LEN(dims) * 2 * LEN(stores) * LEN(tier_bits)
                      * LEN(tier_shares);
    static const double e_ratios[] = { 0.15, 0.2, 0.25, 0.35 }, e_recent[] = { 0.5, 0.2, -1.0 };
    static const long e_contexts[] = { 100, 2048, 32768 };
    const size_t ne = LEN(e_ratios) * LEN(e_contexts) * LEN(dims) * 2 * 3 * LEN(e_recent);
    const size_t n = na + nb + nc + nd + ne;
    double *grid = malloc(n * PLAN_COLS * sizeof *grid);
    int32_t *plan = calloc(n * PLAN_OUT, sizeof *plan);
    uint64_t *bytes = calloc(n, sizeof *bytes);
    int status = 1;
    if (!grid || !plan || !bytes) {
        msg_error("vectors: out of memory");
        goto done;
    }
    size_t j = 0;
#define ROW(...) (plan_row(grid + j * PLAN_COLS, plan + j * PLAN_OUT, bytes + j, __VA_ARGS__), j++)
    for (size_t a = 0; a < LEN(ratios); a++)             /* block a */
        for (size_t b = 0; b < LEN(contexts); b++)
            for (size_t c = 0; c < LEN(dims); c++)
                for (size_t e = 0; e < LEN(elems); e++)
                    for (size_t r = 0; r < LEN(depths); r++)
                        ROW(ratios[a], contexts[b], dims[c], elems[e], depths[r], 0.5, 0.5, KVR_STORE_ELEM, 0, 0.5, 0);
    for (size_t a = 0; a < LEN(ratios); a++)             /* block b: f16, depths 1 and 3 */
        for (size_t b = 0; b < LEN(big_contexts); b++)
            for (size_t c = 0; c < LEN(dims); c++)
                for (size_t r = 0; r < 2; r++)
                    for (size_t s = 0; s < LEN(sketch_shares); s++)
                        ROW(ratios[a], big_contexts[b], dims[c], KVR_F16, depths[r], sketch_shares[s], 0.6,
                            KVR_STORE_ELEM, 0, 0.5, 0);
    for (size_t c = 0; c < LEN(dims); c++)               /* block c: depth 0, context 4096 */
        for (size_t e = 0; e < LEN(elems); e++)
            for (size_t k = 0; k < LEN(windows); k++)
                for (size_t s = 0; s < LEN(recent_shares); s++) {
                    /* budget = 4 sinks + k windows (kv + 4 bytes each), plus half a byte
                     * so that floor(ratio * full) lands on it whatever the rounding */
                    double kv = 2.0 * dims[c] * (double)kvr_elem_size(elems[e]);
                    double full = 4096.0 * kv, budget = 4 * kv + windows[k] * (kv + 4) + 0.5;
                    ROW(budget / full, 4096, dims[c], elems[e], 0, 0.5, recent_shares[s], KVR_STORE_ELEM, 0, 0.5, 0);
                }
    for (size_t a = 0; a < LEN(d_ratios); a++)           /* block d: store= and the tier, f16 */
        for (size_t b = 0; b < LEN(d_contexts); b++)
            for (size_t c = 0; c < LEN(dims); c++)
                for (size_t r = 0; r < 2; r++)
                    for (size_t q = 0; q < LEN(stores); q++)
                        for (size_t t = 0; t < LEN(tier_bits); t++)
                            for (size_t s = 0; s < LEN(tier_shares); s++)
                                ROW(d_ratios[a], d_contexts[b], dims[c], KVR_F16, (int)r, 0.5, 0.5,
                                    stores[q], tier_bits[t], tier_shares[s], 0);
    for (size_t a = 0; a < LEN(e_ratios); a++)           /* block e: a KIVI body, f32 and f16 */
        for (size_t b = 0; b < LEN(e_contexts); b++)
            for (size_t c = 0; c < LEN(dims); c++)
                for (size_t e = 0; e < 2; e++)
                    for (int kb = 2; kb <= 4; kb++)
                        for (size_t r = 0; r < LEN(e_recent); r++)
                            ROW(e_ratios[a], e_contexts[b], dims[c], elems[e], 0, 0.5, e_recent[r],
                                KVR_STORE_ELEM, 0, 0.5, kb);
#undef ROW
    size_t s_grid[2] = { n, PLAN_COLS }, s_plan[2] = { n, PLAN_OUT }, s_n[1] = { n };
    vw_line(w, "scenario planner sinks=4 importance=snapkv obs_window=32 centre=1 -- kvr_plan from the "
               "paper-faithful configuration (kvr_config_paper, spec 13) with the grid row's elem (0 f32, "
               "1 f16, 2 bf16), depth, sketch_share, recent_share, store (0 elem, 1 q8, 2 q4), tier_bits, "
               "tier_share and kivi_bits (a KIVI body under the candidates, spec 18.8)");
    if (vw_array(w, "inputs/planner/grid.npy", KVR_NPY_F64, 2, s_grid, grid, "input",
                 "level 3 (spec 9.2): rows of (ratio, context, head_dim, elem, depth, sketch_share, "
                 "recent_share, store, tier_bits, tier_share, kivi_bits)") == 0
        && vw_array(w, "expected/planner/plan.npy", KVR_NPY_I32, 2, s_plan, plan, "exact",
                    "level 3 (spec 9.2, 18.8, 19.7): (status, sinks, window, candidates, depth, width, tier_tokens, "
                    "kivi_group) per row (kivi_tokens = context - sinks - window where kivi_bits > 0); "
                    "status 0 ok or -5 budget too small (then zeros)") == 0
        && vw_array(w, "expected/planner/bytes.npy", KVR_NPY_U64, 1, s_n, bytes, "exact",
                    "level 3 (spec 9.1): bytes one head cache holds with the plan (0 when infeasible)") == 0)
        status = 0;
done:
    free(grid); free(plan); free(bytes);
    return status;
}
