/* cpu_backend.c: the CPU backend behind a model cache (doc/cuda.md, "The
 * CPU path").
 *
 * Design: unlike the CUDA backend there is no second copy.  The reference
 * head caches (ref/head.c) hold every part in its storage type, and the
 * kernels (cpu/) read them in place, so appends, prefills,
 * reconstructions, saving and loading are the reference's and only
 * decode attention changes.  A step runs the layer's KV heads over the
 * cache's thread pool (a head per item), then the importance update on
 * the calling thread with the kernels' probabilities, in head order, so the
 * cache's state never depends on the threads' schedule.  A head whose
 * float32 result is not finite is run again by the reference (its wide
 * pass, spec §12.4).  Every buffer is reserved before anything changes. */
#include <config.h>
#include <string.h>
#include "internal.h"
#include "cpu_backend.h"
#include "../cpu/kvr_cpu.h"

typedef struct {
    kvr_cpu_pool *pool;
    kvr_cpu_ws *ws;              /* [threads] */
    int n_ws;
    float *prob;                 /* [n_kv_heads][prob_cap] */
    float **prob_of;             /* [n_kv_heads] */
    long prob_cap;
    int *finite;                 /* [n_kv_heads] */
    const ref_head **heads;      /* [n_kv_heads] */
} cpu_state;

void kvr_cpu_backend_free(kvr_cache *c)
{
    cpu_state *s = c->backend_state;
    if (!s)
        return;
    kvr_cpu_pool_free(s->pool);
    for (int t = 0; s->ws && t < s->n_ws; t++)
        kvr_cpu_ws_free(&s->ws[t]);
    kvr_free(s->ws);
    kvr_free(s->prob);
    kvr_free(s->prob_of);
    kvr_free(s->finite);
    kvr_free(s->heads);
    kvr_free(s);
    c->backend_state = NULL;
}

int kvr_cpu_backend_create(kvr_cache *c)
{
    cpu_state *s = kvr_calloc(1, sizeof *s);
    if (!s)
        return kvr_fail(KVR_ENOMEM, "cpu backend state");
    c->backend_state = s;
    int H = c->n_kv_heads;
    if (kvr_cpu_pool_create(&s->pool, 0) != KVR_OK) {
        kvr_cpu_backend_free(c);
        return KVR_ENOMEM;
    }
    s->n_ws = kvr_cpu_pool_threads(s->pool);
    s->ws = kvr_calloc((size_t)s->n_ws, sizeof *s->ws);
    s->prob_of = kvr_calloc((size_t)H, sizeof *s->prob_of);
    s->finite = kvr_calloc((size_t)H, sizeof *s->finite);
    s->heads = kvr_calloc((size_t)H, sizeof *s->heads);
    if (!s->ws || !s->prob_of || !s->finite || !s->heads) {
        kvr_cpu_backend_free(c);
        return kvr_fail(KVR_ENOMEM, "cpu backend tables for %d heads", H);
    }
    return KVR_OK;
}

int kvr_cpu_backend_takes(const kvr_cache *c)
{
    return c->backend == KVR_BACKEND_CPU && kvr_cpu_supports(&c->cfg);
}

int kvr_cpu_backend_attend(kvr_cache *c, int layer, const float *q, float *out, int update)
{
    cpu_state *s = c->backend_state;
    int H = c->n_kv_heads, D = c->head_dim, G = c->group;
    const ref_head *h0 = c->heads[(size_t)layer * H];
    long n = h0->n, rows = kvr_cpu_rows_cap(&c->cfg);
    if (rows > n) rows = n;
    for (int t = 0; t < s->n_ws; t++)
        if (kvr_cpu_ws_reserve(&s->ws[t], G, D, rows) != KVR_OK)
            return KVR_ENOMEM;
    int keeps = update && ref_cfg_keeps_scores(&c->cfg);
    if (keeps && n > s->prob_cap) {
        float *grown = kvr_malloc((size_t)H * n * sizeof(float));
        if (!grown)
            return kvr_fail(KVR_ENOMEM, "cpu backend: probabilities of %d x %ld positions", H, n);
        kvr_free(s->prob);
        s->prob = grown;
        s->prob_cap = n;
    }
    for (int h = 0; h < H; h++) {
        s->heads[h] = c->heads[(size_t)layer * H + h];
        s->prob_of[h] = keeps ? s->prob + (size_t)h * s->prob_cap : NULL;
        if (keeps)
            memset(s->prob_of[h], 0, (size_t)n * sizeof(float));
    }
    kvr_cpu_attend(s->pool, s->heads, H, G, q, out, keeps ? s->prob_of : NULL, s->ws, s->finite);
    size_t stride = (size_t)G * D;
    for (int h = 0; h < H; h++) {
        ref_head *hd = c->heads[(size_t)layer * H + h];
        if (!s->finite[h])                           /* spec §12.4: the reference's wide pass */
            ref_attend_moment(hd, G, q + h * stride, out + h * stride, update, &c->work);
        else if (keeps)
            ref_importance_update(hd, s->prob_of[h], G);
    }
    return KVR_OK;
}
