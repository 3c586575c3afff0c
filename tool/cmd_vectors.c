/* cmd_vectors.c: `kvreviver vectors` (write the conformance vectors) and
 * `kvreviver validate` (check a port's outputs against them); see
 * doc/porting.md. */
#include <config.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "conformance/vectors.h"
#include "kvreviver.h"

/* Each command's options and, beside them, its usage text (the man page is
 * made from it). */
static const struct option vectors_options[] = {
    {"out", required_argument, NULL, 'o'},
    {"backend", required_argument, NULL, 'b'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void vectors_usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver vectors --out DIR [--backend ref|cpu]\n"
        "Write the conformance vectors: DIR/MANIFEST, DIR/inputs/, DIR/expected/ and\n"
        "DIR/tolerance/ (NumPy .npy files).  See doc/porting.md.\n"
        "\n"
        "  --out DIR      the directory to write (made when missing)\n"
        "  --backend B    run the scripted scenarios on backend ref (default) or\n"
        "                 cpu; DIR/expected then holds that backend's outputs, a\n"
        "                 port's to validate against the reference's vectors\n"
        "  -h, --help     this text\n"
        "  -V, --version  the version\n");
}

static const struct option validate_options[] = {
    {"vectors", required_argument, NULL, 'v'},
    {"port", required_argument, NULL, 'p'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static void validate_usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver validate --vectors DIR --port PORTDIR\n"
        "Compare a port's outputs (PORTDIR/X for every DIR/expected/X) with the\n"
        "conformance vectors; exit 0 only when every array passes.\n"
        "\n"
        "  --vectors DIR    the conformance vectors (as kvreviver vectors wrote them)\n"
        "  --port PORTDIR   the port's outputs, under the names of DIR/expected/\n"
        "  -h, --help       this text\n"
        "  -V, --version    the version\n");
}

/* Parse a command's options into values[] (indexed by the position of the
 * option in its table); CLI_USAGE on anything else, -1 when --help or
 * --version was answered, CLI_OK otherwise. */
static int parse_options(int argc, char **argv, const struct option *options, const char **values,
                         void (*usage)(FILE *))
{
    int c;
    optind = 0;
    while ((c = cli_getopt(argc, argv, ":hV", options)) != -1) {
        if (c == CLI_GETOPT_BAD)
            return CLI_USAGE;
        if (c == 'h') { usage(stdout); return -1; }
        if (c == 'V') { printf("kvreviver %s\n", kvr_version()); return -1; }
        for (int j = 0; options[j].name; j++)
            if (options[j].val == c)
                values[j] = optarg;
    }
    return cli_no_operands(argc, argv) ? CLI_USAGE : CLI_OK;
}

int cli_vectors(int argc, char **argv)
{
    const char *values[4] = {NULL, NULL, NULL, NULL}, *out;
    int r = parse_options(argc, argv, vectors_options, values, vectors_usage);
    if (r != CLI_OK)
        return r < 0 ? CLI_OK : r;
    out = values[0];
    if (values[1] && strcmp(values[1], "ref") && strcmp(values[1], "cpu")) {
        msg_error("vectors: --backend '%s' is not ref or cpu", values[1]);
        cli_try_help("vectors");
        return CLI_USAGE;
    }
    vec_backend = values[1] && !strcmp(values[1], "cpu") ? KVR_BACKEND_CPU : KVR_BACKEND_REF;
    if (!out || !*out) {
        msg_error("vectors: --out DIR is required");
        cli_try_help("vectors");
        return CLI_USAGE;
    }
    vec_writer w;
    if (vw_open(&w, out) != CLI_OK)
        return CLI_FAIL;
    int status = vec_write_hashes(&w);
    if (status == CLI_OK) status = vec_write_elem(&w);
    if (status == CLI_OK) status = vec_write_planner(&w);
    if (status == CLI_OK) status = vec_write_scripts(&w);
    if (vw_close(&w) != CLI_OK)
        status = CLI_FAIL;
    if (status == CLI_OK)
        printf("vectors: %d arrays, %zu bytes of data in %s\n", w.n_arrays, w.bytes, out);
    return status;
}

int cli_validate(int argc, char **argv)
{
    const char *values[4] = {NULL, NULL, NULL, NULL};
    int r = parse_options(argc, argv, validate_options, values, validate_usage);
    if (r != CLI_OK)
        return r < 0 ? CLI_OK : r;
    if (!values[0] || !values[1] || !*values[0] || !*values[1]) {
        msg_error("validate: %s is required", !values[0] || !*values[0] ? "--vectors DIR" : "--port PORTDIR");
        cli_try_help("validate");
        return CLI_USAGE;
    }
    return vec_validate(values[0], values[1]);
}
