/* budget.c: the bytes a head cache holds and the planner (spec §9).
 *
 * Every array of per-head state is counted: exact keys and values in their
 * element type, candidate positions, importance scores, the sketch with its
 * signed counts and occupancies, and the running sums for centring: the
 * arrays of the table in ref/head.c.  Scalars (lengths, counters, the
 * configuration) are not counted: a full cache has them too. */
#include <config.h>
#include <math.h>
#include "internal.h"

/* spec §18.5: bytes of one token's key and value in an exact part: 2 D e in
 * the element type, or per vector ceil(D b / 8) code bytes and a float16
 * zero point and scale. */
size_t kvr_exact_token_bytes(const kvr_config *cfg, int head_dim)
{
    size_t D = (size_t)head_dim;
    int b = kvr_store_bits(cfg->store);
    if (b == 0)
        return 2 * D * kvr_elem_size(cfg->elem);
    return 2 * ((D * (size_t)b + 7) / 8 + 4);
}

/* spec §18.6: bytes of KIVI's body at capacity Q with groups of G: the fill
 * buffer (keys of the group filling, elem), key codes and per-channel zero
 * point and scale of the m = floor(Q/G) complete groups, value codes and
 * per-token zero point and scale. */
size_t kvr_kivi_body_bytes(size_t Q, size_t G, size_t D, size_t e, int bits)
{
    size_t row = (D * (size_t)bits + 7) / 8, m = G > 0 ? Q / G : 0;
    size_t fill = (G < Q ? G : Q) * D * e;
    return fill + m * G * row + m * D * 4 + Q * (row + 4);
}

/* spec §9.1: the bytes of every array of the head cache's table, as the
 * reference counts them (ref_cfg_bytes). */
size_t kvr_head_bytes(const kvr_config *cfg, int head_dim)
{
    return ref_cfg_bytes(cfg, head_dim);
}

size_t kvr_full_bytes(long context, int head_dim, kvr_elem elem)
{
    if (context < 0 || head_dim < 0)
        return 0;
    return (size_t)context * 2 * (size_t)head_dim * kvr_elem_size(elem);
}

/* floor(ratio * full) in float64, clamped to SIZE_MAX (spec §9.2 step 0). */
static size_t budget_of(double ratio, size_t full)
{
    double budget_d = floor(ratio * (double)full);
    return budget_d >= (double)SIZE_MAX ? SIZE_MAX : (size_t)budget_d;
}

/* spec §18.6: the KIVI planner.  Every token is kept: Q = M - R with
 * M = context - S.  For each group size to try, the residual R is the given
 * one or the largest in 1..M with head_bytes <= budget, found by scanning
 * down between the bounds that the linear lower bound of head_bytes,
 * base + R * slope, gives (an upper bound on R when slope > 0; a lower one
 * when a quantized token costs more than an exact one, slope < 0); the first
 * group that fits is taken.  Arguments were checked by kvr_plan; on failure
 * cfg is unchanged. */
static int plan_kivi(double ratio, long context, int head_dim, kvr_config *cfg)
{
    kvr_config p = *cfg;
    int b = p.kivi_bits;
    if (b < 2 || b > 4)
        return kvr_fail(KVR_EINVAL, "kvr_plan: kivi_bits = %d is not 2, 3 or 4", b);
    if (p.kivi_group < 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: kivi_group = %d is negative", p.kivi_group);
    if (p.window < 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: the KIVI residual (window) = %d is negative", p.window);
    size_t D = (size_t)head_dim, e = kvr_elem_size(p.elem), kv = 2 * D * e;
    size_t full = kvr_full_bytes(context, head_dim, p.elem), budget = budget_of(ratio, full);
    long S = p.sinks < context - 1 ? p.sinks : context - 1, M = context - S;
    if (p.window > M)                             /* no point holding more than the context */
        p.window = (int)M;
    const long tries[3] = {32, 64, 128};
    int n_try = p.kivi_group > 0 ? 1 : 3;
    size_t row = (D * (size_t)b + 7) / 8, least = 0;
    long G = 0;
    for (int i = 0; i < n_try; i++) {
        G = p.kivi_group > 0 ? p.kivi_group : tries[i];
        long R_hi = p.window > 0 ? p.window : M, R_lo = p.window > 0 ? p.window : 1;
        if (p.window == 0) {
            size_t K = (size_t)G * row + 4 * D;           /* one complete group's key codes and parameters */
            double per_q = (double)(row + 4) + (double)K / (double)G;
            double slope = (double)kv - per_q;            /* lower bound = base + R * slope */
            double base = (double)S * (double)kv + (double)M * per_q - (double)K;
            if ((size_t)(R_hi) > budget / kv) R_hi = (long)(budget / kv);
            /* the float64 error of these bounds, in positions, widened */
            double margin = slope != 0.0 ? 4.0 + (fabs(base) + (double)budget) * 0x1p-48 / fabs(slope) : 0.0;
            if (slope > 0.0) {                            /* an upper bound on R */
                double cap = floor(((double)budget - base) / slope) + margin;
                if (cap < (double)R_hi) R_hi = cap < 0.0 ? 0 : (long)cap;
            } else if (slope < 0.0) {                     /* quantizing costs more: a lower bound */
                double floor_r = ceil((base - (double)budget) / -slope) - margin;
                if (floor_r > (double)R_lo) R_lo = floor_r > (double)M ? M + 1 : (long)floor_r;
            } else if (base > (double)budget) {
                R_lo = R_hi + 1;                          /* nothing fits */
            }
        }
        for (long R = R_hi; R >= R_lo; R--) {
            size_t bytes = (size_t)(S + R) * kv + kvr_kivi_body_bytes((size_t)(M - R), (size_t)G, D, e, b);
            if (bytes <= budget) {
                p.sinks = (int)S;
                p.window = (int)R;
                p.candidates = 0;
                p.depth = 0;
                p.width = 0;
                p.importance = KVR_IMP_NONE;
                p.store = KVR_STORE_ELEM;
                p.kivi_group = (int)G;
                p.kivi_tokens = (int)(M - R);
                *cfg = p;
                return KVR_OK;
            }
        }
        long R_least = p.window > 0 ? p.window : 1;
        least = (size_t)(S + R_least) * kv + kvr_kivi_body_bytes((size_t)(M - R_least), (size_t)G, D, e, b);
    }
    return kvr_fail(KVR_EBUDGET, "kvr_plan: kivi: a budget of %zu bytes (ratio %g of %zu) cannot keep all %ld tokens at %d bits: "
                    "%ld sinks, a residual of %d and groups of %ld need %zu bytes",
                    budget, ratio, full, context, b, S, p.window > 0 ? p.window : 1, G, least);
}

/* spec §18.8: candidates over a KIVI body.  KIVI's planner (§18.6, the
 * same bits and group) gives the group G and the largest residual R0; the
 * window keeps R = max(1, floor(recent_share R0)) of it (R = min(R0, W)
 * when recent_share < 0), lowered while the head with one candidate is
 * over the budget (the window's scores cost bytes KIVI does not pay), and
 * the candidates take what is left: C = 1 + floor((budget - bytes(R, 1)) /
 * (bytes(R, 2) - bytes(R, 1))) (the first candidate also brings the
 * window's scores), at most the body's M - R positions.  The
 * bytes are the reference's count (kvr_head_bytes).  KVR_EINVAL beside a
 * tier, a sketch or quantized exact parts; KVR_EBUDGET when no candidate
 * fits; on failure cfg is unchanged. */
static int plan_body(double ratio, long context, int head_dim, kvr_config *cfg)
{
    if (cfg->tier_bits > 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: a KIVI body (kivi_bits = %d) and a quantized tier (tier_bits = %d): "
                        "the body holds every token", cfg->kivi_bits, cfg->tier_bits);
    if (cfg->depth > 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: a KIVI body (kivi_bits = %d) and a sketch (depth = %d): "
                        "the body holds every token", cfg->kivi_bits, cfg->depth);
    if (cfg->store != KVR_STORE_ELEM)
        return kvr_fail(KVR_EINVAL, "kvr_plan: a KIVI body (kivi_bits = %d) keeps its exact parts in elem, not %s",
                        cfg->kivi_bits, kvr_store_name(cfg->store));
    kvr_config k = *cfg;
    int status = plan_kivi(ratio, context, head_dim, &k);
    if (status != KVR_OK)
        return status;
    size_t budget = budget_of(ratio, kvr_full_bytes(context, head_dim, cfg->elem));
    long M = (long)k.window + k.kivi_tokens, R0 = k.window;
    long R = cfg->recent_share < 0.0 ? (R0 < cfg->obs_window ? R0 : cfg->obs_window)
                                      : (long)floor(cfg->recent_share * (double)R0);
    if (R < 1) R = 1;
    kvr_config p = k;
    p.importance = cfg->importance;
    p.tier_bits = 0;
    p.tier_tokens = 0;
    for (;; R--) {
        p.window = (int)R;
        p.kivi_tokens = (int)(M - R);
        p.candidates = 1;                          /* the first candidate brings the window's scores */
        size_t one = kvr_head_bytes(&p, head_dim);
        p.candidates = 2;
        size_t per = kvr_head_bytes(&p, head_dim) - one;
        if (one <= budget) {
            long C = 1 + (long)((budget - one) / per);
            if (C > M - R) C = M - R;
            if (C > INT32_MAX) C = INT32_MAX;
            p.candidates = (int)C;
            *cfg = p;
            return KVR_OK;
        }
        if (R == 1)
            return kvr_fail(KVR_EBUDGET, "kvr_plan: candidates over a %d-bit KIVI body: a budget of %zu bytes "
                            "(ratio %g) holds the body and a window of one, but no candidate (%zu bytes)",
                            cfg->kivi_bits, budget, ratio, one);
    }
}

/* spec §19.11: the planner's step 4 and 5 for a complete tier
 * (tier_share < 0): every middle token is held, exact or in the tier, so
 * the tier's Q = M - R - C with M = context - S.  The M tier tokens are
 * paid first (and the balancer's D exponents, spec §19.12); an exact window
 * token then costs cw - tq more than a tier token and a candidate cc - tq,
 * and the window takes recent_share of what is left, as in step 4.  p holds
 * the configuration after steps 0-3 (sinks capped, no sketch: a complete
 * tier leaves the bulk nothing); on success *cfg = *p. */
static int plan_complete_tier(kvr_config *p, long context, int head_dim, size_t budget, size_t used,
                              size_t kv, kvr_config *cfg)
{
    size_t D = (size_t)head_dim;
    size_t tq = 8 + 2 * ((D * (size_t)p->tier_bits + 7) / 8 + 4);   /* spec §19.6 */
    size_t bal = p->tier_balance ? 4 * D : 0;                       /* spec §19.12 */
    size_t cw = kv + 4, cc = kv + 8;
    long M = context - p->sinks;
    if (cw <= tq)
        return kvr_fail(KVR_EINVAL, "kvr_plan: a complete tier's token (%zu bytes at %d bits) costs no less than an "
                        "exact one (%zu): hold them exact instead", tq, p->tier_bits, cw);
    size_t dw = cw - tq, dc = cc - tq;
    if ((size_t)M > (SIZE_MAX - used - bal - dw) / tq || used + (size_t)M * tq + bal + dw > budget)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: a budget of %zu bytes cannot keep all %ld tokens: %d sinks, "
                        "%ld tokens at %d bits and a window of one need %zu bytes", budget, context, p->sinks,
                        M - 1, p->tier_bits, used + (size_t)(M - 1) * tq + bal + cw);
    size_t rest = budget - used - (size_t)M * tq - bal;
    long R, C;
    if (p->recent_share < 0.0)
        R = (long)(rest / dw) < p->obs_window ? (long)(rest / dw) : p->obs_window;
    else
        R = (long)floor(p->recent_share * (double)rest / (double)dw);
    if (R < 1) R = 1;
    if ((size_t)R * dw > rest) R = (long)(rest / dw);
    C = (long)((rest - (size_t)R * dw) / dc);
    if (R > M) R = M;
    if (R + C > M) C = M - R;
    if (C == 0 && R < M)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: %zu bytes beside the complete tier hold a window of %ld but no "
                        "candidate (the tier needs scores, spec §19.1)", rest, R);
    p->window = (int)R;
    p->candidates = (int)C;
    p->tier_tokens = (int)(M - R - C);
    p->depth = 0;                                 /* the bulk receives nothing */
    p->width = 0;
    *cfg = *p;
    return KVR_OK;
}

int kvr_plan(double ratio, long context, int head_dim, kvr_config *cfg)
{
    if (!cfg)
        return kvr_fail(KVR_EINVAL, "kvr_plan: cfg is NULL");
    if (!(ratio > 0.0 && ratio <= 1.0))
        return kvr_fail(KVR_EINVAL, "kvr_plan: ratio = %g is not in (0, 1] (the budget is a share of the "
                        "full cache's bytes)", ratio);
    if (context < 1 || context > INT32_MAX)
        return kvr_fail(KVR_EINVAL, "kvr_plan: context = %ld is not in [1, 2^31-1]", context);
    if (head_dim < 1 || head_dim > 65536)
        return kvr_fail(KVR_EINVAL, "kvr_plan: head_dim = %d is not in [1, 65536]", head_dim);
    if (cfg->sinks < 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: cfg.sinks = %d is negative", cfg->sinks);
    if (cfg->depth < 0)
        return kvr_fail(KVR_EINVAL, "kvr_plan: cfg.depth = %d is negative", cfg->depth);
    if (!(cfg->sketch_share >= 0.0 && cfg->sketch_share < 1.0))
        return kvr_fail(KVR_EINVAL, "kvr_plan: cfg.sketch_share = %g is not in [0, 1)", cfg->sketch_share);
    if (!(cfg->recent_share <= 1.0) || !isfinite(cfg->recent_share))
        return kvr_fail(KVR_EINVAL, "kvr_plan: cfg.recent_share = %g is not a finite number <= 1",
                        cfg->recent_share);

    if (cfg->tier_bits < 0 || cfg->tier_bits > 4)
        return kvr_fail(KVR_EINVAL, "kvr_plan: tier_bits = %d is not in [0, 4]", cfg->tier_bits);
    if (cfg->tier_bits > 0 && (!(cfg->tier_share < 1.0) || !isfinite(cfg->tier_share)))
        return kvr_fail(KVR_EINVAL, "kvr_plan: tier_share = %g is not a finite number < 1 (below 0: a complete tier)",
                        cfg->tier_share);
    if (cfg->kivi_bits != 0 && cfg->importance != KVR_IMP_NONE)
        return plan_body(ratio, context, head_dim, cfg);     /* spec §18.8 */
    if (cfg->kivi_bits != 0)
        return plan_kivi(ratio, context, head_dim, cfg);
    if (cfg->store != KVR_STORE_ELEM && cfg->store != KVR_STORE_Q8 && cfg->store != KVR_STORE_Q4)
        return kvr_fail(KVR_EINVAL, "kvr_plan: store = %d is not elem, q8 or q4", (int)cfg->store);

    kvr_config p = *cfg;
    size_t D = (size_t)head_dim;
    size_t kv = kvr_exact_token_bytes(&p, head_dim);   /* spec §18.5 */
    size_t full = kvr_full_bytes(context, head_dim, p.elem);
    size_t budget = budget_of(ratio, full);

    /* spec §9.2 step 1: the whole context fits exactly: keep everything. */
    p.sinks = (int)(p.sinks < context ? p.sinks : context);
    if (full <= budget) {
        p.window = (int)(context - p.sinks);
        if (p.window < 1) { p.window = 1; p.sinks = (int)context - 1; }
        p.candidates = 0;
        p.depth = 0;
        p.width = 0;
        p.tier_tokens = 0;
        *cfg = p;
        return KVR_OK;
    }
    /* step 2: sinks */
    size_t used = (size_t)p.sinks * kv;
    if (used + kv > budget)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: budget of %zu bytes (ratio %g of %zu) cannot hold %d sink%s and a window of one token (%zu bytes)",
                        budget, ratio, full, p.sinks, p.sinks == 1 ? "" : "s", used + kv);
    /* spec §19.11: a complete tier plans its own steps 3-5 */
    if (p.tier_bits > 0 && p.importance != KVR_IMP_NONE && p.tier_share < 0.0)
        return plan_complete_tier(&p, context, head_dim, budget, used, kv, cfg);
    /* step 3: the sketch gets floor(sketch_share * budget) bytes */
    p.width = 0;
    if (p.depth > 0 && p.sketch_share > 0.0) {
        size_t share = (size_t)floor(p.sketch_share * (double)budget);
        size_t fixed = p.centre ? 2 * D * 8 : 0;
        size_t bucket = (size_t)p.depth * (2 * D * 4 + 4 + 4);
        if (share < fixed + bucket)               /* at least one bucket per row */
            share = fixed + bucket;
        if (used + share + kv > budget)
            return kvr_fail(KVR_EBUDGET, "kvr_plan: budget of %zu bytes cannot hold %d sink%s, the sketch's minimum (%zu bytes: running sums and one bucket per row of depth %d) and a window of one token",
                            budget, p.sinks, p.sinks == 1 ? "" : "s", fixed + bucket, p.depth);
        size_t w = (share - fixed) / bucket;
        if (w > INT32_MAX) w = INT32_MAX;
        p.width = (int)w;
        used += fixed + (size_t)p.depth * w * (2 * D * 4 + 4 + 4);
    }
    if (p.width == 0)
        p.depth = 0;
    if (used + kv > budget)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: after the sketch, %zu of %zu bytes are left: not enough for a window of one token",
                        budget > used ? budget - used : 0, budget);
    /* step 4: window and candidates share the rest; with a quantized tier
     * (spec §19.7) they share floor((1 - tier_share) rest) and the tier takes
     * what they leave */
    size_t rest = budget - used;
    int tier = p.tier_bits > 0 && p.importance != KVR_IMP_NONE;
    size_t bal = tier && p.tier_balance ? 4 * D : 0;   /* spec §19.12: the balancer's exponents */
    if (bal > 0 && rest >= bal + kv)              /* paid before the split, when it leaves a window */
        rest -= bal;
    else
        bal = 0;                                  /* too small for it: no tier (Q = 0 below) */
    size_t erest = tier ? (size_t)floor((1.0 - p.tier_share) * (double)rest) : rest;
    long max_exact = context - p.sinks;           /* no point holding more than the context */
    long R, C;
    size_t cw = kv + 4, cc = kv + 8;
    if (p.importance == KVR_IMP_NONE) {
        R = (long)(rest / kv);
        C = 0;
    } else {
        if (p.recent_share < 0.0)
            R = (long)(erest / cw) < p.obs_window ? (long)(erest / cw) : p.obs_window;
        else
            R = (long)floor(p.recent_share * (double)erest / (double)cw);
        if (R < 1) R = 1;
        if ((size_t)R * cw > erest) R = (long)(erest / cw);
        C = (long)((erest - (size_t)R * cw) / cc);
    }
    if (R < 1)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: %zu bytes left cannot hold a window of one token%s", erest,
                        tier ? " beside the quantized tier's share" : "");
    if (R > max_exact) R = max_exact;
    if (R + C > max_exact) C = max_exact - R;
    if (C == 0 && (size_t)R * kv < rest) {        /* no candidates: no scores to pay for */
        R = (long)(rest / kv);
        if (R > max_exact) R = max_exact;
    }
    if (R < 1) {                                  /* the sinks are the whole context (a quantized token is */
        R = 1;                                    /* cheap enough, spec §18.5): the last one is the window, */
        p.sinks--;                                /* the same bytes (C = 0: no scores) */
        C = 0;
    }
    if (R > INT32_MAX) R = INT32_MAX;
    if (C > INT32_MAX) C = INT32_MAX;
    /* spec §19.7: the tier's Q from what the window and candidates leave */
    long Q = 0;
    if (tier && C > 0 && (bal > 0 || !p.tier_balance)) {
        size_t tq = 8 + 2 * ((D * (size_t)p.tier_bits + 7) / 8 + 4);
        Q = (long)((rest - (size_t)R * cw - (size_t)C * cc) / tq);
        if (Q > max_exact - R - C) Q = max_exact - R - C;
        if (Q > INT32_MAX - R - C - p.sinks) Q = INT32_MAX - R - C - p.sinks;
        if (Q < 0) Q = 0;
    }
    p.window = (int)R;
    p.candidates = (int)C;
    p.tier_tokens = (int)Q;
    *cfg = p;
    return KVR_OK;
}
