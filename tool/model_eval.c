/* model_eval.c: `kvreviver eval --workload model:PATH` (doc/model.md §4).
 *
 * Parses the eval flags, builds the teacher-forced task once, runs every
 * method at every budget and prints an aligned table (stdout) and, with
 * --csv, the CSV columns
 *   workload,context,budget,method,bytes_ratio,exact_ratio,top1_agree,kl,ppl */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "model.h"

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver eval --workload model:PATH [OPTIONS]\n"
        "\n"
        "Teacher-forced evaluation on a real model (llama2.c checkpoint or GGUF):\n"
        "the full-cache model samples --context tokens from BOS (temperature 1,\n"
        "seeded); every method then prefills all but the last --decode positions\n"
        "and decodes those, compared step by step with the full-cache run\n"
        "(doc/model.md).\n"
        "\n"
        "Options:\n"
        "  --workload model:PATH  the model file\n"
        "  --context N            positions (default 512)\n"
        "  --budget B[,B...]      memory budgets as fractions of the full cache\n"
        "                         (default 0.1,0.25)\n"
        "  --method M[,M...]      methods (default: every method)\n"
        "  --decode N             decode steps at the end (default: context/2)\n"
        "  --seed S               sampler seed (default 1)\n"
        "  --csv FILE             also write the results as CSV\n"
        "  --passkey N            also N passkey trials (needs a GGUF tokenizer;\n"
        "                         default 0); the prompt fills --context tokens\n"
        "  --forced 0|1           run the teacher-forced comparison (default 1)\n"
        "  --help                 this text\n"
        "\n"
        "Columns: bytes_ratio (bytes held / full cache, all layers, at the end),\n"
        "exact_ratio (exactly held positions / all), top1_agree (next-token argmax\n"
        "equal to the full run's), kl (mean KL(full || method), nats), ppl\n"
        "(perplexity of the sampled tokens under the method), passkey_acc (share\n"
        "of passkey trials answered with the key; a last CSV column when run).\n");
}

static void progress_line(const char *what, int done, int total)
{
    if (done % 16 == 0 || done == total)
        cli_progress("eval: %s %d/%d", what, done, total);
}

#define MAX_LIST 64

/* Split a comma list into at most MAX_LIST items (modifies s). */
static int split(char *s, char **items)
{
    int n = 0;
    for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ","))
        if (n < MAX_LIST)
            items[n++] = tok;
        else
            return -1;
    return n;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

typedef struct {
    int ok;                 /* the teacher-forced run succeeded */
    kvr_model_result r;
    int pk_ok, pk_right;    /* passkey trials that ran, and answered the key */
} row;

/* The passkey trials: each prompt computed once, then every method at
 * every budget answers from its own cache. */
static int run_passkey(const kvr_model *m, long context, uint64_t seed, int trials,
                       const double *budgets, int n_budgets, char **methods, int n_methods, row *rows)
{
    kvr_bpe b;
    if (kvr_bpe_init(&b, m) != KVR_OK) {
        cli_error("eval: passkey: %s", kvr_model_error());
        return CLI_FAIL;
    }
    int *ids = malloc(sizeof(int) * (size_t)context);
    if (!ids) {
        kvr_bpe_free(&b);
        return CLI_FAIL;
    }
    int failed = 0;
    for (int trial = 0; trial < trials && !failed; trial++) {
        int n;
        char key[6];
        kvr_prompt pr;
        if (kvr_passkey_prompt(&b, (int)context, seed, trial, ids, (int)context, &n, key) != KVR_OK
            || kvr_model_prompt(m, n, ids, 256, &pr) != KVR_OK) {
            cli_error("eval: passkey trial %d: %s", trial, kvr_model_error());
            failed = 1;
            break;
        }
        for (int bi = 0; bi < n_budgets; bi++)
            for (int i = 0; i < n_methods; i++) {
                cli_progress("eval: passkey trial %d/%d, %s at %g", trial + 1, trials, methods[i], budgets[bi]);
                kvr_config cfg;
                int right = 0;
                char answer[256];
                int st = kvr_method_config(methods[i], budgets[bi], n + KVR_PASSKEY_ANSWER, m->head_dim, KVR_F32, &cfg);
                const char *why = kvr_last_error();
                if (st == KVR_OK) {
                    st = kvr_passkey_answer(m, &b, &pr, &cfg, key, &right, answer, sizeof answer);
                    why = kvr_model_error();
                }
                if (st != KVR_OK) {   /* counted as not run */
                    cli_progress_done();
                    cli_error("eval: passkey trial %d, %s at %g: %s", trial, methods[i], budgets[bi],
                              why);
                    continue;
                }
                row *r = &rows[bi * n_methods + i];
                r->pk_ok++;
                r->pk_right += right;
                if (bi == 0 && i == 0) {
                    cli_progress_done();
                    fprintf(stderr, "passkey trial %d: key %s, %d prompt tokens, %s answers \"%s\"\n",
                            trial, key, n, methods[i], answer);
                }
            }
        kvr_prompt_free(&pr);
    }
    cli_progress_done();
    free(ids);
    kvr_bpe_free(&b);
    return failed;
}

static int run_all(const kvr_model *m, const char *path, long context, long decode, uint64_t seed,
                   const double *budgets, int n_budgets, char **methods, int n_methods,
                   int passkey, int forced, const char *csv_path)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    row *rows = calloc((size_t)n_budgets * n_methods, sizeof *rows);
    FILE *csv = NULL;
    if (!rows)
        return CLI_FAIL;
    if (csv_path && !(csv = fopen(csv_path, "w"))) {
        cli_error("eval: cannot write '%s': %s", csv_path, strerror(errno));
        free(rows);
        return CLI_FAIL;
    }
    if (passkey > 0 && (!m->tokens || !m->merges)) {
        cli_error("eval: --passkey needs a model with a BPE tokenizer (GGUF tokenizer.ggml.tokens and merges)");
        if (csv) fclose(csv);
        free(rows);
        return CLI_FAIL;
    }
    printf("model %s: dim %d, %d layers, %d/%d heads, head_dim %d, vocab %d\n",
           base, m->dim, m->n_layers, m->n_heads, m->n_kv_heads, m->head_dim, m->vocab_size);
    int failed = 0;
    if (forced) {
        kvr_model_task task;
        int status = kvr_model_task_init(&task, m, (int)context, (int)decode, seed, progress_line);
        cli_progress_done();
        if (status != KVR_OK) {
            cli_error("eval: %s (%s)", kvr_model_error(), kvr_strerror(status));
            if (csv) fclose(csv);
            free(rows);
            return CLI_FAIL;
        }
        printf("context %ld (prefill %d, %d decode steps), seed %llu; generation %.1f s, full run %.1f s\n\n",
               context, task.n_prefill, task.n - task.n_prefill, (unsigned long long)seed,
               task.gen_seconds, task.ref_seconds);
        printf("%-7s %-19s %11s %11s %10s %10s %9s %8s\n", "budget", "method", "bytes_ratio",
               "exact_ratio", "top1_agree", "kl", "ppl", "seconds");
        kvr_model_result full_res = {0};
        int have_full = 0;
        for (int b = 0; b < n_budgets; b++)
            for (int i = 0; i < n_methods; i++) {
                row *rw = &rows[b * n_methods + i];
                int is_full = !strcmp(methods[i], "full");
                if (is_full && have_full) {
                    rw->r = full_res;   /* full ignores the budget: one run serves every row */
                    status = KVR_OK;
                } else {
                    status = kvr_model_eval_method(&task, methods[i], budgets[b], &rw->r, progress_line);
                    cli_progress_done();
                }
                if (status != KVR_OK) {
                    printf("%-7g %-19s %s\n", budgets[b], methods[i], kvr_strerror(status));
                    cli_error("eval: %s", kvr_model_error());
                    failed = 1;
                    continue;
                }
                rw->ok = 1;
                if (is_full && !have_full) { full_res = rw->r; have_full = 1; }
                if (!is_full && rw->r.bytes_ratio > budgets[b]) {
                    cli_error("eval: %s at budget %g holds %.4f of the full cache", methods[i], budgets[b], rw->r.bytes_ratio);
                    failed = 1;
                }
                printf("%-7g %-19s %11.4f %11.4f %10.4f %10.4g %9.4f %8.1f\n", budgets[b], methods[i],
                       rw->r.bytes_ratio, rw->r.exact_ratio, rw->r.top1_agree, rw->r.kl, rw->r.ppl, rw->r.seconds);
                fflush(stdout);
            }
        kvr_model_task_free(&task);
    }
    if (passkey > 0) {
        failed |= run_passkey(m, context, seed, passkey, budgets, n_budgets, methods, n_methods, rows);
        printf("\npasskey: %d trials, prompts of about %ld tokens, key early (5-25%% of the filler)\n",
               passkey, context - KVR_PASSKEY_ANSWER);
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
            cli_error("eval: error writing '%s'", csv_path);
            failed = 1;
        }
    }
    free(rows);
    return failed ? CLI_FAIL : CLI_OK;
}

int cli_eval_model(int argc, char **argv)
{
    const char *workload = NULL, *csv_path = NULL;
    char budget_buf[512] = "0.1,0.25", method_buf[1024] = "";
    long context = 512, decode = 0, passkey = 0, forced = 1;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return CLI_OK;
        }
        if (i + 1 >= argc) {
            cli_error("eval: unknown option or missing value: '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--workload")) workload = v;
        else if (!strcmp(a, "--csv")) csv_path = v;
        else if (!strcmp(a, "--budget")) {
            if (strlen(v) >= sizeof budget_buf) { cli_error("eval: --budget list too long"); return CLI_USAGE; }
            strcpy(budget_buf, v);
        } else if (!strcmp(a, "--method")) {
            if (strlen(v) >= sizeof method_buf) { cli_error("eval: --method list too long"); return CLI_USAGE; }
            strcpy(method_buf, v);
        } else if (!strcmp(a, "--context")) {
            if (parse_long(v, 2, 1L << 20, &context)) {
                cli_error("eval: --context '%s' is not an integer in [2, 1048576]", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--decode")) {
            if (parse_long(v, 1, 1L << 20, &decode)) {
                cli_error("eval: --decode '%s' is not a positive integer", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--passkey")) {
            if (parse_long(v, 0, 100000, &passkey)) {
                cli_error("eval: --passkey '%s' is not a count of trials", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--forced")) {
            if (parse_long(v, 0, 1, &forced)) {
                cli_error("eval: --forced '%s' is not 0 or 1", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 0);
            if (errno || end == v || *end || *v == '-') {
                cli_error("eval: --seed '%s' is not a non-negative integer", v);
                return CLI_USAGE;
            }
        } else {
            cli_error("eval: unknown option '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (!workload || strncmp(workload, "model:", 6) || !workload[6]) {
        cli_error("eval: --workload model:PATH is required here");
        return CLI_USAGE;
    }
    if (decode >= context) {
        cli_error("eval: --decode %ld must be below --context %ld", decode, context);
        return CLI_USAGE;
    }
    const char *path = workload + 6;
    char *budgets_s[MAX_LIST], *methods[MAX_LIST];
    double budgets[MAX_LIST];
    int n_budgets = split(budget_buf, budgets_s), n_methods = 0;
    if (n_budgets < 1) {
        cli_error("eval: --budget needs 1 to %d values", MAX_LIST);
        return CLI_USAGE;
    }
    for (int i = 0; i < n_budgets; i++) {
        char *end;
        budgets[i] = strtod(budgets_s[i], &end);
        if (end == budgets_s[i] || *end || !(budgets[i] > 0.0 && budgets[i] <= 1.0)) {
            cli_error("eval: budget '%s' is not a number in (0, 1]", budgets_s[i]);
            return CLI_USAGE;
        }
    }
    if (method_buf[0]) {
        n_methods = split(method_buf, methods);
        if (n_methods < 1) {
            cli_error("eval: --method needs 1 to %d names", MAX_LIST);
            return CLI_USAGE;
        }
        for (int i = 0; i < n_methods; i++) {
            kvr_config probe;   /* a bad name or lever is KVR_EINVAL at any plain budget */
            if (kvr_method_config(methods[i], 0.5, 4096, 64, KVR_F32, &probe) == KVR_EINVAL) {
                cli_error("eval: method '%s': %s", methods[i], kvr_last_error());
                return CLI_USAGE;
            }
        }
    } else {
        for (int j = 0; kvr_method_name(j) && n_methods < MAX_LIST; j++)
            methods[n_methods++] = (char *)kvr_method_name(j);
    }

    kvr_model m;
    int status = kvr_model_load(&m, path);
    if (status != KVR_OK) {
        cli_error("eval: %s (%s)", kvr_model_error(), kvr_strerror(status));
        return CLI_FAIL;
    }
    int failed = run_all(&m, path, context, decode, seed, budgets, n_budgets, methods, n_methods,
                         (int)passkey, (int)forced, csv_path);
    kvr_model_free(&m);
    return failed;
}
