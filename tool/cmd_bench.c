/* cmd_bench.c: `kvreviver bench` (stub). */
#include <config.h>
#include "cli.h"

int cli_bench(int argc, char **argv)
{
    (void)argc; (void)argv;
    cli_error("bench: not implemented yet");
    return CLI_FAIL;
}
