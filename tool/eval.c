/* eval.c: run one method over a workload and measure it (doc/eval.md §3).
 *
 * The full-attention reference output is computed here directly in float64
 * from the workload's (storage-rounded) keys and values, independent of the
 * library, so every method, `full` included, is measured against the same
 * thing. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "eval.h"

/* Full causal attention of query q ([D]) over positions 0..n-1 of KV head h,
 * in float64; writes the output ([D]) and the probabilities ([n]). */
static void full_attention(const kvr_workload *w, int h, int n, const float *q,
                           kvr_elem elem, double *out, double *prob)
{
    int D = w->head_dim, H = w->n_kv_heads;
    double scale = 1.0 / sqrt((double)D), max = -INFINITY, sum = 0.0;
    for (int t = 0; t < n; t++) {
        const float *k = w->k + ((size_t)t * H + h) * D;
        double dot = 0.0;
        for (int i = 0; i < D; i++)
            dot += (double)q[i] * (double)kvr_elem_round(elem, k[i]);
        prob[t] = dot * scale;
        if (prob[t] > max) max = prob[t];
    }
    for (int t = 0; t < n; t++) { prob[t] = exp(prob[t] - max); sum += prob[t]; }
    for (int i = 0; i < D; i++) out[i] = 0.0;
    for (int t = 0; t < n; t++) {
        prob[t] /= sum;
        const float *v = w->v + ((size_t)t * H + h) * D;
        for (int i = 0; i < D; i++)
            out[i] += prob[t] * (double)kvr_elem_round(elem, v[i]);
    }
}

static double norm_diff(const float *a, const double *b, int D, double *norm_b)
{
    double d2 = 0.0, b2 = 0.0;
    for (int i = 0; i < D; i++) {
        double d = (double)a[i] - b[i];
        d2 += d * d;
        b2 += b[i] * b[i];
    }
    *norm_b = sqrt(b2);
    return sqrt(d2);
}

/* doc/eval.md §3.4: a needle query retrieves its needle when, among the
 * values of every position 0..n-1, the needle's value is the nearest to the
 * method's attention output. */
static int retrieves(const kvr_workload *w, int h, int n, const float *o, int needle, kvr_elem elem)
{
    int D = w->head_dim, H = w->n_kv_heads, best = -1;
    double best_d = INFINITY;
    for (int t = 0; t < n; t++) {
        const float *v = w->v + ((size_t)t * H + h) * D;
        double d2 = 0.0;
        for (int i = 0; i < D; i++) {
            double d = (double)o[i] - (double)kvr_elem_round(elem, v[i]);
            d2 += d * d;
        }
        if (d2 < best_d) { best_d = d2; best = t; }
    }
    return best == needle;
}

int kvr_eval_run(const kvr_workload *w, const char *method, double budget,
                 kvr_elem elem, kvr_eval_result *res)
{
    int D = w->head_dim, H = w->n_kv_heads, Hq = w->n_q_heads, G = Hq / H;
    kvr_config cfg;
    int status = kvr_method_config(method, budget, w->n, D, elem, &cfg);
    if (status != KVR_OK)
        return status;
    kvr_cache *c = NULL;
    status = kvr_cache_create(&c, 1, H, Hq, D, &cfg, KVR_BACKEND_REF);
    if (status != KVR_OK)
        return status;
    float *out = malloc(sizeof(float) * (size_t)Hq * D);
    double *full = malloc(sizeof(double) * (size_t)D);
    double *prob = malloc(sizeof(double) * (size_t)w->n);
    if (!out || !full || !prob) {
        status = KVR_ENOMEM;
        goto done;
    }
    int n_obs = cfg.obs_window < w->n_prefill ? cfg.obs_window : w->n_prefill;
    status = kvr_prefill(c, 0, w->n_prefill, w->k, w->v, n_obs,
                         w->q + (size_t)(w->n_prefill - n_obs) * Hq * D);
    double err_sum = 0.0, mass_sum = 0.0;
    long samples = 0, needles = 0, found = 0;
    for (int t = w->n_prefill; status == KVR_OK && t < w->n; t++) {
        const float *q = w->q + (size_t)t * Hq * D;
        status = kvr_append(c, 0, 1, w->k + (size_t)t * H * D, w->v + (size_t)t * H * D);
        if (status == KVR_OK)
            status = kvr_attend(c, 0, q, out, 0);
        if (status != KVR_OK)
            break;
        int needle = -1;
        for (int j = 0; j < w->n_needles; j++)
            if (w->needle_step[j] == t) needle = w->needle_pos[j];
        for (int qh = 0; qh < Hq; qh++) {
            int h = qh / G;
            double norm_full;
            full_attention(w, h, t + 1, q + (size_t)qh * D, elem, full, prob);
            err_sum += norm_diff(out + (size_t)qh * D, full, D, &norm_full) / norm_full;
            double mass = 0.0;
            for (long p = 0; p <= t; p++) {
                kvr_part part;
                kvr_part_of(c, 0, h, p, &part);
                if (part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE)
                    mass += prob[p];
            }
            mass_sum += mass;
            samples++;
            if (needle >= 0) {
                needles++;
                found += retrieves(w, h, t + 1, out + (size_t)qh * D, needle, elem);
            }
        }
    }
    if (status == KVR_OK) {
        size_t held, full_bytes;
        kvr_bytes(c, &held, &full_bytes);
        long exact = 0;
        for (int h = 0; h < H; h++)
            for (long p = 0; p < w->n; p++) {
                kvr_part part;
                kvr_part_of(c, 0, h, p, &part);
                exact += part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE;
            }
        res->bytes_held = held;
        res->bytes_ratio = (double)held / (double)full_bytes;
        res->exact_ratio = (double)exact / ((double)H * w->n);
        res->attn_rel_err = err_sum / (double)samples;
        res->mass_exact = mass_sum / (double)samples;
        res->needle_acc = needles > 0 ? (double)found / (double)needles : NAN;
    }
done:
    free(out);
    free(full);
    free(prob);
    kvr_cache_free(c);
    return status;
}
