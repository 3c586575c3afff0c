/* cmd_model.c: the options of `kvreviver eval --workload model:PATH`
 * (doc/model.md §4).  Parses them, loads the model (tool/runtime) and hands
 * the run to the harness (tool/harness/model_eval.c). */
#include <config.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "harness/model_eval.h"

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
            msg_error("eval: unknown option or missing value: '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        }
        const char *v = argv[++i];
        if (!strcmp(a, "--workload")) workload = v;
        else if (!strcmp(a, "--csv")) csv_path = v;
        else if (!strcmp(a, "--budget")) {
            if (strlen(v) >= sizeof budget_buf) { msg_error("eval: --budget list too long"); return CLI_USAGE; }
            strcpy(budget_buf, v);
        } else if (!strcmp(a, "--method")) {
            if (strlen(v) >= sizeof method_buf) { msg_error("eval: --method list too long"); return CLI_USAGE; }
            strcpy(method_buf, v);
        } else if (!strcmp(a, "--context")) {
            if (parse_long(v, 2, 1L << 20, &context)) {
                msg_error("eval: --context '%s' is not an integer in [2, 1048576]", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--decode")) {
            if (parse_long(v, 1, 1L << 20, &decode)) {
                msg_error("eval: --decode '%s' is not a positive integer", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--passkey")) {
            if (parse_long(v, 0, 100000, &passkey)) {
                msg_error("eval: --passkey '%s' is not a count of trials", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--forced")) {
            if (parse_long(v, 0, 1, &forced)) {
                msg_error("eval: --forced '%s' is not 0 or 1", v);
                return CLI_USAGE;
            }
        } else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            seed = strtoull(v, &end, 0);
            if (errno || end == v || *end || *v == '-') {
                msg_error("eval: --seed '%s' is not a non-negative integer", v);
                return CLI_USAGE;
            }
        } else {
            msg_error("eval: unknown option '%s'", a);
            usage(stderr);
            return CLI_USAGE;
        }
    }
    if (!workload || strncmp(workload, "model:", 6) || !workload[6]) {
        msg_error("eval: --workload model:PATH is required here");
        return CLI_USAGE;
    }
    if (decode >= context) {
        msg_error("eval: --decode %ld must be below --context %ld", decode, context);
        return CLI_USAGE;
    }
    const char *path = workload + 6;
    char *budgets_s[MAX_LIST], *methods[MAX_LIST];
    double budgets[MAX_LIST];
    int n_budgets = split(budget_buf, budgets_s), n_methods = 0;
    if (n_budgets < 1) {
        msg_error("eval: --budget needs 1 to %d values", MAX_LIST);
        return CLI_USAGE;
    }
    for (int i = 0; i < n_budgets; i++) {
        char *end;
        budgets[i] = strtod(budgets_s[i], &end);
        if (end == budgets_s[i] || *end || !(budgets[i] > 0.0 && budgets[i] <= 1.0)) {
            msg_error("eval: budget '%s' is not a number in (0, 1]", budgets_s[i]);
            return CLI_USAGE;
        }
    }
    if (method_buf[0]) {
        n_methods = split(method_buf, methods);
        if (n_methods < 1) {
            msg_error("eval: --method needs 1 to %d names", MAX_LIST);
            return CLI_USAGE;
        }
        for (int i = 0; i < n_methods; i++) {
            kvr_config probe;   /* a bad name or lever is KVR_EINVAL at any plain budget */
            if (kvr_method_config(methods[i], 0.5, 4096, 64, KVR_F32, &probe) == KVR_EINVAL) {
                msg_error("eval: method '%s': %s", methods[i], kvr_last_error());
                return CLI_USAGE;
            }
        }
    } else {
        for (int j = 0; kvr_method_name(j) && n_methods < MAX_LIST; j++)
            methods[n_methods++] = (char *)kvr_method_name(j);
    }

    lm_model m;
    int status = lm_model_load(&m, path);
    if (status != KVR_OK) {
        msg_error("eval: %s (%s)", lm_model_error(), kvr_strerror(status));
        return CLI_FAIL;
    }
    int failed = ev_model_run(&m, path, context, decode, seed, budgets, n_budgets, methods, n_methods,
                         (int)passkey, (int)forced, csv_path);
    lm_model_free(&m);
    return failed ? CLI_FAIL : CLI_OK;
}
