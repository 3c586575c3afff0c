/* prefill.c: compression of a prompt into an empty head cache (spec §10).
 *
 * The n prompt tokens are split at once, with the candidates chosen by the
 * prefill scores of spec §6.2 instead of one step at a time:
 *   sinks      positions 0 .. S'-1,          S' = min(S, n)
 *   window     the last R' positions,        R' = min(R, n - S')
 *   middle     the M = n - S' - R' others; the C' = min(C, M) with the
 *              highest scores become candidates (ties: the newer position
 *              is kept, the rule of spec §3.4), the rest go to the vague part
 *              in increasing position order.
 * Window and candidate tokens keep their prefill score.  Without scores
 * (C = 0) the result equals appending the tokens one by one. */
#include <config.h>
#include <stdlib.h>
#include "base.h"
#include "ref.h"

typedef struct {
    float score;
    int pos;
} ranked;

/* Higher score first; on equal scores the newer (larger) position first. */
static int by_importance(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return y->pos - x->pos;
}

int ref_prefill(ref_head *h, int group, int n, const float *k, const float *v,
                int n_obs, const float *q_obs)
{
    int D = h->head_dim;
    int S = n < h->cfg.sinks ? n : h->cfg.sinks;
    int R = n - S < h->cfg.window ? n - S : h->cfg.window;
    int M = n - S - R;
    int C = M < h->cfg.candidates ? M : h->cfg.candidates;
    float *score = NULL;
    ranked *middle = NULL;
    unsigned char *chosen = NULL;

    if (ref_keeps_scores(h)) {                      /* workspace first: nothing changes on failure */
        score = kvr_malloc((size_t)n * sizeof(float));
        middle = kvr_malloc((size_t)(M > 0 ? M : 1) * sizeof(ranked));
        chosen = kvr_calloc((size_t)n, 1);
        int status = (!score || !middle || !chosen)
            ? kvr_fail(KVR_ENOMEM, "prefill workspace for %d positions", n)
            : ref_prefill_scores(&h->cfg, D, group, n, k, n_obs, q_obs, score);
        if (status != KVR_OK) {
            kvr_free(score); kvr_free(middle); kvr_free(chosen);
            return status;
        }
        for (int j = 0; j < M; j++)
            middle[j] = (ranked){score[S + j], S + j};
        qsort(middle, (size_t)M, sizeof(ranked), by_importance);
        for (int j = 0; j < C; j++)
            chosen[middle[j].pos] = 1;
        int T = ref_has_tier(h) ? h->cfg.tier_tokens : 0;   /* spec §19.8: the next Q enter the tier */
        for (int j = C; j < M && j < C + T; j++)
            chosen[middle[j].pos] = 2;
    }

    ref_tier_balance(h, group, n, k, n_obs, q_obs);   /* spec §19.12, before any key enters the tier */
    for (int t = 0; t < n; t++) {
        kvr_part part = t < S ? KVR_PART_SINK
                      : t >= n - R ? KVR_PART_RECENT
                      : (chosen && chosen[t] == 1) ? KVR_PART_CANDIDATE
                      : (chosen && chosen[t] == 2) ? KVR_PART_QUANTIZED
                      : KVR_PART_VAGUE;
        ref_place(h, t, part, k + (size_t)t * D, v + (size_t)t * D, score ? score[t] : 0.0f);
    }
    kvr_free(score);
    kvr_free(middle);
    kvr_free(chosen);
    return KVR_OK;
}
