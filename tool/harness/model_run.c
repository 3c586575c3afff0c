/* model_run.c: teacher-forced evaluation of a method on a real model
 * (doc/model.md §4).
 *
 * 1. Generation: the full-cache model, one token at a time from BOS, samples
 *    tokens[1..n] at temperature 1 from a seeded SplitMix64 stream.
 * 2. Reference: the `full` method under the evaluation protocol (prefill of
 *    tokens[0..n/2-1], then decode steps t = n/2 .. n-1 appending tokens[t])
 *    gives the reference next-token distributions.
 * 3. Each method runs the same protocol with its own cache; at every decode
 *    step its distribution is compared with the reference one. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "model_eval.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* SplitMix64: the sampler's random stream. */
static uint64_t splitmix(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Inverse-CDF sample from softmax(logits) at temperature 1.
 *   logits: [n], logp: [n] scratch */
static int sample(const float *logits, int n, double *logp, uint64_t *rng)
{
    lm_log_softmax(logits, n, logp);
    double u = (double)(splitmix(rng) >> 11) * 0x1.0p-53, c = 0.0;
    for (int i = 0; i < n; i++) {
        c += exp(logp[i]);
        if (u < c)
            return i;
    }
    return n - 1;   /* u beyond the rounded total */
}

static int argmax(const float *x, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* The protocol for one configuration: prefill then decode; calls `step`
 * with the logits of each decode step t = n_prefill .. n-1 (index t -
 * n_prefill).  Returns the cache (for bytes and parts) in *out. */
typedef void step_fn(void *ctx, int i, const float *logits);

static int run_protocol(const ev_model_task *t, const kvr_config *cfg, step_fn *step, void *ctx,
                        kvr_cache **out, ev_model_progress *progress, const char *what)
{
    const lm_model *m = t->m;
    kvr_cache *c = NULL;
    lm_model_state s;
    *out = NULL;
    int status = lm_model_cache(m, cfg, &c);
    if (status != KVR_OK)
        return lm_model_fail(status, "%s: cache: %s", what, kvr_last_error());
    float *logits = malloc(sizeof(float) * (size_t)m->vocab_size);   /* [vocab] */
    status = lm_model_state_init(&s, m);
    if (status != KVR_OK || !logits) {
        free(logits);
        kvr_cache_free(c);
        return status != KVR_OK ? status : lm_model_fail(KVR_ENOMEM, "out of memory");
    }
    status = lm_prompt_prefill(m, &t->prompt, c);
    for (int pos = t->n_prefill; status == KVR_OK && pos < t->n; pos++) {
        status = lm_model_step(m, &s, c, t->tokens[pos], logits);
        if (status == KVR_OK)
            step(ctx, pos - t->n_prefill, logits);
        if (progress)
            progress(what, pos + 1, t->n);
    }
    free(logits);
    lm_model_state_free(&s);
    if (status != KVR_OK) {
        kvr_cache_free(c);
        return status;
    }
    *out = c;
    return KVR_OK;
}

/* Reference step: keep the log-probabilities and the argmax. */
static void keep_reference(void *ctx, int i, const float *logits)
{
    ev_model_task *t = ctx;
    int V = t->m->vocab_size;
    lm_log_softmax(logits, V, t->ref_logp + (size_t)i * V);
    t->ref_top[i] = argmax(logits, V);
}

int ev_model_task_init(ev_model_task *t, const lm_model *m, int context, int decode,
                        uint64_t seed, ev_model_progress *progress)
{
    memset(t, 0, sizeof *t);
    if (decode <= 0)
        decode = context - context / 2;
    if (context < 2 || decode >= context)
        return lm_model_fail(KVR_EINVAL, "context %d, decode steps %d: need context >= 2 and 1 <= decode < context",
                              context, decode);
    int V = m->vocab_size, n = context, np = context - decode;
    t->m = m;
    t->n = n;
    t->n_prefill = np;
    t->tokens = malloc(sizeof(int) * (size_t)(n + 1));
    t->ref_logp = malloc(sizeof(double) * (size_t)(n - np) * V);
    t->ref_top = malloc(sizeof(int) * (size_t)(n - np));
    float *logits = malloc(sizeof(float) * (size_t)V);
    double *lp = malloc(sizeof(double) * (size_t)V);
    kvr_cache *c = NULL;
    lm_model_state s = {0};
    kvr_config cfg;
    int status = KVR_OK;
    if (!t->tokens || !t->ref_logp || !t->ref_top || !logits || !lp) {
        status = lm_model_fail(KVR_ENOMEM, "task of %d positions: out of memory", n);
        goto done;
    }
    /* 1. generation with the full cache, decode only */
    double t0 = now();
    status = kvr_method_config("full", 1.0, n, m->head_dim, KVR_F32, &cfg);
    if (status == KVR_OK)
        status = lm_model_cache(m, &cfg, &c);
    if (status == KVR_OK)
        status = lm_model_state_init(&s, m);
    if (status != KVR_OK) {
        status = lm_model_fail(status, "generation: %s", kvr_last_error());
        goto done;
    }
    uint64_t rng = seed;
    t->tokens[0] = m->bos;
    for (int pos = 0; pos < n; pos++) {
        status = lm_model_step(m, &s, c, t->tokens[pos], logits);
        if (status != KVR_OK)
            goto done;
        t->tokens[pos + 1] = sample(logits, V, lp, &rng);
        if (progress)
            progress("generate", pos + 1, n);
    }
    kvr_cache_free(c);
    c = NULL;
    t->gen_seconds = now() - t0;
    /* 2. the prompt, once for every method; the reference: `full` */
    t0 = now();
    status = lm_model_prompt(m, np, t->tokens, 256, &t->prompt);
    if (status != KVR_OK)
        goto done;
    status = run_protocol(t, &cfg, keep_reference, t, &c, progress, "full");
    t->ref_seconds = now() - t0;
done:
    free(logits);
    free(lp);
    kvr_cache_free(c);
    lm_model_state_free(&s);
    if (status != KVR_OK)
        ev_model_task_free(t);
    return status;
}

void ev_model_task_free(ev_model_task *t)
{
    free(t->tokens);
    free(t->ref_logp);
    free(t->ref_top);
    lm_prompt_free(&t->prompt);
    memset(t, 0, sizeof *t);
}

/* Running sums of the metrics over decode steps. */
typedef struct {
    const ev_model_task *t;
    double *lp;        /* [vocab] scratch */
    long steps, agree;
    double kl, nll;
} metric_sums;

/* One decode step i: agreement, KL(full || method) = sum_j p_j (log p_j -
 * log q_j) over the reference p, and -log q(next token). */
static void measure(void *ctx, int i, const float *logits)
{
    metric_sums *ms = ctx;
    const ev_model_task *t = ms->t;
    int V = t->m->vocab_size;
    lm_log_softmax(logits, V, ms->lp);
    const double *ref = t->ref_logp + (size_t)i * V;
    double kl = 0.0;
    for (int j = 0; j < V; j++) {
        double lp_full = ref[j];
        kl += exp(lp_full) * (lp_full - ms->lp[j]);
    }
    ms->kl += kl;
    ms->agree += argmax(logits, V) == t->ref_top[i];
    ms->nll -= ms->lp[t->tokens[t->n_prefill + i + 1]];
    ms->steps++;
}

int ev_model_eval_method(const ev_model_task *t, const char *method, double budget,
                          ev_model_result *res, ev_model_progress *progress)
{
    const lm_model *m = t->m;
    kvr_config cfg;
    int status = kvr_method_config(method, budget, t->n, m->head_dim, KVR_F32, &cfg);
    if (status != KVR_OK)
        return lm_model_fail(status, "%s at budget %g: %s", method, budget, kvr_last_error());
    metric_sums ms = {t, malloc(sizeof(double) * (size_t)m->vocab_size), 0, 0, 0.0, 0.0};
    if (!ms.lp)
        return lm_model_fail(KVR_ENOMEM, "out of memory");
    double t0 = now();
    kvr_cache *c = NULL;
    status = run_protocol(t, &cfg, measure, &ms, &c, progress, method);
    free(ms.lp);
    if (status != KVR_OK)
        return status;
    size_t held, full;
    kvr_bytes(c, &held, &full);
    long exact = 0;
    for (int l = 0; l < m->n_layers; l++)
        for (int h = 0; h < m->n_kv_heads; h++)
            for (long p = 0; p < t->n; p++) {
                kvr_part part;
                kvr_part_of(c, l, h, p, &part);
                exact += part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE;
            }
    kvr_cache_free(c);
    res->bytes_held = held;
    res->bytes_ratio = (double)held / (double)full;
    res->exact_ratio = (double)exact / ((double)m->n_layers * m->n_kv_heads * t->n);
    res->top1_agree = (double)ms.agree / (double)ms.steps;
    res->kl = ms.kl / (double)ms.steps;
    res->ppl = exp(ms.nll / (double)ms.steps);
    res->seconds = now() - t0;
    return KVR_OK;
}
