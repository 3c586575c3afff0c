/* cmd_keys.c: `kvreviver keys`, how a real model's keys and values spread
 * over their channels and what 4-bit and 2-bit codes lose on them per
 * token and per channel (doc/model.md §7).  The options mean what they
 * mean in `kvreviver eval --workload model:PATH`; the model is loaded here
 * and the harness measures it (tool/harness/keystats.c). */
#include <config.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "common/output.h"
#include "harness/keystats.h"
#include "harness/model_eval.h"
#include "kvreviver.h"

/* The options and, beside them, their usage text (the man page is made
 * from it). */
static const struct option options[] = {
    {"workload", required_argument, NULL, 'w'},
    {"text", required_argument, NULL, 't'},
    {"context", required_argument, NULL, 'c'},
    {"seed", required_argument, NULL, 's'},
    {"csv", required_argument, NULL, 'o'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver keys --workload model:PATH [--text FILE] [--context N]\n"
        "                      [--seed S] [--csv FILE]\n"
        "\n"
        "Measure how a real model's keys and values spread over their channels, and\n"
        "what 4-bit and 2-bit codes lose on them per token (store=q4, spec 18.2) and\n"
        "per channel over groups of 32 positions (KIVI's keys, spec 18.6).  The\n"
        "context runs through the prompt pass that eval runs; the keys (after RoPE)\n"
        "and values each layer and KV head would store are measured there.\n"
        "\n"
        "  -w, --workload=model:PATH  the model: a llama2.c checkpoint or a GGUF model\n"
        "                         (required)\n"
        "  -c, --context=N        positions run through the model (default 512, at most\n"
        "                         its trained context)\n"
        "      --text=FILE        the first N tokens of a UTF-8 document, tokenized with\n"
        "                         the model's own tokenizer (GGUF), instead of text the\n"
        "                         model samples from BOS\n"
        "  -s, --seed=S           seed of the sampler, as eval's --seed (default 1)\n"
        "      --csv=FILE         write CSV to FILE ('-': standard output, instead of\n"
        "                         the table)\n"
        "  -h, --help             display this help and exit\n"
        "  -V, --version          output version information and exit\n"
        "\n"
        "Per layer, and all layers pooled: k_range and v_range, the largest channel's\n"
        "range (max - min over the positions) over the median channel's, mean over\n"
        "KV heads; k_top4 and v_top4, the share of a vector's squared norm in its 4\n"
        "largest channels, mean over positions and heads; and the relative RMS\n"
        "error ||x - deq(x)|| / ||x|| over the layer's positions and heads of 4-bit\n"
        "and 2-bit codes per token (tok_q4, tok_q2) and per channel (chan_q4,\n"
        "chan_q2), coded with the reference's quantizer (float16 zero point and\n"
        "scale).  The pooled line's errors weigh each layer by its squared norm.\n"
        "A progress line goes to stderr when it is a terminal.\n"
        "\n"
        "Exit status: 0 success, 1 failure at run time, 2 usage error.\n");
}

/* Usage error: "kvreviver: keys: " and the message, the usage on stderr,
 * CLI_USAGE. */
static int bad(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
static int bad(const char *fmt, ...)
{
    va_list ap;
    fputs("kvreviver: keys: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    cli_try_help("keys");
    return CLI_USAGE;
}

int cli_keys(int argc, char **argv)
{
    ev_keys_opts o = {NULL, NULL, 512, 1, 1, NULL};
    const char *csv_path = NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);   /* eval's default threads */
    o.threads = cpus < 1 ? 1 : cpus > EV_MODEL_MAX_THREADS ? EV_MODEL_MAX_THREADS : (int)cpus;
    int c;
    optind = 0;
    while ((c = cli_getopt(argc, argv, ":w:c:s:hV", options)) != -1) {
        const char *val = optarg;
        switch (c) {
        case 'h': usage(stdout); return CLI_OK;
        case 'V': printf("kvreviver %s\n", kvr_version()); return CLI_OK;
        case 'w':
            if (strncmp(val, "model:", 6))
                return bad("--workload '%s' is not model:PATH (keys measures a real model)", val);
            if (!val[6]) return bad("--workload '%s': model: needs a model file", val);
            o.path = val + 6;
            break;
        case 't':
            if (!*val) return bad("--text needs a file name");
            o.text = val;
            break;
        case 'c': {
            char *end;
            errno = 0;
            long x = strtol(val, &end, 10);
            if (errno || end == val || *end || x < 2 || x > INT32_MAX)
                return bad("--context '%s' is not an integer in [2, 2^31-1]", val);
            o.context = (int)x;
            break;
        }
        case 's': {
            unsigned long long seed;
            if (!cli_parse_u64(val, &seed)) return bad("--seed '%s' is not a non-negative integer", val);
            o.seed = seed;
            break;
        }
        case 'o':
            if (!*val) return bad("--csv needs a file name ('-' for standard output)");
            csv_path = val;
            break;
        default: return CLI_USAGE;
        }
    }
    if (cli_no_operands(argc, argv))
        return CLI_USAGE;
    if (!o.path)
        return bad("--workload model:PATH is required");
    /* open the output first: a bad path fails before the model loads; it is
     * written under a temporary name, renamed only when whole */
    out_file csv = {0};
    if (csv_path) {
        if (out_open(&csv, csv_path) != 0) {
            msg_error("keys: cannot write --csv %s: %s", csv_path, strerror(errno));
            return CLI_FAIL;
        }
        o.csv = csv.f;
    }
    lm_model m;
    int rc, status = lm_model_load(&m, o.path);
    if (status != KVR_OK) {
        msg_error("keys: %s", lm_model_error());
        rc = CLI_FAIL;
    } else {
        int r = ev_keys_run(&m, &o);
        rc = r == 2 ? CLI_USAGE : r ? CLI_FAIL : CLI_OK;
        lm_model_free(&m);
    }
    if (csv.f && rc != CLI_OK) {
        out_abort(&csv);                           /* no half-written table */
    } else if (csv.f && out_commit(&csv) != 0) {
        msg_error("keys: writing --csv %s: %s", !strcmp(csv_path, "-") ? "(standard output)" : csv_path,
                  strerror(errno));
        rc = CLI_FAIL;
    }
    return rc;
}
