/* model.c: the llama-architecture forward pass (doc/model.md §1).
 *
 * One token at a time (lm_model_step), one token for each of several caches
 * in lock step (lm_model_step_many), or a whole prompt (lm_model_prefill).
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
    memset(s, 0, sizeof *s);
}

kvr_backend lm_cache_backend = KVR_BACKEND_REF;

int lm_model_cache(const lm_model *m, const kvr_config *cfg, kvr_cache **out)
{
    return kvr_cache_create(out, m->n_layers, m->n_kv_heads, m->n_heads, m->head_dim,
                            cfg, lm_cache_backend);
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

/* Rotate adjacent pairs (2i, 2i+1), i < rope_dims/2, of each head by the
 * angle pos * base^(-2i/rope_dims); angle, cos and sin in float64, rounded
 * to float32 once.   x: [n_heads][head_dim] */
static void rope(float *x, int n_heads, int head_dim, int rope_dims, float base, long pos)
{
    for (int i = 0; i < rope_dims / 2; i++) {
        double freq = pow((double)base, -2.0 * i / (double)rope_dims);
        double angle = (double)pos * freq;
        float c = (float)cos(angle), s = (float)sin(angle);
        for (int h = 0; h < n_heads; h++) {
            float *p = x + (size_t)h * head_dim + 2 * i;
            float a = p[0], b = p[1];
            p[0] = a * c - b * s;
            p[1] = a * s + b * c;
        }
    }
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
    rope(s->q, m->n_heads, m->head_dim, m->rope_dims, m->rope_base, pos);
    rope(s->k, m->n_kv_heads, m->head_dim, m->rope_dims, m->rope_base, pos);
}

/* The rest of layer l after attention: x += Wo att; x += W2 (silu(W1 xn) *
 * (W3 xn)) with xn = rmsnorm(x).   x: [dim], att: [n_heads*head_dim] */
static void layer_finish(const lm_model *m, lm_model_state *s, int l, float *x, const float *att)
{
    int D = m->dim, H = m->hidden_dim, qd = m->n_heads * m->head_dim;
    matvec(s->xo, m->wo + (size_t)l * D * qd, att, D, qd);
    for (int i = 0; i < D; i++)
        x[i] += s->xo[i];
    rmsnorm(s->xb, x, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
    matvec(s->hb, m->w1 + (size_t)l * H * D, s->xb, H, D);
    matvec(s->hb2, m->w3 + (size_t)l * H * D, s->xb, H, D);
    for (int i = 0; i < H; i++) {
        float g = s->hb[i];
        s->hb[i] = g / (1.0f + expf(-g)) * s->hb2[i];
    }
    matvec(s->xo, m->w2 + (size_t)l * D * H, s->hb, D, H);
    for (int i = 0; i < D; i++)
        x[i] += s->xo[i];
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
    memcpy(s->x, m->token_embedding + (size_t)token * m->dim, sizeof(float) * m->dim);
    for (int l = 0; l < m->n_layers; l++) {
        layer_qkv(m, s, l, s->x, pos);
        status = kvr_append(cache, l, 1, s->k, s->v);
        if (status == KVR_OK)
            status = kvr_attend(cache, l, s->q, s->att, 0);
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
        memcpy(s[c]->x, m->token_embedding + (size_t)token[c] * D, sizeof(float) * D);
    }
/* every cache still running, in order */
#define EACH for (int c = 0; c < n; c++) if (status[c] == KVR_OK)
    for (int l = 0; l < m->n_layers; l++) {
        /* layer_qkv, one matrix at a time for every cache */
        EACH rmsnorm(s[c]->xb, s[c]->x, m->rms_att + (size_t)l * D, D, m->rms_eps);
        EACH matvec(s[c]->q, m->wq + (size_t)l * qd * D, s[c]->xb, qd, D);
        EACH matvec(s[c]->k, m->wk + (size_t)l * kd * D, s[c]->xb, kd, D);
        EACH matvec(s[c]->v, m->wv + (size_t)l * kd * D, s[c]->xb, kd, D);
        EACH {
            rope(s[c]->q, m->n_heads, m->head_dim, m->rope_dims, m->rope_base, pos[c]);
            rope(s[c]->k, m->n_kv_heads, m->head_dim, m->rope_dims, m->rope_base, pos[c]);
        }
        EACH {
            double t0 = attend_seconds ? wall_seconds() : 0.0;
            int st = kvr_append(cache[c], l, 1, s[c]->k, s[c]->v);
            if (st == KVR_OK)
                st = kvr_attend(cache[c], l, s[c]->q, s[c]->att, 0);
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
            for (int i = 0; i < D; i++)
                s[c]->x[i] += s[c]->xo[i];
            rmsnorm(s[c]->xb, s[c]->x, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
        }
        EACH matvec(s[c]->hb, m->w1 + (size_t)l * H * D, s[c]->xb, H, D);
        EACH matvec(s[c]->hb2, m->w3 + (size_t)l * H * D, s[c]->xb, H, D);
        EACH for (int i = 0; i < H; i++) {
            float g = s[c]->hb[i];
            s[c]->hb[i] = g / (1.0f + expf(-g)) * s[c]->hb2[i];
        }
        EACH matvec(s[c]->xo, m->w2 + (size_t)l * D * H, s[c]->hb, D, H);
        EACH for (int i = 0; i < D; i++)
            s[c]->x[i] += s[c]->xo[i];
    }
    EACH rmsnorm(s[c]->xb, s[c]->x, m->rms_final, m->dim, m->rms_eps);
    for (int r0 = 0; r0 < m->vocab_size; r0 += CLS_BLOCK) {
        int r1 = r0 + CLS_BLOCK < m->vocab_size ? r0 + CLS_BLOCK : m->vocab_size;
        EACH if (logits[c]) classify_rows(m, s[c]->xb, logits[c], r0, r1);
    }
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
                             const float *v, float *out, float *p)
{
    int D = m->head_dim, Hq = m->n_heads, H = m->n_kv_heads, G = Hq / H;
    float scale = 1.0f / sqrtf((float)D);
#ifdef KVR_HAVE_BLAS
    for (int qh = 0; qh < Hq; qh++) {
        int h = qh / G;
        for (int t0 = 0; t0 < n; t0 += ATT_BLOCK) {
            int nb = t0 + ATT_BLOCK < n ? ATT_BLOCK : n - t0, nk = t0 + nb;   /* keys 0 .. nk-1 */
            /* p[i][u] = scale * q[t0+i] . k[u] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, nk, D, scale,
                        q + ((size_t)t0 * Hq + qh) * D, Hq * D, k + (size_t)h * D, H * D, 0.0f, p, nk);
            for (int i = 0; i < nb; i++) {
                float *row = p + (size_t)i * nk, max = -INFINITY, sum = 0.0f;
                int last = t0 + i;
                for (int u = 0; u <= last; u++)
                    if (row[u] > max) max = row[u];
                for (int u = 0; u <= last; u++) {
                    row[u] = expf(row[u] - max);
                    sum += row[u];
                }
                float inv = 1.0f / sum;
                for (int u = 0; u <= last; u++)
                    row[u] *= inv;
                for (int u = last + 1; u < nk; u++)
                    row[u] = 0.0f;
            }
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nb, D, nk, 1.0f, p, nk,
                        v + (size_t)h * D, H * D, 0.0f, out + ((size_t)t0 * Hq + qh) * D, Hq * D);
        }
    }
#else
    for (int t = 0; t < n; t++)
        for (int qh = 0; qh < Hq; qh++) {
            const float *qv = q + ((size_t)t * Hq + qh) * D;
            int h = qh / G;
            float max = -INFINITY, sum = 0.0f;
            for (int u = 0; u <= t; u++) {
                p[u] = dot(qv, k + ((size_t)u * H + h) * D, D) * scale;
                if (p[u] > max) max = p[u];
            }
            for (int u = 0; u <= t; u++) {
                p[u] = expf(p[u] - max);
                sum += p[u];
            }
            float *o = out + ((size_t)t * Hq + qh) * D;
            for (int i = 0; i < D; i++) o[i] = 0.0f;
            for (int u = 0; u <= t; u++) {
                const float *vv = v + ((size_t)u * H + h) * D;
                for (int i = 0; i < D; i++)
                    o[i] += p[u] * vv[i];
            }
            for (int i = 0; i < D; i++)
                o[i] /= sum;
        }
#endif
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
        memcpy(x + (size_t)t * D, m->token_embedding + (size_t)tokens[t] * D, sizeof(float) * D);
    /* the same operations as layer_qkv / layer_finish, a whole prompt at once */
    for (int l = 0; l < L; l++) {
        float *k = pr->k + (size_t)l * n * kd, *v = pr->v + (size_t)l * n * kd;
        for (int t = 0; t < n; t++)
            rmsnorm(xb + (size_t)t * D, x + (size_t)t * D, m->rms_att + (size_t)l * D, D, m->rms_eps);
        matmul(q, qd, m->wq + (size_t)l * qd * D, xb, D, n, qd, D);
        matmul(k, kd, m->wk + (size_t)l * kd * D, xb, D, n, kd, D);
        matmul(v, kd, m->wv + (size_t)l * kd * D, xb, D, n, kd, D);
        for (int t = 0; t < n; t++) {
            rope(q + (size_t)t * qd, m->n_heads, m->head_dim, m->rope_dims, m->rope_base, t);
            rope(k + (size_t)t * kd, m->n_kv_heads, m->head_dim, m->rope_dims, m->rope_base, t);
        }
        memcpy(pr->q + (size_t)l * n_obs * qd, q + (size_t)(n - n_obs) * qd, sizeof(float) * (size_t)n_obs * qd);
        causal_attention(m, n, q, k, v, att, p);
        matmul(xb, D, m->wo + (size_t)l * D * qd, att, qd, n, D, qd);
        for (size_t i = 0; i < (size_t)n * D; i++)
            x[i] += xb[i];
        for (int t = 0; t < n; t++)
            rmsnorm(xb + (size_t)t * D, x + (size_t)t * D, m->rms_ffn + (size_t)l * D, D, m->rms_eps);
        matmul(h1, F, m->w1 + (size_t)l * F * D, xb, D, n, F, D);
        matmul(h3, F, m->w3 + (size_t)l * F * D, xb, D, n, F, D);
        for (size_t i = 0; i < (size_t)n * F; i++) {
            float g = h1[i];
            h1[i] = g / (1.0f + expf(-g)) * h3[i];
        }
        matmul(xb, D, m->w2 + (size_t)l * D * F, h1, F, n, D, F);
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

int lm_prompt_prefill(const lm_model *m, const lm_prompt *pr, kvr_cache *cache)
{
    int n = pr->n, qd = m->n_heads * m->head_dim, kd = m->n_kv_heads * m->head_dim;
    int n_obs = kvr_cache_config(cache)->obs_window;
    if (n_obs > n) n_obs = n;
    if (n_obs > pr->n_obs)
        return lm_model_fail(KVR_ESTATE, "the cache observes %d queries but the prompt kept %d", n_obs, pr->n_obs);
    for (int l = 0; l < m->n_layers; l++) {
        const float *q = pr->q + ((size_t)l * pr->n_obs + (pr->n_obs - n_obs)) * qd;
        int status = kvr_prefill(cache, l, n, pr->k + (size_t)l * n * kd, pr->v + (size_t)l * n * kd, n_obs, q);
        if (status != KVR_OK)
            return lm_model_fail(status, "prefill of layer %d: %s", l, kvr_last_error());
    }
    return KVR_OK;
}

int lm_model_prefill(const lm_model *m, kvr_cache *cache, int n,
                      const int *tokens, float *logits)
{
    if (n < 1 || kvr_length(cache, 0) != 0)
        return lm_model_fail(KVR_ESTATE, "prefill of %d tokens needs an empty cache and n >= 1", n);
    lm_prompt pr;
    int status = lm_model_prompt(m, n, tokens, kvr_cache_config(cache)->obs_window, &pr);
    if (status != KVR_OK)
        return status;
    status = lm_prompt_prefill(m, &pr, cache);
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
