/* workload.c: attention workloads for eval and demo (doc/eval.md §2).
 *
 * synthetic (doc/eval.md §2.1), per KV head, with D = head_dim:
 *   key    k_t = o + U z_t + key_noise * e_t  [+ sqrt(D) a if t is a heavy
 *          hitter]  [+ sqrt(D) s if t = 0]
 *   query  q_t = content * sqrt(r / D) * U z_t + heavy_logit * a
 *                + sink_logit * s + query_noise * e'   (each query head its own e')
 *   value  v_t ~ N(0, I)
 * o ~ N(0, offset_sd^2) per channel is a per-channel offset: it adds the
 * same logit to every position of a query, so it does not change attention,
 * but it is what sketch collisions carry unless they are centred (spec
 * §8.1).  U is D x r with N(0, 1/r) entries and z_t an AR(1) latent
 * (z_t = rho z_{t-1} + sqrt(1 - rho^2) N(0, I)), so the content logit of q_t
 * on k_u is about content * (z_t . z_u) / sqrt(r): about content * sqrt(r)
 * for u = t, decaying as rho^(t-u) toward noise of standard deviation
 * `content` for distant positions: queries favour the recent window and
 * leave a long tail.  a and s are unit directions: heavy hitters (a share
 * heavy_share of the positions) get heavy_logit more for every query, the
 * sink (position 0) sink_logit more.
 *
 * needle (doc/eval.md §2.2): the synthetic workload, plus one needle per
 * decode step.  Needle j sits at a position p_j drawn without repetition
 * from [8, 3/4 n_prefill); its key is o + sqrt(D) b_j + key_noise e with b_j
 * a unit direction orthogonal to U, a and s (when D > r + 2), and no content
 * part, so while the context is read its logit is about 0 where ordinary
 * positions average e^(content^2/2) > 1: needles get little attention.  The
 * queries of decode step t_j = n_prefill + j are (ln n + needle_extra) b_j +
 * query_noise e': under full attention the needle gets about
 * e^needle_extra / (1 + e^needle_extra) of the mass (0.88 by default).
 *
 * trace:DIR (doc/eval.md §2.3): DIR/layer<L>/q.npy [n][n_q_heads][D],
 * k.npy and v.npy [n][n_kv_heads][D], float32 or float64. */
#include <config.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>
#include <gsl/gsl_rng.h>
#include <gsl/gsl_randist.h>
#include "kvreviver.h"
#include "npy.h"
#include "workload.h"

void ev_synth_default(ev_synth_params *p)
{
    p->offset_sd = 2.0;
    p->rank = 16;
    p->rho = 0.98;
    p->content = 1.2;
    p->key_noise = 0.5;
    p->query_noise = 0.3;
    p->heavy_share = 0.02;
    p->heavy_logit = 4.0;
    p->sink_logit = 5.0;
    p->needle_extra = 2.0;
}

void ev_workload_free(ev_workload *w)
{
    if (!w) return;
    free(w->q); free(w->k); free(w->v);
    free(w->needle_pos); free(w->needle_step);
    memset(w, 0, sizeof *w);
}

/* Allocate the arrays of a workload of `context` positions; KVR_EINVAL for a
 * shape that cannot be evaluated (at least one prefill position and one
 * decode step). */
static int alloc_arrays(ev_workload *w, int H, int Hq, int D, int decode_steps, int context)
{
    memset(w, 0, sizeof *w);
    if (context < 2 || decode_steps < 1 || decode_steps >= context || H < 1 || Hq < H
        || Hq % H != 0 || D < 1)
        return KVR_EINVAL;
    w->n = context;
    w->n_prefill = context - decode_steps;
    w->n_kv_heads = H;
    w->n_q_heads = Hq;
    w->head_dim = D;
    size_t nk = (size_t)context * H * D, nq = (size_t)context * Hq * D;
    w->k = malloc(nk * sizeof(float));
    w->v = malloc(nk * sizeof(float));
    w->q = malloc(nq * sizeof(float));
    if (!w->k || !w->v || !w->q) {
        ev_workload_free(w);
        return KVR_ENOMEM;
    }
    return KVR_OK;
}

static void gaussian_vector(gsl_rng *r, int D, double *a)
{
    for (int i = 0; i < D; i++) a[i] = gsl_ran_gaussian(r, 1.0);
}

/* Make a ([D]) a unit vector orthogonal to the n_basis orthonormal vectors
 * of basis ([n_basis][D]); when that leaves almost nothing (D too small),
 * a is only normalised. */
static void orthonormalise(int D, double *a, const double *basis, int n_basis)
{
    double keep[1024];
    int D_keep = D < 1024 ? D : 1024;
    for (int i = 0; i < D_keep; i++) keep[i] = a[i];
    for (int b = 0; b < n_basis; b++) {
        double dot = 0.0;
        for (int i = 0; i < D; i++) dot += a[i] * basis[(size_t)b * D + i];
        for (int i = 0; i < D; i++) a[i] -= dot * basis[(size_t)b * D + i];
    }
    double norm = 0.0;
    for (int i = 0; i < D; i++) norm += a[i] * a[i];
    if (norm < 1e-6 && D <= 1024) {         /* nothing left: fall back to the original */
        for (int i = 0; i < D; i++) a[i] = keep[i];
        norm = 0.0;
        for (int i = 0; i < D; i++) norm += a[i] * a[i];
    }
    norm = sqrt(norm);
    for (int i = 0; i < D; i++) a[i] /= norm > 0.0 ? norm : 1.0;
}

/* The random structure of one KV head. */
typedef struct {
    double *o;      /* [D] offsets */
    double *U;      /* [D][r] */
    double *basis;  /* [r + 2][D] orthonormal: span(U), then a, then s */
    int n_basis;
} head_model;

static void head_model_free(head_model *m)
{
    free(m->o); free(m->U); free(m->basis);
}

static int head_model_make(head_model *m, gsl_rng *r, int D, const ev_synth_params *p)
{
    int R = p->rank;
    m->o = malloc(sizeof(double) * (size_t)D);
    m->U = malloc(sizeof(double) * (size_t)D * R);
    m->basis = malloc(sizeof(double) * (size_t)(R + 2) * D);
    if (!m->o || !m->U || !m->basis) { head_model_free(m); return KVR_ENOMEM; }
    for (int i = 0; i < D; i++) m->o[i] = gsl_ran_gaussian(r, p->offset_sd);
    for (int i = 0; i < D * R; i++) m->U[i] = gsl_ran_gaussian(r, 1.0 / sqrt((double)R));
    /* orthonormal basis of span(U) (as far as D allows), then a and s */
    m->n_basis = 0;
    for (int j = 0; j < R && m->n_basis < D - 2; j++) {
        double *b = m->basis + (size_t)m->n_basis * D;
        for (int i = 0; i < D; i++) b[i] = m->U[i * R + j];
        orthonormalise(D, b, m->basis, m->n_basis);
        m->n_basis++;
    }
    for (int j = 0; j < 2; j++) {           /* a, then s */
        double *b = m->basis + (size_t)m->n_basis * D;
        gaussian_vector(r, D, b);
        orthonormalise(D, b, m->basis, m->n_basis < D ? m->n_basis : D - 1);
        m->n_basis++;
    }
    return KVR_OK;
}

/* Fill keys, values and queries of KV head h and its query heads. */
static int synth_head(ev_workload *w, int h, gsl_rng *r, const ev_synth_params *p)
{
    int D = w->head_dim, G = w->n_q_heads / w->n_kv_heads, R = p->rank;
    head_model m;
    int status = head_model_make(&m, r, D, p);
    if (status != KVR_OK) return status;
    const double *a = m.basis + (size_t)(m.n_basis - 2) * D, *s = m.basis + (size_t)(m.n_basis - 1) * D;
    double *z = malloc(sizeof(double) * (size_t)R), *uz = malloc(sizeof(double) * (size_t)D);
    if (!z || !uz) { free(z); free(uz); head_model_free(&m); return KVR_ENOMEM; }
    double sqD = sqrt((double)D), qc = p->content * sqrt((double)R / D);
    double innov = sqrt(1.0 - p->rho * p->rho);
    for (int j = 0; j < R; j++) z[j] = gsl_ran_gaussian(r, 1.0);
    for (int t = 0; t < w->n; t++) {
        if (t > 0)
            for (int j = 0; j < R; j++) z[j] = p->rho * z[j] + innov * gsl_ran_gaussian(r, 1.0);
        for (int i = 0; i < D; i++) {
            uz[i] = 0.0;
            for (int j = 0; j < R; j++) uz[i] += m.U[i * R + j] * z[j];
        }
        int heavy = t > 0 && gsl_rng_uniform(r) < p->heavy_share;
        float *k = w->k + ((size_t)t * w->n_kv_heads + h) * D;
        float *v = w->v + ((size_t)t * w->n_kv_heads + h) * D;
        for (int i = 0; i < D; i++) {
            double x = m.o[i] + uz[i] + gsl_ran_gaussian(r, p->key_noise);
            if (heavy) x += sqD * a[i];
            if (t == 0) x += sqD * s[i];
            k[i] = (float)x;
            v[i] = (float)gsl_ran_gaussian(r, 1.0);
        }
        for (int g = 0; g < G; g++) {
            float *q = w->q + ((size_t)t * w->n_q_heads + (size_t)h * G + g) * D;
            for (int i = 0; i < D; i++)
                q[i] = (float)(qc * uz[i] + p->heavy_logit * a[i] + p->sink_logit * s[i]
                               + gsl_ran_gaussian(r, p->query_noise));
        }
    }
    free(z); free(uz);
    head_model_free(&m);
    return KVR_OK;
}

/* The synthetic workload; with needles (pos, step: [n_needles], taken over
 * by w, freed on failure too), each head's needles are written after its
 * synthetic positions. */
static int synthetic(ev_workload *w, const ev_workload_shape *s, int context, uint64_t seed,
                     const ev_synth_params *p, int n_needles, int *pos, int *step)
{
    ev_synth_params def;
    if (!p) { ev_synth_default(&def); p = &def; }
    int status = p->rank < 1 || !(p->rho >= 0.0 && p->rho < 1.0) ? KVR_EINVAL
        : alloc_arrays(w, s->n_kv_heads, s->n_q_heads, s->head_dim, s->decode_steps, context);
    if (status != KVR_OK) { free(pos); free(step); return status; }
    snprintf(w->name, sizeof w->name, n_needles ? "needle" : "synthetic");
    w->n_needles = n_needles;
    w->needle_pos = pos;
    w->needle_step = step;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) { ev_workload_free(w); return KVR_ENOMEM; }
    gsl_rng_set(r, (unsigned long)seed);
    for (int h = 0; status == KVR_OK && h < s->n_kv_heads; h++) {
        if (!n_needles) {
            status = synth_head(w, h, r, p);
            continue;
        }
        /* the needles need the head's model again: remake it from a copy of
         * the generator taken before the head was drawn */
        gsl_rng *saved = gsl_rng_clone(r);
        if (!saved) { status = KVR_ENOMEM; break; }
        status = synth_head(w, h, r, p);
        head_model m;
        if (status == KVR_OK) status = head_model_make(&m, saved, s->head_dim, p);
        gsl_rng_free(saved);
        if (status != KVR_OK) break;
        int D = w->head_dim, G = w->n_q_heads / w->n_kv_heads;
        double *b = malloc(sizeof(double) * (size_t)D);
        if (!b) { head_model_free(&m); status = KVR_ENOMEM; break; }
        double sqD = sqrt((double)D), L = log((double)w->n) + p->needle_extra;
        for (int j = 0; j < w->n_needles; j++) {
            gaussian_vector(r, D, b);
            orthonormalise(D, b, m.basis, m.n_basis < D ? m.n_basis : D - 1);
            float *k = w->k + ((size_t)w->needle_pos[j] * w->n_kv_heads + h) * D;
            for (int i = 0; i < D; i++)
                k[i] = (float)(m.o[i] + sqD * b[i] + gsl_ran_gaussian(r, p->key_noise));
            for (int g = 0; g < G; g++) {
                float *q = w->q + ((size_t)w->needle_step[j] * w->n_q_heads + (size_t)h * G + g) * D;
                for (int i = 0; i < D; i++)
                    q[i] = (float)(L * b[i] + gsl_ran_gaussian(r, p->query_noise));
            }
        }
        free(b);
        head_model_free(&m);
    }
    gsl_rng_free(r);
    if (status != KVR_OK) ev_workload_free(w);
    return status;
}

int ev_workload_synthetic(ev_workload *w, const ev_workload_shape *s, int context,
                           uint64_t seed, const ev_synth_params *p)
{
    return synthetic(w, s, context, seed, p, 0, NULL, NULL);
}

/* Draw the needle positions (one per decode step, distinct, in
 * [8, 3/4 n_prefill)), then the synthetic heads with their needles. */
int ev_workload_needle(ev_workload *w, const ev_workload_shape *s, int context,
                        uint64_t seed, const ev_synth_params *p)
{
    int steps = s->decode_steps, lo = 8, hi = (context - steps) * 3 / 4;
    memset(w, 0, sizeof *w);
    if (steps < 1 || steps >= context || hi - lo < 2 * steps)
        return KVR_EINVAL;          /* the context is too short for distinct needles */
    int *pos = malloc(sizeof(int) * (size_t)steps), *step = malloc(sizeof(int) * (size_t)steps);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!pos || !step || !r) {
        free(pos); free(step); if (r) gsl_rng_free(r);
        return KVR_ENOMEM;
    }
    gsl_rng_set(r, (unsigned long)(seed ^ UINT64_C(0x6E6565646C65)));
    for (int j = 0; j < steps; j++) {
        int fresh;
        do {                        /* rejection; at most half the range is taken */
            pos[j] = lo + (int)gsl_rng_uniform_int(r, (unsigned long)(hi - lo));
            fresh = 1;
            for (int i = 0; i < j; i++) fresh = fresh && pos[i] != pos[j];
        } while (!fresh);
        step[j] = context - steps + j;
    }
    gsl_rng_free(r);
    return synthetic(w, s, context, seed, p, steps, pos, step);
}

/* ---- traces (doc/eval.md §2.3) ------------------------------------------ */

static void layer_path(char *buf, size_t len, const char *dir, int layer, const char *name)
{
    snprintf(buf, len, "%s/layer%d/%s.npy", dir, layer, name);
}

int ev_trace_layers(const char *dir)
{
    char path[4096];
    struct stat st;
    int n = 0;
    for (;;) {
        layer_path(path, sizeof path, dir, n, "q");
        if (stat(path, &st) != 0)
            return n;
        n++;
    }
}

/* Read one array of the trace and check its shape: 3 dimensions, float32 or
 * float64, first dimension >= n_min.  On failure the message (through
 * *why) names the file. */
static int read_array(const char *dir, int layer, const char *name, kvr_npy *a, char *why, size_t len)
{
    char path[4096];
    layer_path(path, sizeof path, dir, layer, name);
    int status = kvr_npy_read(path, a);
    if (status != KVR_OK) {
        snprintf(why, len, "%s", kvr_last_error());   /* names the path and the code */
        return status;
    }
    if (a->ndim != 3 || (a->type != KVR_NPY_F32 && a->type != KVR_NPY_F64)) {
        snprintf(why, len, "%s: expected a float32 or float64 array of 3 dimensions [n][heads][head_dim]", path);
        kvr_npy_free(a);
        return KVR_EFORMAT;
    }
    return KVR_OK;
}

static int copy_floats(const kvr_npy *a, size_t count, float *dst, const char *what, char *why, size_t len)
{
    for (size_t i = 0; i < count; i++) {
        double x = a->type == KVR_NPY_F32 ? (double)((const float *)a->data)[i]
                                          : ((const double *)a->data)[i];
        if (!isfinite(x) || fabs(x) > 3.0e38) {
            snprintf(why, len, "%s[%zu] = %g is not a finite float32", what, i, x);
            return KVR_EFORMAT;
        }
        dst[i] = (float)x;
    }
    return KVR_OK;
}

static char trace_why[4400];

const char *ev_trace_error(void)
{
    return trace_why;
}

int ev_workload_trace(ev_workload *w, const char *dir, int layer, int context, int decode_steps)
{
    kvr_npy q, k, v;
    memset(w, 0, sizeof *w);
    trace_why[0] = 0;
    int status = read_array(dir, layer, "q", &q, trace_why, sizeof trace_why);
    if (status != KVR_OK) return status;
    status = read_array(dir, layer, "k", &k, trace_why, sizeof trace_why);
    if (status != KVR_OK) { kvr_npy_free(&q); return status; }
    status = read_array(dir, layer, "v", &v, trace_why, sizeof trace_why);
    if (status != KVR_OK) { kvr_npy_free(&q); kvr_npy_free(&k); return status; }
    size_t n = q.shape[0], Hq = q.shape[1], D = q.shape[2], H = k.shape[1];
    if (k.shape[0] != n || v.shape[0] != n || v.shape[1] != H || k.shape[2] != D || v.shape[2] != D
        || H < 1 || Hq % H != 0 || n > INT32_MAX || Hq > 65536 || D > 65536) {
        snprintf(trace_why, sizeof trace_why,
                 "%s/layer%d: shapes q [%zu][%zu][%zu], k [%zu][%zu][%zu], v [%zu][%zu][%zu] do not fit "
                 "q [n][n_q_heads][D], k and v [n][n_kv_heads][D] with n_q_heads a multiple of n_kv_heads",
                 dir, layer, q.shape[0], q.shape[1], q.shape[2], k.shape[0], k.shape[1], k.shape[2],
                 v.shape[0], v.shape[1], v.shape[2]);
        status = KVR_EFORMAT;
    }
    if (status == KVR_OK && context <= 0)
        context = (int)n;
    if (status == KVR_OK && (size_t)context > n) {
        snprintf(trace_why, sizeof trace_why, "%s/layer%d holds %zu positions, fewer than --context %d",
                 dir, layer, n, context);
        status = KVR_EINVAL;
    }
    if (status == KVR_OK) {
        status = alloc_arrays(w, (int)H, (int)Hq, (int)D, decode_steps, context);
        if (status == KVR_EINVAL)
            snprintf(trace_why, sizeof trace_why, "%s/layer%d: %d decode steps do not fit %d positions",
                     dir, layer, decode_steps, context);
    }
    if (status == KVR_OK) {
        snprintf(w->name, sizeof w->name, "trace");
        size_t nq = (size_t)context * Hq * D, nk = (size_t)context * H * D;
        status = copy_floats(&q, nq, w->q, "q", trace_why, sizeof trace_why);
        if (status == KVR_OK) status = copy_floats(&k, nk, w->k, "k", trace_why, sizeof trace_why);
        if (status == KVR_OK) status = copy_floats(&v, nk, w->v, "v", trace_why, sizeof trace_why);
        if (status != KVR_OK) ev_workload_free(w);
    }
    kvr_npy_free(&q); kvr_npy_free(&k); kvr_npy_free(&v);
    return status;
}
