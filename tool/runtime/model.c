/* model.c: the forward pass of the llama and Gemma 3 families (doc/model.md
 * §1, §9).
 *
 * One token at a time (lm_model_step), one token for each of several caches
 * in lock step (lm_model_step_many), or a whole prompt (lm_model_prefill).
 * Gemma 3's differences from llama are fields of the model (loader.h): its
 * norms of q, k and of each block's output, GeLU gating, the embedding
 * scale, NeoX RoPE with a base per layer kind, and local layers that attend
 * to a sliding window; those keep their window in the state's own cache
 * (lm_model_state.local), the kvr_cache holds the global layers only.
 * Everything is float32.  The matrix products go through GSL's CBLAS
 * interface when configure linked an optimized BLAS behind it
 * (KVR_HAVE_BLAS: OpenBLAS), otherwise through the plain loops below, whose
 * order of every sum is the one written.  The keys and values live only in
 * the kvr_cache. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "model.h"
#ifdef KVR_HAVE_BLAS
#include <gsl/gsl_cblas.h>
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
void openblas_set_num_threads(int n);   /* OpenBLAS's own, not in gsl_cblas.h */
#endif
#endif

int lm_blas(void)
{
#ifdef KVR_HAVE_BLAS
    return 1;
#else
    return 0;
#endif
}

void lm_blas_threads(int n)
{
#if defined(KVR_HAVE_BLAS) && defined(HAVE_OPENBLAS_SET_NUM_THREADS)
    openblas_set_num_threads(n < 1 ? 1 : n);
#else
    (void)n;
#endif
}

int lm_model_load(lm_model *m, const char *path)
{
    memset(m, 0, sizeof *m);
    if (!path)
        return KVR_EINVAL;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return lm_model_fail(KVR_EIO, "%s is a directory, not a model file (a llama2.c checkpoint or a GGUF file)", path);
    FILE *f = fopen(path, "rb");
    char magic[4] = {0};
    if (f) {
        size_t got = fread(magic, 1, 4, f);
        fclose(f);
        if (got == 4 && !memcmp(magic, "GGUF", 4))
            return lm_model_load_gguf(m, path);
    }
    return lm_model_load_llama2c(m, path);
}

/* ---- state -------------------------------------------------------------- */

int lm_model_state_init(lm_model_state *s, const lm_model *m)
{
    size_t qd = (size_t)m->n_heads * m->head_dim, kd = (size_t)m->n_kv_heads * m->head_dim;
    memset(s, 0, sizeof *s);
    s->x = malloc(sizeof(float) * m->dim);
    s->xb = malloc(sizeof(float) * m->dim);
    s->xo = malloc(sizeof(float) * m->dim);
    s->q = malloc(sizeof(float) * qd);
    s->att = malloc(sizeof(float) * qd);
    s->k = malloc(sizeof(float) * kd);
    s->v = malloc(sizeof(float) * kd);
    s->hb = malloc(sizeof(float) * m->hidden_dim);
    s->hb2 = malloc(sizeof(float) * m->hidden_dim);
    s->local = NULL;
    if (!s->x || !s->xb || !s->xo || !s->q || !s->att || !s->k || !s->v || !s->hb || !s->hb2) {
        lm_model_state_free(s);
        return lm_model_fail(KVR_ENOMEM, "model state: out of memory");
    }
    return KVR_OK;
}

void lm_model_state_free(lm_model_state *s)
{
    free(s->x); free(s->xb); free(s->xo); free(s->q); free(s->att);
    free(s->k); free(s->v); free(s->hb); free(s->hb2);
    kvr_cache_free(s->local);
    memset(s, 0, sizeof *s);
}

kvr_backend lm_cache_backend = KVR_BACKEND_REF;

int lm_model_cache(const lm_model *m, const kvr_config *cfg, kvr_cache **out)
{
    return kvr_cache_create(out, lm_global_layers(m), m->n_kv_heads, m->n_heads, m->head_dim,
                            cfg, lm_cache_backend);
}

/* The local layers' cache of a state, made anew (empty) for a sequence
 * whose global cache is `cache`: every local layer keeps the last
 * m->window positions exact, in the element type of the global cache, and
 * drops the rest (StreamingLLM's partition with no sinks: exactly the
 * model's sliding window).  Nothing to do for a model with no local layer. */
static int local_reset(const lm_model *m, lm_model_state *s, const kvr_cache *cache)
{
    kvr_cache_free(s->local);
    s->local = NULL;
    int n_local = m->n_layers - lm_global_layers(m);
    if (n_local == 0)
        return KVR_OK;
    const kvr_config *gc = kvr_cache_config(cache);
    kvr_config cfg;
    kvr_config_default(&cfg);
    cfg.elem = gc ? gc->elem : KVR_F32;
    cfg.sinks = 0;
    cfg.window = m->window;
    cfg.candidates = 0;
    cfg.depth = 0;
    cfg.width = 0;
    cfg.importance = KVR_IMP_NONE;
    int status = kvr_cache_create(&s->local, n_local, m->n_kv_heads, m->n_heads, m->head_dim,
                                  &cfg, lm_cache_backend);
    if (status != KVR_OK)
        return lm_model_fail(status, "the local layers' window cache: %s", kvr_last_error());
    return KVR_OK;
}

int lm_model_window_bytes(const lm_model_state *s, size_t *held, size_t *full)
{
    size_t h = 0, f = 0;
    if (s->local && kvr_bytes(s->local, &h, &f) != KVR_OK)
        return lm_model_fail(KVR_EINVAL, "window bytes: %s", kvr_last_error());
    if (held) *held = h;
    if (full) *full = f;
    return KVR_OK;
}

/* ---- building blocks ---------------------------------------------------- */

/* out = x / sqrt(mean(x^2) + eps) * w.   x, w, out: [n] */
static void rmsnorm(float *out, const float *x, const float *w, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        out[i] = x[i] * scale * w[i];
}

/* Each of n_heads heads of x, RMSNorm'd in place with the same weights.
 *   x: [n_heads][head_dim], w: [head_dim] */
static void head_norm(float *x, const float *w, int n_heads, int head_dim, float eps)
{
    for (int h = 0; h < n_heads; h++)
        rmsnorm(x + (size_t)h * head_dim, x + (size_t)h * head_dim, w, head_dim, eps);
}

/* The gate of the feed-forward, in place: SwiGLU g * sigmoid(g) * u for
 * llama, GeLU (tanh form) 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3))) * u
 * for Gemma.   g, u: [n] */
static void ffn_gate(const lm_model *m, float *g, const float *u, size_t n)
{
    if (m->gelu) {
        const float c = 0.7978845608028654f;   /* sqrt(2/pi) */
        for (size_t i = 0; i < n; i++) {
            float x = g[i];
            g[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * u[i];
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        g[i] = x / (1.0f + expf(-x)) * u[i];
    }
}

#ifndef KVR_HAVE_BLAS
/* w . x over n elements with eight interleaved partial sums (j mod 8),
 * added in order at the end, so the compiler can vectorise without
 * reassociating anything itself.   w, x: [n] */
static float dot(const float *w, const float *x, int n)
{
    float acc[8] = {0};
    int j = 0;
    for (; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++)
            acc[u] += w[j + u] * x[j + u];
    float sum = 0.0f;
    for (int u = 0; u < 8; u++)
        sum += acc[u];
    for (; j < n; j++)
        sum += w[j] * x[j];
    return sum;
}
#endif

/* y = W x.   W: [rows][cols], x: [cols], y: [rows]
 * With BLAS one sgemv; its order of summation is the library's, fixed for a
 * given shape, so the same W and x give the same y whatever else runs. */
static void matvec(float *y, const float *W, const float *x, int rows, int cols)
{
#ifdef KVR_HAVE_BLAS
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, cols, 1.0f, W, cols, x, 1, 0.0f, y, 1);
#else
    for (int r = 0; r < rows; r++)
        y[r] = dot(W + (size_t)r * cols, x, cols);
#endif
}

/* Y[t] = W X[t] for n tokens.  With BLAS one sgemm; otherwise in blocks of
 * 32 tokens so that each row of W serves 32 tokens while it is in cache,
 * with the same dot() as matvec.
 *   W: [rows][cols], X: [n][cols] (row stride xs), Y: [n][rows] (row stride ys) */
static void matmul(float *Y, size_t ys, const float *W, const float *X, size_t xs, int n, int rows, int cols)
{
#ifdef KVR_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, cols, 1.0f, X, (int)xs, W, cols,
                0.0f, Y, (int)ys);
#else
    for (int t0 = 0; t0 < n; t0 += 32) {
        int t1 = t0 + 32 < n ? t0 + 32 : n;
        for (int r = 0; r < rows; r++) {
            const float *w = W + (size_t)r * cols;
            for (int t = t0; t < t1; t++)
                Y[(size_t)t * ys + r] = dot(w, X + (size_t)t * xs, cols);
        }
    }
#endif
}

/* Rotate pair i < rope_dims/2 of each head by the angle
 * pos * base^(-2i/rope_dims); the pair is (2i, 2i+1) (llama's GGUF
 * layout), or (i, i + rope_dims/2) with neox (GPT-NeoX's, Gemma's).  Angle,
 * cos and sin in float64, rounded to float32 once.   x: [n_heads][head_dim] */
static void rope(float *x, int n_heads, int head_dim, int rope_dims, float base, long pos, int neox)
{
    for (int i = 0; i < rope_dims / 2; i++) {
        double freq = pow((double)base, -2.0 * i / (double)rope_dims);
        double angle = (double)pos * freq;
        float c = (float)cos(angle), s = (float)sin(angle);
        int i0 = neox ? i : 2 * i, i1 = neox ? i + rope_dims / 2 : 2 * i + 1;
        for (int h = 0; h < n_heads; h++) {
            float *p = x + (size_t)h * head_dim;
            float a = p[i0], b = p[i1];
            p[i0] = a * c - b * s;
            p[i1] = a * s + b * c;
        }
    }
}

/* After the projections: Gemma's norms of each query and key head, RoPE
 * with the layer's base, and the attention scale folded into q (kvr_attend
 * scales by 1/sqrt(head_dim); nothing is multiplied when the model's scale
 * is that one).   q: [n_heads][head_dim], k: [n_kv_heads][head_dim] */
static void qk_finish(const lm_model *m, int l, float *q, float *k, long pos)
{
    int hd = m->head_dim;
    if (m->q_norm) {
        head_norm(q, m->q_norm + (size_t)l * hd, m->n_heads, hd, m->rms_eps);
        head_norm(k, m->k_norm + (size_t)l * hd, m->n_kv_heads, hd, m->rms_eps);
    }
    float base = lm_layer_local(m, l) ? m->rope_base_local : m->rope_base;
    rope(q, m->n_heads, hd, m->rope_dims, base, pos, m->rope_neox);
    rope(k, m->n_kv_heads, hd, m->rope_dims, base, pos, m->rope_neox);
    /* the library scales logits by 1/sqrt(hd) (kvreviver.h); a model whose
     * scale differs (Gemma 3's query_pre_attn_scalar) scales q by the ratio.
     * Llama's scale is the library's: q is left alone, so no rounding of
     * 1/sqrtf(hd) * sqrtf(hd) (not 1 for hd = 8) changes its logits. */
    float f = m->arch == LM_ARCH_LLAMA ? 1.0f : m->attn_scale * sqrtf((float)hd);
    if (f != 1.0f)
        for (int i = 0; i < m->n_heads * hd; i++)
            q[i] *= f;
}

/* The cache and layer index that hold layer l: the global cache's layer,
 * or the state's window cache for a local layer. */
static kvr_cache *layer_cache(const lm_model *m, lm_model_state *s, kvr_cache *cache, int l, int *li)
{
    int g = lm_global_index(m, l);
    if (g >= 0) {
        *li = g;
        return cache;
    }
    int n = 0;
    for (int i = 0; i < l; i++)
        n += lm_layer_local(m, i);
    *li = n;
    return s->local;
}

/* Attention input of layer l for the residual x at position pos: writes
 * s->q ([n_heads][head_dim]), s->k and s->v ([n_kv_heads][head_dim]). */
static void layer_qkv(const lm_model *m, lm_model_state *s, int l, const float *x, long pos)
{
    int D = m->dim, qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    rmsnorm(s->xb, x, m->rms_att + (size_t)l * D, D, m->rms_eps);
    matvec(s->q, m->wq + (size_t)l * qd * D, s->xb, qd, D);
    matvec(s->k, m->wk + (size_t)l * kd * D, s->xb, kd, D);
    matvec(s->v, m->wv + (size_t)l * kd * D, s->xb, kd, D);
    qk_finish(m, l, s->q, s->k, pos);
}

/* The rest of layer l after attention: x += Wo att; x += W2 (silu(W1 xn) *
 * (W3 xn)) with xn = rmsnorm(x).   x: [dim], att: [n_heads*head_dim] */
static void layer_finish(const lm_model *m, lm_model_state *s, int l, float *x, const float *att)
{
    int D = m->dim, H = m->hidden_dim, qd = m->n_heads * m->head_dim;
    matvec(s->xo, m->wo + (size_t)l * D * qd, att, D, qd);
    if (m->rms_att_post)
        rmsnorm(s->xo, s->xo, m->rms_att_post + (size_t)l * D, D, m->rms_eps);
    for (int i = 0; i < D; i++)
        x[i] += s->xo[i];
    rmsnorm(s->xb, x, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
    matvec(s->hb, m->w1 + (size_t)l * H * D, s->xb, H, D);
    matvec(s->hb2, m->w3 + (size_t)l * H * D, s->xb, H, D);
    ffn_gate(m, s->hb, s->hb2, (size_t)H);
    matvec(s->xo, m->w2 + (size_t)l * D * H, s->hb, D, H);
    if (m->rms_ffn_post)
        rmsnorm(s->xo, s->xo, m->rms_ffn_post + (size_t)l * D, D, m->rms_eps);
    for (int i = 0; i < D; i++)
        x[i] += s->xo[i];
}

/* Gemma's final soft-capping, in place (none when m->softcap is 0).
 *   logits: [vocab_size] */
static void softcap(const lm_model *m, float *logits)
{
    if (m->softcap > 0.0f)
        for (int i = 0; i < m->vocab_size; i++)
            logits[i] = m->softcap * tanhf(logits[i] / m->softcap);
}

/* The token's embedding, scaled (Gemma).   x: [dim] */
static void embed(const lm_model *m, float *x, int token)
{
    memcpy(x, m->token_embedding + (size_t)token * m->dim, sizeof(float) * m->dim);
    if (m->embed_scale != 1.0f)
        for (int i = 0; i < m->dim; i++)
            x[i] *= m->embed_scale;
}

/* The classifier's rows go in blocks of CLS_BLOCK: lm_model_step_many runs
 * every cache's block while that block of Wcls is in cache, and
 * lm_model_step makes the same calls, so both give the same logits. */
enum { CLS_BLOCK = 4096 };

/* Rows r0 .. r1-1 of the classifier on the normalised xb.
 *   xb: [dim], logits: [vocab_size] */
static void classify_rows(const lm_model *m, const float *xb, float *logits, int r0, int r1)
{
    matvec(logits + r0, m->wcls + (size_t)r0 * m->dim, xb, r1 - r0, m->dim);
}

/* Final norm and classifier.   x: [dim], logits: [vocab_size] */
static void classify(const lm_model *m, lm_model_state *s, const float *x, float *logits)
{
    rmsnorm(s->xb, x, m->rms_final, m->dim, m->rms_eps);
    for (int r0 = 0; r0 < m->vocab_size; r0 += CLS_BLOCK)
        classify_rows(m, s->xb, logits, r0, r0 + CLS_BLOCK < m->vocab_size ? r0 + CLS_BLOCK : m->vocab_size);
    softcap(m, logits);
}

/* Before a step at position pos: a fresh window cache at the start of a
 * sequence, else one that has seen exactly the positions the cache has. */
static int local_ready(const lm_model *m, lm_model_state *s, kvr_cache *cache, long pos)
{
    if (m->window == 0)
        return KVR_OK;
    if (pos == 0)
        return local_reset(m, s, cache);
    if (!s->local || kvr_length(s->local, 0) != pos)
        return lm_model_fail(KVR_ESTATE, "the state's window cache holds %ld positions, the cache %ld "
                             "(a state follows one sequence: prefill it with lm_prompt_prefill)",
                             s->local ? kvr_length(s->local, 0) : 0L, pos);
    return KVR_OK;
}

static int check_token(const lm_model *m, int token)
{
    if (token < 0 || token >= m->vocab_size)
        return lm_model_fail(KVR_EINVAL, "token %d is not in the vocabulary of %d", token, m->vocab_size);
    return KVR_OK;
}

int lm_model_step(const lm_model *m, lm_model_state *s, kvr_cache *cache,
                   int token, float *logits)
{
    int status = check_token(m, token);
    if (status != KVR_OK)
        return status;
    long pos = kvr_length(cache, 0);
    if ((status = local_ready(m, s, cache, pos)) != KVR_OK)
        return status;
    embed(m, s->x, token);
    for (int l = 0; l < m->n_layers; l++) {
        int li;
        kvr_cache *lc = layer_cache(m, s, cache, l, &li);
        layer_qkv(m, s, l, s->x, pos);
        status = kvr_append(lc, li, 1, s->k, s->v);
        if (status == KVR_OK)
            status = kvr_attend(lc, li, s->q, s->att, 0);
        if (status != KVR_OK)
            return lm_model_fail(status, "layer %d at position %ld: %s", l, pos, kvr_last_error());
        layer_finish(m, s, l, s->x, s->att);
    }
    if (logits)
        classify(m, s, s->x, logits);
    return KVR_OK;
}

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int lm_model_step_many(const lm_model *m, int n, lm_model_state *const *s, kvr_cache *const *cache,
                       const int *token, float *const *logits, int *status, double *attend_seconds)
{
    int D = m->dim, H = m->hidden_dim, qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    int first = KVR_OK;
    long pos[LM_STEP_MANY_MAX];
    if (n < 0 || n > LM_STEP_MANY_MAX)
        return lm_model_fail(KVR_EINVAL, "%d caches in one step: 0 to %d", n, LM_STEP_MANY_MAX);
    for (int c = 0; c < n; c++) {
        if (status[c] != KVR_OK) continue;
        status[c] = check_token(m, token[c]);
        if (status[c] != KVR_OK) { if (first == KVR_OK) first = status[c]; continue; }
        pos[c] = kvr_length(cache[c], 0);
        if (attend_seconds) attend_seconds[c] = 0.0;
        if ((status[c] = local_ready(m, s[c], cache[c], pos[c])) != KVR_OK) {
            if (first == KVR_OK) first = status[c];
            continue;
        }
        embed(m, s[c]->x, token[c]);
    }
/* every cache still running, in order */
#define EACH for (int c = 0; c < n; c++) if (status[c] == KVR_OK)
    for (int l = 0; l < m->n_layers; l++) {
        /* layer_qkv, one matrix at a time for every cache */
        EACH rmsnorm(s[c]->xb, s[c]->x, m->rms_att + (size_t)l * D, D, m->rms_eps);
        EACH matvec(s[c]->q, m->wq + (size_t)l * qd * D, s[c]->xb, qd, D);
        EACH matvec(s[c]->k, m->wk + (size_t)l * kd * D, s[c]->xb, kd, D);
        EACH matvec(s[c]->v, m->wv + (size_t)l * kd * D, s[c]->xb, kd, D);
        EACH qk_finish(m, l, s[c]->q, s[c]->k, pos[c]);
        EACH {
            double t0 = attend_seconds ? wall_seconds() : 0.0;
            int li;
            kvr_cache *lc = layer_cache(m, s[c], cache[c], l, &li);
            int st = kvr_append(lc, li, 1, s[c]->k, s[c]->v);
            if (st == KVR_OK)
                st = kvr_attend(lc, li, s[c]->q, s[c]->att, 0);
            if (attend_seconds) attend_seconds[c] += wall_seconds() - t0;
            if (st != KVR_OK) {
                status[c] = st;
                if (first == KVR_OK)
                    first = lm_model_fail(st, "cache %d, layer %d at position %ld: %s", c, l, pos[c], kvr_last_error());
            }
        }
        /* layer_finish, one matrix at a time */
        EACH matvec(s[c]->xo, m->wo + (size_t)l * D * qd, s[c]->att, D, qd);
        EACH {
            if (m->rms_att_post)
                rmsnorm(s[c]->xo, s[c]->xo, m->rms_att_post + (size_t)l * D, D, m->rms_eps);
            for (int i = 0; i < D; i++)
                s[c]->x[i] += s[c]->xo[i];
            rmsnorm(s[c]->xb, s[c]->x, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
        }
        EACH matvec(s[c]->hb, m->w1 + (size_t)l * H * D, s[c]->xb, H, D);
        EACH matvec(s[c]->hb2, m->w3 + (size_t)l * H * D, s[c]->xb, H, D);
        EACH ffn_gate(m, s[c]->hb, s[c]->hb2, (size_t)H);
        EACH matvec(s[c]->xo, m->w2 + (size_t)l * D * H, s[c]->hb, D, H);
        EACH {
            if (m->rms_ffn_post)
                rmsnorm(s[c]->xo, s[c]->xo, m->rms_ffn_post + (size_t)l * D, D, m->rms_eps);
            for (int i = 0; i < D; i++)
                s[c]->x[i] += s[c]->xo[i];
        }
    }
    EACH rmsnorm(s[c]->xb, s[c]->x, m->rms_final, m->dim, m->rms_eps);
    for (int r0 = 0; r0 < m->vocab_size; r0 += CLS_BLOCK) {
        int r1 = r0 + CLS_BLOCK < m->vocab_size ? r0 + CLS_BLOCK : m->vocab_size;
        EACH if (logits[c]) classify_rows(m, s[c]->xb, logits[c], r0, r1);
    }
    EACH if (logits[c]) softcap(m, logits[c]);
#undef EACH
    return first;
}

/* Exact causal attention of n positions of one layer.
 *   q:   [n][n_heads][head_dim]
 *   k,v: [n][n_kv_heads][head_dim]
 *   out: [n][n_heads][head_dim]
 *   p:   [ATT_BLOCK][n] scratch
 * With BLAS, per query head and block of ATT_BLOCK query positions: the
 * scores of the block against the keys up to its last position in one
 * sgemm, a stable softmax of each row over its own causal prefix (the rest
 * of the row set to 0), and the output in a second sgemm.  Without BLAS the
 * plain loops, one query at a time. */
enum { ATT_BLOCK = 64 };

static void causal_attention(const lm_model *m, int n, const float *q, const float *k,
                             const float *v, float *out, float *p, int window)
{
    int D = m->head_dim, Hq = m->n_heads, H = m->n_kv_heads, G = Hq / H;
    float scale = 1.0f / sqrtf((float)D);
    /* with a window W > 0, position t sees keys first(t) = max(0, t-W+1) .. t */
#define FIRST(t) (window > 0 && (t) - window + 1 > 0 ? (t) - window + 1 : 0)
#ifdef KVR_HAVE_BLAS
    for (int qh = 0; qh < Hq; qh++) {
        int h = qh / G;
        for (int t0 = 0; t0 < n; t0 += ATT_BLOCK) {
            int nb = t0 + ATT_BLOCK < n ? ATT_BLOCK : n - t0;
            int k0 = FIRST(t0), nk = t0 + nb - k0;   /* keys k0 .. t0+nb-1 */
            /* p[i][u - k0] = scale * q[t0+i] . k[u] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nk, D, scale,
                        q + ((size_t)t0 * Hq + qh) * D, Hq * D, k + ((size_t)k0 * H + h) * D, H * D, 0.0f, p, nk);
            for (int i = 0; i < nb; i++) {
                float *row = p + (size_t)i * nk, max = -INFINITY, sum = 0.0f;
                int last = t0 + i - k0, first = FIRST(t0 + i) - k0;
                for (int u = first; u <= last; u++)
                    if (row[u] > max) max = row[u];
                for (int u = first; u <= last; u++) {
                    row[u] = expf(row[u] - max);
                    sum += row[u];
                }
                float inv = 1.0f / sum;
                for (int u = 0; u < first; u++)
                    row[u] = 0.0f;
                for (int u = first; u <= last; u++)
                    row[u] *= inv;
                for (int u = last + 1; u < nk; u++)
                    row[u] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, D, nk, 1.0f, p, nk,
                        v + ((size_t)k0 * H + h) * D, H * D, 0.0f, out + ((size_t)t0 * Hq + qh) * D, Hq * D);
        }
    }
#else
    for (int t = 0; t < n; t++)
        for (int qh = 0; qh < Hq; qh++) {
            const float *qv = q + ((size_t)t * Hq + qh) * D;
            int h = qh / G, f = FIRST(t);
            float max = -INFINITY, sum = 0.0f;
            for (int u = f; u <= t; u++) {
                p[u] = dot(qv, k + ((size_t)u * H + h) * D, D) * scale;
                if (p[u] > max) max = p[u];
            }
            for (int u = f; u <= t; u++) {
                p[u] = expf(p[u] - max);
                sum += p[u];
            }
            float *o = out + ((size_t)t * Hq + qh) * D;
            for (int i = 0; i < D; i++) o[i] = 0.0f;
            for (int u = f; u <= t; u++) {
                const float *vv = v + ((size_t)u * H + h) * D;
                for (int i = 0; i < D; i++)
                    o[i] += p[u] * vv[i];
            }
            for (int i = 0; i < D; i++)
                o[i] /= sum;
        }
#endif
#undef FIRST
}

int lm_model_prompt(const lm_model *m, int n, const int *tokens, int n_obs, lm_prompt *pr)
{
    memset(pr, 0, sizeof *pr);
    if (n < 1 || n_obs < 0)
        return lm_model_fail(KVR_EINVAL, "prompt of %d tokens, %d observed queries", n, n_obs);
    for (int t = 0; t < n; t++)
        if (check_token(m, tokens[t]) != KVR_OK)
            return KVR_EINVAL;
    if (n_obs > n) n_obs = n;
    int D = m->dim, F = m->hidden_dim, L = m->n_layers;
    int qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    lm_model_state s;
    int status = lm_model_state_init(&s, m);
    if (status != KVR_OK)
        return status;
    pr->n = n;
    pr->n_obs = n_obs;
    pr->k = malloc(sizeof(float) * (size_t)L * n * kd);
    pr->v = malloc(sizeof(float) * (size_t)L * n * kd);
    pr->q = malloc(sizeof(float) * ((size_t)L * n_obs * qd + 1));
    pr->logits = malloc(sizeof(float) * (size_t)m->vocab_size);
    float *x = malloc(sizeof(float) * (size_t)n * D);      /* [n][dim] residual */
    float *xb = malloc(sizeof(float) * (size_t)n * D);     /* [n][dim] normalised */
    float *q = malloc(sizeof(float) * (size_t)n * qd);     /* [n][n_heads][head_dim] */
    float *att = malloc(sizeof(float) * (size_t)n * qd);   /* [n][n_heads][head_dim] */
    float *h1 = malloc(sizeof(float) * (size_t)n * F);     /* [n][hidden] */
    float *h3 = malloc(sizeof(float) * (size_t)n * F);     /* [n][hidden] */
    float *p = malloc(sizeof(float) * (size_t)ATT_BLOCK * n);   /* [ATT_BLOCK][n] */
    if (!pr->k || !pr->v || !pr->q || !pr->logits || !x || !xb || !q || !att || !h1 || !h3 || !p) {
        status = lm_model_fail(KVR_ENOMEM, "prompt of %d tokens: out of memory", n);
        goto done;
    }
    for (int t = 0; t < n; t++)
        embed(m, x + (size_t)t * D, tokens[t]);
    /* the same operations as layer_qkv / layer_finish, a whole prompt at once */
    for (int l = 0; l < L; l++) {
        float *k = pr->k + (size_t)l * n * kd, *v = pr->v + (size_t)l * n * kd;
        for (int t = 0; t < n; t++)
            rmsnorm(xb + (size_t)t * D, x + (size_t)t * D, m->rms_att + (size_t)l * D, D, m->rms_eps);
        matmul(q, qd, m->wq + (size_t)l * qd * D, xb, D, n, qd, D);
        matmul(k, kd, m->wk + (size_t)l * kd * D, xb, D, n, kd, D);
        matmul(v, kd, m->wv + (size_t)l * kd * D, xb, D, n, kd, D);
        for (int t = 0; t < n; t++)
            qk_finish(m, l, q + (size_t)t * qd, k + (size_t)t * kd, t);
        memcpy(pr->q + (size_t)l * n_obs * qd, q + (size_t)(n - n_obs) * qd, sizeof(float) * (size_t)n_obs * qd);
        causal_attention(m, n, q, k, v, att, p, lm_layer_local(m, l) ? m->window : 0);
        matmul(xb, D, m->wo + (size_t)l * D * qd, att, qd, n, D, qd);
        if (m->rms_att_post)
            for (int t = 0; t < n; t++)
                rmsnorm(xb + (size_t)t * D, xb + (size_t)t * D, m->rms_att_post + (size_t)l * D, D, m->rms_eps);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
        for (int t = 0; t < n; t++)
            rmsnorm(xb + (size_t)t * D, x + (size_t)t * D, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
        matmul(h1, F, m->w1 + (size_t)l * F * D, xb, D, n, F, D);
        matmul(h3, F, m->w3 + (size_t)l * F * D, xb, D, n, F, D);
        ffn_gate(m, h1, h3, (size_t)n * F);
        matmul(xb, D, m->w2 + (size_t)l * D * F, h1, F, n, D, F);
        if (m->rms_ffn_post)
            for (int t = 0; t < n; t++)
                rmsnorm(xb + (size_t)t * D, xb + (size_t)t * D, m->rms_ffn_post + (size_t)l * D, D, m->rms_eps);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
    }
    classify(m, &s, x + (size_t)(n - 1) * D, pr->logits);
done:
    free(x); free(xb); free(q); free(att); free(h1); free(h3); free(p);
    lm_model_state_free(&s);
    if (status != KVR_OK)
        lm_prompt_free(pr);
    return status;
}

void lm_prompt_free(lm_prompt *pr)
{
    free(pr->k); free(pr->v); free(pr->q); free(pr->logits);
    memset(pr, 0, sizeof *pr);
}

int lm_prompt_prefill(const lm_model *m, const lm_prompt *pr, lm_model_state *s, kvr_cache *cache)
{
    int n = pr->n, qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    int n_obs = kvr_cache_config(cache)->obs_window;
    if (n_obs > n) n_obs = n;
    if (n_obs > pr->n_obs)
        return lm_model_fail(KVR_ESTATE, "the cache observes %d queries but the prompt kept %d", n_obs, pr->n_obs);
    int status = m->window > 0 ? local_reset(m, s, cache) : KVR_OK;
    if (status != KVR_OK)
        return status;
    for (int l = 0; l < m->n_layers; l++) {
        const float *q = pr->q + ((size_t)l * pr->n_obs + (pr->n_obs - n_obs)) * qd;
        int li;
        kvr_cache *lc = layer_cache(m, s, cache, l, &li);
        int local = lc != cache;
        status = kvr_prefill(lc, li, n, pr->k + (size_t)l * n * kd, pr->v + (size_t)l * n * kd,
                             local ? 0 : n_obs, local ? NULL : q);
        if (status != KVR_OK)
            return lm_model_fail(status, "prefill of layer %d: %s", l, kvr_last_error());
    }
    return KVR_OK;
}

int lm_model_prefill(const lm_model *m, lm_model_state *s, kvr_cache *cache, int n,
                      const int *tokens, float *logits)
{
    if (n < 1 || kvr_length(cache, 0) != 0)
        return lm_model_fail(KVR_ESTATE, "prefill of %d tokens needs an empty cache and n >= 1", n);
    lm_prompt pr;
    int status = lm_model_prompt(m, n, tokens, kvr_cache_config(cache)->obs_window, &pr);
    if (status != KVR_OK)
        return status;
    status = lm_prompt_prefill(m, &pr, s, cache);
    if (status == KVR_OK && logits)
        memcpy(logits, pr.logits, sizeof(float) * (size_t)m->vocab_size);
    lm_prompt_free(&pr);
    return status;
}

void lm_log_softmax(const float *logits, int n, double *logp)
{
    double max = -INFINITY, sum = 0.0;
    for (int i = 0; i < n; i++)
        if (logits[i] > max) max = logits[i];
    for (int i = 0; i < n; i++)
        sum += exp((double)logits[i] - max);
    double lse = max + log(sum);
    for (int i = 0; i < n; i++)
        logp[i] = (double)logits[i] - lse;
}
