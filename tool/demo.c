/* demo.c: `kvreviver demo`, the built-in workload (README's main job).
 *
 * Every method, and every family a practitioner would pick beside it
 * (eviction with 4-bit storage, KIVI at 2, 3 and 4 bits), at budgets 10%
 * and 25% on the synthetic and needle workloads at 2k context, in float16
 * bytes (the engines' type), one table, then a plain reading of it computed
 * from the numbers (tool/harness/report.c) that names the best of each
 * family.  The same as
 *   kvreviver eval --workload W --context 2048 --budget 0.1,0.25 --seed S \
 *       --elem f16 --method all,EXTRA
 * for W = synthetic and needle, EXTRA the list below. */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "harness/report.h"

/* The options and, beside them, their usage text (the man page is made
 * from it). */
static const struct option options[] = {
    {"seed", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver demo [--seed S]\n"
        "Run every method at budgets 10%% and 25%% on the synthetic and needle\n"
        "workloads at 2048 tokens (2 KV heads, 4 query heads, head_dim 64,\n"
        "16 decode steps), with bytes counted in float16 as engines store the\n"
        "cache, beside the families a practitioner would pick (eviction with\n"
        "4-bit storage, KIVI at 2, 3 and 4 bits, MiKV) and kvreviver over a 2-bit\n"
        "KIVI body (kvreviver/body=2, spec 18.8), and print one table, then a\n"
        "plain reading of it naming the best of each family.  A method the\n"
        "budget cannot hold is listed as not fitting.  The same numbers as\n"
        "  kvreviver eval --workload W --context 2048 --budget 0.1,0.25 --seed S\n"
        "      --elem f16 --method all,h2o/store=q4,snapkv/store=q4,tova/store=q4,\n"
        "      streaming/store=q4,kivi,kivi/bits=3,kivi/bits=4,mikv,kvreviver/body=2\n"
        "for W = synthetic and needle; see kvreviver eval --help and doc/eval.md\n"
        "for the metrics.\n"
        "\n"
        "  -s, --seed=S           seed of the workloads and of the sketch hash (default 1)\n"
        "  -h, --help             display this help and exit\n"
        "  -V, --version          output version information and exit\n");
}

enum { N_BUDGETS = 2, N_EXTRA = 9 };

/* the other families, after every named method */
static const char *const extra[N_EXTRA] = {
    "h2o/store=q4", "snapkv/store=q4", "tova/store=q4", "streaming/store=q4", "kivi", "kivi/bits=3", "kivi/bits=4",
    "mikv", "kvreviver/body=2",
};

int cli_demo(int argc, char **argv)
{
    unsigned long long seed = 1;
    int c;
    optind = 0;
    while ((c = cli_getopt(argc, argv, ":s:hV", options)) != -1) {
        switch (c) {
        case 'h': usage(stdout); return CLI_OK;
        case 'V': printf("kvreviver %s\n", kvr_version()); return CLI_OK;
        case 's':
            if (!cli_parse_u64(optarg, &seed)) {
                msg_error("demo: --seed '%s' is not a non-negative integer", optarg);
                cli_try_help("demo");
                return CLI_USAGE;
            }
            break;
        default: return CLI_USAGE;
        }
    }
    if (cli_no_operands(argc, argv))
        return CLI_USAGE;
    const char *workloads[] = {"synthetic", "needle"};
    const double budgets[N_BUDGETS] = {0.10, 0.25};
    ev_workload_shape shape = {2, 4, 64, 16};
    int context = 2048, n_methods = 0;
    const char *names[64];
    while (kvr_method_name(n_methods) && n_methods < 64 - N_EXTRA) {
        names[n_methods] = kvr_method_name(n_methods);
        n_methods++;
    }
    for (int k = 0; k < N_EXTRA; k++)
        names[n_methods++] = extra[k];
    ev_row *rows = calloc((size_t)2 * N_BUDGETS * n_methods, sizeof *rows);
    if (!rows) { msg_error("demo: out of memory"); return CLI_FAIL; }
    int n_rows = 0;
    ev_report_method_width(names, n_methods);
    ev_report_header(stdout);
    for (int wi = 0; wi < 2; wi++) {
        ev_workload w;
        int status = wi == 0 ? ev_workload_synthetic(&w, &shape, context, seed, NULL)
                             : ev_workload_needle(&w, &shape, context, seed, NULL);
        if (status != KVR_OK) {
            msg_error("demo: workload %s: %s", workloads[wi], kvr_strerror(status));
            free(rows);
            return CLI_FAIL;
        }
        for (int bi = 0; bi < N_BUDGETS; bi++)
            for (int mi = 0; mi < n_methods; mi++) {
                const char *m = names[mi];
                if (!strcmp(m, "full") && bi > 0) continue;
                double budget = strcmp(m, "full") ? budgets[bi] : 1.0;
                ev_row *row = &rows[n_rows];
                msg_progress("demo: %s  budget %.2f  %s", workloads[wi], budget, m);
                status = ev_run(&w, m, budget, KVR_F16, seed, &row->r);
                msg_progress_done();
                if (status == KVR_EBUDGET) {   /* as eval does: the row is skipped, saying why */
                    printf("%-9s %7d %6.2f %s does not fit this budget\n", workloads[wi], context, budget, m);
                    continue;
                }
                if (status != KVR_OK) {
                    msg_error("demo: %s on %s at budget %g: %s", m, workloads[wi], budget, kvr_last_error());
                    ev_workload_free(&w);
                    free(rows);
                    return CLI_FAIL;
                }
                row->workload = workloads[wi];
                row->context = context;
                row->budget = budget;
                row->method = m;
                row->seeds = 1;
                row->kv_heads = shape.n_kv_heads;
                row->q_heads = shape.n_q_heads;
                row->head_dim = shape.head_dim;
                row->steps = shape.decode_steps;
                row->elem = KVR_F16;
                ev_report_row(stdout, row);
                if (fflush(stdout) != 0 || ferror(stdout)) {   /* stop now, not after minutes of work */
                    msg_error("demo: writing standard output: %s", strerror(errno));
                    ev_workload_free(&w);
                    free(rows);
                    return CLI_FAIL;
                }
                n_rows++;
            }
        ev_workload_free(&w);
    }
    printf("\nReading (lower attn_rel_err is better; every row holds at most its budget of float16 bytes):\n");
    ev_report_reading(stdout, rows, n_rows);
    printf("mass_exact: the share of full attention's weight on the positions a method holds exactly.\n");
    printf("Metrics: doc/eval.md.  Methods and their papers: doc/methods.md.  Results: doc/results.md.\n");
    free(rows);
    return CLI_OK;
}
