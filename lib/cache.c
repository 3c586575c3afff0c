/* cache.c: the model cache, argument checks and backend dispatch (spec §2).
 *
 * A model cache is n_layers x n_kv_heads head caches (ref/head.c).  Every
 * public call checks all of its arguments and reserves every buffer it needs
 * before it changes anything, so a failed call leaves the cache as it was. */
#include <config.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "../ref/ref.h"
#ifdef KVR_HAVE_CUDA
#include "cuda_backend.h"   /* CUDA dispatch (lib/cuda_backend.c) */
#endif
#include "cpu_backend.h"    /* CPU dispatch (lib/cpu_backend.c) */

/* The live caches (spec §12.1): every cache kvr_cache_create made and
 * kvr_cache_free has not freed.  A call with any other pointer (freed, or
 * never a cache) is refused by comparing pointer values only, without
 * reading the memory it points to. */
static pthread_mutex_t live_lock = PTHREAD_MUTEX_INITIALIZER;
static const kvr_cache **live;       /* [live_cap] */
static size_t live_n, live_cap;

static int live_add(const kvr_cache *c)
{
    int status = KVR_OK;
    pthread_mutex_lock(&live_lock);
    if (live_n == live_cap) {
        size_t cap = live_cap ? 2 * live_cap : 16;
        const kvr_cache **grown = kvr_malloc(cap * sizeof *grown);
        if (!grown) {
            status = kvr_fail(KVR_ENOMEM, "kvr_cache_create: registry of %zu caches", cap);
        } else {
            if (live_n) memcpy(grown, live, live_n * sizeof *grown);
            kvr_free(live);
            live = grown;
            live_cap = cap;
        }
    }
    if (status == KVR_OK)
        live[live_n++] = c;
    pthread_mutex_unlock(&live_lock);
    return status;
}

/* Remove c; 1 when it was live.  Freeing the last live cache frees the
 * registry's storage, so nothing of the library stays allocated. */
static int live_remove(const kvr_cache *c)
{
    int found = 0;
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < live_n; i++)
        if (live[i] == c) {
            live[i] = live[--live_n];
            found = 1;
            break;
        }
    if (live_n == 0) {               /* the last cache: the registry goes too */
        kvr_free(live);
        live = NULL;
        live_cap = 0;
    }
    pthread_mutex_unlock(&live_lock);
    return found;
}

static int is_live(const kvr_cache *c)
{
    int found = 0;
    pthread_mutex_lock(&live_lock);
    for (size_t i = 0; i < live_n && !found; i++)
        found = live[i] == c;
    pthread_mutex_unlock(&live_lock);
    return found;
}

int kvr_check_cache(const kvr_cache *c, const char *fn)
{
    if (!c)
        return kvr_fail(KVR_EINVAL, "%s: cache is NULL", fn);
    if (!is_live(c))
        return kvr_fail(KVR_EINVAL, "%s: cache %p is not a live cache (freed, or not made by kvr_cache_create)",
                        fn, (const void *)c);
    return KVR_OK;
}
#define check_cache kvr_check_cache

static int check_layer(const kvr_cache *c, int layer, const char *fn)
{
    if (layer < 0 || layer >= c->n_layers)
        return kvr_fail(KVR_EINVAL, "%s: layer = %d is not in [0, %d)", fn, layer, c->n_layers);
    return KVR_OK;
}

static ref_head *head_at(const kvr_cache *c, int layer, int kv_head)
{
    return c->heads[(size_t)layer * c->n_kv_heads + kv_head];
}

int kvr_backend_available(kvr_backend backend)
{
    switch (backend) {
    case KVR_BACKEND_REF:
    case KVR_BACKEND_CPU:
        return 1;
    case KVR_BACKEND_CUDA:
#ifdef KVR_HAVE_CUDA
        return kvr_cuda_device_count() > 0;
#else
        return 0;
#endif
    }
    return 0;
}

const char *kvr_backend_name(kvr_backend backend)
{
    switch (backend) {
    case KVR_BACKEND_REF:  return "ref";
    case KVR_BACKEND_CUDA: return "cuda";
    case KVR_BACKEND_CPU:  return "cpu";
    }
    return "?";
}

const char *kvr_part_name(kvr_part part)
{
    switch (part) {
    case KVR_PART_SINK:      return "sink";
    case KVR_PART_RECENT:    return "recent";
    case KVR_PART_CANDIDATE: return "candidate";
    case KVR_PART_VAGUE:     return "vague";
    case KVR_PART_DROPPED:   return "dropped";
    case KVR_PART_QUANTIZED: return "quantized";
    }
    return "?";
}

int kvr_cache_create(kvr_cache **out, int n_layers, int n_kv_heads, int n_q_heads,
                     int head_dim, const kvr_config *cfg, kvr_backend backend)
{
    if (!out)
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: out is NULL");
    *out = NULL;
    if (n_layers < 1 || n_layers > 4096)
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: n_layers = %d is not in [1, 4096]", n_layers);
    if (n_kv_heads < 1 || n_kv_heads > 4096)
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: n_kv_heads = %d is not in [1, 4096]", n_kv_heads);
    if (n_q_heads < n_kv_heads || n_q_heads % n_kv_heads != 0 || n_q_heads > 65536)
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: n_q_heads = %d is not a multiple of n_kv_heads = %d",
                        n_q_heads, n_kv_heads);
    int status = kvr_config_check(cfg, head_dim);
    if (status != KVR_OK)
        return status;
    if (backend != KVR_BACKEND_REF && backend != KVR_BACKEND_CUDA && backend != KVR_BACKEND_CPU)
        return kvr_fail(KVR_EINVAL, "kvr_cache_create: backend = %d is unknown", (int)backend);
    if (backend == KVR_BACKEND_CUDA && !kvr_backend_available(backend))
        return kvr_fail(KVR_EBACKEND, "kvr_cache_create: the cuda backend is not available (%s)",
#ifdef KVR_HAVE_CUDA
                        "built, but no usable GPU was found"
#else
                        "not built: configure --with-cuda"
#endif
                        );

    kvr_cache *c = kvr_calloc(1, sizeof *c);
    if (!c)
        return kvr_fail(KVR_ENOMEM, "kvr_cache_create: %zu bytes", sizeof *c);
    c->n_layers = n_layers;
    c->n_kv_heads = n_kv_heads;
    c->n_q_heads = n_q_heads;
    c->head_dim = head_dim;
    c->group = n_q_heads / n_kv_heads;
    c->cfg = *cfg;
    c->backend = backend;
    c->heads = kvr_calloc((size_t)n_layers * n_kv_heads, sizeof *c->heads);
    if (!c->heads) {
        kvr_free(c);
        return kvr_fail(KVR_ENOMEM, "kvr_cache_create: head table of %d x %d", n_layers, n_kv_heads);
    }
    if ((status = live_add(c)) != KVR_OK) {
        kvr_free(c->heads);
        kvr_free(c);
        return status;
    }
    for (int l = 0; l < n_layers; l++)
        for (int h = 0; h < n_kv_heads; h++) {
            status = ref_head_alloc(&c->heads[(size_t)l * n_kv_heads + h], cfg, head_dim,
                                    (uint32_t)l, (uint32_t)h);
            if (status != KVR_OK) {
                kvr_cache_free(c);
                return status;
            }
        }
#ifdef KVR_HAVE_CUDA
    /* CUDA dispatch: the device copy of the heads */
    if (backend == KVR_BACKEND_CUDA && (status = kvr_cuda_backend_create(c)) != KVR_OK) {
        kvr_cache_free(c);
        return status;
    }
#endif
    /* CPU dispatch: the thread pool and the workspaces */
    if (backend == KVR_BACKEND_CPU && (status = kvr_cpu_backend_create(c)) != KVR_OK) {
        kvr_cache_free(c);
        return status;
    }
    *out = c;
    return KVR_OK;
}

void kvr_cache_free(kvr_cache *c)
{
    if (!c || !live_remove(c))       /* NULL, freed or foreign: nothing to do */
        return;
    for (size_t i = 0; i < (size_t)c->n_layers * c->n_kv_heads; i++)
        ref_head_free(c->heads[i]);
    kvr_free(c->heads);
    ref_work_free(&c->work);
#ifdef KVR_HAVE_CUDA
    if (c->backend == KVR_BACKEND_CUDA)
        kvr_cuda_backend_free(c);   /* CUDA dispatch */
#endif
    if (c->backend == KVR_BACKEND_CPU)
        kvr_cpu_backend_free(c);    /* CPU dispatch */
    kvr_free(c);
}

/* Round n*kvh*D values to the storage type into dst, checking they are
 * finite and representable (with a sketch, at most 2^95 in magnitude; with
 * quantized storage, within float16's range, spec §18.1).  `what` names the
 * argument in messages. */
/* The largest magnitude a cache with a sketch stores (spec §4.2): a float32
 * bucket sum of at most 2^31 such values, and the centred sum S - c * mu,
 * stay below 2^127, inside float32's range. */
#define KVR_SKETCH_INPUT_MAX 0x1p95f

static int round_input(const kvr_cache *c, const float *src, size_t count, float *dst,
                       const char *fn, const char *what)
{
    /* the largest magnitude this configuration stores: quantized storage
     * needs float16's range (its zero points and scales are float16, spec
     * §18.1); a sketch needs 2^95 so that bucket sums stay finite (§4.2) */
    int quantized = c->cfg.store != KVR_STORE_ELEM || c->cfg.kivi_bits > 0 || c->cfg.tier_bits > 0;
    float max = quantized ? 65504.0f : ref_cfg_has_sketch(&c->cfg) ? KVR_SKETCH_INPUT_MAX : INFINITY;
    const char *why = quantized ? "quantized storage holds float16's range (its zero points and scales are "
                                  "float16, spec §18.1)"
                                : "a cache with a sketch stores at most 2^95, so its bucket sums stay finite "
                                  "(spec §4.2)";
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(src[i]))
            return kvr_fail(KVR_ENONFINITE, "%s: %s[%zu] = %g is not finite", fn, what, i, (double)src[i]);
        dst[i] = kvr_elem_round(c->cfg.elem, src[i]);
        if (!isfinite(dst[i]))
            return kvr_fail(KVR_ERANGE, "%s: %s[%zu] = %g overflows %s", fn, what, i, (double)src[i],
                            kvr_elem_name(c->cfg.elem));
        if (fabsf(dst[i]) > max)
            return kvr_fail(KVR_ERANGE, "%s: %s[%zu] = %g is above %g in magnitude: %s",
                            fn, what, i, (double)src[i], (double)max, why);
    }
    return KVR_OK;
}

/* KIVI keeps every token (spec §18.6): KVR_ESTATE when n more tokens would
 * not fit its capacity of S + R + Q positions. */
static int check_kivi_room(const kvr_cache *c, long len, int n, const char *fn)
{
    const kvr_config *k = &c->cfg;
    long cap = (long)k->sinks + k->window + k->kivi_tokens;
    if (k->kivi_bits > 0 && len + n > cap)
        return kvr_fail(KVR_ESTATE, "%s: %ld + %d tokens exceed the KIVI cache's capacity of %ld positions "
                        "(it keeps every token; plan it for a longer context)", fn, len, n, cap);
    return KVR_OK;
}

static int check_finite(const float *x, size_t count, const char *fn, const char *what)
{
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return kvr_fail(KVR_ENONFINITE, "%s: %s[%zu] = %g is not finite", fn, what, i, (double)x[i]);
    return KVR_OK;
}

int kvr_append(kvr_cache *c, int layer, int n, const float *k, const float *v)
{
    static const char fn[] = "kvr_append";
    int status = check_cache(c, fn);
    if (status == KVR_OK) status = check_layer(c, layer, fn);
    if (status != KVR_OK) return status;
    if (n < 1)
        return kvr_fail(KVR_EINVAL, "%s: n = %d is not positive", fn, n);
    if (!k || !v)
        return kvr_fail(KVR_EINVAL, "%s: %s is NULL", fn, !k ? "k" : "v");
    long len = head_at(c, layer, 0)->n;
    if ((long)n > INT32_MAX - len)
        return kvr_fail(KVR_EINVAL, "%s: %ld + %d tokens exceed 2^31-1 positions", fn, len, n);
    if ((status = check_kivi_room(c, len, n, fn)) != KVR_OK)
        return status;
    size_t row = (size_t)c->n_kv_heads * c->head_dim, count = (size_t)n * row;
    float *rk = kvr_malloc(count * sizeof(float)), *rv = kvr_malloc(count * sizeof(float));
    if (!rk || !rv) {
        kvr_free(rk); kvr_free(rv);
        return kvr_fail(KVR_ENOMEM, "%s: %zu values", fn, 2 * count);
    }
    status = round_input(c, k, count, rk, fn, "k");
    if (status == KVR_OK)
        status = round_input(c, v, count, rv, fn, "v");
#ifdef KVR_HAVE_CUDA
    if (status == KVR_OK && c->backend == KVR_BACKEND_CUDA) {   /* CUDA dispatch */
        status = kvr_cuda_backend_append(c, layer, n, rk, rv);
        kvr_free(rk);
        kvr_free(rv);
        return status;
    }
#endif
    if (status == KVR_OK)
        for (int t = 0; t < n; t++)
            for (int h = 0; h < c->n_kv_heads; h++) {
                size_t at = (size_t)t * row + (size_t)h * c->head_dim;
                ref_append(head_at(c, layer, h), rk + at, rv + at);
            }
    kvr_free(rk);
    kvr_free(rv);
    return status;
}

int kvr_prefill(kvr_cache *c, int layer, int n, const float *k, const float *v,
                int n_obs, const float *q_obs)
{
    static const char fn[] = "kvr_prefill";
    int status = check_cache(c, fn);
    if (status == KVR_OK) status = check_layer(c, layer, fn);
    if (status != KVR_OK) return status;
    if (head_at(c, layer, 0)->n != 0)
        return kvr_fail(KVR_ESTATE, "%s: layer %d already holds %ld tokens; prefill needs an empty layer",
                        fn, layer, head_at(c, layer, 0)->n);
    if (n < 1)
        return kvr_fail(KVR_EINVAL, "%s: n = %d is not positive", fn, n);
    if (!k || !v)
        return kvr_fail(KVR_EINVAL, "%s: %s is NULL", fn, !k ? "k" : "v");
    int need_q = ref_cfg_keeps_scores(&c->cfg);
    if (n_obs < 0 || n_obs > n || (need_q && n_obs < 1))
        return kvr_fail(KVR_EINVAL, "%s: n_obs = %d is not in [%d, n = %d]", fn, n_obs, need_q, n);
    if (n_obs > 0 && !q_obs)
        return kvr_fail(KVR_EINVAL, "%s: q_obs is NULL with n_obs = %d", fn, n_obs);
    if ((status = check_kivi_room(c, 0, n, fn)) != KVR_OK)
        return status;
    int D = c->head_dim, G = c->group, H = c->n_kv_heads;
    size_t row = (size_t)H * D, count = (size_t)n * row;
    if (n_obs > 0) {
        status = check_finite(q_obs, (size_t)n_obs * c->n_q_heads * D, fn, "q_obs");
        if (status != KVR_OK) return status;
    }
    float *rk = kvr_malloc(count * sizeof(float)), *rv = kvr_malloc(count * sizeof(float));
    float *hk = kvr_malloc((size_t)n * D * sizeof(float)), *hv = kvr_malloc((size_t)n * D * sizeof(float));
    float *hq = kvr_malloc(((size_t)n_obs * G * D + 1) * sizeof(float));
    if (!rk || !rv || !hk || !hv || !hq)
        status = kvr_fail(KVR_ENOMEM, "%s: buffers for %d tokens", fn, n);
    if (status == KVR_OK) status = round_input(c, k, count, rk, fn, "k");
    if (status == KVR_OK) status = round_input(c, v, count, rv, fn, "v");
    for (int h = 0; status == KVR_OK && h < H; h++) {
        for (int t = 0; t < n; t++) {         /* this head's keys and values, [n][D] */
            memcpy(hk + (size_t)t * D, rk + (size_t)t * row + (size_t)h * D, (size_t)D * sizeof(float));
            memcpy(hv + (size_t)t * D, rv + (size_t)t * row + (size_t)h * D, (size_t)D * sizeof(float));
        }
        for (int j = 0; j < n_obs; j++)       /* its group's queries, [n_obs][G][D] */
            memcpy(hq + (size_t)j * G * D, q_obs + ((size_t)j * c->n_q_heads + (size_t)h * G) * D,
                   (size_t)G * D * sizeof(float));
        status = ref_prefill(head_at(c, layer, h), G, n, hk, hv, n_obs, hq);
        if (status != KVR_OK)                 /* undo the heads done so far: the layer was empty */
            for (int u = 0; u <= h; u++)
                ref_head_reset(head_at(c, layer, u));
    }
#ifdef KVR_HAVE_CUDA
    if (status == KVR_OK && c->backend == KVR_BACKEND_CUDA) {   /* CUDA dispatch: bring the device up to date */
        status = kvr_cuda_backend_prefill(c, layer, n, rk, rv);
        if (status != KVR_OK)
            for (int u = 0; u < H; u++)
                ref_head_reset(head_at(c, layer, u));
    }
#endif
    kvr_free(rk); kvr_free(rv); kvr_free(hk); kvr_free(hv); kvr_free(hq);
    return status;
}

int kvr_attend(kvr_cache *c, int layer, const float *q, float *out, unsigned flags)
{
    static const char fn[] = "kvr_attend";
    int status = check_cache(c, fn);
    if (status == KVR_OK) status = check_layer(c, layer, fn);
    if (status != KVR_OK) return status;
    if (!q || !out)
        return kvr_fail(KVR_EINVAL, "%s: %s is NULL", fn, !q ? "q" : "out");
    if (flags & ~(unsigned)KVR_ATTEND_PEEK)
        return kvr_fail(KVR_EINVAL, "%s: flags = %#x has unknown bits", fn, flags);
    long n = head_at(c, layer, 0)->n;
    if (n == 0)
        return kvr_fail(KVR_ESTATE, "%s: layer %d is empty; append a token first", fn, layer);
    status = check_finite(q, (size_t)c->n_q_heads * c->head_dim, fn, "q");
    if (status != KVR_OK) return status;
    status = ref_work_reserve(&c->work, n, c->head_dim);
    if (status == KVR_OK)   /* every head cache of a model cache has the same configuration */
        status = ref_work_reserve_moment(&c->work, head_at(c, layer, 0));
    if (status != KVR_OK) return status;
#ifdef KVR_HAVE_CUDA
    /* CUDA dispatch; the moment route (spec §17) has no kernel yet and runs
     * below on the head caches, which a CUDA cache keeps whole on the host */
    if (c->backend == KVR_BACKEND_CUDA
        && !(c->cfg.vague == KVR_VAGUE_MOMENT && c->cfg.depth > 0 && c->cfg.width > 0))
        return kvr_cuda_backend_attend(c, layer, q, out, !(flags & KVR_ATTEND_PEEK));
#endif
    if (kvr_cpu_backend_takes(c))   /* CPU dispatch; other configurations run below */
        return kvr_cpu_backend_attend(c, layer, q, out, !(flags & KVR_ATTEND_PEEK));
    size_t group_stride = (size_t)c->group * c->head_dim;
    for (int h = 0; h < c->n_kv_heads; h++)   /* spec §17: hands anything else to ref_attend */
        ref_attend_moment(head_at(c, layer, h), c->group, q + h * group_stride,
                          out + h * group_stride, !(flags & KVR_ATTEND_PEEK), &c->work);
    return KVR_OK;
}

static int check_position(const kvr_cache *c, int layer, int kv_head, long pos, const char *fn)
{
    int status = check_cache(c, fn);
    if (status == KVR_OK) status = check_layer(c, layer, fn);
    if (status != KVR_OK) return status;
    if (kv_head < 0 || kv_head >= c->n_kv_heads)
        return kvr_fail(KVR_EINVAL, "%s: kv_head = %d is not in [0, %d)", fn, kv_head, c->n_kv_heads);
    long n = head_at(c, layer, kv_head)->n;
    if (pos < 0 || pos >= n)
        return kvr_fail(KVR_EINVAL, "%s: pos = %ld is not in [0, %ld)", fn, pos, n);
    return KVR_OK;
}

int kvr_reconstruct(const kvr_cache *c, int layer, int kv_head, long pos, float *k, float *v)
{
    static const char fn[] = "kvr_reconstruct";
    int status = check_position(c, layer, kv_head, pos, fn);
    if (status != KVR_OK) return status;
    if (!k || !v)
        return kvr_fail(KVR_EINVAL, "%s: %s is NULL", fn, !k ? "k" : "v");
    const ref_head *h = head_at(c, layer, kv_head);
    kvr_part part = ref_part_of(h, pos);
    if (part == KVR_PART_DROPPED)
        return kvr_fail(KVR_EDROPPED, "%s: position %ld of layer %d head %d was dropped", fn, pos, layer, kv_head);
#ifdef KVR_HAVE_CUDA
    if (part == KVR_PART_VAGUE && c->backend == KVR_BACKEND_CUDA)   /* CUDA dispatch */
        return kvr_cuda_backend_reconstruct(c, layer, kv_head, pos, k, v);
#endif
    if (part == KVR_PART_VAGUE)
        ref_reconstruct(h, pos, k, v);
    else
        ref_exact_kv(h, pos, k, v);
    return KVR_OK;
}

int kvr_part_of(const kvr_cache *c, int layer, int kv_head, long pos, kvr_part *part)
{
    static const char fn[] = "kvr_part_of";
    int status = check_position(c, layer, kv_head, pos, fn);
    if (status != KVR_OK) return status;
    if (!part)
        return kvr_fail(KVR_EINVAL, "%s: part is NULL", fn);
    *part = ref_part_of(head_at(c, layer, kv_head), pos);
    return KVR_OK;
}

int kvr_score_of(const kvr_cache *c, int layer, int kv_head, long pos, float *score)
{
    static const char fn[] = "kvr_score_of";
    int status = check_position(c, layer, kv_head, pos, fn);
    if (status != KVR_OK) return status;
    if (!score)
        return kvr_fail(KVR_EINVAL, "%s: score is NULL", fn);
    float *slot = ref_score_slot(head_at(c, layer, kv_head), pos);
    if (!slot)
        return kvr_fail(KVR_ESTATE, "%s: position %ld carries no score (part %s, or scores not kept)", fn, pos,
                        kvr_part_name(ref_part_of(head_at(c, layer, kv_head), pos)));
    *score = *slot;
    return KVR_OK;
}

long kvr_length(const kvr_cache *c, int layer)
{
    if (check_cache(c, "kvr_length") != KVR_OK || check_layer(c, layer, "kvr_length") != KVR_OK)
        return -1;
    return head_at(c, layer, 0)->n;
}

int kvr_bytes(const kvr_cache *c, size_t *held, size_t *full)
{
    int status = check_cache(c, "kvr_bytes");
    if (status != KVR_OK) return status;
    size_t sum_held = 0, sum_full = 0;
    for (int l = 0; l < c->n_layers; l++)
        for (int h = 0; h < c->n_kv_heads; h++) {
            const ref_head *hd = head_at(c, l, h);
            sum_held += ref_head_bytes(hd);
            sum_full += kvr_full_bytes(hd->n, c->head_dim, c->cfg.elem);
        }
    if (held) *held = sum_held;
    if (full) *full = sum_full;
    return KVR_OK;
}

const kvr_config *kvr_cache_config(const kvr_cache *c)
{
    return check_cache(c, "kvr_cache_config") == KVR_OK ? &c->cfg : NULL;
}

int kvr_cache_dims(const kvr_cache *c, int *n_layers, int *n_kv_heads, int *n_q_heads, int *head_dim)
{
    int status = check_cache(c, "kvr_cache_dims");
    if (status != KVR_OK) return status;
    if (n_layers) *n_layers = c->n_layers;
    if (n_kv_heads) *n_kv_heads = c->n_kv_heads;
    if (n_q_heads) *n_q_heads = c->n_q_heads;
    if (head_dim) *head_dim = c->head_dim;
    return KVR_OK;
}

/* For tests and tools inside the project: the reference head cache. */
const ref_head *kvr_cache_head(const kvr_cache *c, int layer, int kv_head)
{
    return head_at(c, layer, kv_head);
}
