/* importance.c: how important an exact token is (spec §6).
 *
 * Only window and candidate tokens carry a score (float32), and only when
 * the configuration has candidates: it decides which candidate leaves first
 * (spec §3.4).
 *
 * Decode (spec §6.1), after each attention step with probabilities
 * prob_t = sum over the G query heads of the group of their softmax weight:
 *   h2o, snapkv  score_t += prob_t          (accumulated attention, H2O)
 *   tova         score_t  = prob_t          (latest attention, TOVA; the group's
 *                                           sum, not its mean: same order)
 *
 * Prefill (spec §6.2): scores of every prompt position from the queries of
 * the last W prompt positions (the observation window): raw_t = sum over
 * those queries and the group's heads of their causal softmax weight on t;
 *   h2o      score = raw
 *   snapkv   score = raw pooled over positions with the configured kernel
 *   tova     score = the last query's weights, summed over the group */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "base.h"
#include "ref.h"

/* spec §6.1 */
static void update_one(const ref_head *h, float *score, float prob)
{
    if (h->cfg.importance == KVR_IMP_TOVA)
        *score = prob;
    else
        *score += prob;
}

void ref_importance_update(ref_head *h, const float *prob /*[n]*/, int group)
{
    if (!ref_keeps_scores(h))
        return;
    long first = h->n - h->cfg.window;               /* window positions */
    if (first < h->cfg.sinks) first = h->cfg.sinks;
    for (long t = first; t < h->n; t++)
        update_one(h, &h->win_score[t % h->cfg.window], prob[t]);
    for (int j = 0; j < h->n_cand; j++)
        update_one(h, &h->cand_score[j], prob[h->cand_pos[j]]);
    for (int j = 0; j < h->n_tier; j++)              /* the quantized tier, spec §19.4 */
        update_one(h, &h->tier_score[j], prob[h->tier_pos[j]]);
    ref_tier_promote(h, prob, group);                /* spec §19.5 (nothing when off) */
}

/* spec §6.2, pooling: out_t = pool over raw_{t-k/2} .. raw_{t+k/2}, positions
 * outside 0..n-1 count as 0; avg divides by the kernel size k. */
static void pool1d(const float *raw, int n, int kernel, kvr_pool kind, float *out)
{
    int half = kernel / 2;
    for (int t = 0; t < n; t++) {
        float acc = kind == KVR_POOL_MAX ? -INFINITY : 0.0f;
        for (int j = t - half; j <= t + half; j++) {
            float x = (j >= 0 && j < n) ? raw[j] : 0.0f;
            if (kind == KVR_POOL_MAX) { if (x > acc) acc = x; }
            else acc += x;
        }
        out[t] = kind == KVR_POOL_MAX ? acc : acc / (float)kernel;
    }
}

/* Prefill scores (spec §6.2) of the n prompt positions, from the n_obs
 * queries of positions n-n_obs .. n-1, of which the last min(n_obs, W) are
 * used.  k holds the stored (rounded) keys.  Allocates a workspace; on
 * failure returns KVR_ENOMEM and writes nothing. */
int ref_prefill_scores(const kvr_config *cfg, int D, int group, int n,
                       const float *k /*[n][D]*/, int n_obs,
                       const float *q_obs /*[n_obs][group][D]*/, float *score /*[n]*/)
{
    float *raw = kvr_calloc((size_t)n, sizeof(float));
    float *p = kvr_malloc((size_t)n * sizeof(float));
    if (!raw || !p) {
        kvr_free(raw); kvr_free(p);
        return kvr_fail(KVR_ENOMEM, "prefill scores for %d positions", n);
    }
    float scale = 1.0f / sqrtf((float)D);
    int used = n_obs < cfg->obs_window ? n_obs : cfg->obs_window;
    if (cfg->importance == KVR_IMP_TOVA)
        used = 1;                                     /* only the last query */
    for (int j = n_obs - used; j < n_obs; j++) {
        int qpos = n - n_obs + j;                     /* the query's own position */
        for (int g = 0; g < group; g++) {
            const float *q = q_obs + ((size_t)j * group + g) * D;
            float max = -INFINITY, sum = 0.0f;
            for (int t = 0; t <= qpos; t += 4) {      /* causal: positions 0 .. qpos */
                long pos[4] = {t, t + 1, t + 2, t + 3};
                int m = qpos + 1 - t < 4 ? qpos + 1 - t : 4;
                float dot[4];
                ref_dots(q, k, pos, m, D, dot);         /* four at a time (spec §11.2's sums) */
                for (int u = 0; u < m; u++) {
                    p[t + u] = dot[u] * scale;
                    if (p[t + u] > max) max = p[t + u];
                }
            }
            for (int t = 0; t <= qpos; t++) {
                p[t] = expf(p[t] - max);
                sum += p[t];
            }
            for (int t = 0; t <= qpos; t++)
                raw[t] += p[t] / sum;
        }
    }
    switch (cfg->importance) {
    case KVR_IMP_SNAPKV:
        pool1d(raw, n, cfg->pool_kernel, cfg->pool, score);
        break;
    default:                                          /* h2o, and tova: its one query */
        memcpy(score, raw, (size_t)n * sizeof(float));
        break;
    }
    kvr_free(raw);
    kvr_free(p);
    return KVR_OK;
}
