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

/* spec §9.1: the sum of the bytes of every array of the head cache's table
 * (ref_head_arrays), each at full capacity in its own type. */
size_t kvr_head_bytes(const kvr_config *cfg, int head_dim)
{
    ref_array a[REF_HEAD_N_ARRAYS];
    ref_head_arrays(cfg, head_dim, a);
    size_t bytes = 0;
    for (int i = 0; i < REF_HEAD_N_ARRAYS; i++)
        bytes += a[i].count * a[i].elem_size;
    return bytes;
}

size_t kvr_full_bytes(long context, int head_dim, kvr_elem elem)
{
    if (context < 0 || head_dim < 0)
        return 0;
    return (size_t)context * 2 * (size_t)head_dim * kvr_elem_size(elem);
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

    kvr_config p = *cfg;
    size_t D = (size_t)head_dim, es = kvr_elem_size(p.elem);
    size_t kv = 2 * D * es;
    size_t full = kvr_full_bytes(context, head_dim, p.elem);
    double budget_d = floor(ratio * (double)full);
    size_t budget = budget_d >= (double)SIZE_MAX ? SIZE_MAX : (size_t)budget_d;

    /* spec §9.2 step 1: the whole context fits exactly: keep everything. */
    p.sinks = (int)(p.sinks < context ? p.sinks : context);
    if (full <= budget) {
        p.window = (int)(context - p.sinks);
        if (p.window < 1) { p.window = 1; p.sinks = (int)context - 1; }
        p.candidates = 0;
        p.depth = 0;
        p.width = 0;
        *cfg = p;
        return KVR_OK;
    }
    /* step 2: sinks */
    size_t used = (size_t)p.sinks * kv;
    if (used + kv > budget)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: budget of %zu bytes (ratio %g of %zu) cannot hold %d sinks and a window of one token (%zu bytes)",
                        budget, ratio, full, p.sinks, used + kv);
    /* step 3: the sketch gets floor(sketch_share * budget) bytes */
    p.width = 0;
    if (p.depth > 0 && p.sketch_share > 0.0) {
        size_t share = (size_t)floor(p.sketch_share * (double)budget);
        size_t fixed = p.centre ? 2 * D * 8 : 0;
        size_t bucket = (size_t)p.depth * (2 * D * 4 + 4 + 4);
        if (share < fixed + bucket)               /* at least one bucket per row */
            share = fixed + bucket;
        if (used + share + kv > budget)
            return kvr_fail(KVR_EBUDGET, "kvr_plan: budget of %zu bytes cannot hold %d sinks, the sketch's minimum (%zu bytes: running sums and one bucket per row of depth %d) and a window of one token",
                            budget, p.sinks, fixed + bucket, p.depth);
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
    /* step 4: window and candidates share the rest */
    size_t rest = budget - used;
    long max_exact = context - p.sinks;           /* no point holding more than the context */
    long R, C;
    if (p.importance == KVR_IMP_NONE) {
        R = (long)(rest / kv);
        C = 0;
    } else {
        size_t cw = kv + 4, cc = kv + 8;
        if (p.recent_share < 0.0)
            R = (long)(rest / cw) < p.obs_window ? (long)(rest / cw) : p.obs_window;
        else
            R = (long)floor(p.recent_share * (double)rest / (double)cw);
        if (R < 1) R = 1;
        if ((size_t)R * cw > rest) R = (long)(rest / cw);
        C = (long)((rest - (size_t)R * cw) / cc);
    }
    if (R < 1)
        return kvr_fail(KVR_EBUDGET, "kvr_plan: %zu bytes left cannot hold a window of one token", rest);
    if (R > max_exact) R = max_exact;
    if (R + C > max_exact) C = max_exact - R;
    if (C == 0 && (size_t)R * kv < rest) {        /* no candidates: no scores to pay for */
        R = (long)(rest / kv);
        if (R > max_exact) R = max_exact;
    }
    if (R > INT32_MAX) R = INT32_MAX;
    if (C > INT32_MAX) C = INT32_MAX;
    p.window = (int)R;
    p.candidates = (int)C;
    *cfg = p;
    return KVR_OK;
}
