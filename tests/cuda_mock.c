/* cuda_mock.c: a host stand-in for the CUDA kernels' interface
 * (cuda/kvr_cuda.h), so the backend glue (lib/cuda_backend.c and the CUDA
 * dispatch in lib/cache.c) runs and is checked on a machine without a GPU.
 *
 * Linked into tests/cuda_mock together with the conformance suite
 * (tests/cuda.c): the executable's definitions of the kvr_cuda_* functions
 * take the place of the library's (ELF symbol interposition; with a static
 * library the archive's CUDA objects are simply not pulled in).  "Device"
 * memory is host memory.  The stand-ins follow the kernels' contracts with
 * the plainest code: the sketch insertion in the kernel's order (so the
 * bit-for-bit sketch check holds), reconstruction with the reference's
 * operations, attention by explicit reconstruction and a two-pass softmax,
 * and the exact rows' probabilities in the kernel's order.  What this
 * checks is the glue: descriptors, uploads, the tokens listed as vague on
 * append and prefill, and the probabilities' way back to the scores. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../cuda/kvr_cuda.h"

int kvr_cuda_device_count(void) { return 1; }
const char *kvr_cuda_error_string(int code) { return code ? "mock error" : "no error"; }
const char *kvr_cuda_device_name(void) { return "host mock"; }
int kvr_cuda_malloc(void **dev, size_t bytes) { *dev = malloc(bytes ? bytes : 1); return *dev ? 0 : 2; }
void kvr_cuda_free(void *dev) { free(dev); }
int kvr_cuda_upload(void *dev, const void *host, size_t bytes) { if (bytes) memcpy(dev, host, bytes); return 0; }
int kvr_cuda_download(void *host, const void *dev, size_t bytes) { if (bytes) memcpy(host, dev, bytes); return 0; }
int kvr_cuda_memset(void *dev, int byte, size_t bytes) { if (bytes) memset(dev, byte, bytes); return 0; }
int kvr_cuda_sync(void) { return 0; }
int kvr_cuda_fill_random(void *dev, size_t count, int elem, uint64_t seed, float scale)
{
    (void)dev; (void)count; (void)elem; (void)seed; (void)scale;
    return 0;
}
int kvr_cuda_timer_start(void) { return 0; }
int kvr_cuda_timer_stop(float *ms) { *ms = 0.0f; return 0; }
int kvr_cuda_copy_bandwidth(size_t bytes, int reps, double *gbps) { (void)bytes; (void)reps; *gbps = 1.0; return 0; }
int kvr_cuda_hash_check(uint64_t seed, int n, uint32_t width, int *mismatches)
{
    (void)seed; (void)n; (void)width;
    *mismatches = 0;
    return 0;
}

int kvr_cuda_sketch_insert(const kvr_cuda_params *p, const kvr_cuda_head *heads, int n_heads,
                           const int *offsets, const int32_t *pos, const float *k, const float *v)
{
    int D = p->head_dim;
    for (int h = 0; h < n_heads; h++)
        for (int r = 0; r < p->depth; r++)
            for (int e = offsets[h]; e < offsets[h + 1]; e++) {
                uint64_t x = kvr_hash(p->seed, heads[h].layer, heads[h].kv_head, (uint32_t)r, (uint64_t)pos[e]);
                size_t b = (size_t)r * p->width + kvr_hash_bucket(x, (uint32_t)p->width);
                float s = (float)kvr_hash_sign(x);
                for (int i = 0; i < D; i++) {
                    heads[h].sk_k[b * D + i] += s * k[(size_t)e * D + i];
                    heads[h].sk_v[b * D + i] += s * v[(size_t)e * D + i];
                }
                heads[h].sk_count[b] += (int32_t)s;
                heads[h].sk_load[b] += 1;
            }
    return 0;
}

/* one coordinate of a reconstruction, as reconstruct.cuh */
static float estimate(const kvr_cuda_params *p, const kvr_cuda_head *h, const float *sums, float mu, long pos, int i)
{
    float x[KVR_CUDA_MAX_DEPTH];
    int d = p->depth;
    for (int r = 0; r < d; r++) {
        uint64_t hx = kvr_hash(p->seed, h->layer, h->kv_head, (uint32_t)r, (uint64_t)pos);
        size_t b = (size_t)r * p->width + kvr_hash_bucket(hx, (uint32_t)p->width);
        float alpha = p->shrink ? 1.0f / (float)h->sk_load[b] : 1.0f;
        float centred = sums[b * p->head_dim + i] - (float)h->sk_count[b] * mu;
        x[r] = (float)kvr_hash_sign(hx) * (alpha * centred) + mu;
    }
    if (p->rows == 1) {
        float sum = 0.0f;
        for (int r = 0; r < d; r++) sum += x[r];
        return sum / (float)d;
    }
    for (int a = 1; a < d; a++) {
        float key = x[a];
        int j = a - 1;
        while (j >= 0 && x[j] > key) { x[j + 1] = x[j]; j--; }
        x[j + 1] = key;
    }
    return d % 2 ? x[d / 2] : 0.5f * (x[d / 2 - 1] + x[d / 2]);
}

int kvr_cuda_reconstruct(const kvr_cuda_params *p, const kvr_cuda_head *heads, int n_items,
                         const int *head_of, const int32_t *pos, float *k, float *v)
{
    for (int j = 0; j < n_items; j++) {
        const kvr_cuda_head *h = &heads[head_of[j]];
        for (int i = 0; i < p->head_dim; i++) {
            k[(size_t)j * p->head_dim + i] = estimate(p, h, h->sk_k, h->mu_k[i], pos[j], i);
            v[(size_t)j * p->head_dim + i] = estimate(p, h, h->sk_v, h->mu_v[i], pos[j], i);
        }
    }
    return 0;
}

struct kvr_cuda_attend_ws {
    int n_heads, exact_cap;
};

int kvr_cuda_attend_ws_create(kvr_cuda_attend_ws **ws, const kvr_cuda_params *p, int n_heads, long max_items,
                              int exact_cap)
{
    (void)p; (void)max_items;
    *ws = malloc(sizeof **ws);
    if (!*ws) return 2;
    (*ws)->n_heads = n_heads;
    (*ws)->exact_cap = exact_cap;
    return 0;
}

void kvr_cuda_attend_ws_free(kvr_cuda_attend_ws *ws) { free(ws); }

static int is_cand(const kvr_cuda_head *h, long pos)
{
    for (int j = 0; j < h->n_cand; j++)
        if (h->cand_pos[j] == pos) return 1;
    return 0;
}

int kvr_cuda_attend(const kvr_cuda_params *p, const kvr_cuda_head *heads, int n_heads, long max_items,
                    const float *q, float *out, float *prob, kvr_cuda_attend_ws *ws)
{
    (void)max_items;
    int D = p->head_dim, G = p->group;
    for (int hd = 0; hd < n_heads; hd++) {
        const kvr_cuda_head *h = &heads[hd];
        int S1 = h->n < h->sinks ? h->n : h->sinks;
        int R1 = h->n - S1 < h->window ? h->n - S1 : h->window;
        int E = S1 + R1 + h->n_cand, M = p->depth > 0 ? h->n - S1 - R1 : 0;
        float *K = malloc(sizeof(float) * (size_t)(E + M + 1) * D), *V = malloc(sizeof(float) * (size_t)(E + M + 1) * D);
        double *lg = malloc(sizeof(double) * (size_t)(E + M + 1));
        if (!K || !V || !lg) { free(K); free(V); free(lg); return 2; }
        int rows = 0;
        for (int e = 0; e < E; e++, rows++) {          /* exact rows, the kernel's order */
            const void *Ks, *Vs;
            size_t row;
            if (e < S1) { Ks = h->sink_k; Vs = h->sink_v; row = (size_t)e; }
            else if (e < S1 + R1) { Ks = h->win_k; Vs = h->win_v; row = (size_t)((h->n - R1 + (e - S1)) % h->window); }
            else { Ks = h->cand_k; Vs = h->cand_v; row = (size_t)(e - S1 - R1); }
            for (int i = 0; i < D; i++) {
                K[(size_t)e * D + i] = kvr_elem_load((kvr_elem)p->elem, Ks, row * D + i);
                V[(size_t)e * D + i] = kvr_elem_load((kvr_elem)p->elem, Vs, row * D + i);
            }
        }
        for (int t = S1; t < S1 + M; t++) {            /* vague tokens */
            if (is_cand(h, t)) continue;
            for (int i = 0; i < D; i++) {
                K[(size_t)rows * D + i] = estimate(p, h, h->sk_k, h->mu_k[i], t, i);
                V[(size_t)rows * D + i] = estimate(p, h, h->sk_v, h->mu_v[i], t, i);
            }
            rows++;
        }
        if (prob)
            for (int e = 0; e < ws->exact_cap; e++) prob[(size_t)hd * ws->exact_cap + e] = 0.0f;
        for (int g = 0; g < G; g++) {
            const float *qg = q + ((size_t)hd * G + g) * D;
            double mx = -INFINITY, sum = 0.0;
            for (int t = 0; t < rows; t++) {
                double dot = 0.0;
                for (int i = 0; i < D; i++) dot += (double)qg[i] * K[(size_t)t * D + i];
                lg[t] = dot / sqrt((double)D);
                if (lg[t] > mx) mx = lg[t];
            }
            for (int t = 0; t < rows; t++) sum += exp(lg[t] - mx);
            for (int i = 0; i < D; i++) {
                double acc = 0.0;
                for (int t = 0; t < rows; t++) acc += exp(lg[t] - mx) * V[(size_t)t * D + i];
                out[((size_t)hd * G + g) * D + i] = (float)(acc / sum);
            }
            if (prob)
                for (int e = 0; e < E; e++)
                    prob[(size_t)hd * ws->exact_cap + e] += (float)(exp(lg[e] - mx) / sum);
        }
        free(K); free(V); free(lg);
    }
    return 0;
}

int kvr_cuda_prefill_scores(int D, int G, int importance, int obs_window, int pool_kernel, int pool,
                            int n, const float *k, int n_obs, const float *q, float *score)
{
    kvr_config cfg;
    kvr_config_paper(&cfg);
    cfg.importance = (kvr_importance)importance;
    cfg.obs_window = obs_window;
    cfg.pool_kernel = pool_kernel;
    cfg.pool = (kvr_pool)pool;
    return ref_prefill_scores(&cfg, D, G, n, k, n_obs, q, score) == KVR_OK ? 0 : 2;
}
