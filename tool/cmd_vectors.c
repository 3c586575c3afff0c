/* cmd_vectors.c: `kvreviver vectors` (write the conformance vectors) and
 * `kvreviver validate` (check a port's outputs against them); see
 * doc/porting.md. */
#include <config.h>
#include <stdio.h>
#include <string.h>
#include "cli.h"
#include "conformance/vectors.h"

static void vectors_usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver vectors --out DIR\n"
        "Write the conformance vectors: DIR/MANIFEST, DIR/inputs/, DIR/expected/ and\n"
        "DIR/tolerance/ (NumPy .npy files).  See doc/porting.md.\n");
}

static void validate_usage(FILE *f)
{
    fprintf(f,
        "Usage: kvreviver validate --vectors DIR --port PORTDIR\n"
        "Compare a port's outputs (PORTDIR/X for every DIR/expected/X) with the\n"
        "conformance vectors; exit 0 only when every array passes.\n");
}

/* Parse "--name VALUE" pairs into the given slots; CLI_USAGE on anything
 * else, 1 when --help was asked. */
static int parse_options(int argc, char **argv, const char *const *names, const char **values, int n)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return 1;
        int known = 0;
        for (int j = 0; j < n && !known; j++) {
            size_t len = strlen(names[j]);
            if (!strcmp(argv[i], names[j])) {
                if (i + 1 >= argc) {
                    msg_error("%s: %s needs a value", argv[0], names[j]);
                    return CLI_USAGE;
                }
                values[j] = argv[++i];
                known = 1;
            } else if (!strncmp(argv[i], names[j], len) && argv[i][len] == '=') {
                values[j] = argv[i] + len + 1;
                known = 1;
            }
        }
        if (!known) {
            msg_error("%s: unknown argument '%s'", argv[0], argv[i]);
            return CLI_USAGE;
        }
    }
    return 0;
}

int cli_vectors(int argc, char **argv)
{
    static const char *const names[] = { "--out" };
    const char *out = NULL;
    int r = parse_options(argc, argv, names, &out, 1);
    if (r == 1) { vectors_usage(stdout); return CLI_OK; }
    if (r) { vectors_usage(stderr); return CLI_USAGE; }
    if (!out || !*out) {
        msg_error("vectors: --out DIR is required");
        vectors_usage(stderr);
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
    static const char *const names[] = { "--vectors", "--port" };
    const char *values[2] = { NULL, NULL };
    int r = parse_options(argc, argv, names, values, 2);
    if (r == 1) { validate_usage(stdout); return CLI_OK; }
    if (r) { validate_usage(stderr); return CLI_USAGE; }
    if (!values[0] || !values[1] || !*values[0] || !*values[1]) {
        msg_error("validate: --vectors DIR and --port PORTDIR are required");
        validate_usage(stderr);
        return CLI_USAGE;
    }
    return vec_validate(values[0], values[1]);
}
