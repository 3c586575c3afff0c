/* eval.c: run one method over a workload and measure it (doc/eval.md §3-4).
 *
 * The full-attention reference output is computed here directly in float64
 * from the workload's keys and values rounded to the storage type,
 * independent of the library, so every method, `full` included, is
 * measured against the same thing. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "common/message.h"
#include "eval.h"

/* The backend of the caches ev_run makes (kvreviver eval --backend). */
kvr_backend ev_backend = KVR_BACKEND_REF;

void ev_full_attention(const ev_workload *w, int h, int n, const float *q,
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

/* ||a - b|| and ||b|| ([D] each). */
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

int ev_retrieves(const ev_workload *w, int h, int n, const float *o, int needle, kvr_elem elem)
{
    int D = w->head_dim, H = w->n_kv_heads;
    double *dist = malloc(sizeof(double) * (size_t)n);
    if (!dist) return 0;
    for (int t = 0; t < n; t++) {
        const float *v = w->v + ((size_t)t * H + h) * D;
        double d2 = 0.0;
        for (int i = 0; i < D; i++) {
            double d = (double)o[i] - (double)kvr_elem_round(elem, v[i]);
            d2 += d * d;
        }
        dist[t] = d2;
    }
    int found = needle >= 0 && needle < n;
    for (int t = 0; found && t < n; t++)
        if (t != needle && dist[t] <= dist[needle])
            found = 0;
    free(dist);
    return found;
}

/* The needle position sought by the queries of position t, or -1. */
static int needle_at(const ev_workload *w, int t)
{
    for (int j = 0; j < w->n_needles; j++)
        if (w->needle_step[j] == t)
            return w->needle_pos[j];
    return -1;
}

static int is_exact(kvr_part part)
{
    return part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE;
}

/* exact[p] = 1 when position p (0 .. n-1) of KV head h is held exactly.
 * Once per KV head per step (not per query head): O(n log C). */
static void exact_mask(const kvr_cache *c, int h, long n, unsigned char *exact)
{
    for (long p = 0; p < n; p++) {
        kvr_part part = KVR_PART_DROPPED;
        kvr_part_of(c, 0, h, p, &part);
        exact[p] = (unsigned char)is_exact(part);
    }
}

int ev_run_config(const ev_workload *w, const kvr_config *cfg, ev_result *res)
{
    int D = w->head_dim, H = w->n_kv_heads, Hq = w->n_q_heads, G = Hq / H;
    kvr_elem elem = cfg->elem;
    kvr_cache *c = NULL;
    int status = kvr_cache_create(&c, 1, H, Hq, D, cfg, ev_backend);
    if (status != KVR_OK)
        return status;
    float *out = malloc(sizeof(float) * (size_t)Hq * D);
    double *full = malloc(sizeof(double) * (size_t)D);
    double *prob = malloc(sizeof(double) * (size_t)w->n);
    unsigned char *exact = malloc((size_t)w->n);
    if (!out || !full || !prob || !exact) {
        status = KVR_ENOMEM;
        goto done;
    }
    int n_obs = cfg->obs_window < w->n_prefill ? cfg->obs_window : w->n_prefill;
    status = kvr_prefill(c, 0, w->n_prefill, w->k, w->v, n_obs,
                         w->q + (size_t)(w->n_prefill - n_obs) * Hq * D);
    double err_sum = 0.0, mass_sum = 0.0;
    long samples = 0, needles = 0, found = 0;
    for (int t = w->n_prefill; status == KVR_OK && t < w->n; t++) {
        msg_progress_tick((double)(t - w->n_prefill) / (double)(w->n - w->n_prefill));
        const float *q = w->q + (size_t)t * Hq * D;
        status = kvr_append(c, 0, 1, w->k + (size_t)t * H * D, w->v + (size_t)t * H * D);
        if (status == KVR_OK)
            status = kvr_attend(c, 0, q, out, 0);
        if (status != KVR_OK)
            break;
        int needle = needle_at(w, t);
        for (int h = 0; h < H; h++) {
            exact_mask(c, h, t + 1, exact);
            for (int qh = h * G; qh < (h + 1) * G; qh++) {
                double norm_full, mass = 0.0;
                ev_full_attention(w, h, t + 1, q + (size_t)qh * D, elem, full, prob);
                err_sum += norm_diff(out + (size_t)qh * D, full, D, &norm_full) / norm_full;
                for (int p = 0; p <= t; p++)
                    if (exact[p]) mass += prob[p];
                mass_sum += mass;
                samples++;
                if (needle >= 0) {
                    needles++;
                    found += ev_retrieves(w, h, t + 1, out + (size_t)qh * D, needle, elem);
                }
            }
        }
    }
    if (status == KVR_OK) {
        size_t held, full_bytes;
        kvr_bytes(c, &held, &full_bytes);
        long n_exact = 0;
        for (int h = 0; h < H; h++) {
            exact_mask(c, h, w->n, exact);
            for (int p = 0; p < w->n; p++) n_exact += exact[p];
        }
        res->bytes_held = held;
        res->bytes_ratio = (double)held / (double)full_bytes;
        res->exact_ratio = (double)n_exact / ((double)H * w->n);
        res->attn_rel_err = err_sum / (double)samples;
        res->mass_exact = mass_sum / (double)samples;
        res->needle_acc = needles > 0 ? (double)found / (double)needles : NAN;
        res->samples = samples;
        res->needles = needles;
        res->found = found;
    }
done:
    free(out);
    free(full);
    free(prob);
    free(exact);
    kvr_cache_free(c);
    return status;
}

int ev_run(const ev_workload *w, const char *method, double budget,
                 kvr_elem elem, uint64_t run_seed, ev_result *res)
{
    kvr_config cfg;
    int status = kvr_method_config(method, budget, w->n, w->head_dim, elem, &cfg);
    if (status != KVR_OK)
        return status;
    cfg.seed ^= run_seed * UINT64_C(0x9E3779B97F4A7C15);
    return ev_run_config(w, &cfg, res);
}
