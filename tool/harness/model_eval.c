/* model_eval.c: the harness's run of every method on a real model
 * (doc/model.md §4): the teacher-forced comparison with the full cache, on
 * sampled text or on the windows of a document, averaged over seeds and
 * windows, and the passkey trials, printed as aligned tables (stdout) and
 * as rows of the CSV that every workload shares (doc/eval.md §5).  The
 * front end (tool/cmd_eval.c) parses the options and loads the model. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "common/message.h"
#include "interval.h"
#include "model_eval.h"
#include "report.h"

/* ---- the document ---------------------------------------------------------- */

/* Offset of the first byte that is not well-formed UTF-8, or -1. */
static long utf8_bad(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (len == 0 || i + len > n || (len == 2 && c < 0xC2))
            return (long)i;
        for (size_t j = 1; j < len; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return (long)i;
        i += len;
    }
    return -1;
}

int ev_model_text_tokens(const lm_model *m, const char *path, int **ids, int *n)
{
    *ids = NULL;
    *n = 0;
    if (!m->tokens)   /* which tokenizer, and what it needs, is lm_bpe_init's to say */
        return lm_model_fail(KVR_EINVAL, "the model has no tokenizer (a llama2.c checkpoint carries none; "
                             "--text needs a GGUF model with tokenizer.ggml.tokens)");
    FILE *f = fopen(path, "rb");
    if (!f)
        return lm_model_fail(KVR_EIO, "--text %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(f);
        return lm_model_fail(KVR_EINVAL, "--text %s is a directory, not a text file", path);
    }
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap + 1);
    for (size_t got; text && (got = fread(text + len, 1, cap - len, f)) > 0;) {
        len += got;
        if (len == cap) {
            char *t = realloc(text, 2 * cap + 1);
            if (!t) { free(text); text = NULL; break; }
            text = t;
            cap *= 2;
        }
    }
    int read_err = ferror(f) ? errno : 0;
    fclose(f);
    if (!text)
        return lm_model_fail(KVR_ENOMEM, "--text %s: out of memory", path);
    if (read_err) {
        free(text);
        return lm_model_fail(KVR_EIO, "--text %s: cannot read: %s", path, strerror(read_err));
    }
    text[len] = '\0';
    long bad = utf8_bad((const unsigned char *)text, len);
    if (bad < 0 && memchr(text, '\0', len))
        bad = (long)((char *)memchr(text, '\0', len) - text);
    if (bad >= 0) {
        free(text);
        return lm_model_fail(KVR_EFORMAT, "--text %s: not UTF-8 text (byte %ld)", path, bad);
    }
    lm_bpe b;
    int status = lm_bpe_init(&b, m);
    if (status != KVR_OK) {
        free(text);
        return status;
    }
    int *out = malloc(sizeof(int) * (len + 1));
    if (!out)
        status = lm_model_fail(KVR_ENOMEM, "--text %s: out of memory", path);
    else
        status = lm_bpe_encode(&b, text, out, (int)len + 1, n);
    lm_bpe_free(&b);
    free(text);
    if (status != KVR_OK) {
        free(out);
        *n = 0;
        return status;
    }
    *ids = out;
    return KVR_OK;
}

/* ---- progress ---------------------------------------------------------------- */

static long prog_done, prog_total;   /* decode steps of the whole run */
static const char *prog_what;

static void progress_line(const char *what, int done, int total)
{
    (void)what;
    if (done % 8 == 0 || done == total)
        msg_progress_count(prog_done + done, prog_total, "eval: %s", prog_what);
}

/* ---- the run ------------------------------------------------------------------- */

typedef struct {
    const char *method;
    double budget;       /* 1 for full */
    int runs;            /* teacher-forced runs that succeeded */
    int fails;           /* teacher-forced runs that failed (not skipped) */
    ev_model_result sum; /* sums over the runs */
    int pk_ok, pk_right; /* passkey trials that ran, and answered the key */
} cell_row;

static int run_passkey(const lm_model *m, const ev_model_opts *o, cell_row *rows, int n_rows)
{
    lm_bpe b;
    if (lm_bpe_init(&b, m) != KVR_OK) {
        msg_error("eval: passkey: %s", lm_model_error());
        return 1;
    }
    int *ids = malloc(sizeof(int) * (size_t)o->context);
    kvr_config *cfgs = malloc(sizeof *cfgs * (size_t)n_rows);
    int *idx = malloc(sizeof(int) * (size_t)n_rows);
    int *right = malloc(sizeof(int) * (size_t)n_rows), *st = malloc(sizeof(int) * (size_t)n_rows);
    unsigned char *warned = calloc((size_t)n_rows, 1);   /* [n_rows] its planner message was shown */
    int failed = 0;
    if (!ids || !cfgs || !idx || !right || !st || !warned) {
        msg_error("eval: passkey: out of memory");
        failed = 1;
    }
    long trials = (long)o->passkey * o->n_seeds, done = 0;
    msg_progress_clock();
    for (int si = 0; si < o->n_seeds && !failed; si++)
        for (int trial = 0; trial < o->passkey && !failed; trial++, done++) {
            int n, n_doc;
            char key[6], answer[256] = "";
            lm_prompt pr;
            msg_progress_count(done, trials, "eval: passkey trial %d/%d, seed %llu", trial + 1, o->passkey,
                               o->seeds[si]);
            if (ev_passkey_prompt(&b, o->context, o->seeds[si], trial, o->passkey, ids, o->context, &n, &n_doc, key)
                    != KVR_OK
                || lm_model_prompt(m, o->late_question ? n_doc : n, ids, 256, &pr) != KVR_OK) {
                msg_progress_done();
                msg_error("eval: passkey trial %d: %s", trial, lm_model_error());
                failed = 1;
                break;
            }
            int k = 0;
            for (int i = 0; i < n_rows; i++) {
                int s = kvr_method_config(rows[i].method, rows[i].budget, n + EV_PASSKEY_ANSWER, m->head_dim,
                                          o->elem, &cfgs[k]);
                if (s != KVR_OK) {
                    if (!warned[i]) {   /* once a cell: every trial would say the same */
                        msg_progress_done();
                        msg_error("eval: passkey, %s at %g: %s", rows[i].method, rows[i].budget, kvr_last_error());
                        warned[i] = 1;
                    }
                    continue;   /* counted as not run */
                }
                cfgs[k].seed ^= o->seeds[si] * UINT64_C(0x9E3779B97F4A7C15);
                idx[k++] = i;
            }
            int n_late = o->late_question ? n - n_doc : 0;
            int s = ev_passkey_answers(m, &b, &pr, n_late, ids + n - n_late, k, cfgs, key, right, st, answer,
                                       sizeof answer, NULL, NULL, o->threads);
            lm_prompt_free(&pr);
            if (s != KVR_OK) {
                msg_progress_done();
                msg_error("eval: passkey: %s", lm_model_error());
                failed = 1;
                break;
            }
            for (int j = 0; j < k; j++) {
                cell_row *r = &rows[idx[j]];
                if (st[j] != KVR_OK) {
                    msg_progress_done();
                    msg_error("eval: passkey trial %d, %s at %g: %s", trial, r->method, r->budget, lm_model_error());
                    continue;
                }
                r->pk_ok++;
                r->pk_right += right[j];
            }
            if (k > 0) {
                msg_progress_done();
                fprintf(stderr, "passkey trial %d: key %s, %d prompt tokens, %s answers \"%s\"\n", trial, key, n,
                        rows[idx[0]].method, answer);
            }
        }
    msg_progress_done();
    free(ids); free(cfgs); free(idx); free(right); free(st); free(warned);
    lm_bpe_free(&b);
    return failed;
}

int ev_model_run(const lm_model *m, const ev_model_opts *o)
{
    const char *base = strrchr(o->path, '/') ? strrchr(o->path, '/') + 1 : o->path;
    char workload[512];
    snprintf(workload, sizeof workload, "model:%s%s", base, o->passkey > 0 && o->late_question ? "+late" : "");
    int decode = o->decode > 0 ? o->decode : o->context - o->context / 2;
    if (m->seq_len > 0 && o->context > m->seq_len) {
        msg_error("eval: --context %d is above the model's trained context of %d positions (%s)", o->context,
                  m->seq_len, base);
        return 2;
    }
    if (decode >= o->context) {
        msg_error("eval: --decode %d leaves no prompt in --context %d", decode, o->context);
        return 2;
    }
    if (o->passkey > 0 && (!m->tokens || ev_passkey_chat(m) < 0)) {
        msg_error("eval: --passkey needs a chat model with a tokenizer (GGUF tokenizer.ggml.tokens) and a turn "
                  "template the prompt knows (ChatML as SmolLM2, or Gemma's; doc/model.md §4.3); %s has %s", base,
                  m->tokens ? "neither template's start token" : "no tokenizer");
        return 2;
    }
    if (o->passkey > 0) {                         /* the shortest prompt, before anything runs */
        lm_bpe b;
        int min = 0, s = lm_bpe_init(&b, m);
        if (s == KVR_OK) {
            s = ev_passkey_min_context(&b, &min);
            lm_bpe_free(&b);
        }
        if (s != KVR_OK) {
            msg_error("eval: passkey: %s", lm_model_error());
            return 1;
        }
        if (o->context < min) {
            msg_error("eval: --passkey needs --context of at least %d positions with %s's tokenizer (got %d)",
                      min, base, o->context);
            return 2;
        }
    }
    /* the document's windows: window w is its tokens w stride .. w stride +
     * stride, after BOS when the model adds one (Gemma): stride = context -
     * bos, and K windows need K stride + 1 tokens */
    int *doc = NULL, n_doc = 0, windows = 1, bos = m->add_bos ? 1 : 0, stride = o->context - bos;
    if (o->forced && o->text) {
        int s = ev_model_text_tokens(m, o->text, &doc, &n_doc);
        if (s != KVR_OK) {
            msg_error("eval: %s: %s", base, lm_model_error());
            return s == KVR_EINVAL ? 2 : 1;
        }
        windows = o->windows;
        if ((long)windows * stride + 1 > n_doc) {
            msg_error("eval: --text %s has %d tokens (%s's tokenizer): %d window%s of %d %s %ld tokens; "
                      "give fewer --windows, a shorter --context or a longer text", o->text, n_doc, base, windows,
                      windows > 1 ? "s" : "", o->context, windows > 1 ? "need" : "needs",
                      (long)windows * stride + 1);
            free(doc);
            return 2;
        }
    }
    /* the rows: (budget, method), full once at budget 1, a method listed twice once */
    int n_rows = 0;
    cell_row *rows = calloc((size_t)o->n_budgets * o->n_methods + 1, sizeof *rows);
    ev_model_cell *cells = calloc((size_t)o->n_budgets * o->n_methods + 1, sizeof *cells);
    ev_model_result *res = calloc((size_t)o->n_budgets * o->n_methods + 1, sizeof *res);
    int *cst = calloc((size_t)o->n_budgets * o->n_methods + 1, sizeof *cst);
    if (!rows || !cells || !res || !cst) {
        msg_error("eval: out of memory");
        free(rows); free(cells); free(res); free(cst); free(doc);
        return 1;
    }
    for (int b = 0; b < o->n_budgets; b++)
        for (int i = 0; i < o->n_methods; i++) {
            int full = !strcmp(o->methods[i], "full"), dup = 0;
            for (int j = 0; j < i; j++) dup |= !strcmp(o->methods[j], o->methods[i]);
            if (dup || (full && b > 0)) continue;
            rows[n_rows].method = o->methods[i];
            rows[n_rows].budget = full ? 1.0 : o->budgets[b];
            n_rows++;
        }
    int mw = 19;   /* the method column: the longest name, so long levers keep it aligned */
    for (int r = 0; r < n_rows; r++)
        if ((int)strlen(rows[r].method) > mw) mw = (int)strlen(rows[r].method);
    int to_stdout = o->csv == stdout, failed = 0;
    if (!to_stdout)
        printf("model %s: dim %d, %d layers, %d/%d heads, head_dim %d, vocab %d, trained context %d; cache in %s; "
               "%d thread%s, %s\n", base, m->dim, m->n_layers, m->n_heads, m->n_kv_heads, m->head_dim, m->vocab_size,
               m->seq_len, kvr_elem_name(o->elem), o->threads, o->threads > 1 ? "s" : "",
               lm_blas() ? "OpenBLAS" : "plain loops");
    /* One BLAS thread, always: OpenBLAS's sums depend on how many threads
     * share a product, and the results must not depend on --threads (the
     * threads are the harness's own: one cache per thread, in lock step). */
    lm_blas_threads(1);
    {   /* a large run says so before it starts: every cache at full size in
         * float32, and 2 flops per weight per token at about 5 GFLOP/s (one
         * core with OpenBLAS, measured on SmolLM2) */
        double L = m->n_layers, D = m->dim, F = m->hidden_dim, V = m->vocab_size;
        double kd = (double)m->n_kv_heads * m->head_dim, qd = (double)m->n_heads * m->head_dim;
        double params = L * (D * qd + 2.0 * D * kd + qd * D + 3.0 * D * F) + V * D;
        double caches = (double)(n_rows + 1) * L * kd * 2.0 * o->context * 4.0;
        double tokens = o->forced ? (double)o->n_seeds * windows * ((double)o->context + (double)n_rows * decode) : 0.0;
        tokens += (double)o->passkey * o->n_seeds * ((double)o->context + (double)n_rows * EV_PASSKEY_ANSWER);
        double seconds = tokens * 2.0 * params / 5e9;
        if (caches >= 2.0 * 1024 * 1024 * 1024 || seconds >= 60.0) {
            char t[32];
            msg_duration(t, sizeof t, seconds);
            fprintf(stderr, "kvreviver: eval: warning: a large run: up to %.1f GiB of caches and roughly %s "
                    "(%d cells at --context %d); progress follows on stderr\n",
                    caches / (1024.0 * 1024 * 1024), t, n_rows, o->context);
        }
    }
    if (o->forced) {
        int runs = o->n_seeds * windows;
        prog_total = (long)runs * decode;
        prog_done = 0;
        msg_progress_clock();
        if (!to_stdout) {
            if (o->text)
                printf("text %s: %d tokens, %d window%s of %d (prompt %d, %d decode steps%s), %d seed%s\n", o->text,
                       n_doc, windows, windows > 1 ? "s" : "", o->context, o->context - decode, decode,
                       bos ? "; each window is BOS and the next tokens" : "", o->n_seeds,
                       o->n_seeds > 1 ? "s" : "");
            else
                printf("sampled text: context %d (prompt %d, %d decode steps), %d seed%s\n", o->context,
                       o->context - decode, decode, o->n_seeds, o->n_seeds > 1 ? "s" : "");
        }
        for (int si = 0; si < o->n_seeds && !failed; si++)
            for (int w = 0; w < windows && !failed; w++) {
                char what[96];
                snprintf(what, sizeof what, "seed %llu window %d/%d", o->seeds[si], w + 1, windows);
                prog_what = what;
                ev_model_task task;
                int status;
                if (doc) {   /* [context + 1]: BOS or not, the window's tokens, its last target */
                    int *win = malloc(sizeof(int) * ((size_t)o->context + 1));
                    if (!win) {
                        status = lm_model_fail(KVR_ENOMEM, "--text window: out of memory");
                    } else {
                        win[0] = m->bos;   /* overwritten below when the model adds none */
                        memcpy(win + bos, doc + (size_t)w * stride, sizeof(int) * ((size_t)o->context + 1 - bos));
                        status = ev_model_task_tokens(&task, m, win, o->context, decode);
                        free(win);
                    }
                } else {
                    status = ev_model_task_init(&task, m, o->context, decode, o->seeds[si], o->elem, NULL);
                }
                if (status != KVR_OK) {
                    msg_progress_done();
                    msg_error("eval: %s", lm_model_error());
                    failed = 1;
                    break;
                }
                for (int r = 0; r < n_rows; r++)
                    cells[r] = (ev_model_cell){rows[r].method, rows[r].budget, o->seeds[si]};
                status = ev_model_eval_cells(&task, o->elem, n_rows, cells, res, cst, o->threads, progress_line);
                ev_model_task_free(&task);
                prog_done += decode;
                if (status != KVR_OK) {
                    msg_progress_done();
                    msg_error("eval: full: %s", lm_model_error());
                    failed = 1;
                    break;
                }
                const char *inject = getenv("KVR_TEST_FAIL_CELL");   /* tests: "method:run" fails (run from 0) */
                for (int r = 0; r < n_rows && inject; r++) {
                    char want[128];
                    snprintf(want, sizeof want, "%s:%d", rows[r].method, si * windows + w);
                    if (!strcmp(inject, want) && cst[r] == KVR_OK)
                        cst[r] = lm_model_fail(KVR_ESTATE, "%s at budget %g: a failure injected by KVR_TEST_FAIL_CELL",
                                               rows[r].method, rows[r].budget);
                }
                for (int r = 0; r < n_rows; r++) {
                    if (cst[r] == KVR_EBUDGET) {   /* as on every workload: skipped, with a warning */
                        msg_progress_done();
                        if (si == 0 && w == 0) {   /* this row's own message: plan it again */
                            kvr_config probe;
                            kvr_method_config(rows[r].method, rows[r].budget, o->context, m->head_dim, o->elem, &probe);
                            fprintf(stderr, "kvreviver: eval: warning: %s at budget %g skipped: %s\n", rows[r].method,
                                    rows[r].budget, kvr_last_error());
                        }
                        continue;
                    }
                    if (cst[r] != KVR_OK) {
                        msg_progress_done();
                        msg_error("eval: %s", lm_model_error());
                        rows[r].fails++;
                        failed = 1;
                        continue;
                    }
                    ev_model_result *x = &rows[r].sum, *y = &res[r];
                    x->bytes_ratio += y->bytes_ratio;
                    x->exact_ratio += y->exact_ratio;
                    x->top1_agree += y->top1_agree;
                    x->kl += y->kl;
                    x->nll += y->nll;   /* equal steps per run: the mean is the pooled one */
                    x->bytes_held = y->bytes_held;
                    x->bytes_whole = y->bytes_whole;
                    x->whole_ratio += y->whole_ratio;
                    x->seconds += y->seconds;
                    rows[r].runs++;
                    if (strcmp(rows[r].method, "full") && y->bytes_ratio > rows[r].budget) {
                        msg_error("eval: %s at budget %g holds %.4f of the full cache", rows[r].method,
                                  rows[r].budget, y->bytes_ratio);
                        failed = 1;
                    }
                }
            }
        msg_progress_done();
        if (!to_stdout) {
            printf("\n%-7s %-*s %5s %11s %11s %10s %10s %9s\n", "budget", mw, "method", "runs", "bytes_ratio",
                   "exact_ratio", "top1_agree", "kl", "ppl");
            for (int r = 0; r < n_rows; r++) {
                cell_row *x = &rows[r];
                if (x->fails) {   /* a failed cell is marked, never shown as a measurement */
                    printf("%-7g %-*s %5d %s\n", x->budget, mw, x->method, x->runs, "FAILED (see above)");
                    continue;
                }
                if (!x->runs) {
                    printf("%-7g %-*s %5d %s\n", x->budget, mw, x->method, 0, "skipped (see above)");
                    continue;
                }
                double k = x->runs;
                printf("%-7g %-*s %5d %11.4f %11.4f %10.4f %#10.4g %9.4f\n", x->budget, mw, x->method, x->runs,
                       x->sum.bytes_ratio / k, x->sum.exact_ratio / k, x->sum.top1_agree / k, x->sum.kl / k,
                       exp(x->sum.nll / k));
            }
            if (m->window > 0) {   /* Gemma: the budget is over the global layers; the whole cache too */
                printf("\n%d global layers hold the compressed cache (bytes_ratio above); the %d local layers keep "
                       "their %d-position windows exact in every method:\n",
                       lm_global_layers(m), m->n_layers - lm_global_layers(m), m->window);
                printf("%-7s %-*s %14s %11s\n", "budget", mw, "method", "whole_bytes", "whole_ratio");
                for (int r = 0; r < n_rows; r++) {
                    cell_row *x = &rows[r];
                    if (x->runs)
                        printf("%-7g %-*s %14zu %11.4f\n", x->budget, mw, x->method, x->sum.bytes_whole,
                               x->sum.whole_ratio / x->runs);
                }
            }
            if (failed)
                printf("(incomplete: the run stopped at the first failure; runs counts those measured of the "
                       "%d planned)\n", o->n_seeds * windows);
            fflush(stdout);
        }
    }
    if (o->passkey > 0 && !failed) {
        failed |= run_passkey(m, o, rows, n_rows);
        if (!to_stdout) {
            printf("\npasskey: %d trials x %d seed%s, prompts of about %d tokens, key depths (i + 0.5)/%d of the filler, "
                   "%s\n", o->passkey, o->n_seeds, o->n_seeds > 1 ? "s" : "", o->context - EV_PASSKEY_ANSWER, o->passkey,
                   o->late_question ? "question after compression (--late-question)" : "question in the prompt");
            printf("%-7s %-*s %6s %11s %16s\n", "budget", mw, "method", "trials", "passkey_acc", "95% (Wilson)");
            for (int r = 0; r < n_rows; r++) {
                cell_row *x = &rows[r];
                if (!x->pk_ok) {
                    printf("%-7g %-*s %6d %11s\n", x->budget, mw, x->method, 0, "n/a");
                    continue;
                }
                double lo, hi;
                ev_wilson(x->pk_right, x->pk_ok, &lo, &hi);
                printf("%-7g %-*s %6d %11.3f   [%.3f, %.3f]\n", x->budget, mw, x->method, x->pk_ok,
                       (double)x->pk_right / x->pk_ok, lo, hi);
            }
        }
    }
    /* a run that measured no compressed method (every one skipped) failed */
    int asked = 0, measured = 0;
    for (int r = 0; r < n_rows; r++)
        if (strcmp(rows[r].method, "full")) {
            asked = 1;
            measured |= rows[r].runs > 0 || rows[r].pk_ok > 0;
        }
    if (!failed && asked && !measured) {
        msg_error("eval: no compressed method was measured: every one was skipped (see the warnings above); "
                  "the budgets are too small for --context %d", o->context);
        failed = 1;
    }
    /* the CSV rows, written and plotted */
    ev_csv_row *out = malloc(sizeof *out * (size_t)n_rows);
    if (!out) {
        msg_error("eval: out of memory");
        free(rows); free(cells); free(res); free(cst); free(doc);
        return 1;
    }
    for (int r = 0; r < n_rows; r++) {
        cell_row *x = &rows[r];
        double k = x->runs;
        ev_csv_row c = {workload, o->context, x->budget, x->method, x->runs ? x->runs : o->n_seeds, m->n_kv_heads, m->n_heads,
                        m->head_dim, o->forced ? decode : EV_PASSKEY_ANSWER, o->elem, NAN, NAN, NAN, NAN, NAN,
                        NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN, 0, x->sum.bytes_held};
        if (x->runs && !x->fails) {   /* a failed cell's numbers are not a measurement */
            c.bytes_ratio = x->sum.bytes_ratio / k;
            c.exact_ratio = x->sum.exact_ratio / k;
            c.top1_agree = x->sum.top1_agree / k;
            c.kl = x->sum.kl / k;
            c.ppl = exp(x->sum.nll / k);   /* pooled over every decoded token, as llama.cpp's */
        }
        if (x->pk_ok) {
            c.passkey_acc = (double)x->pk_right / x->pk_ok;
            ev_wilson(x->pk_right, x->pk_ok, &c.passkey_lo, &c.passkey_hi);
            c.trials = x->pk_ok;
        }
        out[r] = c;
    }
    if (o->csv) {
        ev_report_csv_header(o->csv);
        for (int r = 0; r < n_rows; r++)
            ev_report_csv_fields(o->csv, &out[r]);
        if (fflush(o->csv) != 0 || ferror(o->csv)) {
            msg_error("eval: writing the CSV: %s", strerror(errno));
            failed = 1;
        }
    }
    if (o->plot && !failed) {
        /* a passkey point stands at the bytes_ratio its cell measured in the
         * teacher-forced run (same method, budget and context; the front
         * end refuses --plot with --forced 0) */
        char title[768];
        if (o->passkey > 0)
            snprintf(title, sizeof title, "%s, passkey%s, about %d tokens, %d trials x %d seed%s, %s",
                     workload, o->late_question ? " (question late)" : "", o->context - EV_PASSKEY_ANSWER, o->passkey,
                     o->n_seeds, o->n_seeds > 1 ? "s" : "", kvr_elem_name(o->elem));
        else
            snprintf(title, sizeof title, "%s, %s, context %d (%d decoded), %d run%s, %s", workload,
                     o->text ? "text windows" : "sampled text", o->context, decode,
                     o->n_seeds * windows, o->n_seeds * windows > 1 ? "s averaged" : "", kvr_elem_name(o->elem));
        failed |= ev_report_plot(o->plot, out, n_rows, o->passkey > 0 ? EV_PLOT_PASSKEY_ACC : EV_PLOT_TOP1_AGREE,
                                 title) != 0;
    }
    free(out);
    free(rows); free(cells); free(res); free(cst); free(doc);
    return failed ? 1 : 0;
}
