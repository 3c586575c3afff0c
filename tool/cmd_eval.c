/* cmd_eval.c: `kvreviver eval`, methods side by side at equal measured
 * memory on a workload (doc/eval.md).
 *
 * For each seed (and each layer of a trace) the workload is made once, then
 * every (budget, method) cell runs on it (tool/eval.c); the cells are
 * averaged over the runs and written as an aligned table, CSV and a plot
 * (tool/report.c). */
#include <config.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"
#include "harness/report.h"

enum { MAX_LIST = 64 };

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver eval [OPTIONS]\n"
        "Run methods side by side at equal measured memory on a workload: prefill\n"
        "the context, then decode --steps positions one at a time, measuring each\n"
        "step against float64 full attention (doc/eval.md).\n"
        "\n"
        "Workload:\n"
        "  --workload W       synthetic (default), needle, or trace:DIR (NumPy files\n"
        "                     DIR/layer<L>/q.npy [n][q_heads][D], k.npy and v.npy\n"
        "                     [n][kv_heads][D], float32 or float64; every layer runs),\n"
        "                     or model:PATH (a llama2.c or GGUF model run end to end:\n"
        "                     see 'kvreviver eval --workload model:PATH --help')\n"
        "  --context N        positions, prefill + decode (default 2048; a trace:\n"
        "                     all of its positions)\n"
        "  --steps N          decode steps measured (default 16)\n"
        "  --kv-heads H       KV heads (default 2; ignored for a trace)\n"
        "  --q-heads H        query heads, a multiple of --kv-heads (default 4)\n"
        "  --head-dim D       head dimension, 1..1024 (default 64)\n"
        "  --elem E           element type of the full cache (the budget's reference)\n"
        "                     and of exact keys and values unless store= quantizes\n"
        "                     them: f32 (default), f16 or bf16\n"
        "Methods and budgets:\n"
        "  --budget B[,B...]  memory budgets in (0, 1]: bytes held over the full\n"
        "                     cache's bytes (default 0.1,0.25)\n"
        "  --method M[,M...]  methods (default all): full, streaming, h2o, snapkv,\n"
        "                     tova, kvreviver (the measured default), kvreviver-paper\n"
        "                     (paper-faithful), kvreviver-mean, kvreviver-shrink,\n"
        "                     kvreviver-nocentre, or all; by name also kivi (levers\n"
        "                     bits, group, residual); a kvreviver method may take\n"
        "                     levers /key=value (share, recent, depth, rows, centre,\n"
        "                     shrink, vague, varcap, revive, importance, store), e.g.\n"
        "                     kvreviver/share=0.5/varcap=1, an eviction method store=\n"
        "                     q8 or q4, e.g. h2o/store=q4 (doc/methods.md 13.4)\n"
        "  --seed S[,S...]    seeds of the workload and of the sketch hash (default 1)\n"
        "  --seeds K          seeds 1..K\n"
        "Output:\n"
        "  --csv FILE         write CSV to FILE ('-': stdout, instead of the table)\n"
        "  --plot FILE        plot attn_rel_err against budget per method with\n"
        "                     gnuplot, SVG or PNG by FILE's extension (full is not\n"
        "                     plotted); needs gnuplot at build time%s\n"
        "  -h, --help         this help\n"
        "\n"
        "Every metric is averaged over decode steps and query heads, then over the\n"
        "seeds (and trace layers): the 'seeds' column says over how many runs.\n"
        "full runs once, at budget 1.  A budget too small for a method's sinks,\n"
        "window or sketch is skipped with a warning.  A progress line goes to\n"
        "stderr when it is a terminal.\n"
        "Exit status: 0 success, 1 failure at run time (files, library errors),\n"
        "2 usage error.\n",
#ifdef KVR_GNUPLOT
        " (built with " KVR_GNUPLOT ")"
#else
        " (this build has none)"
#endif
        );
}

/* Usage error: message, a pointer to --help on stderr, CLI_USAGE. */
static int bad(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("kvreviver: eval: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nUsage: kvreviver eval [--workload W] [--context N] [--budget B[,B...]]\n"
          "                      [--method M[,M...]] [--seed S[,S...] | --seeds K] [OPTIONS]\n"
          "Run 'kvreviver eval --help' for the options.\n", stderr);
    return CLI_USAGE;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || end == s || *end || x < lo || x > hi) return 0;
    *out = (int)x;
    return 1;
}

/* Split a comma-separated list in place into at most MAX_LIST items. */
static int split(char *s, char **items)
{
    int n = 0;
    for (char *tok = s;; ) {               /* every item, empty ones included */
        char *comma = strchr(tok, ',');
        if (comma) *comma = '\0';
        if (!*tok || n == MAX_LIST) return -1;  /* "a,,b", ",a", "a,": refused */
        items[n++] = tok;
        if (!comma) return n;
        tok = comma + 1;
    }
}

/* A method name, with its levers if any (doc/methods.md §13.4), is known
 * when the library accepts it for a plain budget: only a bad name or lever
 * gives KVR_EINVAL there. */
static int known_method(const char *m)
{
    kvr_config cfg;
    return kvr_method_config(m, 0.5, 4096, 64, KVR_F32, &cfg) != KVR_EINVAL;
}

typedef struct {
    const char *workload;      /* synthetic, needle or trace:DIR */
    const char *trace_dir;     /* NULL unless trace */
    int context, steps, kv_heads, q_heads, head_dim;
    kvr_elem elem;
    double budgets[MAX_LIST];
    int n_budgets;
    const char *methods[MAX_LIST];
    int n_methods;
    unsigned long long seeds[MAX_LIST];
    int n_seeds;
    const char *csv, *plot;
} options;

/* Parse argv into o; CLI_OK, or CLI_USAGE after a message (or -1 after
 * --help). */
static int parse(int argc, char **argv, options *o)
{
    static char lists[3][4096];
    int seeds_k = 0, have_seed = 0, have_context = 0;
    o->workload = "synthetic"; o->trace_dir = NULL;
    o->context = 2048; o->steps = 16; o->kv_heads = 2; o->q_heads = 4; o->head_dim = 64;
    o->elem = KVR_F32;
    o->budgets[0] = 0.10; o->budgets[1] = 0.25; o->n_budgets = 2;
    o->n_methods = 0;
    o->seeds[0] = 1; o->n_seeds = 1;
    o->csv = o->plot = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = NULL;
        char name[64];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(stdout); return -1; }
        if (strncmp(a, "--", 2) != 0)
            return bad("unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return bad("unknown option '%s'", a);
        memcpy(name, a, len);
        name[len] = 0;
        static const char *const takes[] = {"--workload", "--context", "--steps", "--kv-heads", "--q-heads",
            "--head-dim", "--elem", "--budget", "--method", "--seed", "--seeds", "--csv", "--plot"};
        int known = 0;
        for (size_t j = 0; j < sizeof takes / sizeof takes[0]; j++) known |= !strcmp(name, takes[j]);
        if (!known) return bad("unknown option '%s'", a);
        if (eq) val = eq + 1;
        else if (i + 1 < argc) val = argv[++i];
        else return bad("option %s needs a value", name);
        if (!strcmp(name, "--workload")) {
            o->workload = val;
            if (!strncmp(val, "trace:", 6)) {
                o->trace_dir = val + 6;
                if (!*o->trace_dir) return bad("--workload '%s': trace: needs a directory", val);
            } else if (strcmp(val, "synthetic") && strcmp(val, "needle")) {
                return bad("--workload '%s' is not synthetic, needle or trace:DIR", val);
            }
        } else if (!strcmp(name, "--context")) {
            if (!parse_int(val, 2, INT32_MAX, &o->context)) return bad("--context '%s' is not an integer in [2, 2^31-1]", val);
            have_context = 1;
        } else if (!strcmp(name, "--steps")) {
            if (!parse_int(val, 1, INT32_MAX, &o->steps)) return bad("--steps '%s' is not a positive integer", val);
        } else if (!strcmp(name, "--kv-heads")) {
            if (!parse_int(val, 1, 256, &o->kv_heads)) return bad("--kv-heads '%s' is not an integer in [1, 256]", val);
        } else if (!strcmp(name, "--q-heads")) {
            if (!parse_int(val, 1, 4096, &o->q_heads)) return bad("--q-heads '%s' is not an integer in [1, 4096]", val);
        } else if (!strcmp(name, "--head-dim")) {
            if (!parse_int(val, 1, 1024, &o->head_dim)) return bad("--head-dim '%s' is not an integer in [1, 1024]", val);
        } else if (!strcmp(name, "--elem")) {
            if (kvr_elem_parse(val, &o->elem) != KVR_OK)
                return bad("--elem '%s' is not f32, f16 or bf16%s", val,
                           strcmp(val, "q8") && strcmp(val, "q4") ? ""
                           : " (quantized storage is a method lever: --method h2o/store=q4)");
        } else if (!strcmp(name, "--budget")) {
            char *items[MAX_LIST];
            snprintf(lists[0], sizeof lists[0], "%s", val);
            int n = split(lists[0], items);
            if (n <= 0) return bad("--budget '%s' is not a list of budgets B[,B...]", val);
            for (int j = 0; j < n; j++) {
                char *end;
                double b = strtod(items[j], &end);
                if (end == items[j] || *end || !(b > 0.0 && b <= 1.0))
                    return bad("--budget: '%s' is not a number in (0, 1]", items[j]);
                o->budgets[j] = b;
            }
            o->n_budgets = n;
        } else if (!strcmp(name, "--method")) {
            char *items[MAX_LIST];
            snprintf(lists[1], sizeof lists[1], "%s", val);
            int n = split(lists[1], items);
            if (n <= 0) return bad("--method '%s' is not a list of methods M[,M...]", val);
            o->n_methods = 0;
            for (int j = 0; j < n; j++) {
                if (!strcmp(items[j], "all")) {
                    for (int m = 0; kvr_method_name(m) && o->n_methods < MAX_LIST; m++)
                        o->methods[o->n_methods++] = kvr_method_name(m);
                } else if (!known_method(items[j])) {
                    return bad("--method: '%s': %s (see 'kvreviver eval --help')", items[j], kvr_last_error());
                } else if (o->n_methods < MAX_LIST) {
                    o->methods[o->n_methods++] = items[j];
                }
            }
        } else if (!strcmp(name, "--seed")) {
            char *items[MAX_LIST];
            snprintf(lists[2], sizeof lists[2], "%s", val);
            int n = split(lists[2], items);
            if (n <= 0) return bad("--seed '%s' is not a list of seeds S[,S...]", val);
            for (int j = 0; j < n; j++) {
                unsigned long long seed;
                if (!cli_parse_u64(items[j], &seed))
                    return bad("--seed: '%s' is not a non-negative integer", items[j]);
                o->seeds[j] = seed;
            }
            o->n_seeds = n;
            have_seed = 1;
        } else if (!strcmp(name, "--seeds")) {
            if (!parse_int(val, 1, MAX_LIST, &seeds_k)) return bad("--seeds '%s' is not an integer in [1, 64]", val);
        } else if (!strcmp(name, "--csv")) {
            if (!*val) return bad("--csv needs a file name ('-' for stdout)");
            o->csv = val;
        } else if (!strcmp(name, "--plot")) {
            int png;
            if (!ev_report_plot_kind(val, &png)) return bad("--plot '%s': the file name must end in .svg or .png", val);
            o->plot = val;
        }
    }
    if (seeds_k && have_seed) return bad("give --seed or --seeds, not both");
    if (seeds_k) {
        for (int j = 0; j < seeds_k; j++) o->seeds[j] = (unsigned long long)j + 1;
        o->n_seeds = seeds_k;
    }
    if (o->n_methods == 0)
        for (int m = 0; kvr_method_name(m); m++) o->methods[o->n_methods++] = kvr_method_name(m);
    if (!o->trace_dir && (o->q_heads < o->kv_heads || o->q_heads % o->kv_heads))
        return bad("--q-heads %d is not a multiple of --kv-heads %d", o->q_heads, o->kv_heads);
    if (o->trace_dir && !have_context) o->context = 0;   /* all of the trace */
    if (o->context > 0 && o->steps >= o->context)
        return bad("--steps %d leaves no prefill in --context %d", o->steps, o->context);
    return CLI_OK;
}

/* Make the workload of one run (seed, or trace layer).  CLI_OK, CLI_USAGE
 * when the options cannot make it, CLI_FAIL otherwise (message printed). */
static int make_workload(const options *o, unsigned long long seed, int layer, ev_workload *w)
{
    ev_workload_shape shape = {o->kv_heads, o->q_heads, o->head_dim, o->steps};
    int status;
    if (o->trace_dir) {
        status = ev_workload_trace(w, o->trace_dir, layer, o->context, o->steps);
        if (status != KVR_OK) {
            msg_error("eval: trace %s: %s", o->trace_dir, ev_trace_error());
            return CLI_FAIL;
        }
        return CLI_OK;
    }
    status = !strcmp(o->workload, "needle") ? ev_workload_needle(w, &shape, o->context, seed, NULL)
                                             : ev_workload_synthetic(w, &shape, o->context, seed, NULL);
    if (status == KVR_EINVAL) {
        msg_error("eval: --context %d is too short for the %s workload with --steps %d%s", o->context,
                  o->workload, o->steps, !strcmp(o->workload, "needle")
                  ? " (needle needs 8 + 2 x steps positions in the first 3/4 of the prefill)" : "");
        return CLI_USAGE;
    }
    if (status != KVR_OK) {
        msg_error("eval: making the %s workload of %d positions: %s", o->workload, o->context, kvr_strerror(status));
        return CLI_FAIL;
    }
    return CLI_OK;
}

/* Add run x into the running sum acc (the division comes at the end). */
static void accumulate(ev_result *acc, const ev_result *x, int first)
{
    if (first) { *acc = *x; return; }
    acc->bytes_ratio += x->bytes_ratio;
    acc->exact_ratio += x->exact_ratio;
    acc->attn_rel_err += x->attn_rel_err;
    acc->mass_exact += x->mass_exact;
    acc->needle_acc += x->needle_acc;      /* NAN stays NAN: no needles in any run */
    acc->samples += x->samples;
    acc->needles += x->needles;
}

/* 1 when the arguments name a model workload (--workload model:PATH or
 * --workload=model:PATH): tool/cmd_model.c parses it and the harness runs it. */
static int wants_model(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workload") && i + 1 < argc && !strncmp(argv[i + 1], "model:", 6))
            return 1;
        if (!strncmp(argv[i], "--workload=model:", 17))
            return 1;
    }
    return 0;
}

int cli_eval(int argc, char **argv)
{
    if (wants_model(argc, argv))
        return cli_eval_model(argc, argv);
    options o;
    int rc = parse(argc, argv, &o);
    if (rc == -1) return CLI_OK;
    if (rc != CLI_OK) return rc;
#ifndef KVR_GNUPLOT
    if (o.plot)
        return ev_report_plot(o.plot, NULL, 0, "");   /* says there is no gnuplot; CLI_FAIL */
#endif
    /* open the outputs first: a bad path fails before minutes of work */
    FILE *csv = NULL;
    if (o.csv && strcmp(o.csv, "-")) {
        csv = fopen(o.csv, "w");
        if (!csv) { msg_error("eval: cannot write --csv %s: %s", o.csv, strerror(errno)); return CLI_FAIL; }
    } else if (o.csv) {
        csv = stdout;
    }
    if (o.plot) {
        FILE *p = fopen(o.plot, "w");
        if (!p) {
            msg_error("eval: cannot write --plot %s: %s", o.plot, strerror(errno));
            if (csv && csv != stdout) { fclose(csv); remove(o.csv); }
            return CLI_FAIL;
        }
        fclose(p);
    }
    int runs_per_seed = 1, n_runs;
    if (o.trace_dir) {
        runs_per_seed = ev_trace_layers(o.trace_dir);
        if (runs_per_seed == 0) {
            msg_error("eval: trace %s: no %s/layer0/q.npy (layout: doc/eval.md, section 2.3)", o.trace_dir, o.trace_dir);
            rc = CLI_FAIL;
            goto out;
        }
    }
    n_runs = runs_per_seed * o.n_seeds;

    /* cells: [budget][method]; full only once, in its first budget's slot */
    int n_cells = o.n_budgets * o.n_methods;
    ev_result *acc = calloc((size_t)n_cells, sizeof *acc);
    int *state = calloc((size_t)n_cells, sizeof *state);   /* 0 pending, 1 ok, -1 skipped, 2 not run */
    if (!acc || !state) { msg_error("eval: out of memory"); free(acc); free(state); rc = CLI_FAIL; goto out; }
    for (int b = 0; b < o.n_budgets; b++)
        for (int m = 0; m < o.n_methods; m++) {
            int dup = 0;        /* full once; a method listed twice once */
            for (int m2 = 0; m2 < m; m2++) dup |= !strcmp(o.methods[m2], o.methods[m]);
            if ((b > 0 && !strcmp(o.methods[m], "full")) || dup) state[b * o.n_methods + m] = 2;
        }
    ev_workload w0 = {0};
    int dims_known = 0;
    for (int run = 0; run < n_runs && rc == CLI_OK; run++) {
        unsigned long long seed = o.seeds[run / runs_per_seed];
        int layer = run % runs_per_seed;
        ev_workload w;
        rc = make_workload(&o, seed, layer, &w);
        if (rc != CLI_OK) break;
        if (!dims_known) { w0 = w; w0.q = w0.k = w0.v = NULL; w0.needle_pos = w0.needle_step = NULL; dims_known = 1; }
        for (int b = 0; b < o.n_budgets && rc == CLI_OK; b++)
            for (int m = 0; m < o.n_methods && rc == CLI_OK; m++) {
                int cell = b * o.n_methods + m;
                if (state[cell] == 2 || state[cell] == -1) continue;
                const char *method = o.methods[m];
                double budget = strcmp(method, "full") ? o.budgets[b] : 1.0;
                if (o.trace_dir)
                    msg_progress("eval: seed %llu layer %d  budget %.3g  %s", seed, layer, budget, method);
                else
                    msg_progress("eval: seed %llu (%d/%d)  budget %.3g  %s", seed, run + 1, n_runs, budget, method);
                ev_result r;
                int status = ev_run(&w, method, budget, o.elem, seed, &r);
                msg_progress_done();
                if (status == KVR_EBUDGET) {
                    fprintf(stderr, "kvreviver: eval: warning: %s at budget %g skipped: %s\n", method, budget, kvr_last_error());
                    state[cell] = -1;
                    continue;
                }
                if (status != KVR_OK) {
                    msg_error("eval: %s on %s at budget %g: %s", method, w.name, budget, kvr_last_error());
                    rc = CLI_FAIL;
                    break;
                }
                accumulate(&acc[cell], &r, state[cell] == 0);
                state[cell] = 1;
            }
        ev_workload_free(&w);
    }
    if (rc != CLI_OK) { free(acc); free(state); goto out; }

    ev_row *rows = calloc((size_t)n_cells, sizeof *rows);
    int n_rows = 0;
    if (!rows) { msg_error("eval: out of memory"); free(acc); free(state); rc = CLI_FAIL; goto out; }
    for (int b = 0; b < o.n_budgets; b++)
        for (int m = 0; m < o.n_methods; m++) {
            int cell = b * o.n_methods + m;
            if (state[cell] != 1) continue;
            ev_row *row = &rows[n_rows++];
            row->workload = o.workload;
            row->context = w0.n;
            row->method = o.methods[m];
            row->budget = strcmp(row->method, "full") ? o.budgets[b] : 1.0;
            row->seeds = n_runs;
            row->kv_heads = w0.n_kv_heads;
            row->q_heads = w0.n_q_heads;
            row->head_dim = w0.head_dim;
            row->steps = w0.n - w0.n_prefill;
            row->elem = o.elem;
            row->r = acc[cell];
            row->r.bytes_ratio /= n_runs;
            row->r.exact_ratio /= n_runs;
            row->r.attn_rel_err /= n_runs;
            row->r.mass_exact /= n_runs;
            row->r.needle_acc /= n_runs;
        }
    if (csv != stdout) {
        ev_report_header(stdout);
        for (int i = 0; i < n_rows; i++) ev_report_row(stdout, &rows[i]);
    }
    if (csv) {
        ev_report_csv_header(csv);
        for (int i = 0; i < n_rows; i++) ev_report_csv_row(csv, &rows[i]);
        if (fflush(csv) != 0 || ferror(csv)) {
            msg_error("eval: writing --csv %s: %s", o.csv, strerror(errno));
            rc = CLI_FAIL;
        }
    }
    if (rc == CLI_OK && o.plot) {
        char title[256];
        snprintf(title, sizeof title, "%s, context %d, %d KV heads, head_dim %d, %d run%s", o.workload, w0.n,
                 w0.n_kv_heads, w0.head_dim, n_runs, n_runs > 1 ? "s averaged" : "");
        rc = ev_report_plot(o.plot, rows, n_rows, title);
    }
    int skipped = 0;
    for (int c = 0; c < n_cells; c++) skipped += state[c] == -1;
    if (rc == CLI_OK && n_rows == 0 && skipped) {
        msg_error("eval: every method was skipped: the budgets are too small");
        rc = CLI_FAIL;
    }
    free(rows);
    free(acc);
    free(state);
out:
    if (csv && csv != stdout && fclose(csv) != 0 && rc == CLI_OK) {
        msg_error("eval: closing --csv %s: %s", o.csv, strerror(errno));
        rc = CLI_FAIL;
    }
    return rc;
}
