/* config.c: default configuration, consistency checks and methods by name
 * (spec §13, doc/methods.md). */
#include <config.h>
#include <math.h>
#include <string.h>
#include "internal.h"

void kvr_config_default(kvr_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sinks = 4;
    cfg->window = 0;
    cfg->candidates = 0;
    cfg->depth = 3;
    cfg->width = 0;
    cfg->seed = UINT64_C(0x6B7672657669766B);   /* "kvrevivk" */
    cfg->rows = KVR_ROWS_MEDIAN;
    cfg->centre = 1;
    cfg->shrink = 0;
    cfg->importance = KVR_IMP_SNAPKV;
    cfg->obs_window = 32;
    cfg->pool_kernel = 5;
    cfg->pool = KVR_POOL_AVG;
    cfg->elem = KVR_F32;
    cfg->sketch_share = 0.5;
    cfg->recent_share = 0.5;
}

int kvr_config_check(const kvr_config *cfg, int head_dim)
{
    if (!cfg)
        return kvr_fail(KVR_EINVAL, "config is NULL");
    if (head_dim < 1 || head_dim > 65536)
        return kvr_fail(KVR_EINVAL, "head_dim = %d is not in [1, 65536]", head_dim);
    if (cfg->sinks < 0)
        return kvr_fail(KVR_EINVAL, "config.sinks = %d is negative", cfg->sinks);
    if (cfg->window < 1)
        return kvr_fail(KVR_EBUDGET, "config.window = %d: the window must hold at least one token", cfg->window);
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
    return KVR_OK;
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
    {"kvreviver", "KVReviver, paper-faithful: median rows, no shrinkage"},
    {"kvreviver-mean", "KVReviver with mean rows"},
    {"kvreviver-shrink", "KVReviver with shrinkage toward the mean"},
    {"kvreviver-nocentre", "KVReviver without exact centring"},
};

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
    if (!name || !out)
        return kvr_fail(KVR_EINVAL, "kvr_method_config: name or cfg is NULL");
    kvr_config_default(&cfg);
    cfg.elem = elem;
    if (!strcmp(name, "full")) {
        ratio = 1.0;
        cfg.depth = 0;
        cfg.importance = KVR_IMP_NONE;
    } else if (!strcmp(name, "streaming")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_NONE;
    } else if (!strcmp(name, "h2o")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_H2O;
        cfg.recent_share = 0.5;
    } else if (!strcmp(name, "snapkv")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_SNAPKV;
        cfg.recent_share = -1.0;
    } else if (!strcmp(name, "tova")) {
        cfg.depth = 0;
        cfg.importance = KVR_IMP_TOVA;
        cfg.recent_share = 0.0;
    } else if (!strcmp(name, "kvreviver")) {
        /* the defaults */
    } else if (!strcmp(name, "kvreviver-mean")) {
        cfg.rows = KVR_ROWS_MEAN;
    } else if (!strcmp(name, "kvreviver-shrink")) {
        cfg.shrink = 1;
    } else if (!strcmp(name, "kvreviver-nocentre")) {
        cfg.centre = 0;
    } else {
        return kvr_fail(KVR_EINVAL, "method '%s' is unknown", name);
    }
    int status = kvr_plan(ratio, context, head_dim, &cfg);
    if (status != KVR_OK)
        return status;
    *out = cfg;
    return KVR_OK;
}
