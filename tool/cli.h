/* cli.h: the kvreviver tool's subcommands. */
#ifndef KVR_CLI_H
#define KVR_CLI_H

#include <getopt.h>
#include <stdio.h>
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
int cli_keys(int argc, char **argv);      /* cmd_keys.c */

/* Parse a non-negative decimal integer that fits in 64 bits (a seed); 1 on
 * success, 0 for anything else (sign, empty, trailing text, overflow). */
int cli_parse_u64(const char *s, unsigned long long *out);

/* After a usage error's message: one line pointing at 'kvreviver CMD
 * --help' (cmd NULL: at 'kvreviver --help'), not the whole usage, which
 * would bury the message. */
void cli_try_help(const char *cmd);

/* The short options, the same letter for the same option in every command
 * that has it (the man page's table):
 *   -h --help  -V --version  -b --budget  -c --context  -s --seed
 *   -w --workload  -m --method  -d --decode (eval)
 * Every other option is long only. */

/* getopt_long over one command's option table (shortopts must start with
 * ':'), the same conventions in every command: options before or after operands, --name=value or
 * --name value, unambiguous abbreviations of long names.  Returns what
 * getopt_long returns, except that an unknown option or a missing value is
 * reported here ("CMD: unknown option '--x'", "CMD: option '--out' needs a
 * value") with cli_try_help's line, and CLI_GETOPT_BAD comes back, for
 * which the caller returns CLI_USAGE.  Call with optind = 0 before the
 * first option of a command (getopt's reset). */
enum { CLI_GETOPT_BAD = -2 };
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* Refuse operands left after the options (argv[optind...]): a message naming
 * the first and cli_try_help's line, 1; 0 when there are none. */
int cli_no_operands(int argc, char **argv);

#endif
