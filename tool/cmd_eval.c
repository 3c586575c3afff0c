/* cmd_eval.c: `kvreviver eval`, methods side by side at equal measured
 * memory on a workload (doc/eval.md, doc/model.md §4).
 *
 * One front end for every workload, with one option table: an option means
 * the same thing on every workload, and one that cannot apply to the
 * workload given is a usage error that says why.  For synthetic, needle and
 * trace:DIR, each seed (and each layer of a trace) makes the workload once,
 * then every (budget, method) cell runs on it (tool/harness/eval.c); the
 * cells are averaged over the runs and written as an aligned table, CSV and
 * a plot (tool/harness/report.c).  For model:PATH the model is loaded here
 * and the harness runs it (tool/harness/model_eval.c). */
#include <config.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "harness/eval.h"
#include "harness/model_eval.h"
#include "runtime/model.h"
#include "harness/report.h"
#include "common/output.h"

enum { MAX_LIST = 64 };

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver eval [OPTIONS]\n"
        "Run methods side by side at equal measured memory on a workload: prefill\n"
        "the context, then decode the last --decode positions one at a time,\n"
        "measuring each step against full attention (doc/eval.md, doc/model.md).\n"
        "\n"
        "Workload:\n"
        "  -w, --workload=W       synthetic (default), needle, trace:DIR (NumPy files\n"
        "                         DIR/layer<L>/q.npy [n][q_heads][D], k.npy and v.npy\n"
        "                         [n][kv_heads][D]; every layer runs), or model:PATH\n"
        "                         (a llama2.c checkpoint or GGUF model run end to end)\n"
        "  -c, --context=N        positions held at the end, prompt + decode (default\n"
        "                         2048; a trace: all of its positions; a model: 512,\n"
        "                         at most its trained context)\n"
        "  -d, --decode=N         decode steps measured at the end (default 16; a\n"
        "                         model: context/2); --steps is the same option\n"
        "      --kv-heads=H       KV heads (default 2; synthetic and needle)\n"
        "      --q-heads=H        query heads, a multiple of --kv-heads (default 4)\n"
        "      --head-dim=D       head dimension, 1..1024 (default 64)\n"
        "      --elem=E           element type of the full cache (the budget's\n"
        "                         reference) and of exact keys and values unless\n"
        "                         store= quantizes them: f32 (default), f16 or bf16\n"
        "Real models (--workload model:PATH):\n"
        "      --text=FILE        teacher-force a UTF-8 document, tokenized with the\n"
        "                         model's own tokenizer (GGUF), instead of text the\n"
        "                         model samples from BOS\n"
        "      --windows=K        K non-overlapping windows of --context tokens of the\n"
        "                         --text document, averaged (default 1); a model that\n"
        "                         adds BOS (Gemma) gets BOS first in each window\n"
        "      --passkey=N        also N passkey trials per seed, the key's depth\n"
        "                         spread evenly (needs a tokenizer; default 0)\n"
        "      --late-question    the passkey's question arrives after compression:\n"
        "                         each cache is prefilled from the document alone,\n"
        "                         then the question's tokens are appended one decode\n"
        "                         step each, then the answer is decoded\n"
        "      --forced=0|1       run the teacher-forced comparison (default 1)\n"
        "      --threads=N        threads the methods run on (default: the CPUs)\n"
        "      --backend=B        decode attention on ref (default: the scalar\n"
        "                         reference) or cpu (the vector kernels, threads over\n"
        "                         the KV heads; the same tables within the tolerance\n"
        "                         of spec 14; doc/cpu-results.md)\n"
        "Methods and budgets:\n"
        "  -b, --budget=B[,B...]  memory budgets in (0, 1]: bytes held over the full\n"
        "                         cache's bytes (default 0.1,0.25)\n"
        "  -m, --method=M[,M...]  methods (default all): full, streaming, h2o, snapkv,\n"
        "                         tova, kvreviver (the measured default: a 4-bit tier),\n"
        "                         kvreviver-moment (the moment route, no tier),\n"
        "                         kvreviver-paper (paper-faithful), kvreviver-mean,\n"
        "                         kvreviver-shrink, kvreviver-nocentre, or all; by name\n"
        "                         also kivi (levers bits, group, residual) and mikv\n"
        "                         (H2O exact, the rest at 2 bits; levers bits, balance,\n"
        "                         rotate, recent, obs); a kvreviver\n"
        "                         method may take levers /key=value (share, recent,\n"
        "                         depth, rows, centre, shrink, vague, varcap, revive,\n"
        "                         importance, store, bits, tier, promote, balance,\n"
        "                         rotate, obs), e.g.\n"
        "                         kvreviver/bits=2/tier=0.75, an eviction method store=\n"
        "                         q8 or q4 and obs= (the prefill observation window,\n"
        "                         default 32), e.g. h2o/store=q4, snapkv/obs=16\n"
        "                         (doc/methods.md 13.4)\n"
        "  -s, --seed=S[,S...]    seeds of the workload (a model: of the sampler) and\n"
        "                         of the sketch hash (default 1)\n"
        "      --seeds=K          seeds 1..K\n"
        "Output:\n"
        "      --csv=FILE         write CSV to FILE ('-': standard output, instead of\n"
        "                         the table); one header for every workload\n"
        "      --plot=FILE        plot quality against the measured bytes_ratio, one\n"
        "                         line per method, with gnuplot, SVG or PNG by FILE's\n"
        "                         extension: attn_rel_err (synthetic, trace; full not\n"
        "                         drawn), needle_acc (needle), top1_agree (a model),\n"
        "                         or passkey_acc with --passkey; accuracies with their\n"
        "                         Wilson 95%% bars, full as a dashed line at its value\n"
        "                         (1 for top1_agree); not with --forced 0; needs\n"
        "                         gnuplot at build time%s\n"
        "  -h, --help             display this help and exit\n"
        "  -V, --version          output version information and exit\n"
        "\n"
        "Every metric is averaged over decode steps and query heads, then over the\n"
        "runs: seeds, trace layers, or seeds x text windows (the table's 'runs'\n"
        "column says how many; the CSV names it 'seeds').  full runs once, at budget\n"
        "1.  A budget too small for a method's sinks, window or sketch is skipped\n"
        "with a warning.  needle_acc and passkey_acc come with their Wilson 95%%\n"
        "interval.  Progress with the time elapsed and left goes to stderr: redrawn\n"
        "on a terminal, otherwise a line every KVR_PROGRESS_INTERVAL seconds\n"
        "(default 5; negative: none).  A run estimated above 2 GiB or a minute\n"
        "says so before it starts.  'kvreviver eval --workload model:PATH --help'\n"
        "describes the model workload.\n"
        "\n"
        "Exit status: 0 success, 1 failure at run time (files, library errors, a\n"
        "method over its budget), 2 usage error.\n",
#ifdef KVR_GNUPLOT
        " (built with " KVR_GNUPLOT ")"
#else
        " (this build has none)"
#endif
        );
}

/* The help of the model workload (eval --workload model:PATH --help). */
static void model_usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver eval --workload model:PATH [OPTIONS]\n"
        "Run a llama-architecture model end to end (a llama2.c checkpoint, or a GGUF\n"
        "file with F32, F16, Q4_0, Q4_1 or Q8_0 tensors) with its attention going\n"
        "through each method's cache, and compare every method with the full cache\n"
        "on the same tokens (doc/model.md).\n"
        "\n"
        "What runs:\n"
        "  teacher-forced (--forced 1, the default): the prompt (--context minus\n"
        "      --decode tokens) is prefilled, then --decode tokens are appended one at\n"
        "      a time, each step's token appended before it attends; per step the\n"
        "      next-token distribution is compared with the full cache's: top1_agree\n"
        "      (same argmax), kl (KL(full || method)), ppl (perplexity of the tokens).\n"
        "      The tokens are sampled from BOS by the model (per --seed), or the\n"
        "      --windows windows of --text FILE (tokenized by a GGUF's tokenizer).\n"
        "  passkey (--passkey N): N trials per seed; a five-digit key hidden in filler\n"
        "      at evenly spread depths, the model asked for it; passkey_acc with its\n"
        "      Wilson 95%% interval.  Needs a GGUF tokenizer and a --context that holds\n"
        "      the prompt (about 160 positions for SmolLM2; the error names the\n"
        "      minimum).  --late-question (with --forced 0) appends the question\n"
        "      after compression.\n"
        "\n"
        "Options that apply here:\n"
        "  -c, --context=N    positions (default 512, at most the trained context)\n"
        "  -d, --decode=N     decode steps measured (default context/2)\n"
        "      --text=FILE    a UTF-8 document to teacher-force (GGUF models)\n"
        "      --windows=K    K non-overlapping windows of --text (default 1)\n"
        "      --passkey=N, --late-question, --forced=0|1   as above\n"
        "      --threads=N    threads the methods run on (default: the CPUs)\n"
        "      --elem=E       f32 (default), f16 or bf16: the cache's element type\n"
        "  -b, --budget, -m, --method, -s, --seed, --seeds, --csv, --plot, --backend\n"
        "                     as in 'kvreviver eval --help'\n"
        "Not here: --kv-heads, --q-heads, --head-dim (the model's own).\n"
        "\n"
        "A model's run takes seconds to hours: 135M parameters at 512 tokens and two\n"
        "methods is about a minute on one core.  The run warns first when it will be\n"
        "large, and reports progress on stderr.  Exit status: 0 success, 1 failure\n"
        "(an unreadable model, a failed cell: marked FAILED in the table), 2 usage\n"
        "error (also a --context or --text the model cannot take).\n");
}

/* 1 when argv names a model workload (-w model:..., --workload[=]model:...),
 * for --help, which may come before it. */
static int argv_names_model(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (!strcmp(a, "--") )
            break;
        if (!strcmp(a, "--workload") || !strcmp(a, "-w"))
            v = i + 1 < argc ? argv[i + 1] : NULL;
        else if (!strncmp(a, "--workload=", 11))
            v = a + 11;
        else if (!strncmp(a, "-w", 2))
            v = a + 2;
        if (v && !strncmp(v, "model:", 6))
            return 1;
    }
    return 0;
}

/* Usage error: the message and one line pointing at --help on stderr,
 * CLI_USAGE. */
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
    fputc('\n', stderr);
    cli_try_help("eval");
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
    const char *workload;      /* synthetic, needle, trace:DIR or model:PATH */
    const char *trace_dir;     /* NULL unless trace */
    const char *model_path;    /* NULL unless model */
    int context, steps, kv_heads, q_heads, head_dim;
    kvr_elem elem;
    double budgets[MAX_LIST];
    int n_budgets;
    const char *methods[MAX_LIST];
    int n_methods;
    unsigned long long seeds[MAX_LIST];
    int n_seeds;
    const char *csv, *plot;
    const char *text;          /* model only */
    int windows, passkey, forced, threads, late_question;
} options;

/* The long options: one table for every workload. */
enum { O_KV_HEADS = 256, O_Q_HEADS, O_HEAD_DIM, O_ELEM, O_SEEDS, O_CSV, O_PLOT, O_TEXT, O_WINDOWS,
       O_PASSKEY, O_FORCED, O_THREADS, O_LATE, O_BACKEND };
static const struct option long_options[] = {
    {"workload", required_argument, NULL, 'w'},
    {"context", required_argument, NULL, 'c'},
    {"decode", required_argument, NULL, 'd'},
    {"steps", required_argument, NULL, 'd'},
    {"kv-heads", required_argument, NULL, O_KV_HEADS},
    {"q-heads", required_argument, NULL, O_Q_HEADS},
    {"head-dim", required_argument, NULL, O_HEAD_DIM},
    {"elem", required_argument, NULL, O_ELEM},
    {"text", required_argument, NULL, O_TEXT},
    {"windows", required_argument, NULL, O_WINDOWS},
    {"passkey", required_argument, NULL, O_PASSKEY},
    {"late-question", no_argument, NULL, O_LATE},
    {"forced", required_argument, NULL, O_FORCED},
    {"threads", required_argument, NULL, O_THREADS},
    {"backend", required_argument, NULL, O_BACKEND},
    {"budget", required_argument, NULL, 'b'},
    {"method", required_argument, NULL, 'm'},
    {"seed", required_argument, NULL, 's'},
    {"seeds", required_argument, NULL, O_SEEDS},
    {"csv", required_argument, NULL, O_CSV},
    {"plot", required_argument, NULL, O_PLOT},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Parse argv into o; CLI_OK, or CLI_USAGE after a message (or -1 after
 * --help). */
static int parse(int argc, char **argv, options *o)
{
    static char lists[3][4096];
    int seeds_k = 0, have_seed = 0, have_context = 0, have_steps = 0, have_heads = 0, have_windows = 0,
        have_passkey = 0, have_forced = 0, have_threads = 0;
    const char *heads_opt = NULL;
    memset(o, 0, sizeof *o);
    o->workload = "synthetic";
    o->context = 2048; o->steps = 16; o->kv_heads = 2; o->q_heads = 4; o->head_dim = 64;
    o->elem = KVR_F32;
    o->budgets[0] = 0.10; o->budgets[1] = 0.25; o->n_budgets = 2;
    o->seeds[0] = 1; o->n_seeds = 1;
    o->windows = 1; o->forced = 1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->threads = cpus < 1 ? 1 : cpus > EV_MODEL_MAX_THREADS ? EV_MODEL_MAX_THREADS : (int)cpus;
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, ":w:c:d:b:m:s:hV", long_options, NULL)) != -1) {
        const char *val = optarg;
        switch (c) {
        case 'h':
            if (argv_names_model(argc, argv))
                model_usage(stdout);
            else
                usage(stdout);
            return -1;
        case 'V':
            printf("kvreviver %s\n", kvr_version());
            return -1;
        case ':':
            return bad("option %s needs a value", argv[optind - 1]);
        case '?':
            return optopt ? bad("unknown option '-%c'", optopt) : bad("unknown option '%s'", argv[optind - 1]);
        case 'w':
            o->workload = val;
            o->trace_dir = o->model_path = NULL;
            if (!strncmp(val, "trace:", 6)) {
                o->trace_dir = val + 6;
                if (!*o->trace_dir) return bad("--workload '%s': trace: needs a directory", val);
            } else if (!strncmp(val, "model:", 6)) {
                o->model_path = val + 6;
                if (!*o->model_path) return bad("--workload '%s': model: needs a model file", val);
            } else if (strcmp(val, "synthetic") && strcmp(val, "needle")) {
                return bad("--workload '%s' is not synthetic, needle, trace:DIR or model:PATH", val);
            }
            break;
        case 'c':
            if (!parse_int(val, 2, INT32_MAX, &o->context)) return bad("--context '%s' is not an integer in [2, 2^31-1]", val);
            have_context = 1;
            break;
        case 'd':
            if (!parse_int(val, 1, INT32_MAX, &o->steps)) return bad("--decode '%s' is not a positive integer", val);
            have_steps = 1;
            break;
        case O_KV_HEADS:
            if (!parse_int(val, 1, 256, &o->kv_heads)) return bad("--kv-heads '%s' is not an integer in [1, 256]", val);
            have_heads = 1; heads_opt = "--kv-heads";
            break;
        case O_Q_HEADS:
            if (!parse_int(val, 1, 4096, &o->q_heads)) return bad("--q-heads '%s' is not an integer in [1, 4096]", val);
            have_heads = 1; heads_opt = "--q-heads";
            break;
        case O_HEAD_DIM:
            if (!parse_int(val, 1, 1024, &o->head_dim)) return bad("--head-dim '%s' is not an integer in [1, 1024]", val);
            have_heads = 1; heads_opt = "--head-dim";
            break;
        case O_ELEM:
            if (kvr_elem_parse(val, &o->elem) != KVR_OK)
                return bad("--elem '%s' is not f32, f16 or bf16%s", val,
                           strcmp(val, "q8") && strcmp(val, "q4") ? ""
                           : " (quantized storage is a method lever: --method h2o/store=q4)");
            break;
        case O_TEXT:
            if (!*val) return bad("--text needs a file name");
            o->text = val;
            break;
        case O_WINDOWS:
            if (!parse_int(val, 1, 1 << 20, &o->windows)) return bad("--windows '%s' is not a positive integer", val);
            have_windows = 1;
            break;
        case O_PASSKEY:
            if (!parse_int(val, 0, 100000, &o->passkey)) return bad("--passkey '%s' is not a count of trials", val);
            have_passkey = 1;
            break;
        case O_LATE:
            o->late_question = 1;
            break;
        case O_FORCED:
            if (!parse_int(val, 0, 1, &o->forced)) return bad("--forced '%s' is not 0 or 1", val);
            have_forced = 1;
            break;
        case O_BACKEND:
            if (!strcmp(val, "ref")) ev_backend = lm_cache_backend = KVR_BACKEND_REF;
            else if (!strcmp(val, "cpu")) ev_backend = lm_cache_backend = KVR_BACKEND_CPU;
            else return bad("--backend '%s' is not ref or cpu", val);
            break;
        case O_THREADS:
            if (!parse_int(val, 1, EV_MODEL_MAX_THREADS, &o->threads))
                return bad("--threads '%s' is not an integer in [1, %d]", val, EV_MODEL_MAX_THREADS);
            have_threads = 1;
            break;
        case 'b': {
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
            break;
        }
        case 'm': {
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
            break;
        }
        case 's': {
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
            break;
        }
        case O_SEEDS:
            if (!parse_int(val, 1, MAX_LIST, &seeds_k)) return bad("--seeds '%s' is not an integer in [1, 64]", val);
            break;
        case O_CSV:
            if (!*val) return bad("--csv needs a file name ('-' for standard output)");
            o->csv = val;
            break;
        case O_PLOT: {
            int png;
            if (!ev_report_plot_kind(val, &png)) return bad("--plot '%s': the file name must end in .svg or .png", val);
            o->plot = val;
            break;
        }
        default:
            return bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad("unexpected argument '%s'", argv[optind]);
    if (seeds_k && have_seed) return bad("give --seed or --seeds, not both");
    if (seeds_k) {
        for (int j = 0; j < seeds_k; j++) o->seeds[j] = (unsigned long long)j + 1;
        o->n_seeds = seeds_k;
    }
    if (o->n_methods == 0)
        for (int m = 0; kvr_method_name(m); m++) o->methods[o->n_methods++] = kvr_method_name(m);
    /* options that cannot apply to the workload given */
    if (o->model_path) {
        if (have_heads)
            return bad("%s does not apply to a model workload: the model file sets its heads", heads_opt);
        if (have_windows && !o->text)
            return bad("--windows needs --text: sampled text is one run per seed");
        if ((o->text || have_windows) && !o->forced)
            return bad("--text and --windows are for the teacher-forced comparison, which --forced 0 turns off");
        if (!o->forced && o->passkey == 0)
            return bad("--forced 0 with no --passkey trials leaves nothing to run");
        if (o->late_question && o->passkey == 0)
            return bad("--late-question applies to the passkey trials, and --passkey is 0");
        if (o->late_question && o->forced)
            return bad("--late-question needs --forced 0: its rows (workload model:NAME+late) hold the passkey only");
        if (!o->forced && o->plot)
            return bad("--plot places each method at the bytes_ratio its teacher-forced run measures, "
                       "which --forced 0 turns off");
        if (!have_context) o->context = 512;
        if (!have_steps) o->steps = 0;   /* context/2, in the harness */
        if (o->steps >= o->context)
            return bad("--decode %d leaves no prompt in --context %d", o->steps, o->context);
        return CLI_OK;
    }
    const char *only = o->text ? "--text" : have_windows ? "--windows" : have_passkey ? "--passkey"
                     : o->late_question ? "--late-question"
                     : have_forced ? "--forced" : have_threads ? "--threads" : NULL;
    if (only)
        return bad("%s applies only to --workload model:PATH (%s)", only,
                   !strcmp(only, "--threads") ? "the synthetic, needle and trace workloads run on one thread"
                   : "a real model's text, tokenizer or task");
    if (o->trace_dir && have_heads)
        return bad("%s does not apply to a trace: its files set the heads and head_dim", heads_opt);
    if (!o->trace_dir && (o->q_heads < o->kv_heads || o->q_heads % o->kv_heads))
        return bad("--q-heads %d is not a multiple of --kv-heads %d", o->q_heads, o->kv_heads);
    if (o->trace_dir && !have_context) o->context = 0;   /* all of the trace */
    if (o->context > 0 && o->steps >= o->context)
        return bad("--decode %d leaves no prefill in --context %d", o->steps, o->context);
    return CLI_OK;
}

/* The model workload: load the model, run the harness; the CSV (if any)
 * is open already.  A usage error found once the model is known (a context
 * above its trained context, a text too short) is CLI_USAGE. */
static int run_model(const options *o, FILE *csv)
{
    lm_model m;
    int status = lm_model_load(&m, o->model_path);
    if (status != KVR_OK) {
        msg_error("eval: %s", lm_model_error());
        return CLI_FAIL;
    }
    ev_model_opts mo = {o->model_path, o->text, o->context, o->steps, o->windows, o->elem, o->budgets,
                        o->n_budgets, o->methods, o->n_methods, o->seeds, o->n_seeds, o->passkey, o->late_question,
                        o->forced,
                        o->threads, csv, o->plot};
    int rc = ev_model_run(&m, &mo);
    lm_model_free(&m);
    return rc == 2 ? CLI_USAGE : rc ? CLI_FAIL : CLI_OK;
}

/* Before a large run (memory above 2 GiB or time above a minute, both
 * estimated), say so on stderr, with what to change.  The estimate: the
 * workload's q, k and v in float32 for every position, one full cache,
 * and per cell the harness's exact attention beside the cache's, about 8
 * flops per (step, position, query head, dimension) at 1 GFLOP/s. */
static void warn_if_large(const options *o, int n_runs, long cells)
{
    double n = o->trace_dir ? 0.0 : (double)o->context;    /* a trace's size is the trace's */
    if (n == 0.0)
        return;
    double steps = o->steps, D = o->head_dim;
    double bytes = n * (2.0 * o->kv_heads + o->q_heads) * D * 4.0 + (double)o->kv_heads * 2.0 * n * D * 4.0;
    double seconds = (double)cells * steps * n * o->q_heads * D * 8.0 / 1e9;
    (void)n_runs;
    if (bytes < 2.0 * 1024 * 1024 * 1024 && seconds < 60.0)
        return;
    char t[32];
    msg_duration(t, sizeof t, seconds);
    fprintf(stderr, "kvreviver: eval: warning: a large run: up to %.1f GiB of memory and roughly %s "
            "(%ld cell%s at --context %d, %d decode steps); progress follows on stderr\n",
            bytes / (1024.0 * 1024 * 1024), t, cells, cells == 1 ? "" : "s", o->context, o->steps);
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
    acc->found += x->found;
}

/* The end of a run with --csv: the file renamed into place when the run
 * succeeded, removed otherwise (a failed run leaves no half-written table).
 * Returns rc, or CLI_FAIL when the file could not be finished. */
static int finish_csv(const options *o, out_file *csv, int rc)
{
    if (!csv->f)
        return rc;
    if (rc != CLI_OK) {
        out_abort(csv);
        return rc;
    }
    if (out_commit(csv) != 0) {
        msg_error("eval: writing --csv %s: %s", !strcmp(o->csv, "-") ? "(standard output)" : o->csv,
                  strerror(errno));
        return CLI_FAIL;
    }
    return rc;
}

int cli_eval(int argc, char **argv)
{
    options o;
    int rc = parse(argc, argv, &o);
    if (rc == -1) return CLI_OK;
    if (rc != CLI_OK) return rc;
#ifndef KVR_GNUPLOT
    if (o.plot)
        return ev_report_plot(o.plot, NULL, 0, EV_PLOT_ATTN_REL_ERR, "");   /* says there is no gnuplot; CLI_FAIL */
#endif
    /* open the outputs first: a bad path fails before minutes of work; each
     * is written under a temporary name and renamed only when whole */
    out_file csv_out = {0};
    FILE *csv = NULL;
    if (o.csv) {
        if (out_open(&csv_out, o.csv) != 0) {
            msg_error("eval: cannot write --csv %s: %s", o.csv, strerror(errno));
            return CLI_FAIL;
        }
        csv = csv_out.f;
    }
    if (o.plot) {
        char tmp[OUT_PATH_MAX];     /* gnuplot writes it: here only its directory is tried */
        FILE *p = out_temp_name(tmp, sizeof tmp, o.plot) == 0 ? fopen(tmp, "w") : NULL;
        if (!p) {
            msg_error("eval: cannot write --plot %s: %s", o.plot, strerror(errno));
            out_abort(&csv_out);
            return CLI_FAIL;
        }
        fclose(p);
        remove(tmp);
    }
    if (o.model_path) {
        rc = run_model(&o, csv);
        rc = finish_csv(&o, &csv_out, rc);
        return rc;
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
    long cells_done = 0, cells_total = 0;   /* the progress line's count */
    for (int c = 0; c < n_cells; c++) cells_total += state[c] != 2;
    cells_total *= n_runs;
    warn_if_large(&o, n_runs, cells_total);
    msg_progress_clock();
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
                    msg_progress_count(cells_done, cells_total, "eval: seed %llu layer %d  budget %.3g  %s", seed,
                                       layer, budget, method);
                else
                    msg_progress_count(cells_done, cells_total, "eval: seed %llu (%d/%d)  budget %.3g  %s", seed,
                                       run + 1, n_runs, budget, method);
                cells_done++;
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
    }
    /* a run that measured no compressed method (every one skipped) failed */
    int asked = 0, measured = 0;
    for (int m = 0; m < o.n_methods; m++) asked |= strcmp(o.methods[m], "full") != 0;
    for (int i = 0; i < n_rows; i++) measured |= strcmp(rows[i].method, "full") != 0;
    if (rc == CLI_OK && asked && !measured) {
        msg_error("eval: no compressed method was measured: every one was skipped (see the warnings above); "
                  "the budgets are too small for this context");
        rc = CLI_FAIL;
    }
    if (rc == CLI_OK && o.plot) {
        char title[256];
        snprintf(title, sizeof title, "%s, context %d, %d KV heads, head_dim %d, %d run%s", o.workload, w0.n,
                 w0.n_kv_heads, w0.head_dim, n_runs, n_runs > 1 ? "s averaged" : "");
        ev_csv_row *plot_rows = malloc(sizeof *plot_rows * (size_t)(n_rows ? n_rows : 1));
        if (!plot_rows) {
            msg_error("eval: out of memory");
            rc = CLI_FAIL;
        } else {
            for (int i = 0; i < n_rows; i++) ev_report_csv_of(&rows[i], &plot_rows[i]);
            /* needle: its retrieval; synthetic and trace: attention error */
            rc = ev_report_plot(o.plot, plot_rows, n_rows,
                                !strcmp(o.workload, "needle") ? EV_PLOT_NEEDLE_ACC : EV_PLOT_ATTN_REL_ERR, title);
            free(plot_rows);
        }
    }
    free(rows);
    free(acc);
    free(state);
out:
    return finish_csv(&o, &csv_out, rc);
}
