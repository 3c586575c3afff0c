/* tests/model.c: the llama-architecture forward pass and its evaluation
 * (doc/model.md).
 *
 * - The forward pass (tool/runtime/model.c) matches a straightforward float64
 *   computation of the same checkpoint written here, reading the file with
 *   its own code, at several positions: on a small random checkpoint built
 *   here, and on stories260K.bin when it is present.
 * - `full` agrees with the full-cache run (top-1 1.0, KL 0); KVReviver at
 *   budget 1.0 equals `full` within rounding; compressing methods stay
 *   within their budget.
 * - Malformed checkpoints (truncated, bad header, non-finite weight, missing
 *   file) fail with KVR_EFORMAT / KVR_EIO and leave nothing allocated.
 * The model path is $KVR_TEST_MODEL or $top_srcdir/../shared/models/
 * stories260K.bin; without it the tests that need it are skipped and the
 * program exits 77 after the others pass. */
#include <config.h>
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness/model_eval.h"
#include "testutil.h"

static char model_path[4096];
static char tmp_dir[] = "/tmp/kvr-model-test-XXXXXX";

/* ---- an independent float64 reading and forward pass -------------------- */

typedef struct {
    int dim, hidden, layers, heads, kv_heads, vocab, seq_len, hs;
    int shared;
    double *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final, *wcls;
    double *all;
} dmodel;

/* Read a llama2.c checkpoint straight into float64 arrays (no checks
 * beyond fread succeeding: the files here are known good). */
static void dmodel_read(dmodel *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    int32_t h[7];
    ck_assert(fread(h, sizeof h, 1, f) == 1);
    d->dim = h[0]; d->hidden = h[1]; d->layers = h[2]; d->heads = h[3];
    d->kv_heads = h[4]; d->shared = h[5] > 0; d->vocab = abs(h[5]); d->seq_len = h[6];
    d->hs = d->dim / d->heads;
    size_t D = d->dim, F = d->hidden, L = d->layers, V = d->vocab, kd = (size_t)d->kv_heads * d->hs;
    size_t sizes[] = {V * D, L * D, L * D * D, L * kd * D, L * kd * D, L * D * D, L * D,
                      L * F * D, L * D * F, L * F * D, D, (size_t)d->seq_len * d->hs, d->shared ? 0 : V * D};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    d->all = malloc(sizeof(double) * total);
    float *tmp = malloc(sizeof(float) * total);
    ck_assert(d->all && tmp);
    ck_assert(fread(tmp, sizeof(float), total, f) == total);
    fclose(f);
    for (size_t i = 0; i < total; i++)
        d->all[i] = tmp[i];
    free(tmp);
    double *p = d->all;
    double **dst[] = {&d->emb, &d->rms_att, &d->wq, &d->wk, &d->wv, &d->wo, &d->rms_ffn,
                      &d->w1, &d->w2, &d->w3, &d->rms_final, NULL, &d->wcls};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (dst[i]) *dst[i] = p;
        p += sizes[i];
    }
    if (d->shared)
        d->wcls = d->emb;
}

static void dnorm(double *o, const double *x, const double *w, int n)
{
    double ss = 0.0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + 1e-5);
    for (int i = 0; i < n; i++) o[i] = x[i] * s * w[i];
}

static void dmat(double *y, const double *W, const double *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        double s = 0.0;
        for (int c = 0; c < cols; c++) s += W[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}

/* RoPE written from the format description: pair (2i, 2i+1) of each head
 * turns by pos * 10000^(-2i/hs). */
static void drope(double *x, int heads, int hs, int pos)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hs / 2; i++) {
            double a = pos * pow(10000.0, -2.0 * i / hs);
            double *p = x + h * hs + 2 * i, x0 = p[0], x1 = p[1];
            p[0] = x0 * cos(a) - x1 * sin(a);
            p[1] = x0 * sin(a) + x1 * cos(a);
        }
}

/* Logits after each of tokens[0..n-1] with full causal attention, float64.
 *   logits: [n][vocab] */
static void dforward(const dmodel *d, const int *tokens, int n, double *logits)
{
    int D = d->dim, F = d->hidden, hs = d->hs, Hq = d->heads, H = d->kv_heads, kd = H * hs;
    double *K = malloc(sizeof(double) * (size_t)d->layers * n * kd);   /* [L][n][kd] */
    double *Vv = malloc(sizeof(double) * (size_t)d->layers * n * kd);  /* [L][n][kd] */
    double *x = malloc(sizeof(double) * D), *xb = malloc(sizeof(double) * D);
    double *q = malloc(sizeof(double) * D), *att = malloc(sizeof(double) * D);
    double *o = malloc(sizeof(double) * D), *h1 = malloc(sizeof(double) * F);
    double *h3 = malloc(sizeof(double) * F), *sc = malloc(sizeof(double) * n);
    for (int t = 0; t < n; t++) {
        for (int i = 0; i < D; i++) x[i] = d->emb[(size_t)tokens[t] * D + i];
        for (int l = 0; l < d->layers; l++) {
            double *k = K + ((size_t)l * n + t) * kd, *v = Vv + ((size_t)l * n + t) * kd;
            dnorm(xb, x, d->rms_att + (size_t)l * D, D);
            dmat(q, d->wq + (size_t)l * D * D, xb, D, D);
            dmat(k, d->wk + (size_t)l * kd * D, xb, kd, D);
            dmat(v, d->wv + (size_t)l * kd * D, xb, kd, D);
            drope(q, Hq, hs, t);
            drope(k, H, hs, t);
            for (int qh = 0; qh < Hq; qh++) {
                int kh = qh / (Hq / H);
                double mx = -INFINITY, sum = 0.0;
                for (int u = 0; u <= t; u++) {
                    const double *ku = K + ((size_t)l * n + u) * kd + kh * hs;
                    double s = 0.0;
                    for (int i = 0; i < hs; i++) s += q[qh * hs + i] * ku[i];
                    sc[u] = s / sqrt((double)hs);
                    if (sc[u] > mx) mx = sc[u];
                }
                for (int u = 0; u <= t; u++) { sc[u] = exp(sc[u] - mx); sum += sc[u]; }
                for (int i = 0; i < hs; i++) {
                    double s = 0.0;
                    for (int u = 0; u <= t; u++)
                        s += sc[u] / sum * Vv[((size_t)l * n + u) * kd + kh * hs + i];
                    att[qh * hs + i] = s;
                }
            }
            dmat(o, d->wo + (size_t)l * D * D, att, D, D);
            for (int i = 0; i < D; i++) x[i] += o[i];
            dnorm(xb, x, d->rms_ffn + (size_t)l * D, D);
            dmat(h1, d->w1 + (size_t)l * F * D, xb, F, D);
            dmat(h3, d->w3 + (size_t)l * F * D, xb, F, D);
            for (int i = 0; i < F; i++) h1[i] = h1[i] / (1.0 + exp(-h1[i])) * h3[i];
            dmat(o, d->w2 + (size_t)l * D * F, h1, D, F);
            for (int i = 0; i < D; i++) x[i] += o[i];
        }
        dnorm(xb, x, d->rms_final, D);
        dmat(logits + (size_t)t * d->vocab, d->wcls, xb, d->vocab, D);
    }
    free(K); free(Vv); free(x); free(xb); free(q); free(att); free(o); free(h1); free(h3); free(sc);
}

/* ---- a small random checkpoint ------------------------------------------ */

static uint64_t rng_state;
static double urand(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

/* Header values of the small checkpoint: dim 16, hidden 24, 2 layers,
 * 4 heads, 2 KV heads, vocab 32 (shared classifier), seq_len 8. */
static const int32_t small_hdr[7] = {16, 24, 2, 4, 2, 32, 8};

static size_t small_floats(const int32_t *h)
{
    size_t D = h[0], F = h[1], L = h[2], hs = D / h[3], kd = (size_t)h[4] * hs, V = abs(h[5]);
    return V * D + L * D + L * D * D + 2 * L * kd * D + L * D * D + L * D + 3 * L * F * D + D
         + (size_t)h[6] * hs + (h[5] > 0 ? 0 : V * D);
}

/* Write a checkpoint with header h and n_floats weights (uniform in
 * [-0.5, 0.5), norms near 1) to dir/name; returns the path (static). */
static const char *write_ckpt(const char *name, const int32_t *h, size_t n_floats)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert(fwrite(h, sizeof(int32_t), 7, f) == 7);
    rng_state = 42;
    for (size_t i = 0; i < n_floats; i++) {
        float w = (float)(urand() - 0.5);
        ck_assert(fwrite(&w, sizeof w, 1, f) == 1);
    }
    ck_assert(fclose(f) == 0);
    return path;
}

/* ---- forward pass against float64 -------------------------------------- */

/* Compare lm_model_step (full cache) with dforward at every position of a
 * token sequence, and the prefill path at the last position.  Tolerance:
 * every float32 dot product of length n has relative error at most n*u
 * (u = 2^-24) of the sum of |terms|; a layer chains four of them (QKV,
 * attention over <= n_pos positions, output, FFN of length hidden), the
 * classifier one more.  Bound the error of each logit by
 *   (4 L + 1) * max(dim, hidden, n_pos) * u * max_t |logit|
 * and assert it for every logit of every position.  The n*u bound holds for
 * a sum of n terms in any order (with or without fused multiply-add), so it
 * covers the BLAS build, whose sgemv/sgemm sum in an order of their own, as
 * well as the plain loops. */
static void check_forward(const char *path, int n_pos)
{
    lm_model m;
    ck_assert_int_eq(lm_model_load(&m, path), KVR_OK);
    dmodel d;
    dmodel_read(&d, path);
    ck_assert_int_eq(d.vocab, m.vocab_size);
    int *tokens = malloc(sizeof(int) * n_pos);
    rng_state = 7;
    tokens[0] = 1;
    for (int t = 1; t < n_pos; t++)
        tokens[t] = (int)(urand() * m.vocab_size);
    double *ref = malloc(sizeof(double) * (size_t)n_pos * m.vocab_size);
    dforward(&d, tokens, n_pos, ref);
    kvr_config cfg;
    ck_assert_int_eq(kvr_method_config("full", 1.0, n_pos, m.head_dim, KVR_F32, &cfg), KVR_OK);
    kvr_cache *c;
    ck_assert_int_eq(lm_model_cache(&m, &cfg, &c), KVR_OK);
    lm_model_state s;
    ck_assert_int_eq(lm_model_state_init(&s, &m), KVR_OK);
    float *logits = malloc(sizeof(float) * m.vocab_size);
    int nmax = m.dim > m.hidden_dim ? m.dim : m.hidden_dim;
    if (n_pos > nmax) nmax = n_pos;
    double u = ldexp(1.0, -24);
    tu_tally steps = TU_TALLY_INIT;       /* mark: the position */
    for (int t = 0; t < n_pos; t++) {
        ck_assert_int_eq(lm_model_step(&m, &s, c, tokens[t], logits), KVR_OK);
        const double *r = ref + (size_t)t * m.vocab_size;
        double scale = 0.0;
        for (int j = 0; j < m.vocab_size; j++)
            scale = fmax(scale, fabs(r[j]));
        double tol = (4.0 * m.n_layers + 1.0) * nmax * u * scale;
        steps.mark = t;
        for (int j = 0; j < m.vocab_size; j++)
            tu_tally_add(&steps, logits[j], r[j], tol);
    }
    char what[600];
    snprintf(what, sizeof what, "%s: logits of %d positions, step by step vs float64 (i: position * vocab + token)",
             path, n_pos);
    tu_tally_check(what, &steps, 1);
    /* the prefill path: logits after the whole sequence */
    kvr_cache *c2;
    ck_assert_int_eq(lm_model_cache(&m, &cfg, &c2), KVR_OK);
    ck_assert_int_eq(lm_model_prefill(&m, &s, c2, n_pos, tokens, logits), KVR_OK);
    ck_assert_int_eq(kvr_length(c2, m.n_layers - 1), n_pos);
    const double *r = ref + (size_t)(n_pos - 1) * m.vocab_size;
    double scale = 0.0;
    for (int j = 0; j < m.vocab_size; j++)
        scale = fmax(scale, fabs(r[j]));
    tu_tally last = TU_TALLY_INIT;
    last.mark = n_pos - 1;
    for (int j = 0; j < m.vocab_size; j++)
        tu_tally_add(&last, logits[j], r[j], (4.0 * m.n_layers + 1.0) * nmax * u * scale);
    snprintf(what, sizeof what, "%s: logits after prefill vs float64 (i: token)", path);
    tu_tally_check(what, &last, 1);
    kvr_cache_free(c);
    kvr_cache_free(c2);
    lm_model_state_free(&s);
    free(logits); free(ref); free(tokens); free(d.all);
    lm_model_free(&m);
}

START_TEST(forward_small)
{
    const char *path = write_ckpt("small.bin", small_hdr, small_floats(small_hdr));
    check_forward(path, 8);
}
END_TEST

START_TEST(forward_stories)
{
    check_forward(model_path, 40);
}
END_TEST

/* The same check with an unshared classifier (negative vocab_size). */
START_TEST(forward_small_classifier)
{
    int32_t h[7];
    memcpy(h, small_hdr, sizeof h);
    h[5] = -h[5];
    const char *path = write_ckpt("cls.bin", h, small_floats(h));
    check_forward(path, 6);
}
END_TEST

/* ---- evaluation ---------------------------------------------------------- */

START_TEST(eval_full_and_budget_one)
{
    lm_model m;
    ck_assert_int_eq(lm_model_load(&m, model_path), KVR_OK);
    ev_model_task t;
    ck_assert_int_eq(ev_model_task_init(&t, &m, 96, 0, 3, KVR_F32, NULL), KVR_OK);
    ck_assert_int_eq(t.tokens[0], 1);
    ev_model_result r;
    ck_assert_int_eq(ev_model_eval_method(&t, "full", 0.1, KVR_F32, 1, &r, NULL), KVR_OK);
    ck_assert(r.top1_agree == 1.0);
    ck_assert(r.kl == 0.0);
    ck_assert(r.bytes_ratio == 1.0 && r.exact_ratio == 1.0);
    double full_ppl = r.ppl;
    ck_assert(full_ppl > 1.0 && full_ppl < m.vocab_size);
    /* budget 1.0 keeps every position exact: the same float32 values reach
     * the same attention code; allow only rounding: KL below 1e-9 nats. */
    ck_assert_int_eq(ev_model_eval_method(&t, "kvreviver", 1.0, KVR_F32, 1, &r, NULL), KVR_OK);
    ck_assert(r.top1_agree == 1.0);
    ck_assert_msg(fabs(r.kl) < 1e-9, "kl %g", r.kl);
    ck_assert_msg(fabs(r.ppl - full_ppl) < 1e-9 * full_ppl, "ppl %g vs %g", r.ppl, full_ppl);
    ck_assert(r.exact_ratio == 1.0);
    /* compressing methods hold at most their budget and lose something */
    for (int i = 1; kvr_method_name(i); i++) {
        ck_assert_int_eq(ev_model_eval_method(&t, kvr_method_name(i), 0.25, KVR_F32, 1, &r, NULL), KVR_OK);
        ck_assert_msg(r.bytes_ratio <= 0.25, "%s holds %g", kvr_method_name(i), r.bytes_ratio);
        ck_assert_msg(r.kl > 0.0 && r.top1_agree <= 1.0 && r.exact_ratio < 1.0, "%s", kvr_method_name(i));
    }
    ev_model_task_free(&t);
    lm_model_free(&m);
}
END_TEST

/* ---- malformed checkpoints ---------------------------------------------- */

static void expect_fail(const char *path, int want, const char *what)
{
    lm_model m;
    memset(&m, 0x5a, sizeof m);
    int status = lm_model_load(&m, path);
    ck_assert_msg(status == want, "%s: status %d, want %d (%s)", what, status, want, lm_model_error());
    ck_assert_msg(strstr(lm_model_error(), path) != NULL, "%s: message '%s' does not name the path",
                  what, lm_model_error());
    ck_assert(m.n_owned == 0 && m.token_embedding == NULL);
}

START_TEST(malformed)
{
    size_t n = small_floats(small_hdr);
    write_ckpt("ok.bin", small_hdr, n);
    lm_model m;
    char ok[4200];
    snprintf(ok, sizeof ok, "%s/ok.bin", tmp_dir);
    ck_assert_int_eq(lm_model_load(&m, ok), KVR_OK);
    lm_model_free(&m);
    expect_fail(write_ckpt("short.bin", small_hdr, n - 1), KVR_EFORMAT, "truncated by one float");
    expect_fail(write_ckpt("long.bin", small_hdr, n + 1), KVR_EFORMAT, "one float too many");
    expect_fail(write_ckpt("hdr.bin", small_hdr, 0), KVR_EFORMAT, "header only");
    /* shorter than the header */
    char p[4200];
    snprintf(p, sizeof p, "%s/tiny.bin", tmp_dir);
    FILE *f = fopen(p, "wb");
    ck_assert(fwrite(small_hdr, 4, 3, f) == 3);
    fclose(f);
    expect_fail(p, KVR_EFORMAT, "12-byte file");
    /* bad header values, each with the size the small file has */
    const struct { int field; int32_t value; } bad[] = {
        {0, 0}, {0, -16}, {1, 0}, {2, 0}, {2, -1}, {3, 0}, {3, 3}, {3, 32}, {4, 0},
        {4, 3}, {5, 0}, {5, INT32_MIN}, {6, 0}, {6, -8}, {0, INT32_MAX}, {1, INT32_MAX},
        {2, 100000}, {5, INT32_MAX},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t h[7];
        memcpy(h, small_hdr, sizeof h);
        h[bad[i].field] = bad[i].value;
        char what[64];
        snprintf(what, sizeof what, "header field %d = %d", bad[i].field, (int)bad[i].value);
        expect_fail(write_ckpt("bad.bin", h, n), KVR_EFORMAT, what);
    }
    /* a non-finite weight */
    write_ckpt("nan.bin", small_hdr, n);
    snprintf(p, sizeof p, "%s/nan.bin", tmp_dir);
    f = fopen(p, "r+b");
    float nanv = NAN;
    ck_assert(fseek(f, 28 + 4 * 100, SEEK_SET) == 0);
    ck_assert(fwrite(&nanv, 4, 1, f) == 1);
    fclose(f);
    expect_fail(p, KVR_EFORMAT, "NaN weight");
    snprintf(p, sizeof p, "%s/absent.bin", tmp_dir);
    expect_fail(p, KVR_EIO, "missing file");
}
END_TEST

/* ---- GGUF ---------------------------------------------------------------- */

/* A growing byte buffer for writing GGUF files. */
typedef struct { unsigned char *b; size_t n, cap; } buf;

static void put(buf *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = 2 * (o->n + n) + 1024;
        o->b = realloc(o->b, o->cap);
        ck_assert(o->b != NULL);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void put_u32(buf *o, uint32_t v) { put(o, &v, 4); }
static void put_u64(buf *o, uint64_t v) { put(o, &v, 8); }
static void put_str(buf *o, const char *s) { put_u64(o, strlen(s)); put(o, s, strlen(s)); }
static void kv_u32(buf *o, const char *k, uint32_t v) { put_str(o, k); put_u32(o, 4); put_u32(o, v); }
static void kv_f32(buf *o, const char *k, float v) { put_str(o, k); put_u32(o, 6); put(o, &v, 4); }

/* The GGUF test model: dim 32, hidden 64, 2 layers, 4 heads, 2 KV heads,
 * vocab 40, seq_len 16 (rows a multiple of the 32-element blocks). */
static const int32_t gg_hdr[7] = {32, 64, 2, 4, 2, 40, 16};

/* Tensors of a llama2.c checkpoint's floats as GGUF (name, ne0, ne1,
 * offset in floats); `emb_type`/`emb_bytes` replace token_embd's F32 data
 * when emb_bytes is not NULL.  Returns the file's bytes in *o and the byte
 * offset of the first tensor info in *info_at. */
static void gguf_build(buf *o, const float *w, uint32_t emb_type, const unsigned char *emb_bytes,
                       size_t emb_n, size_t *info_at)
{
    int D = gg_hdr[0], F = gg_hdr[1], L = gg_hdr[2], V = gg_hdr[5], hs = D / gg_hdr[3], kd = gg_hdr[4] * hs;
    struct { char name[48]; uint64_t ne0, ne1; size_t at; } t[64];
    int nt = 0;
    size_t at = 0;
#define ADD(nm, a, b, count) do { snprintf(t[nt].name, sizeof t[nt].name, "%s", nm); t[nt].ne0 = (a); \
        t[nt].ne1 = (b); t[nt].at = at; nt++; } while (0)
    char nm[48];
    size_t emb = at; ADD("token_embd.weight", D, V, 0); at += (size_t)V * D;
    size_t rms_att = at; at += (size_t)L * D;
    size_t wq = at; at += (size_t)L * D * D;
    size_t wk = at; at += (size_t)L * kd * D;
    size_t wv = at; at += (size_t)L * kd * D;
    size_t wo = at; at += (size_t)L * D * D;
    size_t rms_ffn = at; at += (size_t)L * D;
    size_t w1 = at; at += (size_t)L * F * D;
    size_t w2 = at; at += (size_t)L * D * F;
    size_t w3 = at; at += (size_t)L * F * D;
    size_t rms_final = at;
    (void)emb;
    for (int l = 0; l < L; l++) {
        at = rms_att + (size_t)l * D; snprintf(nm, sizeof nm, "blk.%d.attn_norm.weight", l); ADD(nm, D, 1, 0);
        at = wq + (size_t)l * D * D; snprintf(nm, sizeof nm, "blk.%d.attn_q.weight", l); ADD(nm, D, D, 0);
        at = wk + (size_t)l * kd * D; snprintf(nm, sizeof nm, "blk.%d.attn_k.weight", l); ADD(nm, D, kd, 0);
        at = wv + (size_t)l * kd * D; snprintf(nm, sizeof nm, "blk.%d.attn_v.weight", l); ADD(nm, D, kd, 0);
        at = wo + (size_t)l * D * D; snprintf(nm, sizeof nm, "blk.%d.attn_output.weight", l); ADD(nm, D, D, 0);
        at = rms_ffn + (size_t)l * D; snprintf(nm, sizeof nm, "blk.%d.ffn_norm.weight", l); ADD(nm, D, 1, 0);
        at = w1 + (size_t)l * F * D; snprintf(nm, sizeof nm, "blk.%d.ffn_gate.weight", l); ADD(nm, D, F, 0);
        at = w2 + (size_t)l * D * F; snprintf(nm, sizeof nm, "blk.%d.ffn_down.weight", l); ADD(nm, F, D, 0);
        at = w3 + (size_t)l * F * D; snprintf(nm, sizeof nm, "blk.%d.ffn_up.weight", l); ADD(nm, D, F, 0);
    }
    at = rms_final; ADD("output_norm.weight", D, 1, 0);
#undef ADD
    o->n = 0;
    put(o, "GGUF", 4);
    put_u32(o, 3);
    put_u64(o, (uint64_t)nt);
    put_u64(o, 16);
    put_str(o, "general.architecture"); put_u32(o, 8); put_str(o, "llama");
    put_str(o, "tokenizer.ggml.pre"); put_u32(o, 8); put_str(o, "smollm");
    put_str(o, "general.tags"); put_u32(o, 9); put_u32(o, 9); put_u64(o, 2);   /* array of arrays */
    put_u32(o, 5); put_u64(o, 1); put_u32(o, 7);
    put_u32(o, 8); put_u64(o, 1); put_str(o, "x");
    kv_u32(o, "llama.embedding_length", D);
    kv_u32(o, "llama.feed_forward_length", F);
    kv_u32(o, "llama.block_count", L);
    kv_u32(o, "llama.attention.head_count", gg_hdr[3]);
    kv_u32(o, "llama.attention.head_count_kv", gg_hdr[4]);
    kv_u32(o, "llama.context_length", gg_hdr[6]);
    kv_f32(o, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    kv_f32(o, "llama.rope.freq_base", 10000.0f);
    kv_u32(o, "llama.rope.dimension_count", hs);
    kv_u32(o, "tokenizer.ggml.bos_token_id", 1);
    /* tokens: "a".."z" (0-25), "ab" (26), "abc" (27), "x28".."x39"; merges
     * "a b" then "ab c" */
    put_str(o, "tokenizer.ggml.tokens"); put_u32(o, 9); put_u32(o, 8); put_u64(o, V);
    for (int i = 0; i < V; i++) {
        if (i < 26) snprintf(nm, sizeof nm, "%c", 'a' + i);
        else if (i == 26) snprintf(nm, sizeof nm, "ab");
        else if (i == 27) snprintf(nm, sizeof nm, "abc");
        else snprintf(nm, sizeof nm, "x%d", i);
        put_str(o, nm);
    }
    put_str(o, "tokenizer.ggml.merges"); put_u32(o, 9); put_u32(o, 8); put_u64(o, 2);
    put_str(o, "a b"); put_str(o, "ab c");
    put_str(o, "general.name"); put_u32(o, 8); put_str(o, "test");
    *info_at = o->n;
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        put_str(o, t[i].name);
        put_u32(o, t[i].ne1 > 1 ? 2 : 1);
        put_u64(o, t[i].ne0);
        if (t[i].ne1 > 1) put_u64(o, t[i].ne1);
        int is_emb = i == 0 && emb_bytes;
        put_u32(o, is_emb ? emb_type : 0);
        put_u64(o, off);
        size_t bytes = is_emb ? emb_n : t[i].ne0 * t[i].ne1 * 4;
        off += (bytes + 31) / 32 * 32;
    }
    static const unsigned char zero[32];
    put(o, zero, (32 - o->n % 32) % 32);
    for (int i = 0; i < nt; i++) {
        int is_emb = i == 0 && emb_bytes;
        size_t bytes = is_emb ? emb_n : t[i].ne0 * t[i].ne1 * 4;
        put(o, is_emb ? (const void *)emb_bytes : (const void *)(w + t[i].at), bytes);
        put(o, zero, (32 - bytes % 32) % 32);
    }
}

static const char *write_bytes(const char *name, const buf *o, size_t n)
{
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    ck_assert(fwrite(o->b, 1, n, f) == n);
    ck_assert(fclose(f) == 0);
    return path;
}

/* The checkpoint's floats (after the 28-byte header). */
static float *ckpt_floats(const char *path, size_t n)
{
    float *w = malloc(sizeof(float) * n);
    FILE *f = fopen(path, "rb");
    ck_assert(f && w);
    ck_assert(fseek(f, 28, SEEK_SET) == 0);
    ck_assert(fread(w, sizeof(float), n, f) == n);
    fclose(f);
    return w;
}

/* An F32 GGUF of the same weights loads into the same model as the llama2.c
 * file: every weight equal, the logits equal bit for bit. */
START_TEST(gguf_equals_llama2c)
{
    size_t n = small_floats(gg_hdr);
    char ck[4200];
    snprintf(ck, sizeof ck, "%s", write_ckpt("gg.bin", gg_hdr, n));
    float *w = ckpt_floats(ck, n);
    buf o = {0};
    size_t info_at;
    gguf_build(&o, w, 0, NULL, 0, &info_at);
    const char *gp = write_bytes("gg.gguf", &o, o.n);
    lm_model a, b;
    ck_assert_int_eq(lm_model_load(&a, ck), KVR_OK);
    ck_assert_msg(lm_model_load(&b, gp) == KVR_OK, "%s", lm_model_error());
    ck_assert_int_eq(b.dim, 32);
    ck_assert_int_eq(b.head_dim, 8);
    ck_assert_int_eq(b.n_kv_heads, 2);
    ck_assert_int_eq(b.vocab_size, 40);
    ck_assert(b.tokens && !strcmp(b.tokens[7], "h") && b.n_merges == 2 && !strcmp(b.merges[1], "ab c"));
    size_t qd = 32, kd = 16, L = 2, D = 32, F = 64;
    ck_assert(!memcmp(a.token_embedding, b.token_embedding, sizeof(float) * 40 * D));
    ck_assert(!memcmp(a.wq, b.wq, sizeof(float) * L * qd * D));
    ck_assert(!memcmp(a.wk, b.wk, sizeof(float) * L * kd * D));
    ck_assert(!memcmp(a.wv, b.wv, sizeof(float) * L * kd * D));
    ck_assert(!memcmp(a.wo, b.wo, sizeof(float) * L * D * qd));
    ck_assert(!memcmp(a.w1, b.w1, sizeof(float) * L * F * D));
    ck_assert(!memcmp(a.w2, b.w2, sizeof(float) * L * D * F));
    ck_assert(!memcmp(a.w3, b.w3, sizeof(float) * L * F * D));
    ck_assert(!memcmp(a.rms_att, b.rms_att, sizeof(float) * L * D));
    ck_assert(!memcmp(a.rms_ffn, b.rms_ffn, sizeof(float) * L * D));
    ck_assert(!memcmp(a.rms_final, b.rms_final, sizeof(float) * D));
    ck_assert(b.wcls == b.token_embedding);
    /* BPE on the toy vocabulary: merges apply in rank order, only where listed */
    lm_bpe bp;
    ck_assert_int_eq(lm_bpe_init(&bp, &b), KVR_OK);
    const struct { const char *text; int n; int ids[4]; } cases[] = {
        {"abc", 1, {27}}, {"abd", 2, {26, 3}}, {"ba", 2, {1, 0}}, {"cab", 2, {2, 26}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int ids[16], nid;
        char out[32];
        ck_assert_int_eq(lm_bpe_encode(&bp, cases[i].text, ids, 16, &nid), KVR_OK);
        ck_assert_int_eq(nid, cases[i].n);
        for (int j = 0; j < nid; j++)
            ck_assert_int_eq(ids[j], cases[i].ids[j]);
        lm_bpe_decode(&bp, ids, nid, out, sizeof out);
        ck_assert_str_eq(out, cases[i].text);
    }
    lm_bpe_free(&bp);
    /* the pre-tokenizers' pieces (doc/model.md §2.3): GPT-2's pattern, and
     * smollm's digits cut one by one first */
    static const struct { const char *pre, *text, *pieces; } cuts[] = {
        {"smollm", "x 1", "x| |1"},
        {"gpt2", "x 12", "x| 12"},
        {"smollm", "x 12", "x| |1|2"},
        {"smollm", "a1b", "a|1|b"},
        {"smollm", "It's they're", "It|'s| they|'re"},
        {"smollm", "DON'T", "DON|'|T"},
        {"smollm", "we'll I'd 'm", "we|'ll| I|'d| '|m"},
        {"smollm", "a  b", "a| | b"},
        {"smollm", "a\t\tb", "a|\t|\t|b"},
        {"smollm", "x  ", "x|  "},
        {"smollm", "hi!! ?!", "hi|!!| ?!"},
        {"smollm", "caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9| na\xc3\xafve"},
        {"smollm", "x \xc2\xbd", "x| |\xc2\xbd"},          /* U+00BD is category N */
        {"smollm", "a\n\n  b", "a|\n\n | b"},
    };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        lm_model mb = b;
        snprintf(mb.tok_pre, sizeof mb.tok_pre, "%s", cuts[i].pre);
        ck_assert_int_eq(lm_bpe_init(&bp, &mb), KVR_OK);
        size_t ends[32];
        int np;
        ck_assert_int_eq(lm_bpe_split(&bp, cuts[i].text, ends, 32, &np), KVR_OK);
        char got[96] = "";
        size_t k = 0, from = 0;
        for (int j = 0; j < np; j++) {
            if (j) got[k++] = '|';
            memcpy(got + k, cuts[i].text + from, ends[j] - from);
            k += ends[j] - from;
            from = ends[j];
        }
        got[k] = '\0';
        ck_assert_msg(!strcmp(got, cuts[i].pieces), "%s \"%s\": pieces \"%s\", want \"%s\"", cuts[i].pre,
                      cuts[i].text, got, cuts[i].pieces);
        lm_bpe_free(&bp);
    }
    /* a pre-tokenizer we do not implement, or none, is refused by name */
    lm_model mu = b;
    snprintf(mu.tok_pre, sizeof mu.tok_pre, "llama3");
    ck_assert_int_eq(lm_bpe_init(&bp, &mu), KVR_EFORMAT);
    ck_assert_msg(strstr(lm_model_error(), "\"llama3\" is not supported"), "%s", lm_model_error());
    mu.tok_pre[0] = '\0';
    ck_assert_int_eq(lm_bpe_init(&bp, &mu), KVR_EFORMAT);
    ck_assert_msg(strstr(lm_model_error(), "(missing)"), "%s", lm_model_error());
    /* the same logits */
    kvr_config cfg;
    ck_assert_int_eq(kvr_method_config("full", 1.0, 8, 8, KVR_F32, &cfg), KVR_OK);
    kvr_cache *ca, *cb;
    lm_model_state sa, sb;
    ck_assert_int_eq(lm_model_cache(&a, &cfg, &ca), KVR_OK);
    ck_assert_int_eq(lm_model_cache(&b, &cfg, &cb), KVR_OK);
    ck_assert_int_eq(lm_model_state_init(&sa, &a), KVR_OK);
    ck_assert_int_eq(lm_model_state_init(&sb, &b), KVR_OK);
    float la[40], lb[40];
    for (int t = 0; t < 8; t++) {
        ck_assert_int_eq(lm_model_step(&a, &sa, ca, (t * 7) % 40, la), KVR_OK);
        ck_assert_int_eq(lm_model_step(&b, &sb, cb, (t * 7) % 40, lb), KVR_OK);
        ck_assert(!memcmp(la, lb, sizeof la));
    }
    kvr_cache_free(ca); kvr_cache_free(cb);
    lm_model_state_free(&sa); lm_model_state_free(&sb);
    lm_model_free(&a); lm_model_free(&b);
    free(w); free(o.b);
}
END_TEST

/* Several caches in lock step on two threads, split contiguously or
 * balanced by their cost, give each cache the logits
 * that lm_model_step gives it alone, bit for bit: a cache's computation does
 * not depend on the others or on the threads (model.h, model_run.c). */
START_TEST(lock_step_equals_alone)
{
    lm_model m;
    ck_assert_int_eq(lm_model_load(&m, model_path), KVR_OK);
    enum { N = 3, POS = 48 };
    const char *methods[N] = {"full", "h2o", "kvreviver"};
    kvr_cache *alone[N], *many[N];
    lm_model_state sa[N], sm[N], *sp[N];
    float *la[N], *lm[N];
    int tok[N], st[N];
    double cost[N] = {0};   /* odd steps balance the threads by it, even steps split contiguously */
    for (int i = 0; i < N; i++) {
        kvr_config cfg;
        ck_assert_int_eq(kvr_method_config(methods[i], i ? 0.5 : 1.0, POS, m.head_dim, KVR_F16, &cfg), KVR_OK);
        ck_assert_int_eq(lm_model_cache(&m, &cfg, &alone[i]), KVR_OK);
        ck_assert_int_eq(lm_model_cache(&m, &cfg, &many[i]), KVR_OK);
        ck_assert_int_eq(lm_model_state_init(&sa[i], &m), KVR_OK);
        ck_assert_int_eq(lm_model_state_init(&sm[i], &m), KVR_OK);
        sp[i] = &sm[i];
        la[i] = malloc(sizeof(float) * m.vocab_size);
        lm[i] = malloc(sizeof(float) * m.vocab_size);
        st[i] = KVR_OK;
    }
    for (int t = 0; t < POS; t++) {
        for (int i = 0; i < N; i++) {
            tok[i] = (t * 37 + 11 * i) % m.vocab_size;
            ck_assert_int_eq(lm_model_step(&m, &sa[i], alone[i], tok[i], la[i]), KVR_OK);
        }
        ck_assert_int_eq(ev_model_step_threads(&m, N, sp, many, tok, lm, st, 2, t % 2 ? cost : NULL), KVR_OK);
        for (int i = 0; i < N; i++)
            ck_assert_msg(!memcmp(la[i], lm[i], sizeof(float) * m.vocab_size), "%s at %d", methods[i], t);
    }
    for (int i = 0; i < N; i++) {
        kvr_cache_free(alone[i]); kvr_cache_free(many[i]);
        lm_model_state_free(&sa[i]); lm_model_state_free(&sm[i]);
        free(la[i]); free(lm[i]);
    }
    lm_model_free(&m);
}
END_TEST

/* --text on a model without a tokenizer is a clear error; the context may
 * not exceed the trained one. */
START_TEST(text_needs_tokenizer)
{
    lm_model m;
    const char *path = write_ckpt("tok.bin", small_hdr, small_floats(small_hdr));
    ck_assert_int_eq(lm_model_load(&m, path), KVR_OK);
    char text[4200];
    snprintf(text, sizeof text, "%s/doc.txt", tmp_dir);
    FILE *f = fopen(text, "w");
    ck_assert(f && fputs("abc", f) >= 0 && fclose(f) == 0);
    int *ids, n;
    ck_assert_int_eq(ev_model_text_tokens(&m, text, &ids, &n), KVR_EINVAL);
    ck_assert_msg(strstr(lm_model_error(), "no tokenizer") != NULL, "%s", lm_model_error());
    const double budgets[] = {0.5};
    const char *methods[] = {"full"};
    const unsigned long long seeds[] = {1};
    ev_model_opts o = {path, text, 8, 4, 1, KVR_F32, budgets, 1, methods, 1, seeds, 1, 0, 0, 1, 1, NULL};
    ck_assert_int_eq(ev_model_run(&m, &o), 2);
    o.text = NULL;
    o.context = small_hdr[6] + 1;   /* above the trained context */
    ck_assert_int_eq(ev_model_run(&m, &o), 2);
    lm_model_free(&m);
}
END_TEST

/* The windows of a document: the toy GGUF's tokenizer makes "abc" one token,
 * so a text of 40 "abc" has 40 tokens: 4 windows of 8 (+1) fit, 5 do not;
 * the CSV then has one row per method with seeds = windows, the unified
 * header, and not-UTF-8 text is refused with its byte offset. */
START_TEST(text_windows)
{
    size_t n = small_floats(gg_hdr);
    char ck[4200], text[4200], bad_text[4200], csv[4200];
    snprintf(ck, sizeof ck, "%s", write_ckpt("tw.bin", gg_hdr, n));
    float *w = ckpt_floats(ck, n);
    buf o = {0};
    size_t info_at;
    gguf_build(&o, w, 0, NULL, 0, &info_at);
    const char *gp = write_bytes("tw.gguf", &o, o.n);
    lm_model m;
    ck_assert_msg(lm_model_load(&m, gp) == KVR_OK, "%s", lm_model_error());
    snprintf(text, sizeof text, "%s/abc.txt", tmp_dir);
    FILE *f = fopen(text, "w");
    for (int i = 0; i < 40; i++) fputs("abc", f);
    fclose(f);
    snprintf(bad_text, sizeof bad_text, "%s/bad.txt", tmp_dir);
    f = fopen(bad_text, "w");
    fputs("abc\xff", f);
    fclose(f);
    int *ids, nid;
    ck_assert_int_eq(ev_model_text_tokens(&m, text, &ids, &nid), KVR_OK);
    ck_assert_int_eq(nid, 40);
    for (int i = 0; i < nid; i++) ck_assert_int_eq(ids[i], 27);
    free(ids);
    ck_assert_int_eq(ev_model_text_tokens(&m, bad_text, &ids, &nid), KVR_EFORMAT);
    ck_assert_msg(strstr(lm_model_error(), "byte 3") != NULL, "%s", lm_model_error());
    snprintf(csv, sizeof csv, "%s/w.csv", tmp_dir);
    FILE *out = fopen(csv, "w");
    const double budgets[] = {1.0};
    const char *methods[] = {"full", "streaming"};
    const unsigned long long seeds[] = {1};
    ev_model_opts eo = {gp, text, 8, 4, 5, KVR_F32, budgets, 1, methods, 2, seeds, 1, 0, 0, 1, 2, out};
    ck_assert_int_eq(ev_model_run(&m, &eo), 2);        /* 5 windows of 8 need 41 tokens */
    eo.windows = 4;
    ck_assert_int_eq(ev_model_run(&m, &eo), 0);
    fclose(out);
    out = fopen(csv, "r");
    char line[1024];
    ck_assert(fgets(line, sizeof line, out) != NULL);
    ck_assert_msg(!strncmp(line, "workload,context,budget,method,seeds,", 37) && strstr(line, ",top1_agree,kl,ppl,")
                  && strstr(line, ",needle_lo,needle_hi,") && strstr(line, ",passkey_lo,passkey_hi,"), "%s", line);
    ck_assert(fgets(line, sizeof line, out) != NULL);
    ck_assert_msg(!strncmp(line, "model:tw.gguf,8,1,full,4,", 25), "%s", line);
    ck_assert(fgets(line, sizeof line, out) != NULL);
    ck_assert_msg(!strncmp(line, "model:tw.gguf,8,1,streaming,4,", 30), "%s", line);
    fclose(out);
    lm_model_free(&m);
    free(w);
    free(o.b);
}
END_TEST

/* model:DIR says it is a directory. */
START_TEST(directory_is_not_a_model)
{
    lm_model m;
    ck_assert_int_eq(lm_model_load(&m, tmp_dir), KVR_EIO);
    ck_assert_msg(strstr(lm_model_error(), "is a directory") && strstr(lm_model_error(), tmp_dir), "%s",
                  lm_model_error());
}
END_TEST

static uint16_t f16_of(double x)   /* exact for the values used here */
{
    if (x == 0.5) return 0x3800;
    if (x == 0.25) return 0x3400;
    if (x == -1.0) return 0xBC00;
    if (x == 2.0) return 0x4000;
    ck_abort_msg("no f16 for %g", x);
    return 0;
}

/* Dequantisation: token_embd ([40][32], one block per row) in each block
 * type, with codes and scales chosen here; the expected values follow the
 * block definitions written in doc/model.md §2.2. */
START_TEST(gguf_dequantise)
{
    size_t n = small_floats(gg_hdr);
    char ck[4200];
    snprintf(ck, sizeof ck, "%s", write_ckpt("gq.bin", gg_hdr, n));
    float *w = ckpt_floats(ck, n);
    const uint32_t types[] = {1, 2, 3, 8};   /* F16, Q4_0, Q4_1, Q8_0 */
    for (size_t ti = 0; ti < 4; ti++) {
        unsigned char bytes[40 * 64];
        float want[40 * 32];
        size_t nb = 0;
        for (int r = 0; r < 40; r++) {
            unsigned char *p = bytes + nb;
            uint16_t d = f16_of(r % 2 ? 0.5 : 0.25), mm = f16_of(r % 3 ? -1.0 : 2.0);
            double dv = r % 2 ? 0.5 : 0.25, mv = r % 3 ? -1.0 : 2.0;
            if (types[ti] == 1) {   /* F16: the value j/4 - 4 */
                for (int j = 0; j < 32; j++) {
                    double x = (j + r) % 32 / 4.0 - 4.0;
                    /* halves of multiples of 1/4 below 8 are exact: sign, exponent, mantissa */
                    uint16_t h = 0;
                    if (x != 0.0) {
                        double a = fabs(x);
                        int e = (int)floor(log2(a));
                        uint16_t mant = (uint16_t)((a / ldexp(1.0, e) - 1.0) * 1024.0);
                        h = (uint16_t)((x < 0 ? 0x8000 : 0) | ((e + 15) << 10) | mant);
                    }
                    memcpy(p + 2 * j, &h, 2);
                    want[r * 32 + j] = (float)x;
                }
                nb += 64;
            } else if (types[ti] == 2) {   /* Q4_0: (nibble - 8) * d */
                memcpy(p, &d, 2);
                for (int j = 0; j < 16; j++) {
                    int lo = (j + r) % 16, hi = (3 * j + r) % 16;
                    p[2 + j] = (unsigned char)(lo | hi << 4);
                    want[r * 32 + j] = (float)((lo - 8) * dv);
                    want[r * 32 + j + 16] = (float)((hi - 8) * dv);
                }
                nb += 18;
            } else if (types[ti] == 3) {   /* Q4_1: nibble * d + m */
                memcpy(p, &d, 2);
                memcpy(p + 2, &mm, 2);
                for (int j = 0; j < 16; j++) {
                    int lo = (j + r) % 16, hi = (5 * j + r) % 16;
                    p[4 + j] = (unsigned char)(lo | hi << 4);
                    want[r * 32 + j] = (float)(lo * dv + mv);
                    want[r * 32 + j + 16] = (float)(hi * dv + mv);
                }
                nb += 20;
            } else {   /* Q8_0: int8 * d */
                memcpy(p, &d, 2);
                for (int j = 0; j < 32; j++) {
                    int q = (j * 37 + r * 11) % 256 - 128;
                    p[2 + j] = (unsigned char)(int8_t)q;
                    want[r * 32 + j] = (float)(q * dv);
                }
                nb += 34;
            }
        }
        buf o = {0};
        size_t info_at;
        gguf_build(&o, w, types[ti], bytes, nb, &info_at);
        const char *gp = write_bytes("gq.gguf", &o, o.n);
        lm_model b;
        ck_assert_msg(lm_model_load(&b, gp) == KVR_OK, "type %u: %s", types[ti], lm_model_error());
        for (int i = 0; i < 40 * 32; i++)
            ck_assert_msg(b.token_embedding[i] == want[i], "type %u element %d: %g, want %g",
                          types[ti], i, (double)b.token_embedding[i], (double)want[i]);
        lm_model_free(&b);
        free(o.b);
    }
    free(w);
}
END_TEST

/* Malformed GGUF: every prefix up to the end of the tensor infos and a
 * sample of longer ones, and single-field corruptions, fail with
 * KVR_EFORMAT naming the path; nothing is left allocated (ASan checks). */
START_TEST(gguf_malformed)
{
    size_t n = small_floats(gg_hdr);
    char ck[4200];
    snprintf(ck, sizeof ck, "%s", write_ckpt("gm.bin", gg_hdr, n));
    float *w = ckpt_floats(ck, n);
    buf o = {0};
    size_t info_at;
    gguf_build(&o, w, 0, NULL, 0, &info_at);
    char gp[4200];
    snprintf(gp, sizeof gp, "%s", write_bytes("gm.gguf", &o, o.n));
    for (size_t len = 0; len < o.n; len += len < info_at + 2000 ? 1 : 997) {
        write_bytes("gm.gguf", &o, len);
        char what[64];
        snprintf(what, sizeof what, "GGUF prefix of %zu bytes", len);
        expect_fail(gp, KVR_EFORMAT, what);   /* short ones are read as llama2.c: also EFORMAT */
    }
    struct { size_t at; uint32_t value; int width; const char *what; } bad[] = {
        {0, 0x46554747u ^ 1u, 4, "bad magic"},
        {4, 1, 4, "version 1"},
        {8, 0xFFFFFFFFu, 4, "huge tensor count"},
        {16, 0xFFFFFFFFu, 4, "huge metadata count"},
        {24, 0xFFFFFFFFu, 4, "huge key length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        buf c = {0};
        put(&c, o.b, o.n);
        memcpy(c.b + bad[i].at, &bad[i].value, 4);
        const char *p = write_bytes("gc.gguf", &c, c.n);
        /* the magic check happens in lm_model_load's dispatch: a file that
         * is not GGUF is read as llama2.c and fails there */
        expect_fail(p, KVR_EFORMAT, bad[i].what);
        free(c.b);
    }
    /* the first tensor info: name "token_embd.weight" (8 + 17 bytes),
     * n_dims, ne0, ne1, type, offset */
    size_t t0 = info_at + 8 + 17;
    struct { size_t at; uint64_t value; int width; const char *what; } tb[] = {
        {t0, 0, 4, "zero dimensions"},
        {t0, 5, 4, "five dimensions"},
        {t0 + 4, 33, 8, "wrong ne0"},
        {t0 + 4, 0, 8, "ne0 of 0"},
        {t0 + 12, 41, 8, "wrong ne1"},
        {t0 + 12, UINT64_C(1) << 62, 8, "huge ne1"},
        {t0 + 20, 12, 4, "unsupported type Q4_K"},
        {t0 + 20, 99, 4, "unknown type"},
        {t0 + 24, 4, 8, "misaligned offset"},
        {t0 + 24, UINT64_C(1) << 40, 8, "offset past the end"},
    };
    for (size_t i = 0; i < sizeof tb / sizeof tb[0]; i++) {
        buf c = {0};
        put(&c, o.b, o.n);
        memcpy(c.b + tb[i].at, &tb[i].value, (size_t)tb[i].width);
        const char *p = write_bytes("gc.gguf", &c, c.n);
        expect_fail(p, KVR_EFORMAT, tb[i].what);
        free(c.b);
    }
    /* a NaN weight in the last tensor (output_norm) */
    {
        buf c = {0};
        put(&c, o.b, o.n);
        float nanv = NAN;
        memcpy(c.b + c.n - 32 * 4, &nanv, 4);
        expect_fail(write_bytes("gc.gguf", &c, c.n), KVR_EFORMAT, "NaN weight");
        free(c.b);
    }
    free(w);
    free(o.b);
}
END_TEST

int main(void)
{
    const char *env = getenv("KVR_TEST_MODEL"), *top = getenv("top_srcdir");
    if (env && *env)
        snprintf(model_path, sizeof model_path, "%s", env);
    else
        snprintf(model_path, sizeof model_path, "%s/../shared/models/stories260K.bin", top ? top : ".");
    int have_model = access(model_path, R_OK) == 0;
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }

    Suite *s = suite_create("model");
    TCase *tc = tcase_create("no model");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, forward_small);
    tcase_add_test(tc, forward_small_classifier);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, gguf_equals_llama2c);
    tcase_add_test(tc, gguf_dequantise);
    tcase_add_test(tc, gguf_malformed);
    tcase_add_test(tc, text_needs_tokenizer);
    tcase_add_test(tc, text_windows);
    tcase_add_test(tc, directory_is_not_a_model);
    suite_add_tcase(s, tc);
    if (have_model) {
        TCase *tm = tcase_create("stories260K");
        tcase_set_timeout(tm, 120);
        tcase_add_test(tm, forward_stories);
        tcase_add_test(tm, eval_full_and_budget_one);
        tcase_add_test(tm, lock_step_equals_alone);
        suite_add_tcase(s, tm);
    }
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmp_dir);
    if (failed)
        return EXIT_FAILURE;
    if (!have_model) {
        printf("SKIP: model %s is absent (set KVR_TEST_MODEL): the forward pass was checked on a small random checkpoint only\n",
               model_path);
        return 77;
    }
    return EXIT_SUCCESS;
}
