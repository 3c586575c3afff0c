/* model_run.c: teacher-forced evaluation of methods on a real model
 * (doc/model.md §4).
 *
 * 1. The tokens: a document's window (ev_model_task_tokens), or text that
 *    the full-cache model samples one token at a time from BOS at
 *    temperature 1 from a seeded SplitMix64 stream (ev_model_task_init).
 * 2. The prompt, tokens[0 .. n_prefill-1], runs once for every method.
 * 3. The reference (`full`, the full cache in the element type) and every
 *    method's cache are prefilled from it, then decode the rest in lock
 *    step (lm_model_step_many), split over threads by cache (balanced by
 *    the time each spent attending in the previous step); at every step
 *    each method's distribution is compared with the reference's.  A
 *    cache's computation does not depend on which others run beside it or
 *    on the number of threads, so the results are those of running each
 *    method alone. */
#include <config.h>
#include <math.h>
#include <pthread.h>
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

/* ---- several caches on threads ------------------------------------------ */

typedef struct {
    const lm_model *m;
    int n;                      /* caches of this thread */
    lm_model_state **s;
    kvr_cache **c;
    int *token;
    float **logits;
    int *status;
    double *seconds;
    int result;
} step_job;

static void *step_worker(void *arg)
{
    step_job *j = arg;
    j->result = lm_model_step_many(j->m, j->n, j->s, j->c, j->token, j->logits, j->status, j->seconds);
    return NULL;
}

int ev_model_step_threads(const lm_model *m, int n, lm_model_state *const *s, kvr_cache *const *c,
                          const int *token, float *const *logits, int *status, int threads, double *cost)
{
    if (threads > EV_MODEL_MAX_THREADS) threads = EV_MODEL_MAX_THREADS;
    if (threads > n) threads = n;
    if (threads <= 1)
        return lm_model_step_many(m, n, s, c, token, logits, status, cost);
    /* owner[k]: the thread of cache k */
    int *owner = malloc(sizeof(int) * (size_t)n), *order = malloc(sizeof(int) * (size_t)n);
    lm_model_state **gs = malloc(sizeof *gs * (size_t)n);
    kvr_cache **gc = malloc(sizeof *gc * (size_t)n);
    int *gt = malloc(sizeof(int) * (size_t)n), *gst = malloc(sizeof(int) * (size_t)n);
    float **gl = malloc(sizeof *gl * (size_t)n);
    double *gsec = malloc(sizeof(double) * (size_t)n);
    if (!owner || !order || !gs || !gc || !gt || !gst || !gl || !gsec) {
        free(owner); free(order); free(gs); free(gc); free(gt); free(gst); free(gl); free(gsec);
        return lm_model_step_many(m, n, s, c, token, logits, status, cost);   /* no memory: one thread */
    }
    if (cost) {
        /* longest first, each to the least loaded thread (ties: the lower index) */
        double load[EV_MODEL_MAX_THREADS] = {0};
        for (int k = 0; k < n; k++) order[k] = k;
        for (int a = 1; a < n; a++)          /* insertion sort by cost, descending, stable */
            for (int b = a; b > 0 && cost[order[b]] > cost[order[b - 1]]; b--) {
                int x = order[b]; order[b] = order[b - 1]; order[b - 1] = x;
            }
        for (int a = 0; a < n; a++) {
            int best = 0;
            for (int i = 1; i < threads; i++)
                if (load[i] < load[best]) best = i;
            owner[order[a]] = best;
            load[best] += cost[order[a]] > 0.0 ? cost[order[a]] : 1e-9;   /* unknown costs: spread evenly */
        }
    } else {
        for (int i = 0, k0 = 0; i < threads; i++) {
            int k1 = (int)((long)n * (i + 1) / threads);
            for (int k = k0; k < k1; k++) owner[k] = i;
            k0 = k1;
        }
    }
    /* gather each thread's caches, in order, into one stretch of the arrays */
    step_job job[EV_MODEL_MAX_THREADS];
    pthread_t tid[EV_MODEL_MAX_THREADS];
    int started[EV_MODEL_MAX_THREADS] = {0};
    for (int i = 0, at = 0; i < threads; i++) {
        job[i] = (step_job){m, 0, gs + at, gc + at, gt + at, gl + at, gst + at, cost ? gsec + at : NULL, KVR_OK};
        for (int k = 0; k < n; k++)
            if (owner[k] == i) {
                gs[at] = s[k]; gc[at] = c[k]; gt[at] = token[k]; gl[at] = logits[k]; gst[at] = status[k];
                order[at] = k;   /* the position of the gathered cache */
                at++;
                job[i].n++;
            }
    }
    for (int i = 1; i < threads; i++)
        if (job[i].n) started[i] = pthread_create(&tid[i], NULL, step_worker, &job[i]) == 0;
    step_worker(&job[0]);
    for (int i = 1; i < threads; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else if (job[i].n) step_worker(&job[i]);   /* no thread: run it here */
    }
    for (int a = 0; a < n; a++) {
        status[order[a]] = gst[a];
        if (cost) cost[order[a]] = gsec[a];
    }
    int result = KVR_OK;
    for (int i = 0; i < threads && result == KVR_OK; i++)
        result = job[i].result;
    free(owner); free(order); free(gs); free(gc); free(gt); free(gst); free(gl); free(gsec);
    return result;
}

/* ---- tasks --------------------------------------------------------------- */

int ev_model_task_tokens(ev_model_task *t, const lm_model *m, const int *tokens, int context, int decode)
{
    memset(t, 0, sizeof *t);
    if (decode <= 0)
        decode = context - context / 2;
    if (context < 2 || decode >= context)
        return lm_model_fail(KVR_EINVAL, "context %d, decode steps %d: need context >= 2 and 1 <= decode < context",
                              context, decode);
    t->m = m;
    t->n = context;
    t->n_prefill = context - decode;
    t->tokens = malloc(sizeof(int) * (size_t)(context + 1));
    if (!t->tokens)
        return lm_model_fail(KVR_ENOMEM, "task of %d positions: out of memory", context);
    memcpy(t->tokens, tokens, sizeof(int) * (size_t)(context + 1));
    double t0 = now();
    int status = lm_model_prompt(m, t->n_prefill, t->tokens, 256, &t->prompt);
    t->prompt_seconds = now() - t0;
    if (status != KVR_OK)
        ev_model_task_free(t);
    return status;
}

int ev_model_task_init(ev_model_task *t, const lm_model *m, int context, int decode, uint64_t seed,
                       kvr_elem elem, ev_model_progress *progress)
{
    memset(t, 0, sizeof *t);
    if (context < 2)
        return lm_model_fail(KVR_EINVAL, "context %d: need context >= 2", context);
    int V = m->vocab_size, n = context;
    int *tokens = malloc(sizeof(int) * (size_t)(n + 1));
    float *logits = malloc(sizeof(float) * (size_t)V);
    double *lp = malloc(sizeof(double) * (size_t)V);
    kvr_cache *c = NULL;
    lm_model_state s = {0};
    kvr_config cfg;
    int status = KVR_OK;
    if (!tokens || !logits || !lp) {
        status = lm_model_fail(KVR_ENOMEM, "task of %d positions: out of memory", n);
        goto done;
    }
    /* generation with the full cache, decode only */
    double t0 = now();
    status = kvr_method_config("full", 1.0, n, m->head_dim, elem, &cfg);
    if (status == KVR_OK)
        status = lm_model_cache(m, &cfg, &c);
    if (status == KVR_OK)
        status = lm_model_state_init(&s, m);
    if (status != KVR_OK) {
        status = lm_model_fail(status, "generation: %s", kvr_last_error());
        goto done;
    }
    uint64_t rng = seed;
    tokens[0] = m->bos;
    for (int pos = 0; pos < n; pos++) {
        status = lm_model_step(m, &s, c, tokens[pos], logits);
        if (status != KVR_OK)
            goto done;
        tokens[pos + 1] = sample(logits, V, lp, &rng);
        if (progress)
            progress("generate", pos + 1, n);
    }
    double gen = now() - t0;
    status = ev_model_task_tokens(t, m, tokens, context, decode);
    t->gen_seconds = gen;
done:
    free(tokens);
    free(logits);
    free(lp);
    kvr_cache_free(c);
    lm_model_state_free(&s);
    return status;
}

void ev_model_task_free(ev_model_task *t)
{
    free(t->tokens);
    lm_prompt_free(&t->prompt);
    memset(t, 0, sizeof *t);
}

/* ---- the cells ------------------------------------------------------------ */

/* One cache of the lock step: the reference (column 0) or a cell. */
typedef struct {
    kvr_cache *c;
    lm_model_state s;
    float *logits;    /* [vocab] */
    long agree;
    double kl, nll;
} column;

int ev_model_eval_cells(const ev_model_task *t, kvr_elem elem, int n_cells, const ev_model_cell *cells,
                        ev_model_result *res, int *cell_status, int threads, ev_model_progress *progress)
{
    const lm_model *m = t->m;
    int V = m->vocab_size, steps = t->n - t->n_prefill;
    if (n_cells < 0 || n_cells + 1 > LM_STEP_MANY_MAX)
        return lm_model_fail(KVR_EINVAL, "%d cells: at most %d", n_cells, LM_STEP_MANY_MAX - 1);
    int n_col = 0;                               /* columns: the reference, then each cell not `full` */
    int *col_of = malloc(sizeof(int) * (size_t)(n_cells + 1));   /* [n_cells]: its column, 0 for full */
    column *col = calloc((size_t)n_cells + 1, sizeof *col);
    lm_model_state **sp = malloc(sizeof *sp * (size_t)(n_cells + 1));
    kvr_cache **cp = malloc(sizeof *cp * (size_t)(n_cells + 1));
    float **lg = malloc(sizeof *lg * (size_t)(n_cells + 1));
    int *tok = malloc(sizeof(int) * (size_t)(n_cells + 1));
    int *st = malloc(sizeof(int) * (size_t)(n_cells + 1));
    double *ref = malloc(sizeof(double) * (size_t)V), *pref = malloc(sizeof(double) * (size_t)V);
    double *lp = malloc(sizeof(double) * (size_t)V);
    double *cost = calloc((size_t)n_cells + 1, sizeof(double));   /* [columns]: seconds attending, last step */
    int status = KVR_OK;
    if (!col_of || !col || !sp || !cp || !lg || !tok || !st || !ref || !pref || !lp || !cost) {
        status = lm_model_fail(KVR_ENOMEM, "out of memory");
        goto done;
    }
    double t0 = now();
    /* plan and prefill every cache: the reference first */
    for (int i = -1; i < n_cells; i++) {
        kvr_config cfg;
        int s;
        if (i >= 0 && !strcmp(cells[i].method, "full")) {
            col_of[i] = 0;
            cell_status[i] = KVR_OK;
            continue;
        }
        if (i < 0)
            s = kvr_method_config("full", 1.0, t->n, m->head_dim, elem, &cfg);
        else {
            s = kvr_method_config(cells[i].method, cells[i].budget, t->n, m->head_dim, elem, &cfg);
            cfg.seed ^= cells[i].run_seed * UINT64_C(0x9E3779B97F4A7C15);
        }
        column *c = &col[n_col];
        if (s == KVR_OK)
            s = lm_model_cache(m, &cfg, &c->c);
        else
            s = lm_model_fail(s, "%s at budget %g: %s", i < 0 ? "full" : cells[i].method,
                              i < 0 ? 1.0 : cells[i].budget, kvr_last_error());
        if (s == KVR_OK && (s = lm_model_state_init(&c->s, m)) == KVR_OK) {
            c->logits = malloc(sizeof(float) * (size_t)V);
            if (!c->logits) s = lm_model_fail(KVR_ENOMEM, "out of memory");
        }
        if (s == KVR_OK)
            s = lm_prompt_prefill(m, &t->prompt, &c->s, c->c);
        if (i < 0 && s != KVR_OK) {
            status = s;
            kvr_cache_free(c->c);
            lm_model_state_free(&c->s);
            free(c->logits);
            goto done;
        }
        if (i >= 0) {
            cell_status[i] = s;
            if (s != KVR_OK) {   /* this cell only: the others go on */
                col_of[i] = -1;
                kvr_cache_free(c->c);
                lm_model_state_free(&c->s);
                free(c->logits);
                memset(c, 0, sizeof *c);
                continue;
            }
            col_of[i] = n_col;
        }
        sp[n_col] = &c->s;
        cp[n_col] = c->c;
        lg[n_col] = c->logits;
        st[n_col] = KVR_OK;
        n_col++;
    }
    /* decode in lock step; the reference is column 0 */
    for (int pos = t->n_prefill; pos < t->n; pos++) {
        for (int k = 0; k < n_col; k++)
            tok[k] = t->tokens[pos];
        ev_model_step_threads(m, n_col, sp, cp, tok, lg, st, threads, cost);
        if (st[0] != KVR_OK) {
            status = st[0];
            goto done;
        }
        lm_log_softmax(col[0].logits, V, ref);
        for (int j = 0; j < V; j++)
            pref[j] = exp(ref[j]);
        int top = argmax(col[0].logits, V), next = t->tokens[pos + 1];
        col[0].agree++;
        col[0].nll -= ref[next];
        for (int k = 1; k < n_col; k++) {
            if (st[k] != KVR_OK) continue;
            column *c = &col[k];
            lm_log_softmax(c->logits, V, lp);
            double kl = 0.0;     /* KL(full || method) = sum_j p_j (log p_j - log q_j) */
            for (int j = 0; j < V; j++)
                kl += pref[j] * (ref[j] - lp[j]);
            c->kl += kl;
            c->agree += argmax(c->logits, V) == top;
            c->nll -= lp[next];
        }
        if (progress)
            progress("decode", pos + 1 - t->n_prefill, steps);
    }
    double seconds = now() - t0;
    for (int i = 0; i < n_cells; i++) {
        if (cell_status[i] != KVR_OK) continue;
        int k = col_of[i];
        if (st[k] != KVR_OK) {
            cell_status[i] = st[k];
            continue;
        }
        column *c = &col[k];
        size_t held, full;
        kvr_bytes(c->c, &held, &full);
        long exact = 0;
        int n_global = lm_global_layers(m);   /* the cache holds the global layers */
        for (int l = 0; l < n_global; l++)
            for (int h = 0; h < m->n_kv_heads; h++)
                for (long p = 0; p < t->n; p++) {
                    kvr_part part;
                    kvr_part_of(c->c, l, h, p, &part);
                    exact += part == KVR_PART_SINK || part == KVR_PART_RECENT || part == KVR_PART_CANDIDATE;
                }
        ev_model_result *r = &res[i];
        r->bytes_held = held;
        r->bytes_ratio = (double)held / (double)full;
        size_t wheld = 0;
        lm_model_window_bytes(&c->s, &wheld, NULL);   /* the local windows, the same in every cache */
        r->bytes_whole = held + wheld;
        r->whole_ratio = (double)(held + wheld) / (double)(full + wheld);
        r->exact_ratio = (double)exact / ((double)n_global * m->n_kv_heads * t->n);
        r->top1_agree = (double)c->agree / (double)steps;
        r->kl = c->kl / (double)steps;
        r->nll = c->nll / (double)steps;
        r->ppl = exp(r->nll);
        r->seconds = seconds;
    }
done:
    for (int k = 0; k < n_col; k++) {
        kvr_cache_free(col[k].c);
        lm_model_state_free(&col[k].s);
        free(col[k].logits);
    }
    free(col_of); free(col); free(sp); free(cp); free(lg); free(tok); free(st);
    free(ref); free(pref); free(lp); free(cost);
    return status;
}

int ev_model_eval_method(const ev_model_task *t, const char *method, double budget, kvr_elem elem,
                         uint64_t run_seed, ev_model_result *res, ev_model_progress *progress)
{
    ev_model_cell cell = {method, budget, run_seed};
    int cell_status = KVR_OK;
    int status = ev_model_eval_cells(t, elem, 1, &cell, res, &cell_status, 1, progress);
    return status != KVR_OK ? status : cell_status;
}
