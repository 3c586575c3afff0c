/* output.h: the tool's output files and standard output (tool/common/README).
 *
 * An output file (--csv, --plot) is written under a temporary name in the
 * same directory, "PATH.tmpPID", and renamed over PATH only once it is
 * whole, so that a failed run never leaves a half-written or empty file. */
#ifndef KVR_OUTPUT_H
#define KVR_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

enum { OUT_PATH_MAX = 4096 };

typedef struct {
    FILE *f;                    /* open while writing: the temporary file, or stdout */
    char path[OUT_PATH_MAX];    /* the name asked for; "-" is standard output */
    char tmp[OUT_PATH_MAX];     /* where it is written until out_commit; "" for stdout */
} out_file;

/* The temporary name of path, "PATH.tmpPID", into buf.  0, or -1 with
 * errno = ENAMETOOLONG. */
int out_temp_name(char *buf, size_t cap, const char *path);

/* Open path for writing ("-": standard output, which out_commit only
 * flushes): its temporary file is created now, so that a bad directory
 * fails before any work.  0, or -1 with errno set (o->f is then NULL). */
int out_open(out_file *o, const char *path);

/* Finish the file: flush, check every write, close and rename the
 * temporary file over the path.  0, or -1 with errno set, the temporary
 * file removed. */
int out_commit(out_file *o);

/* Give up the file: close and remove the temporary file (standard output
 * is left alone).  Safe on a file that is not open. */
void out_abort(out_file *o);

/* Flush standard output and check that every write to it succeeded.  0, or
 * -1 with errno set (EIO when the failure's own errno is lost). */
int out_check_stdout(void);

#endif
