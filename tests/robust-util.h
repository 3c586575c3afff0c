/* robust-util.h: small helpers shared by the robustness tests (file.c,
 * faults.c): a cache with every part filled, and byte snapshots through
 * kvr_cache_save_mem. */
#ifndef KVR_ROBUST_UTIL_H
#define KVR_ROBUST_UTIL_H

#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "kvreviver.h"

/* Deterministic pseudo-random floats in [-1, 1) (SplitMix64 of a counter). */
static inline float ru_uniform(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    z ^= z >> 31;
    return (float)((double)(z >> 40) / (double)(UINT64_C(1) << 24) * 2.0 - 1.0);
}

static inline void ru_fill(float *x /*[n]*/, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++)
        x[i] = ru_uniform(state);
}

/* Configurations covering every optional array: variant 0 kvreviver
 * (snapkv scores, sketch, centring), 1 eviction (h2o, no sketch), 2 float16
 * with mean rows, shrinkage and no centring, 3 streaming (no scores, no
 * candidates, no sketch), 4 bfloat16 tova with a sketch, 5 the moment
 * route (spec §17) with revival and no variance cap. */
enum { RU_VARIANTS = 6, RU_L = 2, RU_H = 2, RU_Q = 4, RU_D = 8 };
static inline void ru_config(int variant, kvr_config *cfg)
{
    kvr_config_paper(cfg);
    cfg->sinks = 2;
    cfg->window = 4;
    cfg->candidates = 3;
    cfg->depth = 3;
    cfg->width = 5;
    switch (variant) {
    case 1: cfg->depth = 0; cfg->width = 0; cfg->importance = KVR_IMP_H2O; break;
    case 2: cfg->elem = KVR_F16; cfg->rows = KVR_ROWS_MEAN; cfg->shrink = 1; cfg->centre = 0; break;
    case 3: cfg->depth = 0; cfg->candidates = 0; cfg->importance = KVR_IMP_NONE; break;
    case 4: cfg->elem = KVR_BF16; cfg->importance = KVR_IMP_TOVA; cfg->depth = 4; break;
    case 5: cfg->vague = KVR_VAGUE_MOMENT; cfg->revive = 1.5; cfg->var_cap = INFINITY;
            cfg->importance = KVR_IMP_H2O; break;
    default: break;
    }
}

/* A cache of variant `variant` holding `tokens` tokens in each layer, with
 * a decode attention after each append so scores are non-trivial. */
static inline kvr_cache *ru_cache(int variant, int tokens, uint64_t seed)
{
    kvr_config cfg;
    ru_config(variant, &cfg);
    kvr_cache *c = NULL;
    ck_assert_int_eq(kvr_cache_create(&c, RU_L, RU_H, RU_Q, RU_D, &cfg, KVR_BACKEND_REF), KVR_OK);
    float k[RU_H * RU_D], v[RU_H * RU_D], q[RU_Q * RU_D], out[RU_Q * RU_D];
    for (int t = 0; t < tokens; t++)
        for (int l = 0; l < RU_L; l++) {
            ru_fill(k, RU_H * RU_D, &seed);
            ru_fill(v, RU_H * RU_D, &seed);
            ru_fill(q, RU_Q * RU_D, &seed);
            ck_assert_int_eq(kvr_append(c, l, 1, k, v), KVR_OK);
            ck_assert_int_eq(kvr_attend(c, l, q, out, 0), KVR_OK);
        }
    return c;
}

/* The bytes of the whole state of c (a cache file image). */
typedef struct { void *buf; size_t len; } ru_snap;
static inline ru_snap ru_snapshot(const kvr_cache *c)
{
    ru_snap s = {NULL, 0};
    ck_assert_int_eq(kvr_cache_save_mem(c, &s.buf, &s.len), KVR_OK);
    return s;
}

static inline int ru_same(ru_snap a, ru_snap b)
{
    return a.len == b.len && memcmp(a.buf, b.buf, a.len) == 0;
}

static inline void ru_snap_free(ru_snap *s)
{
    kvr_buffer_free(s->buf);
    s->buf = NULL;
    s->len = 0;
}

static inline int ru_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
