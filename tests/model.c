/* tests/model.c: the llama-architecture forward pass and its evaluation
 * (doc/model.md).
 *
 * - The forward pass (tool/model.c) matches a straightforward float64
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
#include "model.h"

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

/* Compare kvr_model_step (full cache) with dforward at every position of a
 * token sequence, and the prefill path at the last position.  Tolerance:
 * every float32 dot product of length n has relative error at most n*u
 * (u = 2^-24) of the sum of |terms|; a layer chains four of them (QKV,
 * attention over <= n_pos positions, output, FFN of length hidden), the
 * classifier one more.  Bound the error of each logit by
 *   (4 L + 1) * max(dim, hidden, n_pos) * u * max_t |logit|
 * and assert it position by position. */
static void check_forward(const char *path, int n_pos)
{
    kvr_model m;
    ck_assert_int_eq(kvr_model_load(&m, path), KVR_OK);
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
    ck_assert_int_eq(kvr_model_cache(&m, &cfg, &c), KVR_OK);
    kvr_model_state s;
    ck_assert_int_eq(kvr_model_state_init(&s, &m), KVR_OK);
    float *logits = malloc(sizeof(float) * m.vocab_size);
    int nmax = m.dim > m.hidden_dim ? m.dim : m.hidden_dim;
    if (n_pos > nmax) nmax = n_pos;
    double u = ldexp(1.0, -24), worst = 0.0;
    for (int t = 0; t < n_pos; t++) {
        ck_assert_int_eq(kvr_model_step(&m, &s, c, tokens[t], logits), KVR_OK);
        const double *r = ref + (size_t)t * m.vocab_size;
        double scale = 0.0, err = 0.0;
        for (int j = 0; j < m.vocab_size; j++) {
            scale = fmax(scale, fabs(r[j]));
            err = fmax(err, fabs(logits[j] - r[j]));
        }
        double tol = (4.0 * m.n_layers + 1.0) * nmax * u * scale;
        ck_assert_msg(err <= tol, "%s position %d: logit error %g above %g", path, t, err, tol);
        worst = fmax(worst, err / tol);
    }
    /* the prefill path: logits after the whole sequence */
    kvr_cache *c2;
    ck_assert_int_eq(kvr_model_cache(&m, &cfg, &c2), KVR_OK);
    ck_assert_int_eq(kvr_model_prefill(&m, c2, n_pos, tokens, logits), KVR_OK);
    ck_assert_int_eq(kvr_length(c2, m.n_layers - 1), n_pos);
    const double *r = ref + (size_t)(n_pos - 1) * m.vocab_size;
    double scale = 0.0, err = 0.0;
    for (int j = 0; j < m.vocab_size; j++) {
        scale = fmax(scale, fabs(r[j]));
        err = fmax(err, fabs(logits[j] - r[j]));
    }
    ck_assert_msg(err <= (4.0 * m.n_layers + 1.0) * nmax * u * scale, "prefill: logit error %g", err);
    printf("%s: %d positions, worst logit error %.3g of the bound\n", path, n_pos, worst);
    kvr_cache_free(c);
    kvr_cache_free(c2);
    kvr_model_state_free(&s);
    free(logits); free(ref); free(tokens); free(d.all);
    kvr_model_free(&m);
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
    kvr_model m;
    ck_assert_int_eq(kvr_model_load(&m, model_path), KVR_OK);
    kvr_model_task t;
    ck_assert_int_eq(kvr_model_task_init(&t, &m, 96, 0, 3, NULL), KVR_OK);
    ck_assert_int_eq(t.tokens[0], 1);
    kvr_model_result r;
    ck_assert_int_eq(kvr_model_eval_method(&t, "full", 0.1, &r, NULL), KVR_OK);
    ck_assert(r.top1_agree == 1.0);
    ck_assert(r.kl == 0.0);
    ck_assert(r.bytes_ratio == 1.0 && r.exact_ratio == 1.0);
    double full_ppl = r.ppl;
    ck_assert(full_ppl > 1.0 && full_ppl < m.vocab_size);
    /* budget 1.0 keeps every position exact: the same float32 values reach
     * the same attention code; allow only rounding: KL below 1e-9 nats. */
    ck_assert_int_eq(kvr_model_eval_method(&t, "kvreviver", 1.0, &r, NULL), KVR_OK);
    ck_assert(r.top1_agree == 1.0);
    ck_assert_msg(fabs(r.kl) < 1e-9, "kl %g", r.kl);
    ck_assert_msg(fabs(r.ppl - full_ppl) < 1e-9 * full_ppl, "ppl %g vs %g", r.ppl, full_ppl);
    ck_assert(r.exact_ratio == 1.0);
    /* compressing methods hold at most their budget and lose something */
    for (int i = 1; kvr_method_name(i); i++) {
        ck_assert_int_eq(kvr_model_eval_method(&t, kvr_method_name(i), 0.25, &r, NULL), KVR_OK);
        ck_assert_msg(r.bytes_ratio <= 0.25, "%s holds %g", kvr_method_name(i), r.bytes_ratio);
        ck_assert_msg(r.kl > 0.0 && r.top1_agree <= 1.0 && r.exact_ratio < 1.0, "%s", kvr_method_name(i));
    }
    kvr_model_task_free(&t);
    kvr_model_free(&m);
}
END_TEST

/* ---- malformed checkpoints ---------------------------------------------- */

static void expect_fail(const char *path, int want, const char *what)
{
    kvr_model m;
    memset(&m, 0x5a, sizeof m);
    int status = kvr_model_load(&m, path);
    ck_assert_msg(status == want, "%s: status %d, want %d (%s)", what, status, want, kvr_model_error());
    ck_assert_msg(strstr(kvr_model_error(), path) != NULL, "%s: message '%s' does not name the path",
                  what, kvr_model_error());
    ck_assert(m.n_owned == 0 && m.token_embedding == NULL);
}

START_TEST(malformed)
{
    size_t n = small_floats(small_hdr);
    write_ckpt("ok.bin", small_hdr, n);
    kvr_model m;
    char ok[4200];
    snprintf(ok, sizeof ok, "%s/ok.bin", tmp_dir);
    ck_assert_int_eq(kvr_model_load(&m, ok), KVR_OK);
    kvr_model_free(&m);
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
    suite_add_tcase(s, tc);
    if (have_model) {
        TCase *tm = tcase_create("stories260K");
        tcase_set_timeout(tm, 120);
        tcase_add_test(tm, forward_stories);
        tcase_add_test(tm, eval_full_and_budget_one);
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
