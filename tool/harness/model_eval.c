/* model_eval.c: the harness's run of every method on a real model
 * (doc/model.md §4): the teacher-forced comparison with the full cache and
 * the passkey trials, printed as aligned tables (stdout) and, with a CSV
 * path, the CSV columns
 *   workload,context,budget,method,bytes_ratio,exact_ratio,top1_agree,kl,ppl
 * The front end (tool/cmd_model.c) parses the options and loads the model. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "common/message.h"
#include "model_eval.h"

static void progress_line(const char *what, int done, int total)
{
    if (done % 16 == 0 || done == total)
        msg_progress("eval: %s %d/%d", what, done, total);
}

typedef struct {
    int ok;                 /* the teacher-forced run succeeded */
    ev_model_result r;
    int pk_ok, pk_right;    /* passkey trials that ran, and answered the key */
} row;

/* The passkey trials: each prompt computed once, then every method at
 * every budget answers from its own cache. */
static int run_passkey(const lm_model *m, long context, uint64_t seed, int trials,
                       const double *budgets, int n_budgets, char **methods, int n_methods, row *rows)
{
    lm_bpe b;
    if (lm_bpe_init(&b, m) != KVR_OK) {
        msg_error("eval: passkey: %s", lm_model_error());
        return 1;
    }
    int *ids = malloc(sizeof(int) * (size_t)context);
    if (!ids) {
        lm_bpe_free(&b);
        return 1;
    }
    int failed = 0;
    for (int trial = 0; trial < trials && !failed; trial++) {
        int n;
        char key[6];
        lm_prompt pr;
        if (ev_passkey_prompt(&b, (int)context, seed, trial, ids, (int)context, &n, key) != KVR_OK
            || lm_model_prompt(m, n, ids, 256, &pr) != KVR_OK) {
            msg_error("eval: passkey trial %d: %s", trial, lm_model_error());
            failed = 1;
            break;
        }
        for (int bi = 0; bi < n_budgets; bi++)
            for (int i = 0; i < n_methods; i++) {
                msg_progress("eval: passkey trial %d/%d, %s at %g", trial + 1, trials, methods[i], budgets[bi]);
                kvr_config cfg;
                int right = 0;
                char answer[256];
                int st = kvr_method_config(methods[i], budgets[bi], n + EV_PASSKEY_ANSWER, m->head_dim, KVR_F32, &cfg);
                const char *why = kvr_last_error();
                if (st == KVR_OK) {
                    st = ev_passkey_answer(m, &b, &pr, &cfg, key, &right, answer, sizeof answer);
                    why = lm_model_error();
                }
                if (st != KVR_OK) {   /* counted as not run */
                    msg_progress_done();
                    msg_error("eval: passkey trial %d, %s at %g: %s", trial, methods[i], budgets[bi],
                              why);
                    continue;
                }
                row *r = &rows[bi * n_methods + i];
                r->pk_ok++;
                r->pk_right += right;
                if (bi == 0 && i == 0) {
                    msg_progress_done();
                    fprintf(stderr, "passkey trial %d: key %s, %d prompt tokens, %s answers \"%s\"\n",
                            trial, key, n, methods[i], answer);
                }
            }
        lm_prompt_free(&pr);
    }
    msg_progress_done();
    free(ids);
    lm_bpe_free(&b);
    return failed;
}

int ev_model_run(const lm_model *m, const char *path, long context, long decode, uint64_t seed,
                 const double *budgets, int n_budgets, char **methods, int n_methods,
                 int passkey, int forced, const char *csv_path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    row *rows = calloc((size_t)n_budgets * n_methods, sizeof *rows);
    FILE *csv = NULL;
    if (!rows)
        return 1;
    if (csv_path && !(csv = fopen(csv_path, "w"))) {
        msg_error("eval: cannot write '%s': %s", csv_path, strerror(errno));
        free(rows);
        return 1;
    }
    if (passkey > 0 && (!m->tokens || !m->merges)) {
        msg_error("eval: --passkey needs a model with a BPE tokenizer (GGUF tokenizer.ggml.tokens and merges)");
        if (csv) fclose(csv);
        free(rows);
        return 1;
    }
    printf("model %s: dim %d, %d layers, %d/%d heads, head_dim %d, vocab %d\n",
           base, m->dim, m->n_layers, m->n_heads, m->n_kv_heads, m->head_dim, m->vocab_size);
    int failed = 0;
    if (forced) {
        ev_model_task task;
        int status = ev_model_task_init(&task, m, (int)context, (int)decode, seed, progress_line);
        msg_progress_done();
        if (status != KVR_OK) {
            msg_error("eval: %s (%s)", lm_model_error(), kvr_strerror(status));
            if (csv) fclose(csv);
            free(rows);
            return 1;
        }
        printf("context %ld (prefill %d, %d decode steps), seed %llu; generation %.1f s, full run %.1f s\n\n",
               context, task.n_prefill, task.n - task.n_prefill, (unsigned long long)seed,
               task.gen_seconds, task.ref_seconds);
        printf("%-7s %-19s %11s %11s %10s %10s %9s %8s\n", "budget", "method", "bytes_ratio",
               "exact_ratio", "top1_agree", "kl", "ppl", "seconds");
        ev_model_result full_res = {0};
        int have_full = 0;
        for (int b = 0; b < n_budgets; b++)
            for (int i = 0; i < n_methods; i++) {
                row *rw = &rows[b * n_methods + i];
                int is_full = !strcmp(methods[i], "full");
                if (is_full && have_full) {
                    rw->r = full_res;   /* full ignores the budget: one run serves every row */
                    status = KVR_OK;
                } else {
                    status = ev_model_eval_method(&task, methods[i], budgets[b], &rw->r, progress_line);
                    msg_progress_done();
                }
                if (status != KVR_OK) {
                    printf("%-7g %-19s %s\n", budgets[b], methods[i], kvr_strerror(status));
                    msg_error("eval: %s", lm_model_error());
                    failed = 1;
                    continue;
                }
                rw->ok = 1;
                if (is_full && !have_full) { full_res = rw->r; have_full = 1; }
                if (!is_full && rw->r.bytes_ratio > budgets[b]) {
                    msg_error("eval: %s at budget %g holds %.4f of the full cache", methods[i], budgets[b], rw->r.bytes_ratio);
                    failed = 1;
                }
                printf("%-7g %-19s %11.4f %11.4f %10.4f %10.4g %9.4f %8.1f\n", budgets[b], methods[i],
                       rw->r.bytes_ratio, rw->r.exact_ratio, rw->r.top1_agree, rw->r.kl, rw->r.ppl, rw->r.seconds);
                fflush(stdout);
            }
        ev_model_task_free(&task);
    }
    if (passkey > 0) {
        failed |= run_passkey(m, context, seed, passkey, budgets, n_budgets, methods, n_methods, rows);
        printf("\npasskey: %d trials, prompts of about %ld tokens, key early (5-25%% of the filler)\n",
               passkey, context - EV_PASSKEY_ANSWER);
        printf("%-7s %-19s %11s\n", "budget", "method", "passkey_acc");
        for (int b = 0; b < n_budgets; b++)
            for (int i = 0; i < n_methods; i++) {
                row *rw = &rows[b * n_methods + i];
                if (rw->pk_ok)
                    printf("%-7g %-19s %11.3f\n", budgets[b], methods[i], (double)rw->pk_right / rw->pk_ok);
                else
                    printf("%-7g %-19s %11s\n", budgets[b], methods[i], "n/a");
            }
    }
    if (csv) {
        fprintf(csv, "workload,context,budget,method,bytes_ratio,exact_ratio,top1_agree,kl,ppl%s\n",
                passkey > 0 ? ",passkey_acc" : "");
        for (int b = 0; b < n_budgets; b++)
            for (int i = 0; i < n_methods; i++) {
                row *rw = &rows[b * n_methods + i];
                fprintf(csv, "model:%s,%ld,%g,%s,", base, context, budgets[b], methods[i]);
                if (rw->ok)
                    fprintf(csv, "%.6f,%.6f,%.6f,%.6g,%.6f", rw->r.bytes_ratio, rw->r.exact_ratio,
                            rw->r.top1_agree, rw->r.kl, rw->r.ppl);
                else
                    fprintf(csv, ",,,,");
                if (passkey > 0) {
                    if (rw->pk_ok) fprintf(csv, ",%.6f", (double)rw->pk_right / rw->pk_ok);
                    else fprintf(csv, ",");
                }
                fputc('\n', csv);
            }
        if (fclose(csv) != 0) {
            msg_error("eval: error writing '%s'", csv_path);
            failed = 1;
        }
    }
    free(rows);
    return failed ? 1 : 0;
}

