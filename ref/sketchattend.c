/* sketchattend.c: mean-row attention in the sketch domain (spec §8.2, §11),
 * the readable second route that the CUDA fast path mirrors (doc/cuda.md).
 *
 * With mean rows, the reconstruction of a vague token t (spec §8.1) is linear
 * in the sketch:
 *     k^_t = mu + (1/d) sum_r s_r(t) alpha_r (S_K[r][b_r(t)] - c[r][b_r(t)] mu)
 * so a query's score against it needs no D-dimensional reconstruction:
 *     q.k^_t = q.mu + (1/d) sum_r s_r(t) alpha_r (P[r][b_r(t)] - c[r][b_r(t)] (q.mu))
 * with the d*w bucket dot products P[r][b] = q.S_K[r][b] computed once per
 * query.  Each vague token then costs O(d) instead of O(D).  The vague part
 * of the output, likewise, is
 *     (sum_t p_t) mu_v + (1/d) sum_{r,b} W[r][b] alpha_rb (S_V[r][b] - c_rb mu_v)
 * with W[r][b] = sum over vague t in bucket b of row r of p_t s_r(t), so the
 * whole vague part costs O(N d + d w D) instead of O(N D).  (alpha_rb = 1, or
 * 1/load[r][b] with shrinkage; a bucket with no token has W = 0 and is
 * skipped.)
 *
 * Exact positions are handled exactly as in attend.c (the same float32
 * operations in the same order), so the two routes differ only in how the
 * float32 sums of the vague part are associated: tests/sketchattend.c bounds
 * the difference. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include "base.h"
#include "ref.h"

/* Row r's bucket index (r*w + b), sign and alpha of position pos. */
static size_t bucket_of(const ref_head *h, int r, long pos, float *sign, float *alpha)
{
    size_t bucket = ref_bucket(h, r, pos, sign);
    *alpha = h->cfg.shrink ? 1.0f / (float)h->sk_load[bucket] : 1.0f;
    return bucket;
}

/* One query head (spec §11.2) over exact and vague positions; adds its
 * probabilities into w->prob.  bw holds P and W ([d*w] each); mk, mv the
 * vague means ([D] each). */
static void attend_one(const ref_head *h, const float *q /*[D]*/, ref_work *w,
                       float *P /*[d*w]*/, float *W /*[d*w]*/,
                       const float *mk /*[D]*/, const float *mv /*[D]*/, float *out /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    size_t dw = (size_t)d * h->cfg.width;
    float scale = 1.0f / sqrtf((float)D);
    float inv_d = 1.0f / (float)d;

    float qmu = 0.0f;                                  /* q . mu_k */
    for (int i = 0; i < D; i++)
        qmu += q[i] * mk[i];
    for (size_t b = 0; b < dw; b++) {                  /* P[r][b] = q . S_K[r][b] */
        float dot = 0.0f;
        for (int i = 0; i < D; i++)
            dot += q[i] * h->sk_k[b * D + i];
        P[b] = dot;
        W[b] = 0.0f;
    }

    float max = -INFINITY;
    for (long t = 0; t < h->n; t++) {                  /* logits */
        if (!w->held[t]) continue;
        float dot = 0.0f;
        if (ref_part_of(h, t) == KVR_PART_VAGUE) {
            float acc = 0.0f;
            for (int r = 0; r < d; r++) {
                float s, alpha;
                size_t b = bucket_of(h, r, t, &s, &alpha);
                acc += s * (alpha * (P[b] - (float)h->sk_count[b] * qmu));
            }
            dot = qmu + acc * inv_d;
        } else {
            for (int i = 0; i < D; i++)
                dot += q[i] * w->k[(size_t)t * D + i];
        }
        w->p[t] = dot * scale;
        if (w->p[t] > max) max = w->p[t];
    }

    float sum = 0.0f, vague_mass = 0.0f;
    for (int i = 0; i < D; i++)
        out[i] = 0.0f;
    for (long t = 0; t < h->n; t++) {                  /* weights; exact values */
        if (!w->held[t]) continue;
        w->p[t] = expf(w->p[t] - max);
        sum += w->p[t];
        if (ref_part_of(h, t) == KVR_PART_VAGUE) {
            vague_mass += w->p[t];
            for (int r = 0; r < d; r++) {
                float s, alpha;
                size_t b = bucket_of(h, r, t, &s, &alpha);
                W[b] += w->p[t] * s;
            }
        } else {
            for (int i = 0; i < D; i++)
                out[i] += w->p[t] * w->v[(size_t)t * D + i];
        }
    }
    for (int i = 0; i < D; i++) {                      /* the vague part, O(d w D) */
        float acc = 0.0f;
        for (size_t b = 0; b < dw; b++) {
            if (h->sk_load[b] == 0) continue;
            float alpha = h->cfg.shrink ? 1.0f / (float)h->sk_load[b] : 1.0f;
            acc += W[b] * (alpha * (h->sk_v[b * D + i] - (float)h->sk_count[b] * mv[i]));
        }
        out[i] += vague_mass * mv[i] + acc * inv_d;
        out[i] /= sum;
    }
    for (long t = 0; t < h->n; t++)
        if (w->held[t])
            w->prob[t] += w->p[t] / sum;
}

/* spec §11 for a head cache with mean rows (spec §8.2), through the sketch
 * domain; any other configuration goes to ref_attend.  Allocates the
 * bucket workspace ([2][d][w] + [2][D] floats) first: on failure returns
 * KVR_ENOMEM and changes nothing.  The workspace w must hold h->n
 * positions. */
int ref_attend_sketch(ref_head *h, int group, const float *q /*[group][D]*/,
                      float *out /*[group][D]*/, int update, ref_work *w)
{
    if (!ref_has_sketch(h) || h->cfg.rows != KVR_ROWS_MEAN) {
        ref_attend(h, group, q, out, update, w);
        return KVR_OK;
    }
    int D = h->head_dim;
    size_t dw = (size_t)h->cfg.depth * h->cfg.width;
    float *buf = kvr_malloc((2 * dw + 2 * (size_t)D) * sizeof(float));
    if (!buf)
        return kvr_fail(KVR_ENOMEM, "sketch-domain attention: %zu buckets", dw);
    float *P = buf, *W = buf + dw, *mk = buf + 2 * dw, *mv = mk + D;
    for (int i = 0; i < D; i++) {
        mk[i] = ref_vague_mean(h, h->sum_k, i);
        mv[i] = ref_vague_mean(h, h->sum_v, i);
    }
    for (long t = 0; t < h->n; t++) {                  /* exact keys and values only */
        kvr_part part = ref_part_of(h, t);
        w->held[t] = part != KVR_PART_DROPPED;
        if (part != KVR_PART_VAGUE && part != KVR_PART_DROPPED)
            ref_exact_kv(h, t, w->k + (size_t)t * D, w->v + (size_t)t * D);
        w->prob[t] = 0.0f;
    }
    for (int g = 0; g < group; g++)
        attend_one(h, q + (size_t)g * D, w, P, W, mk, mv, out + (size_t)g * D);
    if (update)
        ref_importance_update(h, w->prob, group);
    kvr_free(buf);
    return KVR_OK;
}
