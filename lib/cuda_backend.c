/* cuda_backend.c: the CUDA backend behind a model cache (doc/cuda.md).
 *
 * Design: the host keeps the reference head caches (ref/head.c) as the
 * source of truth for partitions, positions and importance scores, so the
 * CUDA backend's partitions are the reference's rules applied to the
 * device's attention probabilities.  The device holds the bulk data each
 * step reads: the exact keys and values in their element type (uploaded
 * from the host heads, the same bytes) and the sketch (updated by the
 * insertion kernel, cuda/sketch.cu, bit-identical to the host's).  Per
 * step the host uploads the few scalars and the vague means (from its
 * float64 running sums), the attention runs on the device
 * (cuda/attend.cu), and the probabilities of the exact scored rows come
 * back for the importance update.
 *
 * Every host buffer is reserved before a call changes anything.  A CUDA
 * runtime failure after the host heads changed returns KVR_EBACKEND and
 * leaves the device copy undefined: the cache must then be freed. */
#include <config.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "cuda_backend.h"
#include "../cuda/kvr_cuda.h"

/* Byte offsets of one head's arrays inside its device allocation. */
typedef struct {
    size_t sink_k, sink_v, win_k, win_v, cand_k, cand_v, cand_pos;
    size_t sk_k, sk_v, sk_count, sk_load, mu_k, mu_v, total;
} head_layout;

typedef struct {
    kvr_cuda_params p;
    head_layout lay;
    int n_all;                   /* n_layers * n_kv_heads */
    int exact_cap;               /* S + R + C */
    void **block;                /* [n_all] device allocation per head */
    kvr_cuda_head *desc;         /* [n_all] host copies of the descriptors */
    kvr_cuda_head *desc_dev;     /* [n_all] device copies */
    float *q_dev, *out_dev;      /* [n_kv_heads][G][D] */
    float *prob_dev;             /* [n_kv_heads][exact_cap] */
    float *prob_host;            /* [n_kv_heads][exact_cap] */
    float *mu_host;              /* [2][D] */
    kvr_cuda_attend_ws *ws;
} cuda_state;

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

static head_layout layout_of(const kvr_config *cfg, int D)
{
    head_layout L;
    size_t es = kvr_elem_size(cfg->elem), dw = (size_t)cfg->depth * cfg->width, at = 0;
#define PUT(field, bytes) do { L.field = at; at = align256(at + (bytes)); } while (0)
    PUT(sink_k, (size_t)cfg->sinks * D * es);
    PUT(sink_v, (size_t)cfg->sinks * D * es);
    PUT(win_k, (size_t)cfg->window * D * es);
    PUT(win_v, (size_t)cfg->window * D * es);
    PUT(cand_k, (size_t)cfg->candidates * D * es);
    PUT(cand_v, (size_t)cfg->candidates * D * es);
    PUT(cand_pos, (size_t)cfg->candidates * 4);
    PUT(sk_k, dw * D * 4);
    PUT(sk_v, dw * D * 4);
    PUT(sk_count, dw * 4);
    PUT(sk_load, dw * 4);
    PUT(mu_k, (size_t)D * 4);
    PUT(mu_v, (size_t)D * 4);
#undef PUT
    L.total = at;
    return L;
}

static int cuda_fail(int code, const char *what)
{
    return kvr_fail(KVR_EBACKEND, "cuda backend: %s: %s", what, kvr_cuda_error_string(code));
}

static ref_head *head_at(const kvr_cache *c, int layer, int h)
{
    return c->heads[(size_t)layer * c->n_kv_heads + h];
}

void kvr_cuda_backend_free(kvr_cache *c)
{
    cuda_state *s = c->backend_state;
    if (!s)
        return;
    if (s->block)
        for (int i = 0; i < s->n_all; i++)
            kvr_cuda_free(s->block[i]);
    kvr_free(s->block);
    kvr_free(s->desc);
    kvr_cuda_free(s->desc_dev);
    kvr_cuda_free(s->q_dev);
    kvr_cuda_free(s->out_dev);
    kvr_cuda_free(s->prob_dev);
    kvr_free(s->prob_host);
    kvr_free(s->mu_host);
    kvr_cuda_attend_ws_free(s->ws);
    kvr_free(s);
    c->backend_state = NULL;
}

int kvr_cuda_backend_create(kvr_cache *c)
{
    const kvr_config *cfg = &c->cfg;
    if (cfg->store != KVR_STORE_ELEM || cfg->kivi_bits > 0)   /* spec §18: host only */
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: the cuda backend does not run quantized storage "
                        "(store = %s, kivi_bits = %d); use the reference backend (KVR_BACKEND_REF)",
                        kvr_store_name(cfg->store), cfg->kivi_bits);
    if (cfg->tier_bits > 0 || cfg->tier_tokens > 0)         /* spec §19.10: host only */
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: the cuda backend does not run the quantized tier "
                        "(tier_bits = %d, tier_tokens = %d); use the reference backend (KVR_BACKEND_REF)",
                        cfg->tier_bits, cfg->tier_tokens);
    if (c->group > KVR_CUDA_MAX_GROUP || c->head_dim > KVR_CUDA_MAX_DIM || cfg->depth > KVR_CUDA_MAX_DEPTH)
        return kvr_fail(KVR_EBACKEND, "kvr_cache_create: the cuda backend handles GQA groups <= %d, head_dim <= %d "
                        "and depth <= %d (got %d, %d, %d)", KVR_CUDA_MAX_GROUP, KVR_CUDA_MAX_DIM,
                        KVR_CUDA_MAX_DEPTH, c->group, c->head_dim, cfg->depth);
    cuda_state *s = kvr_calloc(1, sizeof *s);
    if (!s)
        return kvr_fail(KVR_ENOMEM, "cuda backend state");
    c->backend_state = s;
    int D = c->head_dim, H = c->n_kv_heads, G = c->group;
    s->p.head_dim = D;
    s->p.group = G;
    s->p.depth = cfg->depth > 0 && cfg->width > 0 ? cfg->depth : 0;
    s->p.width = cfg->depth > 0 && cfg->width > 0 ? cfg->width : 0;
    s->p.rows = (int)cfg->rows;
    s->p.shrink = cfg->shrink;
    s->p.elem = (int)cfg->elem;
    s->p.seed = cfg->seed;
    s->lay = layout_of(cfg, D);
    s->n_all = c->n_layers * H;
    s->exact_cap = cfg->sinks + cfg->window + cfg->candidates;
    s->block = kvr_calloc((size_t)s->n_all, sizeof *s->block);
    s->desc = kvr_calloc((size_t)s->n_all, sizeof *s->desc);
    s->prob_host = kvr_malloc((size_t)H * s->exact_cap * sizeof(float));
    s->mu_host = kvr_malloc(2 * (size_t)D * sizeof(float));
    if (!s->block || !s->desc || !s->prob_host || !s->mu_host) {
        kvr_cuda_backend_free(c);
        return kvr_fail(KVR_ENOMEM, "cuda backend host tables for %d heads", s->n_all);
    }
    int e = kvr_cuda_malloc((void **)&s->desc_dev, (size_t)s->n_all * sizeof *s->desc_dev);
    if (!e) e = kvr_cuda_malloc((void **)&s->q_dev, (size_t)H * G * D * sizeof(float));
    if (!e) e = kvr_cuda_malloc((void **)&s->out_dev, (size_t)H * G * D * sizeof(float));
    if (!e) e = kvr_cuda_malloc((void **)&s->prob_dev, (size_t)H * s->exact_cap * sizeof(float));
    if (!e) e = kvr_cuda_attend_ws_create(&s->ws, &s->p, H, 0, s->exact_cap);
    for (int i = 0; !e && i < s->n_all; i++) {
        e = kvr_cuda_malloc(&s->block[i], s->lay.total);
        if (!e) e = kvr_cuda_memset(s->block[i], 0, s->lay.total);   /* empty sketch, zero means */
        if (e) break;
        char *b = s->block[i];
        kvr_cuda_head *d = &s->desc[i];
        d->sink_k = b + s->lay.sink_k; d->sink_v = b + s->lay.sink_v;
        d->win_k = b + s->lay.win_k; d->win_v = b + s->lay.win_v;
        d->cand_k = b + s->lay.cand_k; d->cand_v = b + s->lay.cand_v;
        d->cand_pos = (const int32_t *)(b + s->lay.cand_pos);
        d->sk_k = (float *)(b + s->lay.sk_k); d->sk_v = (float *)(b + s->lay.sk_v);
        d->sk_count = (int32_t *)(b + s->lay.sk_count); d->sk_load = (int32_t *)(b + s->lay.sk_load);
        d->mu_k = (const float *)(b + s->lay.mu_k); d->mu_v = (const float *)(b + s->lay.mu_v);
        d->sinks = cfg->sinks;
        d->window = cfg->window;
        d->layer = (uint32_t)(i / H);
        d->kv_head = (uint32_t)(i % H);
    }
    if (e) {
        kvr_cuda_backend_free(c);
        return cuda_fail(e, "allocating the device cache");
    }
    return KVR_OK;
}

/* Refresh the layer's descriptors (scalars from the host heads) and upload
 * them; with means set, also each head's vague means (spec §8.1). */
static int upload_descs(kvr_cache *c, int layer, int means)
{
    cuda_state *s = c->backend_state;
    int H = c->n_kv_heads, D = c->head_dim;
    for (int h = 0; h < H; h++) {
        const ref_head *hd = head_at(c, layer, h);
        kvr_cuda_head *d = &s->desc[(size_t)layer * H + h];
        d->n = (int)hd->n;
        d->n_cand = hd->n_cand;
        d->n_vague = (int)hd->n_vague;
        if (means) {
            for (int i = 0; i < D; i++) {
                s->mu_host[i] = ref_vague_mean(hd, hd->sum_k, i);
                s->mu_host[D + i] = ref_vague_mean(hd, hd->sum_v, i);
            }
            int e = kvr_cuda_upload((void *)d->mu_k, s->mu_host, (size_t)D * sizeof(float));
            if (!e) e = kvr_cuda_upload((void *)d->mu_v, s->mu_host + D, (size_t)D * sizeof(float));
            if (e) return cuda_fail(e, "uploading the vague means");
        }
    }
    int e = kvr_cuda_upload(s->desc_dev + (size_t)layer * H, s->desc + (size_t)layer * H, (size_t)H * sizeof *s->desc);
    return e ? cuda_fail(e, "uploading the head descriptors") : KVR_OK;
}

/* Copy the host heads' exact parts (the same element bytes) to the device. */
static int upload_exact(kvr_cache *c, int layer)
{
    cuda_state *s = c->backend_state;
    const kvr_config *cfg = &c->cfg;
    size_t row = (size_t)c->head_dim * kvr_elem_size(cfg->elem);
    int e = 0;
    for (int h = 0; !e && h < c->n_kv_heads; h++) {
        const ref_head *hd = head_at(c, layer, h);
        char *b = s->block[(size_t)layer * c->n_kv_heads + h];
        e = kvr_cuda_upload(b + s->lay.sink_k, hd->sink_k, cfg->sinks * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.sink_v, hd->sink_v, cfg->sinks * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.win_k, hd->win_k, cfg->window * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.win_v, hd->win_v, cfg->window * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.cand_k, hd->cand_k, (size_t)hd->n_cand * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.cand_v, hd->cand_v, (size_t)hd->n_cand * row);
        if (!e) e = kvr_cuda_upload(b + s->lay.cand_pos, hd->cand_pos, (size_t)hd->n_cand * 4);
    }
    return e ? cuda_fail(e, "uploading the exact parts") : KVR_OK;
}

/* The tokens that went vague, grouped by head: head h's are entries
 * off[h] .. off[h+1]-1 of pos, k, v. */
typedef struct {
    int *off;          /* [H + 1] */
    int32_t *pos;      /* [cap] */
    float *k, *v;      /* [cap][D] */
    int cap;
} vague_list;

static void list_free(vague_list *L)
{
    kvr_free(L->off); kvr_free(L->pos); kvr_free(L->k); kvr_free(L->v);
}

static int list_alloc(vague_list *L, int H, int cap, int D)
{
    memset(L, 0, sizeof *L);
    L->cap = cap > 0 ? cap : 1;
    L->off = kvr_calloc((size_t)H + 1, sizeof(int));
    L->pos = kvr_malloc((size_t)L->cap * sizeof(int32_t));
    L->k = kvr_malloc((size_t)L->cap * D * sizeof(float));
    L->v = kvr_malloc((size_t)L->cap * D * sizeof(float));
    if (!L->off || !L->pos || !L->k || !L->v) {
        list_free(L);
        return kvr_fail(KVR_ENOMEM, "cuda backend: list of %d vague tokens", cap);
    }
    return KVR_OK;
}

/* Insert the listed tokens into the device sketches of the layer. */
static int insert_list(kvr_cache *c, int layer, const vague_list *L)
{
    cuda_state *s = c->backend_state;
    int H = c->n_kv_heads, D = c->head_dim, m = L->off[H];
    if (m == 0 || s->p.depth == 0)
        return KVR_OK;
    int status = upload_descs(c, layer, 0);
    if (status != KVR_OK) return status;
    int *off_dev = NULL;
    int32_t *pos_dev = NULL;
    float *k_dev = NULL, *v_dev = NULL;
    int e = kvr_cuda_malloc((void **)&off_dev, (size_t)(H + 1) * sizeof(int));
    if (!e) e = kvr_cuda_malloc((void **)&pos_dev, (size_t)m * sizeof(int32_t));
    if (!e) e = kvr_cuda_malloc((void **)&k_dev, (size_t)m * D * sizeof(float));
    if (!e) e = kvr_cuda_malloc((void **)&v_dev, (size_t)m * D * sizeof(float));
    if (!e) e = kvr_cuda_upload(off_dev, L->off, (size_t)(H + 1) * sizeof(int));
    if (!e) e = kvr_cuda_upload(pos_dev, L->pos, (size_t)m * sizeof(int32_t));
    if (!e) e = kvr_cuda_upload(k_dev, L->k, (size_t)m * D * sizeof(float));
    if (!e) e = kvr_cuda_upload(v_dev, L->v, (size_t)m * D * sizeof(float));
    if (!e) e = kvr_cuda_sketch_insert(&s->p, s->desc_dev + (size_t)layer * H, H, off_dev, pos_dev, k_dev, v_dev);
    if (!e) e = kvr_cuda_sync();
    kvr_cuda_free(off_dev); kvr_cuda_free(pos_dev); kvr_cuda_free(k_dev); kvr_cuda_free(v_dev);
    return e ? cuda_fail(e, "inserting into the device sketch") : KVR_OK;
}

/* The candidate the reference would evict first (spec §3.4: lowest score,
 * oldest on ties), or -1. */
static int first_min(const ref_head *h)
{
    if (h->n_cand == 0) return -1;
    int j = 0;
    for (int i = 1; i < h->n_cand; i++)
        if (h->cand_score[i] < h->cand_score[j]) j = i;
    return j;
}

int kvr_cuda_backend_append(kvr_cache *c, int layer, int n, const float *rk, const float *rv)
{
    int H = c->n_kv_heads, D = c->head_dim;
    size_t row = (size_t)H * D;
    vague_list L;
    /* at most one token per append per head goes vague; they are listed per
     * head in slots [h*n, h*n + cnt[h]) and packed afterwards */
    int status = list_alloc(&L, H, H * n, D);
    if (status != KVR_OK) return status;
    int *cnt = kvr_calloc((size_t)H, sizeof(int));
    float *ok = kvr_malloc(4 * (size_t)D * sizeof(float));
    if (!cnt || !ok) {
        kvr_free(cnt); kvr_free(ok); list_free(&L);
        return kvr_fail(KVR_ENOMEM, "cuda backend: append workspace");
    }
    float *ov = ok + D, *ck = ok + 2 * D, *cv = ok + 3 * D;
    int sketch = c->cfg.depth > 0 && c->cfg.width > 0;
    for (int t = 0; t < n; t++)
        for (int h = 0; h < H; h++) {
            ref_head *hd = head_at(c, layer, h);
            long pos = hd->n, old = -1, cpos = -1, before = hd->n_vague;
            if (sketch && pos - hd->cfg.window >= hd->cfg.sinks) {
                /* the window's oldest token leaves; it or the first
                 * candidate to leave may go vague: keep their values */
                old = pos - hd->cfg.window;
                ref_exact_kv(hd, old, ok, ov);
                int j = hd->n_cand == hd->cfg.candidates ? first_min(hd) : -1;
                if (j >= 0) { cpos = hd->cand_pos[j]; ref_exact_kv(hd, cpos, ck, cv); }
            }
            size_t at = (size_t)t * row + (size_t)h * D;
            ref_append(hd, rk + at, rv + at);
            if (hd->n_vague > before && sketch) {
                int from_old = ref_part_of(hd, old) == KVR_PART_VAGUE && ref_cand_find(hd, old) < 0;
                size_t slot = (size_t)h * n + cnt[h]++;
                L.pos[slot] = (int32_t)(from_old ? old : cpos);
                memcpy(L.k + slot * D, from_old ? ok : ck, (size_t)D * sizeof(float));
                memcpy(L.v + slot * D, from_old ? ov : cv, (size_t)D * sizeof(float));
            }
        }
    /* pack: head h's entries move to off[h] .. */
    for (int h = 0, at = 0; h < H; h++) {
        L.off[h] = at;
        if (at != h * n) {
            memmove(L.pos + at, L.pos + (size_t)h * n, (size_t)cnt[h] * sizeof(int32_t));
            memmove(L.k + (size_t)at * D, L.k + (size_t)h * n * D, (size_t)cnt[h] * D * sizeof(float));
            memmove(L.v + (size_t)at * D, L.v + (size_t)h * n * D, (size_t)cnt[h] * D * sizeof(float));
        }
        at += cnt[h];
        L.off[h + 1] = at;
    }
    status = insert_list(c, layer, &L);
    if (status == KVR_OK) status = upload_exact(c, layer);
    kvr_free(cnt); kvr_free(ok); list_free(&L);
    return status;
}

int kvr_cuda_backend_prefill(kvr_cache *c, int layer, int n, const float *rk, const float *rv)
{
    int H = c->n_kv_heads, D = c->head_dim;
    size_t row = (size_t)H * D;
    long total = 0;
    for (int h = 0; h < H; h++)
        total += head_at(c, layer, h)->n_vague;
    vague_list L;
    int status = list_alloc(&L, H, (int)total, D);
    if (status != KVR_OK) return status;
    int at = 0;
    for (int h = 0; h < H; h++) {          /* the reference inserts in increasing position order */
        const ref_head *hd = head_at(c, layer, h);
        L.off[h] = at;
        if (c->cfg.depth > 0 && c->cfg.width > 0)
            for (int t = 0; t < n; t++)
                if (ref_part_of(hd, t) == KVR_PART_VAGUE) {
                    L.pos[at] = t;
                    memcpy(L.k + (size_t)at * D, rk + (size_t)t * row + (size_t)h * D, (size_t)D * sizeof(float));
                    memcpy(L.v + (size_t)at * D, rv + (size_t)t * row + (size_t)h * D, (size_t)D * sizeof(float));
                    at++;
                }
        L.off[h + 1] = at;
    }
    status = insert_list(c, layer, &L);
    if (status == KVR_OK) status = upload_exact(c, layer);
    list_free(&L);
    return status;
}

int kvr_cuda_backend_attend(kvr_cache *c, int layer, const float *q, float *out, int update)
{
    cuda_state *s = c->backend_state;
    int H = c->n_kv_heads, D = c->head_dim, G = c->group;
    long max_items = 0;
    for (int h = 0; h < H; h++) {
        const ref_head *hd = head_at(c, layer, h);
        if (hd->n + hd->n_cand > max_items) max_items = hd->n + hd->n_cand;
    }
    int keeps = update && ref_cfg_keeps_scores(&c->cfg);
    int status = upload_descs(c, layer, 1);
    if (status != KVR_OK) return status;
    size_t qbytes = (size_t)H * G * D * sizeof(float);
    int e = kvr_cuda_upload(s->q_dev, q, qbytes);
    if (!e) e = kvr_cuda_attend(&s->p, s->desc_dev + (size_t)layer * H, H, max_items, s->q_dev, s->out_dev,
                                keeps ? s->prob_dev : NULL, s->ws);
    if (!e) e = kvr_cuda_download(out, s->out_dev, qbytes);
    if (!e && keeps) e = kvr_cuda_download(s->prob_host, s->prob_dev, (size_t)H * s->exact_cap * sizeof(float));
    if (e) return cuda_fail(e, "decode attention");
    if (!keeps) return KVR_OK;
    for (int h = 0; h < H; h++) {          /* spec §6.1 on the host, with the device's probabilities */
        ref_head *hd = head_at(c, layer, h);
        const float *pr = s->prob_host + (size_t)h * s->exact_cap;
        long S1 = hd->n < hd->cfg.sinks ? hd->n : hd->cfg.sinks;
        long R1 = hd->n - S1 < hd->cfg.window ? hd->n - S1 : hd->cfg.window;
        for (long t = 0; t < hd->n; t++) c->work.prob[t] = 0.0f;
        for (long e2 = S1; e2 < S1 + R1; e2++) c->work.prob[hd->n - R1 + (e2 - S1)] = pr[e2];
        for (int j = 0; j < hd->n_cand; j++) c->work.prob[hd->cand_pos[j]] = pr[S1 + R1 + j];
        ref_importance_update(hd, c->work.prob, G);
    }
    return KVR_OK;
}

int kvr_cuda_backend_reconstruct(const kvr_cache *c, int layer, int kv_head, long pos, float *k, float *v)
{
    cuda_state *s = c->backend_state;
    int D = c->head_dim;
    int status = upload_descs((kvr_cache *)c, layer, 1);
    if (status != KVR_OK) return status;
    int hidx = kv_head;
    int32_t p32 = (int32_t)pos;
    int *h_dev = NULL;
    int32_t *p_dev = NULL;
    float *kv_dev = NULL;
    int e = kvr_cuda_malloc((void **)&h_dev, sizeof(int));
    if (!e) e = kvr_cuda_malloc((void **)&p_dev, sizeof(int32_t));
    if (!e) e = kvr_cuda_malloc((void **)&kv_dev, 2 * (size_t)D * sizeof(float));
    if (!e) e = kvr_cuda_upload(h_dev, &hidx, sizeof(int));
    if (!e) e = kvr_cuda_upload(p_dev, &p32, sizeof(int32_t));
    if (!e) e = kvr_cuda_reconstruct(&s->p, s->desc_dev + (size_t)layer * c->n_kv_heads, 1, h_dev, p_dev,
                                     kv_dev, kv_dev + D);
    if (!e) e = kvr_cuda_download(k, kv_dev, (size_t)D * sizeof(float));
    if (!e) e = kvr_cuda_download(v, kv_dev + D, (size_t)D * sizeof(float));
    kvr_cuda_free(h_dev); kvr_cuda_free(p_dev); kvr_cuda_free(kv_dev);
    return e ? cuda_fail(e, "reconstruction") : KVR_OK;
}

int kvr_cuda_backend_sketch(const kvr_cache *c, int layer, int kv_head, float *sk_k, float *sk_v,
                            int32_t *count, int32_t *load)
{
    cuda_state *s = c->backend_state;
    if (!s || s->p.depth == 0)
        return kvr_fail(KVR_ESTATE, "cuda backend: no device sketch");
    size_t dw = (size_t)s->p.depth * s->p.width, D = (size_t)c->head_dim;
    const char *b = s->block[(size_t)layer * c->n_kv_heads + kv_head];
    int e = kvr_cuda_download(sk_k, b + s->lay.sk_k, dw * D * 4);
    if (!e) e = kvr_cuda_download(sk_v, b + s->lay.sk_v, dw * D * 4);
    if (!e) e = kvr_cuda_download(count, b + s->lay.sk_count, dw * 4);
    if (!e) e = kvr_cuda_download(load, b + s->lay.sk_load, dw * 4);
    return e ? cuda_fail(e, "reading the device sketch") : KVR_OK;
}
