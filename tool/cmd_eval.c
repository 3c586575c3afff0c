/* cmd_eval.c: `kvreviver eval` (stub until the evaluation work lands). */
#include <config.h>
#include "cli.h"

int cli_eval(int argc, char **argv)
{
    (void)argc; (void)argv;
    cli_error("eval: not implemented yet");
    return CLI_FAIL;
}
