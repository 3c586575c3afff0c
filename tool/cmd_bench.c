/* cmd_bench.c: the options of `kvreviver bench` (doc/cuda.md): decode
 * attention, append and prefill timings, run by the harness
 * (tool/harness/bench.c: --backend ref and --backend cuda) or the soak run
 * (tool/harness/soak.c: --soak). */
#include <config.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli.h"
#include "harness/bench.h"
#include "harness/soak.h"
#include "kvreviver.h"


/* The options and, beside them, their usage text (the man page is made
 * from it). */
enum { O_BACKEND = 256, O_BATCH, O_REPEATS, O_MAX_N, O_QUICK, O_SOAK, O_APPENDS };
static const struct option options[] = {
    {"backend", required_argument, NULL, O_BACKEND},
    {"context", required_argument, NULL, 'c'},
    {"batch", required_argument, NULL, O_BATCH},
    {"budget", required_argument, NULL, 'b'},
    {"repeats", required_argument, NULL, O_REPEATS},
    {"max-n", required_argument, NULL, O_MAX_N},
    {"quick", no_argument, NULL, O_QUICK},
    {"soak", no_argument, NULL, O_SOAK},
    {"appends", required_argument, NULL, O_APPENDS},
    {"seed", required_argument, NULL, 's'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver bench [--backend cuda|cpu|ref] [--context N[,N...]] [--batch B[,B...]]\n"
        "                       [--budget R[,R...]] [--repeats R] [--max-n N] [--quick]\n"
        "       kvreviver bench --soak [--appends N] [--seed S]\n"
        "\n"
        "Time decode attention of KVReviver-compressed caches.\n"
        "\n"
        "  --backend cuda   (the default when a GPU is usable) decode attention of\n"
        "                   head_dim 128, 32 query heads on 8 KV heads per sequence,\n"
        "                   over the grid of --context, --batch and --budget, for the\n"
        "                   methods kvreviver-paper (the paper-faithful route: median\n"
        "                   rows, every vague token reconstructed) and kvreviver-mean\n"
        "                   (mean rows: the sketch-domain route), float16 exact parts,\n"
        "                   next to a full-cache float16 split-K decode attention (the\n"
        "                   baseline).  The default kvreviver (a 4-bit tier, spec\n"
        "                   §19) and kvreviver-moment (the moment route, spec §17)\n"
        "                   have no CUDA kernel yet and are not timed here.\n"
        "                   Each line: microseconds per step (CUDA events, 3 warm-up\n"
        "                   steps, median of R), megabytes the step must read, achieved\n"
        "                   GB/s, that rate as a share of the device-to-device copy\n"
        "                   bandwidth measured at the start of the run (bytes read plus\n"
        "                   bytes written per second by cudaMemcpy of 1 GiB), and the\n"
        "                   speed-up over the baseline.  Then sketch insertion (append)\n"
        "                   and prefill-score throughput.\n"
        "  --backend cpu    the CPU kernels (doc/cpu-results.md): decode attention of\n"
        "                   head_dim 128, 32 query heads on 8 KV heads per sequence,\n"
        "                   float16 exact parts, over the grid of --context (default\n"
        "                   2k,8k,32k,128k), --batch (default 1,8) and --budget, for\n"
        "                   the default kvreviver (the 4-bit tier and the mean-field\n"
        "                   bulk) next to the full-cache float16 attention through the\n"
        "                   same kernels (the baseline), all the sequences' KV heads\n"
        "                   of a step spread over the threads (KVR_CPU_THREADS, default\n"
        "                   every online CPU).  First the streaming read bandwidth of\n"
        "                   a buffer of 4 times the last-level cache (1 to 4 GiB), one\n"
        "                   thread and all threads; then per line:\n"
        "                   microseconds per step (2 warm-up steps, median of R),\n"
        "                   megabytes the step must read, achieved GB/s, that as a\n"
        "                   share of the one-thread and the all-thread read bandwidth,\n"
        "                   the speed-up over the baseline, and microseconds per 1024\n"
        "                   positions per sequence (linear cost: a flat column).\n"
        "  --backend ref    the CPU reference: one layer, 8 KV heads, 32 query heads,\n"
        "                   head_dim 128, kvreviver (the default route) at the first\n"
        "                   --budget (default 10%%), float32; prefill then decode\n"
        "                   attention for N = 512, 1k, 2k, ... while the run stays\n"
        "                   within about a minute, or for the --context list.\n"
        "  -c, --context N,...  contexts (a k suffix multiplies by 1024); default on cuda\n"
        "                   2k,8k,32k,128k\n"
        "  --batch B,...    cuda: sequences per launch (default 1,8,32)\n"
        "  -b, --budget R,...   budgets in (0, 1): bytes held over the bytes of the full\n"
        "                   cache (default 0.1,0.25 on cuda, 0.1 on ref)\n"
        "  --repeats R      timed repeats per measurement (default 20 on cuda, 10 on\n"
        "                   cpu, 3 on ref; cuda uses max(3, R/4) at N >= 128k, cpu\n"
        "                   max(3, R/3) at N >= 64k)\n"
        "  --max-n N        largest context to run (default: all); a usage error when\n"
        "                   it leaves no context to run\n"
        "  --quick          cuda: batch 1 and 8 only, the first budget (a smoke run);\n"
        "                   cpu: the first budget, contexts up to 32k\n"
        "  --soak           the load test instead: one head cache (head_dim 16) takes\n"
        "                   N appends (default 1,000,000) at a fixed 10%% budget of a\n"
        "                   32k context; checks that the bytes held stay at the\n"
        "                   planned value, every invariant, and the reconstruction\n"
        "                   error against the spec's bound (spec §15); reports time\n"
        "                   and peak memory.  Exit 1 when a check fails.\n"
        "  --appends N      appends of --soak\n"
        "  -s, --seed S     seed of --soak's data and hash (default 1)\n"
        "  -h, --help       display this help and exit\n"
        "  -V, --version    output version information and exit\n"
        "\n"
        "An option that does not apply to the run chosen is a usage error: --soak\n"
        "takes only --appends and --seed (which nothing else takes), --batch and\n"
        "--quick do not apply to --backend ref.\n"
        "\n"
        "Exit status: 0 success, 1 runtime failure (no GPU for --backend cuda, out of\n"
        "memory), 2 usage error.\n");
}

/* A positive integer up to 2^30, with an optional k (x 1024) suffix when
 * k_ok; 1 on success. */
static int parse_count(const char *s, int k_ok, long *out)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return 0;
    long x = strtol(s, &end, 10);
    if (k_ok && (*end == 'k' || *end == 'K') && x <= (1L << 20)) {
        x *= 1024;
        end++;
    }
    if (*end || x < 1 || x > (1L << 30))
        return 0;
    *out = x;
    return 1;
}

/* A comma-separated list for --context, --batch or --budget into the grid;
 * a message naming the option and the bad item, and 0, on failure. */
static int parse_list(const char *opt, const char *arg, ev_bench_grid *g)
{
    int n = 0;
    const char *p = arg;
    for (;;) {
        size_t len = strcspn(p, ",");
        char item[32];
        if (len == 0 || len >= sizeof item) {
            msg_error("bench: --%s '%s': an empty or overlong item", opt, arg);
            return 0;
        }
        if (n == EV_BENCH_MAX_LIST) {
            msg_error("bench: --%s '%s': more than %d items", opt, arg, EV_BENCH_MAX_LIST);
            return 0;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        long x;
        if (!strcmp(opt, "budget")) {
            char *end;
            double b = strtod(item, &end);
            if (*end || !(b > 0.0 && b < 1.0)) {
                msg_error("bench: --budget '%s' is not a number in (0, 1)", item);
                return 0;
            }
            g->budget[n++] = b;
        } else if (!parse_count(item, !strcmp(opt, "context"), &x)
                   || (!strcmp(opt, "batch") && x > 1024)) {
            msg_error("bench: --%s '%s' is not a positive integer%s", opt, item,
                      !strcmp(opt, "context") ? " (k suffix allowed) up to 2^30" : " up to 1024");
            return 0;
        } else if (!strcmp(opt, "context")) {
            g->n[n++] = x;
        } else {
            g->batch[n++] = (int)x;
        }
        p += len;
        if (!*p) break;
        p++;
    }
    if (!strcmp(opt, "budget")) g->n_budget = n;
    else if (!strcmp(opt, "context")) g->n_n = n;
    else g->n_batch = n;
    return 1;
}


/* Usage error: the message and one line pointing at --help, CLI_USAGE. */
static int bad(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("kvreviver: bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_try_help("bench");
    return CLI_USAGE;
}

int cli_bench(int argc, char **argv)
{
    int backend = -1, repeats = 0, quick = 0, soak = 0, c;
    long max_n = 0, appends = 1000000, x;
    unsigned long long seed = 1;
    ev_bench_grid grid = {{2048, 8192, 32768, 131072}, 0, {1, 8, 32}, 3, {0.10, 0.25}, 2};
    /* the options given, by name: an option that does not apply to the run
     * chosen is refused, never ignored */
    const char *grid_opt = NULL, *soak_opt = NULL, *batch_opt = NULL;
    optind = 0;
    while ((c = cli_getopt(argc, argv, ":b:c:s:hV", options)) != -1) {
        const char *name = NULL;
        for (int j = 0; options[j].name; j++)
            if (options[j].val == c) name = options[j].name;
        switch (c) {
        case 'h': usage(stdout); return CLI_OK;
        case 'V': printf("kvreviver %s\n", kvr_version()); return CLI_OK;
        case O_QUICK: quick = 1; grid_opt = "--quick"; break;
        case O_SOAK: soak = 1; break;
        case 's':
            if (!cli_parse_u64(optarg, &seed))
                return bad("--seed '%s' is not a non-negative integer", optarg);
            soak_opt = "--seed";
            break;
        case O_BACKEND:
            if (!strcmp(optarg, "cuda")) backend = KVR_BACKEND_CUDA;
            else if (!strcmp(optarg, "ref")) backend = KVR_BACKEND_REF;
            else if (!strcmp(optarg, "cpu")) backend = KVR_BACKEND_CPU;
            else return bad("--backend '%s' is not cuda, cpu or ref", optarg);
            grid_opt = "--backend";
            break;
        case 'c': case O_BATCH: case 'b':
            if (!parse_list(name, optarg, &grid)) { cli_try_help("bench"); return CLI_USAGE; }
            grid_opt = c == 'c' ? "--context" : c == 'b' ? "--budget" : "--batch";
            if (c == O_BATCH) batch_opt = "--batch";
            break;
        case O_REPEATS: case O_MAX_N: case O_APPENDS:
            if (!parse_count(optarg, c == O_MAX_N, &x))
                return bad("--%s '%s' is not a positive integer", name, optarg);
            if (c == O_REPEATS) { repeats = (int)x; grid_opt = "--repeats"; }
            else if (c == O_APPENDS) { appends = x; soak_opt = "--appends"; }
            else { max_n = x; grid_opt = "--max-n"; }
            break;
        default: return CLI_USAGE;
        }
    }
    if (cli_no_operands(argc, argv))
        return CLI_USAGE;
    if (soak && grid_opt)
        return bad("%s does not apply to --soak (one head cache at a fixed budget and context; "
                   "--soak takes --appends and --seed)", grid_opt);
    if (!soak && soak_opt)
        return bad("%s applies only to --soak", soak_opt);
    if (soak) {
        int status = ev_soak_run(appends, 16, 0.10, 32768, (uint64_t)seed, stdout);
        if (status < 0)
            msg_error("bench --soak: %s", kvr_last_error());
        return status == 0 ? CLI_OK : CLI_FAIL;
    }
    if (backend < 0)
        backend = kvr_backend_available(KVR_BACKEND_CUDA) ? KVR_BACKEND_CUDA : KVR_BACKEND_REF;
    /* a grid with nothing left to run is a usage error, not an empty table */
    long smallest = backend == KVR_BACKEND_REF ? 512 : 2048;
    if (grid.n_n > 0) {
        smallest = grid.n[0];
        for (int i = 1; i < grid.n_n; i++)
            if (grid.n[i] < smallest) smallest = grid.n[i];
    } else if (backend != KVR_BACKEND_REF) {
        grid.n_n = 4;                            /* the default contexts */
    }
    if (max_n > 0 && max_n < smallest)
        return bad("--max-n %ld leaves no context to run (the smallest is %ld)", max_n, smallest);
    if (backend == KVR_BACKEND_REF && (batch_opt || quick))
        return bad("%s does not apply to --backend ref (one sequence, the --context list or the contexts "
                   "that fit in about a minute)", batch_opt ? batch_opt : "--quick");
    if (backend == KVR_BACKEND_CPU) {
        if (!batch_opt)
            grid.n_batch = 2;                        /* 1 and 8 */
        if (quick && max_n == 0)
            max_n = 32768;
        return ev_bench_cpu(repeats > 0 ? repeats : 10, max_n, quick, &grid) ? CLI_FAIL : CLI_OK;
    }
    if (backend == KVR_BACKEND_REF)
        return ev_bench_ref(repeats > 0 ? repeats : 3, max_n, &grid) ? CLI_FAIL : CLI_OK;
#ifdef KVR_HAVE_CUDA
    return ev_bench_cuda(repeats > 0 ? repeats : 20, max_n, quick, &grid) ? CLI_FAIL : CLI_OK;
#else
    (void)quick;
    msg_error("bench: --backend cuda: this build has no CUDA backend (configure --with-cuda)");
    return CLI_FAIL;
#endif
}
