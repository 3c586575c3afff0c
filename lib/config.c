/* config.c: default configuration, consistency checks and methods by name
 * (spec §13, doc/methods.md). */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

void kvr_config_default(kvr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sinks = 4;
    cfg->window = 0;
    cfg->candidates = 0;
    cfg->depth = 1;
    cfg->width = 0;
    cfg->seed = UINT64_C(0x6B7672657669766B);   /* "kvrevivk" */
    cfg->rows = KVR_ROWS_MEDIAN;
    cfg->centre = 1;
    cfg->shrink = 0;
    cfg->vague = KVR_VAGUE_MOMENT;
    cfg->var_cap = 0.0;
    cfg->revive = 0.0;
    cfg->importance = KVR_IMP_H2O;
    cfg->obs_window = 32;
    cfg->pool_kernel = 5;
    cfg->pool = KVR_POOL_AVG;
    cfg->elem = KVR_F32;
    cfg->sketch_share = 0.1;
    cfg->recent_share = 0.5;
    cfg->tier_bits = 0;          /* spec §19: no tier unless bits= turns it on */
    cfg->tier_share = 0.5;
    cfg->tier_promote = 0.0;
    cfg->tier_balance = 0;       /* spec §19.12: no channel balancer */
    cfg->tier_rotate = 0;        /* spec §19.13: no rotation */
}

int kvr_config_check(const kvr_config *cfg, int head_dim)
{
    if (!cfg)
        return kvr_fail(KVR_EINVAL, "config is NULL");
    if (head_dim < 1 || head_dim > 65536)
        return kvr_fail(KVR_EINVAL, "head_dim = %d is not in [1, 65536]", head_dim);
    if (cfg->sinks < 0)
        return kvr_fail(KVR_EINVAL, "config.sinks = %d is negative", cfg->sinks);
    if (cfg->window < 1)   /* kvr_config_default leaves 0: the planner fills it */
        return kvr_fail(KVR_EINVAL, "config.window = %d: the configuration has no plan (a window of at "
                        "least one token); fill it with kvr_plan or kvr_method_config first", cfg->window);
    if (cfg->candidates < 0)
        return kvr_fail(KVR_EINVAL, "config.candidates = %d is negative", cfg->candidates);
    if ((long)cfg->sinks + cfg->window + cfg->candidates > INT32_MAX)
        return kvr_fail(KVR_EINVAL, "config: sinks + window + candidates exceeds 2^31-1");
    if (cfg->depth < 0 || cfg->depth > 64)
        return kvr_fail(KVR_EINVAL, "config.depth = %d is not in [0, 64]", cfg->depth);
    if (cfg->width < 0)
        return kvr_fail(KVR_EINVAL, "config.width = %d is negative", cfg->width);
    if (cfg->rows != KVR_ROWS_MEDIAN && cfg->rows != KVR_ROWS_MEAN)
        return kvr_fail(KVR_EINVAL, "config.rows = %d is not median (0) or mean (1)", (int)cfg->rows);
    if (cfg->centre != 0 && cfg->centre != 1)
        return kvr_fail(KVR_EINVAL, "config.centre = %d is not 0 or 1", cfg->centre);
    if (cfg->shrink != 0 && cfg->shrink != 1)
        return kvr_fail(KVR_EINVAL, "config.shrink = %d is not 0 or 1", cfg->shrink);
    if (cfg->vague != KVR_VAGUE_RECONSTRUCT && cfg->vague != KVR_VAGUE_MOMENT)
        return kvr_fail(KVR_EINVAL, "config.vague = %d is not reconstruct (0) or moment (1)", (int)cfg->vague);
    if (!(cfg->var_cap >= 0.0))
        return kvr_fail(KVR_EINVAL, "config.var_cap = %g is not >= 0 (Inf allowed)", cfg->var_cap);
    if (!(cfg->revive >= 0.0) || !isfinite(cfg->revive))
        return kvr_fail(KVR_EINVAL, "config.revive = %g is not a finite number >= 0", cfg->revive);
    if (cfg->vague == KVR_VAGUE_MOMENT && !cfg->centre && cfg->depth > 0 && cfg->width > 0)
        return kvr_fail(KVR_EINVAL, "config: the moment route (vague = 1) needs exact centring (centre = 1)");
    if (cfg->importance < KVR_IMP_NONE || cfg->importance > KVR_IMP_TOVA)
        return kvr_fail(KVR_EINVAL, "config.importance = %d is unknown", (int)cfg->importance);
    if (cfg->importance == KVR_IMP_NONE && cfg->candidates > 0)
        return kvr_fail(KVR_EINVAL, "config.candidates = %d needs an importance rule (importance is none)", cfg->candidates);
    if (cfg->obs_window < 1)
        return kvr_fail(KVR_EINVAL, "config.obs_window = %d is not positive", cfg->obs_window);
    if (cfg->pool_kernel < 1 || cfg->pool_kernel % 2 == 0)
        return kvr_fail(KVR_EINVAL, "config.pool_kernel = %d is not a positive odd number", cfg->pool_kernel);
    if (cfg->pool != KVR_POOL_AVG && cfg->pool != KVR_POOL_MAX)
        return kvr_fail(KVR_EINVAL, "config.pool = %d is not avg (0) or max (1)", (int)cfg->pool);
    if (cfg->elem != KVR_F32 && cfg->elem != KVR_F16 && cfg->elem != KVR_BF16)
        return kvr_fail(KVR_EINVAL, "config.elem = %d is not f32, f16 or bf16", (int)cfg->elem);
    if (cfg->store != KVR_STORE_ELEM && cfg->store != KVR_STORE_Q8 && cfg->store != KVR_STORE_Q4)
        return kvr_fail(KVR_EINVAL, "config.store = %d is not elem (0), q8 (1) or q4 (2)", (int)cfg->store);
    if (cfg->kivi_bits != 0) {                    /* spec §18.6 */
        if (cfg->kivi_bits < 2 || cfg->kivi_bits > 4)
            return kvr_fail(KVR_EINVAL, "config.kivi_bits = %d is not 0, 2, 3 or 4", cfg->kivi_bits);
        if (cfg->kivi_group < 1 || cfg->kivi_tokens < 0)
            return kvr_fail(KVR_EINVAL, "config: kivi_group = %d must be positive and kivi_tokens = %d not negative",
                            cfg->kivi_group, cfg->kivi_tokens);
        if ((cfg->depth > 0 && cfg->width > 0) || cfg->store != KVR_STORE_ELEM)
            return kvr_fail(KVR_EINVAL, "config: a KIVI body (kivi_bits = %d) has no sketch and its exact parts in elem",
                            cfg->kivi_bits);
        if (cfg->candidates > cfg->kivi_tokens)        /* spec §18.8: candidates over the body */
            return kvr_fail(KVR_EINVAL, "config: %d candidates over a KIVI body of %d positions: the candidates are body positions",
                            cfg->candidates, cfg->kivi_tokens);
        if ((long)cfg->sinks + cfg->window + cfg->kivi_tokens > INT32_MAX)
            return kvr_fail(KVR_EINVAL, "config: sinks + window + kivi_tokens exceeds 2^31-1");
    } else if (cfg->kivi_group != 0 || cfg->kivi_tokens != 0) {
        return kvr_fail(KVR_EINVAL, "config: kivi_group = %d and kivi_tokens = %d need kivi_bits", cfg->kivi_group, cfg->kivi_tokens);
    }
    /* spec §19.1: the quantized tier */
    if (cfg->tier_bits < 0 || cfg->tier_bits > 4 || cfg->tier_tokens < 0)
        return kvr_fail(KVR_EINVAL, "config: tier_bits = %d is not in [0, 4] or tier_tokens = %d is negative",
                        cfg->tier_bits, cfg->tier_tokens);
    if (cfg->tier_balance != 0 && cfg->tier_balance != 1)
        return kvr_fail(KVR_EINVAL, "config.tier_balance = %d is not 0 or 1", cfg->tier_balance);
    if (cfg->tier_rotate != 0 && cfg->tier_rotate != 1)
        return kvr_fail(KVR_EINVAL, "config.tier_rotate = %d is not 0 or 1", cfg->tier_rotate);
    if (cfg->tier_rotate && cfg->tier_tokens > 0 && (head_dim & (head_dim - 1)) != 0)
        return kvr_fail(KVR_EINVAL, "config.tier_rotate = 1 needs a power-of-two head_dim (the Walsh-Hadamard "
                        "transform of spec §19.13); head_dim = %d is not one", head_dim);
    if (!(cfg->tier_promote >= 0.0) || !isfinite(cfg->tier_promote))
        return kvr_fail(KVR_EINVAL, "config.tier_promote = %g is not a finite number >= 0", cfg->tier_promote);
    if (cfg->tier_tokens > 0) {
        if (cfg->tier_bits == 0)
            return kvr_fail(KVR_EINVAL, "config: tier_tokens = %d needs tier_bits", cfg->tier_tokens);
        if (cfg->kivi_bits != 0 || cfg->candidates == 0 || cfg->importance == KVR_IMP_NONE)
            return kvr_fail(KVR_EINVAL, "config: a quantized tier (tier_tokens = %d) needs candidates and an importance rule, "
                            "and no KIVI body", cfg->tier_tokens);
        if ((long)cfg->sinks + cfg->window + cfg->candidates + cfg->tier_tokens > INT32_MAX)
            return kvr_fail(KVR_EINVAL, "config: sinks + window + candidates + tier_tokens exceeds 2^31-1");
    }
    return KVR_OK;
}

static void paper_config(kvr_config *cfg);

void kvr_config_paper(kvr_config *cfg)
{
    kvr_config_default(cfg);
    paper_config(cfg);
}

/* ---- methods by name --------------------------------------------------- */

typedef struct {
    const char *name;
    const char *what;
} method_entry;

static const method_entry methods[] = {
    {"full", "no compression"},
    {"streaming", "StreamingLLM: sinks + recent window"},
    {"h2o", "H2O: accumulated-attention heavy hitters + recent window"},
    {"snapkv", "SnapKV: pooled observation-window scores at prefill"},
    {"tova", "TOVA: evict the lowest current attention"},
    {"kvreviver", "KVReviver, the measured winner: exact parts, a 4-bit tier (spec §19), the moment route's bulk"},
    {"kvreviver-moment", "KVReviver's moment route (spec §17) without a tier: the default before the tier"},
    {"kvreviver-paper", "KVReviver, paper-faithful: reconstruct every vague token, median rows"},
    {"kvreviver-mean", "kvreviver-paper with mean rows"},
    {"kvreviver-shrink", "kvreviver-paper with shrinkage toward the mean"},
    {"kvreviver-nocentre", "kvreviver-paper without exact centring"},
};

/* The paper-faithful configuration (doc/methods.md): every vague token
 * reconstructed (spec §8, §11), 3 rows combined by the median, centring, no
 * shrinkage, SnapKV prefill scores, half of the budget to the sketch. */
static void paper_config(kvr_config *cfg)
{
    cfg->depth = 3;
    cfg->vague = KVR_VAGUE_RECONSTRUCT;
    cfg->var_cap = 0.0;
    cfg->revive = 0.0;
    cfg->importance = KVR_IMP_SNAPKV;
    cfg->recent_share = 0.5;
    cfg->sketch_share = 0.5;
}

/* A number for a lever: finite, or "inf" where inf_ok. */
static int lever_number(const char *key, const char *val, int inf_ok, double *out)
{
    char *end;
    double x = strtod(val, &end);
    if (end == val || *end != '\0' || isnan(x) || (!inf_ok && isinf(x)))
        return kvr_fail(KVR_EINVAL, "lever %s=%s: not a %snumber", key, val, inf_ok ? "" : "finite ");
    *out = x;
    return KVR_OK;
}

/* Which levers a method takes (doc/methods.md §13.4). */
typedef enum {
    LEVERS_NONE,       /* full */
    LEVERS_EVICTION,   /* streaming, h2o, snapkv, tova: store */
    LEVERS_KVREVIVER,  /* the kvreviver methods: all but KIVI's */
    LEVERS_KIVI,       /* kivi: bits, group, residual */
    LEVERS_MIKV        /* mikv: bits (2..4), balance, rotate, recent, obs */
} lever_family;

/* An integer lever in [lo, hi]. */
static int lever_int(const char *key, const char *val, long lo, long hi, int *out)
{
    double x;
    int status = lever_number(key, val, 0, &x);
    if (status != KVR_OK)
        return status;
    if (x != floor(x) || x < (double)lo || x > (double)hi)
        return kvr_fail(KVR_EINVAL, "lever %s=%s: not an integer in [%ld, %ld]", key, val, lo, hi);
    *out = (int)x;
    return KVR_OK;
}

/* Apply levers "/key=value/key=value..." to cfg (doc/methods.md §13.4):
 * for the kvreviver methods share, recent, depth, rows, centre, shrink,
 * vague, varcap, revive, importance, store, obs and body; for the eviction
 * methods store and obs; for kivi bits, group and residual.  A lever the method does not
 * take is KVR_EINVAL.  Each value is checked against its lever's range
 * here, so a bad one is reported by the lever's name and range, not by the
 * field or function it feeds; KVR_EINVAL and a message otherwise. */
static int apply_levers(const char *mods, lever_family family, kvr_config *cfg)
{
    while (*mods == '/') {
        mods++;
        size_t len = strcspn(mods, "/");
        char item[64], *eq;
        if (len >= sizeof item)
            return kvr_fail(KVR_EINVAL, "lever '%.40s...' is too long", mods);
        memcpy(item, mods, len);
        item[len] = '\0';
        mods += len;
        eq = strchr(item, '=');
        if (!eq || eq == item || eq[1] == '\0')
            return kvr_fail(KVR_EINVAL, "lever '%s' is not key=value", item);
        *eq = '\0';
        const char *key = item, *val = eq + 1;
        double x = 0.0;
        int status = KVR_OK;
        int is_store = !strcmp(key, "store");
        int is_kivi = !strcmp(key, "group") || !strcmp(key, "residual");
        int is_bits = !strcmp(key, "bits");        /* kivi's bits, or the kvreviver tier's (spec §19.1) */
        int is_obs = !strcmp(key, "obs");          /* the prefill observation window W (spec §6.2) */
        if (family == LEVERS_NONE)
            return kvr_fail(KVR_EINVAL, "lever '%s': the full cache takes no levers", key);
        if (family == LEVERS_MIKV && !is_bits && !is_obs && strcmp(key, "balance") && strcmp(key, "rotate")
            && strcmp(key, "recent"))
            return kvr_fail(KVR_EINVAL, "lever '%s' is unknown for mikv (bits, balance, rotate, recent, obs)", key);
        if (family == LEVERS_MIKV && is_bits) {
            if ((status = lever_int(key, val, 2, 4, &cfg->tier_bits)) != KVR_OK) return status;
            continue;
        }
        if (family == LEVERS_KIVI && !is_kivi && !is_bits)
            return kvr_fail(KVR_EINVAL, "lever '%s' is unknown for kivi (bits, group, residual)", key);
        if (family != LEVERS_KIVI && is_kivi)
            return kvr_fail(KVR_EINVAL, "lever '%s' applies to kivi only", key);
        if (family == LEVERS_EVICTION && is_bits)
            return kvr_fail(KVR_EINVAL, "lever 'bits' applies to kivi and the kvreviver methods only");
        if (family == LEVERS_EVICTION && !is_store && !is_obs)
            return kvr_fail(KVR_EINVAL, "lever '%s' applies to the kvreviver methods only (eviction methods take store= and obs=)", key);
        if (is_obs) {
            if ((status = lever_int(key, val, 1, 65536, &cfg->obs_window)) != KVR_OK) return status;
        } else if (is_store) {
            kvr_store st;
            if (strcmp(val, "q8") && strcmp(val, "q4") && strcmp(val, "elem"))
                return kvr_fail(KVR_EINVAL, "lever store=%s: not q8, q4 or elem", val);
            kvr_store_parse(val, &st);
            cfg->store = st;
        } else if (!strcmp(key, "body")) {            /* spec §18.8: candidates over a KIVI body */
            if ((status = lever_int(key, val, 0, 4, &cfg->kivi_bits)) != KVR_OK) return status;
            if (cfg->kivi_bits == 1)
                return kvr_fail(KVR_EINVAL, "lever body=%s: not 0, 2, 3 or 4", val);
            if (cfg->kivi_bits > 0) {
                cfg->tier_bits = 0;                    /* the body holds every token: no tier, no sketch */
                cfg->depth = 0;
            }
        } else if (is_bits && family == LEVERS_KIVI) {
            if ((status = lever_int(key, val, 2, 4, &cfg->kivi_bits)) != KVR_OK) return status;
        } else if (is_bits) {
            if ((status = lever_int(key, val, 0, 4, &cfg->tier_bits)) != KVR_OK) return status;
        } else if (!strcmp(key, "tier")) {
            if (!strcmp(val, "all")) {                 /* spec §19.11: the complete tier */
                cfg->tier_share = -1.0;
            } else {
                if ((status = lever_number(key, val, 0, &x)) != KVR_OK) return status;
                if (!(x >= 0.0 && x < 1.0))
                    return kvr_fail(KVR_EINVAL, "lever tier=%s: the tier's share is not in [0, 1), or all", val);
                cfg->tier_share = x;
            }
        } else if (!strcmp(key, "balance")) {          /* spec §19.12: the channel balancer */
            if (strcmp(val, "0") && strcmp(val, "1"))
                return kvr_fail(KVR_EINVAL, "lever balance=%s: not 0 or 1", val);
            cfg->tier_balance = val[0] - '0';
        } else if (!strcmp(key, "rotate")) {           /* spec §19.13: the Walsh-Hadamard basis */
            if (strcmp(val, "0") && strcmp(val, "1"))
                return kvr_fail(KVR_EINVAL, "lever rotate=%s: not 0 or 1", val);
            cfg->tier_rotate = val[0] - '0';
        } else if (!strcmp(key, "promote")) {
            if ((status = lever_number(key, val, 0, &x)) != KVR_OK) return status;
            if (!(x >= 0.0))
                return kvr_fail(KVR_EINVAL, "lever promote=%s: the threshold is not >= 0", val);
            cfg->tier_promote = x;
        } else if (!strcmp(key, "group")) {
            if ((status = lever_int(key, val, 1, INT32_MAX, &cfg->kivi_group)) != KVR_OK) return status;
        } else if (!strcmp(key, "residual")) {
            if ((status = lever_int(key, val, 1, INT32_MAX, &cfg->window)) != KVR_OK) return status;
        } else if (!strcmp(key, "share")) {
            if ((status = lever_number(key, val, 0, &x)) == KVR_OK) {
                if (!(x >= 0.0 && x < 1.0))
                    return kvr_fail(KVR_EINVAL, "lever share=%s: the sketch's share of the budget must be "
                                    "in [0, 1)", val);
                cfg->sketch_share = x;
            }
        } else if (!strcmp(key, "recent")) {
            if ((status = lever_number(key, val, 0, &x)) == KVR_OK) {
                if (!(x <= 1.0))
                    return kvr_fail(KVR_EINVAL, "lever recent=%s: the window's share of the exact tokens' "
                                    "bytes must be at most 1 (below 0: a window of obs_window tokens)", val);
                cfg->recent_share = x;
            }
        } else if (!strcmp(key, "depth")) {
            if ((status = lever_number(key, val, 0, &x)) == KVR_OK) {
                if (x != floor(x) || x < 0 || x > 64)
                    return kvr_fail(KVR_EINVAL, "lever depth=%s: not an integer in [0, 64]", val);
                cfg->depth = (int)x;
            }
        } else if (!strcmp(key, "varcap")) {
            if ((status = lever_number(key, val, 1, &x)) == KVR_OK) {
                if (!(x >= 0.0))
                    return kvr_fail(KVR_EINVAL, "lever varcap=%s: the variance cap must be >= 0 (inf allowed)", val);
                cfg->var_cap = x;
            }
        } else if (!strcmp(key, "revive")) {
            if ((status = lever_number(key, val, 0, &x)) == KVR_OK) {
                if (!(x >= 0.0))
                    return kvr_fail(KVR_EINVAL, "lever revive=%s: the revival threshold must be a finite "
                                    "number >= 0", val);
                cfg->revive = x;
            }
        } else if (!strcmp(key, "rows")) {
            if (!strcmp(val, "median")) cfg->rows = KVR_ROWS_MEDIAN;
            else if (!strcmp(val, "mean")) cfg->rows = KVR_ROWS_MEAN;
            else return kvr_fail(KVR_EINVAL, "lever rows=%s: not median or mean", val);
        } else if (!strcmp(key, "vague")) {
            if (!strcmp(val, "reconstruct")) cfg->vague = KVR_VAGUE_RECONSTRUCT;
            else if (!strcmp(val, "moment")) cfg->vague = KVR_VAGUE_MOMENT;
            else return kvr_fail(KVR_EINVAL, "lever vague=%s: not reconstruct or moment", val);
        } else if (!strcmp(key, "importance")) {
            if (!strcmp(val, "h2o")) cfg->importance = KVR_IMP_H2O;
            else if (!strcmp(val, "snapkv")) cfg->importance = KVR_IMP_SNAPKV;
            else if (!strcmp(val, "tova")) cfg->importance = KVR_IMP_TOVA;
            else return kvr_fail(KVR_EINVAL, "lever importance=%s: not h2o, snapkv or tova", val);
        } else if (!strcmp(key, "centre") || !strcmp(key, "shrink")) {
            if (strcmp(val, "0") && strcmp(val, "1"))
                return kvr_fail(KVR_EINVAL, "lever %s=%s: not 0 or 1", key, val);
            *(!strcmp(key, "centre") ? &cfg->centre : &cfg->shrink) = val[0] - '0';
        } else {
            return kvr_fail(KVR_EINVAL, "lever '%s' is unknown (share, recent, depth, rows, centre, shrink, vague, varcap, revive, importance, store, bits, tier, promote, balance, rotate, obs)", key);
        }
        if (status != KVR_OK)
            return status;
    }
    if (*mods)
        return kvr_fail(KVR_EINVAL, "levers '%s' do not start with '/'", mods);
    return KVR_OK;
}

const char *kvr_method_name(int i)
{
    if (i < 0 || i >= (int)(sizeof methods / sizeof methods[0]))
        return NULL;
    return methods[i].name;
}

int kvr_method_config(const char *name, double ratio, long context,
                      int head_dim, kvr_elem elem, kvr_config *out)
{
    kvr_config cfg;
    char base[64];
    if (!name || !out)
        return kvr_fail(KVR_EINVAL, "kvr_method_config: name or cfg is NULL");
    size_t base_len = strcspn(name, "/");
    if (base_len >= sizeof base)
        return kvr_fail(KVR_EINVAL, "method '%.80s' is unknown", name);
    memcpy(base, name, base_len);
    base[base_len] = '\0';
    const char *mods = name + base_len;          /* "" or "/lever=value/..." */
    lever_family family = LEVERS_KVREVIVER;
    kvr_config_default(&cfg);
    cfg.elem = elem;
    if (strcmp(base, "streaming") == 0 || strcmp(base, "h2o") == 0 || strcmp(base, "snapkv") == 0
        || strcmp(base, "tova") == 0)
        family = LEVERS_EVICTION;
    if (!strcmp(base, "full")) {
        family = LEVERS_NONE;
        ratio = 1.0;
        cfg.depth = 0;
        cfg.importance = KVR_IMP_NONE;
    } else if (!strcmp(base, "streaming")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_NONE;
    } else if (!strcmp(base, "h2o")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_H2O;
        cfg.recent_share = 0.5;
    } else if (!strcmp(base, "snapkv")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_SNAPKV;
        cfg.recent_share = -1.0;
    } else if (!strcmp(base, "tova")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_TOVA;
        cfg.recent_share = 0.0;
    } else if (!strcmp(base, "kivi")) {
        /* spec §18.6: every token kept; 2 bits; G and R chosen by the planner */
        family = LEVERS_KIVI;
        cfg.depth = 0;
        cfg.importance = KVR_IMP_NONE;
        cfg.kivi_bits = 2;
    } else if (!strcmp(base, "mikv")) {
        /* doc/methods.md §13.3: H2O (half of the exact bytes for the window),
         * and a complete 2-bit tier (spec §19.11) with the balancer (§19.12)
         * instead of eviction: nothing is dropped, no sketch */
        family = LEVERS_MIKV;
        cfg.depth = 0;
        cfg.importance = KVR_IMP_H2O;
        cfg.recent_share = 0.5;
        cfg.tier_bits = 2;
        cfg.tier_share = -1.0;
        cfg.tier_balance = 1;
    } else if (!strcmp(base, "kvreviver")) {
        /* the measured winner (doc/results.md, the tier's ablation): the
         * defaults and a 4-bit quantized tier (spec §19) */
        cfg.tier_bits = 4;
    } else if (!strcmp(base, "kvreviver-moment")) {
        /* the defaults: the moment route (spec §17) with no tier */
    } else if (!strcmp(base, "kvreviver-paper") || !strcmp(base, "kvreviver-mean")
               || !strcmp(base, "kvreviver-shrink") || !strcmp(base, "kvreviver-nocentre")) {
        paper_config(&cfg);
        cfg.rows = !strcmp(base, "kvreviver-mean") ? KVR_ROWS_MEAN : KVR_ROWS_MEDIAN;
        cfg.shrink = !strcmp(base, "kvreviver-shrink");
        cfg.centre = strcmp(base, "kvreviver-nocentre") != 0;
    } else {
        return kvr_fail(KVR_EINVAL, "method '%s' is unknown", base);
    }
    if (*mods) {
        int status = apply_levers(mods, family, &cfg);
        if (status != KVR_OK)
            return status;
    }
    int status = kvr_plan(ratio, context, head_dim, &cfg);
    if (status == KVR_OK)
        status = kvr_config_check(&cfg, head_dim);
    if (status != KVR_OK)
        return status;
    *out = cfg;
    return KVR_OK;
}
