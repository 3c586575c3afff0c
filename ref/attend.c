/* attend.c: decode attention over every position (spec §11).
 *
 * The reference takes the plain route: it gathers the key and value of every
 * position the head cache still holds (exact ones as stored, vague ones
 * reconstructed, dropped ones absent), then each query head of the GQA group
 * runs a numerically stable softmax over them:
 *     logit_t = (q . k_t) * (1 / sqrt(D))
 *     p_t     = exp(logit_t - max_u logit_u)
 *     out     = (sum_t p_t v_t) / (sum_t p_t)
 * Sums run over positions in increasing order, dot products over coordinates
 * in increasing order, all in float32.
 *
 * The wide pass (spec §12.4): float32 overflows when a logit or a weighted
 * sum leaves its range (inputs far above 2^40 in magnitude).  When a query
 * head's float32 result is not finite, that head is computed again in
 * float64 from the same keys and values: every logit then fits, the largest
 * term is exp(0) = 1, and the output, a convex combination of values, is
 * finite.  On ordinary inputs the float32 result is finite and kept, bit for
 * bit. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include "base.h"
#include "ref.h"

int ref_work_reserve(ref_work *w, long n, int head_dim)
{
    if (n <= w->cap && head_dim == w->head_dim)
        return KVR_OK;
    ref_work grown = {0};
    size_t cap = (size_t)(n > 0 ? n : 1), D = (size_t)head_dim;
    grown.k = kvr_malloc(cap * D * sizeof(float));
    grown.v = kvr_malloc(cap * D * sizeof(float));
    grown.p = kvr_malloc(cap * sizeof(float));
    grown.prob = kvr_malloc(cap * sizeof(float));
    grown.held = kvr_malloc(cap);
    grown.wide = kvr_malloc(cap * sizeof(double));
    grown.mean = kvr_malloc(2 * D * sizeof(float));
    if (!grown.k || !grown.v || !grown.p || !grown.prob || !grown.held || !grown.wide || !grown.mean) {
        ref_work_free(&grown);
        return kvr_fail(KVR_ENOMEM, "attention workspace for %ld positions of dimension %d", n, head_dim);
    }
    grown.cap = (long)cap;
    grown.head_dim = head_dim;
    grown.moment = w->moment;                       /* kept: ref_work_reserve_moment's */
    grown.moment_sum = w->moment_sum;
    grown.moment_cap = w->moment_cap;
    grown.moment_dim = w->moment_dim;
    w->moment = NULL;
    w->moment_sum = NULL;
    ref_work_free(w);
    *w = grown;
    return KVR_OK;
}

void ref_work_free(ref_work *w)
{
    kvr_free(w->k); kvr_free(w->v); kvr_free(w->p); kvr_free(w->prob); kvr_free(w->held);
    kvr_free(w->wide); kvr_free(w->mean); kvr_free(w->moment); kvr_free(w->moment_sum);
    w->k = w->v = w->p = w->prob = w->mean = w->moment = NULL;
    w->wide = NULL;
    w->held = NULL;
    w->moment_sum = NULL;
    w->cap = 0;
    w->moment_cap = 0;
    w->moment_dim = 0;
}

/* spec §11.1: the keys and values attention sees, position by position.
 * The vague part's means are the same for every vague token, so they are
 * computed once (the result is the same as ref_reconstruct's). */
static void gather(const ref_head *h, ref_work *w)
{
    int D = h->head_dim;
    if (ref_has_sketch(h))
        ref_vague_means(h, w->mean);
    ref_walk wk = {0, 0};
    for (long t = 0; t < h->n; t++) {
        float *k = w->k + (size_t)t * D, *v = w->v + (size_t)t * D;
        kvr_part part = ref_walk_part(h, &wk, t);
        w->held[t] = part != KVR_PART_DROPPED;
        if (part == KVR_PART_VAGUE)
            ref_reconstruct_with(h, t, w->mean, k, v);
        else if (part != KVR_PART_DROPPED)
            ref_walk_exact_kv(h, &wk, t, part, k, v);
    }
}

double ref_softmax_wide(long n, int D, ref_work *w, double bulk_logit, const double *bulk_v, float *out)
{
    double max = bulk_v ? bulk_logit : -INFINITY;
    for (long t = 0; t < n; t++)
        if (w->held[t] && w->wide[t] > max) max = w->wide[t];
    double sum = bulk_v ? exp(bulk_logit - max) : 0.0;
    for (long t = 0; t < n; t++) {
        if (!w->held[t]) continue;
        double p = exp(w->wide[t] - max);
        w->p[t] = (float)p;
        sum += p;
    }
    for (int i = 0; i < D; i++) {                   /* coordinate by coordinate: no [D] buffer */
        double acc = bulk_v ? exp(bulk_logit - max) * bulk_v[i] : 0.0;
        for (long t = 0; t < n; t++)
            if (w->held[t])
                acc += exp(w->wide[t] - max) * (double)w->v[(size_t)t * D + i];
        out[i] = (float)(acc / sum);
    }
    return sum;
}

/* 1 when every out[i] is finite. */
static int finite_all(const float *out, int D)
{
    for (int i = 0; i < D; i++)
        if (!isfinite(out[i])) return 0;
    return 1;
}

/* spec §11.2: the logits of the positions with held 1 into w->p, four at a
 * time (ref_dots); the other positions are left as they are. */
void ref_logits(long n, int D, const float *q /*[D]*/, float scale, ref_work *w)
{
    long pos[4];
    float dot[4];
    int m = 0;
    for (long t = 0; t < n; t++) {
        if (w->held[t] != 1) continue;
        pos[m++] = t;
        if (m == 4) {
            ref_dots(q, w->k, pos, m, D, dot);
            for (int j = 0; j < m; j++)
                w->p[pos[j]] = dot[j] * scale;
            m = 0;
        }
    }
    if (m > 0) {                                    /* the last held ones */
        ref_dots(q, w->k, pos, m, D, dot);
        for (int j = 0; j < m; j++)
            w->p[pos[j]] = dot[j] * scale;
    }
}

/* spec §11.2: one query head; adds its probabilities into w->prob. */
static void attend_one(long n, int D, const float *q /*[D]*/, ref_work *w, float *out /*[D]*/)
{
    float scale = 1.0f / sqrtf((float)D);
    float max = -INFINITY;
    ref_logits(n, D, q, scale, w);                  /* w->p holds the logits, for now */
    for (long t = 0; t < n; t++)
        if (w->held[t] && w->p[t] > max) max = w->p[t];
    float sum = 0.0f;
    for (long t = 0; t < n; t++) {
        if (!w->held[t]) continue;
        w->p[t] = expf(w->p[t] - max);
        sum += w->p[t];
    }
    for (int i = 0; i < D; i++)
        out[i] = 0.0f;
    for (long t = 0; t < n; t++)
        if (w->held[t])
            ref_add_scaled(D, w->p[t], w->v + (size_t)t * D, out);
    for (int i = 0; i < D; i++)
        out[i] /= sum;
    if (!finite_all(out, D)) {                      /* spec §12.4: the wide pass */
        for (long t = 0; t < n; t++) {
            if (!w->held[t]) continue;
            double dot = 0.0;
            for (int i = 0; i < D; i++)
                dot += (double)q[i] * (double)w->k[(size_t)t * D + i];
            w->wide[t] = dot / sqrt((double)D);
        }
        double wide_sum = ref_softmax_wide(n, D, w, 0.0, NULL, out);
        for (long t = 0; t < n; t++)
            if (w->held[t])
                w->prob[t] += (float)((double)w->p[t] / wide_sum);
        return;
    }
    for (long t = 0; t < n; t++)
        if (w->held[t])
            w->prob[t] += w->p[t] / sum;
}

/* spec §11: attention of the group's query heads over the head cache, then
 * (when update is set) the importance update of spec §6.1.  The workspace
 * must hold h->n positions. */
void ref_attend(ref_head *h, int group, const float *q, float *out, int update, ref_work *w)
{
    int D = h->head_dim;
    gather(h, w);
    for (long t = 0; t < h->n; t++)
        w->prob[t] = 0.0f;
    for (int g = 0; g < group; g++)
        attend_one(h->n, D, q + (size_t)g * D, w, out + (size_t)g * D);
    if (update)
        ref_importance_update(h, w->prob, group);
}
