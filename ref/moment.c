/* moment.c: the moment route of attention over the vague part (spec §17).
 *
 * Why: at the budgets that matter (10-25%) each bucket holds tens of vague
 * tokens, so a reconstructed key carries collision noise of about
 * sqrt(load) times a typical centred key.  Attending to every reconstruction
 * (spec §11) turns that noise into spurious logits, and exp() of noisy
 * logits inflates the vague part's mass (E[exp(s + n)] = exp(s + var/2)).
 * The moment route treats the vague part as what the sketch can describe
 * well: its exact mean (spec §8.1) and its second moments along the query,
 * which the signed buckets give without bias, plus the few vague tokens
 * whose logit stands far above the collision noise in every row.
 *
 * For one query head q ([D]) with scale = 1/sqrt(D) (spec §17.1-§17.4):
 *   m       = scale * (q . mu_K)                          mean vague logit
 *   P[r][b] = scale * (q . S_K[r][b] - c[r][b] * (q . mu_K))
 *             the bucket's signed sum of centred logits; over the random
 *             signs E[P^2] = sum over its tokens of (logit - m)^2
 *   revival (revive = z > 0): vague t is revived when every row r has
 *             s_r(t) P[r][b_r(t)] > z * sqrt((load - 1) * tau0^2),
 *             tau0^2 = sum P^2 / (d n_v); its logit is m + x_t with
 *             x_t the rows' combination (median or mean) of s_r(t) P, its
 *             value the reconstruction of spec §8; then s_r(t) x_t is
 *             peeled off each of its buckets
 *   bulk    (the n_b = n_v - revived other vague tokens) one term of
 *             logit   m_b + min(tau^2, var_cap) / 2 + ln(n_b)
 *             value   mu_b + cov         (cov only when var_cap > 0)
 *             tau^2 = sum P^2 / (d n_b), cov[i] = sum P[r][b] (S_V[r][b][i] -
 *             c[r][b] mu_V[i]) / (d n_b): a Gaussian's log E[exp] and its
 *             tilted mean; m_b, mu_b the mean logit and value without the
 *             revived tokens
 * then one softmax over the exact positions, the revived tokens and the
 * bulk term.  Exact positions are treated as in attend.c.  Arithmetic is
 * float32 in the order written, except the three sums over buckets (tau0^2,
 * tau^2, cov), which are float64 (spec §17.5).  When a query head's float32
 * result is not finite (a logit or a sum overflowed: inputs far above 2^40,
 * or a variance term past float32's range), the head is computed again with
 * the same formulas in float64, the wide pass of spec §12.4
 * (attend_one_wide); otherwise the float32 result stands, bit for bit. */
#include <config.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include "base.h"
#include "ref.h"

/* spec §17.2: mark the revived vague tokens of one query head (held[t] = 2,
 * logit offset x_t in p[t], value in v[t]) and peel them off P.  Returns
 * their number; *sum_x receives the sum of their x_t, sum_v ([D]) of their
 * values. */
static long revive(const ref_head *h, float *P /*[d*w]*/, double tau0_sq,
                   ref_work *w, float *scratch /*[D]*/, double *sum_x, double *sum_v /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    float z = (float)h->cfg.revive;
    long n_rev = 0;
    *sum_x = 0.0;
    for (long t = 0; t < h->n; t++) {
        if (ref_part_of(h, t) != KVR_PART_VAGUE)
            continue;
        float x[64];                                 /* depth <= 64 (config check) */
        int stands_out = 1;
        for (int r = 0; r < d && stands_out; r++) {
            float s;
            size_t b = ref_bucket(h, r, t, &s);
            x[r] = s * P[b];
            float noise = (float)sqrt((double)(h->sk_load[b] - 1) * tau0_sq);
            stands_out = x[r] > z * noise;
        }
        if (!stands_out)
            continue;
        float xt = ref_combine(x, d, h->cfg.rows);
        ref_reconstruct(h, t, scratch, w->v + (size_t)t * D);
        w->held[t] = 2;
        w->p[t] = xt;
        *sum_x += xt;
        for (int i = 0; i < D; i++)
            sum_v[i] += w->v[(size_t)t * D + i];
        n_rev++;
    }
    for (long t = 0; t < h->n; t++) {                /* peel (after every test) */
        if (w->held[t] != 2)
            continue;
        for (int r = 0; r < d; r++) {
            float s;
            size_t b = ref_bucket(h, r, t, &s);
            P[b] -= s * w->p[t];
        }
    }
    return n_rev;
}

/* Sum of P^2 over every bucket, float64. */
static double energy(const float *P, size_t dw)
{
    double e = 0.0;
    for (size_t b = 0; b < dw; b++)
        e += (double)P[b] * (double)P[b];
    return e;
}

/* The median (sorting x) or the mean of x ([d]), float64. */
static double combine_wide(double *x, int d, kvr_rows rows)
{
    double acc = 0.0;
    if (rows == KVR_ROWS_MEAN) {
        for (int r = 0; r < d; r++) acc += x[r];
        return acc / d;
    }
    for (int i = 1; i < d; i++)                      /* insertion sort, d <= 64 */
        for (int j = i; j > 0 && x[j - 1] > x[j]; j--) {
            double y = x[j]; x[j] = x[j - 1]; x[j - 1] = y;
        }
    return d % 2 ? x[d / 2] : 0.5 * (x[d / 2 - 1] + x[d / 2]);
}

/* spec §12.4: attend_one in float64, the same formulas (§17.1-§17.4) in the
 * same order: logits into w->wide, the bulk term's value into u ([D]), the
 * bucket logits into P ([d*w]), both float64 workspace after sum_v. */
static void attend_one_wide(const ref_head *h, const float *q /*[D]*/, ref_work *w,
                            const float *mk, const float *mv, float *scratch,
                            double *sum_v /*[2D + d*w]*/, float *out /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    size_t dw = (size_t)d * h->cfg.width;
    double scale = 1.0 / sqrt((double)D), *u = sum_v + D, *P = u + D;
    long n_v = h->n_vague;
    double qmu = 0.0;
    for (int i = 0; i < D; i++)
        qmu += (double)q[i] * mk[i];
    double m = qmu * scale;
    for (size_t b = 0; b < dw; b++) {
        double dot = 0.0;
        for (int i = 0; i < D; i++)
            dot += (double)q[i] * h->sk_k[b * D + i];
        P[b] = (dot - (double)h->sk_count[b] * qmu) * scale;
    }
    double energy0 = 0.0;
    for (size_t b = 0; b < dw; b++)
        energy0 += P[b] * P[b];
    for (int i = 0; i < D; i++)
        sum_v[i] = 0.0;
    for (long t = 0; t < h->n; t++)
        if (w->held[t] == 2) w->held[t] = 0;
    double sum_x = 0.0;
    long n_rev = 0;
    if (h->cfg.revive > 0.0 && n_v > 0) {            /* spec §17.2 */
        double tau0_sq = energy0 / ((double)d * (double)n_v), z = h->cfg.revive;
        for (long t = 0; t < h->n; t++) {
            if (ref_part_of(h, t) != KVR_PART_VAGUE) continue;
            double x[64];
            int stands_out = 1;
            for (int r = 0; r < d && stands_out; r++) {
                float s;
                size_t b = ref_bucket(h, r, t, &s);
                x[r] = s * P[b];
                stands_out = x[r] > z * sqrt((double)(h->sk_load[b] - 1) * tau0_sq);
            }
            if (!stands_out) continue;
            double xt = combine_wide(x, d, h->cfg.rows);
            ref_reconstruct(h, t, scratch, w->v + (size_t)t * D);
            w->held[t] = 2;
            w->wide[t] = xt;                         /* the offset, for now */
            sum_x += xt;
            for (int i = 0; i < D; i++)
                sum_v[i] += w->v[(size_t)t * D + i];
            n_rev++;
        }
        for (long t = 0; t < h->n; t++) {
            if (w->held[t] != 2) continue;
            for (int r = 0; r < d; r++) {
                float s;
                size_t b = ref_bucket(h, r, t, &s);
                P[b] -= s * w->wide[t];
            }
        }
    }
    long n_b = n_v - n_rev;                          /* spec §17.3 */
    double bulk_logit = 0.0;
    if (n_b > 0) {
        double e = 0.0;
        for (size_t b = 0; b < dw; b++)
            e += P[b] * P[b];
        double tau_sq = e / ((double)d * (double)n_b);
        double var = tau_sq < h->cfg.var_cap ? tau_sq : h->cfg.var_cap;
        double m_b = ((double)n_v * m - ((double)n_rev * m + sum_x)) / (double)n_b;
        bulk_logit = m_b + 0.5 * var + log((double)n_b);
        for (int i = 0; i < D; i++) {
            double cov = 0.0;
            if (h->cfg.var_cap > 0.0) {
                for (size_t b = 0; b < dw; b++)
                    cov += P[b] * ((double)h->sk_v[b * D + i] - (double)h->sk_count[b] * mv[i]);
                cov /= (double)d * (double)n_b;
            }
            u[i] = ((double)n_v * mv[i] - sum_v[i]) / (double)n_b + cov;
            /* the bulk's true value, a mean of stored values, lies in
             * float32's range: projecting the estimate onto that range only
             * brings it closer (with var_cap > 0, cov grows with the logits'
             * spread and can leave it) */
            if (u[i] > FLT_MAX) u[i] = FLT_MAX;
            if (u[i] < -FLT_MAX) u[i] = -FLT_MAX;
        }
    }
    for (long t = 0; t < h->n; t++) {                /* spec §17.4 */
        if (w->held[t] == 1) {
            double dot = 0.0;
            for (int i = 0; i < D; i++)
                dot += (double)q[i] * (double)w->k[(size_t)t * D + i];
            w->wide[t] = dot * scale;
        } else if (w->held[t] == 2) {
            w->wide[t] = m + w->wide[t];
        }
    }
    double sum = ref_softmax_wide(h->n, D, w, bulk_logit, n_b > 0 ? u : NULL, out);
    for (long t = 0; t < h->n; t++)
        if (w->held[t] == 1)
            w->prob[t] += (float)((double)w->p[t] / sum);
}

/* One query head (spec §17): the output and the probabilities of the exact
 * positions (added into w->prob).  P ([d*w]), u and scratch ([D]) are
 * workspace; mk, mv ([D]) the vague means; sum_v ([D]) float64 workspace. */
static void attend_one(const ref_head *h, const float *q /*[D]*/, ref_work *w,
                       float *P, const float *mk, const float *mv, float *u,
                       float *scratch, double *sum_v, float *out /*[D]*/)
{
    int D = h->head_dim, d = h->cfg.depth;
    size_t dw = (size_t)d * h->cfg.width;
    float scale = 1.0f / sqrtf((float)D);
    long n_v = h->n_vague;

    /* spec §17.1: mean logit and centred bucket logits */
    float qmu = 0.0f;
    for (int i = 0; i < D; i++)
        qmu += q[i] * mk[i];
    float m = qmu * scale;
    for (size_t b = 0; b < dw; b++) {
        float dot = 0.0f;
        for (int i = 0; i < D; i++)
            dot += q[i] * h->sk_k[b * D + i];
        P[b] = (dot - (float)h->sk_count[b] * qmu) * scale;
    }

    /* spec §17.2: revival */
    for (long t = 0; t < h->n; t++)
        if (w->held[t] == 2) w->held[t] = 0;         /* vague: not held unless revived */
    for (int i = 0; i < D; i++)
        sum_v[i] = 0.0;
    double sum_x = 0.0;
    long n_rev = 0;
    if (h->cfg.revive > 0.0 && n_v > 0)
        n_rev = revive(h, P, energy(P, dw) / ((double)d * (double)n_v), w, scratch, &sum_x, sum_v);

    /* spec §17.3: the bulk term */
    long n_b = n_v - n_rev;
    float bulk_logit = -INFINITY;
    if (n_b > 0) {
        double tau_sq = energy(P, dw) / ((double)d * (double)n_b);
        double var = tau_sq < h->cfg.var_cap ? tau_sq : h->cfg.var_cap;
        float m_b = (float)(((double)n_v * m - ((double)n_rev * m + sum_x)) / (double)n_b);
        bulk_logit = m_b + (float)(0.5 * var) + (float)log((double)n_b);
        for (int i = 0; i < D; i++) {
            float mu_b = (float)(((double)n_v * mv[i] - sum_v[i]) / (double)n_b);
            double cov = 0.0;
            if (h->cfg.var_cap > 0.0) {
                for (size_t b = 0; b < dw; b++)
                    cov += (double)P[b] * ((double)h->sk_v[b * D + i] - (double)h->sk_count[b] * mv[i]);
                cov /= (double)d * (double)n_b;
            }
            u[i] = mu_b + (float)cov;
        }
    }

    /* spec §17.4: one softmax over exact positions, revived tokens, bulk */
    float max = bulk_logit;
    ref_logits(h->n, D, q, scale, w);                 /* held 1: w->p = q . k scale */
    for (long t = 0; t < h->n; t++) {
        if (w->held[t] == 2)
            w->p[t] = m + w->p[t];
        else if (w->held[t] != 1)
            continue;
        if (w->p[t] > max) max = w->p[t];
    }
    float sum = 0.0f;
    for (int i = 0; i < D; i++)
        out[i] = 0.0f;
    for (long t = 0; t < h->n; t++) {
        if (!w->held[t]) continue;
        w->p[t] = expf(w->p[t] - max);
        sum += w->p[t];
        ref_add_scaled(D, w->p[t], w->v + (size_t)t * D, out);
    }
    if (n_b > 0) {
        float p_bulk = expf(bulk_logit - max);
        sum += p_bulk;
        for (int i = 0; i < D; i++)
            out[i] += p_bulk * u[i];
    }
    for (int i = 0; i < D; i++)
        out[i] /= sum;
    for (int i = 0; i < D; i++)
        if (!isfinite(out[i])) {                     /* spec §12.4: the wide pass */
            attend_one_wide(h, q, w, mk, mv, scratch, sum_v, out);
            return;
        }
    for (long t = 0; t < h->n; t++)
        if (w->held[t] == 1)
            w->prob[t] += w->p[t] / sum;
}

int ref_work_reserve_moment(ref_work *w, const ref_head *h)
{
    if (!ref_has_sketch(h) || h->cfg.vague != KVR_VAGUE_MOMENT)
        return KVR_OK;
    size_t D = (size_t)h->head_dim, need = (size_t)h->cfg.depth * h->cfg.width + 4 * D;
    if (need <= w->moment_cap && w->moment_sum && (size_t)w->moment_dim == D)
        return KVR_OK;
    float *buf = kvr_malloc(need * sizeof(float));
    double *sum = kvr_malloc((need - 2 * D) * sizeof(double));   /* [2D + d*w] */
    if (!buf || !sum) {
        kvr_free(buf);
        kvr_free(sum);
        return kvr_fail(KVR_ENOMEM, "moment attention: %zu buckets of dimension %zu", need - 4 * D, D);
    }
    kvr_free(w->moment);
    kvr_free(w->moment_sum);
    w->moment = buf;
    w->moment_sum = sum;
    w->moment_cap = need;
    w->moment_dim = (int)D;
    return KVR_OK;
}

void ref_attend_moment(ref_head *h, int group, const float *q /*[group][D]*/,
                       float *out /*[group][D]*/, int update, ref_work *w)
{
    if (!ref_has_sketch(h) || h->cfg.vague != KVR_VAGUE_MOMENT || h->n_vague == 0) {
        ref_attend(h, group, q, out, update, w);     /* nothing to summarise */
        return;
    }
    int D = h->head_dim;
    size_t dw = (size_t)h->cfg.depth * h->cfg.width;
    float *P = w->moment, *mk = P + dw, *mv = mk + D, *u = mv + D, *scratch = u + D;
    double *sum_v = w->moment_sum;
    for (int i = 0; i < D; i++) {
        mk[i] = ref_vague_mean(h, h->sum_k, i);
        mv[i] = ref_vague_mean(h, h->sum_v, i);
    }
    ref_walk wk = {0, 0};
    for (long t = 0; t < h->n; t++) {                /* exact keys and values */
        kvr_part part = ref_walk_part(h, &wk, t);
        w->held[t] = part != KVR_PART_VAGUE && part != KVR_PART_DROPPED;
        if (w->held[t])
            ref_walk_exact_kv(h, &wk, t, part, w->k + (size_t)t * D, w->v + (size_t)t * D);
        w->prob[t] = 0.0f;
    }
    for (int g = 0; g < group; g++)
        attend_one(h, q + (size_t)g * D, w, P, mk, mv, u, scratch, sum_v, out + (size_t)g * D);
    if (update)
        ref_importance_update(h, w->prob, group);
}
