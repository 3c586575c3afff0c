/* cmd_vectors.c: `kvreviver vectors` and `kvreviver validate` (stubs). */
#include <config.h>
#include "cli.h"

int cli_vectors(int argc, char **argv)
{
    (void)argc; (void)argv;
    cli_error("vectors: not implemented yet");
    return CLI_FAIL;
}

int cli_validate(int argc, char **argv)
{
    (void)argc; (void)argv;
    cli_error("validate: not implemented yet");
    return CLI_FAIL;
}
