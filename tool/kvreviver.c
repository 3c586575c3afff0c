/* kvreviver.c: the command-line tool's entry point and subcommand dispatch. */
#include <config.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "kvreviver.h"
#include "cli.h"
#include "common/output.h"

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver COMMAND [OPTIONS]\n"
        "  or:  kvreviver --help | --version\n"
        "\n"
        "Reversible KV-cache compression (KVReviver): per KV head, keep the sinks,\n"
        "a recent window and the important tokens exact and every other token in\n"
        "a vague part.  The default, kvreviver, holds the next most important of\n"
        "those at 4 bits each (a quantized tier, dequantized at attention time)\n"
        "and attends to the rest through their exact mean (the moment route's\n"
        "mean-field bulk); kvreviver-moment has no tier; the paper-faithful\n"
        "kvreviver-paper sketches every vague token and reconstructs each one.\n"
        "Every method is compared at equal measured bytes.\n"
        "\n"
        "Commands:\n"
        "  demo        every method at budgets 10%% and 25%% on the built-in\n"
        "              synthetic and needle workloads (2k context), one table\n"
        "  eval        methods side by side at equal measured memory on a workload\n"
        "  vectors     write the conformance vectors\n"
        "  validate    check a port's outputs against conformance vectors\n"
        "  bench       time decode attention, append and prefill\n"
        "  keys        a real model's key and value channels and their quantization\n"
        "              error per token and per channel\n"
        "\n"
        "Run 'kvreviver COMMAND --help' for a command's options.\n"
        "Exit status: 0 success, 1 failure at run time, 2 usage error.\n"
        "The spec is doc/spec.md; the manual is kvreviver(1).\n");
}

int cli_parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
        return 0;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return 0;
    *out = v;
    return 1;
}

void cli_try_help(const char *cmd)
{
    if (cmd)
        fprintf(stderr, "Usage: kvreviver %s [OPTIONS]; 'kvreviver %s --help' lists them.\n", cmd, cmd);
    else
        fputs("Usage: kvreviver COMMAND [OPTIONS]; 'kvreviver --help' lists the commands.\n", stderr);
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    opterr = 0;                                  /* the messages are ours */
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c != '?' && c != ':')
        return c;
    /* getopt has just stepped over the offending word */
    const char *word = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    const char *eq = strchr(word, '=');
    int is_long = !strncmp(word, "--", 2);
    if (c == ':') {
        msg_error("%s: option '%s' needs a value", argv[0], word);
    } else if (!is_long) {
        msg_error("%s: unknown option '-%c'", argv[0], optopt ? optopt : '?');
    } else if (eq && optopt) {                  /* a value given to a flag */
        msg_error("%s: option '%.*s' takes no value", argv[0], (int)(eq - word), word);
    } else {
        msg_error("%s: unknown or ambiguous option '%.*s'", argv[0],
                  eq ? (int)(eq - word) : (int)strlen(word), word);
    }
    cli_try_help(argv[0]);
    return CLI_GETOPT_BAD;
}

int cli_no_operands(int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    msg_error("%s: unexpected argument '%s' (every input is an option)", argv[0], argv[optind]);
    cli_try_help(argv[0]);
    return 1;
}

/* The end of every command: standard output must have taken every byte (a
 * full disk, a closed pipe), else the run failed whatever it computed. */
static int finish(int rc)
{
    if (out_check_stdout() != 0 && rc == CLI_OK) {
        msg_error("writing standard output: %s", strerror(errno));
        rc = CLI_FAIL;
    }
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        msg_error("no command given");
        cli_try_help(NULL);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return finish(CLI_OK);
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("kvreviver %s\n", kvr_version());
        return finish(CLI_OK);
    }
    static const struct { const char *name; int (*run)(int, char **); } commands[] = {
        {"demo", cli_demo}, {"eval", cli_eval}, {"vectors", cli_vectors},
        {"validate", cli_validate}, {"bench", cli_bench}, {"keys", cli_keys},
    };
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(cmd, commands[i].name))
            return finish(commands[i].run(argc - 1, argv + 1));
    msg_error("unknown command '%s' (the commands: demo, eval, vectors, validate, bench, keys)", cmd);
    cli_try_help(NULL);
    return CLI_USAGE;
}
