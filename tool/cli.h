/* cli.h: the kvreviver tool's subcommands. */
#ifndef KVR_CLI_H
#define KVR_CLI_H

#include "common/message.h"   /* msg_error, msg_progress: shared by every room */

/* Exit codes: 0 success, 1 runtime failure (files, library errors),
 * 2 usage error. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* Each subcommand gets argv[0] = its own name. */
int cli_demo(int argc, char **argv);      /* demo.c */
int cli_eval(int argc, char **argv);      /* cmd_eval.c */
int cli_vectors(int argc, char **argv);   /* cmd_vectors.c */
int cli_validate(int argc, char **argv);  /* cmd_vectors.c */
int cli_bench(int argc, char **argv);     /* cmd_bench.c */

/* Parse a non-negative decimal integer that fits in 64 bits (a seed); 1 on
 * success, 0 for anything else (sign, empty, trailing text, overflow). */
int cli_parse_u64(const char *s, unsigned long long *out);

#endif
