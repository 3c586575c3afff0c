/* demo.c: `kvreviver demo`, the built-in workload (README's main job).
 *
 * Every method at budgets 10% and 25% on the synthetic and needle workloads
 * at 2k context, one table, then a plain reading of it. */
#include <config.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "eval.h"

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver demo [--seed S]\n"
        "Run every method at budgets 10%% and 25%% on the synthetic and needle\n"
        "workloads at 2048 tokens (2 KV heads, 4 query heads, head_dim 64,\n"
        "16 decode steps) and print one table.\n");
}

int cli_demo(int argc, char **argv)
{
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { usage(stdout); return CLI_OK; }
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            char *end;
            seed = strtoull(argv[++i], &end, 10);
            if (*end || !*argv[i]) { cli_error("--seed '%s' is not a non-negative integer", argv[i]); return CLI_USAGE; }
            continue;
        }
        cli_error("demo: unknown argument '%s'", argv[i]);
        usage(stderr);
        return CLI_USAGE;
    }
    const char *workloads[] = {"synthetic", "needle"};
    const double budgets[] = {0.10, 0.25};
    kvr_workload_shape shape = {2, 4, 64, 16};
    int context = 2048;
    printf("%-10s %7s %7s %-19s %11s %11s %12s %10s %10s\n", "workload", "context", "budget", "method",
           "bytes_ratio", "exact_ratio", "attn_rel_err", "mass_exact", "needle_acc");
    for (int wi = 0; wi < 2; wi++) {
        kvr_workload w;
        int status = wi == 0 ? kvr_workload_synthetic(&w, &shape, context, seed, NULL)
                             : kvr_workload_needle(&w, &shape, context, seed, NULL);
        if (status != KVR_OK) { cli_error("workload %s: %s", workloads[wi], kvr_strerror(status)); return CLI_FAIL; }
        for (int bi = 0; bi < 2; bi++)
            for (int mi = 0; kvr_method_name(mi); mi++) {
                const char *m = kvr_method_name(mi);
                if (!strcmp(m, "full") && bi > 0) continue;
                kvr_eval_result r;
                cli_progress("demo: %s budget %.2f %s", workloads[wi], budgets[bi], m);
                status = kvr_eval_run(&w, m, budgets[bi], KVR_F32, seed, &r);
                if (status != KVR_OK) {
                    cli_progress_done();
                    cli_error("%s on %s at budget %g: %s", m, workloads[wi], budgets[bi], kvr_last_error());
                    kvr_workload_free(&w);
                    return CLI_FAIL;
                }
                cli_progress_done();
                char needle[16] = "-";
                if (!isnan(r.needle_acc))
                    snprintf(needle, sizeof needle, "%.3f", r.needle_acc);
                printf("%-10s %7d %7.2f %-19s %11.4f %11.4f %12.4g %10.4f %10s\n", workloads[wi], context,
                       !strcmp(m, "full") ? 1.0 : budgets[bi], m, r.bytes_ratio, r.exact_ratio,
                       r.attn_rel_err, r.mass_exact, needle);
            }
        kvr_workload_free(&w);
    }
    return CLI_OK;
}
